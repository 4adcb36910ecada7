// runtime/sys_linux_amd64.s: the system calls behind Go's mem_linux.go
// (sysReserve, sysMap, sysUnused, sysFree). Go declares these ABI0 with
// arguments on the stack; here they take ABIInternal registers so the Python
// slow paths can call them directly. The SYSCALL instructions are real: the
// machine's syscall hook plays the kernel.
//
// Handwritten: the commented teaching version that `gomemu step --annotated`
// walks (Machine(handwritten=True)) and one side of tests/test_differential.py;
// the default Machine() runs go1.27.3's compiled code instead (docs/machine.md).

// sysMmap(addr AX, n BX, prot CX, flags DI, fd SI, off R8) (p AX, err BX)
TEXT runtime·sysMmap(SB), NOSPLIT, $0
	MOVL	R8, R9
	MOVL	SI, R8
	MOVL	DI, R10
	MOVL	CX, DX
	MOVQ	BX, SI
	MOVQ	AX, DI
	MOVL	$9, AX          // SYS_mmap
	SYSCALL
	// a result in [-4095, -1] is -errno
	CMPQ	AX, $-4095
	JLS	ok
	NEGQ	AX
	MOVQ	AX, BX
	XORL	AX, AX
	RET
ok:
	XORL	BX, BX
	RET

// munmap(addr AX, n BX) (ret AX): 0 or -errno
TEXT runtime·munmap(SB), NOSPLIT, $0
	MOVQ	BX, SI
	MOVQ	AX, DI
	MOVL	$11, AX         // SYS_munmap
	SYSCALL
	RET

// madvise(addr AX, n BX, flags CX) (ret AX): 0 or -errno
TEXT runtime·madvise(SB), NOSPLIT, $0
	MOVL	CX, DX
	MOVQ	BX, SI
	MOVQ	AX, DI
	MOVL	$28, AX         // SYS_madvise
	SYSCALL
	RET
