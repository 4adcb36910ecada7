"""runtime/mheap.go: the page heap behind every span.

mheap owns the address space: it reserves 64 MiB heap arenas at the arena
hints (sysAlloc), maps 4 MiB palloc chunks of them as the heap grows (grow),
hands runs of pages to spans through the page allocator (allocSpan, with the
per-P page cache for small requests), and initialises each span's `mspan` in
emulated memory (initSpan) so the machine code can allocate from it. Every
span is recorded in its arena's `spans` array, so `span_of` finds the span of
any heap address the way Go's spanOf does.

Slow paths that may grow the heap are generators (see mem_linux.py): callers
`yield from` them so the system calls run as real SYSCALL instructions. alloc and
alloc_span_now make one only when the OS is needed (see below).

Simplified: one arena hint (0xc000000000 upward; Go 1.27 randomizes the base);
no user arenas (allocSpan's scavenging for the memory
limit and heap growth is mgcscavenge.py's, when `scavenger` is set); gcBits come
from a bump allocator and are not recycled per GC epoch.
"""

from emu.errors import InvariantError
from emu.layout import ARENA_BASE_OFFSET, HEAP_ARENA_BYTES, OFFHEAP, HeapArena, NUM_SPAN_CLASSES, PAGE_SIZE
from emu.layout import MSpan as MSpanLayout
from runtime_model import sizeclasses as sc
from runtime_model.mcentral import MCentral
from runtime_model.mem_linux import sys_map, sys_reserve, sys_unused, throw
from runtime_model.mspan import (MSPAN_DEAD, MSPAN_IN_USE, MSPAN_MANUAL, STATE_B, SWEEPGEN_I, MSpan, SpanFields,
                                 gc_bits_bytes, nelems_for, span_fields)
from runtime_model.pagealloc import PALLOC_CHUNK_PAGES, PageAlloc

ARENA_L2_BITS = 48 - 26                  # malloc.go: heapAddrBits - logHeapArenaBytes
PAGES_PER_ARENA = HEAP_ARENA_BYTES // PAGE_SIZE
# The hot paths (allocSpan, initSpan) shift and mask where Go divides by these powers of two
# (Python's division of 64-bit values costs more), and name heapArena's offsets once.
_PAGE_SHIFT, _ARENA_SHIFT = sc.PAGE_SHIFT, HEAP_ARENA_BYTES.bit_length() - 1
_ARENA_MASK = HEAP_ARENA_BYTES - 1
_ZEROED_BASE, _SPANS, _PAGE_IN_USE = HeapArena.zeroedBase, HeapArena.spans, HeapArena.pageInUse
PHYS_PAGE_SIZE = 4096
PAGE_CACHE_PAGES = 64                    # mpagecache.go: pageCachePages
PAGES_PER_RECLAIMER_CHUNK = min(512, PAGES_PER_ARENA)   # mheap.go: pagesPerReclaimerChunk
_PAGE_CACHE_PAGES_4 = PAGE_CACHE_PAGES // 4     # allocSpan: pageCachePages/4
_MASK64 = 0xFFFFFFFFFFFFFFFF
# (npages, elemsize, nelems, divMul, bytes of each gcBits bitmap) of a span of each small
# span class (initSpan).
SPAN_SHAPE = [(sc.CLASS_TO_NPAGES[spc >> 1], sc.CLASS_TO_SIZE[spc >> 1], n, sc.CLASS_TO_DIVMAGIC[spc >> 1],
               gc_bits_bytes(n)) if spc >> 1 else None
              for spc in range(NUM_SPAN_CLASSES)
              for n in [nelems_for(spc >> 1, spc & 1, sc.CLASS_TO_NPAGES[spc >> 1]) if spc >> 1 else 0]]
_LARGE_BITS_BYTES = gc_bits_bytes(1)      # a large span's gcBits: one object
# Sweep states as sweepgen - mheap.sweepgen (mod 2^32): cached spans are +3 (swept) or
# +1 (cached before the generation advanced); others -2, -1 or 0.
# initSpan's writes of a whole mspan (mspan.init and the fields initSpan sets).
# A manual span keeps the heap's sweepgen (Go's mspan.init leaves the field as it was: a struct
# freed in this generation, whose span may still sit in an unswept set, holds sweepgen).
_INIT_MANUAL = SpanFields("startAddr", "npages", "sweepgen", "state", "needzero", "limit")
_INIT_HEAP = SpanFields("startAddr", "npages", "nelems", "allocCache", "allocBits", "gcmarkBits", "sweepgen",
                        "divMul", "spanclass", "state", "needzero", "elemsize", "limit")
_RELEASED = SpanFields("startAddr", "npages", "sweepgen", "allocCount", "state")    # freeSpanLocked reads
SWEEP_STATES = {True: {3, 1}, False: {0xFFFFFFFE, 0xFFFFFFFF, 0}, None: {3, 1, 0xFFFFFFFE, 0xFFFFFFFF, 0}}


def arena_index(p):
    """mheap.go: arenaIndex."""
    return ((p - ARENA_BASE_OFFSET) & 0xFFFFFFFFFFFFFFFF) // HEAP_ARENA_BYTES


def align_up(n, a):
    return (n + a - 1) // a * a


class MHeap:
    """mheap.go: type mheap (the fields the model needs).

    `env` gives the emulated memory (`env.mem`) and off-heap allocation
    (`env.persistentalloc(size, align)`), the two things Go's mheap gets from
    its own process. `mheap_addr` is `runtime.mheap_` in emulated memory, where
    the fields machine code may read (arenas, sweepgen, pagesInUse) are kept.
    """

    def __init__(self, env, mheap_addr, layout, hint=0xC000000000):
        self.env, self.mem = env, env.mem
        self.addr, self.L = mheap_addr, layout
        self.pages = PageAlloc()
        self.arena_hints = [hint]          # grow upward from each hint
        self.cur_arena = [0, 0]            # curArena.base, curArena.end
        self.heap_arenas = []              # arena indices, in allocation order
        self._arenas = {}                  # arena index -> its heapArena, as read from arenas[0]
        self.central = [MCentral(self, spc) for spc in range(NUM_SPAN_CLASSES)]
        self.pcache = None                 # p0's pageCache (mpagecache.go), created on first use
        # mheap_.arenas[0]: a [1<<22]*heapArena array, mapped lazily like Go's sysAllocOS.
        self.arenas_l2 = env.persistentalloc((1 << ARENA_L2_BITS) * 8, 4096)
        # the host backing of the off-heap region, where persistentalloc puts every heapArena:
        # their fields are one index into its typed views
        self._meta = self.mem._backing(self.arenas_l2, 8)
        self.mem.w64(self.addr + layout.arenas, self.arenas_l2)
        self.sweepgen = 0
        # mheap_.pagesInUse through its backing's typed view (every initSpan writes it)
        a = self.addr + layout.pagesInUse
        if a % 8:
            raise InvariantError(f"mheap_.pagesInUse at {a:#x} is not 8-aligned")
        b = self.mem._backing(a, 8)
        self._pages_in_use_q, self._pages_in_use_i = b.q, (a - b.base) >> 3
        self.pages_in_use = 0
        # memstats-style accounting (mstats.go names)
        self.heap_sys = 0         # bytes mapped for the heap (Ready or Prepared)
        self.heap_released = 0    # bytes returned to the OS (scavenged)
        self.heap_in_use = 0      # bytes in in-use spans
        self.heap_free = 0        # bytes free and not released
        self.stacks_in_use = 0    # bytes in manually managed (stack) spans: memstats inStacks
        self.nspans = 0           # mspan structs handed out and not freed
        self.scavenger = None     # mgcscavenge.Scavenger: allocSpan's scavenging, when set
        self._free_mspans = []    # fixalloc's free list of mspan structs (LIFO)
        self.live_mspans = set()  # addresses of those handed out (checked mode asks)
        self._views = {}          # mspan address -> its MSpan view (mspan())

    def mspan(self, addr):
        """The MSpan view of the mspan struct at addr, made once per struct (a view holds
        only where the struct is, and fixalloc reuses the structs)."""
        s = self._views.get(addr)
        if s is None:
            mb = self._meta              # where persistentalloc put it (emptymspan is elsewhere)
            s = self._views[addr] = MSpan(self.mem, addr, mb if mb.base <= addr <= mb.end - MSpanLayout.SIZE else None)
        return s

    # ---- fields mirrored in emulated memory -------------------------------------------
    # Only Python writes them (machine code reads them), so each is kept in Python and
    # written through to mheap_; check_mirrors (checked mode) compares the two.
    @property
    def sweepgen(self):
        return self._sweepgen

    @sweepgen.setter
    def sweepgen(self, v):
        self._sweepgen = v = v & 0xFFFFFFFF
        self.mem.w32(self.addr + self.L.sweepgen, v)

    @property
    def pages_in_use(self):
        return self._pages_in_use

    @pages_in_use.setter
    def pages_in_use(self, v):
        self._pages_in_use = v = v & 0xFFFFFFFFFFFFFFFF
        self._pages_in_use_q[self._pages_in_use_i] = v

    def check_mirrors(self):
        """The fields kept in Python match mheap_ in emulated memory."""
        for name, got in (("sweepgen", self.mem.u32(self.addr + self.L.sweepgen)),
                          ("pagesInUse", self.mem.u64(self.addr + self.L.pagesInUse))):
            want = self.sweepgen if name == "sweepgen" else self.pages_in_use
            if got != want:
                raise InvariantError(f"mheap_.{name} = {got} in memory, but the heap model holds {want}")

    @property
    def heap_idle(self):
        """HeapIdle: mapped but not in spans (free + released)."""
        return self.heap_free + self.heap_released

    # ---- arenas -------------------------------------------------------------------------
    def heap_arena(self, p):
        """h.arenas[0][arenaIndex(p)], or 0 when p is not in a heap arena."""
        ai = ((p - ARENA_BASE_OFFSET) & 0xFFFFFFFFFFFFFFFF) >> _ARENA_SHIFT     # arenaIndex
        ha = self._arenas.get(ai)
        if ha is None:
            if ai >= 1 << ARENA_L2_BITS:
                return 0
            ha = self.mem.u64(self.arenas_l2 + ai * 8)
            if ha:
                self._arenas[ai] = ha           # arenas are never freed: the entry never changes
        return ha

    def span_of_heap(self, p):
        """mheap.go: spanOfHeap: the in-use heap span containing p, or None."""
        s = self.span_of(p)
        return s if s is not None and s.state == MSPAN_IN_USE else None

    def spans_entry(self, p):
        """The mspan address spans[] records for p's page (0 for none)."""
        ha = self.heap_arena(p)
        return self.mem.u64(ha + HeapArena.spans + (p // PAGE_SIZE % PAGES_PER_ARENA) * 8) if ha else 0

    def span_of(self, p):
        """mheap.go: spanOf: the span whose pages contain p (in any state), or None."""
        s = self.spans_entry(p)
        if not s:
            return None
        span = MSpan(self.mem, s)
        if not span.base() <= p < span.base() + span.npages * PAGE_SIZE:
            return None
        return span

    def sys_alloc(self, n):
        """mheap.go: (*mheap).sysAlloc: reserve whole arenas at a hint, create their metadata.

        Go discards each hint that fails and then takes any address the kernel offers
        (sysReserveAligned(nil, ...)), making new hints there, so a request too big for
        the address space leaves room for the next, smaller one. The emulated kernel has
        no address space outside the reservation, so that fallback would fail too:
        instead a request that fits nowhere leaves the hints as they were."""
        n = align_up(n, HEAP_ARENA_BYTES)
        hints = list(self.arena_hints)
        v = 0
        while hints:
            p = hints[0]
            if arena_index(p + n - 1) >= 1 << ARENA_L2_BITS:
                got = 0
            else:
                got = yield from sys_reserve(p, n)
            if got == p:
                hints[0] = p + n
                v = p
                break
            hints.pop(0)                 # this hint failed; try the next
        if not v:
            return 0, 0
        self.arena_hints = hints
        for ai in range(arena_index(v), arena_index(v + n - 1) + 1):
            ha = self.env.persistentalloc(HeapArena.SIZE, 8)
            self.mem.w64(self.arenas_l2 + ai * 8, ha)
            self.heap_arenas.append(ai)
        return v, n

    def grow(self, npage):
        """mheap.go: (*mheap).grow: map at least npage pages in whole palloc chunks."""
        ask = align_up(npage, PALLOC_CHUNK_PAGES) * PAGE_SIZE
        total = 0
        base, end_ = self.cur_arena
        end = base + ask
        nbase = align_up(end, PHYS_PAGE_SIZE)
        if nbase > end_:
            av, asize = yield from self.sys_alloc(ask)
            if not av:
                return 0, False
            if av == end_:
                self.cur_arena[1] = av + asize        # contiguous: extend
            else:
                if end_ - base:                        # map what is left of the old space
                    yield from sys_map(base, end_ - base)
                    self._grown(base, end_ - base)
                    total += end_ - base
                self.cur_arena = [av, av + asize]
            nbase = align_up(self.cur_arena[0] + ask, PHYS_PAGE_SIZE)
        v = self.cur_arena[0]
        self.cur_arena[0] = nbase
        yield from sys_map(v, nbase - v)
        self._grown(v, nbase - v)
        return total + nbase - v, True

    def scavenge(self, nbytes, force=True):
        """mgcscavenge.go: (*pageAlloc).scavenge through the heap: release up to nbytes of
        free pages to the OS with sysUnused (MADV_DONTNEED), highest addresses first;
        force=False skips chunks densely used this GC generation (the background
        scavenger's and heap growth's way). Returns the bytes released."""
        released_ranges = []
        self.pages.on_release = lambda addr, n: released_ranges.append((addr, n))
        try:
            released = self.pages.scavenge(nbytes, force=force)
        finally:
            self.pages.on_release = None
        for addr, n in released_ranges:
            yield from sys_unused(addr, n)
        self.heap_released += released
        self.heap_free -= released
        return released

    def _grown(self, v, size):
        # Fresh mappings count as released until used (grow's stats.released).
        self.heap_sys += size
        self.heap_released += size
        self.pages.grow(v, size)

    # ---- spans --------------------------------------------------------------------------
    # A span needs the OS only when the heap grows or allocSpan scavenges: alloc and
    # alloc_span_now return the span itself otherwise, and a generator that finishes it
    # through those OS calls (for the caller to `yield from`) only then.
    def alloc(self, npages, spanclass):
        """mheap.go: (*mheap).alloc: a span for heap objects; while the sweep is unfinished,
        at least npages pages are swept and freed first (reclaim), against heap growth.
        The span, or a generator that gives it (see above)."""
        if not self.env.runtime.sweeper.is_done():
            self.reclaim(npages)
        return self.alloc_span_now(npages, spanclass)

    def reclaim(self, npage):
        """mheap.go: (*mheap).reclaim: free npage pages by sweeping, the credit other sweepers
        left first, then claiming chunks of the arenas (sweepArenas, in order) and sweeping
        their in-use spans that have nothing marked (reclaimChunk). The allocating goroutine
        sweeps, on its own time."""
        sw = self.env.runtime.sweeper
        swept = 0
        while npage > 0 and sw.reclaim_index < 1 << 63:
            if sw.reclaim_credit > 0:
                take = min(sw.reclaim_credit, npage)
                sw.reclaim_credit -= take
                npage -= take
                continue
            idx = sw.reclaim_index
            sw.reclaim_index += PAGES_PER_RECLAIMER_CHUNK
            if idx // PAGES_PER_ARENA >= len(sw.arenas):
                sw.reclaim_index = 1 << 63          # page reclaiming is done
                break
            nfound, n = self.reclaim_chunk(sw.arenas, idx, PAGES_PER_RECLAIMER_CHUNK)
            swept += n
            if nfound <= npage:
                npage -= nfound
            else:
                sw.reclaim_credit += nfound - npage
                npage = 0
        sw.charge(swept)

    def reclaim_chunk(self, arenas, page_idx, n):
        """mheap.go: (*mheap).reclaimChunk: sweep the in-use spans starting in pages
        [page_idx, page_idx+n) of sweepArenas whose pageMarks bit is clear (nothing marked
        on them). Returns (pages freed, spans swept)."""
        from runtime_model.mgcsweep import sweep_batch
        mb = self._meta
        o = self.mem.u64(self.arenas_l2 + arenas[page_idx // PAGES_PER_ARENA] * 8) - mb.base
        first = page_idx % PAGES_PER_ARENA
        lo, hi = first // 8, (first + n) // 8
        in_use = int.from_bytes(mb.buf[o + HeapArena.pageInUse + lo:o + HeapArena.pageInUse + hi], "little")
        marked = int.from_bytes(mb.buf[o + HeapArena.pageMarks + lo:o + HeapArena.pageMarks + hi], "little")
        cand = in_use & ~marked
        sg = self._sweepgen
        todo = []
        while cand:
            j = (cand & -cand).bit_length() - 1
            cand &= cand - 1
            a = mb.q[(o + HeapArena.spans >> 3) + first + j]
            s = self._views.get(a) or self.mspan(a)
            v, i = s._b.i, (s._o >> 2) + SWEEPGEN_I     # sweepLocker.tryAcquire, the field's view
            if v[i] == (sg - 2) & 0xFFFFFFFF:
                v[i] = (sg - 1) & 0xFFFFFFFF
                todo.append(s)
        return (sweep_batch(self.env.runtime, todo) if todo else 0), len(todo)

    def clear_page_marks(self):
        """mgc.go: gcResetMarkState: every arena's pageMarks cleared before marking."""
        mb = self._meta
        for ai in self.heap_arenas:
            o = self.mem.u64(self.arenas_l2 + ai * 8) - mb.base + HeapArena.pageMarks
            mb.buf[o:o + PAGES_PER_ARENA // 8] = bytes(PAGES_PER_ARENA // 8)

    def alloc_manual(self, npages):
        """mheap.go: (*mheap).allocManual(npages, spanAllocStack): pages the caller
        manages itself (goroutine stacks). A generator."""
        return self.alloc_span(npages, 0, manual=True)

    def alloc_span(self, npages, spanclass, manual=False):
        """alloc_span_now as a generator, for callers that always `yield from` it."""
        s = self.alloc_span_now(npages, spanclass, manual)
        if s.__class__ is not MSpan:
            s = yield from s
        return s

    def alloc_span_now(self, npages, spanclass, manual=False):
        """mheap.go: (*mheap).allocSpan (spanAllocHeap, or spanAllocStack when manual): the
        span, or a generator that gives it when the heap must grow or allocSpan scavenges."""
        base = scav = 0
        if npages < _PAGE_CACHE_PAGES_4:        # small: through p0's page cache
            pc = self.pcache
            if pc is None or not pc.cache:      # pageCache.empty
                pc = self.pcache = self.pages.alloc_to_cache()
            base, scav = pc.alloc(npages)
        if base == 0:
            base, scav = self.pages.alloc(npages)
            if base == 0:
                return self._alloc_span_os(npages, spanclass, manual, 0, 0, 0, False)
        if self.scavenger is not None:          # allocSpan's scavenging (mgcscavenge.py)
            todo, force = self.scavenger.alloc_scavenge_todo(scav, 0)
            if todo:
                return self._alloc_span_os(npages, spanclass, manual, base, scav, todo, force)
        return self._new_span(npages, spanclass, manual, base, scav)

    def _alloc_span_os(self, npages, spanclass, manual, base, scav, todo, force):
        """allocSpan's OS calls: the heap grows when no pages were found (base 0), then
        scavenges todo bytes (force: alloc_scavenge_todo's)."""
        if base == 0:
            growth, ok = yield from self.grow(npages)
            if not ok:
                return None
            base, scav = self.pages.alloc(npages)
            if base == 0:
                throw("grew heap, but no adequate free space found")
            if self.scavenger is not None:
                todo, force = self.scavenger.alloc_scavenge_todo(scav, growth)
        if todo:
            yield from self.scavenger.alloc_scavenge(todo, force)
        return self._new_span(npages, spanclass, manual, base, scav)

    def _new_span(self, npages, spanclass, manual, base, scav):
        """allocSpan's end: an mspan struct for the pages at base, initSpan, the accounting."""
        free = self._free_mspans                # fixalloc: a freed mspan struct first
        if free:
            s = self._views[free.pop()]         # (made when it was first handed out)
        else:                                   # a new struct in the off-heap region
            addr = self.env.persistentalloc(MSpanLayout.SIZE, 8)
            s = self._views[addr] = MSpan(self.mem, addr, self._meta)
        self.nspans += 1
        self.live_mspans.add(s.addr)
        self.init_span(s, spanclass, base, npages, scav, manual)
        nbytes = npages << _PAGE_SHIFT
        self.heap_released -= scav
        self.heap_free -= nbytes - scav
        if manual:
            self.stacks_in_use += nbytes
        else:
            self.heap_in_use += nbytes
        return s

    def free_span(self, s):
        """mheap.go: (*mheap).freeSpan: an empty heap span goes back to the page allocator."""
        self.pages.free(*self._release_span(s, manual=False))
        self._retire_mspan(s)

    def free_spans(self, spans):
        """A sweep's worth of freeSpan calls: the page allocator frees the whole batch at
        once (pageAlloc.free_many leaves the state freeing one by one leaves), so a
        sweep that empties thousands of spans updates each summary once."""
        self.pages.free_many([self._release_span(s, manual=False) for s in spans])
        for s in spans:
            self._retire_mspan(s)

    def free_manual(self, s):
        """mheap.go: (*mheap).freeManual."""
        s.needzero = 1
        self.pages.free(*self._release_span(s, manual=True))
        self._retire_mspan(s)

    def _release_span(self, s, manual):
        """mheap.go: freeSpanLocked, up to its pageAlloc.free: the checks and accounting.
        Returns the span's (base, npages), for pageAlloc.free."""
        base, npages, sweepgen, count, state = _RELEASED.unpack(*s.loc)
        if state == MSPAN_MANUAL and manual:
            if count:
                throw("mheap.freeSpanLocked - invalid stack free")
        elif state == MSPAN_IN_USE and not manual:
            if count or sweepgen != self._sweepgen:
                throw(f"mheap.freeSpanLocked - invalid free (allocCount {count}, "
                      f"sweepgen {sweepgen}/{self._sweepgen})")
            # pages_in_use's store without its setter's call
            self._pages_in_use_q[self._pages_in_use_i] = self._pages_in_use = (self._pages_in_use - npages) & _MASK64
            page = (base >> _PAGE_SHIFT) & (PAGES_PER_ARENA - 1)
            mb = self._meta
            a = self.heap_arena(base) - mb.base + _PAGE_IN_USE + (page >> 3)
            mb.b[a] &= ~(1 << (page & 7)) & 0xFF
        else:
            throw("mheap.freeSpanLocked - invalid span state")
        nbytes = npages << _PAGE_SHIFT
        self.heap_free += nbytes
        if manual:
            self.stacks_in_use -= nbytes
        else:
            self.heap_in_use -= nbytes
        return base, npages

    def _retire_mspan(self, s):
        """mheap.go: freeMSpanLocked: the mspan struct goes back to the span allocator."""
        s._b.b[s._o + STATE_B] = MSPAN_DEAD
        self.nspans -= 1
        self.live_mspans.discard(s.addr)
        self._free_mspans.append(s.addr)

    def alloc_needs_zero(self, base, npage, ha=None):
        """mheap.go: allocNeedsZero, from each arena's zeroedBase watermark (ha: the
        heapArena of base's arena, when the caller has it)."""
        need = False
        mb = self._meta
        q = mb.q
        while npage > 0:
            if ha is None:
                ha = self.heap_arena(base)
            z = (ha - mb.base + _ZEROED_BASE) >> 3    # heapArena is 8-aligned
            ha = None
            zeroed = q[z]
            abase = base & _ARENA_MASK
            if abase < zeroed:
                need = True
            alimit = abase + (npage << _PAGE_SHIFT)
            if alimit > HEAP_ARENA_BYTES:
                alimit = HEAP_ARENA_BYTES
            if alimit > zeroed:
                q[z] = alimit
            base += alimit - abase
            npage -= (alimit - abase) >> _PAGE_SHIFT
        return need

    def init_span(self, s, spanclass, base, npages, scav, manual=False):
        """mheap.go: (*mheap).initSpan and (*mspan).init (the struct written in one go)."""
        nbytes = npages << _PAGE_SHIFT
        # heap_arena(base), its memo looked up here (a call less)
        ha = self._arenas.get(((base - ARENA_BASE_OFFSET) & _MASK64) >> _ARENA_SHIFT) or self.heap_arena(base)
        mb = self._meta
        q, o = mb.q, ha - mb.base                # the heapArena's offset in the off-heap view
        page = (base >> _PAGE_SHIFT) & (PAGES_PER_ARENA - 1)
        one_arena = page + npages <= PAGES_PER_ARENA
        if one_arena:       # every small span: allocNeedsZero's one arena here (spans[] below)
            z = (o + _ZEROED_BASE) >> 3
            zeroed, abase = q[z], base & _ARENA_MASK
            if abase + nbytes > zeroed:
                q[z] = abase + nbytes
            need = abase < zeroed
        else:
            need = self.alloc_needs_zero(base, npages, ha)
        # needZeroAfterSysUnused() is false with MADV_DONTNEED: fully released pages are zero.
        needzero = int(need and scav != nbytes)
        if manual:
            _INIT_MANUAL.write(*s.loc, base, npages, self._sweepgen, MSPAN_MANUAL, needzero, base + nbytes)
            self.set_spans(base, npages, s, ha)
            return
        shape = SPAN_SHAPE[spanclass]
        if shape is not None and shape[0] == npages:
            _, elemsize, nelems, divmul, nb = shape
        elif shape is None:
            elemsize, nelems, divmul, nb = nbytes, 1, 0, _LARGE_BITS_BYTES
        else:
            elemsize = sc.CLASS_TO_SIZE[spanclass >> 1]
            nelems = nelems_for(spanclass >> 1, spanclass & 1, npages)
            divmul = sc.CLASS_TO_DIVMAGIC[spanclass >> 1]
            nb = gc_bits_bytes(nelems)
        # newMarkBits, then newAllocBits: two 8-aligned bitmaps of whole words, one after
        # the other, so from one bump of the off-heap allocator
        bits = self.env.persistentalloc(2 * nb, 8)
        _INIT_HEAP.write(*s.loc, base, npages, nelems, 0xFFFFFFFFFFFFFFFF, bits + nb, bits,
                         self._sweepgen, divmul, spanclass, MSPAN_IN_USE, needzero, elemsize,
                         base + elemsize * nelems)
        if one_arena:       # setSpans: the span's run of entries in its one arena
            a = o + _SPANS + (page << 3)
            if npages == 1:
                q[a >> 3] = s.addr
            else:
                mb.buf[a:a + 8 * npages] = s.addr.to_bytes(8, "little") * npages
        else:
            self.set_spans(base, npages, s, ha)
        mb.b[o + _PAGE_IN_USE + (page >> 3)] |= 1 << (page & 7)
        # pages_in_use's store without its setter's call (a sum of pages: below 2^64)
        self._pages_in_use_q[self._pages_in_use_i] = self._pages_in_use = self._pages_in_use + npages

    def set_page_marked(self, base):
        """heapArena.pageMarks: the span starting at base has a marked object."""
        ha = self.heap_arena(base)
        page = base // PAGE_SIZE % PAGES_PER_ARENA
        a = ha + HeapArena.pageMarks + page // 8
        self.mem.w8(a, self.mem.u8(a) | 1 << (page % 8))

    def set_spans(self, base, npage, s, ha=None):
        """mheap.go: setSpans: point every page's spans[] entry at s (or 0), each arena's
        run of entries in one write (ha: the heapArena of base's arena, when the caller
        has it)."""
        v = s.addr if s else 0
        p = base
        b = self._meta
        while npage > 0:
            first = (p >> _PAGE_SHIFT) & (PAGES_PER_ARENA - 1)
            n = PAGES_PER_ARENA - first
            if n > npage:
                n = npage
            if ha is None:
                ha = self.heap_arena(p)
            a = ha + _SPANS + first * 8 - b.base     # heapArena is 8-aligned
            ha = None
            if n == 1:
                b.q[a >> 3] = v
            else:
                b.buf[a:a + 8 * n] = v.to_bytes(8, "little") * n
            p += n << _PAGE_SHIFT
            npage -= n

    def span_problems(self, addr, spanclass=None, cached=None, fields=None):
        """What is wrong with the heap span whose mspan is at addr: every field against the
        span's own size class (Go's tables), the heap's records (the mspans handed out,
        spans[], the sweep generation) and the span's bitmaps. A list of complaints, each
        naming a field and its value; empty for a sound span. spanclass: the class its
        mcache slot says; cached: True for a span an mcache holds, False for one it does
        not, None for either; fields: span_fields(addr) if the caller has read them.
        (malloc.go: doubleCheckMalloc's checks, and more.)"""
        if addr not in self.live_mspans:
            return [f"{addr:#x} is not an mspan of the heap"]
        f = fields or span_fields(self.mem, addr)
        out = []
        if f["state"] != MSPAN_IN_USE:
            name = {MSPAN_DEAD: "mSpanDead", MSPAN_MANUAL: "mSpanManual"}.get(f["state"], "no state")
            return [f"state = {f['state']} ({name}), not {MSPAN_IN_USE} (mSpanInUse)"]
        spc, cls = f["spanclass"], f["spanclass"] >> 1
        if spanclass is not None and spc != spanclass:
            out.append(f"spanclass = {spc}, but it is cached as span class {spanclass}")
        if spc >= NUM_SPAN_CLASSES:
            return out + [f"spanclass = {spc} is not a span class (0..{NUM_SPAN_CLASSES - 1})"]
        base, npages = f["startAddr"], f["npages"]
        if base % PAGE_SIZE or self.spans_entry(base) != addr:
            return out + [f"startAddr = {base:#x} is not the first page of this span in the heap arenas"]
        if cls:
            for field, w in zip(("npages", "elemsize", "nelems", "divMul"), SPAN_SHAPE[spc]):
                if f[field] != w:
                    out.append(f"{field} = {f[field]}, but size class {cls} has {w}")
            if out:
                return out
        elif not 1 <= npages <= len(self.heap_arenas) * PAGES_PER_ARENA:
            return out + [f"npages = {npages} does not fit in the heap"]
        end = base + npages * PAGE_SIZE
        if npages > 1 and self.spans_entry(end - PAGE_SIZE) != addr:
            out.append(f"npages = {npages}, but spans[] does not map page {end - PAGE_SIZE:#x} to this span")
        elemsize, nelems = f["elemsize"], f["nelems"]
        if not cls and (elemsize != npages * PAGE_SIZE or nelems != 1 or f["divMul"]):
            out.append(f"elemsize = {elemsize}, nelems = {nelems}, divMul = {f['divMul']}: a large span "
                       f"has one {npages * PAGE_SIZE}-byte object and divMul 0")
        limit = f["limit"]
        if cls and limit != base + elemsize * nelems:
            out.append(f"limit = {limit:#x}, but startAddr + elemsize*nelems = {base + elemsize * nelems:#x}")
        elif not cls and not base < limit <= end:
            out.append(f"limit = {limit:#x} is outside the span [{base:#x}, {end:#x}]")
        fi, ffs, count = f["freeindex"], f["freeIndexForScan"], f["allocCount"]
        if fi > nelems:
            out.append(f"freeindex = {fi} > nelems {nelems}")
        if ffs > fi:
            out.append(f"freeIndexForScan = {ffs} > freeindex {fi}")
        if f["allocCountBeforeCache"] > count:
            out.append(f"allocCountBeforeCache = {f['allocCountBeforeCache']} > allocCount {count}")
        nb = gc_bits_bytes(nelems)
        for field in ("allocBits", "gcmarkBits"):
            a = f[field]
            if a % 8 or not OFFHEAP.base <= a <= OFFHEAP.end - nb:
                out.append(f"{field} = {a:#x} is not a bitmap in the off-heap region")
        if out:
            return out
        # Allocated: the slots below freeindex, and those set in allocBits (mbitmap.go).
        raw = int.from_bytes(self.mem.read(f["allocBits"], nb), "little")
        allocated = ((raw & ((1 << nelems) - 1)) | ((1 << fi) - 1)).bit_count()
        if count != allocated:
            out.append(f"allocCount = {count}, but freeindex {fi} and allocBits say {allocated} slots are allocated")
        # allocCache: the inverted allocBits from freeindex on, within freeindex's 64-slot word
        # (0 once that word is used up and before nextFreeIndex reloads it).
        if fi < nelems:
            word = ~(raw >> (fi & ~63)) & 0xFFFFFFFFFFFFFFFF
            cache = word >> (fi % 64)
            if f["allocCache"] != cache and not (fi % 64 == 0 and f["allocCache"] == 0):
                out.append(f"allocCache = {f['allocCache']:#x}, but allocBits from freeindex {fi} give {cache:#x}")
        sg, sweepgen = self.sweepgen, f["sweepgen"]
        if (sweepgen - sg) & 0xFFFFFFFF not in SWEEP_STATES[cached]:
            where = {True: "a cached span's", False: "an uncached span's", None: "a span's"}[cached]
            out.append(f"sweepgen = {sweepgen}, not {where} (mheap sweepgen {sg})")
        if f["needzero"] > 1:
            out.append(f"needzero = {f['needzero']}, not 0 or 1")
        return out

    def check_span(self, addr, where="", **kw):
        """span_problems as an InvariantError naming the span and where it was found."""
        problems = self.span_problems(addr, **kw)
        if problems:
            raise InvariantError(f"mspan {addr:#x}{f' ({where})' if where else ''}: " + "; ".join(problems))
