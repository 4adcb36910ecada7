// runtime/asm_amd64.s: morestack, morestack_noctxt and gogo: the machine-code
// half of stack growth.
//
// Handwritten: the commented teaching version that `gomemu step --annotated`
// walks (Machine(handwritten=True)) and one side of tests/test_differential.py;
// the default Machine() runs go1.27.3's compiled code instead (docs/machine.md).
//
// A function whose prologue check fails calls morestack_noctxt (after spilling
// its register arguments). morestack saves where the function was (g.sched:
// the pc after that call, its SP at entry, BP, the closure context DX) and
// who called it (m.morebuf), switches to g0 and its stack, and calls newstack,
// a Python call-out (runtime_model/stack.py: newstack, copystack). newstack
// returns &gp.sched, the context to resume (Go's newstack ends with
// gogo(&gp.sched) itself); gogo restores g, SP and BP from it and jumps to the
// saved pc, which reloads the spilled arguments and jumps back to the start of
// the function, where the check now passes.
//
// Differences from Go: badmorestackg0/badmorestackgsignal are a throw with Go's
// message (runtime.throw takes an index into emu/callouts.py THROWS); the
// GOEXPERIMENT runtimesecret register erasing is not built.

// morestack: called by the prologue of f (through morestack_noctxt), on g's stack.
// 0(SP) = the pc in f after its CALL, 8(SP) = f's return address into f's caller.
TEXT runtime·morestack(SB), NOSPLIT|NOFRAME, $0-0
	// Cannot grow scheduler stack (m->g0): get_tls(CX); DI = g(CX); BX = g.m
	MOVQ	(TLS), DI
	MOVQ	g_m(DI), BX
	// Set g->sched to context in f: sched.pc = f's pc after the call
	MOVQ	0(SP), AX
	MOVQ	AX, (g_sched+gobuf_pc)(DI)
	// sched.sp = f's SP (where its return address is)
	LEAQ	8(SP), AX
	MOVQ	AX, (g_sched+gobuf_sp)(DI)
	// sched.bp = BP (f's caller's frame pointer: f has not pushed its own yet)
	MOVQ	BP, (g_sched+gobuf_bp)(DI)
	// sched.ctxt = DX (zero from morestack_noctxt)
	MOVQ	DX, (g_sched+gobuf_ctxt)(DI)
	// if g == m.g0 { badmorestackg0(); abort() }
	MOVQ	m_g0(BX), SI
	CMPQ	DI, SI
	JNE	notg0
	MOVL	$const_throw_morestackOnG0, AX
	CALL	runtime·throw(SB)
notg0:
	// Cannot grow signal stack (m->gsignal): if g == m.gsignal { badmorestackgsignal(); abort() }
	MOVQ	m_gsignal(BX), SI
	CMPQ	DI, SI
	JNE	notgsignal
	MOVL	$const_throw_morestackOnGsignal, AX
	CALL	runtime·throw(SB)
notgsignal:
	// Called from f. Set m->morebuf to f's caller: morebuf.pc = f's caller's pc
	MOVQ	8(SP), AX
	MOVQ	AX, (m_morebuf+gobuf_pc)(BX)
	// morebuf.sp = f's caller's SP
	LEAQ	16(SP), AX
	MOVQ	AX, (m_morebuf+gobuf_sp)(BX)
	// morebuf.g = g
	MOVQ	DI, (m_morebuf+gobuf_g)(BX)
	// Call newstack on m->g0's stack: g(CX) = m.g0
	MOVQ	m_g0(BX), BX
	MOVQ	BX, (TLS)
	// SP = g0.sched.sp
	MOVQ	(g_sched+gobuf_sp)(BX), SP
	// clear frame pointer, as caller may execute on another M
	MOVQ	$0, BP
	// newstack(): stack.go, in Python; it ends in gogo(&gp.sched) and returns that gobuf in AX
	CALL	runtime·newstack(SB)
	// gogo(&gp.sched): BX = gobuf, DX = gobuf.g
	MOVQ	AX, BX
	MOVQ	gobuf_g(BX), DX
	// make sure g != nil
	MOVQ	0(DX), CX
	JMP	runtime·gogo(SB)

// morestack but not preserving ctxt: what the compiler calls from functions
// that are not closures.
TEXT runtime·morestack_noctxt(SB), NOSPLIT, $0
	// DX = 0: no closure context to save
	MOVL	$0, DX
	JMP	runtime·morestack(SB)

// gogo<>: resume the context in the gobuf in BX, whose g is in DX.
TEXT runtime·gogo(SB), NOSPLIT, $0
	// get_tls(CX); g(CX) = DX
	MOVQ	DX, (TLS)
	// set the g register
	MOVQ	DX, R14
	// restore SP
	MOVQ	gobuf_sp(BX), SP
	// DX = the closure context
	MOVQ	gobuf_ctxt(BX), DX
	// restore BP
	MOVQ	gobuf_bp(BX), BP
	// clear to help garbage collector: gobuf.sp, gobuf.ctxt, gobuf.bp = 0
	MOVQ	$0, gobuf_sp(BX)
	MOVQ	$0, gobuf_ctxt(BX)
	MOVQ	$0, gobuf_bp(BX)
	// jump to gobuf.pc
	MOVQ	gobuf_pc(BX), BX
	JMP	BX
