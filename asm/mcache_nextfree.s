// runtime/malloc.go: (*mcache).nextFree, the slow half of a small allocation:
// the span's cache of free bits ran out, or the span is full and the mcache
// must be refilled from mcentral (a call-out to Python: mcache.refill).
//
// Handwritten: the commented teaching version that `gomemu step --annotated`
// walks (Machine(handwritten=True)) and one side of tests/test_differential.py;
// the default Machine() runs go1.27.3's compiled code instead (docs/machine.md).
//
// ABIInternal: AX = c, BX = spc. Returns AX = v, BX = s, CX = checkGCTrigger.
// Frame: 0(SP) checkGCTrigger, 0x8 s, 0x10 c, 0x18 spc.
TEXT runtime.(*mcache).nextFree(SB), 0, $0x20-0
	PUSHQ	BP
	MOVQ	SP, BP
	SUBQ	$0x20, SP
	MOVQ	AX, 0x10(SP)
	MOVQ	BX, 0x18(SP)
	// checkGCTrigger = false
	MOVB	$0, 0(SP)
	// s = c.alloc[spc]
	MOVQ	mcache_alloc(AX)(BX*8), AX
	MOVQ	AX, 0x8(SP)
	// freeIndex := s.nextFreeIndex()
	CALL	runtime.(*mspan).nextFreeIndex(SB)
	MOVQ	0x8(SP), BX
	// if freeIndex == s.nelems: the span is full
	CMPW	AX, mspan_nelems(BX)
	JNE	have
	// if s.allocCount != s.nelems { throw(...) }
	MOVWLZX	mspan_allocCount(BX), CX
	CMPW	CX, mspan_nelems(BX)
	JNE	badcount
	// c.refill(spc)
	MOVQ	0x10(SP), AX
	MOVQ	0x18(SP), BX
	CALL	runtime.(*mcache).refill(SB)
	// checkGCTrigger = true
	MOVB	$1, 0(SP)
	// s = c.alloc[spc]
	MOVQ	0x10(SP), AX
	MOVQ	0x18(SP), BX
	MOVQ	mcache_alloc(AX)(BX*8), AX
	MOVQ	AX, 0x8(SP)
	// freeIndex = s.nextFreeIndex()
	CALL	runtime.(*mspan).nextFreeIndex(SB)
	MOVQ	0x8(SP), BX
have:
	// if freeIndex >= s.nelems { throw("freeIndex is not valid") }
	CMPW	AX, mspan_nelems(BX)
	JCC	badindex
	// v = gclinkptr(uintptr(freeIndex)*s.elemsize + s.base())
	MOVWLZX	AX, AX
	IMULQ	mspan_elemsize(BX), AX
	ADDQ	mspan_startAddr(BX), AX
	// s.allocCount++
	INCW	mspan_allocCount(BX)
	// if s.allocCount > s.nelems { throw("s.allocCount > s.nelems") }
	MOVWLZX	mspan_allocCount(BX), CX
	CMPW	CX, mspan_nelems(BX)
	JHI	overcount
	MOVBLZX	0(SP), CX
	ADDQ	$0x20, SP
	POPQ	BP
	RET
badcount:
	MOVL	$const_throw_allocCountNotFull, AX
	CALL	runtime·throw(SB)
badindex:
	MOVL	$const_throw_freeIndexInvalid, AX
	CALL	runtime·throw(SB)
overcount:
	MOVL	$const_throw_allocCountOverNelems, AX
	CALL	runtime·throw(SB)
