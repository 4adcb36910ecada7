// The flush both write-barrier dialects share (runtime/asm_amd64.s).
// wbBufFlush is Go code and may clobber any register: save every GPR the
// caller still needs in the barrier's 96-byte frame (R12, R13 are saved by
// the barrier itself; R14 is g, RSP the stack), flush, restore them.
//
// Handwritten: the commented teaching version that `gomemu step --annotated`
// walks (Machine(handwritten=True)) and one side of tests/test_differential.py;
// the default Machine() runs go1.27.3's compiled code instead (docs/machine.md).
#define WBBUF_FLUSH_SAVING_REGS \
	MOVQ	DI, 0(SP) \
	MOVQ	AX, 8(SP) \
	MOVQ	BX, 16(SP) \
	MOVQ	CX, 24(SP) \
	MOVQ	DX, 32(SP) \
	MOVQ	SI, 40(SP) \
	MOVQ	BP, 48(SP) \
	MOVQ	R8, 56(SP) \
	MOVQ	R9, 64(SP) \
	MOVQ	R10, 72(SP) \
	MOVQ	R11, 80(SP) \
	MOVQ	R15, 88(SP) \
	// wbBufFlush(): shade every buffered pointer, reset pp.wbBuf \
	CALL	runtime·wbBufFlush(SB) \
	// restore them \
	MOVQ	0(SP), DI \
	MOVQ	8(SP), AX \
	MOVQ	16(SP), BX \
	MOVQ	24(SP), CX \
	MOVQ	32(SP), DX \
	MOVQ	40(SP), SI \
	MOVQ	48(SP), BP \
	MOVQ	56(SP), R8 \
	MOVQ	64(SP), R9 \
	MOVQ	72(SP), R10 \
	MOVQ	80(SP), R11 \
	MOVQ	88(SP), R15
