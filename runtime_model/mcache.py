"""runtime/mcache.go: the per-P cache of spans, one per span class.

The mcache struct lives in emulated memory; machine code allocates from
`c.alloc[spc]` without Python. When a span is used up, the machine code calls
out to `refill`, which returns the span to its mcentral and caches a fresh one,
exactly as (*mcache).refill does.
"""

from emu.clock import CLEAR_COLD_NS_PER_BYTE
from emu.layout import MCache as L
from runtime_model.mem_linux import throw
from runtime_model.mspan import ALLOC_COUNT_BEFORE_CACHE_H, LIMIT_Q, SWEEPGEN_I, MSpan, SpanFields
from runtime_model.sizeclasses import PAGE_SHIFT, PAGE_SIZE

TINY_SPAN_CLASS = 5        # malloc.go: tinySpanClass = makeSpanClass(tinySizeClass, true)
# The fields refill reads of the span it returns and of the span it gets, each in one read.
_RETURNED = SpanFields("nelems", "sweepgen", "allocCount", "allocCountBeforeCache", "elemsize")
_CACHED = SpanFields("npages", "nelems", "allocCount", "needzero", "elemsize")
_LARGE = SpanFields("startAddr", "npages", "needzero")      # allocLarge's reads of its span
# mcache fields as word indices from the struct's first word
_ALLOC_W, _REUSABLE_W = L.alloc >> 3, L.reusableNoscan >> 3
_TINY_ALLOCS_W, _SCAN_ALLOC_W = L.tinyAllocs >> 3, L.scanAlloc >> 3


class MCacheStats:
    """The heapStats counters refill updates (mstats.go: heapStatsDelta)."""

    def __init__(self, nclasses):
        self.small_alloc_count = [0] * nclasses
        self.tiny_alloc_count = 0
        self.large_alloc = 0          # bytes
        self.large_alloc_count = 0
        self.small_free_count = [0] * nclasses
        self.large_free = 0           # bytes
        self.large_free_count = 0


def refill(runtime, c, spc):
    """mcache.go: (*mcache).refill(spc); `c` is the mcache's address. Returns None, or, when
    mcentral needs machine code or the OS for the span, a generator that ends the refill
    through them (for `yield from`)."""
    heap = runtime.mheap
    # the mcache's words through the typed view of its backing (it is 8-aligned): the
    # off-heap region, where persistentalloc put it
    b = heap._meta
    if not b.base <= c <= b.end - L.SIZE:
        b = runtime.mem._backing(c, L.SIZE)
    q, w = b.q, (c - b.base) >> 3
    slot = w + _ALLOC_W + spc
    a = q[slot]
    s = heap._views.get(a) or heap.mspan(a)
    nelems, sweepgen, count, before_cache, elemsize = _RETURNED.unpack(*s.loc)
    if count != nelems:
        throw("refill of span with free space remaining")
    if spc == TINY_SPAN_CLASS:
        q[w + _REUSABLE_W + spc] = 0
    elif q[w + _REUSABLE_W + spc]:
        throw("refill of span with reusable pointers remaining on pointer free list")
    central = heap.central[spc]
    if a != runtime.emptymspan:
        sg = heap._sweepgen
        if sweepgen != (sg + 3) & 0xFFFFFFFF:
            throw("bad sweepgen in refill")
        # mcentral.go: uncacheSpan, for what refill returns: a span cached this generation
        # (sweepgen+3, so not to be swept) and full, which goes to fullSwept
        if count == 0:
            throw("uncaching span but s.allocCount == 0")
        s._b.i[(s._o >> 2) + SWEEPGEN_I] = sg
        central.full[(sg >> 1) & 1].append(s)
        used = count - before_cache
        runtime.stats.small_alloc_count[spc >> 1] += used
        if spc == TINY_SPAN_CLASS:
            runtime.stats.tiny_alloc_count += q[w + _TINY_ALLOCS_W]
            q[w + _TINY_ALLOCS_W] = 0
        runtime.gc_controller.total_alloc += used * elemsize
        s._b.h[(s._o >> 1) + ALLOC_COUNT_BEFORE_CACHE_H] = 0
        # The slot holds no span while mcentral works, so a refill that fails (out of
        # memory) leaves a consistent mcache; Go dies there and never needs to.
        q[slot] = runtime.emptymspan
    s = central.cache_span()
    if s.__class__ is not MSpan:
        return _refill_os(runtime, q, w, slot, spc, s)
    _cache(runtime, q, w, slot, spc, s)


def _refill_os(runtime, q, w, slot, spc, cache_span):
    _cache(runtime, q, w, slot, spc, (yield from cache_span))


def _cache(runtime, q, w, slot, spc, s):
    """refill's end: the span mcentral gave goes into the mcache's slot (q[slot], of the
    mcache at word w of q)."""
    if s is None:
        throw("out of memory")
    npages, nelems, count, needzero, elemsize = _CACHED.unpack(*s.loc)
    if count == nelems:
        throw("span has no free space")
    # sweepgen+3: cached by an mcache and swept (mheap.go's sweepgen states).
    b, o = s._b, s._o
    b.i[(o >> 2) + SWEEPGEN_I] = (runtime.mheap._sweepgen + 3) & 0xFFFFFFFF
    b.h[(o >> 1) + ALLOC_COUNT_BEFORE_CACHE_H] = count
    runtime.gc_controller.update(npages * PAGE_SIZE - count * elemsize, q[w + _SCAN_ALLOC_W])
    q[w + _SCAN_ALLOC_W] = 0
    q[slot] = a = s.addr
    runtime.refills.append((spc, a))
    if needzero:            # the mcache-hit path will clear every free slot (emu/clock.py)
        _charge_clear(runtime, (nelems - count) * elemsize)


def _charge_clear(runtime, nbytes):
    runtime.machine.clock.advance(nbytes * CLEAR_COLD_NS_PER_BYTE)


def alloc_large(runtime, size, noscan):
    """mcache.go: (*mcache).allocLarge: a span of whole pages for one object. The span, or
    a generator that gives it when the heap needs the OS for it."""
    npages = (size + PAGE_SIZE - 1) >> PAGE_SHIFT
    spc = 1 if noscan else 0                    # makeSpanClass(0, noscan)
    # deductSweepCredit first: mheap.alloc's reclaim will sweep npages itself
    runtime.sweeper.deduct_credit(npages << PAGE_SHIFT, npages)
    s = runtime.mheap.alloc(npages, spc)
    if s.__class__ is not MSpan:
        return _alloc_large_os(runtime, size, spc, s)
    return _large(runtime, size, spc, s)


def _alloc_large_os(runtime, size, spc, alloc):
    return _large(runtime, size, spc, (yield from alloc))


def _large(runtime, size, spc, s):
    """allocLarge's end, with the span the heap gave."""
    if s is None:
        throw("out of memory")
    heap = runtime.mheap
    nbytes = (size + PAGE_SIZE - 1) >> PAGE_SHIFT << PAGE_SHIFT      # npages*pageSize
    stats = runtime.stats
    stats.large_alloc += nbytes
    stats.large_alloc_count += 1
    base, span_pages, needzero = _LARGE.unpack(*s.loc)
    controller = runtime.gc_controller
    controller.total_alloc += nbytes
    controller.update(span_pages << PAGE_SHIFT, 0)
    # Put the large span in the mcentral swept list so that it's visible to the background sweeper.
    heap.central[spc].full[(heap._sweepgen >> 1) & 1].append(s)     # fullSwept(sweepgen)
    s._b.q[(s._o >> 3) + LIMIT_Q] = base + size
    # s.initHeapBits() writes nothing in a large span: no heap bits nor inline marks above
    # 512-byte objects (span_has_bits)
    if needzero:            # mallocgcLarge clears it (memclrNoHeapPointersChunked)
        _charge_clear(runtime, size)
    return s
