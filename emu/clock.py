"""The machine's modeled clock: deterministic time for nanotime, walltime and reports.

Go code that reads the clock (time.Now, runtime.nanotime, a benchmark's timer)
sees modeled time, never the host's, so runs are reproducible. Time advances with
the machine code that ran: by default its instructions at a stated rate (one per
cycle at CLOCK_GHZ); once a cycle meter drives the clock (`drive`, done by
emu/timing/meter.py's Meter when cycles are asked for: --cycles), by the modelled
cycles of that code instead. Python slow paths add the instructions they state
(SLOW_PATH_INSTRUCTIONS, one a cycle in both cases) and the costs they state (`advance`).
"""

# The slow paths that run in Python cost, in modeled instructions, what the real go1.27.3
# runtime executes for them (callgrind, docs/real_runtime_costs.md): a refill with its
# mcentral.cacheSpan and mheap.alloc is noscan32760's 2553 Ir per mallocgc call (one refill
# each) less the ~150 Ir of the mcache-hit path (noscan1024's mallocgcSmallNoscan + mallocgc);
# a large allocation is large_noscan's 3180 Ir per mallocgc less ~80 of mallocgc/mallocgcLarge.
SLOW_PATH_INSTRUCTIONS = {
    "runtime.(*mcache).refill": 2400,
    "runtime.(*mcache).allocLarge": 3100,
}
# Zeroing reused heap memory (mallocgc's memclrNoHeapPointers on a needzero span) runs at
# memory bandwidth once the heap outgrows the cache, which counting instructions misses:
# on this VM a 4 KiB clear takes ~820 ns cycling through a 128 MiB buffer and ~142 ns in a
# 256 KiB one (bench/gocosts/clear, the range-clear idiom; docs/real_runtime_costs.md,
# "Zeroing"). The difference is charged per byte a span handed to the mcache will have
# cleared (mcache.refill, allocLarge). Stated for every heap size: the cache is not
# modeled, so a small heap pays it too.
CLEAR_COLD_NS_PER_BYTE = (820 - 142) / 4096
CLOCK_GHZ = 3.6           # this VM's core clock (emulator-facts.md 11: a dependent ADD chain, 3.6-3.7 GHz)
INSTRUCTIONS_PER_CYCLE = 1.0   # stated, not modeled: the cycle model replaces it
WALL_EPOCH_NS = 1_767_225_600 * 10**9   # the wall clock starts at 2026-01-01T00:00:00Z
_SLOW_PATHS = tuple(SLOW_PATH_INSTRUCTIONS.items())   # read at every slow path (ns): no dict walk


class Clock:
    def __init__(self, machine):
        self.m = machine
        self.extra_ns = 0          # time of work done in Python (slow paths, GC), as stated by it
        self.meter = None          # emu/timing/meter.Meter driving the clock, or None: instructions
        self._offset = 0           # cycles so far at the last change of source, less the new source's count then

    def instructions(self):
        """Machine instructions executed since the machine started (the block counter), and
        the stated instructions of the slow paths run in Python."""
        return self.m.total_instructions() + self._slow_instructions()

    def _slow_instructions(self):
        get, total = self.m.callout_counts.get, 0
        for k, n in _SLOW_PATHS:
            total += get(k, 0) * n
        return total

    def _source(self):
        if self.meter is None:
            return self.instructions() / INSTRUCTIONS_PER_CYCLE
        return self.meter.cycles(running=True) + self._slow_instructions() / INSTRUCTIONS_PER_CYCLE

    def cycles(self):
        """Cycles since the machine started: instructions at the stated rate, and from `drive`
        on the meter's modelled cycles of the machine code."""
        return self._offset + self._source()

    def drive(self, meter):
        """From now on machine code advances the clock by `meter`'s modelled cycles (None: by its
        instructions again); the time so far is kept, so the clock never jumps."""
        now = self.cycles()
        self.meter = meter
        self._offset = now - self._source()

    def ns(self):
        """Nanoseconds since the machine started."""
        if self.meter is None and not self._offset:        # the default: no meter ever attached
            return int(self.instructions() / (CLOCK_GHZ * INSTRUCTIONS_PER_CYCLE)) + self.extra_ns
        return int(self.cycles() / CLOCK_GHZ) + self.extra_ns

    def advance(self, ns):
        self.extra_ns += int(ns)

    def wall(self):
        """(seconds, nanoseconds) of the wall clock."""
        t = WALL_EPOCH_NS + self.ns()
        return t // 10**9, t % 10**9
