"""runtime/metrics.go: the runtime/metrics names, computed from the same statistics.

`read(runtime, names)` is readMetricsLocked: each name's value as metrics.go's compute
function derives it from the aggregates (heapStatsAggregate, sysStatsAggregate,
cpuStatsAggregate, gcStatsAggregate). Unlike ReadMemStats it does not flush the mcache:
allocations from a cached span reach the heap stats only when the span goes back, so
/gc/heap/allocs:bytes lags as it does in Go. Values are ints (KindUint64) or floats
(KindFloat64); a name metrics.go does not have gives None (KindBad). Histograms
(/gc/heap/allocs-by-size:bytes, /gc/pauses:seconds, ...) and the scheduler's and
cgo's counters are not provided: they read None.
"""

from emu.layout import FIXED_STACK
from runtime_model.mstats import heap_counts, sys_stats


def _ns_to_sec(ns):
    return float(ns) / 1e9             # metrics.go: nsToSec


def _heap(rt):
    """heapStatsAggregate: the deltas and their totals."""
    h, st = rt.mheap, rt.stats
    total_alloc, total_free, nalloc, nfree = heap_counts(rt)
    committed = h.heap_in_use + h.heap_free + h.stacks_in_use
    return {"committed": committed, "released": h.heap_released, "in_heap": h.heap_in_use,
            "in_stacks": h.stacks_in_use, "in_work_bufs": 0, "tiny_alloc_count": st.tiny_alloc_count,
            "in_objects": total_alloc - total_free, "num_objects": nalloc - nfree,
            "total_allocated": total_alloc, "total_freed": total_free,
            "total_allocs": nalloc, "total_frees": nfree}


def _cpu(name):
    return lambda rt, agg: _ns_to_sec(getattr(rt.cpu_stats, name))


def _h(key):
    return lambda rt, agg: agg("heap")[key]


def _s(key):
    return lambda rt, agg: agg("sys")[key]


METRICS = {
    "/cpu/classes/gc/mark/assist:cpu-seconds": _cpu("GCAssistTime"),
    "/cpu/classes/gc/mark/dedicated:cpu-seconds": _cpu("GCDedicatedTime"),
    "/cpu/classes/gc/mark/idle:cpu-seconds": _cpu("GCIdleTime"),
    "/cpu/classes/gc/pause:cpu-seconds": _cpu("GCPauseTime"),
    "/cpu/classes/gc/total:cpu-seconds": _cpu("GCTotalTime"),
    "/cpu/classes/idle:cpu-seconds": _cpu("IdleTime"),
    "/cpu/classes/scavenge/assist:cpu-seconds": _cpu("ScavengeAssistTime"),
    "/cpu/classes/scavenge/background:cpu-seconds": _cpu("ScavengeBgTime"),
    "/cpu/classes/scavenge/total:cpu-seconds": _cpu("ScavengeTotalTime"),
    "/cpu/classes/total:cpu-seconds": _cpu("TotalTime"),
    "/cpu/classes/user:cpu-seconds": _cpu("UserTime"),
    "/gc/cycles/automatic:gc-cycles": lambda rt, agg: len(rt.gc.cycles) - sum(c.forced for c in rt.gc.cycles),
    "/gc/cycles/forced:gc-cycles": lambda rt, agg: sum(c.forced for c in rt.gc.cycles),
    "/gc/cycles/total:gc-cycles": lambda rt, agg: len(rt.gc.cycles),
    "/gc/scan/globals:bytes": lambda rt, agg: rt.gc_controller.globals_scan,
    "/gc/scan/heap:bytes": lambda rt, agg: rt.gc_controller.heap_scan,
    "/gc/scan/stack:bytes": lambda rt, agg: rt.gc_controller.last_stack_scan,
    "/gc/scan/total:bytes": lambda rt, agg: (rt.gc_controller.heap_scan + rt.gc_controller.last_stack_scan +
                                             rt.gc_controller.globals_scan),
    "/gc/heap/allocs:bytes": _h("total_allocated"),
    "/gc/heap/allocs:objects": _h("total_allocs"),
    "/gc/heap/frees:bytes": _h("total_freed"),
    "/gc/heap/frees:objects": _h("total_frees"),
    "/gc/heap/goal:bytes": lambda rt, agg: rt.gc_controller.heap_goal(),
    "/gc/gomemlimit:bytes": lambda rt, agg: rt.gc_controller.memory_limit,
    "/gc/gogc:percent": lambda rt, agg: rt.gc_controller.gc_percent & ((1 << 64) - 1),
    "/gc/heap/live:bytes": lambda rt, agg: rt.gc_controller.heap_marked,
    "/gc/heap/objects:objects": _h("num_objects"),
    "/gc/heap/tiny/allocs:objects": _h("tiny_alloc_count"),
    "/gc/limiter/last-enabled:gc-cycle": lambda rt, agg: rt.limiter.last_enabled_cycle,
    "/gc/stack/starting-size:bytes": lambda rt, agg: FIXED_STACK,
    "/memory/classes/heap/free:bytes": lambda rt, agg: (agg("heap")["committed"] - agg("heap")["in_heap"] -
                                                        agg("heap")["in_stacks"] - agg("heap")["in_work_bufs"]),
    "/memory/classes/heap/objects:bytes": _h("in_objects"),
    "/memory/classes/heap/released:bytes": _h("released"),
    "/memory/classes/heap/stacks:bytes": _h("in_stacks"),
    "/memory/classes/heap/unused:bytes": lambda rt, agg: agg("heap")["in_heap"] - agg("heap")["in_objects"],
    "/memory/classes/metadata/mcache/free:bytes": lambda rt, agg: agg("sys")["mcache_sys"] - agg("sys")["mcache_inuse"],
    "/memory/classes/metadata/mcache/inuse:bytes": _s("mcache_inuse"),
    "/memory/classes/metadata/mspan/free:bytes": lambda rt, agg: agg("sys")["mspan_sys"] - agg("sys")["mspan_inuse"],
    "/memory/classes/metadata/mspan/inuse:bytes": _s("mspan_inuse"),
    "/memory/classes/metadata/other:bytes": lambda rt, agg: agg("heap")["in_work_bufs"] + agg("sys")["gcmisc_sys"],
    "/memory/classes/os-stacks:bytes": _s("stacks_sys"),
    "/memory/classes/other:bytes": _s("other_sys"),
    "/memory/classes/profiling/buckets:bytes": _s("buckhash_sys"),
    "/memory/classes/total:bytes": lambda rt, agg: (
        agg("heap")["committed"] + agg("heap")["released"] + sum(
            agg("sys")[k] for k in ("stacks_sys", "mspan_sys", "mcache_sys", "buckhash_sys", "gcmisc_sys",
                                    "other_sys"))),
    "/sched/gomaxprocs:threads": lambda rt, agg: rt.gc.procs,
}
FLOAT_METRICS = frozenset(n for n in METRICS if n.endswith(":cpu-seconds"))


def read(runtime, names):
    """readMetricsLocked: {name: value} (None for a name without a value here)."""
    cache = {}
    runtime.gc.sync_stats()              # the memory statistics heapGoal reads

    def agg(kind):                      # statAggregate.ensure: each aggregate computed once
        if kind not in cache:
            cache[kind] = _heap(runtime) if kind == "heap" else sys_stats(runtime)
        return cache[kind]

    return {n: (METRICS[n](runtime, agg) if n in METRICS else None) for n in names}


KIND_BAD, KIND_UINT64, KIND_FLOAT64 = 0, 1, 2     # metrics.go: metricKind
SAMPLE_SIZE = 40                                  # runtime/metrics.Sample: Name string, Value{kind, scalar, pointer}


def read_samples(machine, samplesp, n):
    """runtime/metrics.runtime_readMetrics(samplesp, len, cap) from the program: each
    Sample's Value (kind, scalar) written where metrics.Read's slice has it."""
    import struct
    mem = machine.mem
    names = []
    for i in range(n):
        p = samplesp + SAMPLE_SIZE * i
        names.append(mem.read(mem.u64(p), mem.u64(p + 8)).decode("utf-8", "replace"))
    values = read(machine.runtime, names)
    for i, name in enumerate(names):
        p = samplesp + SAMPLE_SIZE * i + 16
        v = values[name]
        if v is None:
            mem.w64(p, KIND_BAD)
        elif name in FLOAT_METRICS:
            mem.w64(p, KIND_FLOAT64)
            mem.write(p + 8, struct.pack("<d", v))
        else:
            mem.w64(p, KIND_UINT64)
            mem.w64(p + 8, v)
