// Not a runtime function: the code go1.27.3 compiles for `*slot = ptr`
// (func(slot **T, ptr *T), ABIInternal: AX = slot, BX = ptr), as in
// `go build -gcflags=-S` of `func f(t *T, p *int) { t.b = p }` without the
// stack check and frame. Machine.store_pointer runs it in the go1.21 dialect.
TEXT gomemu·storePointer(SB), NOSPLIT|NOFRAME, $0
	// if writeBarrier.enabled
	CMPL	runtime·writeBarrier(SB), $0
	JEQ	store
	// old := *slot, loaded before the barrier call
	MOVQ	(AX), CX
	// buf := gcWriteBarrier2(): two slots of p.wbBuf
	CALL	runtime·gcWriteBarrier2(SB)
	// buf[0] = ptr (the new value)
	MOVQ	BX, (R11)
	// buf[1] = old (the value overwritten)
	MOVQ	CX, 8(R11)
store:
	// *slot = ptr
	MOVQ	BX, (AX)
	RET
