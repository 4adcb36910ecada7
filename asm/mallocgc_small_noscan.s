// runtime/malloc.go: mallocgcSmallNoscan, mallocgc's path for objects without
// pointers from 16 bytes to 32 KiB - 8 (smaller ones belong to the tiny allocator).
//
// ABIInternal: AX = size, BX = typ (unused on this path), CX = needzero.
// Returns AX = x, the object; BX = the size of its slot (the class size).
//
// Shaped after go1.27.3's compiled code (go tool objdump -s
// runtime.mallocgcSmallNoscan), with nextFreeFast inlined as the compiler
// inlines it. Differences: TZCNT instead of GOAMD64=v1's BSF+CMOV (as v3
// compiles it); the gcTrigger test after a refill is not modelled (there is
// no GC cycle yet), so checkGCTrigger from nextFree is not looked at.
//
// Frame: 0x1f(SP) needzero, 0x20 span, 0x28 c, 0x30 size, 0x38 mp, 0x40 x.
TEXT runtime·mallocgcSmallNoscan(SB), 0, $0x48-0
	// The stack check every non-NOSPLIT Go function starts with.
	CMPQ	SP, g_stackguard0(R14)
	JLS	morestack
	PUSHQ	BP
	MOVQ	SP, BP
	SUBQ	$0x48, SP
	MOVB	CX, 0x1f(SP)
	// mp := acquirem(): getg().m.locks++
	MOVQ	g_m(R14), DX
	INCL	m_locks(DX)
	MOVQ	DX, 0x38(SP)
	// mp.mallocing = 1
	MOVL	$1, m_mallocing(DX)
	// c := getMCache(mp): mp.p.ptr().mcache, or mcache0 while there is no P
	MOVQ	m_p(DX), SI
	TESTQ	SI, SI
	JEQ	nop
	MOVQ	p_mcache(SI), SI
	JMP	lookup
nop:
	MOVQ	runtime·mcache0(SB), SI
lookup:
	MOVQ	SI, 0x28(SP)
	// if size <= gc.SmallSizeMax-8
	CMPQ	AX, $(const_smallSizeMax-8)
	JHI	class128
	// sizeclass = gc.SizeToSizeClass8[divRoundUp(size, gc.SmallSizeDiv)]
	LEAQ	(const_smallSizeDiv-1)(AX), DI
	SHRQ	$3, DI
	MOVBLZX	internal∕runtime∕gc·SizeToSizeClass8(SB)(DI*1), DI
	JMP	haveclass
class128:
	// sizeclass = gc.SizeToSizeClass128[divRoundUp(size-gc.SmallSizeMax, gc.LargeSizeDiv)]
	LEAQ	(const_largeSizeDiv-1-const_smallSizeMax)(AX), DI
	SHRQ	$7, DI
	MOVBLZX	internal∕runtime∕gc·SizeToSizeClass128(SB)(DI*1), DI
haveclass:
	// spc := makeSpanClass(sizeclass, true)
	LEAL	1(DI)(DI*1), BX
	// size = uintptr(gc.SizeClassToSize[sizeclass])
	MOVWLZX	internal∕runtime∕gc·SizeClassToSize(SB)(DI*2), DI
	MOVQ	DI, 0x30(SP)
	// span := c.alloc[spc]
	MOVQ	mcache_alloc(SI)(BX*8), R8
	// nextFreeFast: theBit := sys.TrailingZeros64(s.allocCache)
	MOVQ	mspan_allocCache(R8), R9
	TZCNTQ	R9, R10
	// if theBit < 64
	CMPQ	R10, $64
	JGE	slow
	// result := s.freeindex + uint16(theBit)
	MOVWLZX	mspan_freeindex(R8), R11
	LEAL	(R10)(R11*1), R12
	// if result < s.nelems
	MOVWLZX	mspan_nelems(R8), R13
	CMPW	R13, R12
	JLS	slow
	// freeidx := result + 1
	LEAL	1(R12), R11
	// if freeidx%64 == 0 && freeidx != s.nelems { return 0 }: the cache needs refilling
	TESTW	$63, R11
	JNE	fast
	CMPW	R13, R11
	JNE	slow
fast:
	// s.allocCache >>= uint(theBit + 1), which is 0 when theBit+1 == 64
	INCQ	R10
	MOVQ	R10, CX
	SHRQ	CX, R9
	CMPQ	CX, $64
	SBBQ	R10, R10
	ANDQ	R10, R9
	MOVQ	R9, mspan_allocCache(R8)
	// s.freeindex = freeidx
	MOVW	R11, mspan_freeindex(R8)
	// s.allocCount++
	INCW	mspan_allocCount(R8)
	// return gclinkptr(uintptr(result)*s.elemsize + s.base())
	MOVWLZX	R12, R12
	IMULQ	mspan_elemsize(R8), R12
	ADDQ	mspan_startAddr(R8), R12
	JMP	gotobj
slow:
	// v, span, checkGCTrigger = c.nextFree(spc)
	MOVQ	SI, AX
	CALL	runtime.(*mcache).nextFree(SB)
	MOVQ	AX, R12
	MOVQ	BX, R8
	MOVQ	0x30(SP), DI
gotobj:
	MOVQ	R8, 0x20(SP)
	MOVQ	R12, 0x40(SP)
	// if needzero && span.needzero != 0
	CMPB	0x1f(SP), $0
	JEQ	zeroed
	CMPB	mspan_needzero(R8), $0
	JEQ	zeroed
	// memclrNoHeapPointers(x, size)
	MOVQ	R12, AX
	MOVQ	DI, BX
	CALL	runtime·memclrNoHeapPointers(SB)
zeroed:
	// publicationBarrier()
	CALL	runtime·publicationBarrier(SB)
	// if writeBarrier.enabled
	CMPB	runtime·writeBarrier(SB), $0
	JNE	black
	// span.freeIndexForScan = span.freeindex
	MOVQ	0x20(SP), DX
	MOVWLZX	mspan_freeindex(DX), SI
	MOVW	SI, mspan_freeIndexForScan(DX)
	JMP	sample
black:
	// gcmarknewobject(span, uintptr(x)): allocate black while the GC marks
	MOVQ	0x20(SP), AX
	MOVQ	0x40(SP), BX
	CALL	runtime·gcmarknewobject(SB)
sample:
	// c.nextSample -= int64(size)
	MOVQ	0x28(SP), DX
	MOVQ	0x30(SP), BX
	SUBQ	BX, mcache_nextSample(DX)
	// if c.nextSample < 0 || MemProfileRate != c.memProfRate
	JLT	profile
	MOVQ	runtime·MemProfileRate(SB), SI
	CMPQ	mcache_memProfRate(DX), SI
	JEQ	release
profile:
	// profilealloc(mp, x, size)
	MOVQ	0x38(SP), AX
	MOVQ	0x40(SP), BX
	MOVQ	0x30(SP), CX
	CALL	runtime·profilealloc(SB)
release:
	// mp.mallocing = 0
	MOVQ	0x38(SP), DX
	MOVL	$0, m_mallocing(DX)
	// releasem(mp): mp.locks--
	DECL	m_locks(DX)
	// if mp.locks == 0 && gp.preempt { gp.stackguard0 = stackPreempt }
	JNE	done
	CMPB	g_preempt(R14), $0
	JEQ	done
	MOVQ	$const_stackPreempt, g_stackguard0(R14)
done:
	// return x, size
	MOVQ	0x40(SP), AX
	MOVQ	0x30(SP), BX
	ADDQ	$0x48, SP
	POPQ	BP
	RET
morestack:
	CALL	runtime·morestack_noctxt(SB)
	JMP	runtime·mallocgcSmallNoscan(SB)
