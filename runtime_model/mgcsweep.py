"""runtime/mgcsweep.go: sweeping, the GC's way of freeing memory.

After marking, every span's mark bits say which objects survived. Sweeping
a span makes its mark bits the new allocation bits, counts the survivors,
marks the span as needing zeroing if anything was freed, and either returns
the span to its mcentral (partial or full) or, when nothing survived, frees
its pages to the heap. Large objects are spans of one object: unmarked, they
go back to the page allocator whole.

The sweep generation drives all of it: at the end of a cycle sweepgen goes
up by 2, so every span's sweepgen is 2 behind ("needs sweeping"), spans cached
by an mcache are 1 behind ("stale"), and mcentral's swept and unswept halves
swap roles without moving a span.

Nothing is swept at mark termination. The spans are swept lazily, as in Go
(`Sweeper`): by bgsweep in modeled time, by the allocating goroutine's
proportional sweep (deductSweepCredit) and mcentral.cacheSpan, by the page
reclaimer (mheap.py: reclaim), and what is left at the next gcStart.

`finish_cycle(runtime, live)` is the end of a GC cycle without its mark
phase: the caller says which objects are reachable. As gcMarkDone does, it
first finishes the last cycle's sweep (gcStart) and flushes p0's write-barrier
buffer, so what the barrier buffered during the cycle is shaded (kept alive) in
that cycle. Simplified: no marker (runtime_model/mgc.py has the collector's),
no finalizers or specials, no sweep pacing; sweeping runs over every span at
once (as runtime.GC's own sweepone loop does) unless `eager=False`, which
leaves the spans to mcentral.cacheSpan and the page reclaimer, as Go's
allocating goroutines sweep them. The live set need not be closed
under pointers (a live object may still point at one the caller let die);
shading such a dangling pointer marks nothing (runtime_model/mgcmark.py).
"""

import numpy as np

from emu import args as A
from emu.errors import BadInput
from emu.layout import MCache, NUM_SPAN_CLASSES, PAGE_SIZE
from runtime_model import mwbbuf
from runtime_model import sizeclasses as sc
from runtime_model.mem_linux import throw
from runtime_model.mspan import (ALLOC_BITS_Q, ALLOC_CACHE_Q, ALLOC_COUNT_H, FREE_INDEX_FOR_SCAN_H, FREEINDEX_H,
                                 GCMARK_BITS_Q, MSPAN_IN_USE, NEEDZERO_B, SWEEPGEN_I, MSpan, SpanFields,
                                 gc_bits_bytes, span_inline_mark_bits_size, uses_span_inline_mark_bits,
                                 INLINE_CLASS, INLINE_MARKS)

U1, U3, U63, U64 = (np.uint64(k) for k in (1, 3, 63, 64))
INLINE_MARK_WORDS = -(-(INLINE_CLASS - INLINE_MARKS) // 8)   # spanInlineMarkBits.marks in words
_ACQUIRE = SpanFields("npages", "sweepgen", "state")     # what sweepone reads of a span it pops

# The fields sweep reads, in one unpack (lazy sweep runs it inside refills).
_SWEPT = SpanFields("npages", "freeindex", "nelems", "allocBits", "gcmarkBits", "sweepgen", "allocCount",
                    "spanclass", "state", "elemsize")


def move_inline_marks(s):
    """mgcmark_greenteagc.go: (*mspan).moveInlineMarks: the inline marks (minus the
    class byte) OR-ed into gcmarkBits, then the inline bits reset."""
    mem = s.mem
    q = s.inline_mark_bits()
    n = min(-(-s.nelems // 8), INLINE_CLASS - INLINE_MARKS)
    marks = int.from_bytes(mem.read(q + INLINE_MARKS, n), "little")
    if marks:
        # one OR over the bytes from the first to the last non-zero one (only those are
        # touched, as a byte loop would: RSS counts touched host pages)
        lo, hi = ((marks & -marks).bit_length() - 1) >> 3, (marks.bit_length() + 7) >> 3
        g = s.gcmarkBits + lo
        old = int.from_bytes(mem.read(g, hi - lo), "little")
        mem.write(g, (old | marks >> 8 * lo).to_bytes(hi - lo, "little"))
    mem.fill(q, span_inline_mark_bits_size())
    mem.w8(q + INLINE_CLASS, s.spanclass)


def sweep(runtime, s, preserve=False):
    """mgcsweep.go: (*sweepLocked).sweep. Returns True if the span was freed to the heap."""
    heap, mem = runtime.mheap, runtime.mem
    sg = heap._sweepgen
    npages, freeindex, nelems, old, marks, sweepgen, count, spc, state, size = _SWEPT.unpack(*s.loc)
    if state != MSPAN_IN_USE or sweepgen != (sg - 1) & 0xFFFFFFFF:
        throw(f"mspan.sweep: bad span state (state {state}, sweepgen {sweepgen}, mheap {sg})")
    sweeper = runtime.sweeper
    sweeper.pages_swept += npages
    sweeper.spans_swept += 1
    if uses_span_inline_mark_bits(size):
        move_inline_marks(s)            # (into the gcmarkBits bitmap: the fields read hold)
    nb = gc_bits_bytes(nelems)
    # both bitmaps through their host backing (the off-heap region's: persistentalloc'd), each read once
    ab = mb = heap._meta
    if not (ab.base <= old and old + nb <= ab.end and ab.base <= marks and marks + nb <= ab.end):
        ab, mb = mem._backing(old, nb), mem._backing(marks, nb)
    alloc_bits = int.from_bytes(ab.buf[old - ab.base:old - ab.base + nb], "little")
    mark_bits = int.from_bytes(mb.buf[marks - mb.base:marks - mb.base + nb], "little")
    # allocfreetrace: an object is freed if it was allocated and is not marked.
    # Zombies: marked slots at or past freeindex that are not allocated (reportZombies).
    if freeindex < nelems:
        zombies = mark_bits & ~alloc_bits & ((1 << nelems) - 1) & -(1 << freeindex)
        if zombies:
            i = (zombies & -zombies).bit_length() - 1
            throw(f"found pointer to free object (span {s.addr:#x}, slot {i} at {s.base() + i * size:#x})")
    if runtime.tracing_allocs():
        for i in range(nelems):
            if not mark_bits >> i & 1 and (i < freeindex or alloc_bits >> i & 1):
                runtime.trace_free(s.base() + i * size, size, spc)
    nalloc = (mark_bits & ((1 << nelems) - 1)).bit_count()      # countAlloc
    nfreed = count - nalloc
    if nalloc > count:
        throw(f"sweep increased allocation count (nalloc {nalloc}, allocCount {count})")
    # the field stores through the struct's typed views (no property calls)
    sb, so = s._b, s._o
    sh, sq = sb.h, sb.q
    sh[(so >> 1) + ALLOC_COUNT_H] = nalloc
    sh[(so >> 1) + FREEINDEX_H] = 0
    sh[(so >> 1) + FREE_INDEX_FOR_SCAN_H] = 0
    # The mark bits become the allocation bits; the old allocation bits, cleared, the next
    # mark bits (Go gets fresh ones from its gcBits arenas and frees the old two cycles on).
    sq[(so >> 3) + ALLOC_BITS_Q] = marks
    ab.buf[old - ab.base:old - ab.base + nb] = bytes(nb)
    sq[(so >> 3) + GCMARK_BITS_Q] = old
    sq[(so >> 3) + ALLOC_CACHE_Q] = ~mark_bits & 0xFFFFFFFFFFFFFFFF     # refillAllocCache(0) of the new allocBits
    sb.i[(so >> 2) + SWEEPGEN_I] = sg
    central = heap.central[spc]
    if spc >> 1:
        if nfreed > 0:
            sb.b[so + NEEDZERO_B] = 1
            runtime.stats.small_free_count[spc >> 1] += nfreed
            runtime.gc_controller.total_free += nfreed * size
        if not preserve:
            if nalloc == 0:
                heap.free_span(s)
                return True
            (central.full_swept(sg) if nalloc == nelems else central.partial_swept(sg)).append(s)
    elif not preserve:
        if nfreed:
            runtime.stats.large_free_count += 1
            runtime.stats.large_free += size
            runtime.gc_controller.total_free += size
            heap.free_span(s)
            return True
        central.full_swept(sg).append(s)
    return False


def release_all(runtime, c):
    """mcache.go: (*mcache).releaseAll: every cached span back to its mcentral."""
    mem, heap = runtime.mem, runtime.mheap
    if runtime.machine.checked:
        runtime.check_mcache()           # the spans come back from machine code
    for spc in range(len(heap.central)):
        slot = c + MCache.alloc + 8 * spc
        addr = mem.u64(slot)
        if addr == runtime.emptymspan:
            continue
        s = MSpan(mem, addr)
        runtime.stats.small_alloc_count[spc >> 1] += s.allocCount - s.allocCountBeforeCache
        runtime.gc_controller.total_alloc += (s.allocCount - s.allocCountBeforeCache) * s.elemsize
        s.allocCountBeforeCache = 0
        heap.central[spc].uncache_span(s)
        mem.w64(slot, runtime.emptymspan)
    mem.w64(c + MCache.tiny, 0)
    mem.w64(c + MCache.tinyoffset, 0)
    runtime.stats.tiny_alloc_count += mem.u64(c + MCache.tinyAllocs)
    mem.w64(c + MCache.tinyAllocs, 0)


def finish_cycle(runtime, live, eager=True):
    """The end of a GC cycle whose mark phase found the objects in `live` (addresses
    inside allocated heap objects): flush the write-barrier buffer, mark them, start
    a new sweep generation, flush the mcache, and sweep."""
    gcw = runtime.machine.gcwork
    if isinstance(live, (str, bytes)) or not hasattr(live, "__iter__"):
        raise BadInput(f"live must be a sequence of heap object addresses, not {live!r}")
    A.flag("eager", eager)
    if not runtime.sweeper.is_done():
        runtime.sweeper.finishsweep_m()  # gcStart: the last cycle's sweep finishes before marking
    marks = []
    for i, p in enumerate(live):
        found = gcw.find_object(A.integer(f"live[{i}]", p))
        if found is None:
            raise BadInput(f"live[{i}] = {p:#x} is not an allocated heap object")
        marks.append(found)
    if runtime.machine.checked:
        runtime.check_mcache()           # before the cycle changes anything
    # gcMarkDone: every P's write-barrier buffer is flushed before mark termination.
    flushed = mwbbuf.wb_buf_flush1(runtime.mem, gcw, runtime.symbol("runtime.p0"))
    if flushed:
        runtime.machine.wb_flushes.append(flushed)
    for _, s, idx in marks:
        s.set_bit(s.mark_bit(idx))
    gcw.grey.clear()       # marking is over: nothing is left to scan
    # gcMarkTermination: gcSweep (mheap_.sweepgen += 2), then each P's mcache is flushed.
    runtime.sweeper.start()
    release_all(runtime, runtime.mcache)
    if eager:
        sweep_all(runtime)


def sweep_all(runtime):
    """mgcsweep.go: sweepone until there is nothing left (finishsweep_m's and runtime.GC's
    loop). Returns the number of spans swept."""
    return runtime.sweeper.sweep(None)[0]


def sweep_batch(runtime, spans):
    """Sweep spans acquired for sweeping, as a loop of sweepone over them would: one by one
    when few (or when tracing frees), else in one pass over their bitmaps (sweep_spans).
    Returns the pages freed to the heap."""
    if len(spans) < BULK_SWEEP_MIN or runtime.tracing_allocs():
        return sum(s.npages for s in spans if sweep(runtime, s))
    return sum(s.npages for s in sweep_spans(runtime, spans))


BULK_SWEEP_MIN = 16           # below this many spans sweep() one by one beats numpy's set-up
BG_SWEEP_BATCH = 64           # bgsweep's due work is done once this many spans are due (38 us of
                              # it), so that numpy sweeps them: 6 us a span against 13 one by one
SWEEP_BATCH_SIZE = 10         # mgcsweep.go: bgsweep's sweepBatchSize
FORCE_PREEMPT_NS = 10_000_000  # proc.go: forcePreemptNS, how long sysmon lets a goroutine run
SWEEP_NS_PER_SPAN = 600       # sweeping one span (sweepone: mark bits to alloc bits, the span
                              # freed): runtime.GC at GOMAXPROCS=1 (its caller sweeps everything)
                              # took 592-610 ns more a span with 9,000 than with 1,000 spans of
                              # 4 KiB garbage (docs/real_runtime_costs.md, "Sweeping")


class Sweeper:
    """mgcsweep.go's sweep state (`sweep`: activeSweep, centralIndex) and mheap_'s sweep
    fields (pagesSwept, the proportional sweeper's pacing, the page reclaimer's index and
    credit): `runtime.sweeper`.

    One goroutine sweeps at a time, so activeSweep is its drained bit alone. bgsweep runs in
    the machine's modeled time (emu/clock.py): with two or more Ps it has one of the idle
    Ps to itself from mark termination on and sweeps a span every SWEEP_NS_PER_SPAN; with
    one P it runs when the mutator idles, and a batch of SWEEP_BATCH_SIZE spans each time
    sysmon preempts the mutator (every FORCE_PREEMPT_NS), on the mutator's time. Its due
    work is done at the runtime's slow paths (background), BG_SWEEP_BATCH spans or more at a
    time (with two or more Ps). The mutator's own sweeping
    (proportional sweep, mcentral.cacheSpan, the reclaimer, gcStart) takes its time."""

    def __init__(self, runtime):
        self.rt = runtime
        self.drained = True             # gcinit: no sweep on the first cycle
        self.central_index = 0          # sweep.centralIndex: a sweepClass
        self.pages_swept = 0            # mheap_.pagesSwept
        self.pages_swept_basis = 0      # mheap_.pagesSweptBasis
        self.pages_per_byte = 0.0       # mheap_.sweepPagesPerByte
        self.heap_live_basis = 0        # mheap_.sweepHeapLiveBasis
        self.arenas = []                # mheap_.sweepArenas
        self.reclaim_index = 0          # mheap_.reclaimIndex (pages; 1<<63: done)
        self.reclaim_credit = 0         # mheap_.reclaimCredit (pages)
        self.spans_swept = 0            # this sweep generation's spans (all sweepers)
        self._bg_since = 0              # modeled time bgsweep's idle-P time is counted from
        self._bg_credit_ns = 0          # bgsweep's time not yet spent on a whole span

    def is_done(self):
        """mgcsweep.go: isSweepDone."""
        return self.drained

    # ---- gcSweep, gcPaceSweeper ------------------------------------------------------------
    def start(self):
        """mgc.go: gcSweep (concurrent): a new sweep generation, nothing swept, bgsweep readied."""
        heap = self.rt.mheap
        heap.sweepgen = heap.sweepgen + 2
        self.drained = False
        self.pages_per_byte = 0.0       # until gcControllerCommit paces it
        self.pages_swept = 0
        self.arenas = list(heap.heap_arenas)
        self.reclaim_index = self.reclaim_credit = 0
        self.central_index = 0
        self.spans_swept = 0
        self._bg_since, self._bg_credit_ns = self.rt.machine.clock.ns(), 0

    def pace(self, trigger):
        """mgcsweep.go: gcPaceSweeper: sweep every in-use page by the time heapLive reaches the
        trigger (less 1 MiB of margin)."""
        if self.is_done():
            self.pages_per_byte = 0.0
            return
        live = self.rt.gc_controller.heap_live
        distance = max(trigger - live - (1 << 20), PAGE_SIZE)
        pages = self.rt.mheap.pages_in_use - self.pages_swept
        if pages <= 0:
            self.pages_per_byte = 0.0
            return
        self.pages_per_byte = pages / distance
        self.heap_live_basis = live
        self.pages_swept_basis = self.pages_swept

    # ---- sweepone --------------------------------------------------------------------------
    def next_unswept(self):
        """mheap.go: nextSpanForSweep's search: the unswept set it pops from now (each class's
        partial set then its full set, in span class order), or None when all are empty."""
        heap = self.rt.mheap
        sg = heap._sweepgen
        i = self.central_index
        while i < 2 * NUM_SPAN_CLASSES:
            c = heap.central[i >> 1]
            unswept = c.full_unswept(sg) if i & 1 else c.partial_unswept(sg)
            if unswept:
                self.central_index = i
                return unswept
            i += 1
        self.central_index = i
        return None

    def sweep(self, spans=None, pages=None):
        """sweepone in a loop: until `spans` spans or `pages` pages were swept (None: until
        none is left). Returns (spans swept, pages freed to the heap). The last sweeper
        (nothing left) ends the sweep: scavtrace's line and scavenger.ready()."""
        heap = self.rt.mheap
        sg = heap._sweepgen
        unswept_gen, done_gen = (sg - 2) & 0xFFFFFFFF, (sg + 3) & 0xFFFFFFFF
        todo, npages, drained = [], 0, False
        while (spans is None or len(todo) < spans) and (pages is None or npages < pages):
            unswept = self.next_unswept()
            if unswept is None:
                drained = not self.drained
                self.drained = True
                break
            # nextSpanForSweep's pops from this set while it lasts, each span's fields in one unpack
            while unswept and (spans is None or len(todo) < spans) and (pages is None or npages < pages):
                s = unswept.popleft()
                n, gen, state = _ACQUIRE.unpack(*s.loc)
                if state != MSPAN_IN_USE:
                    # freed by direct sweeping (the page reclaimer): already up to date
                    if gen != sg and gen != done_gen:
                        throw(f"non in-use span in unswept list (state {state}, sweepgen {gen}, mheap {sg})")
                    continue
                if gen == unswept_gen:                  # sweepLocker.tryAcquire
                    s.sweepgen = sg - 1
                    todo.append(s)
                    npages += n
        freed = sweep_batch(self.rt, todo) if todo else 0
        self.reclaim_credit += freed                    # sweepone: mheap_.reclaimCredit
        if drained:
            self.rt.scavenger.sweep_done()
        return len(todo), freed

    def charge(self, spans):
        """The mutator's time for sweeping that many spans itself."""
        if spans:
            self.rt.machine.clock.advance(spans * SWEEP_NS_PER_SPAN)

    # ---- deductSweepCredit ---------------------------------------------------------------------
    def deduct_credit(self, span_bytes, caller_sweep_pages):
        """mgcsweep.go: deductSweepCredit: before a span is allocated, sweep until the pages swept
        since the basis keep up with the bytes allocated since it (proportional sweep)."""
        self.background()
        if self.pages_per_byte == 0:
            return
        live = self.rt.gc_controller.heap_live
        new_live = span_bytes + (live - self.heap_live_basis if self.heap_live_basis < live else 0)
        target = int(self.pages_per_byte * new_live) - caller_sweep_pages
        need = target - (self.pages_swept - self.pages_swept_basis)
        if need > 0:
            n, _ = self.sweep(pages=need)
            self.charge(n)
            if self.drained:
                self.pages_per_byte = 0.0

    # ---- bgsweep ------------------------------------------------------------------------------
    def background(self):
        """bgsweep's work due by now (see the class doc)."""
        if self.drained:
            return
        now = self.rt.machine.clock.ns()
        if self.rt.gc.procs > 1:
            self._bg_credit_ns += now - self._bg_since
            self._bg_since = now
            n = int(self._bg_credit_ns // SWEEP_NS_PER_SPAN)
            if n >= BG_SWEEP_BATCH:
                self._bg_credit_ns -= n * SWEEP_NS_PER_SPAN
                self.sweep(n)
            return
        batches = (now - self._bg_since) // FORCE_PREEMPT_NS
        if batches:
            self._bg_since += batches * FORCE_PREEMPT_NS
            n, _ = self.sweep(batches * SWEEP_BATCH_SIZE)
            self.charge(n)

    def idle(self, ns):
        """The mutator sleeps ns: with one P, bgsweep has it meanwhile (the clock has moved on;
        sysmon preempts only a running goroutine)."""
        if self.rt.gc.procs == 1 and not self.drained:
            self._bg_since += ns
            self._bg_credit_ns += ns
            n = int(self._bg_credit_ns // SWEEP_NS_PER_SPAN)
            self._bg_credit_ns -= n * SWEEP_NS_PER_SPAN
            if n:
                self.sweep(n)
        self.background()

    # ---- gcStart, runtime.GC ---------------------------------------------------------------------
    def finish(self):
        """What is left of the sweep done by the mutator (gcStart's and runtime.GC's sweepone
        loop), with bgsweep on another P when there is one; then finishsweep_m: the unswept
        sets reset and the scavenger woken. Returns the spans the loop swept."""
        self.background()
        n, _ = self.sweep(None)
        if n:
            self.rt.machine.clock.advance(n * SWEEP_NS_PER_SPAN / (2 if self.rt.gc.procs > 1 else 1))
        return n

    def finishsweep_m(self):
        """mgcsweep.go: finishsweep_m (the world stopped): sweep what is left, reset the
        unswept sets (they hold only spans swept directly), wake the scavenger."""
        self.sweep(None)
        heap = self.rt.mheap
        sg = heap._sweepgen
        for c in heap.central:
            c.partial_unswept(sg).clear()
            c.full_unswept(sg).clear()
        self.rt.scavenger.wake()


def sweep_spans(runtime, spans):
    """sweep (above) for many spans at once, as bgsweep's loop of sweepone would leave them,
    with the bitmaps handled as numpy arrays over emulated memory: the spans' records read in
    one gather and written back in one scatter (HeapView.read_spans), each bitmap as rows of
    uint64 words. Each span must be acquired for sweeping (sweepgen == mheap.sweepgen - 1).
    Returns the spans freed.

    Same results as sweeping one by one (a test compares them), except that the old
    allocBits are cleared and become the new gcmarkBits (Go frees them with their gcBits
    arena two cycles later; nothing reads them after the sweep)."""
    from runtime_model.heapview import HeapView, INLINE_BITS
    if not spans:
        return []
    heap = runtime.mheap
    sg = heap.sweepgen
    v = HeapView(heap)
    a = np.fromiter((s.addr for s in spans), dtype=np.int64, count=len(spans)) - v.off_base
    k = a >> 3
    r = v.read_spans(k)                              # a copy, written back below
    bad = np.flatnonzero((r["state"] != MSPAN_IN_USE) | (r["sweepgen"] != (sg - 1) & 0xFFFFFFFF))
    if len(bad):
        s = spans[bad[0]]
        throw(f"mspan.sweep: bad span state (state {s.state}, sweepgen {s.sweepgen}, mheap {sg})")
    runtime.sweeper.pages_swept += int(r["npages"].sum())
    runtime.sweeper.spans_swept += len(spans)
    spc, size = r["spanclass"], r["elemsize"]
    nelems, alloc_count = r["nelems"].astype(np.int64), r["allocCount"].astype(np.int64)
    alloc_bits, mark_bits = r["allocBits"].copy(), r["gcmarkBits"].copy()
    # the bitmaps as rows of words; a row's columns past its bitmap repeat its last word, so
    # they hold the same value throughout and the scatters below write it once more
    nw = (nelems + 63) >> 6
    j = np.arange(int(nw.max()), dtype=np.int64)[None, :]
    col = np.minimum(j, nw[:, None] - 1)
    off = np.uint64(v.off_base)
    midx = ((mark_bits - off) >> U3).astype(np.int64)[:, None] + col
    aidx = ((alloc_bits - off) >> U3).astype(np.int64)[:, None] + col
    marks = v.off64[midx]
    gi = np.flatnonzero((size >= 16) & (size <= sc.MIN_SIZE_FOR_MALLOC_HEADER))
    if len(gi):                     # moveInlineMarks: the marks' 63 bytes (the class byte excluded)
        q = ((r["startAddr"][gi] - np.uint64(v.heap_base)) >> U3).astype(np.int64) + (PAGE_SIZE - INLINE_BITS) // 8
        # every column, the repeats of a row's last word too (such spans have at most 512
        # objects: 8 words), else a repeat without them is the last one the scatter writes
        icol = col[gi]
        inl = v.heap64[q[:, None] + INLINE_MARKS // 8 + icol]
        inl[icol == INLINE_MARK_WORDS - 1] &= np.uint64((1 << 8 * ((INLINE_CLASS - INLINE_MARKS) % 8)) - 1)
        marks[gi] |= inl
        v.heap64[q[:, None] + np.arange(INLINE_BITS // 8)] = 0
        v.heap8[(q << 3) + INLINE_CLASS] = spc[gi]
    # only nelems bits count: word j of a row keeps its bits below nelems - 64 j
    marks &= _low_bits(nelems[:, None] - 64 * col)
    # reportZombies: a marked slot at or past freeindex that was never allocated
    late = _low_bits(r["freeindex"].astype(np.int64)[:, None] - 64 * col)
    zombie = marks & ~v.off64[aidx] & ~late
    if zombie.any():
        row = int(np.flatnonzero(zombie.any(axis=1))[0])
        word = int(np.flatnonzero(zombie[row])[0])
        z = int(zombie[row, word])
        i = 64 * word + (z & -z).bit_length() - 1
        s = spans[row]
        throw(f"found pointer to free object (span {s.addr:#x}, slot {i} at {s.base() + i * s.elemsize:#x})")
    nalloc = (np.bitwise_count(marks) * (j < nw[:, None])).sum(axis=1, dtype=np.int64)   # countAlloc
    over = np.flatnonzero(nalloc > alloc_count)
    if len(over):
        i = over[0]
        throw(f"sweep increased allocation count (nalloc {nalloc[i]}, allocCount {alloc_count[i]})")
    if runtime.tracing_allocs():
        raise NotImplementedError("sweep_spans with allocation tracing: use sweep")
    # the mark bits become the allocation bits, the old allocation bits (cleared) the next
    # mark bits; the columns that repeat a row's last word write it once more
    v.off64[midx] = marks
    v.off64[aidx] = 0
    nfreed = alloc_count - nalloc
    small = (spc >> 1) != 0
    freed_small = small & (nfreed > 0)
    r["allocCount"] = nalloc
    r["freeindex"] = 0
    r["freeIndexForScan"] = 0
    r["allocBits"] = mark_bits
    r["gcmarkBits"] = alloc_bits
    r["allocCache"] = ~marks[:, 0]                 # refillAllocCache(0) of the new allocBits
    r["sweepgen"] = sg & 0xFFFFFFFF
    r["needzero"][freed_small] = 1
    v.write_spans(k, r)
    freed = []
    stats, ctl = runtime.stats, runtime.gc_controller
    for c, nf in zip(spc[freed_small].tolist(), nfreed[freed_small].tolist()):
        stats.small_free_count[c >> 1] += nf
    ctl.total_free += int((nfreed[small] * size[small].astype(np.int64)).sum())
    # span by span as Python ints (numpy scalars cost an object each)
    for s, c, na, ne, nf, sz in zip(spans, spc.tolist(), nalloc.tolist(), nelems.tolist(), nfreed.tolist(),
                                    size.tolist()):
        central = heap.central[c]
        if c >> 1:
            if na == 0:
                freed.append(s)
            elif na == ne:
                central.full_swept(sg).append(s)
            else:
                central.partial_swept(sg).append(s)
        elif nf:
            stats.large_free_count += 1
            stats.large_free += sz
            ctl.total_free += sz
            freed.append(s)
        else:
            central.full_swept(sg).append(s)
    heap.free_spans(freed)
    return freed


def _low_bits(n):
    """(1 << n) - 1 for each int64 n, as uint64: 0 below 0, all ones from 64 on (np.clip's
    checks cost ~100 us a call, the two compares ~4)."""
    n = np.maximum(n, 0).view(np.uint64)
    return np.where(n >= U64, ~np.uint64(0), (U1 << np.minimum(n, U63)) - U1)
