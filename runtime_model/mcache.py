"""runtime/mcache.go: the per-P cache of spans, one per span class.

The mcache struct lives in emulated memory; machine code allocates from
`c.alloc[spc]` without Python. When a span is used up, the machine code calls
out to `refill`, which returns the span to its mcentral and caches a fresh one,
exactly as (*mcache).refill does.
"""

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
    slot = c + L.alloc + spc * 8
    s = MSpan(mem, mem.u64(slot))
    if s.allocCount != s.nelems:
        throw("refill of span with free space remaining")
    if spc == TINY_SPAN_CLASS:
        mem.w64(c + L.reusableNoscan + spc * 8, 0)
    if mem.u64(c + L.reusableNoscan + spc * 8):
        throw("refill of span with reusable pointers remaining on pointer free list")
    if s.addr != runtime.emptymspan:
        if s.sweepgen != (heap.sweepgen + 3) & 0xFFFFFFFF:
            throw("bad sweepgen in refill")
        heap.central[spc].uncache_span(s)
        used = s.allocCount - s.allocCountBeforeCache
        runtime.stats.small_alloc_count[spc >> 1] += used
        if spc == TINY_SPAN_CLASS:
            runtime.stats.tiny_alloc_count += mem.u64(c + L.tinyAllocs)
            mem.w64(c + L.tinyAllocs, 0)
        runtime.gc_controller.total_alloc += used * s.elemsize
        s.allocCountBeforeCache = 0
        # The slot holds no span while mcentral works, so a refill that fails (out of
        # memory) leaves a consistent mcache; Go dies there and never needs to.
        mem.w64(slot, runtime.emptymspan)
    s = yield from heap.central[spc].cache_span()
    if s is None:
        throw("out of memory")
    if s.allocCount == s.nelems:
        throw("span has no free space")
    # sweepgen+3: cached by an mcache and swept (mheap.go's sweepgen states).
    s.sweepgen = heap.sweepgen + 3
    s.allocCountBeforeCache = s.allocCount
    used_bytes = s.allocCount * s.elemsize
    runtime.gc_controller.update(s.npages * PAGE_SIZE - used_bytes, mem.u64(c + L.scanAlloc))
    mem.w64(c + L.scanAlloc, 0)
    mem.w64(slot, s.addr)
    runtime.refills.append((spc, s.addr))


def alloc_large(runtime, size, noscan):
    """mcache.go: (*mcache).allocLarge: a span of whole pages for one object."""
    heap = runtime.mheap
    npages = -(-size // PAGE_SIZE)
    spc = make_span_class(0, noscan)
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
    return s
