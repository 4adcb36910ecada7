// Not Go code: the emulator's driver, so that a whole batch of allocations
// runs in one emu_start (each start costs ~4 us, more than an allocation).
// Its own instructions are counted under gomemu.mallocloop, apart from the
// allocator's.
//
// AX = *[n]uintptr sizes, BX = n, CX = *[n]uintptr results, DI = needzero.
// Frame: 0(SP)..0x17 the callee's argument spill slots, 0x18 sizes, 0x20 n,
// 0x28 results, 0x30 i, 0x38 needzero.
TEXT gomemu·mallocloop(SB), 0, $0x40-0
	PUSHQ	BP
	MOVQ	SP, BP
	SUBQ	$0x40, SP
	MOVQ	AX, 0x18(SP)
	MOVQ	BX, 0x20(SP)
	MOVQ	CX, 0x28(SP)
	MOVQ	DI, 0x38(SP)
	MOVQ	$0, 0x30(SP)
next:
	MOVQ	0x30(SP), DX
	CMPQ	DX, 0x20(SP)
	JCC	done
	MOVQ	0x18(SP), AX
	MOVQ	(AX)(DX*8), AX
	XORL	BX, BX
	MOVQ	0x38(SP), CX
	CALL	runtime·mallocgcSmallNoscan(SB)
	MOVQ	0x30(SP), DX
	MOVQ	0x28(SP), CX
	MOVQ	AX, (CX)(DX*8)
	INCQ	DX
	MOVQ	DX, 0x30(SP)
	JMP	next
done:
	ADDQ	$0x40, SP
	POPQ	BP
	RET

// Not Go code: results[i] = mallocgc(sizes[i], types[i], needzero) for i < n, the batch
// of Machine.malloc_batch with types: any size and type (tiny, scan, the size-specialised
// routines, large) through the allocator's entry point, in one emu_start.
// AX = *[n]uintptr sizes, BX = *[n]*_type types, CX = n, DI = *[n]uintptr results,
// SI = needzero. Frame: 0(SP)..0x17 the callee's argument spill slots, 0x18 sizes,
// 0x20 types, 0x28 n, 0x30 results, 0x38 i, 0x40 needzero.
TEXT gomemu·mallocgcloop(SB), 0, $0x48-0
	PUSHQ	BP
	MOVQ	SP, BP
	SUBQ	$0x48, SP
	MOVQ	AX, 0x18(SP)
	MOVQ	BX, 0x20(SP)
	MOVQ	CX, 0x28(SP)
	MOVQ	DI, 0x30(SP)
	MOVQ	SI, 0x40(SP)
	MOVQ	$0, 0x38(SP)
alloc:
	MOVQ	0x38(SP), DX
	CMPQ	DX, 0x28(SP)
	JCC	allocated
	MOVQ	0x18(SP), AX
	MOVQ	(AX)(DX*8), AX
	MOVQ	0x20(SP), BX
	MOVQ	(BX)(DX*8), BX
	MOVQ	0x40(SP), CX
	CALL	runtime·mallocgc(SB)
	MOVQ	0x38(SP), DX
	MOVQ	0x30(SP), CX
	MOVQ	AX, (CX)(DX*8)
	INCQ	DX
	MOVQ	DX, 0x38(SP)
	JMP	alloc
allocated:
	ADDQ	$0x48, SP
	POPQ	BP
	RET

// Not Go code: *slots[i] = ptrs[i] for i < n through fn, a `*slot = ptr` call site of
// one barrier dialect (gomemu.storePointer, gomemu.storePointerGo120: AX = slot,
// BX = ptr), the batch of Machine.store_pointers.
// AX = *[n]uintptr slots, BX = *[n]uintptr ptrs, CX = n, DI = fn.
// Frame: 0(SP)..0x17 spill slots, 0x18 slots, 0x20 ptrs, 0x28 n, 0x30 fn, 0x38 i.
TEXT gomemu·storeloop(SB), 0, $0x40-0
	PUSHQ	BP
	MOVQ	SP, BP
	SUBQ	$0x40, SP
	MOVQ	AX, 0x18(SP)
	MOVQ	BX, 0x20(SP)
	MOVQ	CX, 0x28(SP)
	MOVQ	DI, 0x30(SP)
	MOVQ	$0, 0x38(SP)
store:
	MOVQ	0x38(SP), DX
	CMPQ	DX, 0x28(SP)
	JCC	stored
	MOVQ	0x18(SP), AX
	MOVQ	(AX)(DX*8), AX
	MOVQ	0x20(SP), BX
	MOVQ	(BX)(DX*8), BX
	CALL	0x30(SP)
	INCQ	0x38(SP)
	JMP	store
stored:
	ADDQ	$0x40, SP
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
