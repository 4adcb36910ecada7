"""`gomemu calibrate`, the fast paths it runs, the cycle meter and `report --cycles`.

The native runs are checked for what they leave in memory (against the emulator's
memory after the same call: a differential test of the emulator), never for how long
they take: the host may be noisy, or unable to run them (then those tests skip).
"""

import json

import pytest

from emu.cli import main
from emu.timing import choose, host_uarch, uarch
from emu.timing.meter import Meter
from emu.timing.native import NativeUnavailable, check_host
from emu.timing.paths import fast_paths, record

ISSUE_PATHS = ["tiny into the current block", "tiny new block", "small noscan hit", "small scan hit", "large",
               "write barrier off", "write barrier on", "stack check passing"]


@pytest.fixture(scope="module")
def paths():
    return fast_paths()


def test_every_fast_path_of_the_issue_is_recorded(paths):
    names = [p.name for p in paths]
    assert all(any(n.startswith(want) for n in names) for want in ISSUE_PATHS)


def test_a_call_out_splits_the_large_path_into_the_stepped_instructions_around_it(paths):
    from emu.machine import Machine
    from emu.timing.paths import LARGE
    rec = next(p for p in paths if p.name.startswith("large"))
    m = rec.machine
    assert "callout:runtime.(*mcache).allocLarge" in rec.callouts      # mcache.go: mallocgcLarge calls it
    twin = Machine()                                  # the same history as the recorded machine
    for _ in range(3):
        twin.mallocgc(LARGE)
    stepped = [t.address for t in twin.trace("runtime.mallocgc", LARGE, 0, 1)]
    stubs = [a for a in stepped if twin.callout_page <= a < twin.callout_page + 0x1000]
    assert len(stubs) == len(rec.segments) - 1
    joined = []
    for k, seg in enumerate(rec.segments):
        joined += seg.stream.instructions(m.mem.read)
        if k < len(stubs):
            assert seg.exits == (stubs[k],)           # each piece ends where the call-out's stub is called
            joined.append(stubs[k])
    assert joined == stepped


def _native_or_skip():
    try:
        check_host()
    except NativeUnavailable as e:
        pytest.skip(str(e))


def test_native_runs_of_every_fast_path_leave_the_emulators_memory_and_say_how_figures_were_obtained(capsys):
    # the differential test: every byte each fast path wrote natively (objects, mspan fields,
    # heap bits, wbBuf, the stack) equals the emulator's after the same call
    _native_or_skip()
    assert main(["calibrate", "--json", "--reps", "5", "--runs", "1", "--uarch", "zen4"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "gomemu.calibrate/v1" and doc["uarch"] == "zen4" and doc["uarch_chosen"] == "--uarch"
    assert len(doc["paths"]) == len(ISSUE_PATHS)
    for p in doc["paths"]:
        assert p["how"] == {"modelled": "modelled", "alone": "modelled", "measured": "measured",
                            "llvm_mca": "llvm-mca"}
        assert p["native_refused"] is None, (p["path"], p["native_refused"])
        assert p["memory_equal"] is True and p["differences"] == [], (p["path"], p["differences"][:4])
        assert p["measured"] is not None


def test_calibrate_refuses_in_one_line_where_native_execution_is_impossible(monkeypatch, capsys):
    import platform
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert main(["calibrate"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gomemu: error: native execution needs an x86-64 Linux host; this is "
                   f"{platform.system()} aarch64"]


def test_the_default_uarch_is_the_hosts_when_described_else_zen4():
    u, how = choose(None)
    if host_uarch() is not None:
        assert u is host_uarch() and how == "the host's (/proc/cpuinfo)"
    else:
        assert u.name == "zen4" and how.startswith("the default")
    assert choose("sunny_cove") == (uarch("sunny_cove"), "--uarch")


# ---- the meter ---------------------------------------------------------------------------------
def _metered_run(u):
    from emu.machine import Machine
    m = Machine()
    meter = Meter(m, u)
    timings = [meter.measure(lambda: m.mallocgc(size)) for size in (16, 16, 24, 96, 96, 8, 4, 4)]
    return [t.as_dict() for t in timings], meter.summary()


def test_the_same_run_gives_identical_cycles():
    a, b = _metered_run(uarch("zen4")), _metered_run(uarch("zen4"))
    assert json.dumps(a) == json.dumps(b)


def test_a_first_allocation_into_a_fresh_span_costs_its_cache_misses():
    from emu.cli.report import explain_cold
    from emu.machine import Machine
    u = uarch("zen4")
    m = Machine()
    meter = Meter(m, u)
    for _ in range(3):
        meter.measure(lambda: m.mallocgc(8))          # the noscan hit code warm
    cold = meter.measure(lambda: m.mallocgc(96))       # size class 96 B unused: refill, a fresh span
    for _ in range(3):
        meter.measure(lambda: m.mallocgc(96))
    warm = meter.measure(lambda: m.mallocgc(96))
    assert warm.l1d_misses == 0 and cold.l1d_misses > 0
    assert cold.cycles > warm.cycles
    # the fresh span's lines were written only by Python (the refill), which the model does not
    # see: each cold line comes from memory, and at least one such load is on the path's
    # dependency chain (the span's allocCache feeds the slot's address)
    assert cold.l3_misses == cold.l1d_misses
    e = explain_cold(u, cold, warm)
    assert e["extra_cycles"] >= u.memory_latency - u.caches[0].latency
    assert e["extra_cycles"] <= e["serial_miss_cycles"] + e["mispredict_cycles"] + 4 * (cold.instructions -
                                                                                         warm.instructions)


def test_record_of_a_path_without_a_call_out_is_one_segment_ending_at_the_exit():
    from emu.machine import Machine
    m = Machine()
    m.mallocgc(16)
    rec = record(m, "hit", m.prepare_call("runtime.mallocgc", (16, 0, 1)), m.exit_addr)
    assert len(rec.segments) == 1 and rec.segments[0].exits == (m.exit_addr,) and rec.callouts == []


def test_run_cycles_puts_the_workload_on_modelled_time(capsys, tmp_path):
    wl = tmp_path / "small.toml"
    wl.write_text('total_allocated = "256KiB"\n[[garbage]]\nobject_size = 64\n')
    docs = []
    for extra in ([], ["--cycles", "--uarch", "golden_cove"]):
        assert main(["run", str(wl), "--json", *extra]) == 0
        docs.append(json.loads(capsys.readouterr().out))
    plain, metered = docs
    assert metered["cycles_model"]["uarch"] == "golden_cove" and "cycles_model" not in plain
    assert metered["summary"]["allocations"] == plain["summary"]["allocations"]
    # the same allocations, another clock: instructions at one a cycle against modelled cycles
    # (which here, every new object's line cold to the model, are more)
    assert metered["summary"]["modeled_ns"] > plain["summary"]["modeled_ns"]


def test_report_cycles_is_byte_identical_between_runs(capsys):
    outs = []
    for _ in range(2):
        assert main(["report", "--size", "16", "-n", "5", "--cycles", "--uarch", "zen4", "--json"]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1]
    c = json.loads(outs[0])["cycles"]
    assert c["uarch"] == "zen4" and c["how"] == "modelled"
    assert c["cold"]["first"]["l1d_misses"] > c["cold"]["warm"]["l1d_misses"] == 0


@pytest.mark.parametrize("argv, code, message", [
    (["calibrate", "--uarch", "pentium"], 1, "gomemu: error: unknown µarch 'pentium': known are golden_cove, sunny_cove, zen3, zen4"),
    (["calibrate", "--reps", "1"], 2, "argument --reps: 1 is outside 5..10000"),
    (["report", "--uarch", "zen4"], 2, "--uarch picks the CPU of --cycles; give --cycles too"),
    (["run", "churn", "--uarch", "zen4"], 2, "--uarch picks the CPU of --cycles; give --cycles too"),
])
def test_bad_timing_arguments_are_one_line(argv, code, message, capsys):
    assert main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_the_mean_error_leaves_out_paths_measured_below_the_resolution_for_both_estimates():
    # a path measured under RESOLUTION is hidden in the harness's overlap: neither the model's nor
    # llvm-mca's figure for it enters the mean, so both means are over the same paths
    from emu.timing.calibrate import RESOLUTION, Calibration, PathFigures
    rows = [("a", PathFigures("golden_cove", 11.0, 20, {}, measured=10.0, llvm_mca=8.0)),
            ("b", PathFigures("golden_cove", 30.0, 40, {}, measured=40.0, llvm_mca=44.0)),
            ("hidden", PathFigures("golden_cove", 9.0, 8, {}, measured=RESOLUTION - 0.5, llvm_mca=1.5)),
            ("refused", PathFigures("golden_cove", 9.0, 8, {}))]
    c = Calibration(uarch("golden_cove"), "--uarch", rows)
    assert c.mape() == pytest.approx((10 + 25) / 2)
    assert c.mape("llvm_mca") == pytest.approx((20 + 10) / 2)
    assert rows[2][1].error is None
