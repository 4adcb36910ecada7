"""runtime/mcache.go: the per-P cache of spans, one per span class.

The mcache struct lives in emulated memory; machine code allocates from
`c.alloc[spc]` without Python. When a span is used up, the machine code calls
out to `refill`, which returns the span to its mcentral and caches a fresh one,
exactly as (*mcache).refill does.
"""

from emu.clock import CLEAR_COLD_NS_PER_BYTE
from emu.layout import MCache as L
from runtime_model.mem_linux import throw
from runtime_model.mspan import MSpan
from runtime_model.sizeclasses import PAGE_SIZE, make_span_class

TINY_SPAN_CLASS = 5        # malloc.go: tinySpanClass = makeSpanClass(tinySizeClass, true)


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
    """mcache.go: (*mcache).refill(spc); `c` is the mcache's address."""
    mem = runtime.mem
    heap = runtime.mheap
    # the mcache's words through the typed view of its backing (it is 8-aligned)
    b = mem._backing(c, L.SIZE)
    q, w = b.q, (c - b.base) >> 3
    slot = w + (L.alloc >> 3) + spc
    reusable = w + (L.reusableNoscan >> 3) + spc
    s = MSpan(mem, q[slot])
    count = s.allocCount
    if count != s.nelems:
        throw("refill of span with free space remaining")
    if spc == TINY_SPAN_CLASS:
        q[reusable] = 0
    if q[reusable]:
        throw("refill of span with reusable pointers remaining on pointer free list")
    central = heap.central[spc]
    controller = runtime.gc_controller
    if s.addr != runtime.emptymspan:
        if s.sweepgen != (heap._sweepgen + 3) & 0xFFFFFFFF:
            throw("bad sweepgen in refill")
        central.uncache_span(s)         # (sweepgen+3: it does not sweep, count holds)
        used = count - s.allocCountBeforeCache
        runtime.stats.small_alloc_count[spc >> 1] += used
        if spc == TINY_SPAN_CLASS:
            runtime.stats.tiny_alloc_count += q[w + (L.tinyAllocs >> 3)]
            q[w + (L.tinyAllocs >> 3)] = 0
        controller.total_alloc += used * s.elemsize
        s.allocCountBeforeCache = 0
        # The slot holds no span while mcentral works, so a refill that fails (out of
        # memory) leaves a consistent mcache; Go dies there and never needs to.
        q[slot] = runtime.emptymspan
    s = yield from central.cache_span()
    if s is None:
        throw("out of memory")
    count = s.allocCount
    if count == s.nelems:
        throw("span has no free space")
    # sweepgen+3: cached by an mcache and swept (mheap.go's sweepgen states).
    s.sweepgen = heap._sweepgen + 3
    s.allocCountBeforeCache = count
    controller.update(s.npages * PAGE_SIZE - count * s.elemsize, q[w + (L.scanAlloc >> 3)])
    q[w + (L.scanAlloc >> 3)] = 0
    q[slot] = s.addr
    runtime.refills.append((spc, s.addr))
    if s.needzero:          # the mcache-hit path will clear every free slot (emu/clock.py)
        _charge_clear(runtime, (s.nelems - count) * s.elemsize)


def _charge_clear(runtime, nbytes):
    runtime.machine.clock.advance(nbytes * CLEAR_COLD_NS_PER_BYTE)


def alloc_large(runtime, size, noscan):
    """mcache.go: (*mcache).allocLarge: a span of whole pages for one object."""
    heap = runtime.mheap
    npages = -(-size // PAGE_SIZE)
    spc = make_span_class(0, noscan)
    # deductSweepCredit first: mheap.alloc's reclaim will sweep npages itself
    runtime.sweeper.deduct_credit(npages * PAGE_SIZE, npages)
    s = yield from heap.alloc(npages, spc)
    if s is None:
        throw("out of memory")
    runtime.stats.large_alloc += npages * PAGE_SIZE
    runtime.stats.large_alloc_count += 1
    runtime.gc_controller.total_alloc += npages * PAGE_SIZE
    runtime.gc_controller.update(s.npages * PAGE_SIZE, 0)
    # Put the large span in the mcentral swept list so that it's visible to the background sweeper.
    heap.central[spc].full_swept(heap.sweepgen).append(s)
    s.limit = s.base() + size
    s.init_heap_bits()
    if s.needzero:          # mallocgcLarge clears it (memclrNoHeapPointersChunked)
        _charge_clear(runtime, size)
    return s
