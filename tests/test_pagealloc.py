"""Tests of runtime_model.pagealloc against Go's vectors, a flat reference model and Go's tables.

The vectors (tests/data/pagealloc/) were dumped by the real runtime while its
own page-allocator tests ran: every sub-test of TestPageAllocGrow, Alloc,
Exhaust, Free, AllocAndFree, Scavenge and TestPallocDataFindScavengeCandidate.
Tests of the API run on both implementations (`impl`: PyPageAlloc, the reference
model, and CPageAlloc, the C core); those of the model's own search state on the model.
"""

import collections
import copy
import json
import shlex

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emu.cli import main
from emu.errors import BadInput, InvariantError
from runtime_model.pagealloc import (
    BASE_CHUNK_IDX,
    PAGE_SIZE,
    PALLOC_CHUNK_BYTES,
    PyPageAlloc,
    check_page_alloc,
    chunk_base,
    chunk_index,
    compare,
    new_page_alloc,
    page_base,
    replay,
    to_off,
    validate_vector,
)
from runtime_model.pallocbits import (
    FREE_CHUNK_SUM,
    FULL,
    MAX_PACKED_VALUE,
    PallocData,
    bits_to_ranges,
    fill_aligned,
    merge_summaries,
    pack_palloc_sum,
    palloc_find,
    ranges_to_bits,
    summarize,
    unpack_palloc_sum,
)

from tests.conftest import DATA, ROOT
from tests.pagealloc_impls import IMPLS

VECTORS = DATA / "pagealloc"
VECTOR_FILES = sorted(VECTORS.glob("*.json"))
PAGES = 512


def load(name):
    return json.loads((VECTORS / f"{name}.json").read_text())


# ---- (a) Go's reference vectors ---------------------------------------------


def test_every_sub_test_of_go_page_allocator_tests_has_a_vector():
    # The sub-tests of the Go 1.27.3 run on linux/amd64 (tests/data/README.md).
    per_test = collections.Counter(p.name.split("__")[0] for p in VECTOR_FILES)
    assert per_test == {"TestPageAllocGrow": 8, "TestPageAllocAlloc": 19, "TestPageAllocExhaust": 12,
                        "TestPageAllocFree": 13, "TestPageAllocAllocAndFree": 1, "TestPageAllocScavenge": 7,
                        "TestPallocDataFindScavengeCandidate": 93}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.stem)
def test_vector_replays_exactly(path, impl):
    vector = json.loads(path.read_text())
    result = replay(vector, impl)
    assert compare(vector, result) == []
    # Every recorded result field is produced, not just the checked ones.
    for vop, rop in zip(vector.get("ops", []), result.get("ops", [])):
        for key in ("result", "scav_bytes", "released"):
            if key in vop:
                assert rop[key] == vop[key]


@pytest.mark.parametrize("impl", IMPLS)
def test_replay_reads_no_recorded_results(impl):
    vector = load("TestPageAllocAlloc__Straddle2")
    inputs = {k: vector[k] for k in ("test", "case", "chunks", "initial_state")}
    inputs["ops"] = [{k: op[k] for k in ("op", "npages")} for op in vector["ops"]]
    assert compare(vector, replay(inputs, impl)) == []


def test_missing_key_is_bad_input():
    vector = load("TestPageAllocFree__Free1")
    del vector["initial_state"]
    with pytest.raises(BadInput, match="missing field 'initial_state'"):
        replay(vector)
    vector = load("TestPallocDataFindScavengeCandidate__MixedMin1")
    del vector["search_idx"]
    with pytest.raises(BadInput, match="missing field 'search_idx'"):
        replay(vector)


def test_compare_reports_mismatch():
    vector = load("TestPageAllocAlloc__AllFree5")
    result = replay(vector)
    result["ops"][1]["result"] = None
    bad = compare(vector, result)
    assert len(bad) == 1 and bad[0].startswith("ops[1] alloc(5) result")


# ---- (b) property tests against a flat first-fit reference ------------------


class FlatModel:
    """Reference: one flag pair per page, pages keyed by global page number."""

    def __init__(self):
        self.alloc = {}
        self.scav = {}

    def grow(self, ci):
        for k in range(ci * PAGES, (ci + 1) * PAGES):
            self.alloc[k] = False
            self.scav[k] = True

    def first_fit(self, n):
        run_start, run = None, 0
        prev = None
        for k in sorted(self.alloc):
            if self.alloc[k] or (prev is not None and k != prev + 1):
                run = 0
            if not self.alloc[k]:
                if run == 0:
                    run_start = k
                run += 1
                if run == n:
                    return run_start
            prev = k
        return None

    def do_alloc(self, n):
        k0 = self.first_fit(n)
        if k0 is None:
            return None, 0
        scav = 0
        for k in range(k0, k0 + n):
            scav += self.scav[k]
            self.alloc[k] = True
            self.scav[k] = False
        return k0, scav * PAGE_SIZE

    def do_free(self, k0, n):
        for k in range(k0, k0 + n):
            self.alloc[k] = False

    def candidate(self, ci, max_pages):
        """findScavengeCandidate(511, min=1, max) written plainly."""
        ok = [not self.alloc[ci * PAGES + p] and not self.scav[ci * PAGES + p] for p in range(PAGES)]
        top = next((p for p in range(PAGES - 1, -1, -1) if ok[p]), None)
        if top is None:
            return None
        low = top
        while low > 0 and ok[low - 1]:
            low -= 1
        end, run = top + 1, top + 1 - low
        size = min(run, max_pages)
        start = end - size
        hp = 256  # PhysHugePageSize / PageSize
        if -(-start // hp) * hp <= end and start // hp * hp >= end - run:
            size += start - start // hp * hp
            start = start // hp * hp
        return start, size

    def do_scavenge(self, nbytes, chunks):
        """README rule: highest grown chunk with a candidate, until nbytes are released."""
        released = 0
        while released < nbytes:
            max_pages = -(-(nbytes - released) // PAGE_SIZE)
            for ci in sorted(chunks, reverse=True):
                cand = self.candidate(ci, max_pages)
                if cand:
                    break
            else:
                break
            start, size = cand
            for p in range(start, start + size):
                self.scav[ci * PAGES + p] = True
            released += size * PAGE_SIZE
        return released

    def chunk_bits(self, ci):
        a = s = 0
        for p in range(PAGES):
            a |= self.alloc[ci * PAGES + p] << p
            s |= self.scav[ci * PAGES + p] << p
        return a, s


# Chunk positions (relative to BaseChunkIdx) in discontiguous groups, one far away.
GROUPS = [(0, 2), (3, 1), (8, 3), (40, 1), (0x100000, 2)]

op_strategy = st.one_of(
    st.tuples(st.just("alloc"), st.integers(1, 1200)),
    st.tuples(st.just("alloc"), st.integers(1, 70)),
    st.tuples(st.just("free"), st.integers(0, 10**6)),
    st.tuples(st.just("grow"), st.integers(0, len(GROUPS) - 1)),
    st.tuples(st.just("scavenge"), st.sampled_from([1, PAGE_SIZE, 5 * PAGE_SIZE, 300 * PAGE_SIZE, 2**64 - 1])),
)


# The model against the flat one; the C core against the model: tests/test_cpagealloc.py.
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(initial=st.sets(st.integers(0, len(GROUPS) - 1), min_size=1, max_size=3), ops=st.lists(op_strategy, max_size=25))
def test_matches_flat_first_fit(initial, ops):
    pa, ref = PyPageAlloc(), FlatModel()
    grown, live = set(), []

    def grow(g):
        first, n = GROUPS[g]
        if BASE_CHUNK_IDX + first in grown:
            return
        pa.grow(chunk_base(BASE_CHUNK_IDX + first), n * PALLOC_CHUNK_BYTES)
        for c in range(first, first + n):
            grown.add(BASE_CHUNK_IDX + c)
            ref.grow(BASE_CHUNK_IDX + c)

    for g in sorted(initial):
        grow(g)
    check_page_alloc(pa)
    for kind, arg in ops:
        if kind == "alloc":
            addr, scav = pa.alloc(arg)
            k0, want_scav = ref.do_alloc(arg)
            want_addr = 0 if k0 is None else page_base(k0 // PAGES, k0 % PAGES)
            assert (addr, scav) == (want_addr, want_scav)
            if addr:
                live.append((addr, k0, arg))
        elif kind == "free" and live:
            addr, k0, n = live.pop(arg % len(live))
            pa.free(addr, n)
            ref.do_free(k0, n)
        elif kind == "grow":
            grow(arg)
        elif kind == "scavenge":
            assert pa.scavenge(arg) == ref.do_scavenge(arg, grown)
        check_page_alloc(pa)
    for ci in grown:
        d = pa.chunk_of(ci)
        assert (d.bits, d.scavenged) == ref.chunk_bits(ci)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 511), st.integers(1, 200)), max_size=12), st.integers(0, 511), st.integers(1, 100))
def test_chunk_find_is_first_fit_from_word(ranges, search_idx, npages):
    bits = ranges_to_bits([(s, min(n, PAGES - s)) for s, n in ranges])
    j, sidx = palloc_find(bits, npages, search_idx)
    w0 = search_idx & ~63
    free = [p >= w0 and not (bits >> p) & 1 for p in range(PAGES)]
    want = next((p for p in range(PAGES - npages + 1) if all(free[p : p + npages])), None)
    assert j == want
    if want is not None:
        assert sidx == free.index(True)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, FULL))
def test_summarize_matches_plain_count(bits):
    text = "".join("1" if (bits >> p) & 1 else "0" for p in range(PAGES))
    runs = text.split("1")
    assert unpack_palloc_sum(summarize(bits)) == (len(runs[0]), max(map(len, runs)), len(runs[-1]))


# ---- (c) units: summaries and findScavengeCandidate -------------------------


def test_pack_unpack():
    assert unpack_palloc_sum(pack_palloc_sum(3, 7, 5)) == (3, 7, 5)
    m = MAX_PACKED_VALUE - 1
    assert unpack_palloc_sum(pack_palloc_sum(m, m, m)) == (m, m, m)
    # start = max = end = 1 << 21 is encoded by bit 63 alone.
    assert pack_palloc_sum(MAX_PACKED_VALUE, MAX_PACKED_VALUE, MAX_PACKED_VALUE) == 1 << 63
    assert unpack_palloc_sum(1 << 63) == (MAX_PACKED_VALUE,) * 3
    assert FREE_CHUNK_SUM == pack_palloc_sum(512, 512, 512)


def _go_merge(sums, log):
    """mergeSummaries transcribed literally, as an oracle."""
    start, most, end = unpack_palloc_sum(sums[0])
    for i in range(1, len(sums)):
        si, mi, ei = unpack_palloc_sum(sums[i])
        if start == i << log:
            start += si
        most = max(most, end + si, mi)
        end = end + (1 << log) if ei == 1 << log else ei
    return pack_palloc_sum(start, most, end)


def test_merge_summaries():
    free = pack_palloc_sum(512, 512, 512)
    assert merge_summaries([free] * 8, 9) == pack_palloc_sum(4096, 4096, 4096)
    assert merge_summaries([0] * 8, 9) == 0
    sums = [pack_palloc_sum(10, 20, 30), free, pack_palloc_sum(5, 100, 0)] + [0] * 5
    assert merge_summaries(sums, 9) == pack_palloc_sum(10, 547, 0)
    # A fully free root-level region becomes the all-max encoding.
    f18 = pack_palloc_sum(1 << 18, 1 << 18, 1 << 18)
    assert merge_summaries([f18] * 8, 18) == 1 << 63


@settings(max_examples=80, deadline=None)
@given(st.sampled_from([9, 12, 15, 18]), st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2**18)), min_size=8, max_size=8))
def test_merge_matches_go_transcription(log, picks):
    full = 1 << log
    sums = []
    for kind, x in picks:
        if kind == 0:
            sums.append(0)
        elif kind == 1:
            sums.append(pack_palloc_sum(full, full, full))
        else:
            a, b = x % full, (x // 7) % full
            if a + b > full:
                b = full - a
            sums.append(pack_palloc_sum(a, max(a, b, x % (full - 1) if a + b < full else max(a, b)), b))
    assert merge_summaries(sums, log) == _go_merge(sums, log)


def test_fill_aligned_go_example():
    assert fill_aligned(0x0100A3, 8, width=64) == 0xFF00FF
    assert fill_aligned(0x0100A3, 1, width=64) == 0x0100A3


def _pd(alloc=(), scav=()):
    d = PallocData()
    for s, n in alloc:
        d.alloc_range(s, n)
    for s, n in scav:
        d.scavenged_set_range(s, n)
    return d


def test_find_scavenge_candidate_edges():
    # search_idx limits the scan to its 64-page word and below.
    d = _pd(alloc=[(0, 10)], scav=[(10, 54)])
    assert d.find_scavenge_candidate(63, 1, 512) == (0, 0)
    assert d.find_scavenge_candidate(64, 1, 512) == (64, 64)
    assert d.find_scavenge_candidate(511, 1, 512) == (64, 448)
    # A min-group with one busy page is not a candidate; alignment to min.
    d = _pd(alloc=[(0, 500), (505, 1)])
    assert d.find_scavenge_candidate(511, 4, 512) == (508, 4)
    with pytest.raises(BadInput):
        d.find_scavenge_candidate(511, 3, 8)
    with pytest.raises(BadInput):
        d.find_scavenge_candidate(511, 128, 8)


def test_bits_ranges_roundtrip():
    r = [[0, 3], [10, 1], [63, 2], [500, 12]]
    assert bits_to_ranges(ranges_to_bits(r)) == r


# ---- the allocator on the real heap address and misc semantics ---------------


@pytest.mark.parametrize("impl", IMPLS)
def test_go_heap_address_space(impl):
    calls = []
    pa = impl(on_grow=lambda base, size: calls.append((base, size)))
    pa.grow(0xC000000000, 64 << 20)
    assert calls == [(0xC000000000, 64 << 20)]
    assert chunk_index(0xC000000000) == (0xC000000000 + 0x800000000000) >> 22
    assert pa.alloc(1) == (0xC000000000, PAGE_SIZE)
    assert pa.alloc(600) == (0xC000000000 + PAGE_SIZE, 600 * PAGE_SIZE)
    pa.free(0xC000000000, 1)
    assert pa.alloc(1)[0] == 0xC000000000
    assert pa.in_use_ranges() == [(0xC000000000, 0xC000000000 + (64 << 20))]
    check_page_alloc(pa)
    with pytest.raises(InvariantError):
        pa.grow(0xC000000000, 4 << 20)


@pytest.mark.parametrize("impl", IMPLS)
def test_exhaustion_sets_search_addr_max(impl):
    pa = new_page_alloc({BASE_CHUNK_IDX: [(0, 511)]}, impl=impl)
    assert pa.alloc(2) == (0, 0)
    assert pa.alloc(1)[0] == page_base(BASE_CHUNK_IDX, 511)
    assert pa.alloc(1) == (0, 0)
    pa.free(page_base(BASE_CHUNK_IDX, 7), 1)
    assert pa.alloc(1)[0] == page_base(BASE_CHUNK_IDX, 7)


def test_check_page_alloc_detects_corruption():
    pa = new_page_alloc({BASE_CHUNK_IDX: [], BASE_CHUNK_IDX + 1: []}, impl=PyPageAlloc)
    pa.chunk_of(BASE_CHUNK_IDX).bits |= 1 << 300  # bitmap changed behind the summaries' back
    with pytest.raises(InvariantError, match=r"level 4 index .*expected \(300, 300, 211\), found \(512, 512, 512\)"):
        check_page_alloc(pa)


@pytest.mark.parametrize("impl", IMPLS)
def test_background_scavenge_skips_dense_chunks(impl):
    pa = new_page_alloc({BASE_CHUNK_IDX: [(0, 500)], BASE_CHUNK_IDX + 1: [(0, 100)]}, impl=impl)
    # Nothing freed since the last generation yet: the background cursor is clear.
    assert pa.scavenge(2**64 - 1, force=False) == 0
    pa.next_gen()
    assert pa.scavenge(2**64 - 1, force=False) == 412 * PAGE_SIZE  # chunk 0 is >= 496 pages dense
    assert pa.scavenge(2**64 - 1, force=True) == 12 * PAGE_SIZE


# ---- batch frees (free_many) and the model's own search state ------------------


def go_state(pa):
    """Everything of Go's pageAlloc: bitmaps, summaries, searchAddr, inUse, scavenge index, what grow mapped."""
    return pa.state()


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.one_of(st.integers(1, 8), st.integers(1, 1200)), min_size=1, max_size=40),
    gen_at=st.integers(0, 40),
    data=st.data(),
)
def test_free_many_leaves_the_state_of_frees_one_by_one(impl, sizes, gen_at, data):
    pa = impl()
    for first, n in GROUPS[:4]:
        pa.grow(chunk_base(BASE_CHUNK_IDX + first), n * PALLOC_CHUNK_BYTES)
    live = []
    for k, n in enumerate(sizes):
        if k == gen_at:
            pa.next_gen()  # a new generation between allocations: the index's lastInUse matters
        addr, _ = pa.alloc(n)
        if addr:
            live.append((addr, n))
    batch = data.draw(st.permutations(live))[: data.draw(st.integers(0, len(live)))]
    one = copy.deepcopy(pa)
    for addr, n in batch:
        one.free(addr, n)
    pa.free_many(batch)
    assert go_state(pa) == go_state(one)
    check_page_alloc(pa)
    # Both go on alike.
    for n in (1, 3, 64, 600, 1):
        assert pa.alloc(n) == one.alloc(n)
    assert pa.scavenge(2**64 - 1) == one.scavenge(2**64 - 1)
    assert go_state(pa) == go_state(one)


@pytest.mark.parametrize("impl", IMPLS)
def test_free_many_refuses_a_bad_batch_and_changes_nothing(impl):
    pa = new_page_alloc({BASE_CHUNK_IDX: [(0, 100)], BASE_CHUNK_IDX + 1: [(0, 512)]}, impl=impl)
    before = go_state(pa)
    ok = (page_base(BASE_CHUNK_IDX, 0), 10)
    # Outside grown memory, no pages, and more pages than the chunk has in use.
    with pytest.raises(InvariantError, match="not in grown memory"):
        pa.free_many([ok, (page_base(BASE_CHUNK_IDX + 2, 0), 1)])
    with pytest.raises(BadInput, match="npages must be positive"):
        pa.free_many([ok, (page_base(BASE_CHUNK_IDX, 50), 0)])
    with pytest.raises(InvariantError, match="allocated pages below zero"):
        pa.free_many([ok, (page_base(BASE_CHUNK_IDX, 0), 95)])
    assert go_state(pa) == before
    check_page_alloc(pa)


@pytest.mark.parametrize("impl", IMPLS)
def test_free_many_of_pages_across_chunks_equals_one_free(impl):
    pa = new_page_alloc({BASE_CHUNK_IDX: [(0, 512)], BASE_CHUNK_IDX + 1: [(0, 512)], BASE_CHUNK_IDX + 2: [(0, 512)]},
                        impl=impl)
    one = copy.deepcopy(pa)
    one.free(page_base(BASE_CHUNK_IDX, 500), 600)
    pa.free_many([(page_base(BASE_CHUNK_IDX, 500), 300), (page_base(BASE_CHUNK_IDX + 1, 288), 300)])
    assert go_state(pa) == go_state(one)
    assert pa.alloc(600) == (page_base(BASE_CHUNK_IDX, 500), 0)


def test_check_page_alloc_detects_a_size_bound_above_its_first_fit():
    pa = new_page_alloc({BASE_CHUNK_IDX: [(0, 10), (12, 100)]}, impl=PyPageAlloc)
    check_page_alloc(pa)
    # The model's search hint for sizes >= 2 says no run starts below page 20; one does at page 10.
    pa._fit_lb[2:] = [to_off(page_base(BASE_CHUNK_IDX, 20))] * (len(pa._fit_lb) - 2)
    with pytest.raises(InvariantError, match="per-size bound for 2 pages .* is above its first fit"):
        check_page_alloc(pa)


# ---- (d) bad vectors ------------------------------------------------------------


def _edit(name, change):
    vector = load(name)
    change(vector)
    return vector


def _set(path, value):
    """A change that sets vector[path[0]][path[1]]... = value."""
    def change(v):
        for key in path[:-1]:
            v = v[key]
        v[path[-1]] = value
    return change


FREE1, ALLOC1, MIXED = "TestPageAllocFree__Free1", "TestPageAllocAlloc__AllFree1", \
    "TestPallocDataFindScavengeCandidate__MixedMin1"
# (vector, change, message): each reached the CLI's catch-all as a TypeError or ValueError before.
BAD_VECTORS = {
    "npages a word": (ALLOC1, _set(["ops", 0, "npages"], "one"), "field 'ops[0].npages' must be a positive page count"),
    "npages a fraction": (ALLOC1, _set(["ops", 0, "npages"], 1.5), "field 'ops[0].npages' must be a positive page count"),
    "npages zero": (ALLOC1, _set(["ops", 0, "npages"], 0), "field 'ops[0].npages' must be a positive page count"),
    "negative range": (FREE1, _set(["initial_state", 0, "alloc"], [[0, -10]]),
                       "field 'initial_state[0].alloc[0]' must be a [start, npages] pair"),
    "range past the chunk": (FREE1, _set(["initial_state", 0, "alloc"], [[500, 13]]),
                             "field 'initial_state[0].alloc[0]' must be a [start, npages] pair"),
    "overlapping ranges": (FREE1, _set(["initial_state", 0, "alloc"], [[0, 300], [100, 300]]),
                           "field 'initial_state[0].alloc[1]' must be a range above the one before it"),
    "chunks a word": (FREE1, _set(["chunks"], "zero"), "field 'chunks' must be a list of chunk indices"),
    "chunk twice": (FREE1, _set(["chunks"], [0, 0]), "field 'chunks' must be a list of distinct chunks"),
    "chunk outside the heap": (FREE1, _set(["chunks"], [1 << 30]), "field 'chunks[0]' must be a chunk index"),
    "state of an ungrown chunk": (FREE1, _set(["initial_state", 0, "chunk"], 5),
                                  "field 'initial_state[0].chunk' must be one of the vector's 'chunks'"),
    "candidate ranges of words": (MIXED, _set(["state", "alloc"], [["a", "b"]]),
                                  "field 'state.alloc[0]' must be a [start, npages] pair"),
    "candidate min not a power of two": (MIXED, _set(["min"], 3), "field 'min' must be a power of two"),
    "candidate search index past the chunk": (MIXED, _set(["search_idx"], 512), "field 'search_idx' must be a page index"),
    "unknown op": (ALLOC1, _set(["ops", 0, "op"], "grow"), "field 'ops[0].op' must be \"alloc\", \"free\" or \"scavenge\""),
    "op not an object": (ALLOC1, _set(["ops", 0], 7), "field 'ops[0]' must be an object"),
    "unaligned address": (FREE1, _set(["ops", 0, "addr"], {"offset": 100}), "field 'ops[0].addr.offset' must be a multiple"),
    "address disagreeing with its offset": (FREE1, _set(["ops", 1, "addr", "page"], 9),
                                            "field 'ops[1].addr.page' must be 1 (as its offset 8192 says)"),
    "free beyond the grown chunks": (FREE1, _set(["ops", 0, "npages"], 600),
                                     "ops[0] frees 600 pages at offset 0, which reach beyond the grown chunks [0]"),
    "recorded result not an address": (ALLOC1, _set(["ops", 0, "result"], 5), "field 'ops[0].result' must be an address"),
    "nbytes negative": ("TestPageAllocScavenge__ScavMultiple", _set(["ops", 0, "nbytes"], -1),
                        "field 'ops[0].nbytes' must be a byte count"),
    "another physical page size": (FREE1, _set(["constants", "PhysPageSize"], 16384),
                                   "field 'constants.PhysPageSize' is 16384, but the model follows"),
    "an empty object": (FREE1, lambda v: v.clear(), "missing field 'test'"),
}


@pytest.mark.parametrize("case", sorted(BAD_VECTORS))
def test_bad_vector_is_one_line_naming_file_and_field(case, tmp_path, capsys):
    name, change, message = BAD_VECTORS[case]
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(_edit(name, change)))
    assert main(["pagealloc", "replay", str(VECTOR_FILES[0]), str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""  # nothing is printed before every file has been read and replayed
    assert err.startswith(f"gomemu: error: {path}: pagealloc vector: ") and err.count("\n") == 1, err
    assert message in err, err


def test_every_go_vector_is_valid():
    for path in VECTOR_FILES:
        validate_vector(json.loads(path.read_text()))


@pytest.mark.parametrize("impl", IMPLS)
def test_invariant_error_during_replay_names_file_and_op(impl, tmp_path, capsys):
    # Freeing a page of a chunk with nothing in use: Go's scavenge index throws "allocated pages below zero?".
    def change(v):
        v["initial_state"][0]["alloc"] = []
        v["ops"] = v["ops"][:1]
    path = tmp_path / "free-of-free.json"
    path.write_text(json.dumps(_edit(FREE1, change)))
    with pytest.raises(InvariantError, match=r"ops\[0\] \(free\): allocated pages below zero"):
        replay(json.loads(path.read_text()), impl)
    assert main(["pagealloc", "replay", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"gomemu: error: {path}: pagealloc vector: ops[0] (free): allocated pages below zero?")
    assert err.count("\n") == 1


# ---- (e) the CLI ---------------------------------------------------------------


def test_cli_all_pass(capsys):
    assert main(["pagealloc", "replay", *map(str, VECTOR_FILES)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(VECTOR_FILES) + 1
    assert "PASS TestPageAllocAlloc/Straddle2" in lines
    assert lines[-1] == f"{len(VECTOR_FILES)} passed, 0 failed, {len(VECTOR_FILES)} vectors"


def test_cli_failure_and_bad_files(tmp_path, capsys):
    vector = load("TestPageAllocScavenge__ScavMultiple")
    vector["ops"][0]["released"] = 12345
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(vector))
    assert main(["pagealloc", "replay", str(VECTOR_FILES[0]), str(bad)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("FAIL TestPageAllocScavenge/ScavMultiple: ops[0] scavenge(8192) released: 8192, recorded 12345")
    assert out[-1] == "1 passed, 1 failed, 2 vectors"

    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert main(["pagealloc", "replay", str(broken)]) == 1
    assert "broken.json: invalid JSON" in capsys.readouterr().err
    assert main(["pagealloc", "replay", str(tmp_path / "missing.json")]) == 1
    assert "missing.json: cannot read" in capsys.readouterr().err


def test_cli_json_is_one_document_for_all_files(tmp_path, capsys):
    vector = load("TestPageAllocAlloc__AllFree5")
    vector["ops"][1]["scav_bytes"] += 8192
    bad = tmp_path / "AllFree5.json"
    bad.write_text(json.dumps(vector))
    good = VECTORS / "TestPageAllocGrow__One.json"
    assert main(["pagealloc", "replay", "--json", str(good), str(bad)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "gomemu.pagealloc-replay/v1" and doc["go"] == "go1.27.3" and doc["gomemu"]
    assert doc["vectors"] == [
        {"file": str(good), "name": "TestPageAllocGrow/One", "test": "TestPageAllocGrow", "case": "One",
         "pass": True, "mismatches": []},
        {"file": str(bad), "name": "TestPageAllocAlloc/AllFree5", "test": "TestPageAllocAlloc", "case": "AllFree5",
         "pass": False, "mismatches": ["ops[1] alloc(5) scav_bytes: 32768, recorded 40960"]},
    ]
    assert (doc["passed"], doc["failed"]) == (1, 1)
    assert main(["pagealloc", "replay", "--json", *map(str, VECTOR_FILES)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["passed"] == len(VECTOR_FILES) and all(v["pass"] for v in doc["vectors"])


def test_readme_pagealloc_example_runs(capsys):
    line = next(ln for ln in (ROOT / "README.md").read_text().splitlines() if ln.startswith("gomemu pagealloc replay"))
    argv = []
    for a in shlex.split(line.split("#")[0])[1:]:
        assert not a.startswith(".."), "a plain clone has nothing beside it"
        argv += sorted(map(str, ROOT.glob(a))) if "*" in a else [a]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"{len(VECTOR_FILES)} passed, 0 failed, {len(VECTOR_FILES)} vectors"


@pytest.mark.parametrize("impl", IMPLS)
def test_grow_maps_metadata_as_go_counts_it_in_sys_stat(impl):
    # mpagealloc.go/mpagealloc_64bit.go: init persistentallocs 16 addrRanges (256 B); the
    # first grow sysAllocs one L2 array of chunk bitmaps (8192 pallocData of 128 B, 1 MiB),
    # maps level 0's summaries whole (16384 x 8 B, 128 KiB), a page of each other level,
    # and a page of the scavenge index (512 chunks)
    p = impl()
    p.grow(0xC000000000, 4 << 20)
    assert p.sys_stat == 256 + (1 << 20) + (128 << 10) + 4 * 4096 + 4096
    p.grow(0xC000400000, 60 << 20)           # same pages, same L2 array: nothing new
    assert p.sys_stat == 256 + (1 << 20) + (128 << 10) + 4 * 4096 + 4096
