"""Tests of runtime_model.pagecache (Go's mpagecache.go) and PageAlloc.alloc_to_cache.

Part (a) ports the tables of Go 1.27's runtime/mpagecache_test.go
(TestPageCacheAlloc, TestPageCacheFlush, TestPageAllocAllocToCache); the
expected values are Go's, written as the Go test states them. Part (b) are
property tests of our own. Whatever involves the page allocator runs on both of its
implementations (`impl`: the Python reference model and the C core).
"""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime_model.pagealloc import (
    BASE_CHUNK_IDX,
    MAX_OFF_ADDR,
    PAGE_SIZE,
    PALLOC_CHUNK_BYTES,
    check_page_alloc,
    chunk_base,
    from_off,
    new_page_alloc,
    page_base,
    to_off,
)
from runtime_model.pagecache import PAGE_CACHE_PAGES, PageCache
from runtime_model.pallocbits import PALLOC_CHUNK_PAGES, block64, clear_block64, find_bit_range64, set_block64

from tests.pagealloc_impls import IMPLS

M64 = (1 << 64) - 1  # ^uint64(0)
PageSize = PAGE_SIZE
PallocChunkPages = PALLOC_CHUNK_PAGES


def check_page_cache(got, want):
    """checkPageCache."""
    assert (got.base, got.cache, got.scav) == (want.base, want.cache, want.scav)


def check_page_alloc_equal(want, got):
    """mpagealloc_test.go checkPageAlloc: same bounds, same bitmaps and scavenged bits per chunk."""
    assert got.bounds() == want.bounds()
    start, end = got.bounds()
    for ci in range(start, end):
        gb, wb = got.chunk_of(ci), want.chunk_of(ci)
        if gb is None and wb is None:
            continue
        assert (gb is None) == (wb is None), f"chunk {ci} nilness mismatch"
        assert gb.bits == wb.bits, f"in chunk {ci} (mallocBits)"
        assert gb.scavenged == wb.scavenged, f"in chunk {ci} (scavenged)"


# ---- (a) TestPageCacheAlloc -------------------------------------------------

base = page_base(BASE_CHUNK_IDX, 0)

PAGE_CACHE_ALLOC_TESTS = {
    "Empty": (
        PageCache(base, 0, 0),
        [(1, 0, 0), (2, 0, 0), (3, 0, 0), (4, 0, 0), (5, 0, 0), (11, 0, 0), (12, 0, 0), (16, 0, 0),
         (27, 0, 0), (32, 0, 0), (43, 0, 0), (57, 0, 0), (64, 0, 0), (121, 0, 0)],
    ),
    "Lo1": (
        PageCache(base, 0x1, 0x1),
        [(1, base, PageSize), (1, 0, 0), (10, 0, 0)],
    ),
    "Hi1": (
        PageCache(base, 0x1 << 63, 0x1),
        [(1, base + 63 * PageSize, 0), (1, 0, 0), (10, 0, 0)],
    ),
    "Swiss1": (
        PageCache(base, 0x20005555, 0x5505),
        [
            (2, 0, 0),
            (1, base, PageSize),
            (1, base + 2 * PageSize, PageSize),
            (1, base + 4 * PageSize, 0),
            (1, base + 6 * PageSize, 0),
            (1, base + 8 * PageSize, PageSize),
            (1, base + 10 * PageSize, PageSize),
            (1, base + 12 * PageSize, PageSize),
            (1, base + 14 * PageSize, PageSize),
            (1, base + 29 * PageSize, 0),
            (1, 0, 0),
            (10, 0, 0),
        ],
    ),
    "Lo2": (
        PageCache(base, 0x3, 0x2 << 62),
        [(2, base, 0), (2, 0, 0), (1, 0, 0)],
    ),
    "Hi2": (
        PageCache(base, 0x3 << 62, 0x3 << 62),
        [(2, base + 62 * PageSize, 2 * PageSize), (2, 0, 0), (1, 0, 0)],
    ),
    "Swiss2": (
        PageCache(base, 0x3333 << 31, 0x3030 << 31),
        [
            (2, base + 31 * PageSize, 0),
            (2, base + 35 * PageSize, 2 * PageSize),
            (2, base + 39 * PageSize, 0),
            (2, base + 43 * PageSize, 2 * PageSize),
            (2, 0, 0),
        ],
    ),
    "Hi53": (
        PageCache(base, ((1 << 53) - 1) << 10, ((1 << 16) - 1) << 10),
        [(53, base + 10 * PageSize, 16 * PageSize), (53, 0, 0), (1, 0, 0)],
    ),
    "Full53": (
        PageCache(base, M64, ((1 << 16) - 1) << 10),
        [(53, base, 16 * PageSize), (53, 0, 0), (1, base + 53 * PageSize, 0)],
    ),
    "Full64": (
        PageCache(base, M64, M64),
        [(64, base, 64 * PageSize), (64, 0, 0), (1, 0, 0)],
    ),
    "FullMixed": (
        PageCache(base, M64, M64),
        [
            (5, base, 5 * PageSize),
            (7, base + 5 * PageSize, 7 * PageSize),
            (1, base + 12 * PageSize, 1 * PageSize),
            (23, base + 13 * PageSize, 23 * PageSize),
            (63, 0, 0),
            (3, base + 36 * PageSize, 3 * PageSize),
            (3, base + 39 * PageSize, 3 * PageSize),
            (3, base + 42 * PageSize, 3 * PageSize),
            (12, base + 45 * PageSize, 12 * PageSize),
            (11, 0, 0),
            (4, base + 57 * PageSize, 4 * PageSize),
            (4, 0, 0),
            (6, 0, 0),
            (36, 0, 0),
            (2, base + 61 * PageSize, 2 * PageSize),
            (3, 0, 0),
            (1, base + 63 * PageSize, 1 * PageSize),
            (4, 0, 0),
            (2, 0, 0),
            (62, 0, 0),
            (1, 0, 0),
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(PAGE_CACHE_ALLOC_TESTS))
def test_page_cache_alloc(name):
    cache, hits = PAGE_CACHE_ALLOC_TESTS[name]
    c = PageCache(cache.base, cache.cache, cache.scav)
    for i, (npages, want_base, want_scav) in enumerate(hits):
        b, s = c.alloc(npages)
        assert b == want_base, f"bad alloc base #{i}: got {b:#x}, want {want_base:#x}"
        assert s == want_scav, f"bad alloc scav #{i}: got {s}, want {want_scav}"


# ---- (a) TestPageCacheFlush -------------------------------------------------


def bits64_to_bit_ranges(bits, base_):
    """The test's bits64ToBitRanges: runs of set bits of a uint64, offset by base."""
    ranges = []
    start = size = 0
    for i in range(64):
        if bits & (1 << i):
            if size == 0:
                start = i + base_
            size += 1
        elif size:
            ranges.append((start, size))
            size = 0
    if size:
        ranges.append((start, size))
    return ranges


def _run_flush_test(impl, base_, cache, scav):
    b = new_page_alloc({BASE_CHUNK_IDX: [(base_, 64)]}, {BASE_CHUNK_IDX: []}, impl=impl)
    c = PageCache(page_base(BASE_CHUNK_IDX, base_), cache, scav)
    c.flush(b)
    assert c.empty(), "pageCache flush did not clear cache"
    want = new_page_alloc(
        {BASE_CHUNK_IDX: bits64_to_bit_ranges(~cache & M64, base_)},
        {BASE_CHUNK_IDX: bits64_to_bit_ranges(scav, base_)},
        impl=impl,
    )
    check_page_alloc_equal(want, b)
    # Beyond Go's check: summaries, searchAddr and the scavenge index stay consistent.
    check_page_alloc(b)


@pytest.mark.parametrize("impl", IMPLS)
def test_page_cache_flush_empty(impl):
    _run_flush_test(impl, 0, 0, 0)


@pytest.mark.parametrize("impl", IMPLS)
def test_page_cache_flush_full(impl):
    _run_flush_test(impl, 0, M64, M64)


@pytest.mark.parametrize("impl", IMPLS)
def test_page_cache_flush_random(impl):
    # Go uses math/rand unseeded; a fixed seed keeps this reproducible.
    rng = random.Random(20190923)
    for _ in range(100):
        base_ = rng.randrange(PallocChunkPages // 64) * 64
        cache = rng.getrandbits(64)
        scav = rng.getrandbits(64) & cache
        _run_flush_test(impl, base_, cache, scav)


# ---- (a) TestPageAllocAllocToCache -------------------------------------------


def _alloc_to_cache_tests():
    tests = {
        "ManyArena": dict(
            before_alloc={
                BASE_CHUNK_IDX: [(0, PallocChunkPages)],
                BASE_CHUNK_IDX + 1: [(0, PallocChunkPages)],
                BASE_CHUNK_IDX + 2: [(0, PallocChunkPages - 64)],
            },
            before_scav={
                BASE_CHUNK_IDX: [(0, PallocChunkPages)],
                BASE_CHUNK_IDX + 1: [(0, PallocChunkPages)],
                BASE_CHUNK_IDX + 2: [],
            },
            hits=[PageCache(page_base(BASE_CHUNK_IDX + 2, PallocChunkPages - 64), M64, 0)],
            after_alloc={
                BASE_CHUNK_IDX: [(0, PallocChunkPages)],
                BASE_CHUNK_IDX + 1: [(0, PallocChunkPages)],
                BASE_CHUNK_IDX + 2: [(0, PallocChunkPages)],
            },
            after_scav=None,
        ),
        "Fail": dict(
            before_alloc={BASE_CHUNK_IDX: [(0, PallocChunkPages)]},
            before_scav=None,
            hits=[PageCache(0, 0, 0), PageCache(0, 0, 0), PageCache(0, 0, 0)],
            after_alloc={BASE_CHUNK_IDX: [(0, PallocChunkPages)]},
            after_scav=None,
        ),
        "RetainScavBits": dict(
            before_alloc={BASE_CHUNK_IDX: [(0, 1), (10, 2)]},
            before_scav={BASE_CHUNK_IDX: [(0, 4), (11, 1)]},
            hits=[PageCache(page_base(BASE_CHUNK_IDX, 0), ~(0x1 | (0x3 << 10)) & M64, 0x7 << 1)],
            after_alloc={BASE_CHUNK_IDX: [(0, 64)]},
            after_scav={BASE_CHUNK_IDX: [(0, 1), (11, 1)]},
        ),
    }
    if PallocChunkPages >= 512:
        tests["AllFree"] = dict(
            before_alloc={BASE_CHUNK_IDX: []},
            before_scav={BASE_CHUNK_IDX: [(1, 1), (64, 64)]},
            hits=[
                PageCache(page_base(BASE_CHUNK_IDX, 0), M64, 0x2),
                PageCache(page_base(BASE_CHUNK_IDX, 64), M64, M64),
                PageCache(page_base(BASE_CHUNK_IDX, 128), M64, 0),
                PageCache(page_base(BASE_CHUNK_IDX, 192), M64, 0),
            ],
            after_alloc={BASE_CHUNK_IDX: [(0, 256)]},
            after_scav=None,
        )
        tests["NotContiguous"] = dict(
            before_alloc={BASE_CHUNK_IDX: [(0, PallocChunkPages)], BASE_CHUNK_IDX + 0xFF: [(0, 0)]},
            before_scav={BASE_CHUNK_IDX: [(0, PallocChunkPages)], BASE_CHUNK_IDX + 0xFF: [(31, 67)]},
            hits=[PageCache(page_base(BASE_CHUNK_IDX + 0xFF, 0), M64, ((1 << 33) - 1) << 31)],
            after_alloc={BASE_CHUNK_IDX: [(0, PallocChunkPages)], BASE_CHUNK_IDX + 0xFF: [(0, 64)]},
            after_scav={BASE_CHUNK_IDX: [(0, PallocChunkPages)], BASE_CHUNK_IDX + 0xFF: [(64, 34)]},
        )
        tests["First"] = dict(
            before_alloc={BASE_CHUNK_IDX: [(0, 32), (33, 31), (96, 32)]},
            before_scav={BASE_CHUNK_IDX: [(1, 4), (31, 5), (66, 2)]},
            hits=[
                PageCache(page_base(BASE_CHUNK_IDX, 0), 1 << 32, 1 << 32),
                PageCache(page_base(BASE_CHUNK_IDX, 64), (1 << 32) - 1, 0x3 << 2),
            ],
            after_alloc={BASE_CHUNK_IDX: [(0, 128)]},
            after_scav=None,
        )
    # PageAlloc64Bit != 0 and not iOS: always true for the modelled linux/amd64.
    chunk_idx_big_jump = 0x100000  # chunk index offset which translates to O(TiB)
    sums_per_phys_page = 4096 // 8  # PhysPageSize / PallocSumBytes
    base_chunk_idx = BASE_CHUNK_IDX & ~(sums_per_phys_page - 1)
    tests["DiscontiguousMappedSumBoundary"] = dict(
        before_alloc={
            base_chunk_idx + sums_per_phys_page - 1: [(0, PallocChunkPages - 1)],
            base_chunk_idx + chunk_idx_big_jump: [(1, PallocChunkPages - 1)],
        },
        before_scav={
            base_chunk_idx + sums_per_phys_page - 1: [],
            base_chunk_idx + chunk_idx_big_jump: [],
        },
        hits=[
            PageCache(page_base(base_chunk_idx + sums_per_phys_page - 1, PallocChunkPages - 64), 1 << 63, 0),
            PageCache(page_base(base_chunk_idx + chunk_idx_big_jump, 0), 1, 0),
            PageCache(0, 0, 0),
        ],
        after_alloc={
            base_chunk_idx + sums_per_phys_page - 1: [(0, PallocChunkPages)],
            base_chunk_idx + chunk_idx_big_jump: [(0, PallocChunkPages)],
        },
        after_scav=None,
    )
    return tests


ALLOC_TO_CACHE_TESTS = _alloc_to_cache_tests()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", sorted(ALLOC_TO_CACHE_TESTS))
def test_page_alloc_alloc_to_cache(name, impl):
    v = ALLOC_TO_CACHE_TESTS[name]
    b = new_page_alloc(v["before_alloc"], v["before_scav"], impl=impl)
    for expect in v["hits"]:
        got = b.alloc_to_cache()
        check_page_cache(got, expect)
        # Beyond Go's check: searchAddr is the cache's last page (maxSearchAddr
        # on failure), and summaries / scavenge index agree with the bitmaps.
        if got.empty():
            assert b.search_addr == MAX_OFF_ADDR
        else:
            assert b.search_addr == to_off(got.base) + (PAGE_CACHE_PAGES - 1) * PAGE_SIZE
        check_page_alloc(b)
    want = new_page_alloc(v["after_alloc"], v["after_scav"], impl=impl)
    check_page_alloc_equal(want, b)


# ---- (b) our own checks -------------------------------------------------------


def test_find_bit_range64_matches_plain_scan():
    rng = random.Random(7)
    words = [0, M64, 1, 1 << 63, 0x5555555555555555] + [rng.getrandbits(64) & rng.getrandbits(64) for _ in range(200)]
    for c in words:
        for n in range(1, 65):
            want = next((i for i in range(64 - n + 1) if (c >> i) & ((1 << n) - 1) == (1 << n) - 1), None)
            got = find_bit_range64(c, n)
            assert (got if got < 64 else None) == want, (hex(c), n)


def test_find_bit_range64_go_shift_wraparound():
    # Go shifts by (k & 63): for n = 128 the last shift is by 0, so a full word
    # "has" a 128-page run at 0, and pageCache.allocN's uint64 mask is all ones.
    assert find_bit_range64(M64, 128) == 0
    assert find_bit_range64(M64, 65) == 64
    c = PageCache(base, M64, 0xF)
    assert c.alloc(128) == (base, 4 * PAGE_SIZE)
    assert c.empty() and c.scav == 0


def test_block64_helpers():
    b = (0xAB << 64) | 0xCD
    assert block64(b, 70) == 0xAB and block64(b, 63) == 0xCD
    assert set_block64(b, 64, 0x04) == (0xAF << 64) | 0xCD
    assert clear_block64(b, 127, 0x03) == (0xA8 << 64) | 0xCD


@pytest.mark.parametrize("impl", IMPLS)
def test_alloc_to_cache_out_of_memory_fast_exit(impl):
    pa = new_page_alloc({BASE_CHUNK_IDX: [(0, PallocChunkPages)]}, impl=impl)
    assert pa.alloc_to_cache().empty()
    assert pa.search_addr == MAX_OFF_ADDR
    # Freeing a page moves searchAddr back; the next cache is its 64-page block.
    pa.free(page_base(BASE_CHUNK_IDX, 200), 1)
    c = pa.alloc_to_cache()
    assert (c.base, c.cache, c.scav) == (page_base(BASE_CHUNK_IDX, 192), 1 << 8, 0)
    check_page_alloc(pa)


@pytest.mark.parametrize("impl", IMPLS)
def test_flush_restores_search_addr_and_index(impl):
    pa = new_page_alloc({BASE_CHUNK_IDX: [(0, 100)]}, {BASE_CHUNK_IDX: [(0, PallocChunkPages)]}, impl=impl)
    c = pa.alloc_to_cache()
    assert c.base == page_base(BASE_CHUNK_IDX, 64)
    assert c.cache == ~((1 << 36) - 1) & M64 and c.scav == c.cache
    assert pa.chunk_of(BASE_CHUNK_IDX).scavenged == ((1 << 512) - 1) & ~((1 << 128) - 1)
    addr, scav = c.alloc(3)
    assert (addr, scav) == (page_base(BASE_CHUNK_IDX, 100), 3 * PAGE_SIZE)
    c.flush(pa)
    assert c.empty() and (c.base, c.scav) == (0, 0)
    assert pa.search_addr == to_off(page_base(BASE_CHUNK_IDX, 64))
    d = pa.chunk_of(BASE_CHUNK_IDX)
    assert d.bits == (1 << 103) - 1
    # Flushed free pages keep their scavenged state; the 3 handed out lost it.
    assert d.scavenged == ((1 << 512) - 1) & ~((1 << 103) - 1)
    check_page_alloc(pa)
    # The 64-page alloc that follows comes from the flushed pages.
    assert pa.alloc(64) == (page_base(BASE_CHUNK_IDX, 103), 64 * PAGE_SIZE)


# ---- (b) property test: page alloc + caches interleaved -----------------------

GROUPS = [(0, 1), (2, 2), (9, 1), (0x100000, 1)]

cache_op = st.one_of(
    st.tuples(st.just("alloc"), st.integers(1, 600)),
    st.tuples(st.just("alloc"), st.integers(1, 20)),
    st.tuples(st.just("refill"), st.integers(0, 2)),
    st.tuples(st.just("calloc"), st.integers(0, 2), st.integers(1, 16)),
    st.tuples(st.just("calloc"), st.integers(0, 2), st.just(1)),
    st.tuples(st.just("flush"), st.integers(0, 2)),
    st.tuples(st.just("free"), st.integers(0, 10**6)),
    st.tuples(st.just("grow"), st.integers(0, len(GROUPS) - 1)),
    st.tuples(st.just("scavenge"), st.sampled_from([PAGE_SIZE, 70 * PAGE_SIZE, 2**64 - 1])),
)


def _masks(addr, n):
    """Pages [addr, +n pages) as {chunk index: bitmap of those pages in the chunk}."""
    out = {}
    p = to_off(addr) // PAGE_SIZE
    end = p + n
    while p < end:
        ci, i = p >> 9, p & (PallocChunkPages - 1)
        k = min(end - p, PallocChunkPages - i)
        out[ci] = out.get(ci, 0) | (((1 << k) - 1) << i)
        p += k
    return out


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(initial=st.sets(st.integers(0, len(GROUPS) - 1), min_size=1, max_size=2), ops=st.lists(cache_op, max_size=30))
def test_caches_interleaved_with_page_alloc(impl, initial, ops):
    """Three Ps' caches interleaved with direct alloc/free/scavenge/grow.

    Invariants: check_page_alloc holds after every step; no page is handed out
    twice; a page is in use in the allocator exactly when it is handed out or
    free in some cache; scavenged bytes reported by either alloc path match a
    per-page model of the scavenged state. The model keeps one bitmap per chunk.
    """
    pa = impl()
    caches = [PageCache() for _ in range(3)]
    handed = {}  # chunk index -> bitmap of pages handed out to callers
    scav = {}  # chunk index -> bitmap of scavenged pages, wherever they are held
    live = []  # (addr, npages) from pa.alloc or cache.alloc

    def grow(g):
        first, n = GROUPS[g]
        if BASE_CHUNK_IDX + first in handed:
            return
        pa.grow(chunk_base(BASE_CHUNK_IDX + first), n * PALLOC_CHUNK_BYTES)
        for c in range(BASE_CHUNK_IDX + first, BASE_CHUNK_IDX + first + n):
            handed[c] = 0
            scav[c] = (1 << PallocChunkPages) - 1

    def take(addr, n, scav_bytes):
        nscav = 0
        for ci, m in _masks(addr, n).items():
            assert handed[ci] & m == 0, "page handed out twice"
            nscav += (scav[ci] & m).bit_count()
            handed[ci] |= m
            scav[ci] &= ~m
        assert scav_bytes == nscav * PAGE_SIZE
        live.append((addr, n))

    def cache_pages():
        out = {}
        for c in caches:
            if not c.empty():
                ci, i = divmod(to_off(c.base) // PAGE_SIZE, PallocChunkPages)
                assert i % 64 == 0
                out[ci] = out.get(ci, 0) | (c.cache << i)
        return out

    def check():
        check_page_alloc(pa)
        in_cache = cache_pages()
        for ci in handed:
            d = pa.chunk_of(ci)
            held = in_cache.get(ci, 0)
            assert held & handed[ci] == 0
            assert d.bits == handed[ci] | held
            # Pages held by a cache keep their scavenged state in the cache, not here.
            assert d.scavenged == scav[ci] & ~(handed[ci] | held)

    for g in sorted(initial):
        grow(g)
    check()
    for op in ops:
        kind = op[0]
        if kind == "alloc":
            addr, s = pa.alloc(op[1])
            if addr:
                take(addr, op[1], s)
        elif kind == "refill":
            c = caches[op[1]]
            if c.empty():
                # mheap.allocSpan refills only an empty cache.
                caches[op[1]] = c = pa.alloc_to_cache()
                if not c.empty():
                    assert c.base % (64 * PAGE_SIZE) == 0
                    assert pa.search_addr == to_off(c.base) + 63 * PAGE_SIZE
                    # On its free pages, the cache's scav word is the model's scavenged state.
                    ci, i = divmod(to_off(c.base) // PAGE_SIZE, PallocChunkPages)
                    assert c.scav & c.cache == (scav[ci] >> i) & c.cache
                else:
                    assert pa.search_addr == MAX_OFF_ADDR
        elif kind == "calloc":
            c = caches[op[1]]
            addr, s = c.alloc(op[2])
            if addr:
                take(addr, op[2], s)
        elif kind == "flush":
            caches[op[1]].flush(pa)
        elif kind == "free" and live:
            addr, n = live.pop(op[1] % len(live))
            pa.free(addr, n)
            for ci, m in _masks(addr, n).items():
                handed[ci] &= ~m
        elif kind == "grow":
            grow(op[1])
        elif kind == "scavenge":
            before = {ci: pa.chunk_of(ci).scavenged for ci in handed}
            pa.scavenge(op[1])
            for ci in handed:
                d = pa.chunk_of(ci)
                new = d.scavenged & ~before[ci]
                assert new & d.bits == 0, "scavenged an in-use page"
                scav[ci] |= new
        check()
    # Flushing everything and freeing every live run gives back a wholly free heap.
    for c in caches:
        c.flush(pa)
    for addr, n in live:
        pa.free(addr, n)
    check_page_alloc(pa)
    assert all(pa.chunk_of(ci).bits == 0 for ci in handed)
    assert from_off(pa.search_addr) == chunk_base(min(handed))
