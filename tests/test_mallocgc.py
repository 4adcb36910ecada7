"""Every mallocgc path in machine code: the decisions Go 1.27 makes, per size and type."""

import pytest

from emu import layout as L
from emu.errors import GomemuError
from emu.machine import Machine
from emu.paths import allocate_classified
from runtime_model import sizeclasses as sc
from runtime_model.mgcsweep import finish_cycle
from runtime_model.mspan import MSpan

ENTRY = {"tiny": "runtime.mallocgcTiny", "small-noscan": "runtime.mallocgcSmallNoscan",
         "small-scan": "runtime.mallocgcSmallScanNoHeader",
         "small-scan-header": "runtime.mallocgcSmallScanHeader", "large": "runtime.mallocgcLarge"}


def go_path(size, scan):
    """mallocgc's dispatch, as malloc.go writes it (sizespecializedmalloc off)."""
    if size == 0:
        return "zero"
    if size > sc.MAX_SMALL_SIZE - sc.MALLOC_HEADER_SIZE:
        return "large"
    if not scan:
        return "tiny" if size < sc.TINY_SIZE else "small-noscan"
    return "small-scan" if size <= sc.MIN_SIZE_FOR_MALLOC_HEADER else "small-scan-header"


def _sizes():
    out = set(range(0, 40)) | {32752, 32760, 32761, 32768, 32769, 40960}
    for c in sc.CLASSES[1:]:
        out |= {c.size - 1, c.size, c.size + 1, c.size - 8, c.size - 9}
    return sorted(s for s in out if 0 <= s <= 40 * 1024)


@pytest.fixture(scope="module")
def m():
    """The runtime built with GOEXPERIMENT=nosizespecializedmalloc: mallocgc's own dispatch."""
    return Machine(size_specialized=False)


@pytest.mark.parametrize("scan", [False, True], ids=["noscan", "scan"])
def test_every_size_to_40k_takes_gos_path_class_and_alignment(m, scan):
    for size in _sizes():
        if scan and size < 8:
            continue
        typ = m.runtime.new_type(size, (0,)) if scan else 0
        snap = m.snapshot()
        x = m.mallocgc(size, typ)
        routines = m.counts_since(snap).by_routine()
        path = go_path(size, scan)
        taken = [p for p, sym in ENTRY.items() if sym in routines]
        assert taken == ([] if path == "zero" else [path]), (size, scan, routines)
        if path == "zero":
            assert x == m.symbol("runtime.zerobase")
            continue
        s = m.runtime.mheap.span_of_heap(x)
        assert s is not None, (size, hex(x))
        if path == "large":
            npages = -(-size // sc.PAGE_SIZE)
            assert x == s.base() and x % sc.PAGE_SIZE == 0
            assert (s.spanclass, s.npages, s.elemsize) == (int(not scan), npages, npages * sc.PAGE_SIZE)
            assert (s.freeindex, s.allocCount, s.largeType) == (1, 1, typ)
            continue
        if path == "tiny":
            assert s.spanclass == sc.make_span_class(sc.TINY_SIZE_CLASS, True)
            align = 8 if size % 8 == 0 else 4 if size % 4 == 0 else 2 if size % 2 == 0 else 1
            assert x % align == 0 and (x - s.base()) % 16 + size <= 16
            continue
        header = sc.MALLOC_HEADER_SIZE if path == "small-scan-header" else 0
        cls = sc.size_to_class(size + header)
        assert s.spanclass == sc.make_span_class(cls, not scan), (size, scan)
        assert (x - header - s.base()) % s.elemsize == 0 and x + size <= s.base() + s.nelems * s.elemsize
        if header:
            assert m.mem.u64(x - 8) == typ          # the malloc header points at the type


def test_tiny_blocks_combine_as_go_packs_them():
    m = Machine()
    a, b, c = m.mallocgc(8), m.mallocgc(4), m.mallocgc(4)
    assert (b, c) == (a + 8, a + 12) and a % 16 == 0            # 8+4+4 share one block
    d = m.mallocgc(8)                                            # does not fit: a new block
    assert d // 16 != a // 16
    e, f = m.mallocgc(8), m.mallocgc(12)
    assert e == d + 8
    g = m.mallocgc(1)
    # d's block was full, so f's fresh block (4 bytes left) became the current one.
    assert g == f + 12
    m2 = Machine()
    p8 = m2.mallocgc(8)
    p12 = m2.mallocgc(12)                                        # no room after 8 bytes: a fresh block,
    assert p12 // 16 != p8 // 16
    p4 = m2.mallocgc(4)                                          # but the old block, with 8 bytes left, stays
    assert p4 == p8 + 8
    assert m2.mem.u64(m2.runtime.mcache + L.MCache.tinyAllocs) == 1


def test_small_scan_objects_record_their_pointer_bits_in_the_span():
    m = Machine()
    t = m.runtime.new_type(24, (0, 2))                          # words 0 and 2 are pointers
    xs = [m.mallocgc(24, t) for _ in range(100)]
    s = m.runtime.mheap.span_of_heap(xs[0])
    base, nbytes = s.heap_bits_range()
    bits = int.from_bytes(m.mem.read(base, nbytes), "little")
    for x in xs:
        w = (x - s.base()) // 8
        assert [(bits >> (w + k)) & 1 for k in range(3)] == [1, 0, 1]


def test_array_of_pointer_types_repeat_the_mask_for_the_whole_object():
    m = Machine()
    t = m.runtime.new_type(16, (1,))                            # struct{ n int; p *T }
    x = m.mallocgc(48, t)                                       # [3]struct{...}
    s = m.runtime.mheap.span_of_heap(x)
    base, nbytes = s.heap_bits_range()
    bits = int.from_bytes(m.mem.read(base, nbytes), "little")
    w = (x - s.base()) // 8
    assert [(bits >> (w + k)) & 1 for k in range(6)] == [0, 1, 0, 1, 0, 1]


def test_freed_slots_read_back_zero_after_a_sweep():
    m = Machine()
    per_span = (8192 - 128) // 64                                # GreenTeaGC's inline mark bits take 128 B
    xs = [m.mallocgc(64) for _ in range(2 * per_span)]           # two full spans
    for x in xs:
        m.mem.write(x, b"\xEE" * 64)
    finish_cycle(m.runtime, xs[::2])                             # every other object survives
    again = [m.mallocgc(64) for _ in range(per_span)]
    assert set(again) == set(xs[1::2])                           # the dead slots, reused
    assert all(m.mem.read(x, 64) == bytes(64) for x in again)
    assert all(m.mem.read(x, 64) == b"\xEE" * 64 for x in xs[::2])  # survivors untouched


def test_a_dead_large_object_gives_its_pages_back():
    m = Machine()
    size = 300_000                                               # 37 pages: past the page cache
    x = m.mallocgc(size)
    y = m.mallocgc(size)
    in_use = m.runtime.mheap.pages_in_use
    finish_cycle(m.runtime, [y])
    assert m.runtime.mheap.pages_in_use == in_use - 37
    assert m.runtime.mheap.span_of_heap(x) is None
    assert m.mallocgc(size) == x                                 # first fit finds the same pages


def test_large_objects_are_zeroed_only_when_their_pages_may_be_dirty():
    m = Machine()
    size = 300_000
    x = m.mallocgc(size)
    assert MSpan(m.mem, m.runtime.mheap.span_of_heap(x).addr).needzero == 0   # fresh from mmap
    m.mem.write(x, b"\x55" * 4096)
    finish_cycle(m.runtime, [])
    snap = m.snapshot()
    y = m.mallocgc(size)
    assert y == x and m.mem.read(y, 4096) == bytes(4096)
    assert "runtime.memclrNoHeapPointersChunked" in m.counts_since(snap).by_routine()


def test_allocation_is_black_and_assists_are_charged_while_marking():
    m = Machine()
    m.mallocgc(32)
    m.mem.w8(m.symbol("runtime.writeBarrier"), 1)
    m.mem.w32(m.symbol("runtime.gcBlackenEnabled"), 1)
    g0 = m.symbol("runtime.g0")
    m.mem.w64(g0 + L.G.gcAssistBytes, 100)
    x = m.mallocgc(20)                                           # a 24-byte slot for 20 bytes
    s = m.runtime.mheap.span_of_heap(x)
    assert s.elemsize == 24 and s.is_marked(s.obj_index(x))
    # 100 - 20 (deductAssistCredit) - 4 (the slot's internal fragmentation)
    assert m.mem.u64(g0 + L.G.gcAssistBytes) == 76
    assert not m.runtime.assists
    m.mallocgc(200)                                              # into debt: gcAssistAlloc
    assert m.callout_counts["runtime.gcAssistAlloc"] == 1 and m.runtime.assists


def test_memstats_count_mallocs_frees_and_bytes():
    m = Machine()
    for _ in range(10):
        m.mallocgc(100)                                          # class 112
    m.mallocgc(5)
    m.mallocgc(5)                                                # tiny: shares the first block
    m.mallocgc(100_000)
    st = m.runtime.read_mem_stats()
    assert st["Mallocs"] == 10 + 1 + 1 + 1
    assert st["TotalAlloc"] == 10 * 112 + 16 + 13 * sc.PAGE_SIZE
    assert st["Frees"] == 1                                      # Go counts a tiny combine as a free too
    assert st["HeapObjects"] == st["Mallocs"] - st["Frees"]


@pytest.mark.parametrize("handwritten,logged_size", [(True, 40), (False, 48)], ids=["handwritten", "compiled"])
def test_allocfreetrace_logs_allocs_and_frees_and_is_free_when_off(handwritten, logged_size):
    """gomemu's allocation log (debug.malloc on): Go 1.27's postMallocgcDebug gets the slot
    size, not the requested one, so the compiled runtime's log shows 48 for 40 bytes."""
    m = Machine(handwritten=handwritten)
    m.mallocgc(40)
    assert m.callout_counts["runtime.postMallocgcDebug"] == 0
    m.set_alloc_trace(True)
    x = m.mallocgc(40)
    y = m.mallocgc(50_000, m.runtime.new_type(50_000, (0,), "big"))
    rec = m.runtime.alloc_trace
    assert [(r.event, r.address, r.size, r.elemsize, r.path) for r in rec] == [
        ("alloc", x, logged_size, 48, "small-noscan"),
        ("alloc", y, 50_000 if handwritten else 7 * sc.PAGE_SIZE, 7 * sc.PAGE_SIZE, "large")]
    assert rec[1].type == "big" and rec[1].spanclass == 0
    finish_cycle(m.runtime, [y])
    frees = [r for r in m.runtime.alloc_trace if r.event == "free"]
    assert {r.address for r in frees} >= {x}


def test_each_path_costs_the_same_every_time():
    m = Machine()
    t = m.runtime.new_type(64, (0, 1, 2, 3, 4, 5, 6, 7))
    seen = {}
    for size, typ in [(8, 0)] * 200 + [(64, t)] * 300 + [(2048, 0)] * 100:
        s = allocate_classified(m, size, typ)
        seen.setdefault((size, s.key), set()).add(s.instructions)
    assert all(len(v) == 1 for k, v in seen.items() if "hit" in k[1] or "current block" in k[1]), seen


@pytest.mark.parametrize("bad", [-1, 1 << 41, "16", 2.5])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(GomemuError):
        Machine().mallocgc(bad)


def test_lazy_sweeping_in_cachespan_prefers_partial_swept_then_sweeps_unswept():
    m = Machine()
    per_span = (8192 - 128) // 64
    xs = [m.mallocgc(64) for _ in range(3 * per_span)]          # three full spans of class 64
    spans = sorted({m.runtime.mheap.span_of_heap(x).addr for x in xs})
    live = [x for x in xs if m.runtime.mheap.span_of_heap(x).addr != spans[1]][::2] + \
        [x for x in xs if m.runtime.mheap.span_of_heap(x).addr == spans[1]]   # span 1 stays full
    finish_cycle(m.runtime, live, eager=False)                   # nothing swept yet, but the cached span
    spc = sc.make_span_class(sc.size_to_class(64), True)
    central = m.runtime.mheap.central[spc]
    sg = m.runtime.mheap.sweepgen
    assert len(central.full_unswept(sg)) == 2 and not central.partial_unswept(sg)
    assert len(central.partial_swept(sg)) == 1                   # the mcache's span, swept when flushed
    got = [m.mallocgc(64) for _ in range(per_span // 2 + per_span // 2)]
    # First the swept partial span's dead slots, then the oldest unswept full span, swept on
    # demand; the other one is never needed and stays unswept.
    assert len(set(got)) == len(got) and not set(got) & set(live)
    assert {m.runtime.mheap.span_of_heap(x).addr for x in got} == {spans[0], spans[2]}
    assert MSpan(m.mem, spans[0]).sweepgen == sg + 3             # swept, now cached
    assert MSpan(m.mem, spans[1]).sweepgen == sg - 2             # still waiting for a sweep
    assert [s.addr for s in central.full_unswept(sg)] == [spans[1]]
    assert len(m.runtime.refills) == 3 + 2                       # no new span was needed


def test_an_unswept_span_that_stays_full_goes_to_the_full_swept_set():
    m = Machine()
    per_span = (8192 - 128) // 64
    xs = [m.mallocgc(64) for _ in range(3 * per_span)]
    spans = sorted({m.runtime.mheap.span_of_heap(x).addr for x in xs})
    in_span = {a: [x for x in xs if m.runtime.mheap.span_of_heap(x).addr == a] for a in spans}
    live = in_span[spans[0]] + in_span[spans[1]][::2] + in_span[spans[2]]     # span 0 stays full
    finish_cycle(m.runtime, live, eager=False)
    spc = sc.make_span_class(sc.size_to_class(64), True)
    central = m.runtime.mheap.central[spc]
    sg = m.runtime.mheap.sweepgen
    snap = m.snapshot()
    got = [m.mallocgc(64) for _ in range(per_span // 2)]
    assert {m.runtime.mheap.span_of_heap(x).addr for x in got} == {spans[1]}
    assert [s.addr for s in central.full_swept(sg)] == [spans[2], spans[0]]
    # cacheSpan asked the machine code's nextFreeIndex about the full span
    assert "runtime.(*mspan).nextFreeIndex" in m.counts_since(snap).by_routine()


def test_mallocgc_grows_a_short_goroutine_stack_and_keeps_its_arguments():
    m = Machine()
    g = m.new_goroutine()
    lo = m.mem.u64(g + L.G.stack + L.Stack.lo)
    t = m.runtime.new_type(40, (1,))
    x = m.call_on(g, "runtime.mallocgc", 40, t, 1, sp=lo + 900)   # below stackguard0: morestack
    new_lo, new_hi = (m.mem.u64(g + L.G.stack + f) for f in (L.Stack.lo, L.Stack.hi))
    assert new_hi - new_lo == 4096 and new_lo != lo                # copied to a 4 KiB stack
    s = m.runtime.mheap.span_of_heap(x)                            # size, type and needzero survived
    assert (s.elemsize, s.noscan()) == (48, False)


def test_free_os_memory_returns_free_pages_with_madvise_and_they_come_back_zero():
    m = Machine()
    size = 300_000                                               # 37 pages each
    xs = [m.mallocgc(size) for _ in range(4)]
    for x in xs:
        m.mem.write(x, b"\x77" * size)                           # the program touches them
    rss = m.kernel.rss_bytes()
    finish_cycle(m.runtime, xs[:1])                              # three large objects die
    released = m.free_os_memory()
    advice = [s for s in m.kernel.log if s.name == "madvise"]
    assert released >= 3 * 37 * sc.PAGE_SIZE and advice           # through real SYSCALLs
    assert all(str(s).startswith("madvise(") and s.args[2] == 4 for s in advice)   # MADV_DONTNEED
    assert m.kernel.rss_bytes() <= rss - 3 * 37 * sc.PAGE_SIZE
    assert m.runtime.read_mem_stats()["HeapReleased"] >= released
    snap = m.snapshot()
    y = m.mallocgc(size)                                          # scavenged pages are zero already
    assert y in xs[1:] and m.mem.read(y, size) == bytes(size)
    assert "runtime.memclrNoHeapPointersChunked" not in m.counts_since(snap).by_routine()
