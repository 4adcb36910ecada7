// runtime/mbitmap.go: (*mspan).nextFreeIndex, with refillAllocCache inlined.
// Finds the next free slot at or after s.freeindex from allocCache, loading
// the next 64 allocation bits (inverted) from allocBits whenever the cache is
// used up.
//
// Handwritten: the commented teaching version that `gomemu step --annotated`
// walks (Machine(handwritten=True)) and one side of tests/test_differential.py;
// the default Machine() runs go1.27.3's compiled code instead (docs/machine.md).
//
// ABIInternal: AX = s. Returns AX = the slot index, or s.nelems when the span is full.
// s.refillAllocCache(CX / 8): allocCache = ^(the 8 bytes of allocBits at that byte), into BX too.
#define REFILL_ALLOC_CACHE \
	MOVL	CX, DI \
	SHRL	$3, DI \
	MOVQ	mspan_allocBits(AX), R8 \
	MOVQ	(R8)(DI*1), BX \
	NOTQ	BX \
	MOVQ	BX, mspan_allocCache(AX)

TEXT runtime.(*mspan).nextFreeIndex(SB), NOSPLIT, $0-0
	// sfreeindex := s.freeindex; snelems := s.nelems
	MOVWLZX	mspan_freeindex(AX), CX
	MOVWLZX	mspan_nelems(AX), DX
	// if sfreeindex == snelems { return sfreeindex }
	CMPL	CX, DX
	JEQ	retfree
	// if sfreeindex > snelems { throw("s.freeindex > s.nelems") }
	JHI	bad
	// bitIndex := sys.TrailingZeros64(s.allocCache)
	MOVQ	mspan_allocCache(AX), BX
	TZCNTQ	BX, SI
	CMPQ	SI, $64
	JNE	found
refill:
	// for bitIndex == 64: sfreeindex = (sfreeindex + 64) &^ (64 - 1)
	ADDL	$64, CX
	ANDL	$~63, CX
	// if sfreeindex >= snelems { s.freeindex = snelems; return snelems }
	CMPL	CX, DX
	JCC	full
	// s.refillAllocCache(sfreeindex / 8): the next 64 bits
	REFILL_ALLOC_CACHE
	TZCNTQ	BX, SI
	CMPQ	SI, $64
	JEQ	refill
found:
	// result := sfreeindex + uint16(bitIndex)
	LEAL	(CX)(SI*1), R9
	// if result >= snelems { s.freeindex = snelems; return snelems }
	CMPL	R9, DX
	JCC	full
	// s.allocCache >>= uint(bitIndex + 1), which is 0 when bitIndex+1 == 64
	INCL	SI
	MOVL	SI, CX
	SHRQ	CX, BX
	CMPL	CX, $64
	SBBQ	R10, R10
	ANDQ	R10, BX
	MOVQ	BX, mspan_allocCache(AX)
	// sfreeindex = result + 1
	LEAL	1(R9), CX
	// if sfreeindex%64 == 0 && sfreeindex != snelems { s.refillAllocCache(sfreeindex / 8) }
	TESTL	$63, CX
	JNE	store
	CMPL	CX, DX
	JEQ	store
	REFILL_ALLOC_CACHE
store:
	// s.freeindex = sfreeindex; return result
	MOVW	CX, mspan_freeindex(AX)
	MOVL	R9, AX
	RET
full:
	MOVW	DX, mspan_freeindex(AX)
	MOVL	DX, AX
	RET
retfree:
	MOVL	CX, AX
	RET
bad:
	MOVL	$const_throw_freeindexPastNelems, AX
	CALL	runtime·throw(SB)
