// Not Go code: the emulator's driver, so that a whole batch runs in one emu_start (each
// start costs ~4 us, more than an allocation): results[i] = fn(a[i], b[i], c) for i < n,
// its own instructions counted under gomemu.batchloop, apart from fn's. Machine's batches:
// malloc_batch(sizes): fn = mallocgcSmallNoscan, a = sizes, b = 0s, c = needzero;
// malloc_batch(sizes, types): fn = runtime.mallocgc, b = types (any size and type: tiny,
// scan, the size-specialised routines, large); store_pointers: fn = a `*slot = ptr` call
// site of one barrier dialect, a = slots, b = ptrs (its results unused).
// fn takes ABIInternal's AX, BX, CX.
// AX = *[n]uintptr a, BX = *[n]uintptr b, CX = c, DI = n, SI = fn, R8 = *[n]uintptr results.
// Frame: 0(SP)..0x17 the callee's argument spill slots, 0x18 a, 0x20 b, 0x28 c, 0x30 n,
// 0x38 fn, 0x40 results, 0x48 i.
TEXT gomemu·batchloop(SB), 0, $0x50-0
	PUSHQ	BP
	MOVQ	SP, BP
	SUBQ	$0x50, SP
	MOVQ	AX, 0x18(SP)
	MOVQ	BX, 0x20(SP)
	MOVQ	CX, 0x28(SP)
	MOVQ	DI, 0x30(SP)
	MOVQ	SI, 0x38(SP)
	MOVQ	R8, 0x40(SP)
	MOVQ	$0, 0x48(SP)
item:
	MOVQ	0x48(SP), DX
	CMPQ	DX, 0x30(SP)
	JCC	items
	MOVQ	0x18(SP), AX
	MOVQ	(AX)(DX*8), AX
	MOVQ	0x20(SP), BX
	MOVQ	(BX)(DX*8), BX
	MOVQ	0x28(SP), CX
	CALL	0x38(SP)
	MOVQ	0x48(SP), DX
	MOVQ	0x40(SP), CX
	MOVQ	AX, (CX)(DX*8)
	INCQ	DX
	MOVQ	DX, 0x48(SP)
	JMP	item
items:
	ADDQ	$0x50, SP
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
