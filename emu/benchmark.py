"""testing/benchmark.go on the emulated runtime: a *testing.B for the user's benchmarks.

The benchmark function is the compiler's own code; it reads b.N and b.loop in
the B struct, so the struct is laid out as the program's testing package has it
(field offsets from its DWARF). What testing does around it runs here, as
benchmark.go does it: run1 (runN(1)), then launch (runN(benchtime.n) or Go's
predictN ramp-up to a modeled duration), and StartTimer / StopTimer /
ResetTimer / loopSlowPath / ReportMetric are call-outs with Go's semantics:
the timer reads the machine's modeled clock (emu/clock.py), the alloc counters
read MemStats the way runtime.ReadMemStats does (flushing the mcache), and
the instructions and allocations between StartTimer and StopTimer are counted.

runN calls runtime.GC first, as Go's does (a whole forced cycle). Simplified: b.Run,
b.Fatal and the other methods of testing.common are real code that may reach
something gomemu does not run (then the benchmark fails with that message);
sub-benchmarks and RunParallel are not supported.
"""

import re
from dataclasses import dataclass, field

from unicorn.x86_const import UC_X86_REG_XMM0

from emu.errors import BadInput

LOOP_POISON_TIMER = 1 << 63        # benchmark.go: loopPoisonTimer
MAX_BENCH_PREDICT_ITERS = 10**9    # benchmark.go: maxBenchPredictIters


def predict_n(goalns, prev_iters, prevns, last):
    """benchmark.go: predictN."""
    prevns = prevns or 1
    n = goalns * prev_iters // prevns
    n += n // 5
    n = min(n, 100 * last)
    n = max(n, last + 1)
    return min(n, MAX_BENCH_PREDICT_ITERS)


def parse_benchtime(text):
    """-benchtime: `Nx` iterations or a duration (`100ms`, `1s`, `2.5us`) of modeled time."""
    m = re.fullmatch(r"(\d+)x", text)
    if m:
        n = int(m.group(1))
        if n <= 0:
            raise BadInput(f"-benchtime {text}: the iteration count must be positive")
        return n, 0
    m = re.fullmatch(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m)", text)
    if not m:
        raise BadInput(f"-benchtime {text!r}: expected Nx (iterations) or a duration such as 10ms")
    scale = {"ns": 1, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9}[m.group(2)]
    ns = int(float(m.group(1)) * scale)
    if ns <= 0:
        raise BadInput(f"-benchtime {text}: the duration must be positive")
    return 0, ns


@dataclass
class BenchResult:
    """testing.BenchmarkResult, with what gomemu counts beside it."""
    name: str
    n: int
    ns: int                      # modeled duration of the timed part
    net_allocs: int
    net_bytes: int
    bytes_per_op_set: int        # b.SetBytes
    instructions: int            # between StartTimer and StopTimer
    by_routine: dict
    allocations: list            # emu.paths.PathSample of each timed allocation
    extra: dict = field(default_factory=dict)   # b.ReportMetric

    @property
    def ns_per_op(self):
        return self.ns / self.n if self.n else 0.0

    @property
    def bytes_per_op(self):
        return self.net_bytes // self.n if self.n else 0

    @property
    def allocs_per_op(self):
        return self.net_allocs // self.n if self.n else 0

    @property
    def instructions_per_op(self):
        return self.instructions / self.n if self.n else 0.0


class BenchState:
    """The part of a running *testing.B that gomemu keeps (the timer and its counters)."""

    def __init__(self, machine, b, fields, benchtime_n, benchtime_ns):
        self.m, self.b, self.f = machine, b, fields
        self.benchtime_n, self.benchtime_ns = benchtime_n, benchtime_ns
        self.timer_on = False
        self.duration = 0
        self.start_ns = self.start_allocs = self.start_bytes = 0
        self.net_allocs = self.net_bytes = 0
        self.instructions = 0
        self.by_routine = {}
        self.samples = []
        self.extra = {}
        self._snap = None

    # b's fields in emulated memory
    def get(self, name, size=8):
        a = self.b + self.f[name]
        return self.m.mem.u8(a) if size == 1 else self.m.mem.u64(a)

    def put(self, name, v, size=8):
        a = self.b + self.f[name]
        if size == 1:
            self.m.mem.w8(a, v)
        else:
            self.m.mem.w64(a, v)

    def _stats(self):
        st = self.m.runtime.read_mem_stats()
        return st["Mallocs"], st["TotalAlloc"]

    def _count_from_here(self):
        self._snap = self.m.snapshot()
        self.m.track_allocations(self.samples.append)

    def _count_until_here(self):
        self.m.stop_tracking_allocations()
        c = self.m.counts_since(self._snap)
        self.instructions += c.instructions
        for r, k in c.by_routine().items():
            self.by_routine[r] = self.by_routine.get(r, 0) + k

    def start_timer(self):
        """benchmark.go: (*B).StartTimer."""
        if not self.timer_on:
            self.start_allocs, self.start_bytes = self._stats()
            self.start_ns = self.m.clock.ns()
            self.timer_on = True
            self.put("timerOn", 1, 1)
            self.put("loop.i", self.get("loop.i") & ~LOOP_POISON_TIMER)
            self._count_from_here()

    def stop_timer(self):
        """benchmark.go: (*B).StopTimer."""
        if self.timer_on:
            self._count_until_here()
            self.duration += self.m.clock.ns() - self.start_ns
            mallocs, total = self._stats()
            self.net_allocs += mallocs - self.start_allocs
            self.net_bytes += total - self.start_bytes
            self.timer_on = False
            self.put("timerOn", 0, 1)
            self.put("loop.i", self.get("loop.i") | LOOP_POISON_TIMER)

    def reset_timer(self):
        """benchmark.go: (*B).ResetTimer."""
        self.extra.clear()
        if self.timer_on:
            self._count_until_here()
            self.start_allocs, self.start_bytes = self._stats()
            self.start_ns = self.m.clock.ns()
            self._count_from_here()
        self.duration = self.net_allocs = self.net_bytes = 0
        self.instructions, self.by_routine, self.samples[:] = 0, {}, []

    def loop_slow_path(self):
        """benchmark.go: (*B).loopSlowPath: the first and the last call of b.Loop()."""
        from runtime_model.mem_linux import throw
        if not self.timer_on:
            throw("B.Loop called with timer stopped")
        if self.get("loop.n") == 0:
            self.put("loop.n", self.benchtime_n or 1)
            self.put("N", 0)
            self.reset_timer()
            self.put("loop.i", self.get("loop.i") + 1)
            return 1
        if self.benchtime_n:
            more = False
        else:
            more = self._stop_or_scale()
        if not more:
            self.stop_timer()
            self.put("N", self.get("loop.n"))
            self.put("loop.done", 1, 1)
            return 0
        self.put("loop.i", self.get("loop.i") + 1)
        return 1

    def _stop_or_scale(self):
        """benchmark.go: stopOrScaleBLoop, on the modeled clock."""
        t = self.duration + (self.m.clock.ns() - self.start_ns if self.timer_on else 0)
        if t >= self.benchtime_ns:
            return False
        n = self.get("loop.n")
        goal = predict_n(self.benchtime_ns, n, t, n)
        self.put("loop.n", goal)
        return True


def bench_fields(image):
    fields = image.struct_fields("testing.B")
    need = ("N", "loop.n", "loop.i", "loop.done", "timerOn", "benchTime.n", "bytes", "__size__")
    missing = [f for f in need if f not in fields]
    if missing:
        raise BadInput(f"{image.path.name}: testing.B has no field {', '.join(missing)}")
    return fields


def run_benchmark(machine, symbol, name, benchtime_n, benchtime_ns):
    """One benchmark, as testing's run1 then launch do it; returns a BenchResult."""
    m = machine
    fields = bench_fields(m.image)
    b = m.persistentalloc(fields["__size__"], 64)
    st = m.bench = BenchState(m, b, fields, benchtime_n, benchtime_ns)
    st.put("benchTime.n", benchtime_n)

    def run_n(n):
        """benchmark.go: (*B).runN."""
        m.runtime.gc.collect()      # runtime.GC(): "clearing garbage from previous runs"
        st.put("N", n)
        for f in ("loop.n", "loop.i"):
            st.put(f, 0)
        st.put("loop.done", 0, 1)
        st.reset_timer()
        st.start_timer()
        g = m.new_goroutine()
        m.call_on(g, symbol, b)
        m.goexit(g)
        st.stop_timer()
        if st.get("loop.n") and not st.get("loop.done", 1):
            raise BadInput(f"{name}: benchmark function returned without B.Loop() == false "
                           "(break or return in loop?)")

    try:
        run_n(1)                                           # run1
        if st.get("loop.n") == 0:                          # launch
            if benchtime_n:
                if benchtime_n > 1:
                    run_n(benchtime_n)
            else:
                n = 1
                while st.duration < benchtime_ns and n < MAX_BENCH_PREDICT_ITERS:
                    last = n
                    n = predict_n(benchtime_ns, st.get("N"), st.duration, last)
                    run_n(n)
    finally:
        m.bench = None
        m.stop_tracking_allocations()
    return BenchResult(name, st.get("N"), st.duration, st.net_allocs, st.net_bytes, st.get("bytes"),
                       st.instructions, st.by_routine, list(st.samples), dict(st.extra))


def report_metric(state, name_ptr, name_len):
    """benchmark.go: (*B).ReportMetric(n float64, unit string) (n arrives in X0)."""
    import struct
    raw = int(state.m.uc.reg_read(UC_X86_REG_XMM0)) & ((1 << 64) - 1)
    n = struct.unpack("<d", raw.to_bytes(8, "little"))[0]
    unit = state.m.mem.read(name_ptr, name_len).decode("utf-8", "replace")
    state.extra[unit] = n
