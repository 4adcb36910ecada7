// Not Go code: the emulator's driver, so that a whole batch of allocations
// runs in one emu_start (each start costs ~4 us, more than an allocation).
// Its own instructions are counted under gomemu.mallocloop, apart from the
// allocator's.
//
// AX = *[n]uintptr sizes, BX = n, CX = *[n]uintptr results.
// Frame: 0(SP)..0x17 the callee's argument spill slots, 0x18 sizes, 0x20 n,
// 0x28 results, 0x30 i.
TEXT gomemu·mallocloop(SB), 0, $0x38-0
	PUSHQ	BP
	MOVQ	SP, BP
	SUBQ	$0x38, SP
	MOVQ	AX, 0x18(SP)
	MOVQ	BX, 0x20(SP)
	MOVQ	CX, 0x28(SP)
	MOVQ	$0, 0x30(SP)
next:
	MOVQ	0x30(SP), DX
	CMPQ	DX, 0x20(SP)
	JCC	done
	MOVQ	0x18(SP), AX
	MOVQ	(AX)(DX*8), AX
	XORL	BX, BX
	MOVL	$1, CX
	CALL	runtime·mallocgcSmallNoscan(SB)
	MOVQ	0x30(SP), DX
	MOVQ	0x28(SP), CX
	MOVQ	AX, (CX)(DX*8)
	INCQ	DX
	MOVQ	DX, 0x30(SP)
	JMP	next
done:
	ADDQ	$0x38, SP
	POPQ	BP
	RET

// Not Go code: calls fn(a, b, c) n times, to measure a call-out's round trip.
// AX = n, BX = fn, CX = a, DI = b, SI = c.
// Frame: 0(SP)..0x17 the callee's argument spill slots (ABIInternal: compiled Go code
// writes them), 0x18 n, 0x20 fn, 0x28 a, 0x30 b, 0x38 c.
TEXT gomemu·calloutloop(SB), 0, $0x40-0
	PUSHQ	BP
	MOVQ	SP, BP
	SUBQ	$0x40, SP
	MOVQ	AX, 0x18(SP)
	MOVQ	BX, 0x20(SP)
	MOVQ	CX, 0x28(SP)
	MOVQ	DI, 0x30(SP)
	MOVQ	SI, 0x38(SP)
again:
	DECQ	0x18(SP)
	JMI	out
	MOVQ	0x28(SP), AX
	MOVQ	0x30(SP), BX
	MOVQ	0x38(SP), CX
	CALL	0x20(SP)
	JMP	again
out:
	ADDQ	$0x40, SP
	POPQ	BP
	RET
