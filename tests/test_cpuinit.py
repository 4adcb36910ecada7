"""The CPU features gomemu boots a program with (emu/cpuinit.py) are the ones the
program's own internal/cpu.Initialize computes on the emulated CPU: the real function
from the binary, run in unicorn on a fresh machine after its flags are cleared."""

import pytest

from emu.cpuinit import RUNTIME_COPIES, x86_fields
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def machine(go):
    from emu.program import GoProgram
    return GoProgram(ROOT / "examples" / "seed").machine()


def test_boot_flags_equal_what_internal_cpu_initialize_computes(machine):
    m = machine
    x86 = m.symbol("internal/cpu.X86")
    fields = {k: o for k, o in x86_fields(m.image).items() if k.startswith("Has")}
    booted = {k: m.mem.u8(x86 + o) for k, o in fields.items()}
    for o in fields.values():
        m.mem.w8(x86 + o, 0)
    g = m.new_goroutine()
    m.call_on(g, "internal/cpu.Initialize", 0, 0)        # env = "": no GODEBUG cpu.* options
    m.goexit(g)
    real = {k: m.mem.u8(x86 + o) for k, o in fields.items()}
    assert booted == real
    assert real["HasERMS"] == 1      # memclrNoHeapPointers' REP STOSQ path depends on it
    # proc.go: cpuinit copies these for the compiler's guarded instructions
    for var, name in RUNTIME_COPIES:
        assert m.mem.u8(m.symbol(var)) == real[name], var
