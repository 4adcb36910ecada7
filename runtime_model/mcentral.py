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
from runtime_model.mspan import ALLOC_CACHE_Q, FREEINDEX_H, NELEMS_H, SWEEPGEN_I, MSpan, SpanFields, span_has_bits

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
        goroutine's time), then grows: a fresh span of this class from the heap. The span,
        or, when that needs machine code (a swept full span's nextFreeIndex) or the OS
        (heap growth), a generator that gives it, for the caller to `yield from`."""
        heap = self.heap
        sweeper = heap.env.runtime.sweeper
        sweeper.deduct_credit(self.npages << sc.PAGE_SHIFT, 0)
        sg = heap._sweepgen
        swept = (sg >> 1) & 1                    # the swept half of each spanSet pair: sg/2 % 2
        part = self.partial[swept]
        if part:
            return self._have_span(part.popleft())
        if not sweeper.is_done():               # sweep.active.begin(): else leave them alone
            budget = SPAN_BUDGET
            unswept = self.partial[1 - swept]
            while unswept:
                cand = unswept.popleft()
                budget -= 1
                if self.try_acquire(cand, sg):
                    sweep(heap.env.runtime, cand, preserve=True)
                    sweeper.charge(1)
                    return self._have_span(cand)
                if budget < 0:
                    break
            if budget >= 0 and self.full[1 - swept]:
                return self._sweep_full(budget, sg, swept)
        return self._grow()

    def _sweep_full(self, budget, sg, swept):
        """cacheSpan's sweep of unswept full spans (a generator: nextFreeIndex is machine
        code), then grow if none had a free slot."""
        runtime = self.heap.env.runtime
        unswept = self.full[1 - swept]
        while budget >= 0 and unswept:
            cand = unswept.popleft()
            budget -= 1
            if self.try_acquire(cand, sg):
                sweep(runtime, cand, preserve=True)
                runtime.sweeper.charge(1)
                # freeIndex := s.nextFreeIndex(), in the machine code Go runs for it
                free_index, _ = yield OSCall("runtime.(*mspan).nextFreeIndex", (cand.addr,))
                h, o = cand._b.h, cand._o >> 1          # the fields through their typed view
                if free_index != h[o + NELEMS_H]:
                    h[o + FREEINDEX_H] = free_index & 0xFFFF      # (freeindex is a uint16)
                    return self._have_span(cand)
                self.full[swept].append(cand)
        s = self._grow()
        if s.__class__ is not MSpan:
            s = yield from s
        return s

    def _grow(self):
        """mcentral.go: (*mcentral).grow: the span, or a generator that gives it through the
        heap's OS calls. (cacheSpan's havespan leaves a fresh span as initSpan made it: its
        allocBits are zero, persistentalloc'd, and its freeindex 0, so the allocCache it
        would load is initSpan's all-ones.)"""
        s = self.heap.alloc(self.npages, self.spanclass)
        if s.__class__ is not MSpan:
            return self._grow_os(s)
        if self.span_has_bits:
            s.init_heap_bits()
        return s

    def _grow_os(self, alloc):
        s = yield from alloc
        if s is not None and self.span_has_bits:
            s.init_heap_bits()
        return s

    def _have_span(self, s):
        """cacheSpan's havespan: the span's allocCache from its allocBits at freeindex."""
        heap = self.heap
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
