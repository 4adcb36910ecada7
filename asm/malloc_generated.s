// runtime/malloc_generated.go: the size-specialised copies of the small
// mallocgc paths that Go 1.27 generates (GOEXPERIMENT sizespecializedmalloc,
// on by default; _mkmalloc/mkmalloc.go) and mallocgc reaches through
// mallocNoScanTable / mallocScanTable for sizes below 81 bytes, plus the slow
// paths they call. Assembled only into Machine(size_specialized=True).
//
// Handwritten: the commented teaching version that `gomemu step --annotated`
// walks (Machine(handwritten=True)) and one side of tests/test_differential.py;
// the default Machine() runs go1.27.3's compiled code instead (docs/machine.md).
//
// Each copy starts with forceSlowPath := debug.malloc || gcBlackenEnabled != 0
// (the runtime/secret term is constant false: GOEXPERIMENT runtimesecret is off
// by default). Its fast body is the generic path's with the class's span
// class, element size (and for tiny, nelems) folded in as constants; that is
// what makes it shorter. The fast bodies publish freeIndexForScan without the
// writeBarrier test: marking implies gcBlackenEnabled, which took the slow path.
//
// ABIInternal: AX = size, BX = typ, CX = needzero. Returns AX = x only.
// Frame: the small paths' ($0x48, asm/malloc_amd64.h), plus 0x10(SP) size and
// 0x18 typ (tiny, scan), 8 scanSize (scan).
#include "malloc_amd64.h"

#ifdef const_sizeSpecializedMalloc

#define SC_FORCE_SLOW_PATH(slowpath) \
	// forceSlowPath := debug.malloc || gcBlackenEnabled != 0 \
	CMPB	runtime·debug.malloc(SB), $0 \
	JNE	slowpath \
	CMPL	runtime·gcBlackenEnabled(SB), $0 \
	JNE	slowpath

// The generated nextFreeFast, span in R8: the test is allocCache != 0 rather
// than theBit < 64, and the element size is a constant (for the tiny class,
// nelems too: NELEMS_LOAD loads it, or is empty). Object in R12, or a jump to
// `slow`. Clobbers CX, R9-R11, R13.
#define SC_NEXT_FREE_FAST(slow, fast, ELEMSIZE, NELEMS_LOAD, NELEMS) \
	// if span.allocCache != 0 \
	MOVQ	mspan_allocCache(R8), R9 \
	TESTQ	R9, R9 \
	JEQ	slow \
	// theBit := sys.TrailingZeros64(span.allocCache) \
	TZCNTQ	R9, R10 \
	// result := span.freeindex + uint16(theBit) \
	MOVWLZX	mspan_freeindex(R8), R11 \
	LEAL	(R10)(R11*1), R12 \
	// if result < span.nelems \
	NELEMS_LOAD \
	CMPW	R12, NELEMS \
	JCC	slow \
	// freeidx := result + 1 \
	LEAL	1(R12), R11 \
	// if !(freeidx%64 == 0 && freeidx != span.nelems) \
	TESTW	$63, R11 \
	JNE	fast \
	CMPW	R11, NELEMS \
	JNE	slow \
fast: \
	TAKE_SLOT() \
	// nextFreeFastResult = gclinkptr(uintptr(result)*elemsize + span.base()) \
	IMUL3Q	$ELEMSIZE, R12, R12 \
	ADDQ	mspan_startAddr(R8), R12

#define SC_LOAD_NELEMS \
	MOVWLZX	mspan_nelems(R8), R13

#define SC_NO_LOAD

// publicationBarrier; freeIndexForScan (no writeBarrier test, see the top);
// the profiling sample, charged the constant element size.
#define SC_PUBLISH(elemsize) \
	// publicationBarrier() \
	CALL	runtime·publicationBarrier(SB) \
	// span.freeIndexForScan = span.freeindex \
	MOVQ	0x20(SP), DX \
	MOVWLZX	mspan_freeindex(DX), SI \
	MOVW	SI, mspan_freeIndexForScan(DX) \
	// c.nextSample -= int64(elemsize) \
	MOVQ	0x28(SP), DX \
	SUBQ	$elemsize, mcache_nextSample(DX) \
	// if c.nextSample < 0 || MemProfileRate != c.memProfRate \
	JLT	profile \
	MOVQ	runtime·MemProfileRate(SB), SI \
	CMPQ	mcache_memProfRate(DX), SI \
	JEQ	sampled \
profile: \
	// profilealloc(mp, x, elemsize) \
	MOVQ	0x38(SP), AX \
	MOVQ	0x40(SP), BX \
	MOVL	$elemsize, CX \
	CALL	runtime·profilealloc(SB) \
sampled:

#define SC_RETURN() \
	// return x \
	MOVQ	0x40(SP), AX \
	ADDQ	$0x48, SP \
	POPQ	BP \
	RET

// forceSlowPath: releasem(mp), then return the slow path's result; size,
// typ and needzero are still in AX, BX, CX.
#define SC_SLOW_EXIT(slowfn) \
	// releasem(mp) \
	RELEASEM(released) \
	CALL	slowfn(SB) \
	ADDQ	$0x48, SP \
	POPQ	BP \
	RET

// malloc_generated.go: mallocgcSmallNoScanSC<cls>.
#define SMALL_NOSCAN_SC(routine, cls, spc, elemsize) \
TEXT routine(SB), 0, $0x48-0 \
	MALLOC_PROLOGUE(morestack) \
	MOVB	CX, 0x1f(SP) \
	ACQUIREM() \
	SC_FORCE_SLOW_PATH(slowpath) \
	GET_MCACHE(nop, havec) \
	// span := c.alloc[spc]: spc = makeSpanClass(cls, true) \
	MOVQ	(mcache_alloc+spc*8)(SI), R8 \
	MOVL	$spc, BX \
	SC_NEXT_FREE_FAST(slow, fast, elemsize, SC_LOAD_NELEMS, R13) \
	NEXT_FREE_IF_SLOW(slow, gotobj) \
	// if needzero && span.needzero != 0 { memclrNoHeapPointers(x, elemsize) } \
	CMPB	0x1f(SP), $0 \
	JEQ	zeroed \
	CLEAR_IF_NEEDZERO($elemsize, zeroed) \
	SC_PUBLISH(elemsize) \
	MALLOC_RELEASE(done) \
	SC_RETURN() \
slowpath: \
	// return mallocgcSmallNoScanSlowPath(size, typ, needzero, spc, elemsize) \
	MOVL	$spc, DI \
	MOVL	$elemsize, SI \
	SC_SLOW_EXIT(runtime·mallocgcSmallNoScanSlowPath) \
	MALLOC_MORESTACK(routine(SB))

// The heap-bits write of the scan copies (writeHeapBitsSmall inlined, as in the
// generic path) with elemsize, bits = elemsize/8 and its mask constant. A class
// whose bits are not a power of two tests for straddling two bitmap words
// (`test`, `write`: SC_STRADDLE_TEST/SC_STRADDLE_WRITE, or SC_NOTHING).
#define SC_HEAP_BITS(nbits, mask, test, write) \
	// src0 := readUintptr(getGCMask(typ)) \
	MOVQ	0x18(SP), BX \
	MOVQ	_type_GCData(BX), R9 \
	MOVQ	(R9), R9 \
	MOVQ	0x10(SP), DI \
	// if typ.Size_ == goarch.PtrSize \
	CMPQ	_type_Size_(BX), $8 \
	JNE	repeat \
	// src = (1 << (dataSize / goarch.PtrSize)) - 1; scanSize = dataSize \
	MOVQ	DI, CX \
	SHRQ	$3, CX \
	MOVL	$1, R9 \
	SHLQ	CX, R9 \
	DECQ	R9 \
	MOVQ	DI, 8(SP) \
	JMP	place \
repeat: \
	// scanSize = typ.PtrBytes \
	MOVQ	_type_PtrBytes(BX), R11 \
	MOVQ	_type_Size_(BX), R10 \
	MOVQ	R9, R13 \
	MOVQ	R10, DX \
again: \
	// for i := typ.Size_; i < dataSize; i += typ.Size_ \
	CMPQ	DX, DI \
	JCC	repeated \
	// src |= src0 << (i / goarch.PtrSize) \
	MOVQ	DX, CX \
	SHRQ	$3, CX \
	MOVQ	R13, AX \
	SHLQ	CX, AX \
	ORQ	AX, R9 \
	// scanSize += typ.Size_ \
	ADDQ	R10, R11 \
	ADDQ	R10, DX \
	JMP	again \
repeated: \
	MOVQ	R11, 8(SP) \
place: \
	// dstBase := spanHeapBitsRange(span.base(), pageSize, elemsize): elemsize >= 16, so below the inline mark bits \
	MOVQ	mspan_startAddr(R8), DX \
	LEAQ	(const_pageSize-const_pageSize/64-spanInlineMarkBits__size)(DX), R10 \
	// o := (x - span.base()) / goarch.PtrSize; i := o / ptrBits; j := o % ptrBits \
	MOVQ	R12, AX \
	SUBQ	DX, AX \
	SHRQ	$3, AX \
	MOVQ	AX, DX \
	SHRQ	$6, DX \
	ANDQ	$63, AX \
	LEAQ	(R10)(DX*8), R10 \
	test(nbits) \
	// *dst = (*dst)&^(((1<<bits)-1)<<j) | (src << j) \
	MOVQ	$mask, DX \
	MOVQ	AX, CX \
	SHLQ	CX, DX \
	SHLQ	CX, R9 \
	NOTQ	DX \
	ANDQ	(R10), DX \
	ORQ	R9, DX \
	MOVQ	DX, (R10) \
	write(nbits) \
written: \
	// c.scanAlloc += scanSize \
	MOVQ	0x28(SP), SI \
	MOVQ	8(SP), DX \
	ADDQ	DX, mcache_scanAlloc(SI)

#define SC_NOTHING(nbits)

#define SC_STRADDLE_TEST(nbits) \
	// if !bitsIsPowerOfTwo && j+bits > ptrBits: the object's bits straddle two words \
	LEAQ	nbits(AX), CX \
	CMPQ	CX, $64 \
	JHI	straddle

#define SC_STRADDLE_WRITE(nbits) \
	JMP	written \
straddle: \
	// bits0 := ptrBits - j; bits1 := bits - bits0 \
	MOVL	$64, DX \
	SUBQ	AX, DX \
	MOVL	$nbits, R13 \
	SUBQ	DX, R13 \
	// *dst0 = (*dst0)&(^uintptr(0)>>bits0) | (src << j) \
	MOVQ	DX, CX \
	MOVQ	$-1, R11 \
	SHRQ	CX, R11 \
	ANDQ	(R10), R11 \
	MOVQ	AX, CX \
	MOVQ	R9, DI \
	SHLQ	CX, DI \
	ORQ	DI, R11 \
	MOVQ	R11, (R10) \
	// *dst1 = (*dst1)&^((1<<bits1)-1) | (src >> bits0) \
	MOVQ	R13, CX \
	MOVL	$1, R11 \
	SHLQ	CX, R11 \
	DECQ	R11 \
	NOTQ	R11 \
	ANDQ	8(R10), R11 \
	MOVQ	DX, CX \
	SHRQ	CX, R9 \
	ORQ	R9, R11 \
	MOVQ	R11, 8(R10)

// The part of mallocgcSmallScanNoHeaderSC<cls> before the heap bits.
#define SMALL_SCAN_SC_ENTER(routine, spc, elemsize) \
TEXT routine(SB), 0, $0x48-0 \
	MALLOC_PROLOGUE(morestack) \
	MOVQ	AX, 0x10(SP) \
	MOVQ	BX, 0x18(SP) \
	ACQUIREM() \
	SC_FORCE_SLOW_PATH(slowpath) \
	GET_MCACHE(nop, havec) \
	// span := c.alloc[spc]: spc = makeSpanClass(sizeclass, false) \
	MOVQ	(mcache_alloc+spc*8)(SI), R8 \
	MOVL	$spc, BX \
	SC_NEXT_FREE_FAST(slow, fast, elemsize, SC_LOAD_NELEMS, R13) \
	NEXT_FREE_IF_SLOW(slow, gotobj) \
	// if span.needzero != 0 { memclrNoHeapPointers(x, elemsize) } \
	CLEAR_IF_NEEDZERO($elemsize, zeroed)

#define SMALL_SCAN_SC_LEAVE(routine, spc, elemsize) \
	SC_PUBLISH(elemsize) \
	MALLOC_RELEASE(done) \
	SC_RETURN() \
slowpath: \
	// return mallocgcSmallScanSlowPath(size, typ, needzero, spc, elemsize) \
	MOVL	$spc, DI \
	MOVL	$elemsize, SI \
	SC_SLOW_EXIT(runtime·mallocgcSmallScanSlowPath) \
	MALLOC_MORESTACK(routine(SB))

// malloc_generated.go: mallocgcSmallScanNoHeaderSC<cls>; for 8-byte slots
// (elemsize == 8, SC1) the heap bits were set by initHeapBits.
#define SMALL_SCAN_SC(routine, spc, elemsize, nbits, mask, test, write) \
	SMALL_SCAN_SC_ENTER(routine, spc, elemsize) \
	SC_HEAP_BITS(nbits, mask, test, write) \
	SMALL_SCAN_SC_LEAVE(routine, spc, elemsize)

SMALL_SCAN_SC_ENTER(runtime·mallocgcSmallScanNoHeaderSC1, 2, 8)
	// if goarch.PtrSize == 8 && elemsize == 8 { c.scanAlloc += 8 }
	MOVQ	0x28(SP), SI
	ADDQ	$8, mcache_scanAlloc(SI)
	SMALL_SCAN_SC_LEAVE(runtime·mallocgcSmallScanNoHeaderSC1, 2, 8)
SMALL_SCAN_SC(runtime·mallocgcSmallScanNoHeaderSC2, 4, 16, 2, 0x3, SC_NOTHING, SC_NOTHING)
SMALL_SCAN_SC(runtime·mallocgcSmallScanNoHeaderSC3, 6, 24, 3, 0x7, SC_STRADDLE_TEST, SC_STRADDLE_WRITE)
SMALL_SCAN_SC(runtime·mallocgcSmallScanNoHeaderSC4, 8, 32, 4, 0xf, SC_NOTHING, SC_NOTHING)
SMALL_SCAN_SC(runtime·mallocgcSmallScanNoHeaderSC5, 10, 48, 6, 0x3f, SC_STRADDLE_TEST, SC_STRADDLE_WRITE)
SMALL_SCAN_SC(runtime·mallocgcSmallScanNoHeaderSC6, 12, 64, 8, 0xff, SC_NOTHING, SC_NOTHING)
SMALL_SCAN_SC(runtime·mallocgcSmallScanNoHeaderSC7, 14, 80, 10, 0x3ff, SC_STRADDLE_TEST, SC_STRADDLE_WRITE)

SMALL_NOSCAN_SC(runtime·mallocgcSmallNoScanSC2, 2, 5, 16)
SMALL_NOSCAN_SC(runtime·mallocgcSmallNoScanSC3, 3, 7, 24)
SMALL_NOSCAN_SC(runtime·mallocgcSmallNoScanSC4, 4, 9, 32)
SMALL_NOSCAN_SC(runtime·mallocgcSmallNoScanSC5, 5, 11, 48)
SMALL_NOSCAN_SC(runtime·mallocgcSmallNoScanSC6, 6, 13, 64)
SMALL_NOSCAN_SC(runtime·mallocgcSmallNoScanSC7, 7, 15, 80)

// malloc_generated.go: mallocgcTinySC2, mallocgcTiny with the block's
// element size and nelems folded in.
TEXT runtime·mallocgcTinySC2(SB), 0, $0x48-0
	MALLOC_PROLOGUE(morestack)
	MOVQ	AX, 0x10(SP)
	ACQUIREM()
	SC_FORCE_SLOW_PATH(slowpath)
	GET_MCACHE(nop, havec)
	TINY_INTO_CURRENT_BLOCK(newblock)
	MALLOC_RELEASE(combined)
	SC_RETURN()
newblock:
	// span := c.alloc[tinySpanClass]
	MOVQ	(mcache_alloc+const_tinySpanClass*8)(SI), R8
	MOVL	$const_tinySpanClass, BX
	SC_NEXT_FREE_FAST(slow, fast, 16, SC_NO_LOAD, $((const_pageSize-spanInlineMarkBits__size)/16))
	NEXT_FREE_IF_SLOW(slow, gotblock)
	// (*[2]uint64)(x)[0] = 0; (*[2]uint64)(x)[1] = 0: both words in one 16-byte store
	MOVOU	X15, (R12)
	TINY_KEEP_ROOMIER_BLOCK()
	SC_PUBLISH(16)
	MALLOC_RELEASE(done)
	SC_RETURN()
slowpath:
	// return mallocgcTinySlowPath(size, typ, needzero)
	SC_SLOW_EXIT(runtime·mallocgcTinySlowPath)
	MALLOC_MORESTACK(runtime·mallocgcTinySC2(SB))

// The slow paths: mallocgc's generic body for one path (assist credit, the
// path, the fragmentation charge, postMallocgcDebug), returning x only. The
// allocation itself reuses the generic routine, whose body is the same as the
// slow path's: mallocgcSmallNoscan and mallocgcSmallScanNoHeader recompute from
// size the span class and element size Go passes in (DI, SI), and get the same
// values. preMallocgcDebug is not modelled (as in mallocgc). Frame as
// mallocgc's: 0x18 size, 0x20 typ, 0x28 needzero, 0x30 x; a stack growth keeps
// AX, BX, CX (the body does not read DI, SI).
#define SLOW_PATH(routine, body) \
TEXT routine(SB), 0, $0x38-0 \
	CMPQ	SP, g_stackguard0(R14) \
	JLS	morestack \
	PUSHQ	BP \
	MOVQ	SP, BP \
	SUBQ	$0x38, SP \
	MOVQ	AX, 0x18(SP) \
	MOVQ	BX, 0x20(SP) \
	MOVB	CX, 0x28(SP) \
	// if gcBlackenEnabled != 0: charge getg().m.curg (or getg()) int64(size) \
	CMPL	runtime·gcBlackenEnabled(SB), $0 \
	JEQ	assisted \
	MOVQ	R14, DX \
	MOVQ	g_m(R14), SI \
	MOVQ	m_curg(SI), SI \
	TESTQ	SI, SI \
	JEQ	charge \
	MOVQ	SI, DX \
charge: \
	// assistG.gcAssistBytes -= int64(size); if < 0 { gcAssistAlloc(assistG) } \
	SUBQ	AX, g_gcAssistBytes(DX) \
	JGE	assisted \
	MOVQ	DX, AX \
	CALL	runtime·gcAssistAlloc(SB) \
	MOVQ	0x18(SP), AX \
	MOVQ	0x20(SP), BX \
assisted: \
	MOVBLZX	0x28(SP), CX \
	CALL	body(SB) \
	MOVQ	AX, 0x30(SP) \
	// if gcBlackenEnabled != 0 && elemsize != 0: curg.gcAssistBytes -= int64(elemsize - size) \
	CMPL	runtime·gcBlackenEnabled(SB), $0 \
	JEQ	traced \
	TESTQ	BX, BX \
	JEQ	traced \
	MOVQ	g_m(R14), DX \
	MOVQ	m_curg(DX), DX \
	TESTQ	DX, DX \
	JEQ	traced \
	MOVQ	BX, SI \
	SUBQ	0x18(SP), SI \
	SUBQ	SI, g_gcAssistBytes(DX) \
traced: \
	// if debug.malloc { postMallocgcDebug(x, elemsize, typ) } (DI: the requested size, for the log) \
	CMPB	runtime·debug.malloc(SB), $0 \
	JEQ	out \
	MOVQ	0x30(SP), AX \
	MOVQ	0x20(SP), CX \
	MOVQ	0x18(SP), DI \
	CALL	runtime·postMallocgcDebug(SB) \
out: \
	// return x \
	MOVQ	0x30(SP), AX \
	ADDQ	$0x38, SP \
	POPQ	BP \
	RET \
	MALLOC_MORESTACK(routine(SB))

// malloc_generated.go: mallocgcTinySlowPath; mallocgcTiny's body (elemsize 0 or 16).
SLOW_PATH(runtime·mallocgcTinySlowPath, runtime·mallocgcTiny)
// malloc_generated.go: mallocgcSmallNoScanSlowPath; mallocgcSmallNoscan's body.
SLOW_PATH(runtime·mallocgcSmallNoScanSlowPath, runtime·mallocgcSmallNoscan)
// malloc_generated.go: mallocgcSmallScanSlowPath; mallocgcSmallScanNoHeader's body.
SLOW_PATH(runtime·mallocgcSmallScanSlowPath, runtime·mallocgcSmallScanNoHeader)

// malloc_stubs.go: mallocPanic, the tables' entry for sizes no copy serves
// (noscan 0..15, scan 0). Go panics; here it is a throw with Go's message.
TEXT runtime·mallocPanic(SB), 0, $0-0
	// panic("not defined for sizeclass")
	MOVL	$const_throw_mallocPanic, AX
	CALL	runtime·throw(SB)

#endif
