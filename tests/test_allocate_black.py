"""Allocate-black (mgcmark.go: gcmarknewobject): while the GC marks, mallocgc marks each new
object, its span's page and the P's bytesMarked. The handwritten machine runs
asm/gcmarknewobject.s, the default one go1.27.3's compiled gcmarknewobject: the same
allocations must set exactly the same bits, and those Go's formulas give.

Both machines allocate a warm-up half of the sequence, then, as gcStart leaves things for
the mutator (writeBarrier.enabled, gcBlackenEnabled, with enough assist credit that no
assist runs), the rest: tiny blocks, small noscan and scan objects in spans with inline
mark bits (16..512-byte slots) and with gcmarkBits (8-byte slots, over 512 bytes), and
large objects (objIndex 0 in a span of their own)."""

import random

import pytest

from emu import layout as L
from emu.machine import Machine
from runtime_model import sizeclasses as sc
from runtime_model.mspan import span_inline_mark_bits_size, uses_span_inline_mark_bits

SHAPES = ([(s, ()) for s in (1, 4, 8, 12, 15)] +                                    # tiny
          [(s, ()) for s in (16, 24, 48, 500, 640, 1024, 8192, 32760)] +            # small noscan
          [(s, p) for s, p in ((8, (0,)), (24, (0, 2)), (64, (1, 3)), (512, (0, 63)))] +   # heap bits
          [(s, p) for s, p in ((1024, (0, 127)), (4096, (7,)))])                    # malloc header
LARGE = [(40_000, ()), (100_000, (0, 5))]


def sequence(seed=13, n=1200):
    rnd = random.Random(seed)
    out = [rnd.choice(SHAPES) for _ in range(n)]
    return out[:n // 2] + LARGE[:1], out[n // 2:] + LARGE


def start_marking(m):
    """What gcStart leaves the mutator with (mgc.go): the write barrier on and mutator
    assists enabled; each goroutine that may run mallocgc has credit to spare."""
    m.mem.w8(m.symbol("runtime.writeBarrier"), 1)
    m.mem.w32(m.symbol("runtime.gcBlackenEnabled"), 1)
    m0 = m.symbol("runtime.m0")
    for g in {m.symbol("runtime.g0"), m.mem.u64(m0 + L.M.curg)} - {0}:
        m.mem.w64(g + L.G.gcAssistBytes, 1 << 50)


def bytes_marked(m):
    return m.mem.u64(m.symbol("runtime.p0") + L.P.gcw + L.GCWork.bytesMarked)


def run(m, seq):
    """(warm-up objects, black objects, the tiny block current when marking began)."""
    warm, black = seq
    types = {}

    def alloc(size, ptrs):
        t = 0
        if ptrs:
            t = types.get((size, ptrs)) or types.setdefault((size, ptrs), m.runtime.new_type(size, ptrs))
        return m.mallocgc(size, t)
    before = [alloc(*a) for a in warm]
    tiny = m.mem.u64(m.runtime.mcache + L.MCache.tiny)
    start_marking(m)
    assert bytes_marked(m) == 0
    return before, [alloc(*a) for a in black], tiny


def slot(m, x):
    """The object's slot (a tiny object lies in a 16-byte block)."""
    s = m.runtime.mheap.span_of_heap(x)
    return s.base() + (x - s.base()) // s.elemsize * s.elemsize


def black_slots(m, black, tiny):
    return {slot(m, x) for x in black} - ({slot(m, tiny)} if tiny else set())


IMB = L.SpanInlineMarkBits
INLINE_BYTES = IMB.SIZE - 1         # scans, owned (which allocate-black leaves alone), marks; not class


def marks(m, s):
    """The span's mark (and scanned) bits as bytes, where Go 1.27 keeps them."""
    if uses_span_inline_mark_bits(s.elemsize):
        return m.mem.read(s.base() + sc.PAGE_SIZE - span_inline_mark_bits_size(), INLINE_BYTES)
    return m.mem.read(s.gcmarkBits, (s.nelems + 63) // 64 * 8)


def page_marks(m):
    return [m.mem.read(m.runtime.mheap.heap_arena(L.HEAP_BASE + i * L.HEAP_ARENA_BYTES) + L.HeapArena.pageMarks,
                       L.HeapArena.zeroedBase - L.HeapArena.pageMarks)
            for i in range(len(m.runtime.mheap.heap_arenas))]


@pytest.fixture(scope="module", params=[False, True], ids=["generic", "size-specialized"])
def machines(request):
    seq = sequence()
    out = []
    for hand in (True, False):
        m = Machine(handwritten=hand, size_specialized=request.param, mem_profile_rate=0)
        assert (m.image is None) == hand and m.size_specialized == request.param
        out.append((m, *run(m, seq)))
    return out


def test_allocate_black_is_machine_code_not_a_call_out(machines):
    (hand, *_), _ = machines
    assert "runtime.gcmarknewobject" not in hand.callout_counts
    assert hand.text.routine_at(hand.symbol("runtime.gcmarknewobject")) == "runtime.gcmarknewobject"


def test_both_machines_allocate_the_same_objects(machines):
    (_, hw, hb, ht), (_, rw, rb, rt) = machines
    assert (hw, hb, ht) == (rw, rb, rt)


def test_black_objects_are_marked_and_scanned_and_nothing_else(machines):
    """markBitsForIndex / scannedBitsForIndex of every new object's slot, its index by
    division (not divMul); the warm-up objects stay unmarked, and so does the tiny block
    marking began with (gcMarkTinyAllocs greys it at mark termination)."""
    for m, warm, black, tiny in machines:
        slots = black_slots(m, black, tiny)
        spans = {}
        for a in slots | {slot(m, x) for x in warm}:
            s = m.runtime.mheap.span_of_heap(a)
            spans.setdefault(s.addr, s)
        for s in spans.values():
            inline = uses_span_inline_mark_bits(s.elemsize)
            want = bytearray(INLINE_BYTES if inline else (s.nelems + 63) // 64 * 8)
            for a in slots:
                if s.base() <= a < s.base() + s.npages * sc.PAGE_SIZE:
                    i = (a - s.base()) // s.elemsize
                    want[(IMB.marks if inline else 0) + i // 8] |= 1 << i % 8
                    if inline:
                        want[IMB.scans + i // 8] |= 1 << i % 8
            assert marks(m, s) == bytes(want), f"span {s.base():#x} (elemsize {s.elemsize})"


def test_black_spans_have_their_page_marked(machines):
    for m, _, black, tiny in machines:
        want = [bytearray(len(a)) for a in page_marks(m)]
        for b in {m.runtime.mheap.span_of_heap(a).base() for a in black_slots(m, black, tiny)}:
            arena, page = divmod((b - L.HEAP_BASE) // sc.PAGE_SIZE, L.HEAP_ARENA_BYTES // sc.PAGE_SIZE)
            want[arena][page // 8] |= 1 << page % 8
        assert page_marks(m) == [bytes(w) for w in want]


def test_bytes_marked_is_the_black_slots_sizes(machines):
    for m, _, black, tiny in machines:
        assert bytes_marked(m) == sum(m.runtime.mheap.span_of_heap(a).elemsize
                                      for a in black_slots(m, black, tiny))


def test_the_handwritten_twin_marks_what_the_real_gcmarknewobject_marks(machines):
    (hand, _, black, _), (real, *_) = machines
    assert bytes_marked(hand) == bytes_marked(real)
    assert page_marks(hand) == page_marks(real)
    for x in black:
        hs, rs = hand.runtime.mheap.span_of_heap(x), real.runtime.mheap.span_of_heap(x)
        assert marks(hand, hs) == marks(real, rs), f"object {x:#x}"


def test_the_sequence_reaches_every_kind_of_span(machines):
    """Inline mark bits (16..512-byte slots) and gcmarkBits (8-byte slots, larger ones,
    large objects)."""
    m, _, black, _ = machines[0]
    sizes = {m.runtime.mheap.span_of_heap(x).elemsize for x in black}
    assert {8, 16, 512, 640} <= sizes and max(sizes) > sc.MAX_SMALL_SIZE


@pytest.mark.parametrize("handwritten", [True, False], ids=["handwritten", "compiled"])
def test_mark_termination_counts_what_allocate_black_left_in_p_gcw(handwritten):
    """Nothing reachable (no roots hold these objects): the cycle's marked heap is the ten
    16-byte objects allocated black, read from p0.gcw.bytesMarked (gcMarkTermination)."""
    from runtime_model.mgc import TRIGGER_CYCLE
    m = Machine(handwritten=handwritten, size_specialized=False)
    m.mallocgc(16)
    gc = m.runtime.gc
    gc.start(TRIGGER_CYCLE)
    m.mem.w64(m.symbol("runtime.g0") + L.G.gcAssistBytes, 1 << 40)      # no assist ends it early
    for _ in range(10):
        m.mallocgc(16)
    assert len(gc.cycles) == 0 and gc.marker.bytes_marked == 0
    gc.collect()                               # runtime.GC: the cycle under way ends first
    assert gc.cycles[0].heap2 == 10 * 16
