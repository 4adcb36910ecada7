// runtime/asm_amd64.s: publicationBarrier. Stores are already ordered on
// x86-64, so it is only a call the compiler cannot move stores across.
//
// Handwritten: the commented teaching version that `gomemu step --annotated`
// walks (Machine(handwritten=True)) and one side of tests/test_differential.py;
// the default Machine() runs go1.27.3's compiled code instead (docs/machine.md).
TEXT runtime·publicationBarrier(SB), NOSPLIT, $0-0
	RET
