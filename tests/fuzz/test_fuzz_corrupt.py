"""Fuzz: corrupt struct writes, then allocation, in checked mode (Machine(), the
default). One write into what the fast paths trust (a field of a cached mspan, an
entry of a size-class table, an mcache slot or counter, emptymspan), then
allocations of several sizes and kinds and a GC cycle.

Each allocation either succeeds soundly or raises a GomemuError (checked mode's
InvariantError naming the field, a fault, a fatal error); never another
exception, never a run past its bound. Sound means, by reasoning independent of
the checks under test: the object lies in the heap, inside the pages of the span
the heap maps it to, and overlaps no object allocated before it (nothing is freed
until the cycle at the end). The first error ends the example, with m0 idle (not
mallocing, no locks held); the machine may be broken by then, as a Go process
would be.
"""

import struct

from hypothesis import given
from hypothesis import strategies as st

from emu import layout as L
from emu.errors import GomemuError
from emu.machine import Machine
from runtime_model import sizeclasses as sc
from runtime_model.mgcsweep import finish_cycle
from runtime_model.mspan import _FIELDS, MSpan
from tests.fuzz.harness import examples, outcome
from tests.test_failures import assert_idle

SIZES = [0, 1, 8, 12, 16, 24, 48, 64, 80, 96, 512, 1024, 8192, 32760, 32768, 100_000]
TABLES = [(s.name, s.align) for s in L.DATA_SYMBOLS if s.name.startswith("internal/runtime/gc.")]
TABLE_LEN = {s.name: s.size for s in L.DATA_SYMBOLS}
MCACHE_WORDS = ["nextSample", "scanAlloc", "tiny", "tinyoffset", "tinyAllocs", "flushGen"]

# How a value is changed: ("set", v), ("xor", mask) or ("add", d) of what is there, so the
# strategy never reads the machine (every example replays exactly).
change = st.one_of(
    st.tuples(st.just("set"), st.one_of(st.sampled_from([0, 1, 2, 0xFF, 0xFFFF, 0xFFFFFFFF, (1 << 64) - 1, 0x401000,
                                                          L.HEAP_BASE, L.HEAP_BASE + 8192]),
                                         st.integers(0, (1 << 64) - 1))),
    st.tuples(st.just("xor"), st.integers(0, 63).map(lambda b: 1 << b)),
    st.tuples(st.just("add"), st.sampled_from([-8, -1, 1, 8, 16, 8192])))


def changed(old, how, width):
    kind, v = how
    new = v if kind == "set" else old ^ v if kind == "xor" else old + v
    return new % (1 << (8 * width))


def cached_spans(m):
    c = m.runtime.mcache + L.MCache.alloc
    slots = struct.unpack(f"<{L.NUM_SPAN_CLASSES}Q", m.mem.read(c, 8 * L.NUM_SPAN_CLASSES))
    return [a for a in slots if a != m.runtime.emptymspan]


@st.composite
def corruption(draw):
    """(description, function m -> None) of one write into what the fast paths trust."""
    what = draw(st.sampled_from(["span", "span", "span", "table", "mcache.alloc", "mcache", "emptymspan"]))
    how = draw(change)
    if what in ("span", "emptymspan"):
        field, i = draw(st.sampled_from(sorted(_FIELDS))), draw(st.integers(0, 15))

        def write(m):
            spans = cached_spans(m) if what == "span" else [m.runtime.emptymspan]
            if not spans:
                return                      # nothing cached yet (the warm-up allocated 0 bytes)
            s = MSpan(m.mem, spans[i % len(spans)])
            setattr(s, field, changed(getattr(s, field), how, _FIELDS[field]))
        return f"{what}[{i}].{field} {how}", write
    if what == "table":
        (name, width), i = draw(st.sampled_from(TABLES)), draw(st.integers(0, 300))

        def write(m):
            a = m.symbol(name) + (i % (TABLE_LEN[name] // width)) * width
            old = int.from_bytes(m.mem.read(a, width), "little")
            m.mem.write(a, changed(old, how, width).to_bytes(width, "little"))
        return f"{name}[{i}] {how}", write
    if what == "mcache.alloc":
        spc = draw(st.integers(0, L.NUM_SPAN_CLASSES - 1))
        target = draw(st.one_of(st.integers(0, 15), st.none()))     # another cached span, or the change

        def write(m):
            a = m.runtime.mcache + L.MCache.alloc + 8 * spc
            spans = cached_spans(m)
            m.mem.w64(a, spans[target % len(spans)] if target is not None and spans
                      else changed(m.mem.u64(a), how, 8))
        return f"mcache.alloc[{spc}] = {'span ' + str(target) if target is not None else how}", write
    field = draw(st.sampled_from(MCACHE_WORDS))

    def write(m):
        a = m.runtime.mcache + getattr(L.MCache, field)
        m.mem.w64(a, changed(m.mem.u64(a), how, 8))
    return f"mcache.{field} {how}", write


allocation = st.tuples(st.sampled_from(SIZES), st.booleans())     # (size, with a pointer)


def sound(m, x, size, earlier):
    """Where x may be, by the heap's layout alone; earlier: [(x, size)] not yet freed."""
    if size == 0:
        return
    heap = m.heap_region
    assert heap.base <= x and x + size <= heap.end, f"mallocgc({size}) = {x:#x} is outside the heap"
    s = m.runtime.mheap.span_of_heap(x)
    assert s is not None, f"mallocgc({size}) = {x:#x} is in no span"
    assert s.startAddr <= x and x + size <= s.startAddr + s.npages * sc.PAGE_SIZE, \
        f"mallocgc({size}) = {x:#x} (+{size}) is outside its span's pages {s!r}"
    for y, n in earlier:
        assert x + size <= y or y + max(n, 1) <= x, f"mallocgc({size}) = {x:#x} overlaps {y:#x} (+{n})"


@examples(22)
@given(warm=st.lists(allocation, min_size=1, max_size=6), bad=corruption(),
       after=st.lists(allocation, min_size=1, max_size=8), batch=st.booleans())
def test_a_corrupt_runtime_struct_is_caught_or_harmless_in_checked_mode(warm, bad, after, batch):
    m = Machine()
    types = {n: m.runtime.new_type(n, (0,)) for n in SIZES if n >= 8}
    done = []

    def alloc(n, scan):
        x = m.mallocgc(n, types[n] if scan and n >= 8 else 0)
        sound(m, x, n, done)
        done.append((x, n))
    for n, scan in warm:
        alloc(n, scan)
    bad[1](m)                       # bad[0] says what it wrote (shown for a failing example)
    steps = [lambda n=n, scan=scan: alloc(n, scan) for n, scan in after]
    if batch:
        steps.append(lambda: [sound(m, int(x), 16, done) or done.append((int(x), 16))
                              for x in m.malloc_batch([16] * 600)])
    steps.append(lambda: finish_cycle(m.runtime, []))
    for step in steps:
        err = outcome(step)
        if err is not None:
            assert isinstance(err, GomemuError)
            assert_idle(m)                  # m0 not left mallocing or holding locks (issue 10, defect 16)
            return
