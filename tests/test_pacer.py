"""The GC pacer model (runtime_model/pacer.py) against Go 1.27.3.

(a) every TestGcPacer scenario, dumped from the real runtime's own test run
(tests/data/README.md), replays bit-exactly, results and controller state;
(b) the pieces agree with values worked out by hand from mgcpacer.go's
formulas; (c) bad scenarios are refused by name, and the loops are bounded;
(d) the `gomemu pacer replay` command.
"""

import copy
import json
import math
import re
import shlex

import pytest

from emu.cli import main
from emu.errors import BadInput
from runtime_model import pacer
from runtime_model.pacer import MAX_INT64, MAX_UINT64, GcControllerState, HarnessController, replay
from tests.conftest import DATA, ROOT, FakeTerminal, goroot
from tests.fuzz.harness import watchdog

REF = DATA / "pacer"
SCENARIOS = sorted(p.name[: -len(".input.json")] for p in REF.glob("*.input.json"))
MiB = 1 << 20


def load(name, kind):
    return json.loads((REF / f"{name}.{kind}.json").read_text())


# --- (a) Go's scenarios --------------------------------------------------------


def test_every_scenario_of_go_testgcpacer_has_reference_data(go):
    src = (goroot() / "src/runtime/mgcpacer_test.go").read_text()
    body = src[src.index("func TestGcPacer(") : src.index("\nfunc ", src.index("func TestGcPacer("))]
    names = re.findall(r'^\s*name:\s*"(\w+)",', body, re.M)
    assert len(names) == 19
    assert SCENARIOS == sorted(names)


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_bit_exact(name):
    want = load(name, "expected")
    got = replay(load(name, "input"))
    assert got["name"] == want["name"]
    assert len(got["results"]) == len(want["results"])
    for g, w in zip(got["results"], want["results"]):
        assert g.keys() == w.keys()
        for k in w:
            # Same type and value: ints stay ints, floats are the identical float64.
            assert type(g[k]) is type(w[k]) and g[k] == w[k], (name, w["cycle"], k, g[k], w[k])


def _state(c):
    trigger, goal = c.trigger()
    s = {k: getattr(c, k) for k in (
        "heap_marked", "heap_live", "heap_scan", "last_heap_scan", "last_stack_scan", "max_stack_scan",
        "globals_scan", "triggered", "gc_percent_heap_goal", "heap_minimum", "sweep_dist_min_trigger", "runway",
        "cons_mark", "heap_scan_work", "stack_scan_work", "globals_scan_work", "assist_time",
        "assist_work_per_byte", "assist_bytes_per_work")}
    return s | {"trigger": trigger, "heap_goal": goal, "memory_limit_heap_goal": c.memory_limit_heap_goal(),
                "last_cons_mark": list(c.last_cons_mark)}


@pytest.mark.parametrize("name", SCENARIOS)
def test_controller_state_matches_go_at_every_cycle_boundary(name):
    """The trace holds gcControllerState after StartCycle, before and after EndCycle, and each revise."""
    trace = json.loads((REF / "trace" / f"{name}.trace.json").read_text())
    cycles = []
    h_start, h_revise, h_end = HarnessController.start_cycle, HarnessController.revise, HarnessController.end_cycle

    def start(self, *args):
        h_start(self, *args)
        cycles.append({"after_start_cycle": _state(self.c), "steps": []})

    def revise(self, heap_live, heap_scan, heap_scan_work, stack_scan_work, globals_scan_work):
        before = self.c.assist_work_per_byte
        h_revise(self, heap_live, heap_scan, heap_scan_work, stack_scan_work, globals_scan_work)
        cycles[-1]["steps"].append([before, globals_scan_work, stack_scan_work, heap_scan_work, heap_live,
                                    self.c.assist_work_per_byte])

    def end(self, bytes_marked, assist_time, elapsed, procs):
        cycles[-1] |= {"before_end_cycle": _state(self.c), "end_cycle_bytes_marked": bytes_marked,
                       "assist_time": assist_time, "gc_duration": elapsed}
        h_end(self, bytes_marked, assist_time, elapsed, procs)
        cycles[-1]["after_end_cycle"] = _state(self.c)

    with pytest.MonkeyPatch.context() as mp:
        for attr, f in (("start_cycle", start), ("revise", revise), ("end_cycle", end)):
            mp.setattr(HarnessController, attr, f)
        replay(load(name, "input"))
    # Of a step's fields, revise sees: assist_ratio, the three scanned amounts, actual_allocated, and the new ratio.
    fields = trace["step_fields"]
    pick = [fields.index(k) for k in ("assist_ratio", "globals_scanned", "stack_scanned", "heap_scanned",
                                       "actual_allocated", "assist_work_per_byte_after_revise")]
    for got, want in zip(cycles, trace["cycles"], strict=True):
        where = f"{name} cycle {want['cycle']}"
        for k in ("after_start_cycle", "before_end_cycle", "after_end_cycle", "end_cycle_bytes_marked",
                  "assist_time", "gc_duration"):
            assert _typed(got[k]) == _typed(want[k]), (where, k)
        assert len(got["steps"]) == want["n_revise_steps"], where
        for g, w in zip(got["steps"], want.get("steps", [])):
            assert _typed(g) == _typed([w[i] for i in pick]), where


def _typed(v):
    """v with every number paired with its type, so that 0 and 0.0 differ."""
    if isinstance(v, dict):
        return {k: _typed(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_typed(x) for x in v]
    return (type(v).__name__, v)


# --- (b) hand-computed pieces ------------------------------------------------


def controller(gc_percent, memory_limit=MAX_INT64, marked=0, stacks=0, globals_=0):
    c = GcControllerState(gc_percent, memory_limit)
    c.heap_marked = c.heap_live = marked
    c.last_stack_scan = stacks
    c.globals_scan = globals_
    c.commit(True)
    return c


@pytest.mark.parametrize(
    "gogc, goal",
    [
        # goal = marked + (marked + stacks + globals) * GOGC/100 with 10 MiB marked,
        # 1 MiB of stacks and 512 KiB of globals: the roots are 11.5 MiB.
        (100, 10 * MiB + 11 * MiB + 512 * 1024),  # 21.5 MiB
        (50, 10 * MiB + 5 * MiB + 768 * 1024),  # 16.75 MiB
        (400, 10 * MiB + 46 * MiB),  # 56 MiB
    ],
)
def test_gc_percent_heap_goal_counts_stacks_and_globals(gogc, goal):
    c = controller(gogc, marked=10 * MiB, stacks=MiB, globals_=512 * 1024)
    assert c.gc_percent_heap_goal == goal
    assert c.heap_goal() == goal


def test_gc_percent_heap_goal_truncates_and_respects_heap_minimum():
    # 10_000_001 * 50 / 100 = 5_000_000.5, truncated by the uint64 division.
    assert controller(50, marked=10_000_001).heap_goal() == 15_000_001
    # 1 MiB marked -> 2 MiB + 8 KiB, below the 4 MiB * 100/100 heap minimum.
    assert controller(100, marked=MiB, stacks=8192).heap_goal() == 4 * MiB
    # GOGC=50 scales the minimum: 4 MiB * 50/100 = 2 MiB.
    c = controller(50, marked=MiB)
    assert c.heap_minimum == 2 * MiB
    assert c.heap_goal() == 2 * MiB


def test_gogc_off_wraps_heap_minimum():
    c = GcControllerState(-1, MAX_INT64)
    # uint64(-1) * 4 MiB wraps to 2^64 - 4 MiB, then / 100.
    assert c.heap_minimum == (2**64 - 4 * MiB) // 100 == 184467440737053573
    assert c.gc_percent == -1
    assert c.gc_percent_heap_goal == 2**64 - 1  # no GOGC goal; above the wrapped minimum
    # Only the memory limit bounds the goal: MaxInt64 - 3% headroom.
    headroom = MAX_INT64 // 100 * 3
    assert c.heap_goal() == MAX_INT64 - headroom == 8946670875749132533
    # Any GOGC < 0 is stored as -1.
    assert GcControllerState(-42).heap_minimum == 184467440737053573


def test_gogc_off_with_memory_limit():
    c = GcControllerState(-1, 512 * MiB)
    headroom = 536870912 // 100 * 3  # 16106127: above the 1 MiB minimum headroom
    goal = 536870912 - headroom
    assert goal == 520764785
    assert c.memory_limit_heap_goal() == goal
    assert c.heap_goal() == goal
    # Trigger: runway 0 wants the goal itself; clamped to the max trigger,
    # here goal - 4 MiB because that exceeds 61/64 of the distance from 0.
    assert (goal // 64) * 61 == 496353889 < goal - 4 * MiB
    assert c.trigger() == (goal - 4 * MiB, goal)


def test_small_memory_limits_use_minimum_headroom():
    # 10 MiB: 3% = 314571 < 1 MiB, so the headroom is 1 MiB.
    assert GcControllerState(100, 10 * MiB).memory_limit_heap_goal() == 9 * MiB
    # 1.5 MiB: goal - headroom < headroom, so the goal is the headroom itself.
    assert GcControllerState(100, 3 * MiB // 2).memory_limit_heap_goal() == MiB


def test_memory_limit_below_live_heap():
    c = controller(100, memory_limit=64 * MiB, marked=100 * MiB)
    # 64 MiB - 3% = 65095600 is below the marked heap, which wins.
    assert 64 * MiB - (64 * MiB // 100 * 3) == 65095600
    assert c.memory_limit_heap_goal() == 100 * MiB
    assert c.gc_percent_heap_goal == 200 * MiB
    assert c.heap_goal() == 100 * MiB
    # Marked heap >= goal: trigger immediately, at the goal.
    assert c.trigger() == (100 * MiB, 100 * MiB)


@pytest.mark.parametrize(
    "runway, trigger",
    [
        # marked 10 MiB, goal 20 MiB: distance/64 = 163840.
        (0, 163840 * 61 + 10 * MiB),  # goal - 0 clamped to the max trigger (61/64) = 20480000
        (2 * MiB, 20 * MiB - 2 * MiB),  # inside the bounds: goal - runway
        (9 * MiB, 163840 * 45 + 10 * MiB),  # goal - runway below the min trigger (45/64) = 17858560
        (30 * MiB, 163840 * 45 + 10 * MiB),  # runway > goal: the min trigger
    ],
)
def test_trigger_bounds(runway, trigger):
    c = controller(100, marked=10 * MiB)
    c.runway = runway
    assert c.trigger() == (trigger, 20 * MiB)


def test_trigger_max_is_goal_minus_default_heap_minimum_for_big_heaps():
    c = controller(100, marked=100 * MiB)
    # 61/64 of the way is 204800000; goal - 4 MiB = 205520896 is later and wins.
    assert (100 * MiB // 64) * 61 + 100 * MiB == 204800000
    assert c.trigger() == (200 * MiB - 4 * MiB, 200 * MiB)


def test_sweep_distance_and_min_runway():
    c = controller(100, marked=10 * MiB)
    c.heap_live = 30 * MiB
    c.commit(False)  # sweeping not done: goal at least heap_live + 1 MiB
    assert c.sweep_dist_min_trigger == 31 * MiB
    assert c.heap_goal_internal() == (31 * MiB, 31 * MiB)
    c.triggered = 31 * MiB - 1000  # in a cycle: keep >= 64 KiB of runway past the trigger
    assert c.heap_goal() == 31 * MiB - 1000 + 65536


@pytest.mark.parametrize(
    "procs, dedicated, fractional",
    [
        (8, 2, 0.0),  # 8 * 0.25 = 2 whole workers
        (4, 1, 0.0),
        (5, 1, 0.0),  # 1.25 -> 1 is 20% off: within the 30% tolerance
        (6, 1, 0.5 / 6),  # 1.5 -> 2 is 33% off: 1 dedicated + 0.5 fractional
        (3, 0, 0.25),  # 0.75 -> 1 is 33% off: 0 dedicated, all fractional
        (1, 0, 0.25),
    ],
)
def test_start_cycle_worker_counts(procs, dedicated, fractional):
    c = GcControllerState(100)
    c.start_cycle(0, procs)
    assert c.dedicated_mark_workers_needed == dedicated
    assert c.fractional_utilization_goal == fractional
    assert c.max_idle_mark_workers == procs - dedicated


def test_first_cycle_assist_ratio():
    h = HarnessController(100, MAX_INT64)
    h.start_cycle(8192, 32768, 1.0, 8)
    # Fresh controller: goal 4 MiB, trigger at 61/64 of it = 3997696.
    assert h.c.triggered == h.c.heap_live == 65536 * 61 == 3997696
    # Expected work is the 32 KiB of globals over 4 MiB - 3997696 = 196608 bytes of runway.
    assert h.c.assist_work_per_byte == 32768 / 196608 == 1 / 6
    assert h.c.assist_bytes_per_work == 6.0


def in_cycle(gogc, memory_limit, triggered, live, heap_scan, expected, work):
    c = controller(gogc, memory_limit, marked=10 * MiB)
    c.triggered, c.heap_live, c.heap_scan = triggered, live, heap_scan
    c.last_heap_scan = expected
    c.globals_scan = c.last_stack_scan = c.max_stack_scan = 0
    c.heap_scan_work = work
    c.revise()
    return c


def test_revise_extends_goal_when_work_exceeds_expectation():
    # Goal 20 MiB, triggered at 16 MiB, 1 MiB expected but 2 MiB done and 4 MiB scannable:
    # extended goal = (20-16)/1 * 4 + 16 = 32 MiB (< hard goal 40 MiB).
    c = in_cycle(100, MAX_INT64, 16 * MiB, 17 * MiB, 4 * MiB, MiB, 2 * MiB)
    assert c.assist_work_per_byte == (2 * MiB) / (15 * MiB)
    assert c.assist_bytes_per_work == (15 * MiB) / (2 * MiB)


def test_revise_hard_goal():
    # As above with 16 MiB scannable: 80 MiB extended, capped at (1 + 100/100) * 20 = 40 MiB.
    c = in_cycle(100, MAX_INT64, 16 * MiB, 17 * MiB, 16 * MiB, MiB, 2 * MiB)
    assert c.assist_work_per_byte == float(14 * MiB) / float(23 * MiB)


def test_revise_hard_goal_treats_gogc_off_as_100000():
    goal = 520764785  # the 512 MiB memory-limit goal
    triggered = goal - 4 * MiB
    c = in_cycle(-1, 512 * MiB, triggered, 518_000_000, 2**38, MiB, 2 * MiB)
    # extended = 4 * 2^38 + triggered > hard = 1001 * goal.
    hard = 1001 * goal
    assert 4 * 2**38 + triggered > hard
    assert c.assist_work_per_byte == float(2**38 - 2 * MiB) / float(hard - 518_000_000)


def test_revise_overshoot_past_goal():
    # Live 21 MiB beyond the 20 MiB goal (work within expectation): goal * 1.1 = 22 MiB,
    # expected work becomes the 8 MiB worst case.
    c = in_cycle(100, MAX_INT64, 16 * MiB, 21 * MiB, 8 * MiB, 4 * MiB, MiB)
    assert int(20 * MiB * 1.1) == 23068672
    assert c.assist_work_per_byte == float(7 * MiB) / float(23068672 - 21 * MiB)


def test_end_cycle_cons_mark_history_and_runway():
    c = GcControllerState(100)

    def cycle(allocated_during_mark, scan_work, assist_time):
        c.triggered = 4 * MiB
        c.heap_live = 4 * MiB + allocated_during_mark
        c.heap_scan_work = scan_work
        c.assist_time = assist_time
        c.end_cycle(1_000_000, 4)

    # utilization = 0.25 + 1e6 / (1e6 * 4) = 0.5; cons/mark = (1 MiB * 0.5) / (2 MiB * 0.5).
    cycle(MiB, 2 * MiB, 1_000_000)
    assert c.cons_mark == 0.5 and c.last_cons_mark == [0.0, 0.0, 0.0, 0.5]
    # utilization 0.25: (1 MiB * 0.25) / (1 MiB * 0.75) = 1/3, but the max of the history stays.
    cycle(MiB, MiB, 0)
    assert c.last_cons_mark == [0.0, 0.0, 0.5, 0.25 * MiB / (0.75 * MiB)]
    assert c.cons_mark == 0.5
    # No allocation during the mark phase: nothing learned.
    cycle(0, MiB, 0)
    assert c.last_cons_mark == [0.0, 0.0, 0.5, 1 / 3]
    # runway = consMark * 0.75 / 0.25 * (lastHeapScan + lastStackScan + globals) = 1.5 * 2 MiB.
    c.reset_live(10 * MiB)
    c.heap_scan_work = 0
    c.last_heap_scan, c.last_stack_scan, c.globals_scan = MiB, 512 * 1024, 512 * 1024
    c.commit(False)
    assert c.runway == 3 * MiB
    assert c.triggered == MAX_UINT64


@pytest.mark.parametrize(
    "f, as_int64, as_uint64",
    [
        # Printed by int64(f) / uint64(f) in a go1.27.3 linux/amd64 program.
        (-1.5, -1, 2**64 - 1),
        (1e19, -(2**63), 10**19),
        (1.9e19, -(2**63), 2**63),
        (9e21, -(2**63), 2**63),
        (-9e21, -(2**63), 2**63),
        (math.inf, -(2**63), 2**63),
        (math.nan, -(2**63), 2**63),
    ],
)
def test_float_to_int_conversions_follow_go_amd64(f, as_int64, as_uint64):
    assert pacer._f2i64(f) == as_int64
    assert pacer._f2u64(f) == as_uint64


# --- (c) bad scenarios and bounded loops ----------------------------------------


def test_bad_inputs_name_field_and_cycle():
    base = load("Steady", "input")
    s = copy.deepcopy(base)
    del s["cycles"][3]["scan_rate"]
    with pytest.raises(BadInput, match=r"'scan_rate' in cycles\[3\]"):
        replay(s)
    s = copy.deepcopy(base)
    s["cycles"][7]["stack_bytes"] = "8192"
    with pytest.raises(BadInput, match=r"'stack_bytes' in cycles\[7\]"):
        replay(s)
    s = copy.deepcopy(base)
    s["cycles"][0]["alloc_rate"] = 0.0
    with pytest.raises(BadInput, match=r"'alloc_rate' in cycles\[0\]"):
        replay(s)
    s = copy.deepcopy(base)
    s["gc_percent"] = True
    with pytest.raises(BadInput, match="'gc_percent'"):
        replay(s)
    s = copy.deepcopy(base)
    del s["globals_bytes"]
    with pytest.raises(BadInput, match="missing field 'globals_bytes'"):
        replay(s)
    s = copy.deepcopy(base)
    s["length"] = 49
    with pytest.raises(BadInput, match="'length'"):
        replay(s)


def test_rates_whose_revise_period_overflows_int64_are_refused():
    # alloc_rate * 512 * 8 cores past 2^63 bytes: Go's int64(...) would wrap to MinInt64.
    s = load("Steady", "input")
    s["cycles"][5]["alloc_rate"] = 2.0**63 / 4096
    with pytest.raises(BadInput, match=r"'alloc_rate' in cycles\[5\] must be a number > 0 that keeps"):
        replay(s)
    s = load("Steady", "input")
    s["cycles"][2]["scan_rate"] = 1e300
    with pytest.raises(BadInput, match=r"'scan_rate' in cycles\[2\]"):
        replay(s)


def test_constants_of_another_go_build_are_refused():
    s = load("Steady", "input")
    s["constants"]["DefaultHeapMinimum"] = 512 << 10  # GOEXPERIMENT=heapminimum512kib
    with pytest.raises(BadInput, match=r"'constants.DefaultHeapMinimum' is 524288.*4194304"):
        replay(s)


def _steady_with(change):
    s = load("Steady", "input")
    change(s)
    s["length"] = len(s["cycles"])
    return s


def _every_cycle(**fields):
    return lambda s: [c.update(fields) for c in s["cycles"]]


# Inputs that passed validation and made the replay spin for hours (issue 10, item 3). Go's harness
# could not run them either: int64 work counters overflow, or a cycle needs ~2^40 revise periods.
UNRUNNABLE = {
    "globals_bytes": (lambda s: s.update(globals_bytes=2**40), r"cycle 1 needs up to 1048577 revise periods, more than 10000: .*'globals_bytes'"),
    "stack_bytes": (_every_cycle(stack_bytes=2**63 - 1), r"cycle 1 has \d+ bytes of scan work \(mostly field 'stack_bytes' in cycles\[0\]\), past int64"),
    "initial_heap_bytes": (lambda s: s.update(initial_heap_bytes=2**62), r"cycle 1 needs up to \d+ revise periods.*'initial_heap_bytes'"),
    "scan_rate": (_every_cycle(scan_rate=0.001), r"'scan_rate' in cycles\[0\] \(0\.001\), at least 1 bytes a period"),
    "growth_rate": (lambda s: s.update(cycles=[dict(s["cycles"][0], growth_rate=2.0)] * 20000),
                    r"cycle 17 needs up to \d+ revise periods.*'growth_rate' in cycles\[16\]"),
    "scan_rate_below_a_byte": (_every_cycle(scan_rate=0.0001), r"'scan_rate' in cycles\[0\] \(0\.0001\) scans less than 1 byte"),
}


@pytest.mark.parametrize("case", sorted(UNRUNNABLE))
def test_scenario_the_harness_could_not_finish_is_refused_at_once(case, tmp_path, capsys):
    change, message = UNRUNNABLE[case]
    path = tmp_path / "Steady.input.json"
    path.write_text(json.dumps(_steady_with(change)))
    with watchdog(20):
        assert main(["pacer", "replay", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"gomemu: error: {path}: pacer scenario: "), err
    assert re.search(message, err), err


def test_growth_past_2_63_bytes_is_refused_where_it_overflows():
    # A huge growth rate in cycle 3 takes the marked heap past int64 in one step.
    s = _steady_with(lambda s: s["cycles"][2].update(growth_rate=1e30))
    with pytest.raises(BadInput, match=r"field 'growth_rate' in cycles\[2\]: the marked heap of cycle 3 passes 2\^63"):
        replay(s)


def test_revise_steps_per_cycle_stay_below_the_bound_for_go_scenarios():
    # The bound is far above what Go's own scenarios need (so it refuses no real scenario).
    most = max(max(c["n_revise_steps"] for c in json.loads(p.read_text())["cycles"])
               for p in (REF / "trace").glob("*.trace.json"))
    assert most * 20 < pacer.MAX_REVISE_STEPS


@pytest.mark.slow
def test_a_twenty_thousand_cycle_steady_scenario_runs_to_the_end():
    s = _steady_with(lambda s: s["cycles"].extend([s["cycles"][-1]] * (20000 - 50)))
    results = replay(s)["results"]
    assert len(results) == 20000
    assert results[-1]["heap_live"] == results[-2]["heap_live"]  # the heap has settled


def test_a_replay_on_a_terminal_shows_its_cycles_on_the_shared_progress_line(monkeypatch, capsys):
    # emu/cli/output.Progress (its timing is tested in test_cli.py) with the scenario's length
    from emu.cli import output
    monkeypatch.setattr(output.Progress, "DELAY", 0.0)
    monkeypatch.setattr(output.Progress, "PERIOD", 0.0)
    term = FakeTerminal(True)
    monkeypatch.setattr(output.sys, "stderr", term)
    assert main(["pacer", "replay", str(REF / "Steady.input.json")]) == 0
    shown = term.getvalue()
    assert "\rgomemu: pacer replay Steady.input.json: cycles: 1/50" in shown
    assert "\rgomemu: pacer replay Steady.input.json: cycles: 50/50" in shown
    assert shown.endswith(" " * len("gomemu: pacer replay Steady.input.json: cycles: 50/50") + "\r")


def test_a_replay_reports_progress_through_its_callback():
    seen = []
    replay(load("Steady", "input"), on_cycle=lambda i, n: seen.append((i, n)))
    assert seen == [(i, 50) for i in range(50)]


# --- (d) command line -------------------------------------------------------


@pytest.mark.parametrize("name", ["Steady", "StepAlloc", "ExceedMemoryLimitNoGCPercent"])
def test_cli_table_matches_reference(name, capsys):
    assert main(["pacer", "replay", str(REF / f"{name}.input.json")]) == 0
    out, err = capsys.readouterr()
    out = out.splitlines()
    n = len(load(name, "input")["cycles"])
    assert out[-1] == f"{name}: {n} cycles, all values equal to the reference"
    assert len(out) == n + 2
    assert err == ""
    last = load(name, "expected")["results"][-1]
    columns = ("cycle", "heap_live", "heap_trigger", "heap_peak", "heap_goal")
    assert out[-2].split()[:5] == [str(last[k]) for k in columns]


def test_cli_json_has_the_schema_header_and_the_reference_fields(capsys):
    path = REF / "Steady.input.json"
    assert main(["pacer", "replay", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "gomemu.pacer-replay/v1" and doc["go"] == "go1.27.3" and doc["gomemu"]
    assert {"name": doc["name"], "results": doc["results"]} == load("Steady", "expected")
    assert doc["reference"] == str(REF / "Steady.expected.json")
    assert (doc["differing_values"], doc["differing_cycles"]) == (0, [])


def test_cli_json_writes_go_nan_utilisation_as_null(tmp_path, capsys):
    # No globals, stacks or heap to scan: the cycle takes 0 ns and Go's utilisation is 0/0.
    s = _steady_with(lambda s: (s.update(globals_bytes=0, initial_heap_bytes=0, cycles=s["cycles"][:1]),
                                s["cycles"][0].update(stack_bytes=0)))
    path = tmp_path / "Empty.input.json"
    path.write_text(json.dumps(s))
    assert math.isnan(replay(s)["results"][0]["gc_utilization"])
    assert main(["pacer", "replay", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert doc["results"][0]["gc_utilization"] is None
    assert (doc["reference"], doc["differing_values"]) == (None, None)


def test_cli_reports_mismatches(tmp_path, capsys):
    (tmp_path / "Steady.input.json").write_text((REF / "Steady.input.json").read_text())
    ref = load("Steady", "expected")
    ref["results"][4]["heap_goal"] += 1
    ref["results"][4]["gc_utilization"] = 0.5
    (tmp_path / "Steady.expected.json").write_text(json.dumps(ref))
    assert main(["pacer", "replay", str(tmp_path / "Steady.input.json")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[5].endswith("*")
    assert out[-1].startswith("Steady: 50 cycles, 2 values in 1 cycle differ from the reference")
    assert main(["pacer", "replay", str(tmp_path / "Steady.input.json"), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert (doc["differing_values"], doc["differing_cycles"]) == (2, [5])


def test_cli_bad_file_one_line_exit_1(tmp_path, capsys):
    bad = tmp_path / "broken.json"
    bad.write_text('{"name": "x", "gc_percent": ')
    assert main(["pacer", "replay", str(bad)]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and str(bad) in err and "JSON" in err

    s = load("Steady", "input")
    s["cycles"][2]["growth_rate"] = "fast"
    bad.write_text(json.dumps(s))
    assert main(["pacer", "replay", str(bad)]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "'growth_rate' in cycles[2]" in err and str(bad) in err


def test_readme_pacer_example_runs(tmp_path, capsys):
    line = next(ln for ln in (ROOT / "README.md").read_text().splitlines() if ln.startswith("gomemu pacer replay"))
    argv = shlex.split(line.split("#")[0])[1:]
    assert not any(a.startswith("..") for a in argv), "a plain clone has nothing beside it"
    argv = [str(ROOT / a) if a.startswith("tests/") else a for a in argv]
    png = tmp_path / "plot.png"
    argv[argv.index("--plot") + 1] = str(png)
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("all values equal to the reference")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
