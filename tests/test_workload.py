"""Workloads on the emulated runtime against the real go1.27.3 runtime running the same
program (tests/programs/churn, its gctrace in tests/data/churn: see generate.py there).

The default tests run the scaled-down shape (8 MiB live, 192 MiB allocated: `small*`
files); the full 64 MiB / 1.5 GiB shape of issue 12 is marked slow.
"""

import re
import statistics
from pathlib import Path

import pytest

from emu.errors import BadInput
from emu.mutator import WorkloadRun
from emu.workload import BUILTINS, load, parse

DATA = Path(__file__).resolve().parent / "data" / "churn"
MB = 1 << 20
GCTRACE = re.compile(r"gc (\d+) @([\d.]+)s (\d+)%: ([\d.]+)\+([\d.]+)\+([\d.]+) ms clock, "
                     r"([\d.]+)\+([\d.]+)/([\d.]+)/([\d.]+)\+([\d.]+) ms cpu, (\d+)->(\d+)->(\d+) MB, "
                     r"(\d+) MB goal, (\d+) MB stacks, (\d+) MB globals, (\d+) P( \(forced\))?$")
STEADY = 10            # issue 12: "from the 10th cycle on"


def real(name):
    """The real run's gctrace lines, parsed: one tuple of numbers per cycle."""
    out = []
    for line in (DATA / f"{name}.gctrace").read_text().splitlines():
        if line.startswith("gc "):
            m = GCTRACE.match(line)
            assert m, line
            out.append(tuple(float(g) for g in m.groups()[:18]))
    return out


def real_runs(name):
    """The cycle counts of all real runs of a setting (generate.py runs each 5 times)."""
    for line in (DATA / f"{name}.gctrace").read_text().splitlines():
        if line.startswith("# runs:"):
            return [int(n) for n in line.split()[2:-1]]
    raise AssertionError(f"{name}.gctrace has no '# runs:' line")


def real_cycles(name):
    """The cycle count of the least disturbed real run of a setting: load on the machine
    only removes cycles (a mark phase that gets less CPU lets the heap overshoot its
    trigger), so the most cycles is the quiet machine's figure (the issue's 29 for churn
    at GOGC=100; runs under load gave 24-30)."""
    return max(real_runs(name))


def parsed(lines):
    out = []
    for line in lines:
        m = GCTRACE.match(line)
        assert m, f"not Go 1.27's gctrace format: {line}"
        out.append(tuple(float(g) for g in m.groups()[:18]))
    return out


CHURN_SMALL = """
name = "churn-small"
gomaxprocs = 2
total_allocated = "192MiB"
[live]
bytes = "8MiB"
object_size = "64KiB"
[[garbage]]
object_size = 4096
"""


def run_text(text, **kw):
    return WorkloadRun(parse(text, "test.toml"), **kw).run()


@pytest.fixture(scope="module")
def small100():
    return run_text(CHURN_SMALL)


def steady_goals(rows):
    """The goals of the cycles that start from the steady live heap: after the first cycle
    from which on every marked heap is the final one (within 2%). For churn at GOGC=100
    that is the issue's "from the 10th cycle on"; at GOGC=50 the live set takes one more."""
    final = rows[-1][13]
    first = len(rows) - 1
    while first > 0 and abs(rows[first - 1][13] - final) <= 0.02 * final:
        first -= 1
    return [r[14] for r in rows[first + 1:]]


def test_churn_small_cycles_within_10_percent_of_real(small100):
    want = real_cycles("small")
    got = len(small100.cycles)
    assert abs(got - want) <= 0.1 * want, (got, want)


def test_churn_small_steady_goal_within_2_percent_of_real(small100):
    want = statistics.median(steady_goals(real("small")))
    for g in steady_goals(parsed(small100.rt.gc.gctrace)):
        assert abs(g - want) <= 0.02 * want + 1, (g, want)      # gctrace prints whole MB


def test_churn_small_gctrace_lines_are_go_format_and_numbered(small100):
    rows = parsed(small100.rt.gc.gctrace)
    assert [int(r[0]) for r in rows] == list(range(1, len(rows) + 1))
    assert all(r[17] == 2 for r in rows)                        # GOMAXPROCS=2
    # the marked heap is the live set (8 MiB) from the first steady cycle on, as in the real run
    assert {r[13] for r in rows if r[0] >= STEADY} <= {r[13] for r in real("small")}


def test_churn_small_mark_workers_fractional_then_idle_and_util_from_the_split(small100):
    # Go 1.27: startTheWorldWithSema's procresize gives the idle P a fractional worker
    # (assignWaitingGCWorker: 25% at GOMAXPROCS=2), which stops once pollFractionalWorkerExit
    # finds its time over 1.2 x 25% of the time since markStartTime (gcStart's now, before
    # sweep termination): t = 0.3 (t + stw) after the mark begins; then the P runs an idle
    # worker. The mutator never parks here from the steady cycles on.
    gc = small100.rt.gc
    for cyc in gc.cycles[STEADY:]:
        stw = cyc.t_mark - cyc.t_sweep_term
        assert abs(cyc.bg_ns - 0.3 * stw / 0.7) <= 2, (cyc.n, cyc.bg_ns, stw)
        assert cyc.idle_ns > 0
    # gcMarkTermination: gc_cpu_fraction = (GCTotalTime - GCIdleTime) / TotalTime, the idle
    # workers' time left out, every pause at GOMAXPROCS
    busy = sum(gc.procs * ((c.t_mark - c.t_sweep_term) + (c.t_end - c.t_mark_term)) + c.assist_ns + c.bg_ns
               for c in gc.cycles)
    last = gc.cycles[-1]
    assert last.cpu_fraction == pytest.approx(busy / (last.t_end * gc.procs), rel=1e-6)


def test_churn_small_gogc50_against_real():
    run = run_text(CHURN_SMALL, gogc=50)
    want = real("small_gogc50")
    n = real_cycles("small_gogc50")
    assert abs(len(run.cycles) - n) <= 0.1 * n, (len(run.cycles), n)
    goal = statistics.median(steady_goals(want))
    for g in steady_goals(parsed(run.rt.gc.gctrace)):
        assert abs(g - goal) <= 0.02 * goal + 1, (g, goal)


# Memory limit: RSS may pass the limit by what the heap's own metadata and the runtime's
# non-heap memory take (mappedReady counts them, RSS does not see untouched pages); the
# stated overhead is 1 MiB plus 5% of the limit.
def rss_overhead(limit):
    return MB + limit // 20


# Under GOMEMLIMIT=12MiB the 8 MiB live heap and the runtime's own 4.5 MiB of non-heap
# memory (tests/data/churn/memstats_small_memlimit12.txt) leave no room: the real goal is
# the marked heap (8 MB), and the cycles run back to back, each as long as its mark phase
# and what the mutator allocates meanwhile. The run here is cut to 16 MiB of garbage (the
# real 184 MiB is the slow test below); cycles are compared per byte allocated.
SMALL_MEMLIMIT_GARBAGE = 16 * MB


@pytest.fixture(scope="module")
def small_memlimit12():
    text = CHURN_SMALL.replace('total_allocated = "192MiB"', f"total_allocated = {8 * MB + SMALL_MEMLIMIT_GARBAGE}")
    return run_text(text, memory_limit=12 * MB)


def test_memlimit_small_goal_is_the_real_one_heap_and_rss_within_limit(small100, small_memlimit12):
    limit, run = 12 * MB, small_memlimit12
    per_byte = len(small100.cycles) / (184 * MB)                 # without the limit
    assert len(run.cycles) / SMALL_MEMLIMIT_GARBAGE > 3 * per_byte
    for c in run.cycles[STEADY:]:
        assert c["heap_goal"] <= limit
        assert c["rss"] <= limit + rss_overhead(limit)
    want = statistics.median(steady_goals(real("small_memlimit12")))       # 8 MB
    assert set(steady_goals(parsed(run.rt.gc.gctrace))) == {want}
    # as in the real run, the goal is the marked heap: memoryLimitHeapGoal's floor
    c = run.rt.gc_controller
    run.rt.gc.sync_stats()
    assert c.heap_goal() == c.heap_marked


def test_memlimit_small_cycles_per_allocated_byte_within_10_percent_of_real(small_memlimit12):
    want = statistics.median(real_runs("small_memlimit12")) / (184 * MB)   # its garbage: 192 - 8 MiB
    got = len(small_memlimit12.cycles) / SMALL_MEMLIMIT_GARBAGE
    assert abs(got - want) <= 0.1 * want, (got * MB, want * MB)


@pytest.mark.slow
def test_memlimit_small_whole_run_cycles_within_10_percent_of_real():
    run = run_text(CHURN_SMALL, memory_limit=12 * MB)
    n = statistics.median(real_runs("small_memlimit12"))
    assert abs(len(run.cycles) - n) <= 0.1 * n, (len(run.cycles), n)


@pytest.fixture(scope="module")
def above_limit():
    # the real shape: 8 MiB live under a 4 MiB limit, 64 MiB allocated (small_memlimit4)
    return run_text(CHURN_SMALL.replace('"192MiB"', '"64MiB"'), memory_limit=4 * MB)


def test_live_heap_above_limit_allocation_continues_gc_cpu_capped(above_limit):
    # The soft limit lets allocation go on with cycles back to back, the goal at the marked
    # heap. GC work besides the stop-the-world pauses stays within the CPU limiter's 50%
    # cap (its bucket never fills here: the noscan heap leaves assists little to scan).
    run = above_limit
    s = run.summary()
    assert s["allocated"] == 64 * MB
    assert len(run.cycles) > 50                     # back to back (real: 185-249)
    # the goal never drops below the heap the previous cycle marked (the soft limit); the
    # second half of the cycles runs with the whole live set built
    half = len(run.cycles) // 2
    pairs = zip(run.cycles[half - 1:], run.cycles[half:])
    assert all(c["heap_goal"] >= prev["heap_marked"] >= 8 * MB for prev, c in pairs)
    gc, ns = run.rt.gc, s["modeled_ns"]
    work = (gc.gc_cpu_ns - gc.pause_total_ns * gc.procs) / (ns * gc.procs)
    assert work <= 0.5 + 0.05, work


@pytest.mark.xfail(strict=True, reason="184 cycles, one below the real 185-249, since assists take root "
                   "jobs whole and their credit comes at a job's end (203 before); docs/gc.md")
def test_live_heap_above_limit_cycles_within_the_real_range(above_limit):
    # back to back, each cycle's count set by what the mutator allocates while it runs: its
    # assists find no work once the root jobs are taken and park, woken by the credit the
    # root jobs and the workers flush (gcFlushBgCredit)
    counts = [int(n) for n in (DATA / "small_memlimit4.gctrace").read_text().splitlines()[1].split()[2:-1]]
    assert min(counts) <= len(above_limit.cycles) <= max(counts), (len(above_limit.cycles), counts)


@pytest.mark.xfail(strict=True, reason="gomemu's GC CPU is 42% here, the real run's 29%: its background "
                   "scavenger takes the freed pages Go releases eagerly, in getempty's workbuf spans at "
                   "each mark's start (scavtrace: 1 MB eager, 55 background; real 58 and 5), and it lacks "
                   "the runtime's startup objects and stacks; modeling both gives 32.6% but breaks the "
                   "12 MiB shape (branch gc12-experiment), the workbuf spans too 39.8% (gc12c-experiment); "
                   "docs/gc.md")
def test_live_heap_above_limit_gc_cpu_near_real(above_limit):
    util = real("small_memlimit4")[-1][2] / 100     # gctrace's U% at the end: 29%
    assert abs(above_limit.summary()["gc_cpu_fraction"] - util) <= 0.05


SPIKE = """
name = "spike"
gomaxprocs = 2
[live]
bytes = "4MiB"
object_size = "32KiB"
[[garbage]]
object_size = 4096
[[phases]]
name = "spike"
live = "48MiB"
allocate = "32MiB"
[[phases]]
name = "after"
live = "4MiB"
allocate = "64MiB"
idle = "4s"
"""


def test_scavenger_brings_rss_down_after_the_live_heap_drops():
    # after the drop, cycles at the small heap's goal move the scavenge index's generation
    # on (memory freed in a chunk that was dense this generation is not scavenged, as in
    # Go), then the idle time lets the background scavenger work
    lines = []
    run = WorkloadRun(parse(SPIKE, "spike.toml"), scavtrace_out=lines.append)
    run.run()
    peak = run.peak_rss
    end = run.samples[-1][4]
    assert peak > 40 * MB
    assert end < peak // 2, (end, peak)
    from emu.syscalls import SYS_MADVISE
    madvise = [r for r in run.m.kernel.log if r.nr == SYS_MADVISE]
    assert madvise and all(r.note == "MADV_DONTNEED" for r in madvise)
    assert any(re.match(r"scav [1-9]\d* KiB work \(bg\)", line) for line in lines), lines
    assert run.rt.mheap.heap_released >= peak - end - 8 * MB


# ---- the cost constants against the real gctrace -------------------------------------------

def median_col(rows, i):
    return statistics.median(r[i] for r in rows if r[0] >= STEADY)


def test_stated_costs_are_the_real_medians():
    from runtime_model import mgc
    g100, small, glb = real("gogc100"), real("small"), real("globals")
    assert mgc.STW_SWEEP_TERM_NS == pytest.approx(median_col(g100, 3) * 1e6, rel=0.25)
    assert mgc.STW_MARK_TERM_NS == pytest.approx(median_col(g100, 5) * 1e6, rel=0.25)
    cpu = lambda rows: statistics.median(r[7] + r[8] + r[9] for r in rows if r[0] >= STEADY) * 1e6
    stacks = real("stacks")
    n_small, n_100 = 129, 1025              # live objects: 8 or 64 MiB of 64 KiB and the slice
    per_object = (cpu(g100) - cpu(small)) / (n_100 - n_small)
    assert mgc.MARK_NS_PER_LARGE_OBJECT == pytest.approx(per_object, rel=0.05)
    assert mgc.MARK_FIXED_NS == pytest.approx(cpu(small) - n_small * per_object, rel=0.05)
    assert mgc.MARK_NS_PER_BYTE == pytest.approx((cpu(glb) - cpu(g100)) / (8 * MB), rel=0.05)
    assert mgc.STACK_NS_PER_BYTE == pytest.approx((cpu(stacks) - cpu(g100)) / (16 * MB), rel=0.05)


def test_gomemu_mark_and_pause_clock_near_real(small100):
    rows = parsed(small100.rt.gc.gctrace)
    want = real("small")
    for col in (3, 5):                                          # the two stop-the-world clocks
        assert median_col(rows, col) == pytest.approx(median_col(want, col), rel=0.5)
    # the mark phase: its root jobs and objects at the real costs, one worker's P
    assert median_col(rows, 4) == pytest.approx(median_col(want, 4), rel=0.25)


# ---- full shapes (slow) ---------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name,kw", [("gogc100", {}), ("gogc50", {"gogc": 50})])
def test_churn_full_against_real(name, kw):
    run = WorkloadRun(load("churn"), **kw).run()
    want, n = real(name), real_cycles(name)
    assert abs(len(run.cycles) - n) <= 0.1 * n, (len(run.cycles), n)
    goal = statistics.median(steady_goals(want))
    for g in steady_goals(parsed(run.rt.gc.gctrace)):
        assert abs(g - goal) <= 0.02 * goal + 1, (g, goal)


@pytest.fixture(scope="module")
def churn_memlimit80():
    return WorkloadRun(load("churn"), memory_limit=80 * MB).run()


@pytest.mark.slow
def test_churn_full_memlimit80(churn_memlimit80):
    limit, run = 80 * MB, churn_memlimit80
    assert len(run.cycles) >= 0.75 * statistics.median(real_runs("memlimit80"))   # real: 200-249, 24-30 without
    goal = statistics.median(steady_goals(real("memlimit80")))
    assert abs(statistics.median(steady_goals(parsed(run.rt.gc.gctrace))) - goal) <= 2, goal
    for c in run.cycles[STEADY:]:
        assert c["heap_goal"] <= limit
        assert c["rss"] <= limit + rss_overhead(limit)


def churn_with(extra, name):
    text = (Path(__file__).resolve().parents[1] / "emu" / "examples" / "churn.toml").read_text()
    return WorkloadRun(parse(text + extra, name)).run()


def steady_marked(rows):
    return statistics.median(r[13] for r in rows if r[0] >= STEADY)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="gomemu's non-heap memory under the limit is 4.6 MB against the real "
                   "5.5-6.6 (memstats_memlimit80.txt): the real heap peaks at 96-130 MB of spans (MSpanSys "
                   "0.6-1.4 MB, gomemu's 0.36), and gomemu has neither the runtime's own stacks (0.23 MB) nor "
                   "the startup heap's part-used spans (0.27 MB); its goal is 73 MB, not 71-72 (its 212 "
                   "cycles are within 10% of the real 213). With both modeled: 227 cycles, 72 MB, but the "
                   "12 MiB shape breaks (docs/gc.md, branch gc12-experiment)")
def test_churn_full_memlimit80_cycles_within_10_percent_and_goal_of_real(churn_memlimit80):
    run = churn_memlimit80
    n = statistics.median(real_runs("memlimit80"))
    assert abs(len(run.cycles) - n) <= 0.1 * n, (len(run.cycles), n)
    goal = statistics.median(steady_goals(real("memlimit80")))
    assert abs(statistics.median(steady_goals(parsed(run.rt.gc.gctrace))) - goal) <= 1, goal


@pytest.mark.slow
def test_churn_full_globals_against_real():
    # 8 MiB of pointer globals: the mark phase scans them (about 2.4 ms, real 2.4-2.7) and
    # what the mutator allocates meanwhile is black: marked 69-72 MB, goal 150
    run = churn_with('\n[globals]\nbytes = "8MiB"\n', "churn-globals.toml")
    want, n = real("globals"), real_cycles("globals")
    assert abs(len(run.cycles) - n) <= 0.1 * n, (len(run.cycles), n)
    rows = parsed(run.rt.gc.gctrace)
    assert {r[16] for r in rows} == {8.0}                       # "8 MB globals"
    marked = steady_marked(want)
    assert abs(steady_marked(rows) - marked) <= 0.02 * marked + 1, (steady_marked(rows), marked)
    goal = statistics.median(steady_goals(want))
    for g in steady_goals(rows):
        assert abs(g - goal) <= 0.02 * goal + 1, (g, goal)


@pytest.fixture(scope="module")
def full_stacks():
    return churn_with('\n[[goroutines]]\nstack = "4MiB"\ncount = 4\n', "churn-stacks.toml")


@pytest.mark.slow
def test_churn_full_stacks_column_against_real(full_stacks):
    # churn -goroutines 4 -stack 4194304: 16 MB of parked stacks, scanned every cycle
    rows = parsed(full_stacks.rt.gc.gctrace)
    assert {r[15] for r in rows} == {16.0} == {r[15] for r in real("stacks") if r[0] >= 2}


@pytest.mark.slow
def test_churn_full_stacks_goal_against_real(full_stacks):
    # gomemu 154 MB (marked 69) against the real median 151 (146-161, marked 64-72): 2.0%
    # medians: the real goals spread over 146-161 MB, as which worker or assist scans each
    # goroutine's stack decides how long the mutator allocates black
    goal = statistics.median(r[14] for r in real("stacks") if r[0] >= STEADY)
    got = statistics.median(r[14] for r in parsed(full_stacks.rt.gc.gctrace) if r[0] >= STEADY)
    assert abs(got - goal) <= 0.02 * goal, (got, goal)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="gomemu runs 22 cycles, real 24-26 (10% of the least disturbed "
                   "run's 26 allows 24): its cycles are alike, so the pacer's consMark (the largest of the "
                   "last 5 cycles') is their 0.31, where the real ones' noise makes it 0.5-0.6 and the "
                   "trigger sits at its lower bound, 0.7 of the way to the goal (docs/gc.md)")
def test_churn_full_stacks_cycles_against_real(full_stacks):
    n = real_cycles("stacks")
    assert abs(len(full_stacks.cycles) - n) <= 0.1 * n, (len(full_stacks.cycles), n)


def test_parked_goroutines_stacks_are_counted_scanned_and_from_the_heap():
    # the real shape's 4 goroutines of 4 MiB on the small heap: "16 MB stacks" as in stacks.gctrace,
    # each stack an 8 MiB manual span (4 MiB in use and the guard: the next power of two)
    from runtime_model.mspan import MSPAN_MANUAL
    run = WorkloadRun(parse(CHURN_SMALL.replace('"192MiB"', '"40MiB"') +
                            '[[goroutines]]\nstack = "4MiB"\ncount = 4\n', "t.toml"))
    parked = [g for g in run.rt.stacks.allgs if g != run.mutator.g]
    assert len(parked) == 4
    for g in parked:
        lo, hi = run.rt.stacks.stack(g)
        s = run.rt.mheap.span_of(lo)
        assert hi - lo == 8 * MB and s.state == MSPAN_MANUAL and s.base() == lo
    run.run()
    rows = parsed(run.rt.gc.gctrace)
    assert {r[15] for r in rows} == {16.0}
    c = run.rt.gc_controller
    assert c.max_stack_scan >= 32 * MB                         # the stacks' whole sizes
    assert 16 * MB <= run.rt.gc.cycles[-1].stacks < 17 * MB    # in use, and the running goroutine's


# ---- the format ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", BUILTINS)
def test_builtins_load(name):
    wl = load(name)
    assert wl.name == name and wl.total_allocated > 0


def test_churn_builtin_is_the_issue_shape():
    wl = load("churn")
    assert (wl.live.bytes, wl.live.object_size, wl.total_allocated, wl.gomaxprocs, wl.gogc) == \
        (64 * MB, 64 << 10, 1536 * MB, 2, 100)
    (g,) = wl.phases[0].garbage
    assert g.object_size.sizes == (4096,) and not g.pointers


@pytest.mark.parametrize("text,field", [
    ("total_allocated = 'lots'\n[[garbage]]\nobject_size = 8", "total_allocated"),
    ("total_allocated = '1MiB'\n[[garbage]]\nobject_size = 0", "garbage[0].object_size"),
    ("total_allocated = '1MiB'\n[[garbage]]\nobject_size = 8\nweight = -1", "garbage[0].weight"),
    ("total_allocated = '1MiB'\n[[garbage]]\nobject_size = 8\ncolour = 1", "garbage[0].colour"),
    ("total_allocated = '1MiB'\ngogc = 'of'\n[[garbage]]\nobject_size = 8", "gogc"),
    ("total_allocated = '1MiB'\nmemory_limit = '80MB'\n[[garbage]]\nobject_size = 8", "memory_limit"),
    ("total_allocated = '1MiB'\n[[garbage]]\nobject_size = {min = 64, max = 16}", "garbage[0].object_size.max"),
    ("total_allocated = '1MiB'\n[[garbage]]\nobject_size = 64\npointer_writes = 2", "live.pointers"),
    ("[[phases]]\nallocate = '1MiB'", "phases[0].garbage"),
    ("[[phases]]\nidle = 'soon'", "phases[0].idle"),
    ("total_allocated = '1MiB'", "garbage"),
    ("gomaxprocs = 0\ntotal_allocated = '1MiB'\n[[garbage]]\nobject_size = 8", "gomaxprocs"),
    ("total_allocated = '1MiB'\n[[garbage]]\nobject_size = 8\n[[goroutines]]\ncount = 2", "goroutines[0].stack"),
    ("total_allocated = '1MiB'\n[[garbage]]\nobject_size = 8\n[[goroutines]]\nstack = '4MiB'\ncount = 0", "goroutines[0].count"),
    ("total_allocated = '1MiB'\n[[garbage]]\nobject_size = 8\n[[goroutines]]\nstack = '4MiB'\nsize = 1", "goroutines[0].size"),
    ("total_allocated = '1MiB'\n[[garbage]]\nobject_size = 8\n[[goroutines]]\nstack = '1GiB'", "goroutines[0].stack"),
    ("goroutines = 3\ntotal_allocated = '1MiB'\n[[garbage]]\nobject_size = 8", "goroutines"),
])
def test_bad_field_is_named_with_the_file(text, field):
    with pytest.raises(BadInput) as e:
        parse(text, "mine.toml")
    assert str(e.value).startswith(f"mine.toml: {field}:"), str(e.value)


def test_not_toml_and_unknown_builtin():
    with pytest.raises(BadInput, match="mine.toml: not valid TOML"):
        parse("name = ", "mine.toml")
    with pytest.raises(BadInput, match="not a built-in workload"):
        load("churny")


# ---- gomemu run ----------------------------------------------------------------------------

TINY = CHURN_SMALL.replace('"192MiB"', '"40MiB"')


def test_cli_run_json_has_a_record_per_cycle_and_plot_is_written(tmp_path, capsys):
    import json
    from emu.cli import main
    wl = tmp_path / "tiny.toml"
    wl.write_text(TINY)
    png = tmp_path / "out.png"
    assert main(["run", str(wl), "--json", "--gctrace", "--plot", str(png)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "gomemu.run/v1" and doc["workload"] == "churn-small"
    assert doc["summary"]["cycles"] == len(doc["cycles"]) > 2
    assert [c["cycle"] for c in doc["cycles"]] == list(range(1, len(doc["cycles"]) + 1))
    for c in doc["cycles"]:
        assert GCTRACE.match(c["gctrace"]) and c["heap_marked"] >> 20 == int(GCTRACE.match(c["gctrace"]).group(14))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_run_prints_gctrace_then_the_summary(tmp_path, capsys):
    from emu.cli import main
    wl = tmp_path / "tiny.toml"
    wl.write_text(TINY)
    assert main(["run", str(wl), "--gctrace", "--memlimit", "off", "--gogc", "100"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(GCTRACE.match(line) for line in lines[:-1]) and len(lines) > 3
    assert re.match(r"churn-small: \d+ GC cycles, 40 MiB allocated \(\d+ objects\), peak heap [\d.]+ MiB, "
                    r"peak RSS [\d.]+ MiB, GC CPU [\d.]+%, [\d.]+ s modeled$", lines[-1]), lines[-1]


def test_cli_run_bad_workload_is_one_line_exit_1(tmp_path, capsys):
    from emu.cli import main
    wl = tmp_path / "bad.toml"
    wl.write_text("total_allocated = 'much'\n")
    assert main(["run", str(wl)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"gomemu: error: {wl}: total_allocated: 'much' is not a byte count "
                   "(digits with B, KiB, MiB, GiB or TiB)"]
    assert main(["run", "churn", "--gogc", "lots"]) == 1
    assert main(["run", "/dev/zero"]) == 1          # read up to a bound, not until memory runs out
    assert "/dev/zero" in capsys.readouterr().err


MIXED = """
[live]
bytes = "2MiB"
object_size = "64KiB"
pointers = true
[[garbage]]
object_size = {choices = [64, 256, 1024], weights = [4, 3, 2]}
[[garbage]]
object_size = 128
pointers = true
pointer_writes = 2
lifetime = 50
[[phases]]
allocate = "24MiB"
retain = 0.02
[[phases]]
live = "1MiB"
allocate = "8MiB"
"""


def test_checked_run_of_every_feature_keeps_the_invariants():
    # size choices, pointer objects written into the live set while marking, lifetimes,
    # a leak, a shrinking live set: checkgc at every cycle (--checked)
    run = run_text(MIXED, checked=True)
    s = run.summary()
    assert s["checked_cycles"] == s["cycles"] >= 3
    # the leak: 2% of about 24 MiB stays reachable, so the marked heap ends above the live set
    assert run.cycles[-1]["heap_marked"] > 1 * MB + 0.01 * 24 * MB
