"""The page allocator's C core (CPageAlloc, the running implementation) against the Python
reference model (PyPageAlloc): the same results, the same full state and the same typed
errors, under random operation sequences; Go's bit-level functions alike; and how the core
is built, cached and, without a compiler, replaced by the model.

Go's own vectors run on both in tests/test_pagealloc.py and tests/test_pagecache.py.
"""

import copy
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from emu.errors import BadInput, InvariantError
from runtime_model import cpagealloc
from runtime_model.cpagealloc import build
from runtime_model.pagealloc import (
    ARENA_BASE_OFFSET,
    BASE_CHUNK_IDX,
    HEAP_ADDR_BITS,
    LOG_MAX_PACKED_VALUE,
    PAGE_SIZE,
    PALLOC_CHUNK_BYTES,
    PHYS_HUGE_PAGE_SIZE,
    PHYS_PAGE_SIZE,
    SCAV_CHUNK_HI_OCC_PAGES,
    CPageAlloc,
    PageAlloc,
    PyPageAlloc,
    check_page_alloc,
    chunk_base,
    new_page_alloc,
    page_base,
)
from runtime_model.pagecache import PAGE_CACHE_PAGES, PageCache
from runtime_model.pallocbits import (
    FULL,
    LOG_PALLOC_CHUNK_PAGES,
    PAGE_SHIFT,
    PALLOC_CHUNK_PAGES,
    SUMMARY_LEVEL_BITS,
    SUMMARY_LEVELS,
    find_bit_range64,
    merge_summaries,
    pack_palloc_sum,
    palloc_find,
    summarize,
)

from tests.conftest import ROOT
from tests.pagealloc_impls import C_CORE

# Chunk groups relative to BaseChunkIdx: discontiguous, one sharing a summary page with
# the others' neighbours, one 4 GiB away, one across an L2 boundary of p.chunks.
GROUPS = [(0, 2), (3, 1), (8, 3), (40, 1), (0x1000, 2), (0x1FFF, 2)]


def test_the_c_core_is_built_wherever_a_compiler_is():
    if build.compiler() is None:
        pytest.skip("no C compiler on PATH")
    assert cpagealloc.core_unavailable() is None
    if os.environ.get("GOMEMU_PAGEALLOC") != "python":
        assert PageAlloc is CPageAlloc


@C_CORE
def test_the_c_core_has_the_models_constants():
    assert cpagealloc.constants() == [
        HEAP_ADDR_BITS, ARENA_BASE_OFFSET, PAGE_SHIFT, LOG_PALLOC_CHUNK_PAGES, SUMMARY_LEVELS, SUMMARY_LEVEL_BITS,
        LOG_MAX_PACKED_VALUE, 13, PHYS_PAGE_SIZE, PHYS_HUGE_PAGE_SIZE, SCAV_CHUNK_HI_OCC_PAGES, PAGE_CACHE_PAGES,
        256, 2 * PALLOC_CHUNK_PAGES // 8]


# ---- Go's bit-level functions: mpallocbits.c against pallocbits.py -------------------------

# Bitmaps with runs of every length, not just noise.
bitmaps = st.lists(st.tuples(st.integers(0, 511), st.integers(1, 300), st.booleans()), max_size=12).map(
    lambda runs: _paint(runs))


def _paint(runs):
    b = 0
    for s, n, on in runs:
        m = ((1 << min(n, 512 - s)) - 1) << s
        b = b | m if on else b & ~m
    return b & FULL


# summarize's edges: no page free, every page free, and a 62-page run inside word 0 that
# only its in-word search finds (the longest run across words is 61).
INNER_62 = 1 | 1 << 63 | (FULL & ~((1 << 64) - 1) & ~(((1 << 61) - 1) << 100))


@C_CORE
@settings(max_examples=400, deadline=None)
@given(bitmaps)
@example(FULL)
@example(0)
@example(INNER_62)
def test_summarize_is_the_models(bits):
    assert cpagealloc.summarize(bits) == summarize(bits)


@C_CORE
@settings(max_examples=400, deadline=None)
@given(bitmaps, st.one_of(st.integers(1, 70), st.integers(1, 600)), st.integers(0, 511))
def test_palloc_find_is_the_models(bits, npages, search_idx):
    assert cpagealloc.palloc_find(bits, npages, search_idx) == palloc_find(bits, npages, search_idx)


@C_CORE
@settings(max_examples=300, deadline=None)
@given(st.sampled_from([9, 12, 15, 18]), st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2**18)),
                                                    min_size=8, max_size=8))
def test_merge_summaries_is_the_models(log, picks):
    full = 1 << log
    sums = [0 if k == 0 else pack_palloc_sum(full, full, full) if k == 1 else
            pack_palloc_sum(min(v, full), min(v, full), min(v, full) // 2) for k, v in picks]
    assert cpagealloc.merge_summaries(sums, log) == merge_summaries(sums, log)


@C_CORE
@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**64 - 1), st.integers(1, 130))
def test_find_bit_range64_is_the_models(c, n):
    assert cpagealloc.find_bit_range64(c, n) == find_bit_range64(c, n)


@C_CORE
@settings(max_examples=300, deadline=None)
@given(bitmaps, bitmaps, st.integers(0, 511), st.sampled_from([1, 2, 4, 8, 16, 32, 64]), st.integers(0, 600))
def test_find_scavenge_candidate_is_the_models(bits, scav, search_idx, minimum, max_):
    args = (bits, scav, search_idx, minimum, max_)
    assert CPageAlloc.find_scavenge_candidate(*args) == PyPageAlloc.find_scavenge_candidate(*args)


# ---- the allocator: both driven alike --------------------------------------------------------

op = st.one_of(
    st.tuples(st.just("alloc"), st.one_of(st.integers(1, 16), st.integers(1, 70), st.integers(1, 1500))),
    st.tuples(st.just("free"), st.integers(0, 10**6)),
    st.tuples(st.just("free_many"), st.lists(st.integers(0, 10**6), max_size=6)),
    st.tuples(st.just("refill"), st.integers(0, 1)),
    st.tuples(st.just("calloc"), st.integers(0, 1), st.integers(1, 16)),
    st.tuples(st.just("flush"), st.integers(0, 1)),
    st.tuples(st.just("scavenge"), st.sampled_from([1, PAGE_SIZE, 7 * PAGE_SIZE, 300 * PAGE_SIZE, 2**64 - 1]),
              st.booleans()),
    st.tuples(st.just("next_gen")),
    st.tuples(st.just("grow"), st.integers(0, len(GROUPS) - 1)),
    # Bad calls: freeing what is free, outside the heap, no pages.
    st.tuples(st.just("double_free"), st.integers(0, 10**6)),
    st.tuples(st.just("free_outside"), st.integers(1, 600)),
)


class Twin:
    """One allocator of each implementation, two page caches each, and the live runs."""

    def __init__(self, initial):
        self.pa = [PyPageAlloc(), CPageAlloc()]
        self.caches = [[PageCache(), PageCache()] for _ in self.pa]
        self.live, self.freed, self.grown = [], [], set()
        for g in sorted(initial):
            self.both("grow", g)

    def call(self, k, kind, args):
        pa, caches = self.pa[k], self.caches[k]
        if kind == "grow":
            first, n = GROUPS[args[0]]
            return pa.grow(chunk_base(BASE_CHUNK_IDX + first), n * PALLOC_CHUNK_BYTES)
        if kind == "refill":
            if caches[args[0]].empty():
                caches[args[0]] = pa.alloc_to_cache()
            return caches[args[0]]
        if kind == "calloc":
            return caches[args[0]].alloc(args[1])
        if kind == "flush":
            return caches[args[0]].flush(pa)
        return getattr(pa, kind)(*args)

    def both(self, kind, *args, refusable=False):
        """The call on each: the same result, or (if refusable) the same error and no change."""
        out = []
        for k in range(2):
            before = self.pa[k].state() if refusable else None
            try:
                out.append(("ok", self.call(k, kind, args)))
            except (BadInput, InvariantError) as e:
                if not refusable:
                    raise
                out.append((type(e), str(e)))
                assert self.pa[k].state() == before, f"a refused {kind}{args} changed {type(self.pa[k]).__name__}"
        assert out[0] == out[1], f"{kind}{args}"
        return out[0]

    def in_use(self, base, n):
        """Whether freeing [base, +n pages) would take some chunk's count below zero (refused)."""
        counts = self.pa[0].state()["scav_chunks"]
        p = (base - ARENA_BASE_OFFSET) % 2**64 // PAGE_SIZE
        while n:
            ci, i = divmod(p, PALLOC_CHUNK_PAGES)
            k = min(n, PALLOC_CHUNK_PAGES - i)
            if counts[ci][0] < k:
                return True
            p, n = p + k, n - k
        return False

    def step(self, o):
        kind = o[0]
        if kind in ("alloc", "calloc"):
            r = self.both(kind, *o[1:])[1]
            if r[0]:
                self.live.append((r[0], o[-1]))
        elif kind == "free" and self.live:
            self.freed.append(self.live.pop(o[1] % len(self.live)))
            self.both("free", *self.freed[-1])
        elif kind == "free_many":
            batch = [self.live.pop(i % len(self.live)) for i in o[1] if self.live]
            self.freed += batch
            self.both("free_many", batch)
        elif kind == "double_free" and self.freed:
            # Go does not see a double free unless a chunk's count would go below zero:
            # only those are made here (the others would corrupt both alike).
            base, n = self.freed[o[1] % len(self.freed)]
            if self.in_use(base, n):
                self.both("free", base, n, refusable=True)
                self.both("free_many", self.live[-1:] + [(base, n)], refusable=True)
        elif kind == "free_outside":
            self.both("free", page_base(BASE_CHUNK_IDX + 0x800, 0), o[1], refusable=True)
            self.both("free_many", self.live[:1] + [(page_base(BASE_CHUNK_IDX - 1, 500), o[1])], refusable=True)
        elif kind == "grow":
            self.both("grow", o[1], refusable=True)  # a group grown before: "grown twice"
        elif kind in ("refill", "flush", "scavenge", "next_gen"):
            self.both(kind, *o[1:])
        assert self.pa[0].state() == self.pa[1].state(), f"after {o}"


@C_CORE
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(initial=st.sets(st.integers(0, len(GROUPS) - 1), min_size=1, max_size=3), ops=st.lists(op, max_size=40))
def test_c_core_gives_the_models_results_and_state(initial, ops):
    twin = Twin(initial)
    assert twin.pa[0].state() == twin.pa[1].state()
    for o in ops:
        twin.step(o)
    for pa in twin.pa:
        check_page_alloc(pa)
    # Everything given back: the same wholly free heap, and the same scavenging of it.
    for k in range(2):
        for c in twin.caches[k]:
            c.flush(twin.pa[k])
    twin.both("free_many", twin.live)
    twin.both("scavenge", 2**64 - 1, True)
    assert twin.pa[0].state() == twin.pa[1].state()


@C_CORE
@pytest.mark.parametrize("call, error, message", [
    (lambda pa: pa.alloc(0), BadInput, "pageAlloc.alloc: npages must be positive, got 0"),
    (lambda pa: pa.alloc(-3), BadInput, "got -3"),
    (lambda pa: pa.free(page_base(BASE_CHUNK_IDX, 0), 0), BadInput, "pageAlloc.free: npages must be positive"),
    (lambda pa: pa.free(page_base(BASE_CHUNK_IDX, 0), 2**70), InvariantError, "is not in grown memory"),
    (lambda pa: pa.free(page_base(BASE_CHUNK_IDX, 0), 1), InvariantError, "allocated pages below zero?"),
    (lambda pa: pa.free(page_base(BASE_CHUNK_IDX + 1, 100), 600), InvariantError, "is not in grown memory"),
    (lambda pa: pa.free(-PAGE_SIZE, 1), InvariantError, "[-0x2000, +1 pages) is not in grown memory"),
    (lambda pa: pa.free_many([(page_base(BASE_CHUNK_IDX, 5), 1), (page_base(BASE_CHUNK_IDX, 5), -1)]),
     BadInput, "npages must be positive, got -1"),
    (lambda pa: pa.free_many([(page_base(BASE_CHUNK_IDX + 1, 0), 1), (page_base(BASE_CHUNK_IDX + 1, 0), 1)]),
     InvariantError, "allocated pages below zero? chunk 0x200c001 inUse=1 npages=2"),
    (lambda pa: pa.grow(chunk_base(BASE_CHUNK_IDX), 1), InvariantError, "chunk 0x200c000 grown twice"),
    (lambda pa: pa.grow(chunk_base(BASE_CHUNK_IDX - 1), 2 * PALLOC_CHUNK_BYTES), InvariantError,
     "chunk 0x200c000 grown twice"),
    (lambda pa: pa.grow(((1 << HEAP_ADDR_BITS) - PALLOC_CHUNK_BYTES + ARENA_BASE_OFFSET) % 2**64, 2 * PALLOC_CHUNK_BYTES),
     BadInput, "outside the 48-bit heap"),
    (lambda pa: pa.grow(0xC000000000, 0), BadInput, "size must be positive"),
    (lambda pa: PageCache(page_base(BASE_CHUNK_IDX + 5, 0), 1, 0).flush(pa), InvariantError,
     "is not a 64-page block of grown memory"),
    (lambda pa: PageCache(page_base(BASE_CHUNK_IDX, 3), 1, 0).flush(pa), InvariantError,
     "is not a 64-page block of grown memory"),
    (lambda pa: pa.find_scavenge_candidate(0, 0, 0, 3, 1), BadInput, "min must be a non-zero power of 2, got 3"),
    (lambda pa: pa.find_scavenge_candidate(0, 0, 0, 128, 1), BadInput, "min too large: 128"),
])
def test_bad_input_is_the_same_typed_error_on_both_and_changes_nothing(call, error, message):
    errors = []
    for impl in (PyPageAlloc, CPageAlloc):
        pa = new_page_alloc({BASE_CHUNK_IDX: [], BASE_CHUNK_IDX + 1: [(0, 1)]}, impl=impl)
        before = pa.state()
        with pytest.raises(error, match=None) as e:
            call(pa)
        assert message in str(e.value)
        assert pa.state() == before
        errors.append((type(e.value), str(e.value)))
    assert errors[0] == errors[1]


@C_CORE
def test_a_deep_copy_of_the_c_core_is_independent():
    pa = new_page_alloc({BASE_CHUNK_IDX: [(0, 100)], BASE_CHUNK_IDX + 3: []}, impl=CPageAlloc)
    twin = copy.deepcopy(pa)
    assert twin.state() == pa.state()
    assert twin.alloc(500) == (page_base(BASE_CHUNK_IDX + 3, 0), 0)
    assert twin.alloc(500) == (0, 0)
    assert pa.state() != twin.state()
    del twin
    assert pa.alloc(500) == (page_base(BASE_CHUNK_IDX + 3, 0), 0)
    check_page_alloc(pa)


@C_CORE
def test_scavenging_reports_each_released_run_to_on_release_in_order():
    runs = {}
    for impl in (PyPageAlloc, CPageAlloc):
        got = []
        pa = new_page_alloc({BASE_CHUNK_IDX + c: [(0, 1)] if c % 2 else [] for c in range(200)}, impl=impl,
                            on_release=lambda addr, n: got.append((addr, n)))
        assert pa.scavenge(2**64 - 1) == sum(n for _, n in got) > 0
        runs[impl] = got
    assert len(runs[CPageAlloc]) > 64  # more than one of the C loop's batches
    assert runs[CPageAlloc] == runs[PyPageAlloc]


# ---- building, caching and the fallback ------------------------------------------------------

def _python(code, **env):
    """Run code in a fresh interpreter on this checkout; (stdout, stderr)."""
    full = {k: v for k, v in os.environ.items() if k != "GOMEMU_PAGEALLOC"}
    full.update(PYTHONPATH=str(ROOT), **env)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout, r.stderr


PROBE = ("from runtime_model.pagealloc import PageAlloc; pa = PageAlloc(); pa.grow(0xC000000000, 4 << 20); "
         "print(PageAlloc.__name__, pa.alloc(3))")


def test_first_use_builds_the_core_into_the_cache_and_later_runs_reuse_it(tmp_path):
    if build.compiler() is None:
        pytest.skip("no C compiler on PATH")
    out, err = _python(PROBE, XDG_CACHE_HOME=str(tmp_path))
    assert out == f"CPageAlloc ({0xC000000000}, {3 * PAGE_SIZE})\n" and err == ""
    built = list((tmp_path / "gomemu").glob("cpagealloc-*/libcpagealloc.so"))
    assert [p.parent.name for p in built] == [build.core_dir().name]
    stamp = built[0].stat().st_mtime_ns
    assert _python(PROBE, XDG_CACHE_HOME=str(tmp_path)) == (out, "")
    assert built[0].stat().st_mtime_ns == stamp


def test_without_a_compiler_the_model_runs_and_one_line_says_so(tmp_path):
    out, err = _python(PROBE, XDG_CACHE_HOME=str(tmp_path), PATH=str(tmp_path))
    assert out == f"PyPageAlloc ({0xC000000000}, {3 * PAGE_SIZE})\n"
    assert err.count("\n") == 1 and err.startswith("gomemu: page allocator: running the Python reference model")
    assert "no C compiler found" in err
    assert not list((tmp_path / "gomemu").glob("cpagealloc-*"))


def test_a_cache_that_cannot_be_written_runs_the_model_and_one_line_says_so(tmp_path):
    if build.compiler() is None:
        pytest.skip("no C compiler on PATH")
    (tmp_path / "file").write_text("")           # the cache's root is a file: mkdir fails
    out, err = _python(PROBE, XDG_CACHE_HOME=str(tmp_path / "file"))
    assert out.startswith("PyPageAlloc ")
    assert err.count("\n") == 1 and "cannot build in " in err


def test_a_failed_build_is_noted_and_not_retried_at_run_time(tmp_path):
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "gcc"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\necho broken >&2\necho x >> {calls}\nexit 3\n")
    fake.chmod(0o755)
    env = dict(XDG_CACHE_HOME=str(tmp_path), PATH=str(fake.parent))
    for _ in range(2):
        out, err = _python(PROBE, **env)
        assert out.startswith("PyPageAlloc ") and "its build failed: gcc exited with status 3" in err
    assert calls.read_text() == "x\n"
    log = next((tmp_path / "gomemu").glob("cpagealloc-*.log")).read_text()
    assert "broken" in log


def test_gomemu_pagealloc_python_selects_the_model_without_a_notice():
    out, err = _python(PROBE, GOMEMU_PAGEALLOC="python")
    assert out.startswith("PyPageAlloc ") and err == ""


def test_the_cache_key_follows_the_c_sources(tmp_path, monkeypatch):
    real = build.core_dir()
    for src in build.sources():
        (tmp_path / src.name).write_bytes(src.read_bytes())
    monkeypatch.setattr(build, "SOURCE_DIR", tmp_path)
    assert build.core_dir() == real
    with open(tmp_path / "mpagealloc.c", "a") as f:
        f.write("/* changed */\n")
    assert build.core_dir() != real
