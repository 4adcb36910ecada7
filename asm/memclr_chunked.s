// runtime/malloc.go: memclrNoHeapPointersChunked: clears a large object in
// 256 KiB pieces so that the goroutine could be preempted between them.
// There is only one goroutine here, so the preemption check between chunks
// (getg().preempt -> goschedguarded) is not modelled.
//
// Handwritten: the commented teaching version that `gomemu step --annotated`
// walks (Machine(handwritten=True)) and one side of tests/test_differential.py;
// the default Machine() runs go1.27.3's compiled code instead (docs/machine.md).
//
// ABIInternal: AX = size, BX = x. Frame: 0(SP) voff, 8 vsize.
TEXT runtime·memclrNoHeapPointersChunked(SB), 0, $0x10-0
	PUSHQ	BP
	MOVQ	SP, BP
	SUBQ	$0x10, SP
	// vsize := v + size
	MOVQ	BX, 0(SP)
	ADDQ	BX, AX
	MOVQ	AX, 8(SP)
next:
	// for voff := v; voff < vsize; voff = voff + chunkBytes
	MOVQ	0(SP), AX
	MOVQ	8(SP), BX
	CMPQ	AX, BX
	JCC	done
	// n := vsize - voff; if n > chunkBytes { n = chunkBytes }
	SUBQ	AX, BX
	CMPQ	BX, $(256*1024)
	JLS	clear
	MOVQ	$(256*1024), BX
clear:
	// memclrNoHeapPointers(unsafe.Pointer(voff), n)
	LEAQ	(256*1024)(AX), CX
	MOVQ	CX, 0(SP)
	CALL	runtime·memclrNoHeapPointers(SB)
	JMP	next
done:
	ADDQ	$0x10, SP
	POPQ	BP
	RET
