// runtime/asm_amd64.s of Go 1.20 and earlier: gcWriteBarrier, the write
// barrier before Go 1.21 batched it. Written from its documented behaviour
// (no Go 1.20 source here); Machine(wb_dialect="go1.20") uses it.
//
// The compiler called it for one pointer store with
//	DI = the slot being written, AX = the new value
// and the barrier itself records the pair (new value, old value *slot) in
// the current P's wbBuf and then performs the store `*slot = AX`. In Go 1.20
// the buffer was 256 entries of two pointers (wbBufEntries = 256,
// wbBufEntryPointers = 2): the same 512 words, at the same place in p, as
// Go 1.27's 512 one-pointer entries, so both dialects share p.wbBuf.
//
// Unlike the Go 1.21 form, it records first and flushes afterwards: the
// entry that makes next == end is written, then wbBufFlush empties the
// buffer, then the store happens. The buffer is never left full.
//
// Not the Go ABI: DI and AX in, nothing out; FLAGS clobbered; every general
// purpose register preserved. Frame $112: 0..88(SP) registers saved around
// the flush, 96(SP)/104(SP) R12/R13; prologue and epilogue written out.

#include "wbbuf_amd64.h"

TEXT runtime·gcWriteBarrier(SB), NOSPLIT, $112
	// prologue the assembler inserts for the $112 frame
	PUSHQ	BP
	MOVQ	SP, BP
	SUBQ	$0x70, SP
	// save R12 and R13, the fast path's scratch registers
	MOVQ	R12, 96(SP)
	MOVQ	R13, 104(SP)
	// pp := getg().m.p.ptr()
	MOVQ	g_m(R14), R13
	MOVQ	m_p(R13), R13
	// take one two-pointer entry: next := pp.wbBuf.next + 16; pp.wbBuf.next = next
	MOVQ	(p_wbBuf+wbBuf_next)(R13), R12
	LEAQ	16(R12), R12
	MOVQ	R12, (p_wbBuf+wbBuf_next)(R13)
	// full := next == pp.wbBuf.end (the flags wait for the JEQ below)
	CMPQ	R12, (p_wbBuf+wbBuf_end)(R13)
	// entry[0] = val, the pointer being written
	MOVQ	AX, -16(R12)
	// entry[1] = *slot, the pointer being overwritten
	MOVQ	(DI), R13
	MOVQ	R13, -8(R12)
	// if full: flush now, before the store
	JEQ	flush
ret:
	// restore R12, R13
	MOVQ	96(SP), R12
	MOVQ	104(SP), R13
	// *slot = val: the barrier performs the store itself
	MOVQ	AX, (DI)
	// epilogue the assembler inserts
	ADDQ	$0x70, SP
	POPQ	BP
	RET

flush:
	// wbBufFlush(dst, src) is Go code: save every GPR the caller still needs
	// (DI and AX double as its arguments; R12, R13 saved; R14 is g)
	WBBUF_FLUSH_SAVING_REGS
	// and finish: restore R12/R13, do the store
	JMP	ret

// Not a runtime function: a Go <= 1.20 call site for `*slot = ptr`
// (func(slot **T, ptr *T), ABIInternal: AX = slot, BX = ptr), in the old
// form that loads the flag into a register and tests it.
// Machine.store_pointer runs it in the go1.20 dialect.
TEXT gomemu·storePointerGo120(SB), NOSPLIT|NOFRAME, $0
	// DI = slot: gcWriteBarrier's register for the destination
	MOVQ	AX, DI
	// if writeBarrier.enabled
	MOVL	runtime·writeBarrier(SB), AX
	TESTL	AX, AX
	JZ	store
	// AX = ptr; gcWriteBarrier records (ptr, *slot) and stores
	MOVQ	BX, AX
	CALL	runtime·gcWriteBarrier(SB)
	RET
store:
	// *slot = ptr, no barrier
	MOVQ	BX, (DI)
	RET
