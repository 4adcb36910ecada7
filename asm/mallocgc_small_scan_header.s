// runtime/malloc.go: mallocgcSmallScanHeader, objects with pointers from 513
// bytes to 32 KiB - 8. The slot starts with an 8-byte malloc header holding
// the type (mbitmap.go: heapSetTypeSmallHeader); the object follows it, and
// the size class is picked with the header included.
//
// Handwritten: the commented teaching version that `gomemu step --annotated`
// walks (Machine(handwritten=True)) and one side of tests/test_differential.py;
// the default Machine() runs go1.27.3's compiled code instead (docs/machine.md).
//
// ABIInternal: AX = size, BX = typ. Returns AX = x (after the header),
// BX = the slot size. Frame: the small paths' frame, plus 0x10(SP) the
// requested size, 0x18 typ.
#include "malloc_amd64.h"

TEXT runtime·mallocgcSmallScanHeader(SB), 0, $0x48-0
	MALLOC_PROLOGUE(morestack)
	MOVQ	AX, 0x10(SP)
	MOVQ	BX, 0x18(SP)
	MALLOC_ENTER(nop, havec)
	// size += gc.MallocHeaderSize
	MOVQ	0x10(SP), AX
	ADDQ	$const_mallocHeaderSize, AX
	SIZE_TO_CLASS(class128, haveclass)
	// spc := makeSpanClass(sizeclass, false)
	LEAL	(DI)(DI*1), BX
	// size = uintptr(gc.SizeClassToSize[sizeclass])
	MOVWLZX	internal∕runtime∕gc·SizeClassToSize(SB)(DI*2), DI
	MOVQ	DI, 0x30(SP)
	// span := c.alloc[spc]
	MOVQ	mcache_alloc(SI)(BX*8), R8
	ALLOC_SLOT(slow, fast, gotobj)
	CLEAR_IF_NEEDZERO(0x30(SP), zeroed)
	// header := (**_type)(x); *header = typ
	MOVQ	0x18(SP), BX
	MOVQ	BX, (R12)
	// x = add(x, gc.MallocHeaderSize)
	ADDQ	$const_mallocHeaderSize, R12
	MOVQ	R12, 0x40(SP)
	// c.scanAlloc += span.elemsize (heapSetTypeSmallHeader's result)
	MOVQ	0x28(SP), SI
	MOVQ	mspan_elemsize(R8), DX
	ADDQ	DX, mcache_scanAlloc(SI)
	MALLOC_PUBLISH_AND_RETURN(done)
	MALLOC_MORESTACK(runtime·mallocgcSmallScanHeader(SB))
