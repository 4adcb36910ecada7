// runtime/malloc.go: mallocgcLarge, objects over 32 KiB - 8 bytes: a span of
// their own, of whole pages, from mheap (mcache.go: (*mcache).allocLarge, a
// call-out to Python). The span is cleared after the allocation is
// published, in 256 KiB chunks, only if its memory may be dirty.
//
// Handwritten: the commented teaching version that `gomemu step --annotated`
// walks (Machine(handwritten=True)) and one side of tests/test_differential.py;
// the default Machine() runs go1.27.3's compiled code instead (docs/machine.md).
//
// ABIInternal: AX = size, BX = typ, CX = needzero. Returns AX = x,
// BX = span.elemsize (whole pages). Frame: the small paths' frame, plus
// 8(SP) typ, 0x10 the requested size.
#include "malloc_amd64.h"

TEXT runtime·mallocgcLarge(SB), 0, $0x48-0
	MALLOC_PROLOGUE(morestack)
	MOVQ	AX, 0x10(SP)
	MOVQ	BX, 8(SP)
	MOVB	CX, 0x1f(SP)
	MALLOC_ENTER(nop, havec)
	// span := c.allocLarge(size, typ == nil || !typ.Pointers())
	MOVL	$1, CX
	MOVQ	8(SP), BX
	TESTQ	BX, BX
	JEQ	noscan
	CMPQ	_type_PtrBytes(BX), $0
	JEQ	noscan
	XORL	CX, CX
noscan:
	MOVQ	SI, AX
	MOVQ	0x10(SP), BX
	CALL	runtime.(*mcache).allocLarge(SB)
	MOVQ	AX, 0x20(SP)
	// span.freeindex = 1; span.allocCount = 1
	MOVW	$1, mspan_freeindex(AX)
	MOVW	$1, mspan_allocCount(AX)
	// span.largeType = nil: the GC must not look at it yet
	MOVQ	$0, mspan_largeType(AX)
	// size = span.elemsize
	MOVQ	mspan_elemsize(AX), DX
	MOVQ	DX, 0x30(SP)
	// x := unsafe.Pointer(span.base())
	MOVQ	mspan_startAddr(AX), DX
	MOVQ	DX, 0x40(SP)
	MALLOC_PUBLISH()
	MALLOC_RELEASE(released)
	// if needzero && span.needzero != 0 { memclrNoHeapPointersChunked(size, x) }
	CMPB	0x1f(SP), $0
	JEQ	zeroed
	MOVQ	0x20(SP), R8
	CMPB	mspan_needzero(R8), $0
	JEQ	zeroed
	MOVQ	0x30(SP), AX
	MOVQ	0x40(SP), BX
	CALL	runtime·memclrNoHeapPointersChunked(SB)
zeroed:
	// mp = acquirem()
	MOVQ	g_m(R14), DX
	INCL	m_locks(DX)
	MOVQ	DX, 0x38(SP)
	// if typ != nil && typ.Pointers()
	MOVQ	8(SP), BX
	TESTQ	BX, BX
	JEQ	untyped
	CMPQ	_type_PtrBytes(BX), $0
	JEQ	untyped
	// heapSetTypeLarge: span.largeType = typ
	MOVQ	0x20(SP), R8
	MOVQ	BX, mspan_largeType(R8)
	// getMCache(mp).scanAlloc += span.elemsize
	MOVQ	m_p(DX), SI
	TESTQ	SI, SI
	JEQ	nop2
	MOVQ	p_mcache(SI), SI
	JMP	havec2
nop2:
	MOVQ	runtime·mcache0(SB), SI
havec2:
	MOVQ	mspan_elemsize(R8), CX
	ADDQ	CX, mcache_scanAlloc(SI)
untyped:
	// publicationBarrier()
	CALL	runtime·publicationBarrier(SB)
	// releasem(mp)
	MOVQ	0x38(SP), DX
	RELEASEM(done)
	MALLOC_RETURN()
	MALLOC_MORESTACK(runtime·mallocgcLarge(SB))
