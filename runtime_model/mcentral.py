"""runtime/mcentral.go: the central free lists, one mcentral per span class.

Each mcentral keeps its spans in two pairs of span sets, partial (some free
slots) and full, and each pair has a swept and an unswept half. Which half is
which flips every GC cycle: the index is sweepgen/2 % 2, so a span pushed as
"swept" this cycle is "unswept" the next without being moved.

Simplified: there is no GC cycle yet, so sweepgen never advances, the unswept
halves stay empty and cacheSpan goes from the partial swept set straight to
grow (Go sweeps unswept spans in between).
"""

from collections import deque

from runtime_model import sizeclasses as sc
from runtime_model.mem_linux import throw


class MCentral:
    def __init__(self, heap, spanclass):
        self.heap = heap
        self.spanclass = spanclass
        self.partial = (deque(), deque())   # spanSet: push at the tail, pop at the head
        self.full = (deque(), deque())

    def partial_swept(self, sg):
        return self.partial[sg // 2 % 2]

    def partial_unswept(self, sg):
        return self.partial[1 - sg // 2 % 2]

    def full_swept(self, sg):
        return self.full[sg // 2 % 2]

    def full_unswept(self, sg):
        return self.full[1 - sg // 2 % 2]

    def cache_span(self):
        """mcentral.go: (*mcentral).cacheSpan: a span with free slots for an mcache."""
        sg = self.heap.sweepgen
        part = self.partial_swept(sg)
        if part:
            s = part.popleft()
        else:
            s = yield from self.grow()
            if s is None:
                return None
        if s.nelems - s.allocCount == 0 or s.freeindex == s.nelems:
            throw("span has no free objects")
        # Start the cache at the 64-slot word holding freeindex.
        free_byte_base = s.freeindex & ~63
        s.refill_alloc_cache(free_byte_base // 8)
        s.allocCache >>= s.freeindex % 64
        return s

    def uncache_span(self, s):
        """mcentral.go: (*mcentral).uncacheSpan: a full or stale span goes back."""
        if s.allocCount == 0:
            throw("uncaching span but s.allocCount == 0")
        sg = self.heap.sweepgen
        if s.sweepgen == sg + 1:
            throw("stale span in uncacheSpan: sweeping is not modelled yet")
        s.sweepgen = sg
        (self.partial_swept(sg) if s.nelems - s.allocCount > 0 else self.full_swept(sg)).append(s)

    def grow(self):
        """mcentral.go: (*mcentral).grow: a fresh span of this class from the heap."""
        npages = sc.CLASS_TO_NPAGES[self.spanclass >> 1]
        s = yield from self.heap.alloc(npages, self.spanclass)
        return s
