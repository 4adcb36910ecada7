"""The handwritten routines (asm/*.s, Machine(handwritten=True)) against the real
runtime's compiled code (Machine()): the same allocation sequence must leave the
same emulated memory: the objects and their addresses, every mspan's fields and
bitmaps, the heap bits and malloc headers, and the mcache.

What legitimately differs is where each machine's data and off-heap allocations land
(&zerobase, the answer to mallocgc(0), is in each program's own data segment): the
image machine persistentallocs p0 and allp first, so type descriptors, mspans
and gcBits sit at other addresses. Pointers to those are compared through what
they point to (a type by its (size, pointer words), an mspan by its startAddr,
gcBits by their bits). The memory profile's sampling is off on both
(mem_profile_rate=0): the handwritten machine draws its sample distances from a
seeded Python RNG, the compiled one from Go's cheaprand.
"""

import random
import struct

import pytest

from emu import layout as L
from emu.machine import Machine
from runtime_model import sizeclasses as sc
from runtime_model.mgcsweep import finish_cycle
from runtime_model.mspan import span_fields

SPAN_POINTERS = ("next", "prev")                 # mspan list links: compared by the span they point to
SPAN_BITS = ("allocBits", "gcmarkBits")           # *gcBits: compared by their bits
SPAN_OFFHEAP = ("list", "pinnerBits", "manualFreeList")   # 0 in both: no span list, pins or manual spans


def sequence(seed=15, n=2000):
    """(size, pointer word indexes) of each allocation: every mallocgc path, with enough of
    each size class to reload allocCache and refill, and a few large objects."""
    rnd = random.Random(seed)
    shapes = ([(s, ()) for s in (1, 4, 8, 12, 15)] +                       # tiny
              [(s, ()) for s in (16, 24, 48, 80, 96, 1024, 8192, 32760)] +  # small noscan
              [(s, p) for s, p in ((8, (0,)), (24, (0, 2)), (64, (1, 3, 5)), (512, (0, 63)))] +   # heap bits
              [(s, p) for s, p in ((1024, (0, 127)), (4096, (7,)))] +      # malloc header
              [(0, ())])
    out = [rnd.choice(shapes) for _ in range(n)]
    out += [(100_000, ()), (200_000, (0, 5)), (40_000, ())]                 # large
    return out


def run(m, seq):
    """The first half of the sequence; every object filled with 0x5a bytes; a GC cycle that
    keeps every other one (runtime_model.mgcsweep.finish_cycle); the second half, which
    reuses freed slots and must find them cleared (needzero) by the machine code."""
    types = {}
    addrs = []
    half = len(seq) // 2
    zerobase = m.symbol("runtime.zerobase")
    for i, (size, ptrs) in enumerate(seq):
        if i == half:
            for a, (sz, _) in zip(addrs, seq):
                if a != zerobase:
                    m.mem.write(a, b"\x5a" * sz)
            finish_cycle(m.runtime, [a for a in addrs[::2] if a != zerobase])
        t = 0
        if ptrs:
            t = types.get((size, ptrs)) or types.setdefault((size, ptrs), m.runtime.new_type(size, ptrs))
        addrs.append(m.mallocgc(size, t))
    return addrs, {v: k for k, v in types.items()}


@pytest.fixture(scope="module")
def machines():
    seq = sequence()
    hand, real = Machine(handwritten=True, mem_profile_rate=0), Machine(mem_profile_rate=0)
    assert hand.image is None and real.image is not None
    return seq, (hand, *run(hand, seq)), (real, *run(real, seq))


def spans_by_start(m):
    return {span_fields(m.mem, a)["startAddr"]: a for a in m.runtime.mheap.live_mspans}


def test_the_same_sequence_returns_the_same_addresses(machines):
    _, (hand, hand_addrs, _), (real, real_addrs, _) = machines
    zero = {hand.symbol("runtime.zerobase"): "&zerobase", real.symbol("runtime.zerobase"): "&zerobase"}
    assert [zero.get(a, a) for a in hand_addrs] == [zero.get(a, a) for a in real_addrs]
    assert len(set(real_addrs)) > 1000                  # really allocated


def test_every_mspan_has_the_same_fields_and_bitmaps(machines):
    _, (hand, _, hand_types), (real, _, real_types) = machines
    hs, rs = spans_by_start(hand), spans_by_start(real)
    assert sorted(hs) == sorted(rs)
    start_of = {}
    for m, spans in ((hand, hs), (real, rs)):
        start_of[m] = {a: s for s, a in spans.items()} | {0: 0}
    for start in sorted(hs):
        h, r = span_fields(hand.mem, hs[start]), span_fields(real.mem, rs[start])
        where = f"mspan at {start:#x} (spanclass {r['spanclass']})"
        for f in SPAN_POINTERS:
            assert start_of[hand].get(h[f], "?") == start_of[real].get(r[f], "?"), f"{where}.{f}"
        for f in SPAN_BITS:
            nbytes = -(-h["nelems"] // 8)
            assert hand.mem.read(h[f], nbytes) == real.mem.read(r[f], nbytes), f"{where}.{f}"
        assert hand_types.get(h["largeType"], h["largeType"]) == real_types.get(r["largeType"], r["largeType"]), \
            f"{where}.largeType"
        for f in SPAN_OFFHEAP:
            assert h[f] == r[f] == 0, f"{where}.{f}"
        skip = set(SPAN_POINTERS) | set(SPAN_BITS) | {"largeType"}
        assert {k: v for k, v in h.items() if k not in skip} == {k: v for k, v in r.items() if k not in skip}, where


def test_the_heap_holds_the_same_bytes_headers_and_heap_bits(machines):
    """Every span's pages: the objects (the survivors' 0x5a bytes, the new ones cleared), the
    heap bits at the end of small scan spans, and each header object's type word (by the
    type it names)."""
    _, (hand, _, hand_types), (real, _, real_types) = machines
    hs, rs = spans_by_start(hand), spans_by_start(real)
    headers = 0
    for start in sorted(hs):
        f = span_fields(real.mem, rs[start])
        size = f["npages"] * sc.PAGE_SIZE
        h, r = bytearray(hand.mem.read(start, size)), bytearray(real.mem.read(start, size))
        cls = f["spanclass"] >> 1
        if cls and not f["spanclass"] & 1 and f["elemsize"] > sc.MIN_SIZE_FOR_MALLOC_HEADER:
            for off in range(0, f["nelems"] * f["elemsize"], f["elemsize"]):
                th, tr = (struct.unpack_from("<Q", b, off)[0] for b in (h, r))
                assert hand_types.get(th, th) == real_types.get(tr, tr), f"header of object {start + off:#x}"
                h[off:off + 8] = r[off:off + 8] = bytes(8)
                headers += th != 0
        assert h == r, f"span at {start:#x} (spanclass {f['spanclass']}): first difference at " \
                       f"+{next(i for i in range(size) if h[i] != r[i]):#x}"
    assert headers > 100


def test_the_mcache_is_the_same(machines):
    _, (hand, _, _), (real, _, _) = machines
    hc, rc = hand.runtime.mcache, real.runtime.mcache
    for m in (hand, real):
        assert m.mem.u64(m.runtime.mcache + L.MCache.tiny) != 0
    for name in ("nextSample", "memProfRate", "scanAlloc", "tiny", "tinyoffset", "tinyAllocs"):
        off = getattr(L.MCache, name)
        assert hand.mem.u64(hc + off) == real.mem.u64(rc + off), f"mcache.{name}"
    assert hand.mem.read(hc + L.MCache.reusableNoscan, L.MCache.SIZE - L.MCache.reusableNoscan) == \
        real.mem.read(rc + L.MCache.reusableNoscan, L.MCache.SIZE - L.MCache.reusableNoscan)
    for spc in range(L.NUM_SPAN_CLASSES):
        a, b = (m.mem.u64(c + L.MCache.alloc + 8 * spc) for m, c in ((hand, hc), (real, rc)))
        if a == hand.runtime.emptymspan:
            assert b == real.runtime.emptymspan, f"mcache.alloc[{spc}]"
        else:
            assert span_fields(hand.mem, a)["startAddr"] == span_fields(real.mem, b)["startAddr"], \
                f"mcache.alloc[{spc}]"


def test_statistics_agree(machines):
    """(Last: ReadMemStats flushes the mcache, as Go's does.)"""
    _, (hand, _, _), (real, _, _) = machines
    keys = ("Mallocs", "Frees", "TotalAlloc", "HeapAlloc", "HeapInuse", "HeapSys", "HeapObjects")
    h, r = hand.runtime.read_mem_stats(), real.runtime.read_mem_stats()
    assert {k: h[k] for k in keys} == {k: r[k] for k in keys}
