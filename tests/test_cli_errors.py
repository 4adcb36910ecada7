"""The gomemu command under bad input: every refusal is one line naming what and why,
exit 2 for a command line out of its bounds, 1 for input the emulator cannot take,
and never the catch-all 70 or a traceback."""

from pathlib import Path

import pytest

from emu.cli import main
from tests.conftest import CLI_GO_SRC

REFERENCE = Path(__file__).resolve().parent / "data"

GO_SRC = CLI_GO_SRC + """
func rec(n int) int {
\tif n == 0 {
\t\treturn 0
\t}
\treturn rec(n-1) + 1
}

func named(f float64) int { return int(f) }
"""


@pytest.fixture
def files(tmp_path):
    (tmp_path / "prog.go").write_text(GO_SRC)
    (tmp_path / "utf16.go").write_bytes("package main\n\nfunc f() {}\n".encode("utf-16"))
    (tmp_path / "latin1.go").write_bytes(b"package main\n\n// caf\xe9\nfunc f() {}\n")
    with open(tmp_path / "huge.go", "wb") as f:
        f.truncate((16 << 20) + 1)
    (tmp_path / "adir").mkdir()
    (tmp_path / "deep.json").write_text("[" * 100_000)     # json's decoder recurses per level
    return tmp_path


CASES = [
    # counts: bounded by what can finish, the bound named in the refusal
    (["report", "-n", "0"], 2, "argument -n: 0 is outside 1..1000000"),
    (["report", "--size", "-5"], 2, "argument --size: -5 is outside 0..4294967295"),
    (["report", "--size", "16", "-n", "1000000000000"], 2, "1000000000000 is outside 1..1000000"),
    (["report", "--size", "1", "--size", "2", "-n", "600000"], 2, "the allocations (sizes under 81 B twice"),
    (["report", "--size", "4294967295", "-n", "100"], 2, "the 64 GiB the emulated heap reserves"),
    (["report", "--size", "sixteen"], 2, "argument --size: 'sixteen' is not an integer"),
    (["report", "--scan"], 2, "--scan describes the objects of --size"),
    (["step", "small", "--warm", "9223372036854775808"], 2, "9223372036854775808 is outside 0..1000000"),
    (["step", "small", "--warm", "-1"], 2, "argument --warm: -1 is outside 0..1000000"),
    (["step", "malloc", "--size", "4000000000", "--warm", "100"], 2, "the bytes of the --warm allocations"),
    # the same option means the same bounds everywhere it applies, and only where it applies
    (["step", "stack", "--depth", "0"], 2, "argument --depth: 0 is outside 1..1000"),
    (["stack", "--depth", "0"], 2, "argument --depth: 0 is outside 1..100000"),
    (["step", "small", "--depth", "5"], 2, "--depth does not apply to `step small`"),
    (["step", "stack", "--warm", "5", "--size", "8"], 2, "--size, --warm do not apply to `step stack`"),
    (["step", "small", "--scan"], 2, "--scan does not apply to `step small`"),
    (["step", "malloc", "--size", "4", "--scan"], 2, "--scan needs a size of 8 bytes or more"),
    (["step", "small", "--size", "8"], 1, "outside the small noscan path"),
    (["step", "walk"], 2, "argument path: invalid choice: 'walk'"),
    ([], 2, "the following arguments are required: COMMAND"),
    # files: named, with what was being done
    (["pagealloc", "replay", "/nonexistent.json"], 1, "nonexistent"),
    (["pagealloc", "replay", "{dir}/deep.json"], 1, "deep.json: invalid JSON: nested too deeply"),
    (["pacer", "replay", "{dir}/deep.json"], 1, "deep.json: not valid JSON: nested too deeply"),
    # an empty path names no file (it is not the current directory)
    (["pagealloc", "replay", ""], 2, "argument FILE: an empty path names no file"),
    (["pacer", "replay", ""], 2, "argument FILE.json: an empty path names no file"),
    (["pacer", "replay", "{ref}/pacer/Steady.input.json", "--plot", ""], 2, "argument --plot: an empty path"),
    (["barrier", "", "f"], 2, "argument file: an empty path names no file"),
    (["call", "", "f"], 2, "argument path: an empty path names no file"),
    (["bench", ""], 2, "argument path: an empty path names no file"),
    (["bench", ".", "-memprofile", ""], 2, "argument -memprofile: an empty path names no file"),
    # an endless file is read up to a bound, not until memory runs out
    (["pagealloc", "replay", "/dev/zero"], 1, "/dev/zero: the pagealloc vector is larger than 16777216 bytes"),
    (["pacer", "replay", "/dev/zero"], 1, "/dev/zero: the pacer scenario is larger than 16777216 bytes"),
    (["barrier", "/nonexistent.go", "f"], 1, "/nonexistent.go: cannot read the Go source: No such file or directory"),
    (["barrier", "{dir}/adir", "f"], 1, "adir: cannot read the Go source: Is a directory"),
    (["barrier", "{dir}/utf16.go", "f"], 1, "utf16.go:1:1: the Go source is not UTF-8 (byte 0xff)"),
    (["barrier", "{dir}/latin1.go", "f"], 1, "latin1.go:3:7: the Go source is not UTF-8 (byte 0xe9)"),
    (["barrier", "{dir}/huge.go", "f"], 1, "huge.go: the Go source is larger than 16777216 bytes"),
    (["pacer", "replay", "{ref}/pacer/Steady.input.json", "--plot", "{dir}/adir"], 1,
     "adir: cannot write the plot: Is a directory"),
    (["pacer", "replay", "{ref}/pacer/Steady.input.json", "--plot", "/proc/version"], 1,
     "/proc/version: cannot write the plot: "),
    # barrier arguments: what each Go type holds
    (["barrier", "{dir}/prog.go", "storeTwo", "--args", "zz,obj"], 2,
     "argument --args: argument 1 ('zz') is neither 'obj' nor an integer in -2^63..2^64-1"),
    (["barrier", "{dir}/prog.go", "storeTwo", "--args", ",".join(["1"] * 10)], 2, "10 arguments; at most 9"),
    (["barrier", "{dir}/prog.go", "rec", "--int", "18446744073709551616"], 2,
     "argument --int: 18446744073709551616 is outside -9223372036854775808..18446744073709551615"),
    (["barrier", "{dir}/prog.go", "rec", "--int", "9223372036854775808"], 2,
     "--int 9223372036854775808 does not fit parameter 1 of rec (int: -9223372036854775808..9223372036854775807)"),
    (["barrier", "{dir}/prog.go", "shift", "--int", "256"], 2, "does not fit parameter 1 of shift (uint8: 0..255)"),
    (["barrier", "{dir}/prog.go", "shift", "--int", "-1"], 2, "does not fit parameter 1 of shift (uint8: 0..255)"),
    (["barrier", "{dir}/prog.go", "named"], 1, "parameter 1 of named has type 'float64'"),
    (["barrier", "{dir}/prog.go", "rec", "--int", "3", "--args", "4"], 2, "--int makes the integer arguments"),
    (["barrier", "{dir}/prog.go", "nosuch"], 1, "no top-level func nosuch in the source"),
    (["barrier", "{dir}/prog.go", "a}}; func init() {{"], 1, "is not a Go function name"),
]


@pytest.mark.parametrize("argv, code, needle", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input_is_one_line_and_its_exit_code(files, capsys, argv, code, needle):
    argv = [a.format(dir=files, ref=REFERENCE) for a in argv]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err, err


def test_a_missing_function_is_named_after_the_build(files, go_env, monkeypatch, capsys):
    monkeypatch.setenv("GOCACHE", go_env["GOCACHE"])
    assert main(["barrier", str(files / "prog.go"), "nosuch", "--args", "obj"]) == 1
    err = capsys.readouterr().err
    assert err == (f"gomemu: error: cannot load nosuch from {files / 'prog.go'}: undefined: nosuch (gomemu loads "
                   "functions the file declares; a generic one needs an instantiation)\n")


def test_a_go_error_is_placed_in_the_users_file(files, go_env, monkeypatch, capsys):
    monkeypatch.setenv("GOCACHE", go_env["GOCACHE"])
    bad = files / "bad.go"
    bad.write_text("package main\n\nfunc f(p *int) { *p = undefinedName }\n")
    assert main(["barrier", str(bad), "f"]) == 1
    assert f"go build failed: {bad}:3:23: undefined: undefinedName" in capsys.readouterr().err


def test_gomemu_barrier_runs_a_closure_whose_context_type_has_spaces(files, go_env, monkeypatch, capsys):
    """The closure's context is allocated with type:noalg.struct { F uintptr; X0 *main.T }, whose
    descriptor names it `struct { F uintptr; X0 *main.T }`."""
    monkeypatch.setenv("GOCACHE", go_env["GOCACHE"])
    src = files / "closure.go"
    src.write_text("package main\n\ntype T struct{ p *int }\n\nfunc mk(x *T) func() *T {\n"
                   "\treturn func() *T { return x }\n}\n")
    assert main(["barrier", str(src), "mk", "--no-trace"]) == 0
    out = capsys.readouterr().out
    assert "type:struct { F uintptr; X0 *main.T }" in out and "wbBuf after the barrier-on run: 1 pointers" in out
