// runtime/asm_amd64.s: publicationBarrier. Stores are already ordered on
// x86-64, so it is only a call the compiler cannot move stores across.
TEXT runtime·publicationBarrier(SB), NOSPLIT, $0-0
	RET
