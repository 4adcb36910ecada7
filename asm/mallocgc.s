// runtime/malloc.go: mallocgc, the entry of every heap allocation. It
// charges the GC assist, picks the path by size and by whether the type has
// pointers, and fixes the assist debt for the slot's internal fragmentation.
//
// Handwritten: the commented teaching version that `gomemu step --annotated`
// walks (Machine(handwritten=True)) and one side of tests/test_differential.py;
// the default Machine() runs go1.27.3's compiled code instead (docs/machine.md).
//
// ABIInternal: AX = size, BX = typ (nil: raw memory), CX = needzero.
// Returns AX = x.
//
// Without const_sizeSpecializedMalloc this is the generic dispatch, which Go
// 1.27 runs when GOEXPERIMENT sizespecializedmalloc is off. With it
// (Machine(size_specialized=True), Go's default) sizes below 81 bytes go
// through mallocNoScanTable / mallocScanTable to the generated copies in
// asm/malloc_generated.s (mallocgcTinySC2, mallocgcSmallNoScanSC*,
// mallocgcSmallScanNoHeaderSC*), which return x themselves.
// Frame: 0(SP)..0x17 the callees' argument spill slots, 0x18 size, 0x20 typ,
// 0x28 needzero, 0x30 x.
#include "malloc_amd64.h"

TEXT runtime·mallocgc(SB), 0, $0x38-0
	CMPQ	SP, g_stackguard0(R14)
	JLS	morestack
	PUSHQ	BP
	MOVQ	SP, BP
	SUBQ	$0x38, SP
	// if size == 0 { return unsafe.Pointer(&zerobase) }
	TESTQ	AX, AX
	JNE	sized
	LEAQ	runtime·zerobase(SB), AX
	JMP	ret
sized:
#ifdef const_sizeSpecializedMalloc
	// if sizeSpecializedMallocEnabled && size < uintptr(len(mallocNoScanTable))
	CMPQ	AX, $const_mallocTableLen
	JCC	generic
	// if typ == nil || !typ.Pointers()
	TESTQ	BX, BX
	JEQ	specnoscan
	CMPQ	_type_PtrBytes(BX), $0
	JEQ	specnoscan
	// (the !needzero throw is not modelled, as in the generic dispatch)
	// return mallocScanTable[size](size, typ, needzero): the table holds code addresses here
	// (Go's holds funcvals, one more load)
	MOVQ	runtime·mallocScanTable(SB)(AX*8), DX
	CALL	DX
	JMP	ret
specnoscan:
	// if size >= maxTinySize { return mallocNoScanTable[size](size, typ, needzero) }
	CMPQ	AX, $const_maxTinySize
	JCS	spectiny
	MOVQ	runtime·mallocNoScanTable(SB)(AX*8), DX
	CALL	DX
	JMP	ret
spectiny:
	// return mallocgcTinySC2(size, typ, needzero)
	CALL	runtime·mallocgcTinySC2(SB)
	JMP	ret
generic:
#endif
	MOVQ	AX, 0x18(SP)
	MOVQ	BX, 0x20(SP)
	MOVB	CX, 0x28(SP)
	// if gcBlackenEnabled != 0 { deductAssistCredit(size) }
	CMPL	runtime·gcBlackenEnabled(SB), $0
	JEQ	dispatch
	// deductAssistCredit: charge getg().m.curg (or getg() when there is none)
	MOVQ	R14, DX
	MOVQ	g_m(R14), SI
	MOVQ	m_curg(SI), SI
	TESTQ	SI, SI
	JEQ	charge
	MOVQ	SI, DX
charge:
	// assistG.gcAssistBytes -= int64(size)
	SUBQ	AX, g_gcAssistBytes(DX)
	// if assistG.gcAssistBytes < 0 { gcAssistAlloc(assistG) }: in debt, do mark work first
	JGE	dispatch
	MOVQ	DX, AX
	CALL	runtime·gcAssistAlloc(SB)
	MOVQ	0x18(SP), AX
	MOVQ	0x20(SP), BX
dispatch:
	// if size <= maxSmallSize-mallocHeaderSize
	CMPQ	AX, $(const_maxSmallSize-const_mallocHeaderSize)
	JHI	large
	// if typ == nil || !typ.Pointers()
	TESTQ	BX, BX
	JEQ	noscan
	CMPQ	_type_PtrBytes(BX), $0
	JEQ	noscan
	// if heapBitsInSpan(size): pointer bits in the span; else a malloc header
	CMPQ	AX, $const_minSizeForMallocHeader
	JHI	header
	CALL	runtime·mallocgcSmallScanNoHeader(SB)
	JMP	allocated
header:
	CALL	runtime·mallocgcSmallScanHeader(SB)
	JMP	allocated
noscan:
#ifdef const_sizeSpecializedMalloc
	// with sizeSpecializedMallocEnabled: x, elemsize = mallocgcSmallNoscan(size, typ, needzero)
	// (sizes under maxTinySize went to mallocgcTinySC2 above)
	JMP	small
#endif
	// if size < maxTinySize && gp.secret == 0
	CMPQ	AX, $const_maxTinySize
	JCC	small
	CMPL	g_secret(R14), $0
	JNE	small
	CALL	runtime·mallocgcTiny(SB)
	JMP	allocated
small:
	MOVBLZX	0x28(SP), CX
	CALL	runtime·mallocgcSmallNoscan(SB)
	JMP	allocated
large:
	MOVBLZX	0x28(SP), CX
	CALL	runtime·mallocgcLarge(SB)
allocated:
	MOVQ	AX, 0x30(SP)
	// if gcBlackenEnabled != 0 && elemsize != 0: curg.gcAssistBytes -= int64(elemsize - size)
	CMPL	runtime·gcBlackenEnabled(SB), $0
	JEQ	traced
	TESTQ	BX, BX
	JEQ	traced
	MOVQ	g_m(R14), DX
	MOVQ	m_curg(DX), DX
	TESTQ	DX, DX
	JEQ	traced
	MOVQ	BX, SI
	SUBQ	0x18(SP), SI
	SUBQ	SI, g_gcAssistBytes(DX)
traced:
	// if debug.malloc { postMallocgcDebug(x, elemsize, typ) }: allocfreetrace.
	// (DI also passes the requested size, so the log can name the path.)
	CMPB	runtime·debug.malloc(SB), $0
	JEQ	out
	MOVQ	0x30(SP), AX
	MOVQ	0x20(SP), CX
	MOVQ	0x18(SP), DI
	CALL	runtime·postMallocgcDebug(SB)
out:
	MOVQ	0x30(SP), AX
ret:
	ADDQ	$0x38, SP
	POPQ	BP
	RET
	MALLOC_MORESTACK(runtime·mallocgc(SB))
