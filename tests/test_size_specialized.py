"""Machine(size_specialized=True, handwritten=True): Go 1.27's GOEXPERIMENT sizespecializedmalloc.

What mallocgc must call is read from the installed Go's malloc_tables_generated.go
and malloc.go's rule (noscan under maxTinySize: mallocgcTinySC2), not from our code;
addresses, span classes and statistics are compared with a generic machine."""

import random
import re
import subprocess
from pathlib import Path

import pytest

from emu import layout as L
from emu.machine import Machine
from emu.paths import allocate_classified
from runtime_model.mem_linux import RuntimeThrow
from runtime_model.mgcsweep import finish_cycle

SIZES = range(81)
SC_ROUTINE = re.compile(r"runtime\.mallocgc(TinySC\d+|SmallNoScanSC\d+|SmallScanNoHeaderSC\d+)$")


@pytest.fixture(scope="module")
def go_tables(go):
    root = Path(subprocess.run([go, "env", "GOROOT"], capture_output=True, text=True, check=True).stdout.strip())
    text = (root / "src/runtime/malloc_tables_generated.go").read_text()
    tables = {}
    for name, body in re.findall(r"var (\w+) = \[\d+\]func\([^)]*\) unsafe\.Pointer\{(.*?)\}", text, re.S):
        tables[name] = ["runtime." + e.strip() for e in body.split(",") if e.strip()]
    assert set(tables) == {"mallocScanTable", "mallocNoScanTable"}
    assert all(len(t) == 81 for t in tables.values())
    return tables


def go_callee(tables, size, scan):
    """malloc.go (sizeSpecializedMallocEnabled): the function mallocgc calls for size < 81."""
    if size == 0:
        return None                                    # &zerobase, before the tables
    if not scan:
        return "runtime.mallocgcTinySC2" if size < 16 else tables["mallocNoScanTable"][size]
    return tables["mallocScanTable"][size]


@pytest.fixture(scope="module")
def spec():
    return Machine(size_specialized=True, handwritten=True)


def _typ(m, size, scan):
    return m.runtime.new_type(size, (0,)) if scan else 0


@pytest.mark.parametrize("name, scan", [("mallocScanTable", True), ("mallocNoScanTable", False)])
def test_tables_hold_the_routines_of_gos_tables(spec, go_tables, name, scan):
    base = spec.symbol("runtime." + name)
    by_addr = {a: n for n, a in spec.program.symbols.items()}
    got = [by_addr.get(spec.mem.u64(base + 8 * i)) for i in SIZES]
    assert got == go_tables[name]


@pytest.mark.parametrize("scan", [False, True], ids=["noscan", "scan"])
def test_every_size_below_81_runs_the_routine_go_calls_with_the_generic_slot(go_tables, scan):
    spec, gen = Machine(size_specialized=True, handwritten=True), Machine(size_specialized=False, handwritten=True)
    for size in SIZES:
        if scan and size < 8:       # no Go type with pointers is smaller than a pointer
            continue
        want = go_callee(go_tables, size, scan)
        snap = spec.snapshot()
        x = spec.mallocgc(size, _typ(spec, size, scan))
        ran = [r for r in spec.counts_since(snap).by_routine() if SC_ROUTINE.match(r)]
        assert ran == ([want] if want else []), (size, scan)
        y = gen.mallocgc(size, _typ(gen, size, scan))
        assert x == y, (size, scan, hex(x), hex(y))
        if size:
            s, t = spec.runtime.mheap.span_of_heap(x), gen.runtime.mheap.span_of_heap(y)
            assert (s.spanclass, s.elemsize) == (t.spanclass, t.elemsize), size


def test_a_mixed_sequence_gives_the_generic_addresses_stats_and_heap_bits():
    rng = random.Random(27)
    ops = [(rng.choice([0, 1, 5, 8, 12, 15, 16, 17, 24, 33, 48, 64, 79, 80, 81, 96, 600]), rng.random() < 0.4)
           for _ in range(3000)]
    machines = [Machine(size_specialized=False, handwritten=True), Machine(size_specialized=True, handwritten=True)]
    out = []
    for m in machines:
        addrs = []
        # a collection in between frees two thirds; the second round reuses their slots and
        # their heap bits with types whose pointers differ from the first round's
        for rnd in range(2):
            types = {}
            for i, (size, scan) in enumerate(ops):
                scan = scan and size >= 8
                if scan and size not in types:
                    words = (0, size // 8 - 1) if rnd == 0 and size >= 16 else (size // 8 - 1,)
                    types[size] = m.runtime.new_type(size, words)
                addrs.append(m.mallocgc(size, types[size] if scan else 0))
            if rnd == 0:
                finish_cycle(m.runtime, live=[a for a in addrs[::3] if a != m.symbol("runtime.zerobase")])
        spans = sorted((m.runtime.mheap.span_of_heap(a) for a in addrs if a != m.symbol("runtime.zerobase")),
                       key=lambda s: s.base())
        # the heap bitmaps of scan spans: the last 256 bytes of each page
        bitmaps = [m.mem.read(s.base() + L.PAGE_SIZE - 256, 256) for s in dict.fromkeys(spans)
                   if s.spanclass % 2 == 0 and s.elemsize <= 512]
        out.append((addrs, m.runtime.read_mem_stats(), m.runtime.mem_profile, bitmaps,
                    m.mem.u64(m.runtime.mcache + L.MCache.scanAlloc)))
    assert out[0][0] == out[1][0]
    assert out[0][1] == out[1][1]
    assert out[0][2] == out[1][2] and out[0][2]
    assert out[0][3] == out[1][3] and any(any(b) for b in out[0][3])
    assert out[0][4] == out[1][4]


@pytest.mark.parametrize("size, scan, slow, generic", [
    (12, False, "runtime.mallocgcTinySlowPath", "runtime.mallocgcTiny"),     # 12 + 12: a new block
    (20, False, "runtime.mallocgcSmallNoScanSlowPath", "runtime.mallocgcSmallNoscan"),
    (40, True, "runtime.mallocgcSmallScanSlowPath", "runtime.mallocgcSmallScanNoHeader"),
])
def test_force_slow_path_while_marking_charges_assists_and_allocates_black(size, scan, slow, generic):
    got = []
    for m in (Machine(size_specialized=False, handwritten=True), Machine(size_specialized=True, handwritten=True)):
        g0 = m.symbol("runtime.g0")
        m.mallocgc(size, _typ(m, size, scan))
        m.mem.w8(m.symbol("runtime.writeBarrier"), 1)
        m.mem.w32(m.symbol("runtime.gcBlackenEnabled"), 1)
        m.mem.w64(g0 + L.G.gcAssistBytes, 1000)
        snap = m.snapshot()
        x = m.mallocgc(size, _typ(m, size, scan))
        routines = m.counts_since(snap).by_routine()
        s = m.runtime.mheap.span_of_heap(x)
        got.append((x, m.mem.u64(g0 + L.G.gcAssistBytes), s.is_marked(s.obj_index(x))))
        if m.size_specialized:
            sc = [r for r in routines if SC_ROUTINE.match(r)]
            assert len(sc) == 1 and slow in routines and generic in routines, routines
            assert allocate_classified(m, size, _typ(m, size, scan)).path.startswith(
                ("tiny (SC2 slow path)", "small noscan (SC", "small scan, heap bits (SC"))
    assert got[0] == got[1]
    assert got[1][1] < 1000 and got[1][2]


def test_force_slow_path_for_allocfreetrace_logs_like_the_generic_path():
    logs = []
    for m in (Machine(size_specialized=False, handwritten=True), Machine(size_specialized=True, handwritten=True)):
        m.set_alloc_trace(True)
        snap = m.snapshot()
        for size, scan in [(5, False), (3, False), (16, False), (72, False), (24, True), (8, True)]:
            m.mallocgc(size, _typ(m, size, scan))
        routines = m.counts_since(snap).by_routine()
        assert ("runtime.mallocgcSmallScanSlowPath" in routines) == m.size_specialized
        logs.append([(r.address, r.size, r.elemsize, r.spanclass, r.path) for r in m.runtime.alloc_trace])
    assert logs[0] == logs[1] and len(logs[0]) == 6


def _hit_counts(m, size, scan, n=300):
    typ = _typ(m, size, scan)
    out = {}
    for _ in range(n):
        s = allocate_classified(m, size, typ)
        out.setdefault(s.key, set()).add(s.instructions)
    return out


@pytest.mark.parametrize("scan", [False, True], ids=["noscan", "scan"])
def test_the_specialised_hit_path_is_constant_per_class_and_shorter_than_the_generic(go_tables, scan):
    spec, gen = Machine(size_specialized=True, handwritten=True), Machine(size_specialized=False, handwritten=True)
    for size in range(16 if not scan else 8, 81, 8):
        copy = re.search(r"SC\d+$", go_callee(go_tables, size, scan)).group(0)
        entry = "small scan, heap bits" if scan else "small noscan"
        sc = _hit_counts(spec, size, scan)
        g = _hit_counts(gen, size, scan)
        hit = sc[f"{entry} ({copy}): hit (nextFreeFast)"]
        ghit = g[f"{entry}: hit (nextFreeFast)"]
        elemsize = int(spec.runtime.mheap.span_of_heap(spec.mallocgc(size, _typ(spec, size, scan))).elemsize)
        if not scan or elemsize & (elemsize - 1) == 0:
            # no straddling bitmap words to test: one count per class
            assert len(hit) == 1, (size, hit)
        assert max(hit) < min(ghit), (size, hit, ghit)


def test_the_specialised_tiny_paths_are_constant_and_shorter():
    spec, gen = Machine(size_specialized=True, handwritten=True), Machine(size_specialized=False, handwritten=True)
    for size in (1, 2, 4, 8):
        sc, g = _hit_counts(spec, size, False), _hit_counts(gen, size, False)
        for sub in ("into the current block", "new block: hit (nextFreeFast)"):
            assert len(sc[f"tiny (SC2): {sub}"]) == 1
            assert max(sc[f"tiny (SC2): {sub}"]) < min(g[f"tiny: {sub}"]), (size, sub)


def test_malloc_panic_entries_throw():
    m = Machine(size_specialized=True, handwritten=True)
    entry = m.mem.u64(m.symbol("runtime.mallocNoScanTable") + 8 * 15)
    assert entry == m.symbol("runtime.mallocPanic")
    with pytest.raises(RuntimeThrow, match="not defined for sizeclass"):
        m.call("runtime.mallocPanic", 15, 0, 1)


def test_the_generic_machine_has_no_specialised_code():
    m, spec = Machine(size_specialized=False, handwritten=True), Machine(size_specialized=True, handwritten=True)
    assert not any(SC_ROUTINE.match(r) for r in m.program.symbols)
    assert "runtime.mallocgcTinySlowPath" not in m.program.symbols
    assert {r for r in spec.program.symbols if SC_ROUTINE.match(r)} == {
        "runtime.mallocgcTinySC2", *(f"runtime.mallocgcSmallNoScanSC{c}" for c in range(2, 8)),
        *(f"runtime.mallocgcSmallScanNoHeaderSC{c}" for c in range(1, 8))}


def test_step_annotated_and_report_show_the_specialised_paths(capsys):
    from emu.cli import main
    assert main(["step", "malloc", "--size", "16", "--annotated"]) == 0
    out = capsys.readouterr().out
    assert "runtime.mallocgcSmallNoScanSC2+" in out and "forceSlowPath := debug.malloc" in out
    m = Machine(size_specialized=True, handwritten=True)
    m.mallocgc(16)
    n = len(m.trace("runtime.mallocgc", 16, 0, 1))
    assert out.rstrip().splitlines()[-1].startswith(f"-- {n} instructions")
    assert main(["report", "-n", "200", "--size", "16", "--size", "200"]) == 0
    out = capsys.readouterr().out
    handwritten = out.split("gomemu's handwritten routines", 1)[1]
    hit = next(ln for ln in handwritten.splitlines() if "small noscan: hit (nextFreeFast)" in ln and ln.split()[0] == "16")
    hw = Machine(size_specialized=False, handwritten=True)
    hw.mallocgc(16)
    assert hit.split()[-4] == str(len(hw.trace("runtime.mallocgc", 16, 0, 1)))
    default = out.split("(Machine()):", 1)[1].split("GOEXPERIMENT=nosizespecializedmalloc", 1)[0]
    assert "small noscan (SC2): hit (nextFreeFast)" in default and "small noscan: hit" in default   # 200 B: generic


# ---- the compiled runtime's own size-specialised copies ------------------------------------

@pytest.mark.parametrize("name", ["mallocScanTable", "mallocNoScanTable"])
def test_the_compiled_runtimes_tables_call_the_routines_of_gos_tables(go_tables, name):
    """In the linked program each entry is a funcval: its first word is the code address."""
    m = Machine()
    base = m.symbol("runtime." + name)
    got = [m.image.func_at(m.mem.u64(m.mem.u64(base + 8 * i))).name for i in SIZES]
    assert got == go_tables[name]


def test_the_compiled_specialised_and_generic_runtimes_hand_out_the_same_heap():
    """The same mixed allocation sequence through Go 1.27's default runtime and one built with
    GOEXPERIMENT=nosizespecializedmalloc: the same addresses, heap bits and statistics."""
    seqs = []
    for spec in (True, False):
        m = Machine(size_specialized=spec)
        ptr = {size: m.runtime.new_type(size, (0,)) for size in (8, 24, 48, 80)}
        xs = [m.mallocgc(size, ptr[size] if scan else 0)
              for i in range(600) for size, scan in [((8, 12, 16, 24, 48, 64, 80)[i % 7], i % 3 == 0)]
              if not (scan and size not in ptr)]
        bits = [m.mem.read(*m.runtime.mheap.span_of_heap(x).heap_bits_range()) for x in xs[:50]
                if not m.runtime.mheap.span_of_heap(x).noscan()]
        seqs.append((xs, bits, m.runtime.read_mem_stats()))
    assert seqs[0] == seqs[1]
