"""mallocgcSmallNoscan as machine code: the path, the spans, the counts, the failures."""

import subprocess
from collections import Counter

import pytest

from emu import layout as L
from emu.errors import GomemuError
from emu.machine import Machine
from emu.paths import allocate_classified
from runtime_model import sizeclasses as sc
from runtime_model.mspan import MSpan, nelems_for

# These tests walk gomemu's handwritten small-noscan path (its labels, call-outs and
# instruction counts); the compiled runtime's paths are covered by tests/test_cli.py,
# test_program.py and test_size_specialized.py.
HANDWRITTEN = {"handwritten": True, "size_specialized": False}

ONES = (1 << 64) - 1


def cached_span(m, size):
    spc = sc.make_span_class(sc.size_to_class(size), True)
    return MSpan(m.mem, m.mem.u64(m.runtime.mcache + L.MCache.alloc + 8 * spc))


def test_ten_thousand_16_byte_objects_fill_class_2_spans_in_order():
    m = Machine(**HANDWRITTEN)
    nextfree = m.symbol("runtime.(*mcache).nextFree")
    snap = m.snapshot()
    xs = [int(x) for x in m.malloc_batch([16] * 10_000)]
    counts = m.counts_since(snap)
    assert len(set(xs)) == len(xs) and all(x % 16 == 0 for x in xs)
    nelems = nelems_for(2, True, 1)
    assert nelems == (8192 - 128) // 16 == 504          # GreenTeaGC reserves 128 B of inline mark bits
    spans = {}
    for i, x in enumerate(xs):
        s = m.runtime.mheap.span_of(x)
        assert s is not None and s.spanclass == sc.make_span_class(2, True) and s.elemsize == 16
        spans.setdefault(s.addr, []).append((i, x))
    nspans = -(-10_000 // nelems)
    assert len(spans) == nspans
    for members in spans.values():
        s = MSpan(m.mem, m.runtime.mheap.span_of(members[0][1]).addr)
        assert [x for _, x in members] == [s.base() + 16 * j for j in range(len(members))]
        k = len(members)
        # What the model says a fresh span holds after k sequential allocations.
        assert (s.allocCount, s.freeindex) == (k, k)
        assert s.allocCache == ONES >> (k % 64)
    assert m.callout_counts["runtime.(*mcache).refill"] == nspans
    assert len(m.runtime.refills) == nspans
    # nextFree runs once per refill and once per 64-object reload of allocCache.
    full, last = divmod(10_000, nelems)
    reloads = full * ((nelems - 1) // 64) + (last - 1) // 64
    entry_runs = counts.blocks[nextfree][0]
    assert entry_runs == nspans + reloads


@pytest.mark.parametrize("size", sorted({s for c in sc.CLASSES[2:] for s in (c.size, c.size + 1)
                                         if sc.TINY_SIZE <= s <= sc.MAX_SMALL_NOSCAN} | {16, 32760}))
def test_every_class_boundary_lands_in_the_class_go_picks(size):
    m = _shared_machine()
    x, slot = m.malloc_small_noscan(size)
    cls = sc.size_to_class(size)
    s = m.runtime.mheap.span_of(x)
    assert slot == sc.CLASS_TO_SIZE[cls] >= size
    assert s.spanclass == sc.make_span_class(cls, True)
    assert s.npages == sc.CLASS_TO_NPAGES[cls]
    assert (x - s.base()) % s.elemsize == 0 and x + size <= s.limit


_machine = None


def _shared_machine():
    global _machine
    if _machine is None:
        _machine = Machine(**HANDWRITTEN)
    return _machine


@pytest.mark.parametrize("size", [8, 15, 32761, 40000, 0, -1])
def test_sizes_outside_the_small_noscan_path_are_refused_clearly(size):
    with pytest.raises(GomemuError, match="outside the small noscan path"):
        _shared_machine().malloc_small_noscan(size)


def test_the_mcache_hit_path_costs_the_same_every_time():
    m = Machine(**HANDWRITTEN)
    samples = [allocate_classified(m, 16) for _ in range(600)]
    hits = [s for s in samples if s.key == "small noscan: hit (nextFreeFast)"]
    reloads = [s for s in samples if s.key == "small noscan: allocCache reload (nextFree)"]
    assert len(hits) > 500 and reloads
    assert len({(s.instructions, s.reads, s.writes) for s in hits}) == 1
    assert len({s.instructions for s in reloads}) == 1
    assert set(hits[0].by_routine) == {"runtime.mallocgc", "runtime.mallocgcSmallNoscan",
                                       "runtime.publicationBarrier"}


def test_same_sequence_gives_byte_identical_traces_and_counts():
    def run():
        m = Machine(**HANDWRITTEN)
        m.malloc_batch([16, 32, 48, 1024, 16] * 50)
        trace = [r.as_dict() for r in m.trace("runtime.mallocgcSmallNoscan", 24, 0, 1)]
        snap = m.snapshot()
        addrs = m.malloc_batch([16, 4096, 24] * 300).tolist()
        c = m.counts_since(snap)
        return trace, addrs, c.by_routine(), c.memory_accesses(), [str(s) for s in m.kernel.log]
    assert run() == run()


def test_stepping_records_name_the_go_source_and_show_changes():
    m = Machine(**HANDWRITTEN)
    m.malloc_small_noscan(16)
    recs = m.trace("runtime.mallocgcSmallNoscan", 16, 0, 1)
    twin = Machine(**HANDWRITTEN)                     # the same state, measured by the block counter instead
    twin.malloc_small_noscan(16)
    snap = twin.snapshot()
    twin.malloc_small_noscan(16)
    assert len(recs) == twin.counts_since(snap).instructions
    tz = next(r for r in recs if r.disasm.startswith("tzcnt"))
    assert "TrailingZeros64" in tz.models and tz.source.startswith("asm/mallocgc_small_noscan.s:")
    store = next(r for r in recs if "mspan_allocCache" in r.source and r.mem_writes)
    span = cached_span(m, 16)
    assert store.mem_writes == [(span.addr + L.MSpan.allocCache, 8, span.allocCache)]
    assert recs[-1].disasm == "ret" and recs[-1].where.startswith("runtime.mallocgcSmallNoscan+")


def test_a_cold_step_shows_the_refill_callout_and_the_mmap_syscalls():
    m = Machine(**HANDWRITTEN)
    recs = m.trace("runtime.mallocgcSmallNoscan", 16, 0, 1)
    callouts = [c for r in recs for c in r.callouts]
    syscalls = [s for r in recs for s in r.syscalls]
    assert callouts[0].startswith("runtime.(*mcache).refill")
    assert [s.split("(")[0] for s in syscalls] == ["mmap", "mmap"]     # sysReserve, then sysMap
    assert any(r.where.startswith("runtime.sysMmap+") and r.disasm == "syscall" for r in recs)


def test_memclr_clears_exactly_the_range_for_every_small_length():
    m = Machine(**HANDWRITTEN)
    x, _ = m.malloc_small_noscan(2048)
    for n in list(range(0, 300)) + [511, 512, 1000, 1024, 2047]:
        m.mem.write(x, b"\xAA" * 2048)
        m.call("runtime.memclrNoHeapPointers", x, n)
        got = m.mem.read(x, 2048)
        assert got == bytes(n) + b"\xAA" * (2048 - n), n


def test_reused_memory_is_zeroed_when_the_span_needs_it():
    m = Machine(**HANDWRITTEN)
    x, _ = m.malloc_small_noscan(64)
    s = cached_span(m, 64)
    nxt = x + 64
    m.mem.write(nxt, b"\xFF" * 64)       # garbage where the next object goes
    s.needzero = 1
    y, _ = m.malloc_small_noscan(64)
    assert y == nxt and m.mem.read(y, 64) == bytes(64)
    m.mem.write(y + 64, b"\xFF" * 64)
    z, _ = m.malloc_small_noscan(64, needzero=False)   # the caller will overwrite it all
    assert m.mem.read(z, 64) == b"\xFF" * 64


def test_fresh_spans_are_not_cleared_again():
    m = Machine(**HANDWRITTEN)
    m.malloc_small_noscan(16)
    assert cached_span(m, 16).needzero == 0
    snap = m.snapshot()
    m.malloc_batch([16] * 100)
    assert "runtime.memclrNoHeapPointers" not in m.counts_since(snap).by_routine()


def test_allocation_is_black_while_the_gc_marks():
    m = Machine(**HANDWRITTEN)
    m.malloc_small_noscan(32)
    m.mem.w8(m.symbol("runtime.writeBarrier"), 1)
    x, _ = m.malloc_small_noscan(32)
    s = m.runtime.mheap.span_of(x)
    idx = (x - s.base()) // 32
    # GreenTeaGC keeps small spans' mark bits inline, at the end of the span's page.
    marks = s.base() + 8192 - 128 + 64
    assert m.mem.u8(marks + idx // 8) >> (idx % 8) & 1
    assert s.is_marked(idx) and not s.is_marked(idx - 1)
    assert m.mem.u8(marks - 64 + idx // 8) >> (idx % 8) & 1          # scanned: nothing to scan in it
    # machine code, no call-out: asm/gcmarknewobject.s charges p.gcw.bytesMarked itself
    assert "runtime.gcmarknewobject" not in m.callout_counts
    assert m.mem.u64(m.symbol("runtime.p0") + L.P.gcw + L.GCWork.bytesMarked) == 32


def test_first_allocation_is_profiled_and_later_ones_by_sampling_distance():
    m = Machine(**HANDWRITTEN)
    m.malloc_small_noscan(16)
    assert m.callout_counts["runtime.profilealloc"] == 1        # memProfRate was still 0
    assert m.mem.u64(m.runtime.mcache + L.MCache.memProfRate) == L.MEM_PROFILE_RATE
    off = Machine(mem_profile_rate=0, **HANDWRITTEN)
    off.malloc_batch([4096] * 300)
    assert off.callout_counts["runtime.profilealloc"] == 0


@pytest.mark.parametrize("corrupt, match", [
    (lambda s, m: setattr(s, "freeindex", s.nelems + 5), "freeindex > s.nelems|fatal error"),
    (lambda s, m: setattr(s, "allocBits", 0x10), "unmapped"),
    (lambda s, m: m.mem.w64(m.runtime.mcache + L.MCache.alloc + 8 * 5, 0xdead0000), "unmapped"),
    (lambda s, m: setattr(s, "allocCount", s.nelems + 1), "fatal error"),
    (lambda s, m: (setattr(s, "allocCache", 0), setattr(s, "freeindex", s.nelems - 1),
                   setattr(s, "allocCount", 3)), "fatal error"),
])
def test_corrupted_mspan_is_a_clear_error_never_a_crash_or_hang(corrupt, match):
    m = Machine(**HANDWRITTEN)
    m.malloc_batch([16] * 70)
    corrupt(cached_span(m, 16), m)
    with pytest.raises(GomemuError, match=match):
        m.malloc_batch([16] * 600)
    # The machine stays usable for other size classes.
    assert m.malloc_small_noscan(64)[1] == 64


def test_objects_per_span_match_the_real_runtime(go, go_env, tmp_path):
    """Consecutive 16-, 48- and 64-byte noscan objects from real go1.27.3 run in spans of
    exactly the length our spans have (GreenTeaGC's inline mark bits included)."""
    (tmp_path / "go.mod").write_text("module spans\n\ngo 1.27\n")
    (tmp_path / "main.go").write_text("""package main

import (
	"fmt"
	"unsafe"
)

// Addresses are recorded first and printed afterwards: printing allocates too.
var keep [3][6000]unsafe.Pointer

func main() {
	for i := range keep[0] {
		keep[0][i] = unsafe.Pointer(new([16]byte))
	}
	for i := range keep[1] {
		keep[1][i] = unsafe.Pointer(new([48]byte))
	}
	for i := range keep[2] {
		keep[2][i] = unsafe.Pointer(new([64]byte))
	}
	for k, n := range []uintptr{16, 48, 64} {
		run := 1
		for i := 1; i < len(keep[k]); i++ {
			if uintptr(keep[k][i]) == uintptr(keep[k][i-1])+n {
				run++
			} else {
				fmt.Println(n, run)
				run = 1
			}
		}
	}
}
""")
    env = dict(go_env, GOGC="off")
    out = subprocess.run([go, "run", "."], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    runs = Counter(tuple(map(int, ln.split())) for ln in out.stdout.split("\n") if ln)
    for size in (16, 48, 64):
        real = max((k for k in runs if k[0] == size), key=lambda k: runs[k])[1]
        assert real == nelems_for(sc.size_to_class(size), True, sc.CLASS_TO_NPAGES[sc.size_to_class(size)])


@pytest.mark.parametrize("kw", [HANDWRITTEN, {}], ids=["handwritten", "compiled"])
def test_a_recorded_trace_is_the_same_as_stepping_one_instruction_at_a_time(kw):
    """Machine.trace runs the call in one emu_start, iterating a Stepper in chunks that
    end after each call-out, Machine.step one instruction per emu_start. Every field of
    every record agrees, across a cold refill (call-outs, mmap SYSCALLs), hits, a scan
    object, a tiny one and a large one."""
    def stepped(m, *args):
        m.begin("runtime.mallocgc", *args)
        out = []
        while (rec := m.step()) is not None:
            out.append(rec.as_dict())
        return out
    ways = [lambda m, *a: [r.as_dict() for r in m.trace("runtime.mallocgc", *a)],
            lambda m, *a: [r.as_dict() for r in m.begin("runtime.mallocgc", *a)],
            stepped]
    ms = [Machine(**kw) for _ in ways]
    types = [m.runtime.new_type(48, pointer_words=(0, 2)) for m in ms]
    for size, scan in [(16, False), (16, False), (48, True), (12, False), (40_000, False)]:
        traces = [way(m, size, t if scan else 0, 1) for way, m, t in zip(ways, ms, types)]
        assert traces[0] == traces[1] == traces[2]
        assert any(r["mem_writes"] for r in traces[0])
    assert any(r["callouts"] for r in traces[0]) and ms[0].kernel.log
    mcaches = {m.mem.read(m.runtime.mcache, L.MCache.SIZE) for m in ms}
    assert len(mcaches) == 1
