// runtime/asm_amd64.s: gcWriteBarrier<> and gcWriteBarrier1..8, the write
// barrier of Go 1.21 and later (the design is in mbarrier.go, the buffer in
// mwbbuf.go).
//
// Handwritten: the commented teaching version that `gomemu step --annotated`
// walks (Machine(handwritten=True)) and one side of tests/test_differential.py;
// the default Machine() runs go1.27.3's compiled code instead (docs/machine.md).
//
// The compiler guards every pointer store into the heap with
//
//	CMPL	runtime·writeBarrier(SB), $0    // writeBarrier.enabled (+ padding)
//	JEQ	store
//	CALL	runtime·gcWriteBarrierN(SB)     // N pointers to record, 1..8
//	MOVQ	new, (R11)                      // the caller fills the N slots:
//	MOVQ	old, 8(R11)                     // new values and the values overwritten
//  store:
//	MOVQ	new, (slot)
//
// gcWriteBarrierN puts N*8 in R11 and jumps to gcWriteBarrier<>, which
// reserves that many bytes of the current P's wbBuf and returns their start
// in R11. When the reservation does not fit, it calls wbBufFlush (a Python
// call-out, runtime_model/mwbbuf.py: shade every buffered pointer, reset the
// buffer) and tries again.
//
// Not the Go ABI: R11 in and out; FLAGS clobbered; every other general
// purpose register preserved (R12, R13 on every path, all of them around the
// flush). Frame $112: 0..88(SP) the registers saved around the flush,
// 96(SP)/104(SP) R12/R13. Go's assembler inserts the frame-pointer prologue
// and epilogue for a $112 frame; they are written out here as `go tool
// objdump` shows them in a go1.27.3 binary.

#include "wbbuf_amd64.h"

TEXT gcWriteBarrier<>(SB), NOSPLIT, $112
	// prologue the assembler inserts for the $112 frame
	PUSHQ	BP
	MOVQ	SP, BP
	SUBQ	$0x70, SP
	// save R12 and R13: the fast path uses them, the caller did not spill them
	MOVQ	R12, 96(SP)
	MOVQ	R13, 104(SP)
retry:
	// pp := getg().m.p.ptr()
	MOVQ	g_m(R14), R13
	MOVQ	m_p(R13), R13
	// next := pp.wbBuf.next + R11 (the bytes asked for)
	MOVQ	(p_wbBuf+wbBuf_next)(R13), R12
	ADDQ	R11, R12
	// if next > pp.wbBuf.end: no room, flush first
	CMPQ	R12, (p_wbBuf+wbBuf_end)(R13)
	JA	flush
	// pp.wbBuf.next = next: the slots are ours
	MOVQ	R12, (p_wbBuf+wbBuf_next)(R13)
	// return R11 = the old next, the first reserved slot
	SUBQ	R11, R12
	MOVQ	R12, R11
	// restore R12, R13
	MOVQ	96(SP), R12
	MOVQ	104(SP), R13
	// epilogue the assembler inserts
	ADDQ	$0x70, SP
	POPQ	BP
	RET

flush:
	// wbBufFlush is Go code and may clobber any register: save every GPR the
	// caller still needs (R12, R13 are already saved; R14 is g, RSP the stack)
	WBBUF_FLUSH_SAVING_REGS
	// reserve again, in the now empty buffer
	JMP	retry

// gcWriteBarrierN: R11 = N pointers * 8 bytes, then the shared body.
TEXT runtime·gcWriteBarrier1(SB), NOSPLIT|NOFRAME, $0
	// one slot
	MOVL	$8, R11
	JMP	gcWriteBarrier<>(SB)

TEXT runtime·gcWriteBarrier2(SB), NOSPLIT|NOFRAME, $0
	// two slots: one pointer store (new, old)
	MOVL	$16, R11
	JMP	gcWriteBarrier<>(SB)

TEXT runtime·gcWriteBarrier3(SB), NOSPLIT|NOFRAME, $0
	MOVL	$24, R11
	JMP	gcWriteBarrier<>(SB)

TEXT runtime·gcWriteBarrier4(SB), NOSPLIT|NOFRAME, $0
	// two pointer stores batched
	MOVL	$32, R11
	JMP	gcWriteBarrier<>(SB)

TEXT runtime·gcWriteBarrier5(SB), NOSPLIT|NOFRAME, $0
	MOVL	$40, R11
	JMP	gcWriteBarrier<>(SB)

TEXT runtime·gcWriteBarrier6(SB), NOSPLIT|NOFRAME, $0
	MOVL	$48, R11
	JMP	gcWriteBarrier<>(SB)

TEXT runtime·gcWriteBarrier7(SB), NOSPLIT|NOFRAME, $0
	MOVL	$56, R11
	JMP	gcWriteBarrier<>(SB)

TEXT runtime·gcWriteBarrier8(SB), NOSPLIT|NOFRAME, $0
	// the most one call reserves (mwbbuf.go: wbMaxEntriesPerCall)
	MOVL	$64, R11
	JMP	gcWriteBarrier<>(SB)
