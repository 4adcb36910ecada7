"""runtime/mcentral.go: the central free lists, one mcentral per span class.

Each mcentral keeps its spans in two pairs of span sets, partial (some free
slots) and full, and each pair has a swept and an unswept half. Which half is
which flips every GC cycle: the index is sweepgen/2 % 2, so a span pushed as
"swept" this cycle is "unswept" the next without being moved.

Sweeping is in mgcsweep.py; a span "acquired for sweeping" is one whose
sweepgen moved from sweepgen-2 to sweepgen-1. An unswept set may still hold a
span another sweeper took directly (the page reclaimer): popped, it cannot be
acquired and is skipped, as in Go.
"""

from collections import deque

from runtime_model import sizeclasses as sc
from runtime_model.mem_linux import OSCall, throw
from runtime_model.mgcsweep import sweep
from runtime_model.mspan import ALLOC_CACHE_Q, SWEEPGEN_I, SpanFields, span_has_bits

SPAN_BUDGET = 100      # mcentral.go: cacheSpan's spanBudget
# The fields cacheSpan's end and uncacheSpan read, each in one read.
_CACHING = SpanFields("freeindex", "nelems", "allocBits", "allocCount")
_UNCACHING = SpanFields("nelems", "sweepgen", "allocCount")


class MCentral:
    def __init__(self, heap, spanclass):
        self.heap = heap
        self.spanclass = spanclass
        self.npages = sc.CLASS_TO_NPAGES[spanclass >> 1]     # of each span (0: large spans)
        # (*mspan).initHeapBits has work in a fresh span of this small class
        self.span_has_bits = bool(spanclass >> 1) and span_has_bits(spanclass, sc.CLASS_TO_SIZE[spanclass >> 1])
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
        """mcentral.go: (*mcentral).cacheSpan: a span with free slots for an mcache.
        Prefers a partial swept span, then sweeps unswept ones (on the allocating
        goroutine's time), then grows: a fresh span of this class from the heap."""
        heap = self.heap
        runtime = heap.env.runtime
        sweeper = runtime.sweeper
        sweeper.deduct_credit(self.npages << sc.PAGE_SHIFT, 0)
        sg = heap._sweepgen
        swept = (sg >> 1) & 1                    # the swept half of each spanSet pair: sg/2 % 2
        part = self.partial[swept]
        s = part.popleft() if part else None
        # sweep.active.begin(): with the sweep drained the unswept sets are left alone
        budget = -1 if s is not None or sweeper.is_done() else SPAN_BUDGET
        while budget >= 0 and s is None:
            unswept = self.partial[1 - swept]
            if not unswept:
                break
            cand = unswept.popleft()
            budget -= 1
            if self.try_acquire(cand, sg):
                sweep(runtime, cand, preserve=True)
                sweeper.charge(1)
                s = cand
        while budget >= 0 and s is None:
            unswept = self.full[1 - swept]
            if not unswept:
                break
            cand = unswept.popleft()
            budget -= 1
            if self.try_acquire(cand, sg):
                sweep(runtime, cand, preserve=True)
                sweeper.charge(1)
                # freeIndex := s.nextFreeIndex(), in the machine code Go runs for it
                free_index, _ = yield OSCall("runtime.(*mspan).nextFreeIndex", (cand.addr,))
                if free_index != cand.nelems:
                    cand.freeindex = free_index
                    s = cand
                else:
                    self.full[swept].append(cand)
        if s is None:       # mcentral.go: (*mcentral).grow, here (no generator of its own)
            s = yield from heap.alloc(self.npages, self.spanclass)
            if s is None:
                return None
            if self.span_has_bits:
                s.init_heap_bits()
        fi, nelems, alloc_bits, count = _CACHING.unpack(*s.loc)
        if nelems - count == 0 or fi == nelems or count == nelems:
            throw("span has no free objects")
        # Start the cache at the 64-slot word holding freeindex (refillAllocCache); gcBits
        # are persistentalloc'd (8-aligned), so the word is read through the off-heap view.
        word = alloc_bits + ((fi >> 6) << 3)
        mb = heap._meta
        bits = mb.q[(word - mb.base) >> 3] if mb.base <= word < mb.end and not word & 7 else s.mem.u64(word)
        s._b.q[(s._o >> 3) + ALLOC_CACHE_Q] = (~bits & 0xFFFFFFFFFFFFFFFF) >> (fi & 63)
        return s

    @staticmethod
    def try_acquire(s, sg):
        """mgcsweep.go: sweepLocker.tryAcquire: sweepgen-2 means unswept; take it."""
        v, i = s._b.i, (s._o >> 2) + SWEEPGEN_I      # the field through its typed view
        if v[i] != (sg - 2) & 0xFFFFFFFF:
            return False
        v[i] = (sg - 1) & 0xFFFFFFFF
        return True

    def uncache_span(self, s):
        """mcentral.go: (*mcentral).uncacheSpan: a full or stale span goes back."""
        nelems, sweepgen, count = _UNCACHING.unpack(*s.loc)
        if count == 0:
            throw("uncaching span but s.allocCount == 0")
        sg = self.heap._sweepgen
        if sweepgen == (sg + 1) & 0xFFFFFFFF:
            # Cached before the sweep generation advanced: sweep it now.
            s.sweepgen = sg - 1
            sweep(self.heap.env.runtime, s)
            return
        s._b.i[(s._o >> 2) + SWEEPGEN_I] = sg
        (self.partial if nelems - count > 0 else self.full)[(sg >> 1) & 1].append(s)
