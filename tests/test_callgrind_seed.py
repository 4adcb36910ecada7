"""`gomemu bench examples/seed` against the real `go test` binary under callgrind.

tests/data/callgrind/go_test_seed.json is what `python bench/callgrind_go.py --go-test
examples/seed --repeat 5 --probe 30 --record` measured with valgrind on the test binary
gomemu bench builds (the commands, toolchain and valgrind version are in the file): per
benchmark, ops N+1..2N of -benchtime 2Nx, the median of five pairs of runs, every cost
filed under the function whose code holds the instruction, split into what gomemu runs as
machine code and the functions it runs in Python (its call-outs); and the counts that
depend on wall time (clears, allocate-black), counted natively over 30 pairs by a probe.
Here gomemu bench runs the same benchmarks at N and 2N; its machine-code instructions/op
must be within 2% of callgrind's, and it must call its Python halves as often as the real
runtime called them. No valgrind is needed.
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


def _probe(rec, field):
    pr = rec["probe"][field]
    assert pr["pairs"] >= 20, pr
    return pr


def test_new_array_is_within_2_percent_of_callgrind_with_the_clears_counted_natively(measured):
    """new([1024]int): 78% of its Ir are the 8 KiB clears, and how many of the ops N+1..2N
    clear (released pages need none) varies from one pair of runs to the next by about 3%
    (sd), natively and under valgrind alike: a median of five callgrind pairs does not pin
    it. So the real figure is callgrind's median pair's machine code apart from the clears,
    plus the clears per op that the probe (the runtime's malloc.go with a counter added,
    bench/callgrind_go.py) counted natively over 30 pairs, at callgrind's Ir per clear."""
    name = "seed.BenchmarkNewArray"
    rec, got = FIGURES["benchmarks"][name], measured[name]
    per_clear = rec["clear_ir_per_op"] / rec["clears_per_op"]
    want = rec["machine_code_ir_per_op"] - rec["clear_ir_per_op"] + _probe(rec, "small clears")["mean"] * per_clear
    _check_within(got, rec, name, want * (1 - TOLERANCE), want * (1 + TOLERANCE))


def test_new_array_clears_as_often_as_a_native_pair_of_runs(measured):
    # gomemu is one deterministic pair: within two standard deviations of the native pairs
    name = "seed.BenchmarkNewArray"
    rec, got = FIGURES["benchmarks"][name], measured[name]
    pr = _probe(rec, "small clears")
    clears = got.clear_ir / (rec["clear_ir_per_op"] / rec["clears_per_op"])
    assert abs(clears - pr["mean"]) <= 2 * pr["sd"], (clears, pr)


def test_the_large_path_apart_from_its_clears_is_within_2_percent(measured):
    """make([]byte, 1<<20): the clears are nearly all of its machine code (4 chunks of 256 KiB
    an op); the rest (makeslice, mallocgc, mallocgcLarge, profilealloc, the chunked clear's
    loop, the store's barrier) is compared. The runtime's own pointer writes in the
    functions gomemu runs in Python also run the barrier's code: callgrind_go.py counts
    only the benchmark's share of it."""
    name = "seed.BenchmarkMakeMiB"
    rec, got = FIGURES["benchmarks"][name], measured[name]
    want = rec["machine_code_ir_per_op"] - rec["clear_ir_per_op"]
    assert got.machine_code - got.clear_ir == pytest.approx(want, rel=TOLERANCE)


def test_a_1_MiB_slice_is_cleared_as_often_as_natively(measured):
    # native Go clears every op's slice (the probe: a cleared large object per op, sd 0.004)
    name = "seed.BenchmarkMakeMiB"
    rec, got = FIGURES["benchmarks"][name], measured[name]
    pr = _probe(rec, "large clears")
    per_chunk = rec["clear_ir_per_op"] / rec["clears_per_op"]
    chunks = (1 << 20) // CHUNK_BYTES
    assert got.clear_ir / per_chunk / chunks == pytest.approx(pr["mean"], abs=max(2 * pr["sd"], 0.01))


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
