"""Go 1.27's page allocator (runtime/mpagealloc.go, mpagealloc_64bit.go) for 64-bit.

Two implementations of one pageAlloc, with one API and one state (`state()`):
* PyPageAlloc, here, is the reference model: readable Python, checked against every
  one of Go's own page-allocator test vectors (tests/test_pagealloc*.py).
* CPageAlloc (runtime_model/cpagealloc/) is the running implementation: the same
  allocator transcribed from Go's code into C and called through ctypes. It exists for
  speed (issue 13: 200 k mixed ops/s, about 5x what this model reaches in Python); the
  tests drive both alike and compare every result and the full state.
`PageAlloc`, what mheap uses, is CPageAlloc, or this model where the C core cannot be
built (no compiler: one line on stderr says so) or GOMEMU_PAGEALLOC=python asks for it.

Design of the model (Go's, except where said):
* The 48-bit address space is cut into 4 MiB chunks of 512 pages of 8 KiB. Each
  grown chunk has a `PallocData` (allocation bitmap + scavenged bitmap, each one
  512-bit Python int; see pallocbits.py).
* A radix tree of packed summaries (pallocSum: start/max/end free-page counts)
  has 5 levels; level l entry i covers 2**levelLogPages[l] pages. Go reserves
  each level as one array and maps pieces on grow; here each level is a dict
  from block number to a list of 2**levelBits[l] entries (level 0 is the single
  block 0 of 16384 entries), created by grow only where Go would map it.
  Beside each block the model keeps its entries' max fields and the parent's
  `cross` (the part of its max made of children's ends and starts), so an
  update that only moves maxes (most do) reaches a parent without a merge.
* All addresses are handled internally in Go's "offset address space"
  (offAddr: addr - arenaBaseOffset, mod 2**64), so the heap at 0xc000000000 and
  the test chunks at 0x3000000000 order linearly. The API takes and returns
  real (virtual) addresses like Go's pageAlloc.
* alloc is Go's address-ordered first fit: a fast path in the chunk at
  searchAddr, else `find`. Go's find walks down from the root; with
  consistent summaries its result (the first fit, and the firstFree base that
  becomes searchAddr) has a closed form (see _find), so the model finds the
  first fit from the lowest entry that must hold it, starting from a per-size
  lower bound on where runs can start (_fit_lb, raised by find, lowered by
  free and grow). The root level is iterated only over entries that grow
  touched, since all others are zero, which is exactly what Go's scan skips.
* free_many frees a batch of ranges (a sweep's spans) with the state free()
  one by one would leave, touching each chunk and each entry above once.
* scavenge follows pageAlloc.scavenge/scavengeOne and models the scavenge index
  (scavengeIndex: per-chunk occupancy, generation and "has free" flag, the
  force and background search addresses) rather than tests/data/README.md's "highest
  chunk with a candidate" rule: it is Go's own code path, so it also yields
  Go's searchIdx and background-scavenger behaviour. For forced scavenging the
  two agree (checked by tests/test_pagealloc.py against the simple rule).

Simplified relative to the runtime: no locking or atomics (single-threaded, so
the scavenge index's "marked" search addresses collapse to plain stores);
scavengeOne's temporary alloc/free of the candidate around sysUnused is
elided, since it leaves bitmaps and summaries unchanged (its searchAddr
move-back is kept); findMappedAddr always consults inUse (Go's test mode) instead
of mheap_.arenas; summary memory is not mapped here, only counted (`sys_stat`: the
bytes Go's grow maps for summaries, chunk bitmaps and the scavenge index, and init's
inUse ranges, all of which Go adds to p.sysStat); grow calls the optional
`on_grow(base, size)` hook so an mheap can emulate the mapping; scavenging calls
the optional `on_release(addr, nbytes)` hook where Go calls sysUnused. The
per-P page cache (mpagecache.go) is runtime_model/pagecache.py; its refill,
allocToCache, is alloc_to_cache here, and flush's work on the allocator is
free_page_cache. find reaches Go's result
without Go's walk from the root; the two agree whenever the summaries match the
bitmaps (which check_page_alloc checks), and differ only in how corrupt
summaries are reported.
"""

import json
import os
import sys
from bisect import bisect_left, bisect_right

from emu.errors import BadInput, InvariantError
from runtime_model.pallocbits import (
    FREE_CHUNK_SUM,
    FULL,
    LOG_MAX_PACKED_VALUE,
    LOG_PALLOC_CHUNK_PAGES,
    MAX_PACKED_VALUE,
    MAX_PAGES_PER_PHYS_PAGE,
    PAGE_SHIFT,
    PAGE_SIZE,
    PALLOC_CHUNK_BYTES,
    PALLOC_CHUNK_PAGES,
    PHYS_HUGE_PAGE_SIZE,
    PHYS_PAGE_SIZE,
    SUMMARY_LEVEL_BITS,
    SUMMARY_LEVELS,
    PallocData,
    bits_to_ranges,
    block64,
    clear_block64,
    find_run,
    max_run,
    merge_block,
    merge_summaries,
    palloc_find,
    range_mask,
    summarize,
    unpack_palloc_sum,
)
from runtime_model.pagecache import PAGE_CACHE_PAGES, PageCache

# malloc.go: heapAddrBits (64-bit, not iOS/Wasm)
HEAP_ADDR_BITS = 48
# malloc.go: arenaBaseOffset on amd64
ARENA_BASE_OFFSET = 0xFFFF800000000000
_MASK64 = (1 << 64) - 1
# mpagealloc.go: logPallocChunkBytes
LOG_PALLOC_CHUNK_BYTES = LOG_PALLOC_CHUNK_PAGES + PAGE_SHIFT
# mpagealloc.go: summaryL0Bits
SUMMARY_L0_BITS = HEAP_ADDR_BITS - LOG_PALLOC_CHUNK_BYTES - (SUMMARY_LEVELS - 1) * SUMMARY_LEVEL_BITS
# mpagealloc_64bit.go: levelBits, levelShift, levelLogPages
LEVEL_BITS = (SUMMARY_L0_BITS,) + (SUMMARY_LEVEL_BITS,) * (SUMMARY_LEVELS - 1)
LEVEL_SHIFT = tuple(HEAP_ADDR_BITS - SUMMARY_L0_BITS - k * SUMMARY_LEVEL_BITS for k in range(SUMMARY_LEVELS))
LEVEL_LOG_PAGES = tuple(LOG_PALLOC_CHUNK_PAGES + k * SUMMARY_LEVEL_BITS for k in reversed(range(SUMMARY_LEVELS)))
# mranges.go: minOffAddr / maxOffAddr, as offsets from arenaBaseOffset.
MIN_OFF_ADDR = 0
MAX_OFF_ADDR = (1 << HEAP_ADDR_BITS) - 1
# mgcscavenge.go: scavChunkHiOccPages = uint16(0.96875 * pallocChunkPages)
SCAV_CHUNK_HI_OCC_PAGES = int(0.96875 * PALLOC_CHUNK_PAGES)

# What grow maps for the allocator's own metadata, all counted in its sysStat (mheap's
# pages: memstats.gcMiscSys), as Go counts it:
PALLOC_SUM_BYTES = 8                  # mpagealloc.go: pallocSumBytes
PALLOC_CHUNKS_L1_BITS = 13            # mpagealloc_64bit.go: pallocChunksL1Bits
PALLOC_CHUNKS_L2_BITS = HEAP_ADDR_BITS - LOG_PALLOC_CHUNK_BYTES - PALLOC_CHUNKS_L1_BITS
PALLOC_DATA_BYTES = 2 * (PALLOC_CHUNK_PAGES // 8)   # pallocData: pallocBits + scavenged
SCAV_CHUNK_DATA_BYTES = 8             # mgcscavenge.go: atomicScavChunkData
IN_USE_RANGES_BYTES = 16 * 16         # mranges.go: addrRanges.init, 16 addrRanges persistentalloc'd

# export_test.go: BaseChunkIdx (chunk of 0x3000000000 on amd64); vectors are relative to it.
BASE_CHUNK_IDX = 0x200C000
_LEAF = SUMMARY_LEVELS - 1
_CHUNK_SHIFT = LOG_PALLOC_CHUNK_BYTES
_PAGE_MASK = PALLOC_CHUNK_PAGES - 1
_SUM_FIELD = (1 << LOG_MAX_PACKED_VALUE) - 1
# The start and end fields of a packed summary.
_START_END = _SUM_FIELD | (_SUM_FIELD << (2 * LOG_MAX_PACKED_VALUE))


def _leaf_sum(bits, most):
    """A chunk's summary from its bitmap (not all free) and its max (summarize without the run search)."""
    return ((bits & -bits).bit_length() - 1) | (most << LOG_MAX_PACKED_VALUE) | (
        (PALLOC_CHUNK_PAGES - bits.bit_length()) << (2 * LOG_MAX_PACKED_VALUE)
    )


# Per-size lower bounds on where a free run can start (_fit_lb) cover 1.._FIT_LB_MAX pages.
_FIT_LB_MAX = 64
_NO_FIT = 1 << HEAP_ADDR_BITS  # above every address: no run of that size exists
# find's firstFree: for the highest bit t where the fit and first free page (or the
# fit's ends) differ, the shift of the shallowest level whose entries split there.
_FIRST_FREE_SHIFT = tuple(
    next((LEVEL_SHIFT[lvl] for lvl in range(SUMMARY_LEVELS) if LEVEL_SHIFT[lvl] <= t), 0) for t in range(65)
)


def _scan(entries, js, npages, log_max):
    """find's loop over entries js of one block -> (j, None) to descend into
    entry j, (None, base) for a run starting `base` pages into the block, or
    (None, None) if none fits. A gap in js (root level) breaks runs."""
    full = 1 << log_max
    size = base = 0
    prev = -2
    for j in js:
        if j != prev + 1:
            size = 0
        prev = j
        s = entries[j]
        if s == 0:
            size = 0
            continue
        if s >> 63:
            st = mx = en = MAX_PACKED_VALUE
        else:
            st = s & _SUM_FIELD
            mx = (s >> LOG_MAX_PACKED_VALUE) & _SUM_FIELD
            en = s >> (2 * LOG_MAX_PACKED_VALUE)
        if size + st >= npages:
            return None, base if size else j << log_max
        if mx >= npages:
            return j, None
        if size == 0 or st < full:
            size = en
            base = ((j + 1) << log_max) - size
        else:
            size += full
    return None, (base if size >= npages else None)


def to_off(addr):
    """offAddr view of a virtual address: addr - arenaBaseOffset (mod 2**64)."""
    return (addr - ARENA_BASE_OFFSET) & _MASK64


def from_off(off):
    return (off + ARENA_BASE_OFFSET) & _MASK64


def chunk_index(addr):
    """chunkIndex."""
    return to_off(addr) >> _CHUNK_SHIFT


def chunk_base(ci):
    """chunkBase."""
    return from_off(ci << _CHUNK_SHIFT)


def chunk_page_index(addr):
    """chunkPageIndex."""
    return (addr % PALLOC_CHUNK_BYTES) // PAGE_SIZE


def page_base(ci, page):
    """export_test.go PageBase."""
    return chunk_base(ci) + page * PAGE_SIZE


BASE_CHUNK_ADDR = page_base(BASE_CHUNK_IDX, 0)


# ---- checks and errors both implementations share ------------------------------


def grow_extent(base, size):
    """grow's [base, base+size) rounded out to chunks, as offsets; BadInput outside the heap."""
    if size <= 0:
        raise BadInput(f"pageAlloc.grow: size must be positive, got {size}")
    b = to_off(base)
    limit = -(-(b + size) // PALLOC_CHUNK_BYTES) * PALLOC_CHUNK_BYTES
    if limit > 1 << HEAP_ADDR_BITS:
        raise BadInput(f"pageAlloc.grow: [{base:#x}, +{size:#x}) is outside the 48-bit heap address space")
    return b // PALLOC_CHUNK_BYTES * PALLOC_CHUNK_BYTES, limit


def grown_twice(ci):
    return InvariantError(f"pageAlloc.grow: chunk {ci:#x} grown twice")


def npages_not_positive(op, npages):
    return BadInput(f"pageAlloc.{op}: npages must be positive, got {npages}")


def not_grown(base, npages):
    return InvariantError(f"pageAlloc.free: [{base:#x}, +{npages} pages) is not in grown memory")


def below_zero(ci, in_use, npages):
    """scavChunkData.free's throw."""
    return InvariantError(f"allocated pages below zero? chunk {ci:#x} inUse={in_use} npages={npages}")


def too_many(ci, in_use, npages):
    """scavChunkData.alloc's throw."""
    return InvariantError(f"too many pages allocated in chunk? chunk {ci:#x} inUse={in_use} npages={npages}")


def cache_not_in_heap(base):
    return InvariantError(f"pageCache.flush: base {base:#x} is not a 64-page block of grown memory")


class AddrRanges:
    """addrRanges (mranges.go): sorted, coalesced [base, limit) ranges in offset space."""

    def __init__(self):
        self.bases = []
        self.limits = []

    def find_succ(self, off):
        """findSucc: index of the first range whose base is above off."""
        return bisect_right(self.bases, off)

    def find_addr_greater_equal(self, off):
        """findAddrGreaterEqual: smallest in-range offset >= off, or None."""
        i = self.find_succ(off)
        if i == 0:
            return self.bases[0]
        if off < self.limits[i - 1]:
            return off
        if i < len(self.bases):
            return self.bases[i]
        return None

    def contains(self, off):
        i = self.find_succ(off)
        return i > 0 and off < self.limits[i - 1]

    def add(self, base, limit):
        """add: insert [base, limit), coalescing with neighbours it touches."""
        if limit <= base:
            raise InvariantError(f"attempted to add zero-sized address range [{base:#x}, {limit:#x})")
        i = self.find_succ(base)
        down = i > 0 and self.limits[i - 1] == base
        up = i < len(self.bases) and self.bases[i] == limit
        if down and up:
            self.limits[i - 1] = self.limits[i]
            del self.bases[i], self.limits[i]
        elif down:
            self.limits[i - 1] = limit
        elif up:
            self.bases[i] = base
        else:
            self.bases.insert(i, base)
            self.limits.insert(i, limit)


class PyPageAlloc:
    """pageAlloc, the reference model: chunk bitmaps, radix summaries, searchAddr, inUse and scavenge index."""

    def __init__(self, on_grow=None, on_release=None):
        # summary[l]: block number -> list of 1 << LEVEL_BITS[l] packed sums. Beside
        # it, _max[l] holds each summary's max field, and below the root one more
        # item: the cross part (merge_block) of the block's parent. So max() of a
        # block is its parent's max; find scans the maxes.
        self.summary = [dict() for _ in range(SUMMARY_LEVELS)]
        self._max = [dict() for _ in range(SUMMARY_LEVELS)]
        self.summary[0][0] = [0] * (1 << LEVEL_BITS[0])
        self._max[0][0] = [0] * (1 << LEVEL_BITS[0])
        self._leaf, self._leaf_max = self.summary[_LEAF], self._max[_LEAF]
        # update's walk from the leaves' parents up, one tuple per level.
        self._up = tuple(
            (LEVEL_BITS[lvl], (1 << LEVEL_BITS[lvl]) - 1, self.summary[lvl], self._max[lvl],
             self.summary[lvl + 1], self._max[lvl + 1], LEVEL_LOG_PAGES[lvl + 1])
            for lvl in range(_LEAF - 1, -1, -1)
        )
        # find's walk up from an address (leaves' parents to root), and down from level l.
        self._ancestors = tuple(
            (lvl, LEVEL_SHIFT[lvl], LEVEL_BITS[lvl], (1 << LEVEL_BITS[lvl]) - 1, self._max[lvl])
            for lvl in range(_LEAF - 1, -1, -1)
        )
        down = tuple(
            (lvl, LEVEL_SHIFT[lvl], self._max[lvl], self.summary[lvl], LEVEL_LOG_PAGES[lvl])
            for lvl in range(1, SUMMARY_LEVELS)
        )
        self._down = tuple(down[lvl:] for lvl in range(_LEAF))
        self._root_idx = []  # root entries covered by grown memory (others stay 0)
        # _fit_lb[n]: no run of n free pages starts below it (n <= _FIT_LB_MAX);
        # non-decreasing in n, lowered by free and grow, raised by find.
        self._fit_lb = [MIN_OFF_ADDR] * (_FIT_LB_MAX + 1)
        self.chunks = {}  # chunkIdx -> PallocData
        self._grown = []  # sorted chunk indices, for the scavenge index walk
        self.search_addr = MAX_OFF_ADDR  # offAddr offset; init starts "no free memory"
        self.start = 0
        self.end = 0
        self.in_use = AddrRanges()
        self.on_grow = on_grow
        self.on_release = on_release
        # scavengeIndex: chunkIdx -> [inUse, lastInUse, gen, hasFree] (scavChunkData).
        self._sc = {}
        self._sc_gen = 0
        self._sc_min_heap_idx = 0
        self._sc_search_force = MIN_OFF_ADDR  # searchAddrForce; MIN means cleared
        self._sc_search_bg = MIN_OFF_ADDR  # searchAddrBg
        self._sc_free_hwm = MIN_OFF_ADDR
        # p.sysStat's share from this allocator (init's inUse ranges, then grow's maps);
        # _sum_pages[l] the physical pages of summary level l's array that are mapped,
        # _l1 the chunks' L1 entries with an L2 array, _sc_pages [min, max) of the
        # scavenge index's mapped chunk indices (its s.min, s.max).
        self.sys_stat = IN_USE_RANGES_BYTES
        self._sum_pages = [set() for _ in range(SUMMARY_LEVELS)]
        self._l1 = set()
        self._sc_pages = (0, 0)

    # ---- introspection -------------------------------------------------

    def chunk_of(self, ci):
        """tryChunkOf: PallocData of chunk ci or None if never grown."""
        return self.chunks.get(ci)

    def bounds(self):
        """(start, end) chunk indices known to the allocator (PageAlloc.Bounds)."""
        return self.start, self.end

    def in_use_ranges(self):
        """inUse as a list of (base, limit) virtual addresses (PageAlloc.InUse)."""
        return [(from_off(b), from_off(l)) for b, l in zip(self.in_use.bases, self.in_use.limits)]

    def summary_at(self, level, idx):
        """Packed summary p.summary[level][idx]; 0 where nothing was grown."""
        block = self.summary[level].get(idx >> LEVEL_BITS[level])
        return 0 if block is None else block[idx & ((1 << LEVEL_BITS[level]) - 1)]

    def grown_chunks(self):
        return list(self._grown)

    def state(self):
        """Everything of Go's pageAlloc, as plain values; CPageAlloc.state() gives the same.

        search_addr, bounds (start, end), in_use: offsets and chunk indices; chunks:
        chunk -> (bits, scavenged); summary[level]: index -> packed sum, non-zero ones;
        scav_chunks: chunk -> (inUse, lastInUse, gen, hasFree); scav_index: (gen,
        minHeapIdx, searchAddrForce, searchAddrBg, freeHWM, (min, max) of the mapped
        index); what grow mapped: sys_stat, summary_pages (per level, the physical pages
        of its array) and chunks_l1 (the L1 entries of p.chunks with an L2 array).
        """
        return {
            "search_addr": self.search_addr,
            "bounds": (self.start, self.end),
            "in_use": list(zip(self.in_use.bases, self.in_use.limits)),
            "chunks": {ci: (self.chunks[ci].bits, self.chunks[ci].scavenged) for ci in self._grown},
            "summary": [{(blk << LEVEL_BITS[lvl]) | k: x for blk, entries in self.summary[lvl].items()
                         for k, x in enumerate(entries) if x} for lvl in range(SUMMARY_LEVELS)],
            "scav_chunks": {ci: (d[0], d[1], d[2], d[3]) for ci, d in self._sc.items()},
            "scav_index": (self._sc_gen, self._sc_min_heap_idx, self._sc_search_force, self._sc_search_bg,
                           self._sc_free_hwm, self._sc_pages),
            "sys_stat": self.sys_stat,
            "summary_pages": [sorted(pages) for pages in self._sum_pages],
            "chunks_l1": sorted(self._l1),
        }

    @staticmethod
    def find_scavenge_candidate(bits, scavenged, search_idx, minimum, max_):
        """pallocData.findScavengeCandidate on a chunk given as its two bitmaps."""
        return PallocData(bits, scavenged).find_scavenge_candidate(search_idx, minimum, max_)

    def set_test_chunk(self, ci, alloc, scav):
        """export_test.go NewPageAlloc's setup of a chunk just grown: clear its scavenged
        bits, let the index see every page allocated and freed, set the scav ranges,
        allocate the alloc ranges ([(start, n), ...]; n = 0 is skipped) and update."""
        chunk = self.chunks[ci]
        chunk.scavenged = 0
        self._sc_alloc(ci, PALLOC_CHUNK_PAGES)
        self._sc_free(ci, 0, PALLOC_CHUNK_PAGES)
        for s, n in scav:
            if n:
                chunk.scavenged_set_range(s, n)
        for s, n in alloc:
            if n:
                chunk.alloc_range(s, n)
                self._sc_alloc(ci, n)
        self._update(ci << _CHUNK_SHIFT, PALLOC_CHUNK_PAGES, False, False)

    # ---- grow ----------------------------------------------------------

    def grow(self, base, size):
        """grow: add [base, base+size) (rounded out to chunks) as free, scavenged memory."""
        b, limit = grow_extent(base, size)
        c0, c1 = b >> _CHUNK_SHIFT, limit >> _CHUNK_SHIFT
        lo = bisect_left(self._grown, c0)
        if lo < len(self._grown) and self._grown[lo] < c1:
            raise grown_twice(self._grown[lo])
        if self.on_grow is not None:
            self.on_grow(from_off(b), limit - b)
        # sysGrow: make the summary blocks covering [b, limit) exist at every level, and
        # map the physical pages of the summary arrays they lie in.
        for lvl in range(SUMMARY_LEVELS):
            shift, lbits = LEVEL_SHIFT[lvl], LEVEL_BITS[lvl]
            ilo, ihi = b >> shift, ((limit - 1) >> shift) + 1
            blocks = self.summary[lvl]
            width = 1 << lbits
            blk_lo, blk_hi = ilo >> lbits, ((ihi - 1) >> lbits) + 1
            for blk in range(blk_lo, blk_hi):
                if blk not in blocks:
                    blocks[blk] = [0] * width
                    self._max[lvl][blk] = [0] * (width + (lvl > 0))
            span = width * PALLOC_SUM_BYTES                     # blockAlignSummaryRange
            pages = range(blk_lo * span // PHYS_PAGE_SIZE, -(-blk_hi * span // PHYS_PAGE_SIZE))
            new = set(pages) - self._sum_pages[lvl]
            self._sum_pages[lvl] |= new
            self.sys_stat += len(new) * PHYS_PAGE_SIZE
            if lvl == 0:
                for i in range(ilo, ihi):
                    k = bisect_left(self._root_idx, i)
                    if k == len(self._root_idx) or self._root_idx[k] != i:
                        self._root_idx.insert(k, i)
        # scavengeIndex.sysGrow: the index's pages for chunks [c0, c1), 512 chunks a page
        per_page = PHYS_PAGE_SIZE // SCAV_CHUNK_DATA_BYTES
        have = self._sc_pages
        need = (c0 // per_page * per_page, -(-c1 // per_page) * per_page)
        if have != (0, 0):
            need = (min(need[0], have[1]), max(need[1], have[0]))
        mapped = need[1] - need[0] - max(0, min(need[1], have[1]) - max(need[0], have[0]))
        if mapped:
            self.sys_stat += mapped * SCAV_CHUNK_DATA_BYTES
            self._sc_pages = (need[0] if have == (0, 0) else min(need[0], have[0]), max(need[1], have[1]))
        # scavengeIndex.grow
        if self._sc_min_heap_idx == 0 or c0 < self._sc_min_heap_idx:
            self._sc_min_heap_idx = c0
        if self.start == 0 or c0 < self.start:
            self.start = c0
        if c1 > self.end:
            self.end = c1
        self.in_use.add(b, limit)
        # Growing is like freeing: move searchAddr back if needed.
        if b < self.search_addr:
            self.search_addr = b
        for c in range(c0, c1):
            if c >> PALLOC_CHUNKS_L2_BITS not in self._l1:      # sysAlloc of p.chunks[c.l1()]
                self._l1.add(c >> PALLOC_CHUNKS_L2_BITS)
                self.sys_stat += (1 << PALLOC_CHUNKS_L2_BITS) * PALLOC_DATA_BYTES
            # Newly grown memory is free and entirely scavenged.
            self.chunks[c] = PallocData(0, FULL)
            self._sc[c] = [0, 0, 0, False]
        self._grown[lo:lo] = range(c0, c1)
        self._update(b, (limit - b) >> PAGE_SHIFT, True, False)
        self._freed_run(c0, 0, c1 - 1, PALLOC_CHUNK_PAGES)

    # ---- summaries -----------------------------------------------------

    def _update(self, base, npages, contig, alloc):
        """update: refresh leaf summaries for [base, +npages) and propagate upwards."""
        limit = base + (npages << PAGE_SHIFT) - 1
        sc, ec = base >> _CHUNK_SHIFT, limit >> _CHUNK_SHIFT
        chunks = self.chunks
        if sc == ec:
            y = summarize(chunks[sc].bits)
            self._set_leaf(sc, y, (y >> LOG_MAX_PACKED_VALUE) & _SUM_FIELD)
            return
        if contig:
            whole = 0 if alloc else FREE_CHUNK_SUM
            leaves = [(sc, summarize(chunks[sc].bits))]
            leaves += [(c, whole) for c in range(sc + 1, ec)]
            leaves.append((ec, summarize(chunks[ec].bits)))
        else:
            leaves = [(c, summarize(chunks[c].bits)) for c in range(sc, ec + 1)]
        self._set_leaves(leaves)

    def _set_leaves(self, leaves):
        """Store new leaf summaries [(chunk, sum), ...] and refresh each touched
        entry above them once per level, stopping where nothing changed (update's walk)."""
        leaf, leaf_max = self._leaf, self._leaf_max
        changed = {}  # entry index -> its start or end changed (not just its max)
        for ci, y in leaves:
            blk = leaf[ci >> 3]
            x = blk[ci & 7]
            if x != y:
                blk[ci & 7] = y
                leaf_max[ci >> 3][ci & 7] = (y >> LOG_MAX_PACKED_VALUE) & _SUM_FIELD
                changed[ci] = bool((x ^ y) & _START_END)
        for lbits, imask, sums, maxes, child_sums, child_maxes, log_max in self._up:
            if not changed:
                return
            parents = {}
            for i, shape in changed.items():
                p = i >> 3
                parents[p] = shape or parents.get(p, False)
            changed = {}
            for p, shape in parents.items():
                b, k = p >> lbits, p & imask
                x = sums[b][k]
                if shape or x >> 63:
                    y, most, child_maxes[p][8] = merge_block(child_sums[p], log_max)
                else:
                    # Only children's maxes moved: the parent's start, end and cross stand.
                    most = max(child_maxes[p])
                    y = x ^ ((maxes[b][k] ^ most) << LOG_MAX_PACKED_VALUE)
                if y != x:
                    sums[b][k] = y
                    maxes[b][k] = most
                    changed[p] = bool((x ^ y) & _START_END or (x | y) >> 63)

    def _set_leaf(self, ci, y, most):
        """One chunk's new summary y (max `most`): update for a single chunk.

        Walks up while an entry changes, as Go's update does. While only maxes
        change (the common case), each parent's max follows from the child's old
        and new max, or from max() over the child's block and the parent's cross.
        """
        blk = self._leaf[ci >> 3]
        k = ci & 7
        x = blk[k]
        if x == y:
            return
        blk[k] = y
        child_max_blk = self._leaf_max[ci >> 3]
        old_c = child_max_blk[k]
        child_max_blk[k] = new_c = most
        shape = (x ^ y) & _START_END
        i = ci
        for lbits, imask, sums, maxes, child_sums, _, log_max in self._up:
            p = i >> 3
            max_blk = maxes[p >> lbits]
            k = p & imask
            old_p = max_blk[k]
            if shape or old_p == MAX_PACKED_VALUE:
                sum_blk = sums[p >> lbits]
                x = sum_blk[k]
                y, new_p, child_max_blk[8] = merge_block(child_sums[p], log_max)
                if y == x:
                    return
                sum_blk[k] = y
                shape = (x ^ y) & _START_END or (x | y) >> 63
            else:
                if new_c >= old_p:
                    if new_c == old_p:
                        return
                    new_p = new_c
                elif old_c < old_p:
                    return  # the parent's max lies elsewhere
                else:
                    new_p = max(child_max_blk)
                    if new_p == old_p:
                        return
                sums[p >> lbits][k] ^= (old_p ^ new_p) << LOG_MAX_PACKED_VALUE
            max_blk[k] = new_p
            old_c, new_c, child_max_blk, i = old_p, new_p, max_blk, p

    # ---- alloc / find --------------------------------------------------

    def alloc(self, npages):
        """alloc: first fit of npages pages -> (addr, scavenged bytes in it); (0, 0) on failure."""
        if npages <= 0:
            raise npages_not_positive("alloc", npages)
        sa = self.search_addr
        ci = sa >> _CHUNK_SHIFT
        if ci >= self.end:
            return 0, 0
        pi = (sa >> PAGE_SHIFT) & _PAGE_MASK
        # Fast path: try the chunk holding searchAddr if npages can fit in it.
        if PALLOC_CHUNK_PAGES - pi >= npages and self._leaf_max[ci >> 3][ci & 7] >= npages:
            j, sidx = palloc_find(self.chunks[ci].bits, npages, pi)
            if j is None:
                raise InvariantError(
                    f"bad summary data: chunk {ci:#x} max={self._leaf_max[ci >> 3][ci & 7]}, "
                    f"npages={npages}, searchIdx={pi}"
                )
            cb = ci << _CHUNK_SHIFT
            addr = cb + (j << PAGE_SHIFT)
            new_sa = cb + (sidx << PAGE_SHIFT)
        else:
            addr, new_sa = self._find(npages)
            if addr is None:
                if npages == 1:
                    # Not even one page: the heap is exhausted.
                    self.search_addr = MAX_OFF_ADDR
                return 0, 0
        scav = self._alloc_range(addr, npages)
        if self.search_addr < new_sa:
            self.search_addr = new_sa
        return (addr + ARENA_BASE_OFFSET) & _MASK64, scav

    def _find(self, npages):
        """find: radix-tree first fit -> (offset addr, candidate searchAddr), or (None, max).

        Go walks down from the root, narrowing a firstFree window at each level
        to the first non-zero entry while the walk stays in it; its base becomes
        the new searchAddr. With consistent summaries that walk's result has a
        closed form, computed here: the address is the first fit A, and, with F
        the first free page, firstFree's base is F rounded down to the entries of
        the shallowest level at which A's entry is not F's, or at which the run
        [A, A+npages) contains an entry's start (there Go's walk stops; it never
        descends past it). If no level qualifies, it is F itself.

        A and F are found by _first_fit from a lower bound on where such a run can
        start: searchAddr, or the tighter per-size bound _fit_lb keeps.
        """
        sa = self.search_addr
        lb = self._fit_lb
        x = lb[npages] if npages <= _FIT_LB_MAX else sa
        a = self._first_fit(npages, x if x > sa else sa)
        if a is None:
            self._raise_fit_lb(npages, _NO_FIT)
            return None, MAX_OFF_ADDR
        if npages <= _FIT_LB_MAX and lb[npages] < a:
            self._raise_fit_lb(npages, a)
        if npages == 1:
            f = a
        else:
            # F, the first free page: no free page lies below lb[1], so if it is free it is F.
            f = lb[1]
            chunk = self.chunks.get(f >> _CHUNK_SHIFT) if f >= sa else None
            if chunk is None or (chunk.bits >> ((f >> PAGE_SHIFT) & _PAGE_MASK)) & 1:
                f = self._first_fit(1, f if f > sa else sa)
                self._raise_fit_lb(1, f)
        t = (a ^ (a + (npages << PAGE_SHIFT) - 1)).bit_length() - 1
        low = ((a & -a).bit_length() - 1) if a else HEAP_ADDR_BITS
        if low > t:
            t = low
        low = (a ^ f).bit_length() - 1
        if low > t:
            t = low
        shift = _FIRST_FREE_SHIFT[t]
        f = f >> shift << shift
        bases = self.in_use.bases
        i = bisect_right(bases, f)
        if i and f < self.in_use.limits[i - 1]:
            return a, f  # findMappedAddr: f is mapped
        return a, self._find_mapped_addr(f)

    def _first_fit(self, npages, x):
        """Offset of the first run of npages free pages, given that none starts below x; None if none.

        The lowest entry holding x whose max is at least npages holds that run (a
        run starting in it but running past its end starts after the one inside).
        """
        ci = x >> _CHUNK_SHIFT
        if ci >= self.end:
            return None
        blk = self._leaf_max.get(ci >> 3)
        if blk is not None and blk[ci & 7] >= npages:
            # palloc_find's first fit, inline (this is find's most common exit)
            c = ~self.chunks[ci].bits & FULL
            w0 = ((x >> PAGE_SHIFT) & _PAGE_MASK) & ~63
            if w0:
                c = c >> w0 << w0
            if npages > 1:
                c = find_run(c, npages)
            if not c:
                raise InvariantError(f"bad summary data: chunk {ci:#x} max={blk[ci & 7]}, npages={npages}")
            return (ci << _CHUNK_SHIFT) + (((c & -c).bit_length() - 1) << PAGE_SHIFT)
        for lvl, shift, lbits, imask, maxes in self._ancestors:
            i = x >> shift
            blk = maxes.get(i >> lbits)
            if blk is not None and blk[i & imask] >= npages:
                return self._descend(lvl, i, npages)
        # Nothing above x's root entry holds it: scan the root level from there.
        roots = self._root_idx
        js = roots[bisect_left(roots, x >> LEVEL_SHIFT[0]) :]
        j, base = _scan(self.summary[0][0], js, npages, LEVEL_LOG_PAGES[0])
        if j is not None:
            return self._descend(0, j, npages)
        return None if base is None else base * PAGE_SIZE

    def _descend(self, lvl, i, npages):
        """First fit of npages inside entry i of level lvl, whose max is at least npages.

        Where the entry's cross is below npages, no run over its children's
        boundaries fits, so the fit is in the first child whose max is large enough.
        """
        for child_lvl, shift, maxes, sums, log_max in self._down[lvl]:
            m = maxes[i]
            if m[8] < npages:
                for j in range(8):
                    if m[j] >= npages:
                        break
                else:
                    j = None
            else:
                j, base = _scan(sums[i], range(8), npages, log_max)
                if base is not None:
                    return (i << (shift + SUMMARY_LEVEL_BITS)) + base * PAGE_SIZE
            if j is None:
                raise InvariantError(
                    f"bad summary data: summary[{child_lvl - 1}][{i:#x}] promised {npages} pages but "
                    f"its children {[unpack_palloc_sum(s) for s in sums[i]]} have no such run"
                )
            i = (i << SUMMARY_LEVEL_BITS) + j
        c = ~self.chunks[i].bits & FULL
        if npages > 1:
            c = find_run(c, npages)
        if not c:
            raise InvariantError(
                f"bad summary data: summary[{_LEAF}][{i}] = {unpack_palloc_sum(self.summary_at(_LEAF, i))}, "
                f"npages = {npages}"
            )
        return (i << _CHUNK_SHIFT) + (((c & -c).bit_length() - 1) << PAGE_SHIFT)

    def _raise_fit_lb(self, npages, a):
        """The first fit of npages is at a, so no run of npages or more starts below a."""
        if npages <= _FIT_LB_MAX:
            lb = self._fit_lb
            j = bisect_left(lb, a, npages, _FIT_LB_MAX + 1)
            if j > npages:
                lb[npages:j] = [a] * (j - npages)

    def _lower_fit_lb(self, lo, length=_FIT_LB_MAX):
        """Freed or grown pages made a free run of `length` pages start at lo (or above it)."""
        lb = self._fit_lb
        top = min(length, _FIT_LB_MAX) + 1
        k = bisect_right(lb, lo, 1, top)
        if k < top:
            lb[k:top] = [lo] * (top - k)

    def alloc_to_cache(self):
        """allocToCache: take the 64-page aligned block holding the first free page -> PageCache.

        All of the block's free pages go to the cache (1 = free in `cache`) and
        are marked in use here; their scavenged bits move into the cache's
        `scav` (which, as in Go, is the block's whole scavenged word). The
        summaries are updated as a non-contiguous allocation, the scavenge
        index counts the pages taken, and searchAddr becomes the block's last
        page (not the page after, which might be unmapped). If there is no free
        page, searchAddr becomes maxSearchAddr and the cache is empty.
        """
        sa = self.search_addr
        ci = sa >> _CHUNK_SHIFT
        if ci >= self.end:
            return PageCache()
        blk = self._leaf.get(ci >> 3)
        if blk is not None and blk[ci & 7] != 0:
            # Fast path: the chunk at searchAddr has a free page at or after it.
            chunk = self.chunks[ci]
            j, _ = palloc_find(chunk.bits, 1, (sa >> PAGE_SHIFT) & _PAGE_MASK)
            if j is None:
                raise InvariantError(f"bad summary data: chunk {ci:#x} summary {unpack_palloc_sum(blk[ci & 7])}")
        else:
            # Slow path: nothing at searchAddr's chunk; find the first free page.
            addr, _ = self._find(1)
            if addr is None:
                self.search_addr = MAX_OFF_ADDR
                return PageCache()
            ci = addr >> _CHUNK_SHIFT
            chunk = self.chunks[ci]
            j = (addr >> PAGE_SHIFT) & _PAGE_MASK
        old = chunk.bits
        cpi = j & ~63
        base = (ci << _CHUNK_SHIFT) + (cpi << PAGE_SHIFT)
        cache = ~chunk.pages64(j) & 0xFFFFFFFFFFFFFFFF
        scav = block64(chunk.scavenged, j)
        chunk.alloc_pages64(cpi, cache)
        # Only free pages lose their scavenged bit (allocated ones have none anyway).
        chunk.scavenged = clear_block64(chunk.scavenged, cpi, cache & scav)
        # update as a non-contiguous alloc, with the chunk's max found as in
        # _alloc_range: the runs taken from all lie in [lo, hi).
        first, last = cpi + (cache & -cache).bit_length() - 1, cpi + cache.bit_length() - 1
        up = old >> (last + 1)
        hi = (up & -up).bit_length() + last if up else PALLOC_CHUNK_PAGES
        lo = (old & ((1 << first) - 1)).bit_length()
        most = self._leaf_max[ci >> 3][ci & 7]
        if hi - lo >= most:
            most = max_run(~chunk.bits & FULL)
        self._set_leaf(ci, _leaf_sum(chunk.bits, most), most)
        self._sc_alloc(ci, cache.bit_count())
        self.search_addr = base + (PAGE_CACHE_PAGES - 1) * PAGE_SIZE
        return PageCache(from_off(base), cache, scav)

    def free_page_cache(self, base, cache, scav):
        """pageCache.flush's work on the allocator, for a cache that is not empty.

        Free bits are freed one page at a time (free1 + scavengeIndex.free per
        page, as Go does), every scav bit is set in the chunk's scavenged
        bitmap, then searchAddr moves back to base if that is lower (as in free) and
        the summaries are updated as a non-contiguous free of the 64-page block.
        """
        if cache == 0:
            return
        b = to_off(base)
        ci = b >> _CHUNK_SHIFT
        pi = (b >> PAGE_SHIFT) & _PAGE_MASK
        chunk = self.chunks.get(ci)
        if chunk is None or b % (PAGE_CACHE_PAGES * PAGE_SIZE):
            raise cache_not_in_heap(base)
        for i in range(PAGE_CACHE_PAGES):
            if cache >> i & 1:
                chunk.free1(pi + i)
                self._sc_free(ci, pi + i, 1)
            if scav >> i & 1:
                chunk.scavenged_set_range(pi + i, 1)
        if b < self.search_addr:
            self.search_addr = b
        self._update(b, PAGE_CACHE_PAGES, False, False)
        # Runs given pages start at or above the lowest one's and end by the chunk's
        # end, or run on into the next chunk by its start (_freed_run adds that).
        first = pi + (cache & -cache).bit_length() - 1
        self._freed_run(ci, (chunk.bits & ((1 << first) - 1)).bit_length(), ci, PALLOC_CHUNK_PAGES)

    def _find_mapped_addr(self, off):
        """findMappedAddr (test-mode form: consult inUse)."""
        r = self.in_use.find_addr_greater_equal(off)
        return MAX_OFF_ADDR if r is None else r

    def _alloc_range(self, base, npages):
        """allocRange: mark pages allocated, clear their scavenged bits, return scavenged bytes."""
        limit = base + (npages << PAGE_SHIFT) - 1
        sc, ec = base >> _CHUNK_SHIFT, limit >> _CHUNK_SHIFT
        si = (base >> PAGE_SHIFT) & _PAGE_MASK
        chunks = self.chunks
        if sc == ec:
            chunk = chunks[sc]
            old = chunk.bits
            m = ((1 << npages) - 1) << si
            scav = (chunk.scavenged & m).bit_count()
            chunk.bits = old | m
            chunk.scavenged &= ~m
            self._sc_alloc(sc, npages)
            # The chunk's max falls only if the run allocated from was a longest one;
            # then it is the longest of that run's two rests and the other runs.
            most = self._leaf_max[sc >> 3][sc & 7]
            up = old >> (si + npages)
            hi = (up & -up).bit_length() - 1 + si + npages if up else PALLOC_CHUNK_PAGES
            lo = (old & ((1 << si) - 1)).bit_length()
            if hi - lo >= most:
                most = max(si - lo, hi - si - npages, max_run(~(old | range_mask(lo, hi - lo)) & FULL))
            # Start and end change only if that run was the leading or trailing one.
            x = self._leaf[sc >> 3][sc & 7]
            start = si if lo == 0 else x & _SUM_FIELD
            end = PALLOC_CHUNK_PAGES - si - npages if hi == PALLOC_CHUNK_PAGES else x >> (2 * LOG_MAX_PACKED_VALUE)
            self._set_leaf(sc, start | (most << LOG_MAX_PACKED_VALUE) | (end << (2 * LOG_MAX_PACKED_VALUE)), most)
            return scav * PAGE_SIZE
        ei = (limit >> PAGE_SHIFT) & _PAGE_MASK
        chunk = chunks[sc]
        m = FULL >> si << si
        scav = (chunk.scavenged & m).bit_count()
        chunk.bits |= m
        chunk.scavenged &= ~m
        self._sc_alloc(sc, PALLOC_CHUNK_PAGES - si)
        for c in range(sc + 1, ec):
            chunk = chunks[c]
            scav += chunk.scavenged.bit_count()
            chunk.bits = FULL
            chunk.scavenged = 0
            self._sc_alloc(c, PALLOC_CHUNK_PAGES)
        chunk = chunks[ec]
        m = (1 << (ei + 1)) - 1
        scav += (chunk.scavenged & m).bit_count()
        chunk.bits |= m
        chunk.scavenged &= ~m
        self._sc_alloc(ec, ei + 1)
        self._update(base, npages, True, True)
        return scav * PAGE_SIZE

    # ---- free ----------------------------------------------------------

    def free(self, base, npages):
        """free: return npages pages at base; scavenged bits are untouched."""
        b = (base - ARENA_BASE_OFFSET) & _MASK64
        sc = b >> _CHUNK_SHIFT
        si = (b >> PAGE_SHIFT) & _PAGE_MASK
        chunk = self.chunks.get(sc)
        if chunk is not None and 0 < npages <= PALLOC_CHUNK_PAGES - si:
            # One chunk (the common case).
            self._sc_free(sc, si, npages)
            if b < self.search_addr:
                self.search_addr = b
            chunk.bits = bits = chunk.bits & ~(((1 << npages) - 1) << si)
            # Freeing only grows runs: the new max is the old one or that of the
            # run [lo, hi) now holding the freed pages.
            up = bits >> (si + npages)
            hi = (up & -up).bit_length() - 1 + si + npages if up else PALLOC_CHUNK_PAGES
            lo = (bits & ((1 << si) - 1)).bit_length()
            most = self._leaf_max[sc >> 3][sc & 7]
            if hi - lo > most:
                most = hi - lo
            # Start and end change only if that run is the leading or trailing one.
            x = self._leaf[sc >> 3][sc & 7]
            start = hi if lo == 0 else x & _SUM_FIELD
            end = PALLOC_CHUNK_PAGES - lo if hi == PALLOC_CHUNK_PAGES else x >> (2 * LOG_MAX_PACKED_VALUE)
            self._set_leaf(sc, start | (most << LOG_MAX_PACKED_VALUE) | (end << (2 * LOG_MAX_PACKED_VALUE)), most)
            if 0 < lo and hi < PALLOC_CHUNK_PAGES:
                start = b - ((si - lo) << PAGE_SHIFT)
                if self._fit_lb[min(hi - lo, _FIT_LB_MAX)] > start:
                    self._lower_fit_lb(start, hi - lo)
            else:
                self._freed_run(sc, lo, sc, hi)
            return
        # Several chunks, or bad input: free_many checks the range first.
        self.free_many(((base, npages),))

    def _freed_run(self, sc, lo, ec, hi):
        """Pages were freed or grown inside the free run from page lo of chunk sc to page
        hi of chunk ec (hi exclusive); lower _fit_lb for it. Summaries must be current.

        A run reaching a chunk's edge goes on by the neighbour's end or start. If
        that neighbour is wholly free the run goes on further, but then it already
        held a first fit of every size _fit_lb tracks, so the bounds stand.
        """
        start = (sc << _CHUNK_SHIFT) + (lo << PAGE_SHIFT)
        end = (ec << _CHUNK_SHIFT) + (hi << PAGE_SHIFT)
        leaf = self._leaf
        if lo == 0:
            blk = leaf.get((sc - 1) >> 3)
            if blk is not None:
                start -= (blk[(sc - 1) & 7] >> (2 * LOG_MAX_PACKED_VALUE)) << PAGE_SHIFT
        if hi == PALLOC_CHUNK_PAGES:
            blk = leaf.get((ec + 1) >> 3)
            if blk is not None:
                end += (blk[(ec + 1) & 7] & _SUM_FIELD) << PAGE_SHIFT
        self._lower_fit_lb(start, (end - start) >> PAGE_SHIFT)

    def _free_extent(self, base, npages):
        """free's checks -> (offset, first chunk, last chunk, first page, last page)."""
        if npages <= 0:
            raise npages_not_positive("free", npages)
        b = to_off(base)
        limit = b + (npages << PAGE_SHIFT) - 1
        sc, ec = b >> _CHUNK_SHIFT, limit >> _CHUNK_SHIFT
        if sc not in self.chunks or (
            ec != sc and bisect_right(self._grown, ec) - bisect_left(self._grown, sc) != ec - sc + 1
        ):
            raise not_grown(base, npages)
        return b, sc, ec, (b >> PAGE_SHIFT) & _PAGE_MASK, (limit >> PAGE_SHIFT) & _PAGE_MASK

    def free_many(self, ranges):
        """Free every (base, npages) of `ranges`, leaving the state free() on each in turn leaves.

        For a sweep's worth of spans: each touched chunk's bitmap, scavenge index
        entry and summary are updated once, then each touched entry above once
        per level. The batch is checked first (free's checks, and that no chunk
        would count fewer than zero pages in use), so a refused batch changes nothing.
        """
        chunks = self.chunks
        masks = {}  # chunk -> pages freed in it
        counts = {}  # chunk -> pages freed in it, counting repeats as Go does
        low = self.search_addr
        for base, npages in ranges:
            b = (base - ARENA_BASE_OFFSET) & _MASK64
            c, i = b >> _CHUNK_SHIFT, (b >> PAGE_SHIFT) & _PAGE_MASK
            if c in chunks and 0 < npages <= PALLOC_CHUNK_PAGES - i:
                masks[c] = masks.get(c, 0) | (((1 << npages) - 1) << i)
                counts[c] = counts.get(c, 0) + npages
            else:
                b, sc, ec, si, ei = self._free_extent(base, npages)
                for c in range(sc, ec + 1):
                    m = FULL >> si << si if c == sc else FULL
                    if c == ec:
                        m &= (1 << (ei + 1)) - 1
                    masks[c] = masks.get(c, 0) | m
                    counts[c] = counts.get(c, 0) + m.bit_count()
            if b < low:
                low = b
        for c, n in counts.items():
            if self._sc[c][0] < n:
                raise below_zero(c, self._sc[c][0], n)
        self.search_addr = low
        leaves = []
        for c, m in masks.items():
            chunk = chunks[c]
            chunk.bits &= ~m
            # One scavengeIndex.free for all of the chunk's frees: same counts, same top page.
            self._sc_free(c, m.bit_length() - counts[c], counts[c])
            leaves.append((c, summarize(chunk.bits)))
        self._set_leaves(leaves)
        for c, m in masks.items():
            # New runs start at or above the one holding the lowest page freed, and are
            # no longer than the longest run through the chunk.
            lo = (chunks[c].bits & ((m & -m) - 1)).bit_length()
            start = (c << _CHUNK_SHIFT) + (lo << PAGE_SHIFT)
            prev, cur, nxt = (self.summary_at(_LEAF, x) for x in (c - 1, c, c + 1))
            if lo == 0:
                start -= (prev >> (2 * LOG_MAX_PACKED_VALUE)) << PAGE_SHIFT
            self._lower_fit_lb(start, max(
                (cur >> LOG_MAX_PACKED_VALUE) & _SUM_FIELD,
                (prev >> (2 * LOG_MAX_PACKED_VALUE)) + (cur & _SUM_FIELD),
                (cur >> (2 * LOG_MAX_PACKED_VALUE)) + (nxt & _SUM_FIELD),
            ))

    # ---- scavenge index (scavengeIndex / scavChunkData) ----------------

    def _sc_alloc(self, ci, npages):
        """scavengeIndex.alloc."""
        d = self._sc[ci]
        if d[0] + npages > PALLOC_CHUNK_PAGES:
            raise too_many(ci, d[0], npages)
        if d[2] != self._sc_gen:
            d[1] = d[0]
            d[2] = self._sc_gen
        d[0] += npages
        if d[0] == PALLOC_CHUNK_PAGES:
            d[3] = False

    def _sc_free(self, ci, page, npages):
        """scavengeIndex.free: also raises the forced search address to the freed range."""
        d = self._sc[ci]
        if d[0] < npages:
            raise below_zero(ci, d[0], npages)
        if d[2] != self._sc_gen:
            d[1] = d[0]
            d[2] = self._sc_gen
        d[0] -= npages
        d[3] = True
        addr = (ci << _CHUNK_SHIFT) + ((page + npages - 1) << PAGE_SHIFT)
        if self._sc_free_hwm < addr:
            self._sc_free_hwm = addr
        if self._sc_search_force < addr:
            self._sc_search_force = addr

    def _sc_should_scavenge(self, d, force):
        """scavChunkData.shouldScavenge."""
        if not d[3]:
            return False
        if force:
            return True
        if d[2] == self._sc_gen:
            return d[0] < SCAV_CHUNK_HI_OCC_PAGES and d[1] < SCAV_CHUNK_HI_OCC_PAGES
        return d[0] < SCAV_CHUNK_HI_OCC_PAGES

    def _sc_find(self, force):
        """scavengeIndex.find -> (chunkIdx, searchIdx) or None."""
        sa = self._sc_search_force if force else self._sc_search_bg
        if sa == MIN_OFF_ADDR:
            return None
        start = sa >> _CHUNK_SHIFT
        grown = self._grown
        # Go walks every index down to minHeapIdx; never-grown chunks hold
        # zero data (not scavengeable), so walking only grown ones is the same.
        for k in range(bisect_right(grown, start) - 1, -1, -1):
            ci = grown[k]
            if not self._sc_should_scavenge(self._sc[ci], force):
                continue
            if ci == start:
                return ci, (sa >> PAGE_SHIFT) & _PAGE_MASK
            new_sa = (ci << _CHUNK_SHIFT) + PALLOC_CHUNK_BYTES - PAGE_SIZE
            if force:
                self._sc_search_force = new_sa
            else:
                self._sc_search_bg = new_sa
            return ci, PALLOC_CHUNK_PAGES - 1
        if force:
            self._sc_search_force = MIN_OFF_ADDR
        else:
            self._sc_search_bg = MIN_OFF_ADDR
        return None

    def next_gen(self):
        """scavengeIndex.nextGen: start a new GC generation for background scavenging."""
        self._sc_gen += 1
        if self._sc_search_bg < self._sc_free_hwm:
            self._sc_search_bg = self._sc_free_hwm
        self._sc_free_hwm = MIN_OFF_ADDR

    # ---- scavenge --------------------------------------------------------

    def scavenge(self, nbytes, force=True):
        """scavenge (shouldStop=nil): release free, unscavenged pages, highest first -> bytes released."""
        released = 0
        while released < nbytes:
            found = self._sc_find(force)
            if found is None:
                break
            released += self._scavenge_one(found[0], found[1], nbytes - released)
        return released

    def _scavenge_one(self, ci, search_idx, max_bytes):
        """scavengeOne: scavenge one candidate run in chunk ci -> bytes released."""
        max_pages = -(-max_bytes // PAGE_SIZE)
        min_pages = max(1, PHYS_PAGE_SIZE // PAGE_SIZE)
        leaf = self.summary[_LEAF][ci >> 3][ci & 7]
        if (leaf >> LOG_MAX_PACKED_VALUE) & _SUM_FIELD >= min_pages:
            chunk = self.chunks[ci]
            base, npages = chunk.find_scavenge_candidate(search_idx, min_pages, max_pages)
            if npages:
                addr = (ci << _CHUNK_SHIFT) + base * PAGE_SIZE
                if self.on_release is not None:
                    self.on_release(from_off(addr), npages * PAGE_SIZE)
                if addr < self.search_addr:
                    self.search_addr = addr
                chunk.scavenged |= range_mask(base, npages)
                return npages * PAGE_SIZE
        self._sc[ci][3] = False  # setEmpty
        return 0


def new_page_alloc(chunks, scav=None, impl=None, **hooks):
    """export_test.go NewPageAlloc: grow each chunk, set scav bits, then allocate.

    chunks and scav map absolute chunk indices to [(start, n), ...]. Go iterates
    the map in random order; the result does not depend on it, so this is ascending.
    impl: the class to build (PyPageAlloc or CPageAlloc); PageAlloc by default.
    """
    p = (impl or PageAlloc)(**hooks)
    for ci in sorted(chunks):
        p.grow(chunk_base(ci), PALLOC_CHUNK_BYTES)
        p.set_test_chunk(ci, chunks[ci], () if scav is None else scav.get(ci, ()))
    return p


def check_page_alloc(p):
    """Invariant check (in the spirit of checkPageAlloc) of either implementation, on its
    state(): every summary matches the bitmaps/children, searchAddr only skips allocated
    pages, index counts match bitmaps. For the model also its own search state: the kept
    maxes, cross parts and per-size bounds (_fit_lb)."""
    check_state(p.state())
    if isinstance(p, PyPageAlloc):
        _check_model(p)


def check_state(s):
    """check_page_alloc's checks of Go's state (a state() dict)."""
    chunks, sums = s["chunks"], s["summary"]
    grown = sorted(chunks)

    def mismatch(lvl, i, want, found):
        return InvariantError(
            f"summary level {lvl} index {i:#x}: expected {unpack_palloc_sum(want)}, found {unpack_palloc_sum(found)}")

    for ci in sorted(set(chunks) | set(sums[_LEAF])):
        want = summarize(chunks[ci][0]) if ci in chunks else 0
        if sums[_LEAF].get(ci, 0) != want:
            raise mismatch(_LEAF, ci, want, sums[_LEAF].get(ci, 0))
    for lvl in range(_LEAF - 1, -1, -1):
        children, log_max = sums[lvl + 1], LEVEL_LOG_PAGES[lvl + 1]
        for i in sorted({c >> SUMMARY_LEVEL_BITS for c in children} | set(sums[lvl])):
            want = merge_summaries([children.get((i << SUMMARY_LEVEL_BITS) + k, 0) for k in range(8)], log_max)
            if sums[lvl].get(i, 0) != want:
                raise mismatch(lvl, i, want, sums[lvl].get(i, 0))
    sa = s["search_addr"]
    if sa != MAX_OFF_ADDR:
        if not any(b <= sa < lim for b, lim in s["in_use"]):
            raise InvariantError(f"searchAddr {from_off(sa):#x} is not in inUse")
        sci, spi = sa >> _CHUNK_SHIFT, (sa >> PAGE_SHIFT) & _PAGE_MASK
        for ci in grown:
            if ci > sci:
                break
            need = FULL if ci < sci else (1 << spi) - 1
            if chunks[ci][0] & need != need:
                raise InvariantError(f"searchAddr {from_off(sa):#x} is above free pages in chunk {ci:#x}")
    for ci in grown:
        found, pop = s["scav_chunks"][ci][0], chunks[ci][0].bit_count()
        if found != pop:
            raise InvariantError(f"scavenge index chunk {ci:#x}: expected inUse {pop}, found {found}")
    if grown and s["bounds"] != (grown[0], grown[-1] + 1):
        raise InvariantError(f"bounds: expected {(grown[0], grown[-1] + 1)}, found {s['bounds']}")


def _check_model(p):
    """The model's own search state: kept maxes and cross parts, per-size bounds."""
    for lvl in range(_LEAF - 1, -1, -1):
        children, log_max = p.summary[lvl + 1], LEVEL_LOG_PAGES[lvl + 1]
        for blk, entries in p.summary[lvl].items():
            for k in range(len(entries)):
                i = (blk << LEVEL_BITS[lvl]) | k
                kids = children.get(i)
                if kids is not None and p._max[lvl + 1][i][8] != merge_block(kids, log_max)[2]:
                    raise InvariantError(f"summary level {lvl} index {i:#x}: kept cross {p._max[lvl + 1][i][8]}, "
                                         f"expected {merge_block(kids, log_max)[2]}")
    for lvl in range(SUMMARY_LEVELS):
        for blk, entries in p.summary[lvl].items():
            maxes = [unpack_palloc_sum(s)[1] for s in entries]
            if p._max[lvl][blk][: len(maxes)] != maxes:
                raise InvariantError(f"summary level {lvl} block {blk:#x}: kept maxes {p._max[lvl][blk]}, summaries say {maxes}")
    lb = p._fit_lb
    if any(lb[n] > lb[n + 1] for n in range(1, _FIT_LB_MAX)):
        raise InvariantError(f"per-size bounds decrease: {lb[1:]}")
    # Free runs in address order, joined across adjacent chunks; the first one of
    # at least n pages is the first fit of n, which lb[n] must not pass.
    runs = []
    for ci in p._grown:
        for s, n in bits_to_ranges(~p.chunks[ci].bits & FULL):
            a = (ci << _CHUNK_SHIFT) + (s << PAGE_SHIFT)
            if runs and runs[-1][1] == a:
                runs[-1][1] = a + (n << PAGE_SHIFT)
            else:
                runs.append([a, a + (n << PAGE_SHIFT)])
    longest = 0
    for a, e in runs:
        length = min((e - a) >> PAGE_SHIFT, _FIT_LB_MAX)
        for m in range(longest + 1, length + 1):
            if lb[m] > a:
                raise InvariantError(f"per-size bound for {m} pages {lb[m]:#x} is above its first fit {a:#x}")
        longest = max(longest, length)


# ---- reference vectors (tests/data/README.md, section B) --------------------

FIND_SCAVENGE_CANDIDATE_TEST = "TestPallocDataFindScavengeCandidate"
_GROW_TEST = "TestPageAllocGrow"
_MAX_UINTPTR = _MASK64
# Chunks relative to BaseChunkIdx that lie in the 48-bit offset address space.
_MIN_REL_CHUNK = -BASE_CHUNK_IDX
_MAX_REL_CHUNK = (1 << (HEAP_ADDR_BITS - LOG_PALLOC_CHUNK_BYTES)) - 1 - BASE_CHUNK_IDX
# The environment the model follows (what each vector's "constants" must say).
VECTOR_CONSTANTS = {
    "PallocChunkPages": PALLOC_CHUNK_PAGES,
    "PageSize": PAGE_SIZE,
    "PallocChunkBytes": PALLOC_CHUNK_BYTES,
    "PhysPageSize": PHYS_PAGE_SIZE,
    "PhysHugePageSize": PHYS_HUGE_PAGE_SIZE,
    "PallocSumBytes": 8,
    "PageAlloc64Bit": 1,
    "BaseChunkIdx": BASE_CHUNK_IDX,
    "BaseChunkAddr": BASE_CHUNK_ADDR,
}


def _show(v, limit=60):
    s = json.dumps(v, separators=(",", ":"))
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _bad(path, need, v):
    return BadInput(f"pagealloc vector: field {path!r} must be {need}, got {_show(v)}")


def _get(obj, key, path="", optional=False):
    """obj[key] and its path ('ops[3].npages'); BadInput if obj is no object or key is missing."""
    p = f"{path}.{key}" if path else key
    if not isinstance(obj, dict):
        raise _bad(path or "(top level)", "an object", obj)
    if key not in obj:
        if optional:
            return None, p
        raise BadInput(f"pagealloc vector: missing field {p!r}")
    return obj[key], p


def _int(v, path, lo, hi, need):
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _bad(path, need, v)
    return v


def _list(v, path, need):
    if not isinstance(v, list):
        raise _bad(path, need, v)
    return v


def _check_ranges(v, path, disjoint):
    """[[start, npages], ...] inside one chunk; ascending and disjoint where the format says so."""
    need = f"a [start, npages] pair of integers with start + npages <= {PALLOC_CHUNK_PAGES}"
    prev_end = 0
    for k, r in enumerate(_list(v, path, "a list of [start, npages] pairs")):
        q = f"{path}[{k}]"
        if not (isinstance(r, list) and len(r) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in r)
                and 0 <= r[0] and 0 <= r[1] and r[0] + r[1] <= PALLOC_CHUNK_PAGES):
            raise _bad(q, need, r)
        if disjoint and r[1]:
            if r[0] < prev_end:
                raise _bad(q, "a range above the one before it (ranges ascend and do not overlap)", r)
            prev_end = r[0] + r[1]
    return v


def _check_chunk(v, path):
    return _int(v, path, _MIN_REL_CHUNK, _MAX_REL_CHUNK, "a chunk index (relative to BaseChunkIdx) in the 48-bit heap")


def _check_addr(v, path):
    """{"chunk", "page", "offset"} (offset alone suffices) -> the byte offset from BaseChunkAddr."""
    if not isinstance(v, dict):
        raise _bad(path, "an address object {chunk, page, offset}", v)
    offset, _ = _get(v, "offset", path, optional=True)
    if offset is None:
        chunk, p = _get(v, "chunk", path)
        _check_chunk(chunk, p)
        page, p = _get(v, "page", path)
        _int(page, p, 0, PALLOC_CHUNK_PAGES - 1, f"a page index in 0..{PALLOC_CHUNK_PAGES - 1}")
        return chunk * PALLOC_CHUNK_BYTES + page * PAGE_SIZE
    lo = _MIN_REL_CHUNK * PALLOC_CHUNK_BYTES
    _int(offset, path + ".offset", lo, (_MAX_REL_CHUNK + 1) * PALLOC_CHUNK_BYTES - PAGE_SIZE,
         "a byte offset from BaseChunkAddr inside the 48-bit heap")
    if offset % PAGE_SIZE:
        raise _bad(path + ".offset", f"a multiple of the page size {PAGE_SIZE}", offset)
    for key, want in (("chunk", offset // PALLOC_CHUNK_BYTES), ("page", offset % PALLOC_CHUNK_BYTES // PAGE_SIZE)):
        if key in v and v[key] != want:
            raise _bad(f"{path}.{key}", f"{want} (as its offset {offset} says)", v[key])
    return offset


def _check_state(v, path, grown=None):
    """A list of {"chunk", "alloc", "scavenged"}, one entry per chunk (and only grown ones)."""
    seen = set()
    for k, st in enumerate(_list(v, path, "a list of chunk states")):
        q = f"{path}[{k}]"
        c, p = _get(st, "chunk", q)
        _check_chunk(c, p)
        if c in seen:
            raise _bad(p, "a chunk listed once", c)
        if grown is not None and c not in grown:
            raise _bad(p, "one of the vector's 'chunks'", c)
        seen.add(c)
        for key in ("alloc", "scavenged"):
            r, p = _get(st, key, q)
            _check_ranges(r, p, disjoint=True)


def _check_table(v, path):
    """A declared test table: null, or a list of {"chunk", "ranges"}."""
    if v is None:
        return
    for k, d in enumerate(_list(v, path, "null or a list of {chunk, ranges}")):
        c, p = _get(d, "chunk", f"{path}[{k}]")
        _check_chunk(c, p)
        r, p = _get(d, "ranges", f"{path}[{k}]")
        _check_ranges(r, p, disjoint=False)


def _check_bool(vector, key):
    v, p = _get(vector, key, optional=True)
    if v is not None and not isinstance(v, bool):
        raise _bad(p, "true or false", v)


def validate_vector(vector):
    """Check every field of a vector (tests/data/README.md, section B); BadInput names the first bad one.

    Inputs must be replayable: ranges inside their chunk and disjoint, ops on grown
    chunks, Go's value ranges (uintptr counts, findScavengeCandidate's min). Recorded
    results, when present, must have the shape `compare` reads.
    """
    if not isinstance(vector, dict):
        raise BadInput("pagealloc vector: the top level must be an object")
    test, p = _get(vector, "test")
    if not isinstance(test, str):
        raise _bad(p, "a test name", test)
    case, p = _get(vector, "case", optional=True)
    if case is not None and not isinstance(case, str):
        raise _bad(p, "a case name", case)
    consts, p = _get(vector, "constants", optional=True)
    if consts is not None:
        if not isinstance(consts, dict):
            raise _bad(p, "an object", consts)
        for key, want in VECTOR_CONSTANTS.items():
            if key in consts and consts[key] != want:
                raise BadInput(f"pagealloc vector: field 'constants.{key}' is {_show(consts[key])}, but the model "
                               f"follows Go 1.27 on linux/amd64, where it is {want}")
    if test == FIND_SCAVENGE_CANDIDATE_TEST:
        state, p = _get(vector, "state")
        for key in ("alloc", "scavenged"):
            r, q = _get(state, key, p)
            _check_ranges(r, q, disjoint=True)
        for key in ("declared_alloc", "declared_scavenged"):
            r, q = _get(vector, key, optional=True)
            if r is not None:
                _check_ranges(r, q, disjoint=False)
        v, q = _get(vector, "search_idx")
        _int(v, q, 0, PALLOC_CHUNK_PAGES - 1, f"a page index in 0..{PALLOC_CHUNK_PAGES - 1}")
        v, q = _get(vector, "min")
        if _int(v, q, 1, MAX_PAGES_PER_PHYS_PAGE, f"a power of two in 1..{MAX_PAGES_PER_PHYS_PAGE}") & (v - 1):
            raise _bad(q, f"a power of two in 1..{MAX_PAGES_PER_PHYS_PAGE}", v)
        v, q = _get(vector, "max")
        _int(v, q, 0, _MAX_UINTPTR, "a page count (uintptr)")
        for key in ("got", "want"):
            r, q = _get(vector, key, optional=True)
            if r is not None:
                s, q2 = _get(r, "start", q)
                _int(s, q2, 0, PALLOC_CHUNK_PAGES - 1, f"a page index in 0..{PALLOC_CHUNK_PAGES - 1}")
                n, q2 = _get(r, "npages", q)
                _int(n, q2, 0, PALLOC_CHUNK_PAGES, f"a page count in 0..{PALLOC_CHUNK_PAGES}")
        return

    chunks, p = _get(vector, "chunks")
    _list(chunks, p, "a list of chunk indices")
    for k, c in enumerate(chunks):
        _check_chunk(c, f"chunks[{k}]")
    grown = sorted(set(chunks))
    if len(grown) != len(chunks):
        raise _bad("chunks", "a list of distinct chunks", chunks)
    initial, p = _get(vector, "initial_state")
    _check_state(initial, p, set(grown))
    for key in ("declared_initial_alloc", "declared_initial_scav", "declared_final_alloc", "declared_final_scav"):
        v, q = _get(vector, key, optional=True)
        _check_table(v, q)
    final, p = _get(vector, "final_state", optional=True)
    if final is not None:
        _check_state(final, p)
    in_use, p = _get(vector, "in_use", optional=True)
    if in_use is not None:
        for k, r in enumerate(_list(in_use, p, "a list of {base, limit}")):
            for key in ("base", "limit"):
                _check_addr(*_get(r, key, f"{p}[{k}]"))
    _check_bool(vector, "final_state_checked_by_test")
    _check_bool(vector, "in_use_checked_by_test")
    ops, p = _get(vector, "ops")
    for k, op in enumerate(_list(ops, p, "a list of ops")):
        where = f"ops[{k}]"
        kind, q = _get(op, "op", where)
        if kind == "alloc":
            _int(*_get(op, "npages", where), 1, _MAX_UINTPTR, "a positive page count (uintptr)")
            r, q = _get(op, "result", where, optional=True)
            if r is not None:
                _check_addr(r, q)
            v, q = _get(op, "scav_bytes", where, optional=True)
            if v is not None:
                _int(v, q, 0, _MAX_UINTPTR, "a byte count (uintptr)")
        elif kind == "free":
            a, q = _get(op, "addr", where)
            offset = _check_addr(a, q)
            n, q = _get(op, "npages", where)
            _int(n, q, 1, _MAX_UINTPTR, "a positive page count (uintptr)")
            first, last = offset // PALLOC_CHUNK_BYTES, (offset + n * PAGE_SIZE - 1) // PALLOC_CHUNK_BYTES
            if bisect_right(grown, last) - bisect_left(grown, first) != last - first + 1:
                raise BadInput(f"pagealloc vector: {where} frees {n} pages at offset {offset}, "
                               f"which reach beyond the grown chunks {_show(grown)}")
        elif kind == "scavenge":
            _int(*_get(op, "nbytes", where), 0, _MAX_UINTPTR, "a byte count (uintptr)")
            v, q = _get(op, "released", where, optional=True)
            if v is not None:
                _int(v, q, 0, _MAX_UINTPTR, "a byte count (uintptr)")
        else:
            raise _bad(q, '"alloc", "free" or "scavenge"', kind)
        checked, q = _get(op, "checked", where, optional=True)
        if checked is not None and not (isinstance(checked, list) and all(isinstance(c, str) for c in checked)):
            raise _bad(q, "a list of field names", checked)


def encode_addr(addr):
    """Virtual address -> {"chunk", "page", "offset"} relative to BaseChunkAddr; 0 -> None."""
    if addr == 0:
        return None
    o = to_off(addr) - to_off(BASE_CHUNK_ADDR)
    return {"chunk": o // PALLOC_CHUNK_BYTES, "page": o % PALLOC_CHUNK_BYTES // PAGE_SIZE, "offset": o}


def _state(p):
    return [{"chunk": ci - BASE_CHUNK_IDX, "alloc": bits_to_ranges(bits), "scavenged": bits_to_ranges(scav)}
            for ci, (bits, scav) in sorted(p.state()["chunks"].items())]


def replay(vector, impl=None):
    """Run one reference vector from its inputs only; return the values it records.

    impl: the implementation to run it on (PyPageAlloc or CPageAlloc), PageAlloc by
    default. The vector is validated first (BadInput names the field). A model invariant
    an op breaks (freeing free pages, say) is an InvariantError naming the op.
    """
    validate_vector(vector)
    impl = impl or PageAlloc
    if vector["test"] == FIND_SCAVENGE_CANDIDATE_TEST:
        state = vector["state"]
        d = PallocData()
        for s, n in state["alloc"]:
            if n:
                d.alloc_range(s, n)
        for s, n in state["scavenged"]:
            if n:
                d.scavenged_set_range(s, n)
        start, npages = impl.find_scavenge_candidate(d.bits, d.scavenged, vector["search_idx"], vector["min"],
                                                     vector["max"])
        return {"got": {"start": start, "npages": npages}}

    alloc_map = {BASE_CHUNK_IDX + c: [] for c in vector["chunks"]}
    scav_map = {}
    for st in vector["initial_state"]:
        ci = BASE_CHUNK_IDX + st["chunk"]
        alloc_map[ci] = st["alloc"]
        scav_map[ci] = st["scavenged"]
    p = new_page_alloc(alloc_map, scav_map, impl=impl)
    base = to_off(BASE_CHUNK_ADDR)
    out_ops = []
    for k, op in enumerate(vector["ops"]):
        kind = op["op"]
        try:
            if kind == "alloc":
                addr, scav = p.alloc(op["npages"])
                out_ops.append({"op": "alloc", "npages": op["npages"], "result": encode_addr(addr), "scav_bytes": scav})
            elif kind == "free":
                p.free(from_off(base + _check_addr(op["addr"], "addr")), op["npages"])
                out_ops.append({"op": "free", "addr": op["addr"], "npages": op["npages"]})
            else:
                released = p.scavenge(op["nbytes"], force=True)
                out_ops.append({"op": "scavenge", "nbytes": op["nbytes"], "released": released})
        except InvariantError as e:
            raise InvariantError(f"pagealloc vector: ops[{k}] ({kind}): {e}") from e
    result = {"ops": out_ops, "final_state": _state(p)}
    if vector["test"] == _GROW_TEST:
        result["in_use"] = [{"base": encode_addr(b), "limit": encode_addr(l)} for b, l in p.in_use_ranges()]
    return result


def compare(vector, result):
    """Mismatches between a vector's recorded values and replay's result (empty = pass)."""
    bad = []
    if "got" in vector:
        got = result.get("got")
        if got != vector["got"]:
            bad.append(f"got: {_show(got)}, recorded {_show(vector['got'])}")
        want = vector.get("want")
        if want is not None and got is not None:
            if not (got["npages"] == 0 and want["npages"] == 0) and got != want:
                bad.append(f"got {_show(got)} does not match the test's want {_show(want)}")
    if "ops" in vector:
        rops = result.get("ops", [])
        if len(rops) != len(vector["ops"]):
            bad.append(f"ops: {len(rops)} replayed, {len(vector['ops'])} recorded")
        for k, (vop, rop) in enumerate(zip(vector["ops"], rops)):
            for key in ("result", "scav_bytes", "released"):
                if key in vop and rop.get(key) != vop[key]:
                    args = vop.get("npages", vop.get("nbytes"))
                    bad.append(f"ops[{k}] {vop.get('op')}({args}) {key}: {_show(rop.get(key))}, recorded {_show(vop[key])}")
    for key in ("final_state", "in_use"):
        if key in vector and result.get(key) != vector[key]:
            bad.append(f"{key}: {_show(result.get(key), 200)}, recorded {_show(vector[key], 200)}")
    return bad


# ---- the running implementation ------------------------------------------------

from runtime_model.cpagealloc import CPageAlloc, core_unavailable  # noqa: E402  (it imports nothing from here)

# GOMEMU_PAGEALLOC=python: run the reference model (to compare, e.g. bench/state_digest.py).
if os.environ.get("GOMEMU_PAGEALLOC") == "python":
    PageAlloc = PyPageAlloc
elif core_unavailable() is None:
    PageAlloc = CPageAlloc
else:
    PageAlloc = PyPageAlloc
    print(f"gomemu: page allocator: running the Python reference model (slower), its C core is unavailable: "
          f"{core_unavailable()}", file=sys.stderr)
