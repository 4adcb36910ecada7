"""Goroutine stacks: the prologue check, morestack, copystack, shrinkstack, limits."""

import re
import subprocess

import pytest
from unicorn import UC_HOOK_CODE
from unicorn.x86_const import UC_X86_REG_RSP

from emu import gobuild
from emu import layout as L
from emu.errors import GomemuError
from emu.machine import Machine
from runtime_model import stack as S
from runtime_model.mem_linux import RuntimeThrow

# Prologue forms and the frame sizes that pick them (internal/abi: StackSmall 128, StackBig 4096).
FORMS = [("small", 0x40), ("small", 128), ("large", 136), ("large", 0x200), ("large", 4096),
         ("huge", 4104), ("huge", 0x2000)]


def probe_source(name, framesize):
    """A function with the compiler's prologue for `framesize` that returns 1."""
    check = "\n".join(f"\t{mn}\t{ops}" for mn, ops in S.prologue(framesize))
    return f"""TEXT {name}(SB), 0, ${framesize - 8}-0
{check}
	PUSHQ	BP
	MOVQ	SP, BP
	SUBQ	${framesize - 8}, SP
	MOVQ	$1, AX
	ADDQ	${framesize - 8}, SP
	POPQ	BP
	RET
morestack:
	CALL	runtime·morestack_noctxt(SB)
	JMP	{name}(SB)
"""


# The handwritten machine: its morestack/gogo and the FrameMaps declared for gomemu's own
# routines (test.rec*); compiled Go code with the binary's stack maps on the real morestack
# is tests/test_program.py's.
HANDWRITTEN = {"handwritten": True, "size_specialized": False}


@pytest.fixture(scope="module")
def m():
    m = Machine(**HANDWRITTEN)
    m.load([(f"probe{n}.s", probe_source(f"test.probe{n}", n)) for _, n in FORMS])
    for size in (0x30, 0x200, 0x2000):
        m.load([(f"rec{size}.s", S.recursion_source(f"test.rec{size}", size))])
        m.runtime.stacks.set_frame_map(f"test.rec{size}", S.recursion_frame_map(size))
    m.runtime.stacks.poison_copy = True      # a pointer left unadjusted reads 0xfcfc...
    return m


def newstacks(m):
    return m.callout_counts["runtime.newstack"]


def test_stack_constants_are_go_1_27s(go_asm_h):
    for name, value in [("stackMin", L.STACK_MIN), ("fixedStack", L.FIXED_STACK),
                        ("stackNosplit", L.STACK_NOSPLIT), ("stackGuard", L.STACK_GUARD),
                        ("_StackCacheSize", L.STACK_CACHE_SIZE), ("_NumStackOrders", L.NUM_STACK_ORDERS),
                        ("_Grunning", L.G_RUNNING), ("_Gwaiting", L.G_WAITING), ("_Gdead", L.G_DEAD),
                        ("_Gcopystack", L.G_COPYSTACK), ("stackForceMove", L.STACK_FORCE_MOVE)]:
        assert go_asm_h[f"const_{name}"] == value, name


def test_new_goroutine_has_a_2k_stack_with_the_guard_and_runs_as_the_current_g(m):
    g = m.new_goroutine()
    lo, hi = m.runtime.stacks.stack(g)
    assert hi - lo == 2048
    assert m.mem.u64(g + L.G.stackguard0) == lo + 928
    m.load([("cur.s", "TEXT test.curg(SB), NOSPLIT, $0\n\tMOVQ (TLS), AX\n\tCMPQ AX, R14\n\tJNE bad\n"
                      "\tMOVQ g_m(R14), BX\n\tMOVQ m_curg(BX), BX\n\tCMPQ BX, AX\n\tJNE bad\n\tRET\n"
                      "bad:\n\tMOVQ $0, AX\n\tRET\n")])
    assert m.call_on(g, "test.curg") == g
    assert m.mem.u64(m.symbol("runtime.m0") + L.M.curg) == m.symbol("runtime.g0")
    m.goexit(g)


@pytest.mark.parametrize("form, n", FORMS)
def test_prologue_calls_morestack_exactly_when_gos_condition_says_so(m, form, n):
    assert S.prologue_form(n) == form
    g = m.new_goroutine()
    sp = m.mem.u64(g + L.G.sched + L.Gobuf.sp) - 8       # SP at the function's entry
    threshold = (sp - (n - 128)) if n > 128 else sp     # morestack iff (SP - (n-128)) <= stackguard0
    for guard in range(threshold - 12, threshold + 13):  # byte by byte across the boundary
        m.mem.w64(g + L.G.stackguard0, guard)
        before = newstacks(m)
        assert m.call_on(g, f"test.probe{n}") == 1
        grew = newstacks(m) - before
        assert grew == (guard >= threshold) == S.morestack_condition(n, sp, guard), guard
        if grew:      # back to a 2 KiB stack for the next probe
            m.goexit(g)
            g = m.new_goroutine()
            sp = m.mem.u64(g + L.G.sched + L.Gobuf.sp) - 8
            threshold = (sp - (n - 128)) if n > 128 else sp
    m.goexit(g)


def test_huge_prologue_catches_the_wrap_around_that_the_compare_alone_would_pass(m):
    """SP below the frame size: SP - (n - 128) wraps to a huge number above any guard."""
    n = 0x7FF000 + 128 + 8                   # n - 128 is 8 more than SP below
    m.load([("wrap.s", probe_source("test.probewrap", n)), ("nowrap.s", probe_source("test.probenowrap", n - 16))])
    sp = 0x7FF000                            # in the data segment, below 2^31
    g = m.new_goroutine()
    m.mem.w64(g + L.G.stackguard0, 0)
    assert (sp - (n - 128)) & (2**64 - 1) > 0     # the CMPQ/JLS alone would not call morestack
    before = newstacks(m)
    with pytest.raises(RuntimeThrow, match="split stack overflow"):   # newstack: this SP is not in g's stack
        m.call_on(g, "test.probewrap", sp=sp)
    assert newstacks(m) == before + 1
    g = m.new_goroutine()
    m.mem.w64(g + L.G.stackguard0, 0)
    assert m.call_on(g, "test.probenowrap", sp=sp) == 1                # SP - (n-16-128) = 8 > 0: passes
    assert newstacks(m) == before + 1
    m.goexit(g)


def test_morestack_saves_g_sched_and_m_morebuf_as_go_does(m):
    seen = {}

    def stop_at_newstack(co):
        if co.symbol == "runtime.newstack":
            mem, g, m0 = m.mem, seen["g"], m.symbol("runtime.m0")
            seen.update(sched_pc=mem.u64(g + L.G.sched + L.Gobuf.pc), sched_sp=mem.u64(g + L.G.sched + L.Gobuf.sp),
                        morebuf_pc=mem.u64(m0 + L.M.morebuf + L.Gobuf.pc),
                        morebuf_sp=mem.u64(m0 + L.M.morebuf + L.Gobuf.sp),
                        morebuf_g=mem.u64(m0 + L.M.morebuf + L.Gobuf.g), tls=mem.u64(m0 + L.M.tls),
                        rsp=m.regs.read(UC_X86_REG_RSP))
    g = seen["g"] = m.new_goroutine()
    entry_sp = m.mem.u64(g + L.G.sched + L.Gobuf.sp) - 8
    m.mem.w64(g + L.G.stackguard0, entry_sp)            # fail the check at once
    m.on_callout = stop_at_newstack
    try:
        assert m.call_on(g, "test.probe64") == 1
    finally:
        m.on_callout = None
    prog = next(p for p in m.text.programs if "test.probe64" in p.symbols)
    after_call = next(e.end for e in prog.listing if e.symbol == "test.probe64" and e.disasm.startswith("call"))
    assert seen["sched_pc"] == after_call and seen["sched_sp"] == entry_sp
    assert seen["morebuf_pc"] == L.EXIT_ADDR and seen["morebuf_sp"] == entry_sp + 8 and seen["morebuf_g"] == g
    assert seen["tls"] == m.symbol("runtime.g0")                       # newstack runs on g0 ...
    assert seen["rsp"] == L.STACK.end - 0x100 - 8                      # ... at g0.sched.sp
    m.goexit(g)


@pytest.mark.parametrize("frame", [0x30, 0x200, 0x2000])
def test_deep_recursion_doubles_the_stack_and_returns_the_right_result(m, frame):
    st = m.runtime.stacks
    g = m.new_goroutine()
    v = m.persistentalloc(8)
    m.mem.w64(v, 7)
    depth = {0x30: 1000, 0x200: 200, 0x2000: 20}[frame]
    first = len(st.copies)
    assert m.call_on(g, f"test.rec{frame}", depth, v) == S.recursion_result(depth, 7)
    grows = st.copies[first:]
    sizes = [c.old_size for c in grows] + [grows[-1].new_size]
    assert sizes[0] == 2048 and all(b >= 2 * a for a, b in zip(sizes, sizes[1:]))
    if frame == 0x30:
        assert sizes == [2048, 4096, 8192, 16384, 32768, 65536]
    for c in grows:
        assert c.adjusted >= 2 * (c.frames - 1)     # p and q in every frame below the top
        assert c.used <= c.old_size
    m.goexit(g)


def test_every_pointer_into_the_stack_is_valid_after_each_copy(m):
    """Walk the frames at the bottom of the recursion and follow every recorded pointer."""
    st = m.runtime.stacks
    prog = next(p for p in m.text.programs if "test.rec48" in p.symbols)
    bottom = next(e.address for e in prog.listing if e.symbol == "test.rec48" and e.source.startswith("MOVQ\t(BX), AX"))
    g = m.new_goroutine()
    v = m.persistentalloc(8)
    m.mem.w64(v, 7)
    walked = []

    def at_bottom(uc, addr, size, ud):
        sp = uc.reg_read(UC_X86_REG_RSP)
        lo, hi = st.stack(g)
        frames = st.frames(bottom, sp, top=False)
        rows = []
        for f in frames:
            x, p, q = (m.mem.u64(f.sp + o) for o in (0x10, 0x18, 0x20))
            rows.append((f.sp, f.varp, x, p, q, m.mem.u64(f.varp), m.mem.u64(p) if lo <= p < hi else None))
        walked.append((lo, hi, rows))
    h = m.uc.hook_add(UC_HOOK_CODE, at_bottom, begin=bottom, end=bottom)
    m.uc.ctl_remove_cache(prog.base, prog.end)     # hooks fire only in code translated after them
    try:
        n = 400
        assert m.call_on(g, "test.rec48", n, v) == S.recursion_result(n, 7)
    finally:
        m.uc.hook_del(h)
    (lo, hi, rows), = walked
    assert hi - lo >= 32768 and len(st.copies) >= 4
    assert len(rows) == n + 1
    for depth, (sp, varp, x, p, q, saved_bp, px) in enumerate(rows):
        assert q == sp + 0x10                             # q := &x points at this frame's x
        caller = rows[depth + 1] if depth + 1 < len(rows) else None
        if caller:
            assert p == caller[0] + 0x10 and px == caller[2]   # p := &caller.x, and reads it
            assert saved_bp == caller[1]                       # the frame pointer chain
        else:
            assert p == v and saved_bp == 0                    # the first frame: p from the caller, BP 0
    xs = [r[2] for r in rows]
    assert xs == list(range(0, n + 1))


def test_shrinking_at_gc_halves_an_idle_large_stack_and_never_below_2k(m):
    st = m.runtime.stacks
    g = m.new_goroutine()
    v = m.persistentalloc(8)
    m.mem.w64(v, 1)
    m.call_on(g, "test.rec512", 100, v)            # 100 * 520 bytes: a 64 KiB stack
    lo, hi = st.stack(g)
    assert hi - lo == 65536
    sizes = []
    for _ in range(8):
        copies = [c for c in m.gc_shrink_stacks() if c.goid == m.mem.u64(g + L.G.goid)]
        lo, hi = st.stack(g)
        sizes.append(hi - lo)
        assert len(copies) <= 1
    assert sizes == [32768, 16384, 8192, 4096, 2048, 2048, 2048, 2048]
    assert m.call_on(g, "test.rec48", 30, v) == S.recursion_result(30, 1)      # still runs, grows again
    m.goexit(g)


def test_shrinkstack_keeps_a_stack_that_uses_a_quarter_counting_the_nosplit_reserve(m):
    st = m.runtime.stacks
    g = m.new_goroutine()
    v = m.persistentalloc(8)
    m.call_on(g, "test.rec48", 300, v)
    lo, hi = st.stack(g)
    size = hi - lo
    # in use: hi - sched.sp + stackNosplit; shrink only when that is < size/4
    for used, shrinks in [(size // 4 - 800, False), (size // 4 - 800 - 8, True)]:
        m.mem.w64(g + L.G.sched + L.Gobuf.sp, hi - used)
        before = len(st.copies)
        from runtime_model.mem_linux import run_direct
        st.gc_running = True
        rec = run_direct(st.shrinkstack(g), m.kernel)
        st.gc_running = False
        assert (rec is not None) == shrinks and len(st.copies) - before == int(shrinks)
        lo, hi = st.stack(g)
    m.goexit(g)


def test_small_stacks_come_from_the_per_p_cache_then_the_global_pool():
    m = Machine(**HANDWRITTEN)
    st = m.runtime.stacks
    assert st.cache_state(0) == (0, 0)
    g = m.new_goroutine()
    head, size = st.cache_state(0)
    assert size == L.STACK_CACHE_SIZE // 2 - 2048          # refill grabs half a cache, one handed out
    lo, _ = st.stack(g)
    s = m.runtime.mheap.span_of(lo)
    assert s.elemsize == 2048 and s.npages == L.STACK_CACHE_SIZE // 8192 and s.allocCount == 8
    m.goexit(g)                                             # a 2 KiB stack stays with its g
    assert st.cache_state(0)[1] == size
    lo2 = st.stack(m.new_goroutine())[0]                     # gfget: the same g, the same stack
    assert lo2 == lo
    st.stackfree(lo2, lo2 + 2048)
    assert st.cache_state(0) == (lo2, size + 2048)           # stackfree pushes on the cache's list
    st.stackcache_clear(m.runtime.mcache)                   # all 8 back to the pool: the span goes to the heap
    assert st.cache_state(0) == (0, 0) and st.pool[0] == [] and m.runtime.mheap.stacks_in_use == 0


def test_large_stacks_get_their_own_span(m):
    st = m.runtime.stacks
    g = m.new_goroutine()
    v = m.persistentalloc(8)
    m.call_on(g, "test.rec48", 1000, v)
    lo, hi = st.stack(g)
    s = m.runtime.mheap.span_of(lo)
    assert hi - lo == 65536 and s.base() == lo and s.npages == 8 and s.elemsize == 65536
    m.goexit(g)


def test_set_max_stack_64k_fails_with_gos_message_and_the_machine_stays_usable(m):
    old = m.set_max_stack(64 << 10)
    assert old == 1000000000
    try:
        g = m.new_goroutine()
        v = m.persistentalloc(8)
        with pytest.raises(S.StackOverflow) as e:
            m.call_on(g, "test.rec512", 1000, v)
        lines = str(e.value).splitlines()
        assert lines[0] == "runtime: goroutine stack exceeds 65536-byte limit"
        assert lines[-1] == "fatal error: stack overflow"
        assert isinstance(e.value, GomemuError)
        assert m.mem.u32(g + L.G.atomicstatus) == L.G_DEAD
        g2 = m.new_goroutine()
        assert m.call_on(g2, "test.rec48", 500, v) == S.recursion_result(500, 0)
        x, _ = m.malloc_small_noscan(16)
        assert x
    finally:
        m.set_max_stack(old)


def test_default_limit_is_1000000000_bytes():
    """A frame that needs 600 MB: newstack doubles 2 KiB until it fits, 1 GiB > the limit."""
    m = Machine(**HANDWRITTEN)
    m.load([("rec.s", S.recursion_source("test.rec", 0x30))])
    m.runtime.stacks.set_frame_map("test.rec", S.FrameMap(600_000_000, locals=(0x18, 0x20), args=(8,)))
    g = m.new_goroutine()
    m.mem.w64(g + L.G.stackguard0, L.STACK_PREEMPT - 1)      # this check fails
    with pytest.raises(S.StackOverflow, match="^runtime: goroutine stack exceeds 1000000000-byte limit\n"):
        m.call_on(g, "test.rec", 1, m.persistentalloc(8))
    assert m.runtime.stacks.copies == []


RECURSE_GO = """package main

import "fmt"

//go:noinline
func recurse(n int, p *int) int {
	var buf [60]int
	for i := range buf {
		buf[i] = n + i
	}
	if n == 0 {
		return *p + buf[7]
	}
	return recurse(n-1, &buf[n%60]) + buf[n%60] + *p
}

func main() {
	x := 5
	fmt.Println(recurse(1000, &x))
}
"""


@pytest.fixture(scope="module")
def recurse_binary(go, go_env, tmp_path_factory):
    d = tmp_path_factory.mktemp("recurse")
    fn = gobuild.build_functions(RECURSE_GO, ["recurse"], go=go, env=go_env, workdir=d)["recurse"]
    real = subprocess.run([str(d / gobuild.PROGRAM)], capture_output=True, text=True, timeout=60)
    return fn, int(real.stdout)


def _compiled_recurse(m, fn):
    gobuild.load(m, fn)
    frame = S.frame_size_from_prologue(m, "main.recurse")
    # Its stack map, written from the signature: p (the second register argument) has
    # its spill slot at argp+8; buf holds no pointers.
    m.runtime.stacks.set_frame_map("main.recurse", S.FrameMap(frame, args=(8,)))
    return frame


def test_compiled_go_recursion_grows_its_stack_and_returns_what_the_real_binary_prints(recurse_binary):
    fn, real = recurse_binary
    m = Machine(**HANDWRITTEN)
    assert _compiled_recurse(m, fn) == 512
    st = m.runtime.stacks
    st.poison_copy = True
    g = m.new_goroutine()
    x = st.stack(g)[1] - 8          # x lives on the goroutine's stack, as in main
    m.mem.w64(x, 5)
    assert m.call_on(g, "main.recurse", 1000, x) == real
    sizes = [c.old_size for c in st.copies] + [st.copies[-1].new_size]
    assert sizes == [2048 << i for i in range(len(sizes))] and sizes[-1] == 524288


def test_compiled_go_recursion_overflows_at_set_max_stack_64k(recurse_binary):
    fn, real = recurse_binary
    m = Machine(**HANDWRITTEN)
    _compiled_recurse(m, fn)
    m.set_max_stack(64 << 10)
    g = m.new_goroutine()
    x = m.runtime.stacks.stack(g)[1] - 8
    m.mem.w64(x, 5)
    with pytest.raises(S.StackOverflow, match="exceeds 65536-byte limit"):
        m.call_on(g, "main.recurse", 1000, x)
    m.set_max_stack(1000000000)
    g = m.new_goroutine()
    x = m.runtime.stacks.stack(g)[1] - 8
    m.mem.w64(x, 5)
    assert m.call_on(g, "main.recurse", 1000, x) == real


def test_our_prologues_are_the_compilers(go, go_env, tmp_path):
    """Functions with small, large and huge frames: the compiler's stack checks
    assemble from S.prologue to the same instructions."""
    src = "package main\n\n"
    for name, words in [("small", 4), ("large", 60), ("huge", 1100)]:
        src += (f"//go:noinline\nfunc {name}(n int) int {{\n\tvar b [{words}]int\n\tfor i := range b {{ b[i] = n + i }}\n"
                f"\tif n == 0 {{ return b[3] }}\n\treturn {name}(n-1) + b[n%{words}]\n}}\n\n")
    src += "func main() { println(small(3) + large(3) + huge(3)) }\n"
    fns = gobuild.build_functions(src, ["small", "large", "huge"], go=go, env=go_env, workdir=tmp_path)
    m = Machine(**HANDWRITTEN)
    for name in ("small", "large", "huge"):
        gobuild.load(m, fns[name])
        frame = S.frame_size_from_prologue(m, f"main.{name}")
        assert S.prologue_form(frame) == name
        mine = m.load([(f"{name}.s", f"TEXT test.pro{name}(SB), 0, $0\n" + "".join(
            f"\t{mn}\t{ops}\n" for mn, ops in S.prologue(frame)) + "morestack:\n\tRET\n")])
        ours = [e.disasm.split()[0] + " " + re.sub(r"0x[0-9a-f]{6,}", "<target>", e.disasm.split(" ", 1)[1])
                for e in mine.listing[:-1]]
        prog = next(p for p in m.text.programs if f"main.{name}" in p.symbols)
        theirs = [e.disasm.split()[0] + " " + re.sub(r"0x[0-9a-f]{6,}", "<target>", e.disasm.split(" ", 1)[1])
                  for e in prog.listing[:len(ours)]]
        assert ours == theirs, name


def test_gomemu_stack_counts_the_check_and_the_growth(capsys):
    from emu.cli import main
    assert main(["stack", "--depth", "300"]) == 0
    out = capsys.readouterr().out
    passes = [int(ln.split()[-1]) for ln in out.splitlines() if ln.strip().endswith(tuple("0123456789"))
              and "check passes" in ln]
    assert passes == [2, 3, 5]        # CMPQ+JLS; LEAQ+CMPQ+JLS; MOVQ+SUBQ+JCS+CMPQ+JLS (obj6.go stacksplit)
    assert "growth 2048 -> 4096" in out and "pointers adjusted" in out


def test_gomemu_step_stack_shows_a_growth(capsys):
    from emu.cli import main
    assert main(["step", "stack"]) == 0
    out = capsys.readouterr().out
    assert "call-out into Python: runtime.newstack" in out
    assert "(2048 -> 4096 bytes)" in out
    # Go 1.27's own morestack and gogo (ABI0 assembly: their linker names end in .abi0)
    assert "runtime.morestack_noctxt.abi0+0x0" in out and "runtime.gogo.abi0+" in out
    assert out.rstrip().endswith(f"returned {S.recursion_result(20, 0)} (rec(20, &0) = {S.recursion_result(20, 0)})")
