"""Bit-level helpers of Go 1.27's page allocator (models runtime/mpallocbits.go
and the per-chunk part of runtime/mgcscavenge.go).

Design: Go stores a chunk's bitmaps as 8 uint64 words. Here each bitmap is one
Python int of 512 bits (bit i = page i), so runs of pages are found with a few
whole-bitmap shifts and masks instead of word loops. Where Go's word-by-word
code has boundary rules (findSmallN/findLargeN start at the 64-bit word that
holds searchIdx; findScavengeCandidate scans downwards from the word holding
searchIdx), the int code reproduces them exactly.
"""

from emu.errors import BadInput

# mpagealloc.go: logPallocChunkPages (64-bit, not Wasm)
LOG_PALLOC_CHUNK_PAGES = 9
# mpagealloc.go: pallocChunkPages
PALLOC_CHUNK_PAGES = 1 << LOG_PALLOC_CHUNK_PAGES
# internal/runtime/gc: PageShift / PageSize
PAGE_SHIFT = 13
PAGE_SIZE = 1 << PAGE_SHIFT
# mpagealloc.go: pallocChunkBytes
PALLOC_CHUNK_BYTES = PALLOC_CHUNK_PAGES * PAGE_SIZE
# Environment of the reference dump (linux/amd64): physPageSize, physHugePageSize.
PHYS_PAGE_SIZE = 4096
PHYS_HUGE_PAGE_SIZE = 2 << 20
# mheap.go: maxPhysPageSize; mgcscavenge.go: maxPagesPerPhysPage
MAX_PHYS_PAGE_SIZE = 512 << 10
MAX_PAGES_PER_PHYS_PAGE = MAX_PHYS_PAGE_SIZE // PAGE_SIZE

# mpagealloc.go: summaryLevels (mpagealloc_64bit.go) and summaryLevelBits
SUMMARY_LEVELS = 5
SUMMARY_LEVEL_BITS = 3
# mpagealloc.go: logMaxPackedValue, maxPackedValue
LOG_MAX_PACKED_VALUE = LOG_PALLOC_CHUNK_PAGES + (SUMMARY_LEVELS - 1) * SUMMARY_LEVEL_BITS
MAX_PACKED_VALUE = 1 << LOG_MAX_PACKED_VALUE
_PACK_MASK = MAX_PACKED_VALUE - 1
# Bit 63 alone encodes start = max = end = maxPackedValue (pallocSum).
_SUM_ALL_MAX = 1 << 63

FULL = (1 << PALLOC_CHUNK_PAGES) - 1  # all 512 bits set


def pack_palloc_sum(start, max_, end):
    """packPallocSum: three 21-bit counts in one uint64, or bit 63 for the all-max case."""
    if max_ == MAX_PACKED_VALUE:
        return _SUM_ALL_MAX
    return (start & _PACK_MASK) | ((max_ & _PACK_MASK) << LOG_MAX_PACKED_VALUE) | (
        (end & _PACK_MASK) << (2 * LOG_MAX_PACKED_VALUE)
    )


def unpack_palloc_sum(s):
    """pallocSum.unpack -> (start, max, end)."""
    if s & _SUM_ALL_MAX:
        return MAX_PACKED_VALUE, MAX_PACKED_VALUE, MAX_PACKED_VALUE
    return s & _PACK_MASK, (s >> LOG_MAX_PACKED_VALUE) & _PACK_MASK, (s >> (2 * LOG_MAX_PACKED_VALUE)) & _PACK_MASK


# mpagealloc.go: freeChunkSum
FREE_CHUNK_SUM = pack_palloc_sum(PALLOC_CHUNK_PAGES, PALLOC_CHUNK_PAGES, PALLOC_CHUNK_PAGES)
# Summary of a wholly free region of 1 << log pages, for each level's log (merge fast path).
_FREE_SUM_OF_LOG = {log: pack_palloc_sum(1 << log, 1 << log, 1 << log) for log in range(LOG_MAX_PACKED_VALUE + 1)}


def merge_summaries(sums, log_max_pages_per_sum):
    """mergeSummaries: fold consecutive child summaries into their parent's."""
    return merge_block(sums, log_max_pages_per_sum)[0]


def merge_block(sums, log_max_pages_per_sum):
    """mergeSummaries -> (packed parent, its max, its `cross` part).

    The parent's max is the larger of its children's maxes and `cross`, the
    longest run Go's merge assembles from children's ends and starts. `cross`
    depends only on the children's start and end fields, so while those stay
    put a child's new max updates the parent without a merge (PageAlloc keeps
    each entry's max and cross beside its summary for that).
    """
    full = 1 << log_max_pages_per_sum
    free_child = _FREE_SUM_OF_LOG[log_max_pages_per_sum]
    start = end = cross = inner = 0
    lead = True  # every child so far was wholly free, so start still grows
    for s in sums:
        if s == 0:
            # Fully allocated child (the common case in a full heap).
            if end > cross:
                cross = end
            end = 0
            lead = False
        elif s == free_child:
            if lead:
                start += full
            end += full
            if end > cross:
                cross = end
        else:
            if s & _SUM_ALL_MAX:
                si = mi = ei = MAX_PACKED_VALUE
            else:
                si, mi, ei = s & _PACK_MASK, (s >> LOG_MAX_PACKED_VALUE) & _PACK_MASK, s >> (2 * LOG_MAX_PACKED_VALUE)
            if lead:
                start += si
                # A partly used child ends the all-free prefix (si == full only for the all-max sum).
                lead = si == full
            if end + si > cross:
                cross = end + si
            if mi > inner:
                inner = mi
            end = end + full if ei == full else ei
    most = cross if cross > inner else inner
    if most == MAX_PACKED_VALUE:
        return _SUM_ALL_MAX, most, cross
    return start | (most << LOG_MAX_PACKED_VALUE) | (end << (2 * LOG_MAX_PACKED_VALUE)), most, cross


def max_run(free):
    """Length of the longest run of set bits in `free` (doubling, then binary refinement)."""
    if not free:
        return 0
    steps = []
    t, k = free, 1
    while True:
        t2 = t & (t >> k)
        if not t2:
            break
        steps.append((k, t))
        t, k = t2, k << 1
    # t marks starts of runs of length >= k; add smaller powers greedily.
    length = k
    for kk, tk in reversed(steps):
        cand = t & (tk >> length)
        if cand:
            t = cand
            length += kk
    return length


def summarize(bits):
    """pallocBits.summarize: packed (start, max, end) of the free (0) runs of a chunk."""
    if not bits:
        return FREE_CHUNK_SUM
    if bits == FULL:
        return 0
    start = (bits & -bits).bit_length() - 1
    end = PALLOC_CHUNK_PAGES - bits.bit_length()
    most = max_run(~bits & FULL)
    return start | (most << LOG_MAX_PACKED_VALUE) | (end << (2 * LOG_MAX_PACKED_VALUE))


def find_run(free, n):
    """Mask of positions where n consecutive set bits of `free` begin (findBitRange64's shrink)."""
    p, k = n - 1, 1
    while p > 0:
        if p <= k:
            return free & (free >> p)
        free &= free >> k
        if not free:
            return 0
        p -= k
        k <<= 1
    return free


def find_bit_range64(c, n):
    """findBitRange64: index of the first run of n set bits in the uint64 c, or >= 64 if none.

    Same top-down shrinking as find_run, on one word; the lowest surviving bit is
    the run's true start because runs lose bits from their top only. Shift
    counts are taken mod 64 as in Go's `c >> (k & 63)`, so n > 64 behaves as in
    Go (e.g. n = 128 on an all-ones word yields 0, not "none").
    """
    c &= 0xFFFFFFFFFFFFFFFF
    p, k = n - 1, 1
    while p > 0:
        if p <= k:
            c &= c >> (p & 63)
            break
        c &= c >> (k & 63)
        if not c:
            return 64
        p -= k
        k <<= 1
    if not c:
        return 64  # TrailingZeros64(0)
    return (c & -c).bit_length() - 1


def block64(b, i):
    """pageBits.block64: the 64-bit aligned word of bitmap b holding bit i."""
    return (b >> (i & ~63)) & 0xFFFFFFFFFFFFFFFF


def set_block64(b, i, v):
    """pageBits.setBlock64: b with the bits of v set in the word holding bit i."""
    return b | (v << (i & ~63))


def clear_block64(b, i, v):
    """pageBits.clearBlock64: b with the bits of v cleared in the word holding bit i."""
    return b & ~(v << (i & ~63))


def palloc_find(bits, npages, search_idx):
    """pallocBits.find (find1/findSmallN/findLargeN): first fit of npages free pages.

    Go starts scanning at the 64-bit word holding search_idx and never joins a run
    with pages below that word. Returns (index, new_search_idx) or (None, None).
    """
    free = ~bits & FULL
    w0 = search_idx & ~63
    if w0:
        free = (free >> w0) << w0
    if not free:
        return None, None
    first = (free & -free).bit_length() - 1
    if npages == 1:
        return first, first
    c = find_run(free, npages)
    if not c:
        return None, None
    return (c & -c).bit_length() - 1, first


def range_mask(i, n):
    """Bits [i, i+n) set."""
    return ((1 << n) - 1) << i


def ranges_to_bits(ranges):
    """[[start, n], ...] -> bitmap int (setRange for each non-empty range)."""
    b = 0
    for s, n in ranges:
        if n:
            b |= range_mask(s, n)
    return b


def bits_to_ranges(b):
    """Bitmap int -> maximal runs of set bits as [[start, n], ...], ascending."""
    out = []
    while b:
        s = (b & -b).bit_length() - 1
        run = ~(b >> s)
        n = (run & -run).bit_length() - 1
        out.append([s, n])
        b &= ~range_mask(s, n)
    return out


# mgcscavenge.go: fillAligned's per-m constants, replicated over 512 bits.
def _rep(word):
    return sum(word << (64 * i) for i in range(PALLOC_CHUNK_PAGES // 64))


_FILL_CONST = {
    2: _rep(0x5555555555555555),
    4: _rep(0x7777777777777777),
    8: _rep(0x7F7F7F7F7F7F7F7F),
    16: _rep(0x7FFF7FFF7FFF7FFF),
    32: _rep(0x7FFFFFFF7FFFFFFF),
    64: _rep(0x7FFFFFFFFFFFFFFF),
}


def fill_aligned(x, m, width=PALLOC_CHUNK_PAGES):
    """fillAligned: every m-aligned group of m bits with any bit set becomes all ones.

    Works on a whole 512-bit bitmap at once; groups never cross 64-bit words, so
    this equals applying Go's uint64 version word by word. Pass width=64 to
    check a single word.
    """
    if m == 1:
        return x
    c = _FILL_CONST.get(m)
    if c is None:
        raise BadInput(f"fillAligned: bad m value {m}")
    full = (1 << width) - 1
    c &= full
    # Top bit of each group set iff the group was all zero.
    x = ~((((x & c) + c) | x) | c) & full
    return ~((x - (x >> (m - 1))) | x) & full


class PallocData:
    """pallocData: one chunk's allocation bitmap (1 = in use) and scavenged bitmap."""

    __slots__ = ("bits", "scavenged")

    def __init__(self, bits=0, scavenged=0):
        self.bits = bits
        self.scavenged = scavenged

    def alloc_range(self, i, n):
        """pallocData.allocRange: allocating clears the scavenged bits."""
        m = range_mask(i, n)
        self.bits |= m
        self.scavenged &= ~m

    def scavenged_set_range(self, i, n):
        self.scavenged |= range_mask(i, n)

    def pages64(self, i):
        """pallocBits.pages64: in-use bits of the 64-page aligned block holding page i."""
        return block64(self.bits, i)

    def alloc_pages64(self, i, alloc):
        """pallocBits.allocPages64: mark the pages set in `alloc` (block of page i) in use.

        Unlike alloc_range this leaves the scavenged bits alone; allocToCache
        clears them itself, and only for pages that were free.
        """
        self.bits = set_block64(self.bits, i, alloc)

    def free1(self, i):
        """pallocBits.free1."""
        self.bits &= ~(1 << i)

    def find_scavenge_candidate(self, search_idx, minimum, max_):
        """pallocData.findScavengeCandidate -> (start, npages); npages == 0 if none.

        Highest run of free, unscavenged pages at or below the 64-bit word holding
        search_idx, at least `minimum` pages and `minimum`-aligned, cut to
        alignUp(max_, minimum) pages from the top, then widened down to a huge
        page boundary if that keeps a free-and-unscavenged huge page whole.
        """
        if minimum <= 0 or minimum & (minimum - 1):
            raise BadInput(f"findScavengeCandidate: min must be a non-zero power of 2, got {minimum}")
        if minimum > MAX_PAGES_PER_PHYS_PAGE:
            raise BadInput(f"findScavengeCandidate: min too large: {minimum}")
        max_ = minimum if max_ == 0 else -(-max_ // minimum) * minimum
        # 1 = candidate page (free, unscavenged, in a fully candidate min-group).
        cand = ~fill_aligned(self.scavenged | self.bits, minimum) & FULL
        top = (search_idx // 64 + 1) * 64
        above = cand >> top << top
        y = cand ^ above
        if not y:
            return 0, 0
        end = y.bit_length()
        # The run extends down until the highest non-candidate page below it.
        low = (~cand & ((1 << (end - 1)) - 1)).bit_length()
        run = end - low
        size = min(run, max_)
        start = end - size
        if PHYS_HUGE_PAGE_SIZE > PAGE_SIZE and PHYS_HUGE_PAGE_SIZE > PHYS_PAGE_SIZE:
            pages_per_huge = PHYS_HUGE_PAGE_SIZE // PAGE_SIZE
            huge_above = -(-start // pages_per_huge) * pages_per_huge
            if huge_above <= end:
                huge_below = start // pages_per_huge * pages_per_huge
                if huge_below >= end - run:
                    size += start - huge_below
                    start = huge_below
        return start, size
