// runtime/malloc.go: mallocgcSmallNoscan, mallocgc's path for objects without
// pointers from 16 bytes to 32 KiB - 8 (smaller ones belong to the tiny allocator).
//
// Handwritten: the commented teaching version that `gomemu step --annotated`
// walks (Machine(handwritten=True)) and one side of tests/test_differential.py;
// the default Machine() runs go1.27.3's compiled code instead (docs/machine.md).
//
// ABIInternal: AX = size, BX = typ (unused on this path), CX = needzero.
// Returns AX = x, the object; BX = the size of its slot (the class size).
//
// Shaped after go1.27.3's compiled code (go tool objdump -s
// runtime.mallocgcSmallNoscan). Differences: TZCNT instead of GOAMD64=v1's
// BSF+CMOV (as v3 compiles it); the gcTrigger test after a refill is not
// modelled (there is no GC cycle yet).
#include "malloc_amd64.h"

TEXT runtime·mallocgcSmallNoscan(SB), 0, $0x48-0
	MALLOC_PROLOGUE(morestack)
	MOVB	CX, 0x1f(SP)
	MALLOC_ENTER(nop, lookup)
	SIZE_TO_CLASS(class128, haveclass)
	// spc := makeSpanClass(sizeclass, true)
	LEAL	1(DI)(DI*1), BX
	// size = uintptr(gc.SizeClassToSize[sizeclass])
	MOVWLZX	internal∕runtime∕gc·SizeClassToSize(SB)(DI*2), DI
	MOVQ	DI, 0x30(SP)
	// span := c.alloc[spc]
	MOVQ	mcache_alloc(SI)(BX*8), R8
	ALLOC_SLOT(slow, fast, gotobj)
	// if needzero && span.needzero != 0 { memclrNoHeapPointers(x, size) }
	CMPB	0x1f(SP), $0
	JEQ	zeroed
	CLEAR_IF_NEEDZERO(0x30(SP), zeroed)
	MALLOC_PUBLISH_AND_RETURN(done)
	MALLOC_MORESTACK(runtime·mallocgcSmallNoscan(SB))
