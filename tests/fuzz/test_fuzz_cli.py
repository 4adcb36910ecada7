"""Fuzz: command lines. Argument vectors for every command (report, step, pagealloc,
pacer, barrier, stack, call, bench), made of the options each takes, values at and
past their bounds, files that cannot be read or are not what they claim, and junk,
run in-process through emu.cli.main.

A command line the command accepts would go on to build a machine or run the Go
toolchain (seconds each): in the first test that point raises Accepted, so the
hundreds of examples check the checks; the second runs a few small accepted
command lines to their end, which checks what is refused only after a build or a
machine exists (barrier's and call's arguments, bench's patterns).
"""

import contextlib
import shutil
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emu import gobuild
from emu.cli import COMMAND_MODULES
from emu.cli import calibrate as cli_calibrate
from emu.machine import Machine
from tests.conftest import CLI_GO_SRC, DATA
from tests.fuzz.harness import cli, examples
from tests.fuzz.strategies import EDGE_INTS

GO_SRC = CLI_GO_SRC + """
//go:noinline
func work(n int) int {
\ts := make([]*T, 0)
\tfor i := 0; i < n; i++ {
\t\ts = append(s, &T{})
\t}
\treturn len(s)
}

func named(s string) int { return len(s) }
"""
BENCH_SRC = """package fz

import "testing"

var sink []byte

func BenchmarkAlloc(b *testing.B) {
\tfor i := 0; i < b.N; i++ {
\t\tsink = make([]byte, 64)
\t}
}
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzzcli")
    (d / "prog.go").write_text(GO_SRC)
    (d / "pkg").mkdir()
    (d / "pkg" / "fz_test.go").write_text(BENCH_SRC)
    (d / "utf16.go").write_bytes("package main\n\nfunc f() {}\n".encode("utf-16"))
    (d / "latin1.go").write_bytes(b"package main\n\n// caf\xe9\nfunc f() {}\n")
    (d / "empty.go").write_text("")
    (d / "nopkg.go").write_text("func f() {}\n")
    with open(d / "huge.go", "wb") as f:
        f.truncate((16 << 20) + 1)
    (d / "adir").mkdir()
    (d / "deep.json").write_text("[" * 100_000)
    (d / "notjson.json").write_text("{not json")
    shutil.copy(DATA / "pagealloc" / "TestPageAllocAlloc__AllFree1.json", d / "vector.json")
    shutil.copy(DATA / "pacer" / "Steady.input.json", d / "Steady.input.json")
    return d


# Texts of values: integers at and past every bound (decimal, hex, with _), and what is not one.
INT_TEXTS = [str(v) for v in EDGE_INTS] + [hex(v) for v in EDGE_INTS if v > 0][:8] + [
    "1_000", "0b101", "0o17", "016", "-0", "+5", " 7", "1e3", "1.5", "", "x", "sixteen", "0x", "٣", "--", "-"]
FILES = ["prog.go", "utf16.go", "latin1.go", "empty.go", "nopkg.go", "huge.go", "adir", "deep.json",
         "notjson.json", "vector.json", "Steady.input.json", "pkg", "pkg/fz_test.go", "missing.go"]
SYSTEM = ["/nonexistent", "/dev/null", "/dev/zero", "/proc/version", "/", ""]
FUNCS = ["storeTwo", "shift", "work", "named", "main.storeTwo", "(*T).M", "T.M", "nosuch", "a}}; func init() {{",
         "", "1f", "BenchmarkAlloc"]


def ints():
    return st.sampled_from(INT_TEXTS)


def small_ints(lo, hi):
    """In-bounds values small enough to run in a second or two, or anything at all."""
    return st.one_of(st.integers(lo, hi).map(str), ints())


def paths(files):
    return st.one_of(st.sampled_from(FILES).map(lambda f: str(files / f)), st.sampled_from(SYSTEM))


def outputs(files):
    """Where --plot and -memprofile may write (not over the input files)."""
    return st.sampled_from([str(files / "out.png"), str(files / "adir"), str(files / "missing" / "out.png"),
                            "/dev/null", "/proc/version", ""])


def options(draw, table):
    """Option tokens: up to four options of `table` (name, value strategy or None), each
    with a value drawn for it, in any order, repeats allowed."""
    out = []
    for _ in range(draw(st.integers(0, 4))):
        name, value = draw(st.sampled_from(table))
        out += [name] if value is None else [name, draw(value)]
    return out


COMMANDS = [m.rsplit(".", 1)[1] for m in COMMAND_MODULES]


@st.composite
def command_lines(draw, files):
    """argv for every command: its own options with hostile values, and now and then junk."""
    f, fn, size = paths(files), st.sampled_from(FUNCS), small_ints(0, 40000)
    at_most = lambda n, s: draw(st.lists(s, max_size=n))   # noqa: E731
    command = draw(st.sampled_from(COMMANDS))
    if command == "report":
        argv = options(draw, [("--size", size), ("--scan", None), ("-n", small_ints(1, 3)), ("--json", None)])
    elif command == "step":
        argv = [draw(st.sampled_from(["malloc", "small", "stack", "walk", ""]))] + options(draw, [
            ("--size", size), ("--scan", None), ("--warm", small_ints(0, 3)), ("--no-size-specialized", None),
            ("--annotated", None), ("--json", None), ("--depth", small_ints(1, 30)), ("--cycles", None),
            ("--uarch", st.sampled_from(["zen4", "nosuch", ""]))])
    elif command in ("pagealloc", "pacer"):
        argv = [draw(st.sampled_from(["replay", "replay", "replay", "grow"]))] + at_most(3 if command == "pagealloc"
                                                                                         else 1, f)
        argv += options(draw, [("--json", None)] + ([("--plot", outputs(files))] if command == "pacer" else []))
    elif command == "barrier":
        args = st.lists(st.sampled_from(["obj", "zz", "1", "-1", "0x10", str(1 << 64), ""]), max_size=10)
        argv = at_most(1, f) + at_most(1, fn) + options(draw, [
            ("--int", ints()), ("--no-trace", None), ("--json", None), ("--args", args.map(",".join))])
    elif command == "diff":
        argv = at_most(2, f) + options(draw, [("--all", None), ("--json", None)])
    elif command == "stack":
        argv = options(draw, [("--depth", small_ints(1, 50)), ("--json", None)])
    elif command == "call":
        argv = at_most(1, f) + at_most(1, fn) + at_most(3, ints()) + options(draw, [
            ("--no-size-specialized", None), ("--json", None)])
    elif command == "run":
        sizes = st.sampled_from(["80MiB", "off", "1", "0", "-1", "1.5GiB", "80MB", "x", "9" * 30, ""])
        argv = at_most(1, st.one_of(f, st.sampled_from(["churn", "spiky", "leak", "big-live-heap", "nosuch"]))) + \
            options(draw, [("--gogc", st.sampled_from(["100", "off", "50", "-1", "0", "x", str(1 << 64), ""])),
                           ("--memlimit", sizes), ("--gctrace", None), ("--scavtrace", None), ("--checked", None),
                           ("--plot", outputs(files)), ("--json", None)])
    elif command == "calibrate":
        argv = options(draw, [("--uarch", st.sampled_from(["zen3", "zen4", "sunny_cove", "nosuch", ""])),
                              ("--compare", st.sampled_from(["llvm-mca", "uica", ""])),
                              ("--reps", small_ints(-1, 20000)), ("--runs", small_ints(-1, 30)), ("--json", None)])
    else:
        assert command == "bench", f"a new command needs its strategy here: {command}"
        argv = at_most(1, f) + options(draw, [
            ("-bench", st.sampled_from([".", "Alloc", "(", "[", "x" * 50, ""])),
            ("-benchtime", st.sampled_from(["1x", "0x", "-1x", "3x", "1s", "0.5s", "x", "100000000000x", "1h", ""])),
            ("-memprofile", outputs(files)), ("--real", None), ("--no-size-specialized", None), ("--json", None)])
    if draw(st.integers(0, 7)) == 0:
        argv.insert(draw(st.integers(0, len(argv))),
                    draw(st.sampled_from(["--json", "--nope", "-x", "extra", "--size", "--help=no", "--", "-n"])))
    return [command] + argv


class Accepted(BaseException):
    """The command line passed every check made before the expensive part."""


@contextlib.contextmanager
def stop_when_accepted():
    """Building a machine or running `go build` raises Accepted (emu.cli.main lets a
    BaseException through)."""
    def machine(*a, **kw):
        raise Accepted

    real_run = subprocess.run

    def run(cmd, *a, **kw):
        if len(cmd) > 1 and cmd[1] in ("build", "test"):
            raise Accepted
        return real_run(cmd, *a, **kw)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Machine, "__init__", machine)
        mp.setattr(cli_calibrate, "calibrate", machine)     # its native runs are the expensive part
        mp.setattr(gobuild.subprocess, "run", run)
        yield


def names_of(argv):
    """What an error may name: a token of the command line, or the inputs argparse
    says are missing."""
    return [t for t in argv if t] + [repr(t) for t in argv] + ["arguments are required"]


@examples(400)
@given(data=st.data())
def test_a_hostile_command_line_is_refused_in_one_line_naming_it(files, capsys, data):
    argv = data.draw(command_lines(files), label="argv")
    with stop_when_accepted():
        try:
            cli(capsys, argv, names=names_of(argv), may_differ=True)
        except Accepted:
            capsys.readouterr()


# Small command lines that are accepted, or refused only once a build or a machine exists.
def small_runs(files):
    prog, pkg = str(files / "prog.go"), str(files / "pkg")
    return st.one_of(
        st.tuples(st.just(["report", "--size"]), st.integers(0, 40000).map(str), st.sampled_from([[], ["--scan"]]),
                  st.just(["-n", "1"])),
        st.tuples(st.just(["step"]), st.sampled_from([["malloc", "--size"], ["small", "--size"]]),
                  st.integers(0, 40000).map(str), st.sampled_from([[], ["--warm", "0"], ["--json"]])),
        st.tuples(st.just(["step", "stack", "--depth"]), st.integers(1, 40).map(str)),
        st.tuples(st.just(["stack", "--depth"]), st.integers(1, 60).map(str), st.sampled_from([[], ["--json"]])),
        st.tuples(st.just(["barrier", prog]), st.sampled_from(["storeTwo", "shift", "work", "nosuch"]),
                  st.sampled_from([["--no-trace"], ["--no-trace", "--args", "obj,obj,obj"],
                                   ["--no-trace", "--args", "1,2"], ["--no-trace", "--int", "300"]])),
        st.tuples(st.just(["call", prog]), st.sampled_from(["work", "shift", "named", "nosuch", "storeTwo"]),
                  st.lists(st.sampled_from(["3", "-1", "256", "x", str(1 << 64)]), max_size=2)),
        st.tuples(st.just(["bench", pkg, "-benchtime"]), st.sampled_from(["1x", "2x", "0x"]),
                  st.sampled_from([[], ["-bench", "("], ["-bench", "Nothing"]])),
    ).map(lambda parts: sum((p if isinstance(p, list) else [p] for p in parts), []))


@examples(2)
@given(data=st.data())
def test_a_small_command_line_runs_or_is_refused_in_one_line(files, go_env, monkeypatch, capsys, data):
    monkeypatch.setenv("GOCACHE", go_env["GOCACHE"])
    argv = data.draw(small_runs(files), label="argv")
    cli(capsys, argv, names=names_of(argv), seconds=600)     # a cold go build cache takes minutes
