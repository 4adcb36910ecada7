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

`finish_cycle(runtime, live)` is the end of a GC cycle without its mark
phase: the caller says which objects are reachable. As gcMarkDone does, it
first flushes p0's write-barrier buffer, so what the barrier buffered during
the cycle is shaded (kept alive) in that cycle. Simplified: there is no
marker yet (the GC-cycle work will add one), no finalizers or specials, no
sweep credit, and sweeping runs eagerly over every span (bgsweep finishing
at once) unless `eager=False`, which leaves spans for mcentral.cacheSpan to
sweep lazily as Go's allocating goroutines do. The live set need not be closed
under pointers (a live object may still point at one the caller let die);
shading such a dangling pointer marks nothing (runtime_model/mgcmark.py).
"""

from emu import args as A
from emu.errors import BadInput
from emu.layout import MCache
from runtime_model import mwbbuf
from runtime_model import sizeclasses as sc
from runtime_model.mem_linux import throw
from runtime_model.mspan import (MSPAN_IN_USE, MSpan, gc_bits_bytes, span_inline_mark_bits_size,
                                 uses_span_inline_mark_bits, INLINE_CLASS, INLINE_MARKS)


def move_inline_marks(s):
    """mgcmark_greenteagc.go: (*mspan).moveInlineMarks: the inline marks (minus the
    class byte) OR-ed into gcmarkBits, then the inline bits reset."""
    mem = s.mem
    nbytes = -(-s.nelems // 8)
    q = s.inline_mark_bits()
    for i in range(nbytes):
        if INLINE_MARKS + i == INLINE_CLASS:
            break
        b = mem.u8(q + INLINE_MARKS + i)
        if b:
            mem.w8(s.gcmarkBits + i, mem.u8(s.gcmarkBits + i) | b)
    mem.fill(q, span_inline_mark_bits_size())
    mem.w8(q + INLINE_CLASS, s.spanclass)


def count_alloc(s):
    """mbitmap.go: (*mspan).countAlloc: set bits in gcmarkBits (only nelems of them)."""
    raw = s.mem.read(s.gcmarkBits, gc_bits_bytes(s.nelems))
    bits = int.from_bytes(raw, "little") & ((1 << s.nelems) - 1)
    return bin(bits).count("1")


def sweep(runtime, s, preserve=False):
    """mgcsweep.go: (*sweepLocked).sweep. Returns True if the span was freed to the heap."""
    heap, mem = runtime.mheap, runtime.mem
    sg = heap.sweepgen
    if s.state != MSPAN_IN_USE or s.sweepgen != (sg - 1) & 0xFFFFFFFF:
        throw(f"mspan.sweep: bad span state (state {s.state}, sweepgen {s.sweepgen}, mheap {sg})")
    spc, size = s.spanclass, s.elemsize
    if uses_span_inline_mark_bits(size):
        move_inline_marks(s)
    # allocfreetrace: an object is freed if it was allocated and is not marked.
    alloc_bits = int.from_bytes(mem.read(s.allocBits, gc_bits_bytes(s.nelems)), "little")
    mark_bits = int.from_bytes(mem.read(s.gcmarkBits, gc_bits_bytes(s.nelems)), "little")
    # Zombies: marked slots at or past freeindex that are not allocated (reportZombies).
    if s.freeindex < s.nelems:
        zombies = mark_bits & ~alloc_bits & ((1 << s.nelems) - 1) & -(1 << s.freeindex)
        if zombies:
            i = (zombies & -zombies).bit_length() - 1
            throw(f"found pointer to free object (span {s.addr:#x}, slot {i} at {s.base() + i * size:#x})")
    if runtime.tracing_allocs():
        for i in range(s.nelems):
            if not mark_bits >> i & 1 and (i < s.freeindex or alloc_bits >> i & 1):
                runtime.trace_free(s.base() + i * size, size, spc)
    nalloc = count_alloc(s)
    nfreed = s.allocCount - nalloc
    if nalloc > s.allocCount:
        throw(f"sweep increased allocation count (nalloc {nalloc}, allocCount {s.allocCount})")
    s.allocCount = nalloc
    s.freeindex = 0
    s.freeIndexForScan = 0
    # The mark bits become the allocation bits; the old allocation bits, cleared, the next
    # mark bits (Go gets fresh ones from its gcBits arenas and frees the old two cycles on).
    old = s.allocBits
    s.allocBits = s.gcmarkBits
    mem.fill(old, gc_bits_bytes(s.nelems))
    s.gcmarkBits = old
    s.refill_alloc_cache(0)
    s.sweepgen = sg
    central = heap.central[spc]
    if spc >> 1:
        if nfreed > 0:
            s.needzero = 1
            runtime.stats.small_free_count[spc >> 1] += nfreed
            runtime.gc_controller.total_free += nfreed * size
        if not preserve:
            if nalloc == 0:
                heap.free_span(s)
                return True
            (central.full_swept(sg) if nalloc == s.nelems else central.partial_swept(sg)).append(s)
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
    # gcMarkTermination: mheap_.sweepgen += 2, then each P's mcache is flushed.
    heap = runtime.mheap
    heap.sweepgen = heap.sweepgen + 2
    release_all(runtime, runtime.mcache)
    if eager:
        sweep_all(runtime)


def sweep_all(runtime):
    """mgcsweep.go: sweepone until there is nothing left: every unswept span swept
    (in one pass over their bitmaps: sweep_spans). Returns the number of spans swept."""
    heap = runtime.mheap
    sg = heap.sweepgen
    todo = []
    for central in heap.central:
        for unswept in (central.partial_unswept(sg), central.full_unswept(sg)):
            while unswept:
                s = unswept.popleft()
                if central.try_acquire(s, sg):
                    todo.append(s)
    if runtime.tracing_allocs():
        for s in todo:
            sweep(runtime, s)
    else:
        sweep_spans(runtime, todo)
    return len(todo)


def sweep_spans(runtime, spans):
    """sweep (above) for many spans at once, as bgsweep's loop of sweepone would leave them,
    with the bitmaps handled as numpy arrays over emulated memory. Each span must be
    acquired for sweeping (sweepgen == mheap.sweepgen - 1). Returns the spans freed.

    Same results as sweeping one by one (a test compares them), except that the old
    allocBits are cleared and become the new gcmarkBits (Go frees them with their gcBits
    arena two cycles later; nothing reads them after the sweep)."""
    import numpy as np
    from emu.layout import MSpan as L, PAGE_SIZE
    from runtime_model.heapview import HeapView, INLINE_BITS
    if not spans:
        return []
    heap = runtime.mheap
    sg = heap.sweepgen
    v = HeapView(heap)
    addrs = np.fromiter((s.addr for s in spans), dtype=np.uint64, count=len(spans))
    f = v.field
    state, sgen = f(addrs, L.state, 1), f(addrs, L.sweepgen, 4)
    bad = np.flatnonzero((state != MSPAN_IN_USE) | (sgen != np.uint32((sg - 1) & 0xFFFFFFFF)))
    if len(bad):
        s = spans[bad[0]]
        throw(f"mspan.sweep: bad span state (state {s.state}, sweepgen {s.sweepgen}, mheap {sg})")
    spc, size = f(addrs, L.spanclass, 1), f(addrs, L.elemsize, 8)
    nelems, alloc_count = f(addrs, L.nelems, 2).astype(np.int64), f(addrs, L.allocCount, 2).astype(np.int64)
    freeindex, base = f(addrs, L.freeindex, 2).astype(np.int64), f(addrs, L.startAddr, 8)
    alloc_bits, mark_bits = f(addrs, L.allocBits, 8), f(addrs, L.gcmarkBits, 8)
    nbytes = (nelems + 63) // 64 * 8
    inline = (size >= 16) & (size <= sc.MIN_SIZE_FOR_MALLOC_HEADER)
    nalloc = np.zeros(len(spans), dtype=np.int64)
    off = np.uint64(v.off_base)
    for nb in np.unique(nbytes):
        g = np.flatnonzero(nbytes == nb)
        cols = np.arange(nb, dtype=np.int64)
        midx = (mark_bits[g] - off).astype(np.int64)[:, None] + cols[None, :]
        marks = v.off8[midx]
        gi = g[inline[g]]
        if len(gi):                                   # moveInlineMarks (the class byte excluded)
            ncols = min(nb, INLINE_CLASS - INLINE_MARKS)
            q = (base[gi] + np.uint64(PAGE_SIZE - INLINE_BITS) - np.uint64(v.heap_base)).astype(np.int64)
            rows = np.flatnonzero(inline[g])
            marks[rows, :ncols] |= v.heap8[q[:, None] + INLINE_MARKS + np.arange(ncols)[None, :]]
            v.heap8[q[:, None] + np.arange(INLINE_BITS)[None, :]] = 0
            v.heap8[q + INLINE_CLASS] = spc[gi]
        # only nelems bits count
        valid = (np.arange(8 * nb)[None, :] < nelems[g][:, None]).astype(np.uint8)
        mbits = np.unpackbits(marks, axis=1, bitorder="little") & valid
        abits = np.unpackbits(v.off8[(alloc_bits[g] - off).astype(np.int64)[:, None] + cols[None, :]],
                              axis=1, bitorder="little")
        # reportZombies: a marked slot at or past freeindex that was never allocated
        late = np.arange(valid.shape[1])[None, :] >= freeindex[g][:, None]
        zombie = mbits & (1 - abits) & late
        if zombie.any():
            r, i = np.argwhere(zombie)[0]
            s = spans[g[r]]
            throw(f"found pointer to free object (span {s.addr:#x}, slot {i} at {s.base() + i * s.elemsize:#x})")
        nalloc[g] = mbits.sum(axis=1)
        v.off8[midx] = np.packbits(mbits, axis=1, bitorder="little")
        v.off8[(alloc_bits[g] - off).astype(np.int64)[:, None] + cols[None, :]] = 0   # the next mark bits
    over = np.flatnonzero(nalloc > alloc_count)
    if len(over):
        i = over[0]
        throw(f"sweep increased allocation count (nalloc {nalloc[i]}, allocCount {alloc_count[i]})")
    if runtime.tracing_allocs():
        raise NotImplementedError("sweep_spans with allocation tracing: use sweep")
    nfreed = alloc_count - nalloc
    # write the span fields back
    a = (addrs - off).astype(np.int64)
    v.off16[(a + L.allocCount) >> 1] = nalloc.astype(np.uint16)
    v.off16[(a + L.freeindex) >> 1] = 0
    v.off16[(a + L.freeIndexForScan) >> 1] = 0
    v.off64[(a + L.allocBits) >> 3] = mark_bits
    v.off64[(a + L.gcmarkBits) >> 3] = alloc_bits
    v.off64[(a + L.allocCache) >> 3] = ~v.off64[((mark_bits - off) >> np.uint64(3)).astype(np.int64)]
    v.off32[(a + L.sweepgen) >> 2] = np.uint32(sg & 0xFFFFFFFF)
    small = (spc >> 1) != 0
    freed_small = small & (nfreed > 0)
    v.off8[a[freed_small] + L.needzero] = 1
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
