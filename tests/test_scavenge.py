"""The scavenger (runtime_model/mgcscavenge.py): its goals, its pacing in modeled time, the
madvise calls it makes, scavtrace's line and debug.FreeOSMemory."""

import re

import pytest

from emu.syscalls import SYS_MADVISE
from runtime_model.mgcscavenge import (MIN_SCAV_WORK_TIME, SCAVENGE_PERCENT, STARTING_SCAV_SLEEP_RATIO,
                                      scav_trace_line)
from runtime_model.mstats import heap_retained, read_mem_stats
from runtime_model.pagealloc import SCAV_CHUNK_HI_OCC_PAGES
from runtime_model.pagecache import PAGE_CACHE_PAGES
from runtime_model.pallocbits import PAGE_SIZE, PALLOC_CHUNK_PAGES
from runtime_model.pacer import MAX_UINT64
from tests.gcprog import call, machine, native

MiB = 1 << 20


def test_gc_percent_goal_is_last_heap_in_use_scaled_by_the_goals_plus_ten_percent_page_aligned():
    m = machine()
    s = m.runtime.scavenger
    s.last_heap_in_use = 10 * MiB + 1
    s.pace((1 << 63) - 1, 20 * MiB, 10 * MiB)
    # retained (a fresh heap: nothing in use or free) is below the goal: no work
    assert s.gc_percent_goal == MAX_UINT64
    s.last_heap_in_use, m.runtime.mheap.heap_free = 10 * MiB + 1, 64 * MiB
    s.pace((1 << 63) - 1, 20 * MiB, 10 * MiB)
    # 20 MiB + 2 = 20971522, plus a tenth (2097152) = 23068674, up to a 4 KiB page
    assert s.gc_percent_goal == 23072768
    assert s.memory_limit_goal == MAX_UINT64                      # no limit: nothing to do


def test_memory_limit_goal_is_95_percent_of_the_limit_while_mapped_memory_is_above_it():
    m = machine()
    s = m.runtime.scavenger
    s.pace(80 * MiB, 8 * MiB, 0)
    assert s.memory_limit_goal == MAX_UINT64 and s.gc_percent_goal == MAX_UINT64   # before the first GC
    s.pace(1 * MiB, 8 * MiB, 0)                                   # a limit below what is mapped
    assert s.memory_limit_goal == 996147                          # uint64(1048576 * 0.95)


@pytest.fixture(scope="module")
def dropped():
    """16 MiB live, churned, then half of it dropped: two collections later (the scavenge
    index's generation has moved on from when the chunks were dense) ~25 MiB is free, unreleased.

    Half stays live so that the goal can be met wherever the GC's timing left the free pages. In
    Go too the background scavenger cannot reach some free pages: those in the running P's page
    cache (gcMarkTermination flushes only idle Ps' caches; at most 64 pages) and those of a chunk
    with 496 pages or more in use (scavChunkData.shouldScavenge). With nothing live (Drop(0):
    344 KiB in use, the goal 36 KiB above it) 12 unscavenged free pages left in p0's cache by one
    GC timing kept retained memory above the goal for good, where another timing left the cache's
    pages scavenged. With ~11 MiB in use the goal's retainExtraPercent tenth covers the most those
    pages can be (the test checks that)."""
    m = machine({"GODEBUG": "scavtrace=1"})
    call(m, "Live", 4096)
    call(m, "Churn", 8192)
    call(m, "Drop", 2048)
    call(m, "GC")
    call(m, "GC")
    return m


def test_background_scavenger_brings_retained_memory_to_its_goal_at_one_percent_cpu(dropped):
    m = dropped
    rt, s = m.runtime, m.runtime.scavenger
    goal = s.gc_percent_goal
    before, rss_before = heap_retained(rt), m.kernel.rss_bytes()
    assert goal != MAX_UINT64 and before > goal + 4 * MiB
    # what Go hides from the background scavenger (see dropped) fits between the heap in use and the goal
    pages_in_use = sum(d[0] for d in rt.mheap.pages.state()["scav_chunks"].values())
    dense_free = pages_in_use // SCAV_CHUNK_HI_OCC_PAGES * (PALLOC_CHUNK_PAGES - SCAV_CHUNK_HI_OCC_PAGES)
    assert goal - rt.mheap.heap_in_use >= (PAGE_CACHE_PAGES + dense_free) * PAGE_SIZE
    madvise_before = sum(1 for r in m.kernel.log if r.nr == SYS_MADVISE)
    bg_before, t0 = s.background_time, m.clock.ns()
    for _ in range(400):                                          # 50 ms steps of idle time
        m.run_slow_path(s.idle(50_000_000))
        if heap_retained(rt) <= goal:
            break
    elapsed = m.clock.ns() - t0
    assert heap_retained(rt) <= goal                              # the goal is met
    assert m.kernel.rss_bytes() <= rss_before - (before - goal) // 2
    madvises = [r for r in m.kernel.log if r.nr == SYS_MADVISE][madvise_before:]
    assert madvises and all(r.note == "MADV_DONTNEED" for r in madvises)
    assert sum(r.args[1] for r in madvises) == s.released_bg_total
    # paced: each run works at least minScavWorkTime unless the goal or the heap ends it; the
    # PI controller starts from a 1:1000 work:sleep ratio and hunts for 1% of GOMAXPROCS' CPU
    runs = [r for r in s.runs if r[1] and r[0] >= t0]              # no GC wakes it early while idle
    assert len(runs) >= 2 and all(worked >= MIN_SCAV_WORK_TIME for _, _, worked in runs[:-1])
    assert runs[1][0] - runs[0][0] >= runs[0][2] / STARTING_SCAV_SLEEP_RATIO
    assert s.sleep_ratio > STARTING_SCAV_SLEEP_RATIO
    assert (s.background_time - bg_before) / elapsed <= SCAVENGE_PERCENT / 100


def test_scavtrace_lines_report_background_work_after_a_cycle(dropped):
    m = dropped
    call(m, "Churn", 64)
    call(m, "GC")
    bg = [line for line in m.runtime.scavenger.trace if not line.startswith("scav 0 KiB work (bg)")]
    assert bg and re.match(r"scav [1-9]\d* KiB work \(bg\)", bg[-1])


def shape(line):
    return re.sub(r"\d+", "N", line)


def test_scavtrace_lines_have_the_real_runtimes_format():
    out = native("TestScavTrace", {"GODEBUG": "scavtrace=1", "LIVE": "2048"})
    real = {shape(line) for line in out.stderr.splitlines() if line.startswith("scav ")}
    m = machine({"GODEBUG": "scavtrace=1"})
    call(m, "Live", 2048)
    call(m, "Churn", 4096)
    call(m, "Drop", 0)
    call(m, "Churn", 4096)
    call(m, "FreeOSMemory")
    ours = {shape(line) for line in m.runtime.scavenger.trace}
    assert real == ours == {"scav N KiB work (bg), N KiB work (eager), N KiB now, N% util",
                            "scav N KiB work (bg), N KiB work (eager), N KiB now, N% util (forced)"}


def test_scav_trace_line_marks_a_controller_reset():
    assert scav_trace_line(8192, 0, 4096, 1, 2, False, reset=True) == \
        "scav 8 KiB work (bg), 0 KiB work (eager), 4 KiB now, 50% util [controller reset]"


def test_free_os_memory_releases_every_free_page_with_madvise():
    m = machine()
    call(m, "Live", 2048)
    call(m, "Churn", 4096)
    call(m, "Drop", 16)
    advice = len(m.kernel.advice)
    call(m, "FreeOSMemory")
    st = read_mem_stats(m.runtime)
    assert st["NumForcedGC"] == 1
    # nothing free is kept but the unscavenged free pages of p0's page cache: scavengeAll does not
    # flush the running P's cache (in Go neither), and the GC's timing decides what it holds
    pc = m.runtime.mheap.pcache
    kept = (pc.cache & ~pc.scav).bit_count() * PAGE_SIZE
    assert st["HeapIdle"] - st["HeapReleased"] == kept
    assert len(m.kernel.advice) > advice
    # RSS is what is in use: the live heap, its spans' unused slots, the stacks and what the cache kept
    margin = st["HeapInuse"] - st["HeapAlloc"] + st["StackInuse"] + kept
    assert st["HeapAlloc"] <= m.kernel.rss_bytes() <= st["HeapAlloc"] + margin
    assert margin < 1 * MiB
