"""The machine: CPU features, Go's ABI registers, system calls, faults."""

import pytest

from emu import layout as L
from emu import syscalls as S
from emu.errors import EmulationFault, GomemuError
from emu.machine import Machine


def run_snippet(m, text):
    """Load a routine into the machine's text and run it; returns RAX."""
    name = f"snippet{len(m.text.programs)}"
    m.load([("snippet.s", f"TEXT {name}(SB), 0, $0-0\n" + text)])
    return m.call(name)


@pytest.mark.parametrize("body, want", [
    ("MOVQ $0, BX\n TZCNTQ BX, AX\n RET", 64),                  # TZCNT(0) = 64, not BSF's undefined
    ("MOVQ $0x50, BX\n TZCNTQ BX, AX\n RET", 4),
    ("MOVQ $0, BX\n LZCNTQ BX, AX\n RET", 64),
    ("MOVQ $1, BX\n LZCNTQ BX, AX\n RET", 63),
    ("MOVQ $0xff, BX\n POPCNTQ BX, AX\n RET", 8),
    ("MOVQ $0xf0, BX\n MOVQ $0x3c, CX\n ANDNQ CX, BX, AX\n RET", 0x0c),   # BMI1: ^BX & CX
])
def test_cpu_runs_tzcnt_lzcnt_popcnt_and_bmi_correctly(machine, body, want):
    assert run_snippet(machine, body) == want


def test_current_g_is_in_r14_and_at_minus_8_fs(machine):
    g0 = machine.symbol("runtime.g0")
    assert run_snippet(machine, "MOVQ (TLS), AX\n RET") == g0
    assert run_snippet(machine, "MOVQ R14, AX\n RET") == g0
    assert run_snippet(machine, "MOVQ g_m(R14), AX\n MOVQ m_g0(AX), AX\n RET") == g0


def test_mmap_reserve_map_and_fault_on_reserved(machine):
    k, base = machine.kernel, L.HEAP_BASE + (1 << 30)
    assert k.syscall(S.SYS_MMAP, [base, 1 << 20, 0, S.MAP_PRIVATE | S.MAP_ANONYMOUS, 2**32 - 1, 0]) == base
    with pytest.raises(EmulationFault, match="protected memory|unmapped"):
        run_snippet(machine, f"MOVQ ${base:#x}, BX\n MOVQ (BX), AX\n RET")
    flags = S.MAP_PRIVATE | S.MAP_ANONYMOUS | S.MAP_FIXED
    assert k.syscall(S.SYS_MMAP, [base, 1 << 20, 3, flags, 2**32 - 1, 0]) == base
    assert run_snippet(machine, f"MOVQ ${base:#x}, BX\n MOVQ $7, (BX)\n MOVQ (BX), AX\n RET") == 7


def test_madvise_dontneed_zeroes_pages_and_drops_them_from_rss(machine):
    k, base = machine.kernel, L.HEAP_BASE + (2 << 30)
    flags = S.MAP_PRIVATE | S.MAP_ANONYMOUS | S.MAP_FIXED
    k.syscall(S.SYS_MMAP, [base, 1 << 20, 3, flags, 2**32 - 1, 0])
    rss0 = k.rss_bytes()
    machine.mem.write(base, b"\x01" * 65536)
    assert k.rss_bytes() - rss0 == 65536
    assert k.syscall(S.SYS_MADVISE, [base, 65536, S.MADV_DONTNEED]) == 0
    assert k.rss_bytes() == rss0
    assert machine.mem.read(base, 65536) == bytes(65536)
    assert k.syscall(S.SYS_MADVISE, [base, 65536, S.MADV_HUGEPAGE]) == 0       # accepted, recorded
    assert k.advice[-1] == (base, 65536, "MADV_HUGEPAGE")
    assert k.syscall(S.SYS_MADVISE, [base, 65536, 9999]) == (-S.EINVAL) & (2**64 - 1)


def test_munmap_then_access_faults(machine):
    k, base = machine.kernel, L.HEAP_BASE + (3 << 30)
    flags = S.MAP_PRIVATE | S.MAP_ANONYMOUS | S.MAP_FIXED
    k.syscall(S.SYS_MMAP, [base, 1 << 16, 3, flags, 2**32 - 1, 0])
    assert k.syscall(S.SYS_MUNMAP, [base, 1 << 16]) == 0
    with pytest.raises(EmulationFault):
        run_snippet(machine, f"MOVQ ${base:#x}, BX\n MOVQ (BX), AX\n RET")


def test_unknown_syscall_from_gomemus_code_returns_enosys_and_is_logged(machine):
    got = run_snippet(machine, "MOVL $999, AX\n SYSCALL\n RET")
    assert got == (-S.ENOSYS) & (2**64 - 1)
    assert machine.kernel.log[-1].nr == 999 and machine.kernel.log[-1].result == -S.ENOSYS


def test_a_system_call_the_kernel_lacks_ends_the_programs_call_naming_it(machine):
    """The program's own code (here the runtime's usleep: SYS_nanosleep) asking for what the
    emulated kernel does not do is refused, not answered."""
    from emu.errors import Unsupported
    with pytest.raises(Unsupported, match="makes system call 35"):
        machine.call("runtime.usleep")
    assert machine.mallocgc(16)                          # the machine stays usable


@pytest.mark.parametrize("handwritten", [False, True], ids=["compiled", "handwritten"])
def test_syscall_from_machine_code_goes_through_the_hook(handwritten):
    """The system-call routine the Python slow paths run: the program's runtime.mmap (Go code
    over the ABI0 sysMmap), or the handwritten machine's register-ABI sysMmap."""
    machine = Machine(handwritten=handwritten)
    base = L.HEAP_BASE + (4 << 30)
    got = machine.call(machine.os_routine("runtime.sysMmap"), base, 1 << 16, 3, S.MAP_PRIVATE | S.MAP_ANONYMOUS,
                       2**32 - 1, 0)
    assert got == base
    assert str(machine.kernel.log[-1]).startswith(f"mmap({base:#x}, 0x10000, 0x3, 0x22")


def test_unmapped_access_is_a_fault_naming_pc_symbol_and_instruction(machine):
    with pytest.raises(EmulationFault) as e:
        run_snippet(machine, "MOVQ $0x10, BX\n MOVQ 8(BX), AX\n RET")
    err = e.value
    assert "read of unmapped memory at 0x18" in str(err)
    assert err.where.startswith(f"snippet{len(machine.text.programs) - 1}+0x")
    assert "mov rax, qword ptr [rbx + 8]" in err.insn
    assert err.regs["rbx"] == 0x10


def test_invalid_instruction_is_a_fault(machine):
    with pytest.raises(EmulationFault, match="invalid instruction"):
        run_snippet(machine, "UD2\n RET")


def test_runaway_loop_stops_at_the_budget_and_the_machine_stays_usable():
    m = Machine(block_budget=100_000)
    with pytest.raises(EmulationFault, match="budget"):
        run_snippet(m, "spin:\n JMP spin")
    x, _ = m.malloc_small_noscan(16)
    assert x == L.HEAP_BASE


def test_errors_are_gomemu_errors():
    assert issubclass(EmulationFault, GomemuError)
