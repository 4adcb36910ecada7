"""runtime/mheap.go: the page heap behind every span.

mheap owns the address space: it reserves 64 MiB heap arenas at the arena
hints (sysAlloc), maps 4 MiB palloc chunks of them as the heap grows (grow),
hands runs of pages to spans through the page allocator (allocSpan, with the
per-P page cache for small requests), and initialises each span's `mspan` in
emulated memory (initSpan) so the machine code can allocate from it. Every
span is recorded in its arena's `spans` array, so `span_of` finds the span of
any heap address the way Go's spanOf does.

Slow paths that may grow the heap are generators (see mem_linux.py): callers
`yield from` them so the system calls run as real SYSCALL instructions.

Simplified: one arena hint (0xc000000000 upward; Go 1.27 randomizes the base);
no reclaim/sweep credit and no user arenas (allocSpan's scavenging for the memory
limit and heap growth is mgcscavenge.py's, when `scavenger` is set); gcBits come
from a bump allocator and are not recycled per GC epoch.
"""

from emu.errors import InvariantError
from emu.layout import HEAP_ARENA_BYTES, HeapArena, NUM_SPAN_CLASSES, PAGE_SIZE
from emu.layout import MSpan as MSpanLayout
from runtime_model import sizeclasses as sc
from runtime_model.mcentral import MCentral
from runtime_model.mem_linux import sys_map, sys_reserve, sys_unused, throw
from runtime_model.mspan import MSPAN_DEAD, MSPAN_IN_USE, MSPAN_MANUAL, MSpan, gc_bits_bytes, nelems_for
from runtime_model.pagealloc import PALLOC_CHUNK_PAGES, PageAlloc

ARENA_BASE_OFFSET = 0xFFFF800000000000   # malloc.go: arenaBaseOffset on amd64
ARENA_L2_BITS = 48 - 26                  # malloc.go: heapAddrBits - logHeapArenaBytes
PAGES_PER_ARENA = HEAP_ARENA_BYTES // PAGE_SIZE
PHYS_PAGE_SIZE = 4096
PAGE_CACHE_PAGES = 64                    # mpagecache.go: pageCachePages


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
        self.central = [MCentral(self, spc) for spc in range(NUM_SPAN_CLASSES)]
        self.pcache = None                 # p0's pageCache (mpagecache.go), created on first use
        # mheap_.arenas[0]: a [1<<22]*heapArena array, mapped lazily like Go's sysAllocOS.
        self.arenas_l2 = env.persistentalloc((1 << ARENA_L2_BITS) * 8, 4096)
        self.mem.w64(self.addr + layout.arenas, self.arenas_l2)
        self.sweepgen = 0
        # memstats-style accounting (mstats.go names)
        self.heap_sys = 0         # bytes mapped for the heap (Ready or Prepared)
        self.heap_released = 0    # bytes returned to the OS (scavenged)
        self.heap_in_use = 0      # bytes in in-use spans
        self.heap_free = 0        # bytes free and not released
        self.stacks_in_use = 0    # bytes in manually managed (stack) spans: memstats inStacks
        self.nspans = 0           # mspan structs handed out and not freed
        self.scavenger = None     # mgcscavenge.Scavenger: allocSpan's scavenging, when set
        self._free_mspans = []    # fixalloc's free list of mspan structs (LIFO)

    # ---- fields mirrored in emulated memory -------------------------------------------
    @property
    def sweepgen(self):
        return self.mem.u32(self.addr + self.L.sweepgen)

    @sweepgen.setter
    def sweepgen(self, v):
        self.mem.w32(self.addr + self.L.sweepgen, v)

    @property
    def pages_in_use(self):
        return self.mem.u64(self.addr + self.L.pagesInUse)

    @pages_in_use.setter
    def pages_in_use(self, v):
        self.mem.w64(self.addr + self.L.pagesInUse, v)

    @property
    def heap_idle(self):
        """HeapIdle: mapped but not in spans (free + released)."""
        return self.heap_free + self.heap_released

    # ---- arenas -------------------------------------------------------------------------
    def heap_arena(self, p):
        """h.arenas[0][arenaIndex(p)], or 0 when p is not in a heap arena."""
        ai = arena_index(p)
        if ai >= 1 << ARENA_L2_BITS:
            return 0
        return self.mem.u64(self.arenas_l2 + ai * 8)

    def span_of_heap(self, p):
        """mheap.go: spanOfHeap: the in-use heap span containing p, or None."""
        s = self.span_of(p)
        return s if s is not None and s.state == MSPAN_IN_USE else None

    def span_of(self, p):
        """mheap.go: spanOf: the span whose pages contain p (in any state), or None."""
        ha = self.heap_arena(p)
        if not ha:
            return None
        s = self.mem.u64(ha + HeapArena.spans + (p // PAGE_SIZE % PAGES_PER_ARENA) * 8)
        if not s:
            return None
        span = MSpan(self.mem, s)
        if not span.base() <= p < span.base() + span.npages * PAGE_SIZE:
            return None
        return span

    def sys_alloc(self, n):
        """mheap.go: (*mheap).sysAlloc: reserve whole arenas at a hint, create their metadata."""
        n = align_up(n, HEAP_ARENA_BYTES)
        v = 0
        while self.arena_hints:
            p = self.arena_hints[0]
            if arena_index(p + n - 1) >= 1 << ARENA_L2_BITS:
                got = 0
            else:
                got = yield from sys_reserve(p, n)
            if got == p:
                self.arena_hints[0] = p + n
                v = p
                break
            self.arena_hints.pop(0)      # this hint failed; try the next
        if not v:
            return 0, 0
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
    def alloc(self, npages, spanclass):
        """mheap.go: (*mheap).alloc: a span for heap objects."""
        return (yield from self.alloc_span(npages, spanclass))

    def alloc_manual(self, npages):
        """mheap.go: (*mheap).allocManual(npages, spanAllocStack): pages the caller
        manages itself (goroutine stacks)."""
        return (yield from self.alloc_span(npages, 0, manual=True))

    def alloc_span(self, npages, spanclass, manual=False):
        """mheap.go: (*mheap).allocSpan (spanAllocHeap, or spanAllocStack when manual)."""
        base = scav = 0
        if npages < PAGE_CACHE_PAGES // 4:      # small: through p0's page cache
            if self.pcache is None or self.pcache.empty():
                self.pcache = self.pages.alloc_to_cache()
            base, scav = self.pcache.alloc(npages)
        growth = 0
        if base == 0:
            base, scav = self.pages.alloc(npages)
            if base == 0:
                growth, ok = yield from self.grow(npages)
                if not ok:
                    return None
                base, scav = self.pages.alloc(npages)
                if base == 0:
                    throw("grew heap, but no adequate free space found")
        if self.scavenger is not None:          # allocSpan's scavenging (mgcscavenge.py)
            yield from self.scavenger.alloc_scavenge(scav, growth)
        s = MSpan(self.mem, self._free_mspans.pop() if self._free_mspans
                  else self.env.persistentalloc(MSpanLayout.SIZE, 8))
        self.nspans += 1
        self.init_span(s, spanclass, base, npages, scav, manual)
        nbytes = npages * PAGE_SIZE
        self.heap_released -= scav
        self.heap_free -= nbytes - scav
        if manual:
            self.stacks_in_use += nbytes
        else:
            self.heap_in_use += nbytes
        return s

    def free_span(self, s):
        """mheap.go: (*mheap).freeSpan: an empty heap span goes back to the page allocator."""
        self._free_span_locked(s, manual=False)

    def free_manual(self, s):
        """mheap.go: (*mheap).freeManual."""
        s.needzero = 1
        self._free_span_locked(s, manual=True)

    def _free_span_locked(self, s, manual):
        """mheap.go: freeSpanLocked."""
        if s.state == MSPAN_MANUAL and manual:
            if s.allocCount:
                throw("mheap.freeSpanLocked - invalid stack free")
        elif s.state == MSPAN_IN_USE and not manual:
            if s.allocCount or s.sweepgen != self.sweepgen:
                throw(f"mheap.freeSpanLocked - invalid free (allocCount {s.allocCount}, "
                      f"sweepgen {s.sweepgen}/{self.sweepgen})")
            self.pages_in_use -= s.npages
            ha = self.heap_arena(s.base())
            page = s.base() // PAGE_SIZE % PAGES_PER_ARENA
            a = ha + HeapArena.pageInUse + page // 8
            self.mem.w8(a, self.mem.u8(a) & ~(1 << (page % 8)))
        else:
            throw("mheap.freeSpanLocked - invalid span state")
        nbytes = s.npages * PAGE_SIZE
        self.heap_free += nbytes
        if manual:
            self.stacks_in_use -= nbytes
        else:
            self.heap_in_use -= nbytes
        self.pages.free(s.base(), s.npages)
        s.state = MSPAN_DEAD
        self.nspans -= 1
        self._free_mspans.append(s.addr)

    def alloc_needs_zero(self, base, npage):
        """mheap.go: allocNeedsZero, from each arena's zeroedBase watermark."""
        need = False
        while npage > 0:
            ha = self.heap_arena(base)
            zeroed = self.mem.u64(ha + HeapArena.zeroedBase)
            abase = base % HEAP_ARENA_BYTES
            if abase < zeroed:
                need = True
            alimit = min(abase + npage * PAGE_SIZE, HEAP_ARENA_BYTES)
            if alimit > zeroed:
                self.mem.w64(ha + HeapArena.zeroedBase, alimit)
            base += alimit - abase
            npage -= (alimit - abase) // PAGE_SIZE
        return need

    def init_span(self, s, spanclass, base, npages, scav, manual=False):
        """mheap.go: (*mheap).initSpan and (*mspan).init."""
        self.mem.fill(s.addr, MSpanLayout.SIZE)
        s.startAddr, s.npages = base, npages
        s.limit = base + npages * PAGE_SIZE
        nbytes = npages * PAGE_SIZE
        # needZeroAfterSysUnused() is false with MADV_DONTNEED: fully released pages are zero.
        if self.alloc_needs_zero(base, npages) and scav != nbytes:
            s.needzero = 1
        if manual:
            s.state = MSPAN_MANUAL
            self.set_spans(base, npages, s)
            return
        s.spanclass = spanclass
        sizeclass = spanclass >> 1
        if sizeclass == 0:
            s.elemsize, s.nelems, s.divMul = nbytes, 1, 0
        else:
            s.elemsize = sc.CLASS_TO_SIZE[sizeclass]
            s.nelems = nelems_for(sizeclass, spanclass & 1, npages)
            s.divMul = sc.CLASS_TO_DIVMAGIC[sizeclass]
        s.freeindex = s.freeIndexForScan = 0
        s.allocCache = 0xFFFFFFFFFFFFFFFF
        nb = gc_bits_bytes(s.nelems)
        s.gcmarkBits = self.env.persistentalloc(nb, 8)
        s.allocBits = self.env.persistentalloc(nb, 8)
        s.limit = base + s.elemsize * s.nelems
        s.sweepgen = self.sweepgen
        s.state = MSPAN_IN_USE
        self.set_spans(base, npages, s)
        ha = self.heap_arena(base)
        page = base // PAGE_SIZE % PAGES_PER_ARENA
        a = ha + HeapArena.pageInUse + page // 8
        self.mem.w8(a, self.mem.u8(a) | 1 << (page % 8))
        self.pages_in_use += npages

    def set_page_marked(self, base):
        """heapArena.pageMarks: the span starting at base has a marked object."""
        ha = self.heap_arena(base)
        page = base // PAGE_SIZE % PAGES_PER_ARENA
        a = ha + HeapArena.pageMarks + page // 8
        self.mem.w8(a, self.mem.u8(a) | 1 << (page % 8))

    def set_spans(self, base, npage, s):
        """mheap.go: setSpans: point every page's spans[] entry at s (or 0)."""
        for n in range(npage):
            p = base + n * PAGE_SIZE
            ha = self.heap_arena(p)
            self.mem.w64(ha + HeapArena.spans + (p // PAGE_SIZE % PAGES_PER_ARENA) * 8, s.addr if s else 0)

    def check_span(self, s):
        """Invariants of a span the allocator hands out; raises InvariantError."""
        problems = []
        if s.state != MSPAN_IN_USE:
            problems.append(f"state {s.state} is not mSpanInUse")
        if s.freeindex > s.nelems:
            problems.append(f"freeindex {s.freeindex} > nelems {s.nelems}")
        if s.allocCount > s.nelems:
            problems.append(f"allocCount {s.allocCount} > nelems {s.nelems}")
        if s.sizeclass() and s.elemsize != sc.CLASS_TO_SIZE[s.sizeclass()]:
            problems.append(f"elemsize {s.elemsize} is not class {s.sizeclass()}'s size")
        if s.limit != s.base() + s.elemsize * s.nelems:
            problems.append("limit is not base + elemsize*nelems")
        if problems:
            raise InvariantError(f"{s!r}: " + "; ".join(problems))

