"""Tests of runtime_model.pagealloc against Go's vectors, a flat reference model and Go's tables."""

import argparse
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import emu.cli.pagealloc
from emu.errors import BadInput, InvariantError
from runtime_model.pagealloc import (
    BASE_CHUNK_IDX,
    PAGE_SIZE,
    PALLOC_CHUNK_BYTES,
    PageAlloc,
    check_page_alloc,
    chunk_base,
    chunk_index,
    compare,
    new_page_alloc,
    page_base,
    replay,
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

VECTORS = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "pagealloc"
VECTOR_FILES = sorted(VECTORS.glob("*.json"))
PAGES = 512


# ---- (a) Go's reference vectors ---------------------------------------------


def test_all_vectors_present():
    assert len(VECTOR_FILES) == 28


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.stem)
def test_vector_replays_exactly(path):
    vector = json.loads(path.read_text())
    result = replay(vector)
    assert compare(vector, result) == []
    # Every recorded result field is produced, not just the checked ones.
    for vop, rop in zip(vector.get("ops", []), result.get("ops", [])):
        for key in ("result", "scav_bytes", "released"):
            if key in vop:
                assert rop[key] == vop[key]


def test_replay_reads_no_recorded_results():
    vector = json.loads((VECTORS / "TestPageAllocAlloc__Straddle2.json").read_text())
    inputs = {k: vector[k] for k in ("test", "case", "chunks", "initial_state")}
    inputs["ops"] = [{k: op[k] for k in ("op", "npages")} for op in vector["ops"]]
    assert compare(vector, replay(inputs)) == []


def test_missing_key_is_bad_input():
    vector = json.loads((VECTORS / "TestPageAllocFree__Free1.json").read_text())
    del vector["initial_state"]
    with pytest.raises(BadInput, match="initial_state"):
        replay(vector)
    vector = json.loads((VECTORS / "TestPallocDataFindScavengeCandidate__MixedMin1.json").read_text())
    del vector["search_idx"]
    with pytest.raises(BadInput, match="search_idx"):
        replay(vector)


def test_compare_reports_mismatch():
    vector = json.loads((VECTORS / "TestPageAllocAlloc__AllFree5.json").read_text())
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


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(initial=st.sets(st.integers(0, len(GROUPS) - 1), min_size=1, max_size=3), ops=st.lists(op_strategy, max_size=25))
def test_matches_flat_first_fit(initial, ops):
    pa, ref = PageAlloc(), FlatModel()
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


def _go_candidate_table():
    """TestPallocDataFindScavengeCandidate's table (PhysHugePageSize = 2 MiB)."""
    P = PAGES
    t = {
        "MixedMin1": ([(0, 40), (42, P - 42)], [(0, 41), (42, P - 42)], 1, P, (41, 1)),
        "MultiMin1": ([(0, 63), (65, 20), (87, P - 87)], [(86, 1)], 1, P, (85, 1)),
    }
    m = 1
    while m <= 64:
        t[f"AllFreeMin{m}"] = ([], [], m, P, (0, P))
        t[f"AllScavengedMin{m}"] = ([], [(0, P)], m, P, (0, 0))
        t[f"NoneFreeMin{m}"] = ([(0, P)], [(P // 2, P // 2)], m, P, (0, 0))
        t[f"StartFreeMin{m}"] = ([(m, P - m)], [], m, P, (0, m))
        t[f"EndFreeMin{m}"] = ([(0, P - m)], [], m, P, (P - m, m))
        t[f"Straddle64Min{m}"] = ([(0, 64 - m), (64 + m, P - (64 + m))], [], m, 2 * m, (64 - m, 2 * m))
        t[f"BottomEdge64WithFullMin{m}"] = ([(64, 64), (128 + 3 * m, P - (128 + 3 * m))], [(1, 10)], m, 3 * m, (128, 3 * m))
        t[f"BottomEdge64WithPocketMin{m}"] = (
            [(64, 62), (127, 1), (128 + 3 * m, P - (128 + 3 * m))], [(1, 10)], m, 3 * m, (128, 3 * m))
        t[f"Max0Min{m}"] = ([], [(0, P - m)], m, 0, (P - m, m))
        if m <= 8:
            t["OneFree"] = ([(0, 40), (40 + m, P - (40 + m))], [], m, P, (40, m))
            t["OneScavenged"] = ([(0, 40), (40 + m, P - (40 + m))], [(40, 1)], m, P, (0, 0))
        if m > 1:
            t[f"MaxUnalignedMin{m}"] = ([], [(0, P - (m * 2 - 1))], m, m - 2, (P - m, m))
            t[f"SkipSmallMin{m}"] = ([(0, 64 - m), (64, 5), (70, 11), (82, P - 82)], [], m, m, (64 - m, m))
            t[f"SkipMisalignedMin{m}"] = ([(0, 64 - m), (64, 63), (127 + m, P - (127 + m))], [], m, m, (64 - m, m))
            t[f"MaxLessThanMin{m}"] = ([], [(0, P - m)], m, 1, (P - m, m))
        m *= 2
    t["PreserveHugePageBottom"] = ([(258, P - 258)], [], 1, 3, (0, 258))
    t["PreserveHugePageTop"] = ([(0, P - 256)], [], 1, 1, (P - 256, 256))
    return t


@pytest.mark.parametrize("name,case", sorted(_go_candidate_table().items()))
def test_find_scavenge_candidate_go_table(name, case):
    alloc, scav, mn, mx, want = case
    got = _pd(alloc, scav).find_scavenge_candidate(PAGES - 1, mn, mx)
    assert got == want or (got[1] == 0 and want[1] == 0)


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


def test_go_heap_address_space():
    calls = []
    pa = PageAlloc(on_grow=lambda base, size: calls.append((base, size)))
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


def test_exhaustion_sets_search_addr_max():
    pa = new_page_alloc({BASE_CHUNK_IDX: [(0, 511)]})
    assert pa.alloc(2) == (0, 0)
    assert pa.alloc(1)[0] == page_base(BASE_CHUNK_IDX, 511)
    assert pa.alloc(1) == (0, 0)
    pa.free(page_base(BASE_CHUNK_IDX, 7), 1)
    assert pa.alloc(1)[0] == page_base(BASE_CHUNK_IDX, 7)


def test_check_page_alloc_detects_corruption():
    pa = new_page_alloc({BASE_CHUNK_IDX: [], BASE_CHUNK_IDX + 1: []})
    pa.chunk_of(BASE_CHUNK_IDX).bits |= 1 << 300  # bitmap changed behind the summaries' back
    with pytest.raises(InvariantError, match=r"level 4 index .*expected \(300, 300, 211\), found \(512, 512, 512\)"):
        check_page_alloc(pa)


def test_background_scavenge_skips_dense_chunks():
    pa = new_page_alloc({BASE_CHUNK_IDX: [(0, 500)], BASE_CHUNK_IDX + 1: [(0, 100)]})
    # Nothing freed since the last generation yet: the background cursor is clear.
    assert pa.scavenge(2**64 - 1, force=False) == 0
    pa.next_gen()
    assert pa.scavenge(2**64 - 1, force=False) == 412 * PAGE_SIZE  # chunk 0 is >= 496 pages dense
    assert pa.scavenge(2**64 - 1, force=True) == 12 * PAGE_SIZE


# ---- (d) the CLI ---------------------------------------------------------------


def _run_cli(argv):
    parser = argparse.ArgumentParser(prog="gomemu")
    emu.cli.pagealloc.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.handler(args)


def test_cli_all_pass(capsys):
    assert _run_cli(["pagealloc", "replay", *map(str, VECTOR_FILES)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 29
    assert "PASS TestPageAllocAlloc/Straddle2" in lines
    assert lines[-1] == "28 passed, 0 failed, 28 vectors"


def test_cli_failure_and_bad_files(tmp_path, capsys):
    vector = json.loads((VECTORS / "TestPageAllocScavenge__ScavMultiple.json").read_text())
    vector["ops"][0]["released"] = 12345
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(vector))
    assert _run_cli(["pagealloc", "replay", str(VECTOR_FILES[0]), str(bad)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("FAIL TestPageAllocScavenge/ScavMultiple: ops[0] scavenge(8192) released: 8192, recorded 12345")
    assert out[-1] == "1 passed, 1 failed, 2 vectors"

    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(BadInput, match="broken.json"):
        _run_cli(["pagealloc", "replay", str(broken)])
    with pytest.raises(BadInput, match="missing.json"):
        _run_cli(["pagealloc", "replay", str(tmp_path / "missing.json")])
    del vector["chunks"]
    bad.write_text(json.dumps(vector))
    with pytest.raises(BadInput, match="bad.json.*'chunks'"):
        _run_cli(["pagealloc", "replay", str(bad)])
