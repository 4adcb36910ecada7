"""The memory limit: memoryLimitHeapGoal from the heap's real statistics, the GC CPU limiter,
and the soft limit (runtime_model/mgclimit.py, mstats.py; the pacer's memoryLimitHeapGoal)."""

import pytest

from runtime_model.mgclimit import CAPACITY_PER_PROC_NS, GcCPULimiter
from runtime_model.mstats import mapped_ready, read_mem_stats
from runtime_model.pacer import GC_BACKGROUND_UTILIZATION, MAX_OVERSHOOT
from tests.gcprog import BLOCK, call, machine

MS, SECOND, HOUR = 1_000_000, 1_000_000_000, 3600 * 1_000_000_000


def test_cpu_limiter_follows_gos_own_test():
    """mgclimit_test.go: TestGCCPULimiter, step by step, on the test limiter (no Ps)."""
    procs = 14
    ticks = 0

    def advance(d):
        nonlocal ticks
        ticks += int(d)
        return ticks

    def assist_time(d, frac):
        return int(frac * float(d) * procs)

    lim = GcCPULimiter(None, ticks, procs)
    base_overflow = 0
    for _ in range(2):
        assert lim.capacity == procs * CAPACITY_PER_PROC_NS and lim.fill == 0
        for d in (10 * MS, SECOND, HOUR):
            lim.update(advance(d))
        assert lim.fill == 0                                    # mutator time only
        assert not lim.need_update(advance(5 * MS))
        assert lim.need_update(advance(10 * MS))
        lim.update(advance(0))
        assert not lim.need_update(advance(0))
        lim.start_gc_transition(True, advance(109 * MS))
        lim.finish_gc_transition(advance(2 * MS + 1000))
        fill = (2 * MS + 1000) * procs
        assert lim.fill == fill                                 # the stopped world is all GC
        factor = 1 / (1 - 2 * GC_BACKGROUND_UTILIZATION)
        lim.update(advance(int(factor * float(fill - procs) / procs)))
        assert lim.fill == procs                                # drained while the GC runs
        lim.update(advance(2 * procs * CAPACITY_PER_PROC_NS))
        assert lim.fill == 0
        lim.add_assist_time(assist_time(10 * MS, 0.5 - GC_BACKGROUND_UTILIZATION))
        lim.update(advance(10 * MS))
        assert lim.fill == 0                                    # 50% GC: nothing accumulates
        lim.add_assist_time(assist_time(MS, 1.0 - GC_BACKGROUND_UTILIZATION))
        lim.update(advance(MS))
        assert lim.fill == procs * MS and not lim.limiting()    # 100% GC for 1 ms
        lim.add_assist_time(assist_time(CAPACITY_PER_PROC_NS - MS, 1.0 - GC_BACKGROUND_UTILIZATION))
        lim.update(advance(CAPACITY_PER_PROC_NS - MS))
        assert lim.fill == lim.capacity and lim.limiting() and lim.overflow == base_overflow
        lim.add_assist_time(assist_time(SECOND, 0.5 - GC_BACKGROUND_UTILIZATION))
        lim.update(advance(SECOND))
        assert lim.fill == lim.capacity and lim.limiting() and lim.overflow == base_overflow
        lim.add_assist_time(assist_time(CAPACITY_PER_PROC_NS, 0))
        lim.update(advance(CAPACITY_PER_PROC_NS))
        assert lim.fill == lim.capacity // 2 and not lim.limiting()
        lim.add_assist_time(assist_time(CAPACITY_PER_PROC_NS, 1.0 - GC_BACKGROUND_UTILIZATION))
        lim.update(advance(CAPACITY_PER_PROC_NS))
        assert lim.fill == lim.capacity and lim.limiting()
        assert lim.overflow == CAPACITY_PER_PROC_NS * procs // 2 + base_overflow
        lim.add_assist_time(assist_time(MS, 1.0 - GC_BACKGROUND_UTILIZATION))
        lim.start_gc_transition(False, advance(MS))
        assert lim.fill == lim.capacity and lim.limiting()
        assert lim.overflow == (CAPACITY_PER_PROC_NS // 2 + MS) * procs + base_overflow
        lim.finish_gc_transition(advance(5 * MS))
        overflow = (CAPACITY_PER_PROC_NS // 2 + 6 * MS) * procs
        assert lim.fill == lim.capacity and lim.limiting() and lim.overflow == overflow + base_overflow
        fill = lim.capacity
        lim.reset_capacity(advance(0), procs + 10)
        assert lim.fill == fill and not lim.limiting() and lim.overflow == overflow + base_overflow
        lim.reset_capacity(advance(0), procs - 10)
        assert lim.fill == lim.capacity and lim.limiting() and lim.overflow == overflow + base_overflow
        lim.reset_capacity(advance(CAPACITY_PER_PROC_NS * procs), procs)
        base_overflow += overflow


def run_churn(env, live_blocks, garbage_blocks, procs=1):
    """gcstats: a live heap of 4 KiB blocks, then garbage against it; RSS and the goal are
    recorded at the end of every cycle."""
    m = machine(env, procs)
    seen = []

    def on_cycle(cyc):
        m.runtime.gc.sync_stats()
        c = m.runtime.gc_controller
        at_live = c.memory_limit_heap_goal() == c.heap_marked      # the soft limit's floor binds
        seen.append((m.kernel.rss_bytes(), cyc.goal, mapped_ready(m.runtime), at_live))
    m.runtime.gc.on_cycle = on_cycle
    assert call(m, "Live", live_blocks) == live_blocks
    del seen[:]                                                   # the cycles of the churn only
    assert call(m, "Churn", garbage_blocks) == garbage_blocks      # every allocation completes
    return m, seen


LIMIT = 12 << 20
# RSS above the limit that gomemu's heap may show: the limit bounds mappedReady (heap pages,
# stacks, metadata), and RSS counts the heap's and stacks' resident pages; the difference
# allowed is what is mapped Ready but not counted in mappedReady: nothing in this model.
RSS_OVERHEAD = 0


@pytest.fixture(scope="module")
def limited():
    return run_churn({"GOMEMLIMIT": "12MiB"}, 2048, 4096)


@pytest.fixture(scope="module")
def unlimited():
    return run_churn({}, 2048, 4096)


def test_memory_limit_makes_the_gc_run_more_often(limited, unlimited):
    (lm, _), (um, _) = limited, unlimited
    assert len(lm.runtime.gc.cycles) > 3 * len(um.runtime.gc.cycles)
    # without the limit the goal is GOGC's: twice the live heap
    assert um.runtime.gc.cycles[-1].goal > 2 * 2048 * BLOCK


def test_memory_limit_bounds_the_goal_mapped_memory_and_rss(limited):
    m, seen = limited
    assert seen and all(goal < LIMIT for _, goal, _, _ in seen)
    # 8 MiB of live blocks and the runtime's own 4.5 MiB (stacks, metadata, profiling
    # buckets; runtime_model/mstats.py) do not fit in 12 MiB: mappedReady passes the limit
    # only where the goal has reached its floor, the marked heap. So does the real
    # program's under 12 MiB (tests/data/churn/memstats_small_memlimit12.txt: Sys -
    # HeapReleased 13.2-13.5 MB halfway, NextGC the live heap). Elsewhere the heap may
    # pass its goal while a cycle marks by the pacer's own allowance (mgcpacer.go revise:
    # a 10% overshoot, maxOvershoot; at GOMAXPROCS=1 the fractional worker marks at 25%
    # of the one P, so a mark lasts about 0.6 ms of allocation).
    over = (MAX_OVERSHOOT - 1) * max(goal for _, goal, _, _ in seen)
    assert all(ready <= LIMIT + over or at_live for _, _, ready, at_live in seen)
    assert any(ready > LIMIT for _, _, ready, _ in seen)
    assert all(rss <= LIMIT + over + RSS_OVERHEAD for rss, _, _, _ in seen)


def test_goal_under_a_limit_is_memory_limit_heap_goal_of_the_heaps_statistics(limited):
    m, _ = limited
    c = m.runtime.gc_controller
    m.runtime.gc.sync_stats()
    st = read_mem_stats(m.runtime)
    assert c.mapped_ready == st["Sys"] - st["HeapReleased"]       # mappedReady = totalMapped - released
    assert c.heap_free == st["HeapIdle"] - st["HeapReleased"]
    assert c.heap_goal() == c.memory_limit_heap_goal() < c.gc_percent_heap_goal


def test_live_heap_above_the_limit_goes_on_allocating_with_the_goal_at_the_live_heap():
    m, seen = run_churn({"GOMEMLIMIT": "4MiB"}, 2048, 1024)        # 8 MiB live
    c = m.runtime.gc_controller
    assert c.heap_marked > 4 << 20
    assert c.memory_limit_heap_goal() == c.heap_marked            # the soft limit: never below live
    # back to back: the trigger is the marked heap, so each cycle starts a refill or so
    # after the one before ended (gcControllerState.trigger: marked >= goal)
    cycles = m.runtime.gc.cycles[-len(seen):]
    assert len(seen) >= 4 and all(c.heap0 <= prev.heap2 + 64 * 1024 for prev, c in zip(cycles, cycles[1:]))
    assert all(goal >= 2048 * BLOCK for _, goal, _, _ in seen[1:])    # from cycles after Live


def test_limiting_cpu_limiter_skips_assists_and_the_goroutine_keeps_its_debt():
    m = machine({"GOMEMLIMIT": "4MiB"})
    call(m, "Live", 2048)
    lim = m.runtime.limiter
    lim.fill, lim.enabled = lim.capacity, True                   # as after 1 s of GC over 50%
    lim.last_update = m.runtime.machine.clock.ns()
    assists = len(m.runtime.assists)
    call(m, "Churn", 256)
    assert len(m.runtime.assists) == assists                     # gcAssistAlloc returned at once
    assert lim.limiting()                                        # nothing drained it within 10 ms
