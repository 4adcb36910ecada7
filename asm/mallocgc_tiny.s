// runtime/malloc.go: mallocgcTiny, noscan objects under 16 bytes. Several
// share one 16-byte block from the tiny size class (span class 5): each is
// placed at the block's offset aligned to its size (8, 4 or 2), and when it
// does not fit, a fresh block is taken, which replaces the current one only
// if it has more room left (the rule that keeps blocks full).
//
// Handwritten: the commented teaching version that `gomemu step --annotated`
// walks (Machine(handwritten=True)) and one side of tests/test_differential.py;
// the default Machine() runs go1.27.3's compiled code instead (docs/machine.md).
//
// ABIInternal: AX = size, BX = typ. Returns AX = x and BX = the slot size
// charged: 0 when the object went into the current block, else 16.
// Frame: the small paths' frame, plus 0x10(SP) the requested size.
#include "malloc_amd64.h"

TEXT runtime·mallocgcTiny(SB), 0, $0x48-0
	MALLOC_PROLOGUE(morestack)
	MOVQ	AX, 0x10(SP)
	MALLOC_ENTER(nop, havec)
	TINY_INTO_CURRENT_BLOCK(newblock)
	// return x, 0
	MOVQ	$0, 0x30(SP)
	MALLOC_RELEASE(combined)
	MALLOC_RETURN()
newblock:
	// span := c.alloc[tinySpanClass]
	MOVQ	(mcache_alloc+const_tinySpanClass*8)(SI), R8
	MOVL	$const_tinySpanClass, BX
	ALLOC_SLOT(slow, fast, gotblock)
	// (*[2]uint64)(x)[0] = 0; (*[2]uint64)(x)[1] = 0: a new block is always zeroed
	MOVOU	X15, (R12)
	MOVQ	mspan_elemsize(R8), DX
	MOVQ	DX, 0x30(SP)
	TINY_KEEP_ROOMIER_BLOCK()
	MALLOC_PUBLISH_AND_RETURN(done)
	MALLOC_MORESTACK(runtime·mallocgcTiny(SB))
