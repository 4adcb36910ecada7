// runtime/malloc.go: mallocgcTiny, noscan objects under 16 bytes. Several
// share one 16-byte block from the tiny size class (span class 5): each is
// placed at the block's offset aligned to its size (8, 4 or 2), and when it
// does not fit, a fresh block is taken, which replaces the current one only
// if it has more room left (the rule that keeps blocks full).
//
// ABIInternal: AX = size, BX = typ. Returns AX = x and BX = the slot size
// charged: 0 when the object went into the current block, else 16.
// Frame: the small paths' frame, plus 0x10(SP) the requested size.
#include "malloc_amd64.h"

TEXT runtime·mallocgcTiny(SB), 0, $0x48-0
	MALLOC_PROLOGUE(morestack)
	MOVQ	AX, 0x10(SP)
	MALLOC_ENTER(nop, havec)
	// off := c.tinyoffset
	MOVQ	mcache_tinyoffset(SI), DX
	MOVQ	0x10(SP), AX
	// if size&7 == 0 { off = alignUp(off, 8) }
	TESTQ	$7, AX
	JNE	not8
	ADDQ	$7, DX
	ANDQ	$~7, DX
	JMP	aligned
not8:
	// else if size&3 == 0 { off = alignUp(off, 4) }
	TESTQ	$3, AX
	JNE	not4
	ADDQ	$3, DX
	ANDQ	$~3, DX
	JMP	aligned
not4:
	// else if size&1 == 0 { off = alignUp(off, 2) }
	TESTQ	$1, AX
	JNE	aligned
	INCQ	DX
	ANDQ	$~1, DX
aligned:
	// if off+size <= maxTinySize && c.tiny != 0: it fits in the current block
	LEAQ	(DX)(AX*1), R8
	CMPQ	R8, $const_maxTinySize
	JHI	newblock
	MOVQ	mcache_tiny(SI), R9
	TESTQ	R9, R9
	JEQ	newblock
	// x := unsafe.Pointer(c.tiny + off)
	ADDQ	DX, R9
	MOVQ	R9, 0x40(SP)
	// c.tinyoffset = off + size
	MOVQ	R8, mcache_tinyoffset(SI)
	// c.tinyAllocs++
	INCQ	mcache_tinyAllocs(SI)
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
	// if size < c.tinyoffset || c.tiny == 0 { c.tiny = uintptr(x); c.tinyoffset = size }
	MOVQ	0x28(SP), SI
	MOVQ	0x10(SP), AX
	CMPQ	AX, mcache_tinyoffset(SI)
	JCS	replace
	CMPQ	mcache_tiny(SI), $0
	JNE	kept
replace:
	MOVQ	R12, mcache_tiny(SI)
	MOVQ	AX, mcache_tinyoffset(SI)
kept:
	MALLOC_PUBLISH_AND_RETURN(done)
	MALLOC_MORESTACK(runtime·mallocgcTiny(SB))
