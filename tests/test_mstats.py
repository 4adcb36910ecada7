"""Go's names for the collector's state: runtime.ReadMemStats, runtime/metrics, and the heap
goal identity every cycle (runtime_model/mstats.py, metrics.py, the call-outs of
runtime.ReadMemStats, runtime/metrics.Read and runtime/debug's setters)."""

import statistics
from pathlib import Path

import pytest

from runtime_model import metrics
from runtime_model.mstats import read_mem_stats
from tests.gcprog import MEMSTAT, call, fields, machine, native

LIVE = 1024          # 4 MiB live: every goal below is above GOGC's heap minimum (4 MiB x GOGC/100)
CYCLES = 4


def identity(goal, live, stack, globals_, gogc):
    return goal == live + (live + stack + globals_) * gogc // 100


@pytest.mark.parametrize("gogc", [50, 100, 400])
def test_real_go_reports_the_goal_identity_every_cycle(gogc):
    out = native("TestCycles", {"GOGC": str(gogc), "LIVE": str(LIVE), "CYCLES": str(CYCLES)})
    rows = [fields(line) for line in out.stdout.splitlines() if line.startswith("cycle ")]
    assert len(rows) == CYCLES
    for r in rows:
        assert identity(r["goal"], r["live"], r["stack"], r["globals"], gogc), r


@pytest.mark.parametrize("gogc", [50, 100, 400])
def test_gomemu_reports_the_goal_identity_every_cycle_through_runtime_metrics(gogc):
    m = machine({"GOGC": str(gogc)})
    call(m, "Live", LIVE)
    seen = []
    m.runtime.gc.on_cycle = lambda cyc: seen.append(metrics.read(m.runtime, (
        "/gc/heap/goal:bytes", "/gc/heap/live:bytes", "/gc/scan/stack:bytes", "/gc/scan/globals:bytes")))
    for _ in range(CYCLES):
        goal, live, stack, globals_ = call(m, "Cycles", 1, results=4)   # the program's metrics.Read
        assert identity(goal, live, stack, globals_, gogc)
        assert live >= LIVE * 4096
    for v in seen[-CYCLES:]:                                          # every cycle, not only those read
        assert identity(*v.values(), gogc)


def test_read_mem_stats_from_the_program_is_readmemstats_m():
    m = machine()
    call(m, "Live", 512)
    call(m, "Churn", 4096)
    got = {name: call(m, "MemStat", i) for i, name in enumerate(MEMSTAT)}
    want = read_mem_stats(m.runtime)
    assert got == {name: want[name] for name in MEMSTAT}           # MemStat itself allocates nothing
    assert got["NumGC"] == len(m.runtime.gc.cycles) > 0
    assert got["HeapSys"] == got["HeapInuse"] + got["HeapIdle"]
    assert got["HeapAlloc"] <= got["HeapInuse"]


def test_mem_stats_count_tiny_allocations_as_mallocs_and_frees():
    from emu.gobuild import runtime_image_path
    from emu.machine import Machine
    m = Machine(image=runtime_image_path())
    for _ in range(100):
        m.mallocgc(8)                  # two to a 16-byte block: 50 blocks, 50 combined
    st = read_mem_stats(m.runtime)
    assert st["Mallocs"] == 100 and st["HeapObjects"] == 50
    assert st["Frees"] == st["Mallocs"] - st["HeapObjects"]


def test_set_gc_percent_and_memory_limit_from_the_program_return_the_previous_values():
    m = machine({"GOGC": "80", "GOMEMLIMIT": "1GiB"})
    assert call(m, "SetGCPercent", 200) == 80
    assert m.runtime.gc_controller.gc_percent == 200
    assert call(m, "SetGCPercent", -1) == 200                      # GOGC=off
    assert metrics.read(m.runtime, ["/gc/gogc:percent"])["/gc/gogc:percent"] == (1 << 64) - 1
    assert call(m, "SetMemoryLimit", 64 << 20) == 1 << 30
    assert call(m, "SetMemoryLimit", -1) == 64 << 20              # negative: only reads it
    assert metrics.read(m.runtime, ["/gc/gomemlimit:bytes"])["/gc/gomemlimit:bytes"] == 64 << 20


def test_memory_classes_add_up_to_the_total_and_unknown_names_read_bad():
    m = machine()
    call(m, "Live", 256)
    call(m, "GC")
    names = [n for n in metrics.METRICS if n.startswith("/memory/classes/") and n != "/memory/classes/total:bytes"]
    v = metrics.read(m.runtime, names + ["/memory/classes/total:bytes", "/no/such:bytes"])
    assert sum(v[n] for n in names) == v["/memory/classes/total:bytes"]
    assert v["/no/such:bytes"] is None
    st = read_mem_stats(m.runtime)
    assert v["/memory/classes/total:bytes"] == st["Sys"]
    assert v["/memory/classes/heap/released:bytes"] == st["HeapReleased"]
    assert call(m, "Metric", 4) == len(m.runtime.gc.cycles)         # /gc/cycles/total from metrics.Read


# ---- the runtime's non-heap memory against the real program's --------------------------

CHURN_DATA = Path(__file__).resolve().parent / "data" / "churn"


def real_memstats(name, at):
    """The median of every field over the real runs' `memstats AT` lines
    (tests/data/churn/generate.py memstats)."""
    runs = [dict(kv.split("=") for kv in line.split()[5:])
            for line in (CHURN_DATA / f"memstats_{name}.txt").read_text().splitlines()
            if line.startswith("run ") and line.split()[3] == at]
    assert len(runs) == 5
    return {k: statistics.median(int(r[k]) for r in runs) for k in runs[0]}


# Where gomemu's startup may differ from the real program's: the runtime's own stacks
# (system goroutines' and the Ms' g0 stacks, real StackInuse 256 KiB, gomemu's 32 KiB:
# Go takes them from heap pages, so HeapSys differs by as much), one persistentalloc chunk
# (OtherSys: 357404 or 603228 in the real runs), one fixalloc chunk of mspans, one gcBits arena.
STARTUP_TOLERANCE = {"StackSys": 256 << 10, "HeapSys": 256 << 10, "OtherSys": 256 << 10,
                     "MSpanSys": 16 << 10, "GCSys": 64 << 10, "MCacheSys": 0, "BuckHashSys": 0}


def churn_small_at_start():
    """`gomemu run`'s machine for the small churn shape, its goroutine and roots made: the
    program at the start of main."""
    from emu.mutator import WorkloadRun
    from emu.workload import parse
    from tests.test_workload import CHURN_SMALL
    return WorkloadRun(parse(CHURN_SMALL, "churn-small.toml"), memory_limit=12 << 20).rt


def test_startup_sys_figures_are_the_real_programs():
    got = read_mem_stats(churn_small_at_start())
    want = real_memstats("small_memlimit12", "start")
    for k, tol in STARTUP_TOLERANCE.items():
        assert abs(got[k] - want[k]) <= tol, (k, got[k], want[k])
    assert abs(got["Sys"] - want["Sys"]) <= sum(STARTUP_TOLERANCE.values()), (got["Sys"], want["Sys"])


def test_memory_limit_goal_reads_the_runtimes_non_heap_memory():
    # halfway under GOMEMLIMIT=12MiB the real program maps 13.2-13.5 MB Ready (Sys -
    # HeapReleased) for 8.5-9 MB of heap objects: more than the limit leaves, so its goal
    # is the live heap. gomemu's mappedReady for the same heap has the same non-heap part.
    from runtime_model.mstats import mapped_ready
    want = real_memstats("small_memlimit12", "steady")
    rt = churn_small_at_start()
    rt.gc.start()                                                # the collector's own memory too
    st = read_mem_stats(rt)
    non_heap = mapped_ready(rt) - st["HeapInuse"] - (st["HeapIdle"] - st["HeapReleased"])
    real_non_heap = (want["Sys"] - want["HeapReleased"]) - want["HeapInuse"] - (want["HeapIdle"] - want["HeapReleased"])
    assert abs(non_heap - real_non_heap) <= 512 << 10, (non_heap, real_non_heap)
