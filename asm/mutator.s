// Not Go code: the mutator of a workload (emu/mutator.py), so that a whole batch of a
// program's allocations and pointer stores runs in one emu_start. Each operation is
// what a compiled Go statement does: `p.f = new(T)` (mallocgc, then the store through
// the compiler's write-barrier sequence, go1.21 dialect as asm/store_pointer.s) or
// `p.f = q.g` (a load, then the same store).
//
// AX = *[n]op, BX = n. An op is 8 words:
//   0  size      > 0: x = mallocgc(size, typ, true); 0: x = *src (a copy)
//   8  typ       (copy: src root)
//   16 stamp     x's last word = stamp, when non-zero (copy: src off1)
//   24 -         (copy: src off2)
//   32 dst root  the store's target: the word at dst root,
//   40 dst off1  then, unless -1, at *(that) + off1 (a field of the object it points to),
//   48 dst off2  then, unless -1, at *(that) + off2; a nil object on the way: no store
//   56 -
// Frame: 0(SP)..0x17 the callee's argument spill slots (mallocgc writes them), 0x18 the
// current op, 0x20 the ops left. No pointers live in the frame across a call.
TEXT gomemu·mutator(SB), 0, $0x28-0
	PUSHQ	BP
	MOVQ	SP, BP
	SUBQ	$0x28, SP
	MOVQ	AX, 0x18(SP)
	MOVQ	BX, 0x20(SP)
next:
	DECQ	0x20(SP)
	JMI	done
	MOVQ	0x18(SP), DX
	MOVQ	(DX), AX
	TESTQ	AX, AX
	JEQ	copy
	// x := mallocgc(size, typ, true)
	MOVQ	8(DX), BX
	MOVL	$1, CX
	CALL	runtime·mallocgc(SB)
	MOVQ	0x18(SP), DX
	// the program's own bytes: the object's last word
	MOVQ	16(DX), CX
	TESTQ	CX, CX
	JEQ	target
	MOVQ	(DX), SI
	MOVQ	CX, -8(AX)(SI*1)
	JMP	target
copy:
	// x := the word at the src path
	MOVQ	8(DX), DI
	MOVQ	16(DX), SI
	CMPQ	SI, $-1
	JEQ	src2
	MOVQ	(DI), DI
	TESTQ	DI, DI
	JEQ	advance
	ADDQ	SI, DI
src2:
	MOVQ	24(DX), SI
	CMPQ	SI, $-1
	JEQ	load
	MOVQ	(DI), DI
	TESTQ	DI, DI
	JEQ	advance
	ADDQ	SI, DI
load:
	MOVQ	(DI), AX
target:
	// DI := the slot at the dst path
	MOVQ	32(DX), DI
	MOVQ	40(DX), SI
	CMPQ	SI, $-1
	JEQ	dst2
	MOVQ	(DI), DI
	TESTQ	DI, DI
	JEQ	advance
	ADDQ	SI, DI
dst2:
	MOVQ	48(DX), SI
	CMPQ	SI, $-1
	JEQ	store
	MOVQ	(DI), DI
	TESTQ	DI, DI
	JEQ	advance
	ADDQ	SI, DI
store:
	// if writeBarrier.enabled
	CMPL	runtime·writeBarrier(SB), $0
	JEQ	plain
	// old := *slot; buf := gcWriteBarrier2(); buf[0] = x; buf[1] = old
	MOVQ	(DI), CX
	CALL	runtime·gcWriteBarrier2(SB)
	MOVQ	AX, (R11)
	MOVQ	CX, 8(R11)
plain:
	// *slot = x
	MOVQ	AX, (DI)
advance:
	ADDQ	$64, 0x18(SP)
	JMP	next
done:
	ADDQ	$0x28, SP
	POPQ	BP
	RET
