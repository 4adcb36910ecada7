// runtime/malloc.go: mallocgcSmallScanNoHeader, objects with pointers of at
// most 512 bytes (heapBitsInSpan). Their pointer bits go into the span's heap
// bitmap at the end of its page, one bit per word (mbitmap.go:
// heapSetTypeNoHeader -> (*mspan).writeHeapBitsSmall, inlined here).
//
// Handwritten: the commented teaching version that `gomemu step --annotated`
// walks (Machine(handwritten=True)) and one side of tests/test_differential.py;
// the default Machine() runs go1.27.3's compiled code instead (docs/machine.md).
//
// ABIInternal: AX = size, BX = typ. Returns AX = x, BX = the slot size.
// Frame: the small paths' frame, plus 0(SP) sizeclass, 8 scanSize,
// 0x10 dataSize (the requested size), 0x18 typ.
#include "malloc_amd64.h"

TEXT runtime·mallocgcSmallScanNoHeader(SB), 0, $0x48-0
	MALLOC_PROLOGUE(morestack)
	MOVQ	AX, 0x10(SP)
	MOVQ	BX, 0x18(SP)
	MALLOC_ENTER(nop, havec)
	// sizeclass := gc.SizeToSizeClass8[divRoundUp(size, gc.SmallSizeDiv)]
	MOVQ	0x10(SP), AX
	LEAQ	(const_smallSizeDiv-1)(AX), DI
	SHRQ	$3, DI
	MOVBLZX	internal∕runtime∕gc·SizeToSizeClass8(SB)(DI*1), DI
	MOVQ	DI, 0(SP)
	// spc := makeSpanClass(sizeclass, false)
	LEAL	(DI)(DI*1), BX
	// span := c.alloc[spc]
	MOVQ	mcache_alloc(SI)(BX*8), R8
	ALLOC_SLOT(slow, fast, gotobj)
	CLEAR_IF_NEEDZERO(0x10(SP), zeroed)
	// if goarch.PtrSize == 8 && sizeclass == 1 { c.scanAlloc += 8 }: initHeapBits set every bit
	CMPQ	0(SP), $1
	JNE	setbits
	MOVQ	$8, 8(SP)
	JMP	typed
setbits:
	// writeHeapBitsSmall: src0 := readUintptr(getGCMask(typ))
	MOVQ	0x18(SP), BX
	MOVQ	_type_GCData(BX), R9
	MOVQ	(R9), R9
	MOVQ	0x10(SP), DI
	// if typ.Size_ == goarch.PtrSize
	CMPQ	_type_Size_(BX), $8
	JNE	repeat
	// src = (1 << (dataSize / goarch.PtrSize)) - 1 (all ones for 64 words); scanSize = dataSize
	MOVQ	DI, CX
	SHRQ	$3, CX
	MOVL	$1, R9
	SHLQ	CX, R9
	CMPQ	CX, $64
	SBBQ	R10, R10
	ANDQ	R10, R9
	DECQ	R9
	MOVQ	DI, 8(SP)
	JMP	place
repeat:
	// scanSize = typ.PtrBytes
	MOVQ	_type_PtrBytes(BX), R11
	MOVQ	_type_Size_(BX), R10
	MOVQ	R9, R13
	MOVQ	R10, DX
again:
	// for i := typ.Size_; i < dataSize; i += typ.Size_
	CMPQ	DX, DI
	JCC	repeated
	// src |= src0 << (i / goarch.PtrSize)
	MOVQ	DX, CX
	SHRQ	$3, CX
	MOVQ	R13, AX
	SHLQ	CX, AX
	ORQ	AX, R9
	// scanSize += typ.Size_
	ADDQ	R10, R11
	ADDQ	R10, DX
	JMP	again
repeated:
	MOVQ	R11, 8(SP)
place:
	// dstBase := spanHeapBitsRange(span.base(), pageSize, span.elemsize): the page's last 128 bytes,
	// below the GreenTeaGC inline mark bits when the span has them
	MOVQ	mspan_startAddr(R8), DX
	LEAQ	(const_pageSize-const_pageSize/64)(DX), R10
	MOVQ	mspan_elemsize(R8), R13
	CMPQ	R13, $16
	JCS	nomarkbits
	SUBQ	$spanInlineMarkBits__size, R10
nomarkbits:
	// o := (x - span.base()) / goarch.PtrSize; i := o / ptrBits; j := o % ptrBits
	MOVQ	R12, AX
	SUBQ	DX, AX
	SHRQ	$3, AX
	MOVQ	AX, DX
	SHRQ	$6, DX
	ANDQ	$63, AX
	LEAQ	(R10)(DX*8), R10
	// bits := span.elemsize / goarch.PtrSize
	SHRQ	$3, R13
	// if j+bits > ptrBits: the object's bits straddle two words
	LEAQ	(AX)(R13*1), CX
	CMPQ	CX, $64
	JHI	straddle
	// *dst = (*dst)&^(((1<<bits)-1)<<j) | (src << j)
	MOVQ	R13, CX
	MOVL	$1, DX
	SHLQ	CX, DX
	CMPQ	CX, $64
	SBBQ	R11, R11
	ANDQ	R11, DX
	DECQ	DX
	MOVQ	AX, CX
	SHLQ	CX, DX
	SHLQ	CX, R9
	NOTQ	DX
	ANDQ	(R10), DX
	ORQ	R9, DX
	MOVQ	DX, (R10)
	JMP	written
straddle:
	// bits0 := ptrBits - j; bits1 := bits - bits0
	MOVL	$64, DX
	SUBQ	AX, DX
	SUBQ	DX, R13
	// *dst0 = (*dst0)&(^uintptr(0)>>bits0) | (src << j)
	MOVQ	DX, CX
	MOVQ	$-1, R11
	SHRQ	CX, R11
	ANDQ	(R10), R11
	MOVQ	AX, CX
	MOVQ	R9, DI
	SHLQ	CX, DI
	ORQ	DI, R11
	MOVQ	R11, (R10)
	// *dst1 = (*dst1)&^((1<<bits1)-1) | (src >> bits0)
	MOVQ	R13, CX
	MOVL	$1, R11
	SHLQ	CX, R11
	DECQ	R11
	NOTQ	R11
	ANDQ	8(R10), R11
	MOVQ	DX, CX
	SHRQ	CX, R9
	ORQ	R9, R11
	MOVQ	R11, 8(R10)
written:
typed:
	// c.scanAlloc += scanSize
	MOVQ	0x28(SP), SI
	MOVQ	8(SP), DX
	ADDQ	DX, mcache_scanAlloc(SI)
	// size = uintptr(gc.SizeClassToSize[sizeclass])
	MOVQ	0(SP), DI
	MOVWLZX	internal∕runtime∕gc·SizeClassToSize(SB)(DI*2), DI
	MOVQ	DI, 0x30(SP)
	MALLOC_PUBLISH_AND_RETURN(done)
	MALLOC_MORESTACK(runtime·mallocgcSmallScanNoHeader(SB))
