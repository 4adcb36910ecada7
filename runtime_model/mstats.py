"""runtime/mstats.go: the memory statistics: ReadMemStats, mappedReady, cpuStats.

Go keeps three kinds of statistics, and gomemu has the same sources:

  heap stats   consistentHeapStats' deltas: allocations and frees per size class (the
               mcache adds a span's used slots when it gives the span back, sweeping adds
               the frees), large allocations, tiny ones; `runtime.stats` here.
  gcController the heap's page accounting: heapInUse, heapFree, heapReleased (mheap.go
               updates them when spans are allocated and freed, when the heap grows and
               when the scavenger releases pages); `runtime.mheap` here, plus the pacer's
               heapMarked, heapLive and scan sizes (`runtime.gc_controller`).
  sys stats    memory the runtime maps for itself, by purpose (mspan_sys, mcache_sys,
               gcMiscSys, buckhash_sys, other_sys, stacks_sys).

`read_mem_stats(runtime)` is readmemstats_m: it flushes the mcache first (flushallmcaches:
the cached spans' allocation counts reach the heap stats), then derives every MemStats
field as Go does. `mapped_ready(runtime)` is gcController.mappedReady (everything mapped
and not released), which memoryLimitHeapGoal and the scavenger's memory-limit goal read.

The sys stats are what Go's allocators hold for what gomemu creates: mspan structs in
fixalloc's 16 KiB chunks (mspan_sys), the one mcache likewise (mcache_sys), per heap
arena its heapArena metadata and the allArenas array (gcMiscSys), the page allocator's
summaries, chunk bitmaps and scavenge index as its grow maps them (gcMiscSys, counted by
PageAlloc.sys_stat), the profiler's bucket hash array (buckhash_sys). What the runtime
allocates for itself and gomemu does not create is a stated baseline, each in the stat
it feeds, measured in the real go1.27.3 churn program (ReadMemStats at the start of main
and halfway, tests/data/churn/memstats_small_memlimit12.txt, 5 runs; docs/gc.md, "The
runtime's own memory"): GC_MISC_SYS_STARTUP, GC_MISC_SYS_GC from the first cycle on,
OTHER_SYS_STARTUP, STARTUP_BUCKET_SYS. Simplified: the baselines are constants (Go's
grow a little with the heap: more gcBits arenas and spanSet blocks, and OtherSys moves
into the stats persistentalloc's chunks are handed to); the runtime's own stacks
(system goroutines, Ms' g0 stacks: real StackInuse 256 KiB at start) are not counted,
nor OS thread stacks (stacks_sys; 0 on linux in the real program too). The heap index
(mheap_.arenas' L2 array) is not counted, as in Go (sysAllocOS). Lookups, DebugGC and
EnableGC are constants.
"""

import functools

from emu.layout import HeapArena, MCache, MSpan
from runtime_model import sizeclasses as sc
from runtime_model.pagealloc import PHYS_PAGE_SIZE

FIX_ALLOC_CHUNK = 16 << 10           # mfixalloc.go: _FixAllocChunk
BUCK_HASH_SIZE = 179999              # mprof.go: buckHashSize (buckhashArray of pointers)
NUM_BY_SIZE = 61                     # MemStats.BySize's length (its first 61 size classes)
PAUSE_HISTORY = 256                  # len(memstats.pause_ns)


# The runtime's own memory gomemu does not create (module docstring), from the real program.
# gcMiscSys at the start of main: 1532688 in every run, less what gomemu counts for the
# same heap (one arena's heapArena 69648 + allArenas 4096 + the page allocator's 1200384):
# gcBits arenas, mcentral's spanSet spines and blocks, finalizer and cleanup blocks.
GC_MISC_SYS_STARTUP = 1532688 - 1274128
# gcMiscSys + gcWorkBufInUse halfway (median of the runs, 2044144) less the start's: what
# the collector allocates once it runs (gcw.ptrBuf per P, Green Tea's span queues,
# spanSPMC chunks, work buffers, the next and previous cycles' gcBits arenas).
GC_MISC_SYS_GC = 2044144 - 1532688
# OtherSys at the start of main (603228 in 8 of the 10 runs; 357404 in the others, which
# had not yet taken a second P's persistentalloc chunk): persistentalloc's chunks less
# what they handed to other stats, and the runtime's other sysAllocs.
OTHER_SYS_STARTUP = 603228
# BuckHashSys is 1442644 from the start of main: the hash array plus the bucket of the one
# allocation the runtime samples during startup (schedinit sets MemProfileRate = 0 when
# nothing reads the profile; the next mallocgc sees mcache.memProfRate differ and calls
# profilealloc).
STARTUP_BUCKET_SYS = 1442644 - BUCK_HASH_SIZE * 8


def fixalloc_sys(nalloc_total, size):
    """Bytes a fixalloc of `size`-byte objects has taken from persistentalloc once it has
    handed out nalloc_total objects (freed ones are reused first): whole chunks of
    _FixAllocChunk/size objects."""
    per_chunk = FIX_ALLOC_CHUNK // size
    return -(-nalloc_total // per_chunk) * per_chunk * size


@functools.lru_cache(maxsize=None)        # read at every gcTrigger.test; arenas are few
def all_arenas_sys(narenas):
    """malloc.go: sysAlloc's growth of mheap_.allArenas: a page first, then twice the
    capacity each time it is full, each new array persistentalloc'd (gcMiscSys) and the
    old one kept."""
    total = cap = 0
    while cap < narenas:
        size = 2 * cap * 8 or PHYS_PAGE_SIZE
        total += size
        cap = size // 8
    return total


def gcmisc_sys(runtime):
    """memstats.gcMiscSys (and gcWorkBufInUse, in the GC_MISC_SYS_GC baseline)."""
    h = runtime.mheap
    n = len(h.heap_arenas)
    gc_started = runtime.gc.cycles or runtime.gc.cycle is not None
    return (n * HeapArena.SIZE + all_arenas_sys(n) + h.pages.sys_stat + GC_MISC_SYS_STARTUP
            + (GC_MISC_SYS_GC if gc_started else 0))


def sys_stats(runtime):
    """memstats' sysMemStats as gomemu models them (module docstring)."""
    h = runtime.mheap
    mspans = h.nspans + len(h._free_mspans)
    return {
        "stacks_sys": 0,
        "mspan_sys": fixalloc_sys(mspans, MSpan.SIZE),
        "mspan_inuse": h.nspans * MSpan.SIZE,
        "mcache_sys": fixalloc_sys(1, MCache.SIZE),
        "mcache_inuse": MCache.SIZE,
        "buckhash_sys": BUCK_HASH_SIZE * 8 + STARTUP_BUCKET_SYS,
        "gcmisc_sys": gcmisc_sys(runtime),
        "other_sys": OTHER_SYS_STARTUP,
        "in_work_bufs": 0,
    }


def heap_retained(runtime):
    """mgcscavenge.go: heapRetained: heapInUse + heapFree, the heap's estimated RSS."""
    return runtime.mheap.heap_in_use + runtime.mheap.heap_free


def total_mapped(runtime, sys=None):
    """readmemstats_m's totalMapped: the heap's pages in every state, stacks and the sys stats."""
    h, s = runtime.mheap, sys or sys_stats(runtime)
    return (h.heap_in_use + h.heap_free + h.heap_released + s["stacks_sys"] + s["mspan_sys"] +
            s["mcache_sys"] + s["buckhash_sys"] + s["gcmisc_sys"] + s["other_sys"] +
            h.stacks_in_use + s["in_work_bufs"])


def mapped_ready(runtime):
    """gcController.mappedReady: mapped memory that is Ready (totalMapped - heapReleased).
    Read at every refill (gcTrigger.test, the scavenger): summed without sys_stats' dict,
    the terms that never change added up once (_READY_FIXED)."""
    h = runtime.mheap
    return (h.heap_in_use + h.heap_free + h.stacks_in_use
            + fixalloc_sys(h.nspans + len(h._free_mspans), MSpan.SIZE) + gcmisc_sys(runtime) + _READY_FIXED)


# mapped_ready's constant terms: mcache_sys, buckhash_sys and other_sys of sys_stats
_READY_FIXED = fixalloc_sys(1, MCache.SIZE) + BUCK_HASH_SIZE * 8 + STARTUP_BUCKET_SYS + OTHER_SYS_STARTUP


def heap_counts(runtime):
    """The heap stats' aggregates (metrics.go: heapStatsAggregate.compute; readmemstats_m
    computes the same): (total allocated bytes, freed bytes, allocations, frees), small
    objects by their class's size, tiny blocks counted as what they are (16-byte objects)."""
    st = runtime.stats
    total_alloc, total_free = st.large_alloc, st.large_free
    nmalloc, nfree = st.large_alloc_count, st.large_free_count
    for i, size in enumerate(sc.CLASS_TO_SIZE):
        total_alloc += st.small_alloc_count[i] * size
        total_free += st.small_free_count[i] * size
        nmalloc += st.small_alloc_count[i]
        nfree += st.small_free_count[i]
    return total_alloc, total_free, nmalloc, nfree


class CpuStats:
    """mstats.go: cpuStats (work.cpuStats), accumulated at each mark termination."""

    FIELDS = ("GCAssistTime", "GCDedicatedTime", "GCIdleTime", "GCPauseTime", "GCTotalTime",
              "ScavengeAssistTime", "ScavengeBgTime", "ScavengeTotalTime", "IdleTime", "UserTime",
              "TotalTime")

    def __init__(self):
        for f in self.FIELDS:
            setattr(self, f, 0)

    def accumulate(self, runtime, cycle, now):
        """accumulateGCPauseTime for both stop-the-world phases, then accumulate(now, true):
        the cycle's mark CPU time, the scavenger's time since the last cycle (reset here,
        as gcMarkTermination resets scavenge.assistTime/backgroundTime), the idle time."""
        procs = cycle.procs
        pause = procs * ((cycle.t_mark - cycle.t_sweep_term) + (cycle.t_end - cycle.t_mark_term))
        self.GCPauseTime += pause
        self.GCAssistTime += cycle.assist_ns
        self.GCDedicatedTime += cycle.bg_ns
        self.GCIdleTime += cycle.idle_ns
        self.GCTotalTime += pause + cycle.assist_ns + cycle.bg_ns + cycle.idle_ns
        scav = runtime.scavenger
        self.ScavengeAssistTime += scav.assist_time
        self.ScavengeBgTime += scav.background_time
        self.ScavengeTotalTime += scav.assist_time + scav.background_time
        scav.assist_time = scav.background_time = 0
        self.TotalTime = now * procs
        self.IdleTime = runtime.limiter.idle_time
        self.UserTime = self.TotalTime - (self.GCTotalTime + self.ScavengeTotalTime + self.IdleTime)


def read_mem_stats(runtime):
    """mstats.go: readmemstats_m: flushallmcaches, then every MemStats field (Go's names)."""
    from runtime_model.mgcsweep import release_all
    release_all(runtime, runtime.mcache)        # flushmcache: c.releaseAll()
    h, c, gc = runtime.mheap, runtime.gc_controller, runtime.gc
    st = runtime.stats
    total_alloc, total_free, nmalloc, nfree = heap_counts(runtime)
    # MemStats counts each tiny allocation as a malloc and a free (mstats.go: "for
    # historical reasons"); their 16-byte block is counted too.
    nmalloc += st.tiny_alloc_count
    nfree += st.tiny_alloc_count
    sys = sys_stats(runtime)
    gc.sync_stats()                               # what heapGoal's memoryLimitHeapGoal reads
    pause_ns, pause_end = [0] * PAUSE_HISTORY, [0] * PAUSE_HISTORY
    for cyc in gc.cycles:
        i = (cyc.n - 1) % PAUSE_HISTORY           # memstats.numgc before the cycle's numgc++
        pause_ns[i] = (cyc.t_mark - cyc.t_sweep_term) + (cyc.t_end - cyc.t_mark_term)
        pause_end[i] = wall_ns(runtime, cyc.t_end)
    by_size = [{"Size": sc.CLASS_TO_SIZE[i], "Mallocs": st.small_alloc_count[i],
                "Frees": st.small_free_count[i]} for i in range(NUM_BY_SIZE)]
    cpu = runtime.cpu_stats
    return {
        "Alloc": total_alloc - total_free,
        "TotalAlloc": total_alloc,
        "Sys": total_mapped(runtime, sys),
        "Lookups": 0,
        "Mallocs": nmalloc,
        "Frees": nfree,
        "HeapAlloc": total_alloc - total_free,
        "HeapSys": h.heap_in_use + h.heap_free + h.heap_released,
        "HeapIdle": h.heap_free + h.heap_released,
        "HeapInuse": h.heap_in_use,
        "HeapReleased": h.heap_released,
        "HeapObjects": nmalloc - nfree,
        "StackInuse": h.stacks_in_use,
        "StackSys": h.stacks_in_use + sys["stacks_sys"],
        "MSpanInuse": sys["mspan_inuse"],
        "MSpanSys": sys["mspan_sys"],
        "MCacheInuse": sys["mcache_inuse"],
        "MCacheSys": sys["mcache_sys"],
        "BuckHashSys": sys["buckhash_sys"],
        "GCSys": sys["gcmisc_sys"] + sys["in_work_bufs"],
        "OtherSys": sys["other_sys"],
        "NextGC": c.heap_goal(),
        "LastGC": wall_ns(runtime, gc.cycles[-1].t_end) if gc.cycles else 0,
        "PauseTotalNs": gc.pause_total_ns,
        "PauseNs": pause_ns,
        "PauseEnd": pause_end,
        "NumGC": len(gc.cycles),
        "NumForcedGC": sum(1 for cyc in gc.cycles if cyc.forced),
        "GCCPUFraction": ((cpu.GCTotalTime - cpu.GCIdleTime) / cpu.TotalTime) if cpu.TotalTime else 0.0,
        "EnableGC": True,
        "DebugGC": False,
        "BySize": by_size,
    }


def wall_ns(runtime, t):
    """Unix time in ns of modeled time t (the machine's wall clock)."""
    from emu.clock import WALL_EPOCH_NS
    return WALL_EPOCH_NS + t


def write_mem_stats(machine, addr):
    """runtime.ReadMemStats(m *MemStats) from the program: the fields written at their
    offsets in the program's MemStats (from its DWARF)."""
    import struct
    st = read_mem_stats(machine.runtime)
    off = machine.image.struct_fields("runtime.MemStats")
    mem = machine.mem
    for name, v in st.items():
        a = addr + off[name]
        if name in ("PauseNs", "PauseEnd"):
            mem.write(a, struct.pack(f"<{len(v)}Q", *v))
        elif name == "BySize":
            mem.write(a, b"".join(struct.pack("<IxxxxQQ", e["Size"], e["Mallocs"], e["Frees"]) for e in v))
        elif name in ("NumGC", "NumForcedGC"):
            mem.w32(a, v)
        elif name == "GCCPUFraction":
            mem.write(a, struct.pack("<d", v))
        elif name in ("EnableGC", "DebugGC"):
            mem.w8(a, int(v))
        else:
            mem.w64(a, v)
