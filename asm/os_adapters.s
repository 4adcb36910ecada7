// Not Go code: adapters that let the Python slow paths call the real runtime's
// ABI0 system-call wrappers with ABIInternal registers (Machine(image=...) only;
// the handwritten machine has its own register-ABI wrappers in sys_linux_amd64.s).

// madvise(addr AX, n BX, flags CX) (ret AX) -> runtime/sys_linux_amd64.s: madvise (ABI0)
TEXT gomemu·madvise(SB), NOSPLIT, $0x20-0
	PUSHQ	BP
	MOVQ	SP, BP
	SUBQ	$0x20, SP
	MOVQ	AX, 0(SP)
	MOVQ	BX, 8(SP)
	MOVL	CX, 16(SP)
	CALL	runtime·madvise(SB)
	MOVL	24(SP), AX
	ADDQ	$0x20, SP
	POPQ	BP
	RET
