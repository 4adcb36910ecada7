"""The GC pacer: a port of Go 1.27's `runtime/mgcpacer.go: gcControllerState`.

The pacer decides *when* a GC cycle starts (the heap trigger) and *how hard*
the mutator must help while it runs (the assist ratio) so that marking ends
near the heap goal. Between cycles it computes the goal from GOGC
(`marked + (marked + stacks + globals) * GOGC/100`) and from the memory limit,
and the trigger from a "runway": the bytes the mutator allocates while the GC
scans the expected work, learned from the measured cons/mark ratio of the last
cycles. During a cycle `revise` re-derives the assist ratio from the work and
heap that remain.

`GcControllerState` is the controller itself, the same code a GC-cycle model
uses. `HarnessController` is a thin layer reproducing the test wrappers of
`runtime/export_test.go` (GCController.StartCycle/Revise/EndCycle), and
`replay` drives it exactly like `TestGcPacer` (runtime/mgcpacer_test.go).

Integer fields behave as Go's uint64/int64 (they wrap); float expressions are
evaluated in Go's order, with Go/amd64 float->int conversions, so every result
is bit-identical to the runtime's (Python floats are IEEE float64, no FMA).

Simplified relative to the real runtime: there is no clock, no per-P state and
no scheduler, so the fields that only feed the worker scheduler
(dedicated/fractional/idle mark times, idle worker count, bgScanCredit) are
plain bookkeeping; atomics are plain fields; the memory statistics
(heap_free, total_alloc, total_free, mapped_ready) are fields a caller sets
(0 by default, as in the runtime's test controller).
"""

import json
import math

from emu.errors import BadInput, InvariantError
from emu.textfile import read_text

MASK64 = (1 << 64) - 1
MAX_INT64 = (1 << 63) - 1
MAX_UINT64 = MASK64
_MIN_INT64_BITS = 1 << 63  # what CVTTSD2SQ yields for NaN and out-of-range values

# Constants of mgcpacer.go (GOEXPERIMENT empty: 4 MiB heap minimum).
GC_BACKGROUND_UTILIZATION = 0.25
GC_GOAL_UTILIZATION = GC_BACKGROUND_UTILIZATION
DEFAULT_HEAP_MINIMUM = 4 << 20
MEMORY_LIMIT_MIN_HEAP_GOAL_HEADROOM = 1 << 20
MEMORY_LIMIT_HEAP_GOAL_HEADROOM_PERCENT = 3
SWEEP_MIN_HEAP_DISTANCE = 1 << 20  # mgcsweep.go: sweepMinHeapDistance
TRIGGER_RATIO_DEN = 64
MIN_TRIGGER_RATIO_NUM = 45  # ~0.7 of the way from marked heap to goal
MAX_TRIGGER_RATIO_NUM = 61  # ~0.95
MIN_RUNWAY = 64 << 10
MAX_OVERSHOOT = 1.1
GOGC_OFF_HARD_GOAL_PERCENT = 100000
MAX_UTIL_ERROR = 0.3


def _u64(x):
    """Go uint64 arithmetic: wrap mod 2^64."""
    return x & MASK64


def _i64(x):
    """Go int64 arithmetic / uint64->int64 conversion: two's complement wrap."""
    x &= MASK64
    return x - (1 << 64) if x >> 63 else x


def _f2i64(f):
    """Go int64(f) on amd64 (CVTTSD2SQ; the compiler's default, non-saturating lowering).

    NaN and out-of-range values give the "integer indefinite" value MinInt64.
    """
    if f != f or not (-9223372036854775808.0 <= f < 9223372036854775808.0):
        return -_MIN_INT64_BITS
    return int(f)


def _f2u64(f):
    """Go uint64(f) on amd64: below 2^63 convert directly, else convert f-2^63 and OR the top bit."""
    if f < 9223372036854775808.0:
        return _u64(_f2i64(f))
    return _u64(_f2i64(f - 9223372036854775808.0)) | _MIN_INT64_BITS


def _fdiv(a, b):
    """IEEE float64 division (Go gives ±Inf/NaN where Python raises)."""
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0.0:
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


class GcControllerState:
    """Go's gcControllerState; attributes are Go's field names in snake_case."""

    def __init__(self, gc_percent=100, memory_limit=MAX_INT64):
        self.gc_percent = 0  # int32; -1 means GOGC=off
        self.memory_limit = 0  # int64
        self.heap_minimum = 0
        self.runway = 0
        self.cons_mark = 0.0
        self.last_cons_mark = [0.0, 0.0, 0.0, 0.0]
        self.gc_percent_heap_goal = 0
        self.sweep_dist_min_trigger = 0
        self.triggered = 0
        self.last_heap_goal = 0
        self.heap_live = 0
        self.heap_scan = 0
        self.last_heap_scan = 0
        self.last_stack_scan = 0
        self.max_stack_scan = 0
        self.globals_scan = 0
        self.heap_marked = 0
        self._reset_cycle_work(0)
        self.dedicated_mark_workers_needed = 0
        self.max_idle_mark_workers = 0  # the high half of Go's packed idleMarkWorkers
        self.assist_work_per_byte = 0.0
        self.assist_bytes_per_work = 0.0
        self.fractional_utilization_goal = 0.0
        # Memory statistics read by memoryLimitHeapGoal (sysMemStat / atomics in Go).
        self.heap_free = 0
        self.total_alloc = 0
        self.total_free = 0
        self.mapped_ready = 0
        self.init(gc_percent, memory_limit)

    def init(self, gc_percent, memory_limit):
        """gcControllerState.init."""
        self.heap_minimum = DEFAULT_HEAP_MINIMUM
        self.triggered = MAX_UINT64
        self.set_gc_percent(gc_percent)
        self.set_memory_limit(memory_limit)
        self.commit(True)  # the first cycle has no sweep phase

    def set_gc_percent(self, gc_percent):
        """gcControllerState.setGCPercent; returns the old value. Caller must commit()."""
        out = self.gc_percent
        if gc_percent < 0:
            gc_percent = -1
        # uint64(-1) makes this wrap: GOGC=off gives 184467440737053573.
        self.heap_minimum = _u64(DEFAULT_HEAP_MINIMUM * _u64(gc_percent)) // 100
        self.gc_percent = gc_percent
        return out

    def set_memory_limit(self, memory_limit):
        """gcControllerState.setMemoryLimit; negative means "leave unchanged". Caller must commit()."""
        out = self.memory_limit
        if memory_limit >= 0:
            self.memory_limit = memory_limit
        return out

    def commit(self, is_sweep_done):
        """gcControllerState.commit: recompute GOGC goal, sweep-distance trigger and runway."""
        if is_sweep_done:
            self.sweep_dist_min_trigger = 0
        else:
            self.sweep_dist_min_trigger = _u64(self.heap_live + SWEEP_MIN_HEAP_DISTANCE)
        goal = MAX_UINT64
        if self.gc_percent >= 0:
            roots = _u64(self.heap_marked + self.last_stack_scan + self.globals_scan)
            goal = _u64(self.heap_marked + _u64(roots * self.gc_percent) // 100)
        if goal < self.heap_minimum:
            goal = self.heap_minimum
        self.gc_percent_heap_goal = goal
        # Go order: consMark * (1-u) first, then / u, then * expected scan work.
        expected_scan = _u64(self.last_heap_scan + self.last_stack_scan + self.globals_scan)
        self.runway = _f2u64(
            self.cons_mark * (1 - GC_GOAL_UTILIZATION) / GC_GOAL_UTILIZATION * float(expected_scan)
        )

    def heap_goal(self):
        """gcControllerState.heapGoal."""
        return self.heap_goal_internal()[0]

    def heap_goal_internal(self):
        """gcControllerState.heapGoalInternal: (goal, minimum trigger from the sweep distance)."""
        goal = self.gc_percent_heap_goal
        min_trigger = 0
        limit_goal = self.memory_limit_heap_goal()
        if limit_goal < goal:
            # The memory limit binds: no sweep-distance or runway padding.
            goal = limit_goal
        else:
            sweep_dist_trigger = self.sweep_dist_min_trigger
            if sweep_dist_trigger > goal:
                goal = sweep_dist_trigger
            min_trigger = sweep_dist_trigger
            if self.triggered != MAX_UINT64 and goal < _u64(self.triggered + MIN_RUNWAY):
                goal = _u64(self.triggered + MIN_RUNWAY)
        return goal, min_trigger

    def memory_limit_heap_goal(self):
        """gcControllerState.memoryLimitHeapGoal: heap goal implied by the memory limit.
        (At every gcTrigger.test: uint64 wrapping as `& MASK64`, _u64 inline.)"""
        heap_free = self.heap_free
        heap_alloc = (self.total_alloc - self.total_free) & MASK64
        mapped_ready = self.mapped_ready
        # Go re-reads racing stats until consistent; here they cannot race, so
        # an inconsistency would spin forever.
        if (heap_free + heap_alloc) & MASK64 > mapped_ready:
            raise InvariantError(
                f"pacer memory stats inconsistent: heap_free {heap_free} + heap_alloc {heap_alloc}"
                f" > mapped_ready {mapped_ready}"
            )
        memory_limit = self.memory_limit & MASK64
        non_heap = (mapped_ready - heap_free - heap_alloc) & MASK64
        overage = mapped_ready - memory_limit if mapped_ready > memory_limit else 0
        if (non_heap + overage) & MASK64 >= memory_limit:
            return self.heap_marked
        goal = (memory_limit - (non_heap + overage)) & MASK64
        headroom = goal // 100 * MEMORY_LIMIT_HEAP_GOAL_HEADROOM_PERCENT
        if headroom < MEMORY_LIMIT_MIN_HEAP_GOAL_HEADROOM:
            headroom = MEMORY_LIMIT_MIN_HEAP_GOAL_HEADROOM
        if goal < headroom or goal - headroom < headroom:
            goal = headroom
        else:
            goal = goal - headroom
        if goal < self.heap_marked:
            goal = self.heap_marked
        return goal

    def trigger(self):
        """gcControllerState.trigger: (heap trigger, heap goal) for the next cycle."""
        goal, min_trigger = self.heap_goal_internal()
        marked = self.heap_marked
        if marked >= goal:
            return goal, goal
        if min_trigger < marked:
            min_trigger = marked
        # Never trigger before ~0.7 or after ~0.95 of the way from marked to goal.
        span = (goal - marked) // TRIGGER_RATIO_DEN
        lower_bound = span * MIN_TRIGGER_RATIO_NUM + marked
        if min_trigger < lower_bound:
            min_trigger = lower_bound
        max_trigger = span * MAX_TRIGGER_RATIO_NUM + marked
        # Big heaps may trigger as late as 4 MiB (the constant, not heap_minimum) before the goal.
        if goal > DEFAULT_HEAP_MINIMUM and goal - DEFAULT_HEAP_MINIMUM > max_trigger:
            max_trigger = goal - DEFAULT_HEAP_MINIMUM
        # (max and min as comparisons: this runs at every gcTrigger.test)
        if max_trigger < min_trigger:
            max_trigger = min_trigger
        runway = self.runway
        trigger = min_trigger if runway > goal else goal - runway
        if trigger < min_trigger:
            trigger = min_trigger
        if trigger > max_trigger:
            trigger = max_trigger
        if trigger > goal:
            raise InvariantError(
                f"pacer produced a trigger greater than the heap goal: trigger={trigger} heapGoal={goal}"
                f" minTrigger={min_trigger} maxTrigger={max_trigger}"
            )
        return trigger, goal

    def start_cycle(self, mark_start_time, procs, time_trigger=False):
        """gcControllerState.startCycle: reset per-cycle counters, size the mark workers, revise.

        `time_trigger` is Go's `trigger.kind == gcTriggerTime` (a periodic GC).
        debug.gcstoptheworld is taken as 0 and there are no Ps to reset.
        """
        self._reset_cycle_work(mark_start_time)
        self.triggered = self.heap_live

        # Round the 25% CPU goal to whole dedicated workers; if that is more
        # than 30% off, use one fewer and make up the rest with fractional ones.
        total_goal = float(procs) * GC_BACKGROUND_UTILIZATION
        dedicated = _f2i64(total_goal + 0.5)
        util_error = float(dedicated) / total_goal - 1
        if util_error < -MAX_UTIL_ERROR or util_error > MAX_UTIL_ERROR:
            if float(dedicated) > total_goal:
                dedicated -= 1
            self.fractional_utilization_goal = (total_goal - float(dedicated)) / float(procs)
        else:
            self.fractional_utilization_goal = 0.0
        if time_trigger:
            self.max_idle_mark_workers = 0 if dedicated > 0 else 1
        else:
            self.max_idle_mark_workers = procs - dedicated
        self.dedicated_mark_workers_needed = dedicated
        self.revise()

    def _reset_cycle_work(self, mark_start_time):
        """The per-cycle scan work and time counters (int64), zero at a cycle's start."""
        self.heap_scan_work = 0
        self.stack_scan_work = 0
        self.globals_scan_work = 0
        self.bg_scan_credit = 0
        self.assist_time = 0
        self.dedicated_mark_time = 0
        self.fractional_mark_time = 0
        self.idle_mark_time = 0
        self.mark_start_time = mark_start_time

    def update(self, d_heap_live, d_heap_scan, blacken_enabled=False):
        """gcControllerState.update: the heap grew (a span was cached) or shrank."""
        if d_heap_live:
            self.heap_live = (self.heap_live + d_heap_live) & MASK64         # _u64, inline: every refill
        if not blacken_enabled:
            # heapScan is fixed at the start of a cycle; between cycles it follows allocation.
            if d_heap_scan:
                self.heap_scan = (self.heap_scan + d_heap_scan) & MASK64
        else:
            self.revise()

    def revise(self):
        """gcControllerState.revise: recompute the assist ratio from remaining work and heap."""
        gc_percent = self.gc_percent
        if gc_percent < 0:
            # GOGC=off: a huge but finite bound for the hard goal.
            gc_percent = GOGC_OFF_HARD_GOAL_PERCENT
        live = self.heap_live
        scan = self.heap_scan
        work = _i64(self.heap_scan_work + self.stack_scan_work + self.globals_scan_work)
        heap_goal = _i64(self.heap_goal())
        triggered = _i64(self.triggered)

        # Expect last cycle's scan work, unless we already did more: then
        # assume the worst case (everything scannable now) and stretch the goal
        # in proportion, but never past the hard goal.
        scan_work_expected = _i64(self.last_heap_scan + self.last_stack_scan + self.globals_scan)
        max_scan_work = _i64(scan + self.max_stack_scan + self.globals_scan)
        if work > scan_work_expected:
            ext_heap_goal = _i64(
                _f2i64(
                    _fdiv(float(_i64(heap_goal - triggered)), float(scan_work_expected))
                    * float(max_scan_work)
                )
                + triggered
            )
            scan_work_expected = max_scan_work
            hard_goal = _f2i64((1.0 + float(gc_percent) / 100.0) * float(heap_goal))
            if ext_heap_goal > hard_goal:
                ext_heap_goal = hard_goal
            heap_goal = ext_heap_goal

        if _i64(live) > heap_goal:
            # Already past the goal: allow a 10% overshoot and expect the worst case.
            heap_goal = _f2i64(float(heap_goal) * MAX_OVERSHOOT)
            scan_work_expected = max_scan_work

        scan_work_remaining = _i64(scan_work_expected - work)
        if scan_work_remaining < 1000:
            scan_work_remaining = 1000
        heap_remaining = _i64(heap_goal - _i64(live))
        if heap_remaining <= 0:
            heap_remaining = 1
        self.assist_work_per_byte = float(scan_work_remaining) / float(heap_remaining)
        self.assist_bytes_per_work = float(heap_remaining) / float(scan_work_remaining)

    def end_cycle(self, now, procs):
        """gcControllerState.endCycle: fold this cycle's cons/mark ratio into the estimate.

        Go stores lastHeapGoal on the global controller; here it is this object's.
        """
        self.last_heap_goal = self.heap_goal()
        assist_duration = _i64(now - self.mark_start_time)
        utilization = GC_BACKGROUND_UTILIZATION
        if assist_duration > 0:
            utilization += float(self.assist_time) / float(_i64(assist_duration * procs))
        if self.heap_live <= self.triggered:
            # No allocation during the cycle: nothing to learn (and avoids 0/0).
            return
        idle_utilization = 0.0
        if assist_duration > 0:
            idle_utilization = float(self.idle_mark_time) / float(_i64(assist_duration * procs))
        scan_work = _i64(self.heap_scan_work + self.stack_scan_work + self.globals_scan_work)
        current = _fdiv(
            float(_u64(self.heap_live - self.triggered)) * (utilization + idle_utilization),
            float(scan_work) * (1 - utilization),
        )
        # Take the max over a 4-cycle history to damp noise without underestimating.
        self.cons_mark = current
        for past in self.last_cons_mark:
            if past > self.cons_mark:
                self.cons_mark = past
        self.last_cons_mark = self.last_cons_mark[1:] + [current]

    def reset_live(self, bytes_marked):
        """gcControllerState.resetLive: the marked heap becomes the new live heap."""
        self.heap_marked = bytes_marked
        self.heap_live = bytes_marked
        self.heap_scan = _u64(self.heap_scan_work)
        self.last_heap_scan = _u64(self.heap_scan_work)
        self.last_stack_scan = _u64(self.stack_scan_work)
        self.triggered = MAX_UINT64


class HarnessController:
    """The runtime's test wrapper `GCController` (export_test.go) around the controller."""

    def __init__(self, gc_percent, memory_limit):
        self.c = GcControllerState(gc_percent, memory_limit)

    def start_cycle(self, stack_size, globals_size, scannable_frac, gomaxprocs):
        """GCController.StartCycle: jump the live heap to the trigger, then startCycle."""
        c = self.c
        trigger, _ = c.trigger()
        if c.heap_marked > trigger:
            trigger = c.heap_marked
        c.max_stack_scan = stack_size
        c.globals_scan = globals_size
        c.heap_live = trigger
        c.heap_scan = _u64(c.heap_scan + _f2i64(float(trigger - c.heap_marked) * scannable_frac))
        c.start_cycle(0, gomaxprocs)

    def revise(self, heap_live, heap_scan, heap_scan_work, stack_scan_work, globals_scan_work):
        """GCController.Revise: apply int64 deltas, then revise."""
        c = self.c
        c.heap_live = _u64(c.heap_live + heap_live)
        c.heap_scan = _u64(c.heap_scan + heap_scan)
        c.heap_scan_work = _i64(c.heap_scan_work + heap_scan_work)
        c.stack_scan_work = _i64(c.stack_scan_work + stack_scan_work)
        c.globals_scan_work = _i64(c.globals_scan_work + globals_scan_work)
        c.revise()

    def end_cycle(self, bytes_marked, assist_time, elapsed, gomaxprocs):
        """GCController.EndCycle: endCycle at now=elapsed, resetLive, commit (sweep not done)."""
        c = self.c
        c.assist_time = assist_time
        c.end_cycle(elapsed, gomaxprocs)
        c.reset_live(bytes_marked)
        c.commit(False)


# TestGcPacer's simulation constants.
REVISE_PERIOD = 500_000  # ns
RATE_CONV = 512.0  # KiB/cpu-ms -> bytes per revise period per core
RESULT_FIELDS = (
    "cycle", "heap_live", "heap_scannable", "heap_trigger", "heap_peak", "heap_goal", "gc_utilization",
)
_CYCLE_FLOATS = ("alloc_rate", "scan_rate", "growth_rate", "scannable_frac")
# Revise periods (500 µs steps of the work loop) one cycle may take: 20 times the most any of
# Go's 19 scenarios needs (454), 10 GiB of scan work at 1024 KiB/cpu-ms on 8 cores. Beyond it
# lie scenarios the harness would run for hours or forever; such a cycle is refused up front.
MAX_REVISE_STEPS = 10_000
# The constants a scenario's "constants" may name, as this model has them (GOEXPERIMENT empty).
SCENARIO_CONSTANTS = {
    "GCBackgroundUtilization": GC_BACKGROUND_UTILIZATION,
    "GCGoalUtilization": GC_GOAL_UTILIZATION,
    "DefaultHeapMinimum": DEFAULT_HEAP_MINIMUM,
    "MemoryLimitHeapGoalHeadroomPercent": MEMORY_LIMIT_HEAP_GOAL_HEADROOM_PERCENT,
    "MemoryLimitMinHeapGoalHeadroom": MEMORY_LIMIT_MIN_HEAP_GOAL_HEADROOM,
    "SweepMinHeapDistance": SWEEP_MIN_HEAP_DISTANCE,
}


def _field(obj, key, kinds, where, check=None, need=""):
    if not isinstance(obj, dict) or key not in obj:
        raise BadInput(f"pacer scenario: missing field {key!r}{where}")
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, kinds) or (check is not None and not check(v)):
        raise BadInput(f"pacer scenario: field {key!r}{where} must be {need}, got {v!r}")
    return v


def _validate(scenario):
    if not isinstance(scenario, dict):
        raise BadInput("pacer scenario: expected a JSON object")
    top = {
        "name": _field(scenario, "name", str, ""),
        "gc_percent": _field(scenario, "gc_percent", int, "", lambda v: -(1 << 31) <= v < (1 << 31), "an int32"),
        "memory_limit": _field(scenario, "memory_limit", int, "", lambda v: -(1 << 63) <= v <= MAX_INT64, "an int64"),
        "globals_bytes": _field(scenario, "globals_bytes", int, "", lambda v: 0 <= v <= MAX_INT64, "a byte count >= 0"),
        "n_cores": _field(scenario, "n_cores", int, "", lambda v: 1 <= v <= 1 << 20, "a core count >= 1"),
        "initial_heap_bytes": _field(
            scenario, "initial_heap_bytes", int, "", lambda v: 0 <= v <= MAX_INT64, "a byte count >= 0"
        ),
        "length": _field(scenario, "length", int, "", lambda v: v >= 0, "a cycle count >= 0"),
    }
    constants = scenario.get("constants", {})
    if not isinstance(constants, dict):
        raise BadInput(f"pacer scenario: field 'constants' must be an object, got {constants!r}")
    for key, want in SCENARIO_CONSTANTS.items():
        if key in constants and constants[key] != want:
            raise BadInput(f"pacer scenario: field 'constants.{key}' is {constants[key]!r}, but the model follows"
                           f" Go 1.27 with GOEXPERIMENT empty, where it is {want!r}")
    cycles = _field(scenario, "cycles", list, "", None, "a list")
    if len(cycles) != top["length"]:
        raise BadInput(f"pacer scenario: field 'length' is {top['length']} but 'cycles' has {len(cycles)} entries")
    # A revise period moves at most rate * RATE_CONV * n_cores bytes (in the harness's order of
    # operations); past 2^63 its int64 conversions overflow, and a negative scan count would
    # make its work loop run backwards.
    procs = float(top["n_cores"])
    for i, cy in enumerate(cycles):
        where = f" in cycles[{i}]"
        if not isinstance(cy, dict):
            raise BadInput(f"pacer scenario: cycles[{i}] must be an object")
        for key in _CYCLE_FLOATS:
            if key == "scannable_frac":
                _field(cy, key, (int, float), where, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")
            elif key == "growth_rate":
                _field(cy, key, (int, float), where, lambda v: 0.0 < v < math.inf, "a finite number > 0")
            else:
                _field(cy, key, (int, float), where, lambda v: 0.0 < v and float(v) * RATE_CONV * procs < 2.0**63,
                       f"a number > 0 that keeps a revise period's bytes within int64 at {top['n_cores']} cores")
        _field(cy, "stack_bytes", int, where, lambda v: 0 <= v <= MAX_INT64, "a byte count >= 0")
    return top, cycles


def _check_cycle_work(i, top, cy, next_heap_marked, left, procs):
    """Refuse a cycle whose scan work overflows the harness's int64 or needs over MAX_REVISE_STEPS periods.

    Every period scans at least trunc(scan_rate * RATE_CONV * procs * 0.25) bytes
    (utilisation never drops below the background 25%), which bounds the work loop.
    """
    heap_field = "'initial_heap_bytes'" if i == 0 else f"'growth_rate' in cycles[{i}]"
    sources = ((left[0], "'globals_bytes'"), (left[1], f"'stack_bytes' in cycles[{i}]"), (left[2], heap_field))
    total = left[0] + left[1] + left[2]
    if next_heap_marked < 0:
        raise BadInput(f"pacer scenario: field {heap_field}: the marked heap of cycle {i + 1} passes 2^63 bytes"
                       f" (the harness's int64 overflows)")
    mostly = max(sources)[1]
    if total > MAX_INT64:
        raise BadInput(f"pacer scenario: cycle {i + 1} has {total} bytes of scan work (mostly field {mostly}),"
                       f" past int64 (the harness's work counters overflow)")
    min_scanned = _f2i64(float(cy["scan_rate"]) * RATE_CONV * procs * GC_BACKGROUND_UTILIZATION)
    scan = f"field 'scan_rate' in cycles[{i}] ({cy['scan_rate']!r})"
    if total > 0 and min_scanned <= 0:
        raise BadInput(f"pacer scenario: {scan} scans less than 1 byte per revise period at {top['n_cores']} cores:"
                       f" the harness would never finish cycle {i + 1}")
    steps = -(-total // min_scanned) if total > 0 else 0
    if steps > MAX_REVISE_STEPS:
        raise BadInput(f"pacer scenario: cycle {i + 1} needs up to {steps} revise periods, more than"
                       f" {MAX_REVISE_STEPS}: {total} bytes of scan work (mostly field {mostly}) at {scan},"
                       f" at least {min_scanned} bytes a period")


def replay(scenario, on_cycle=None):
    """Run a TestGcPacer scenario (tests/data/README.md, section A); returns {"name", "results"}.

    `on_cycle(i, length)` is called before each cycle (for progress reports). Inputs the
    real harness could not run (int64 overflows, a cycle that cannot end) are BadInput.
    """
    top, cycles = _validate(scenario)
    n_cores = top["n_cores"]
    globals_bytes = top["globals_bytes"]
    procs = float(n_cores)
    bg = GC_BACKGROUND_UTILIZATION
    h = HarnessController(top["gc_percent"], top["memory_limit"])
    c = h.c
    results = []
    black_last = 0
    for i, cy in enumerate(cycles):
        if on_cycle is not None:
            on_cycle(i, len(cycles))
        alloc_rate = float(cy["alloc_rate"])
        scan_rate = float(cy["scan_rate"])
        frac = float(cy["scannable_frac"])
        stack_bytes = cy["stack_bytes"]
        h.start_cycle(stack_bytes, globals_bytes, frac, n_cores)
        if i == 0:
            next_heap_marked = top["initial_heap_bytes"]
        else:
            next_heap_marked = _f2i64(float(_i64(_i64(c.heap_marked) - black_last)) * float(cy["growth_rate"]))
        # Work left, consumed globals first, then stacks, then heap.
        left = [globals_bytes, stack_bytes, _f2i64(float(next_heap_marked) * frac)]
        _check_cycle_work(i, top, cy, next_heap_marked, left, procs)
        gc_duration = assist_time = black = 0
        while left[0] + left[1] + left[2] > 0:
            # Idealised assists: the ratio fixes scanned/allocated, hence the utilisation.
            ar = c.assist_work_per_byte
            u = ar * alloc_rate / (ar * alloc_rate + scan_rate)
            if u < bg:
                u = bg
            bytes_scanned = _f2i64(scan_rate * RATE_CONV * procs * u)
            bytes_allocated = _f2i64(alloc_rate * RATE_CONV * procs * (1 - u))
            work = bytes_scanned
            done = [0, 0, 0]
            for k in range(3):
                if left[k] == 0:
                    continue
                if left[k] > work:
                    done[k] += work
                    left[k] -= work
                    work = 0
                    break
                done[k] += left[k]
                work -= left[k]
                left[k] = 0
            elapsed = REVISE_PERIOD
            allocated = bytes_allocated
            scanned = done[0] + done[1] + done[2]
            if scanned < bytes_scanned:
                # The cycle ends inside this period: scale time and allocation down.
                elapsed = _f2i64(float(scanned) * float(REVISE_PERIOD) / (scan_rate * RATE_CONV * procs * u))
                allocated = _f2i64(
                    alloc_rate * RATE_CONV * float(elapsed) / float(REVISE_PERIOD) * procs * (1 - u)
                )
            h.revise(
                heap_live=allocated,
                heap_scan=_f2i64(float(allocated) * frac),
                heap_scan_work=done[2],
                stack_scan_work=done[1],
                globals_scan_work=done[0],
            )
            assist_time = _i64(assist_time + _f2i64(float(elapsed) * procs * (u - bg)))
            gc_duration = _i64(gc_duration + elapsed)
            black = _i64(black + allocated)
        results.append({
            "cycle": i + 1,
            "heap_live": c.heap_marked,
            "heap_scannable": _f2i64(float(_i64(_i64(c.heap_marked) - black_last)) * frac),
            "heap_trigger": c.triggered,
            "heap_peak": c.heap_live,
            "heap_goal": c.heap_goal(),
            "gc_utilization": _fdiv(float(assist_time), float(gc_duration) * procs) + bg,
        })
        h.end_cycle(_u64(next_heap_marked + black), assist_time, gc_duration, n_cores)
        black_last = black
    return {"name": top["name"], "results": results}


def load_scenario(path):
    """Read a scenario file; unreadable or malformed JSON becomes BadInput naming the file."""
    text = read_text(path, "the pacer scenario")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"{path}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
    except RecursionError:          # json's decoder recurses once per nested [ or {
        raise BadInput(f"{path}: not valid JSON: nested too deeply") from None
