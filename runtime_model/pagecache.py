"""Go 1.27's per-P page cache (runtime/mpagecache.go).

A pageCache owns one 64-page aligned block (512 KiB) of the heap that
pageAlloc.allocToCache handed out. Its `cache` bitmap says which of those
pages are still free (1 = free) and `scav` which are scavenged (1 =
scavenged). In the page allocator the whole block counts as allocated, so a P
can serve small span allocations (mheap.allocSpan uses it for
npages < pageCachePages/4 = 16 when no physical-page alignment is needed)
without taking the heap lock. `flush` gives the free pages back, e.g. when a P
is destroyed.

PageAlloc.alloc_to_cache (runtime_model/pagealloc.py) builds these, and
PageAlloc.free_page_cache takes flushed pages back; both implementations of the
page allocator (the Python model and the C core) have them.
"""

from emu.errors import BadInput
from runtime_model.pallocbits import PAGE_SIZE, find_bit_range64

# mpagecache.go: pageCachePages = 8 * sizeof(pageCache.cache)
PAGE_CACHE_PAGES = 64
_MASK64 = (1 << 64) - 1


class PageCache:
    """pageCache: base address, free bitmap `cache` and scavenged bitmap `scav` (uint64s)."""

    __slots__ = ("base", "cache", "scav")

    def __init__(self, base=0, cache=0, scav=0):
        # export_test.go NewPageCache takes the three fields as they are.
        self.base = base
        self.cache = cache & _MASK64
        self.scav = scav & _MASK64

    def __repr__(self):
        return f"PageCache(base={self.base:#x}, cache={self.cache:#018x}, scav={self.scav:#018x})"

    def __eq__(self, other):
        if not isinstance(other, PageCache):
            return NotImplemented
        return (self.base, self.cache, self.scav) == (other.base, other.cache, other.scav)

    __hash__ = None

    def empty(self):
        """pageCache.empty: no free pages left."""
        return self.cache == 0

    def alloc(self, npages):
        """pageCache.alloc -> (addr, scavenged bytes); addr 0 if the cache can't satisfy it."""
        if npages <= 0:
            raise BadInput(f"pageCache.alloc: npages must be positive, got {npages}")
        c = self.cache
        if c == 0:
            return 0, 0
        if npages == 1:
            # The common case (one-page spans): take the lowest free page, bit `low`.
            low = c & -c
            self.cache = c ^ low
            scav = self.scav
            if scav & low:
                self.scav = scav ^ low
                scav = PAGE_SIZE
            else:
                scav = 0
            return self.base + (low.bit_length() - 1) * PAGE_SIZE, scav
        return self._alloc_n(npages)

    def _alloc_n(self, npages):
        """pageCache.allocN: first run of npages free pages in the cache."""
        if npages <= 64 and self.cache.bit_count() < npages:
            return 0, 0         # fewer free pages than asked: findBitRange64 finds no run
        i = find_bit_range64(self.cache, npages)
        if i >= 64:
            return 0, 0
        # uint64 arithmetic as in Go: 1 << npages is 0 for npages >= 64, so the
        # mask becomes all ones (only reachable for npages >= 64; see find_bit_range64).
        mask = ((((1 << npages) & _MASK64) - 1) & _MASK64) << i & _MASK64
        scav = (self.scav & mask).bit_count()
        self.cache &= ~mask
        self.scav &= ~mask
        return self.base + i * PAGE_SIZE, scav * PAGE_SIZE

    def flush(self, pa):
        """pageCache.flush: give every free page back to the page allocator pa (its
        free_page_cache does the work on the allocator), then empty the cache."""
        if self.cache == 0:
            return
        pa.free_page_cache(self.base, self.cache, self.scav)
        self.base = self.cache = self.scav = 0
