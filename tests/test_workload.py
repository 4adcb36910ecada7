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
# the marked heap (8 MB), and the cycles run back to back, each as long as its mark phase.
# gomemu's goal is the same; its mark phases are about a hundred times shorter than the
# real ones (docs/gc.md, "Simplified": no fixed root work), so it runs about 30 times as
# many cycles per byte allocated. The run here is cut to 4 MiB of garbage (the real
# 184 MiB takes gomemu 15,462 cycles and 8 minutes); its cycle count is the xfail below.
SMALL_MEMLIMIT_GARBAGE = 4 * MB


@pytest.fixture(scope="module")
def small_memlimit12():
    text = CHURN_SMALL.replace('total_allocated = "192MiB"', f"total_allocated = {8 * MB + SMALL_MEMLIMIT_GARBAGE}")
    return run_text(text, memory_limit=12 * MB)


def test_memlimit_small_goal_is_the_real_one_heap_and_rss_within_limit(small100, small_memlimit12):
    limit, run = 12 * MB, small_memlimit12
    assert len(run.cycles) > 3 * len(small100.cycles)
    for c in run.cycles[STEADY:]:
        assert c["heap_goal"] <= limit
        assert c["rss"] <= limit + rss_overhead(limit)
    want = statistics.median(steady_goals(real("small_memlimit12")))       # 8 MB
    assert set(steady_goals(parsed(run.rt.gc.gctrace))) == {want}
    # as in the real run, the goal is the marked heap: memoryLimitHeapGoal's floor
    c = run.rt.gc_controller
    run.rt.gc.sync_stats()
    assert c.heap_goal() == c.heap_marked


@pytest.mark.xfail(strict=True, reason="gomemu's mark phases are about 100 times shorter than the real ones "
                   "(0.002 ms against 0.2-0.4 ms: no fixed root work, docs/gc.md), and with the goal at the "
                   "live heap each cycle lasts one mark phase: about 84 cycles per MiB allocated against 3")
def test_memlimit_small_cycles_per_allocated_byte_within_10_percent_of_real(small_memlimit12):
    want = statistics.median(real_runs("small_memlimit12")) / (184 * MB)   # its garbage: 192 - 8 MiB
    got = len(small_memlimit12.cycles) / SMALL_MEMLIMIT_GARBAGE
    assert abs(got - want) <= 0.1 * want, (got * MB, want * MB)


def test_live_heap_above_limit_allocation_continues_gc_cpu_capped():
    # 8 MiB live under a 4 MiB limit: the soft limit lets allocation go on with cycles back
    # to back, the goal at the marked heap. GC work besides the stop-the-world pauses stays
    # within the CPU limiter's 50% cap (here its bucket never fills: assists are few, as
    # the noscan heap leaves little to scan). The pauses it cannot cut, in Go neither: with
    # them gomemu's GC takes 98% of the CPU here in about 2,800 cycles, the real run
    # (small_memlimit4) 29% in 185-249 cycles for 64 MiB: gomemu's mark phases are short
    # (no fixed root work) and its mutator cheap, so a cycle ends a few allocations after
    # it began and the next starts at once (docs/gc.md, "Simplified").
    text = CHURN_SMALL.replace('"192MiB"', '"40MiB"')
    run = run_text(text, memory_limit=4 * MB)
    s = run.summary()
    assert s["allocated"] == 40 * MB
    assert len(run.cycles) > 50                     # back to back (real: 185-249 for 64 MiB)
    # the goal never drops below the heap the previous cycle marked (the soft limit); the
    # second half of the cycles runs with the whole live set built
    half = len(run.cycles) // 2
    pairs = zip(run.cycles[half - 1:], run.cycles[half:])
    assert all(c["heap_goal"] >= prev["heap_marked"] >= 8 * MB for prev, c in pairs)
    gc, ns = run.rt.gc, s["modeled_ns"]
    work = (gc.gc_cpu_ns - gc.pause_total_ns * gc.procs) / (ns * gc.procs)
    assert work <= 0.5 + 0.05, work


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
    per_byte = (cpu(glb) - cpu(g100)) / (8 * MB)
    assert mgc.MARK_NS_PER_BYTE == pytest.approx(per_byte, rel=0.35)
    # an object: at most the difference of the two shapes' mark CPU over their 896 live
    # blocks' difference (which also holds the bigger heap's other costs)
    assert 0 < mgc.MARK_NS_PER_OBJECT <= (cpu(g100) - cpu(small)) / 896


def test_gomemu_mark_and_pause_clock_near_real(small100):
    rows = parsed(small100.rt.gc.gctrace)
    want = real("small")
    for col in (3, 5):                                          # the two stop-the-world clocks
        assert median_col(rows, col) == pytest.approx(median_col(want, col), rel=0.5)
    # the mark phase: gomemu's is shorter (no fixed root work, runtime_model/mgc.py)
    assert 0 < median_col(rows, 4) < median_col(want, 4)


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


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="gomemu's non-heap memory under the limit is 4.6 MB against the real "
                   "5.5-6.6 (memstats_memlimit80.txt): the real heap peaks at 96-130 MB of spans (MSpanSys "
                   "0.6-1.4 MB, gomemu's 0.36), and gomemu has neither the runtime's own stacks (0.23 MB) nor "
                   "the startup heap's part-used spans (0.27 MB); its goal is 73 MB, not 71-72, and it runs "
                   "172 cycles, not 213")
def test_churn_full_memlimit80_cycles_within_10_percent_and_goal_of_real(churn_memlimit80):
    run = churn_memlimit80
    n = statistics.median(real_runs("memlimit80"))
    assert abs(len(run.cycles) - n) <= 0.1 * n, (len(run.cycles), n)
    goal = statistics.median(steady_goals(real("memlimit80")))
    assert abs(statistics.median(steady_goals(parsed(run.rt.gc.gctrace))) - goal) <= 1, goal


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="gomemu's mark phase is shorter than the real one's (no fixed root "
                   "work, docs/gc.md), so less is allocated black while 8 MiB of globals are scanned: real "
                   "marked heap 69-71 MB and goal 150 MB, gomemu 64 MB and 136 MB")
def test_churn_full_globals_against_real():
    wl = parse((Path(__file__).resolve().parents[1] / "emu" / "examples" / "churn.toml").read_text()
               + '\n[globals]\nbytes = "8MiB"\n', "churn-globals.toml")
    run = WorkloadRun(wl).run()
    want, n = real("globals"), real_cycles("globals")
    assert abs(len(run.cycles) - n) <= 0.1 * n, (len(run.cycles), n)
    rows = parsed(run.rt.gc.gctrace)
    assert {r[16] for r in rows} == {8.0}                       # "8 MB globals"
    goal = statistics.median(steady_goals(want))
    for g in steady_goals(rows):
        assert abs(g - goal) <= 0.02 * goal + 1, (g, goal)


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

TINY = CHURN_SMALL.replace('"192MiB"', '"24MiB"')


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
    assert re.match(r"churn-small: \d+ GC cycles, 24 MiB allocated \(\d+ objects\), peak heap [\d.]+ MiB, "
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
