// Pieces shared by the small-object paths of mallocgc (runtime/malloc.go).
// Go's compiler inlines acquirem, getMCache, the size-class lookup and
// nextFreeFast into each mallocgc* function; these macros are those inlined
// bodies, so each path carries its own copy of the instructions, as in Go.
//
// Handwritten: the commented teaching version that `gomemu step --annotated`
// walks (Machine(handwritten=True)) and one side of tests/test_differential.py;
// the default Machine() runs go1.27.3's compiled code instead (docs/machine.md).
//
// Frame of every small path ($0x48):
//   0x1f(SP) needzero   0x20 span   0x28 c   0x30 size   0x38 mp   0x40 x
// Callers of a mallocgc* function keep the 24 bytes at the bottom of their
// frame free: the callee's argument spill slots, used on stack growth.

// The stack check and frame of a mallocgc* function.
#define MALLOC_PROLOGUE(morestack) \
	// The stack check every non-NOSPLIT Go function starts with. \
	CMPQ	SP, g_stackguard0(R14) \
	JLS	morestack \
	// Frame: the caller's BP, then 0x48 bytes of locals. \
	PUSHQ	BP \
	MOVQ	SP, BP \
	SUBQ	$0x48, SP

// mp := acquirem(), leaving mp in DX and the frame.
#define ACQUIREM() \
	// mp := acquirem(): getg().m.locks++ \
	MOVQ	g_m(R14), DX \
	INCL	m_locks(DX) \
	MOVQ	DX, 0x38(SP)

// mp.mallocing = 1; c := getMCache(mp), with mp in DX. Leaves c in SI and the frame.
#define GET_MCACHE(nop, havec) \
	// mp.mallocing = 1 \
	MOVL	$1, m_mallocing(DX) \
	// c := getMCache(mp): mp.p.ptr().mcache, or mcache0 while there is no P \
	MOVQ	m_p(DX), SI \
	TESTQ	SI, SI \
	JEQ	nop \
	MOVQ	p_mcache(SI), SI \
	JMP	havec \
nop: \
	MOVQ	runtime·mcache0(SB), SI \
havec: \
	MOVQ	SI, 0x28(SP)

// mp := acquirem(); mp.mallocing = 1; c := getMCache(mp). Leaves c in SI.
#define MALLOC_ENTER(nop, havec) \
	ACQUIREM() \
	GET_MCACHE(nop, havec)

// sizeclass for `size` (in AX, clobbered) into DI: gc.SizeToSizeClass8 up to
// SmallSizeMax-8 bytes, gc.SizeToSizeClass128 above.
#define SIZE_TO_CLASS(class128, haveclass) \
	// if size <= gc.SmallSizeMax-8 \
	CMPQ	AX, $(const_smallSizeMax-8) \
	JHI	class128 \
	// sizeclass = gc.SizeToSizeClass8[divRoundUp(size, gc.SmallSizeDiv)] \
	LEAQ	(const_smallSizeDiv-1)(AX), DI \
	SHRQ	$3, DI \
	MOVBLZX	internal∕runtime∕gc·SizeToSizeClass8(SB)(DI*1), DI \
	JMP	haveclass \
class128: \
	// sizeclass = gc.SizeToSizeClass128[divRoundUp(size-gc.SmallSizeMax, gc.LargeSizeDiv)] \
	LEAQ	(const_largeSizeDiv-1-const_smallSizeMax)(AX), DI \
	SHRQ	$7, DI \
	MOVBLZX	internal∕runtime∕gc·SizeToSizeClass128(SB)(DI*1), DI \
haveclass:

// nextFreeFast(span) with span in R8: the object in R12, or a jump to `slow`
// when allocCache has no usable bit. Clobbers CX, R9-R11, R13.
#define NEXT_FREE_FAST(slow, fast) \
	// nextFreeFast: theBit := sys.TrailingZeros64(s.allocCache) \
	MOVQ	mspan_allocCache(R8), R9 \
	TZCNTQ	R9, R10 \
	// if theBit < 64 \
	CMPQ	R10, $64 \
	JGE	slow \
	// result := s.freeindex + uint16(theBit) \
	MOVWLZX	mspan_freeindex(R8), R11 \
	LEAL	(R10)(R11*1), R12 \
	// if result < s.nelems \
	MOVWLZX	mspan_nelems(R8), R13 \
	CMPW	R13, R12 \
	JLS	slow \
	// freeidx := result + 1 \
	LEAL	1(R12), R11 \
	// if freeidx%64 == 0 && freeidx != s.nelems { return 0 }: the cache needs refilling \
	TESTW	$63, R11 \
	JNE	fast \
	CMPW	R13, R11 \
	JNE	slow \
fast: \
	TAKE_SLOT() \
	// return gclinkptr(uintptr(result)*s.elemsize + s.base()) \
	IMULQ	mspan_elemsize(R8), R12 \
	ADDQ	mspan_startAddr(R8), R12

// nextFreeFast's bookkeeping once slot `result` (R12, bit theBit in R10) is
// free: allocCache (R9) shifted past it, freeindex = freeidx (R11),
// allocCount++. Leaves result zero-extended in R12.
#define TAKE_SLOT() \
	// s.allocCache >>= uint(theBit + 1), which is 0 when theBit+1 == 64 \
	INCQ	R10 \
	MOVQ	R10, CX \
	SHRQ	CX, R9 \
	CMPQ	CX, $64 \
	SBBQ	R10, R10 \
	ANDQ	R10, R9 \
	MOVQ	R9, mspan_allocCache(R8) \
	// s.freeindex = freeidx \
	MOVW	R11, mspan_freeindex(R8) \
	// s.allocCount++ \
	INCW	mspan_allocCount(R8) \
	MOVWLZX	R12, R12

// A slot from span (R8) of class spc (BX) of mcache c (SI): nextFreeFast, else
// v, span, checkGCTrigger = c.nextFree(spc). Leaves the span and the object
// in R8 and R12 and in the frame.
#define ALLOC_SLOT(slow, fast, gotobj) \
	NEXT_FREE_FAST(slow, fast) \
	NEXT_FREE_IF_SLOW(slow, gotobj)

// After a nextFreeFast that left the object in R12 (or jumped to `slow`):
// v, span, checkGCTrigger = c.nextFree(spc) with c in SI and spc in BX; the
// span and the object then in R8, R12 and the frame.
#define NEXT_FREE_IF_SLOW(slow, gotobj) \
	JMP	gotobj \
slow: \
	// v, span, checkGCTrigger = c.nextFree(spc) \
	MOVQ	SI, AX \
	CALL	runtime.(*mcache).nextFree(SB) \
	MOVQ	AX, R12 \
	MOVQ	BX, R8 \
gotobj: \
	MOVQ	R8, 0x20(SP) \
	MOVQ	R12, 0x40(SP)

// if span.needzero != 0 { memclrNoHeapPointers(x, size) }, with the span in
// R8, x in R12 and the byte count at n; both registers survive.
#define CLEAR_IF_NEEDZERO(n, zeroed) \
	// if span.needzero != 0 \
	CMPB	mspan_needzero(R8), $0 \
	JEQ	zeroed \
	// memclrNoHeapPointers(x, size) \
	MOVQ	R12, AX \
	MOVQ	n, BX \
	CALL	runtime·memclrNoHeapPointers(SB) \
	MOVQ	0x20(SP), R8 \
	MOVQ	0x40(SP), R12 \
zeroed:

// publicationBarrier, then allocate black or publish freeIndexForScan, then
// charge the profiling sample, with the frame's span, c, size (the slot size),
// mp and x filled in. The gcTrigger test after a refill is not modelled (no GC
// cycle yet).
#define MALLOC_PUBLISH() \
	// publicationBarrier() \
	CALL	runtime·publicationBarrier(SB) \
	// if writeBarrier.enabled \
	CMPB	runtime·writeBarrier(SB), $0 \
	JNE	black \
	// span.freeIndexForScan = span.freeindex \
	MOVQ	0x20(SP), DX \
	MOVWLZX	mspan_freeindex(DX), SI \
	MOVW	SI, mspan_freeIndexForScan(DX) \
	JMP	sample \
black: \
	// gcmarknewobject(span, uintptr(x)): allocate black while the GC marks \
	// (asm/gcmarknewobject.s) \
	MOVQ	0x20(SP), AX \
	MOVQ	0x40(SP), BX \
	CALL	runtime·gcmarknewobject(SB) \
sample: \
	// c.nextSample -= int64(size) \
	MOVQ	0x28(SP), DX \
	MOVQ	0x30(SP), BX \
	SUBQ	BX, mcache_nextSample(DX) \
	// if c.nextSample < 0 || MemProfileRate != c.memProfRate \
	JLT	profile \
	MOVQ	runtime·MemProfileRate(SB), SI \
	CMPQ	mcache_memProfRate(DX), SI \
	JEQ	sampled \
profile: \
	// profilealloc(mp, x, size) \
	MOVQ	0x38(SP), AX \
	MOVQ	0x40(SP), BX \
	MOVQ	0x30(SP), CX \
	CALL	runtime·profilealloc(SB) \
sampled:

// releasem(mp) with mp in DX: mp.locks--, and a pending preemption request
// re-arms the stack guard.
#define RELEASEM(done) \
	// releasem(mp): mp.locks-- \
	DECL	m_locks(DX) \
	// if mp.locks == 0 && gp.preempt { gp.stackguard0 = stackPreempt } \
	JNE	done \
	CMPB	g_preempt(R14), $0 \
	JEQ	done \
	MOVQ	$const_stackPreempt, g_stackguard0(R14) \
done:

// mp.mallocing = 0; releasem(mp).
#define MALLOC_RELEASE(done) \
	// mp.mallocing = 0 \
	MOVQ	0x38(SP), DX \
	MOVL	$0, m_mallocing(DX) \
	RELEASEM(done)

// return x, size (from the frame).
#define MALLOC_RETURN() \
	// return x, size \
	MOVQ	0x40(SP), AX \
	MOVQ	0x30(SP), BX \
	ADDQ	$0x48, SP \
	POPQ	BP \
	RET

// The common end of the small paths.
#define MALLOC_PUBLISH_AND_RETURN(done) \
	MALLOC_PUBLISH() \
	MALLOC_RELEASE(done) \
	MALLOC_RETURN()

// The stack-growth exit of a mallocgc* function: as the compiler does, spill
// the register arguments to their slots above the return address (the
// caller reserves them), call morestack, reload them and start over.
#define MALLOC_MORESTACK(fn) \
morestack: \
	MOVQ	AX, 8(SP) \
	MOVQ	BX, 16(SP) \
	MOVQ	CX, 24(SP) \
	CALL	runtime·morestack_noctxt(SB) \
	MOVQ	8(SP), AX \
	MOVQ	16(SP), BX \
	MOVQ	24(SP), CX \
	JMP	fn

// mallocgcTiny's first try: the object into the current 16-byte block at the
// offset aligned for its size; on success x is in the frame and the path falls
// through, else it jumps to newblock. c in SI, size at 0x10(SP).
#define TINY_INTO_CURRENT_BLOCK(newblock) \
	// off := c.tinyoffset \
	MOVQ	mcache_tinyoffset(SI), DX \
	MOVQ	0x10(SP), AX \
	// if size&7 == 0 { off = alignUp(off, 8) } \
	TESTQ	$7, AX \
	JNE	not8 \
	ADDQ	$7, DX \
	ANDQ	$~7, DX \
	JMP	aligned \
not8: \
	// else if size&3 == 0 { off = alignUp(off, 4) } \
	TESTQ	$3, AX \
	JNE	not4 \
	ADDQ	$3, DX \
	ANDQ	$~3, DX \
	JMP	aligned \
not4: \
	// else if size&1 == 0 { off = alignUp(off, 2) } \
	TESTQ	$1, AX \
	JNE	aligned \
	INCQ	DX \
	ANDQ	$~1, DX \
aligned: \
	// if off+size <= maxTinySize && c.tiny != 0: it fits in the current block \
	LEAQ	(DX)(AX*1), R8 \
	CMPQ	R8, $const_maxTinySize \
	JHI	newblock \
	MOVQ	mcache_tiny(SI), R9 \
	TESTQ	R9, R9 \
	JEQ	newblock \
	// x := unsafe.Pointer(c.tiny + off) \
	ADDQ	DX, R9 \
	MOVQ	R9, 0x40(SP) \
	// c.tinyoffset = off + size \
	MOVQ	R8, mcache_tinyoffset(SI) \
	// c.tinyAllocs++ \
	INCQ	mcache_tinyAllocs(SI)

// A new tiny block (x in R12) becomes the current one only if the object
// leaves it more room than the current block has.
#define TINY_KEEP_ROOMIER_BLOCK() \
	// if size < c.tinyoffset || c.tiny == 0 { c.tiny = uintptr(x); c.tinyoffset = size } \
	MOVQ	0x28(SP), SI \
	MOVQ	0x10(SP), AX \
	CMPQ	AX, mcache_tinyoffset(SI) \
	JCS	replace \
	CMPQ	mcache_tiny(SI), $0 \
	JNE	kept \
replace: \
	MOVQ	R12, mcache_tiny(SI) \
	MOVQ	AX, mcache_tinyoffset(SI) \
kept:
