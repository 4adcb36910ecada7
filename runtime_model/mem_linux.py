"""runtime/mem_linux.go: how the heap asks the OS for memory.

The slow paths are Python generators: where Go makes a system call they
`yield OSCall(routine, args)` and receive the routine's results. On a machine,
the call-out dispatcher runs the named routine from asm/sys_linux_amd64.s,
whose real SYSCALL instruction the emulated kernel answers, and resumes the
generator with (AX, BX). So a heap growth is visible in the syscall log and
in the instruction trace exactly where Go would make it.
"""

from dataclasses import dataclass

from emu.errors import GomemuError
from emu.syscalls import (ENOMEM, MADV_DONTNEED, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ,
                          PROT_WRITE)


@dataclass(frozen=True)
class OSCall:
    routine: str     # a TEXT symbol of asm/sys_linux_amd64.s
    args: tuple      # ABIInternal argument registers, in order


class RuntimeThrow(GomemuError):
    """The runtime called throw: Go would print `fatal error: ...` and exit."""


def throw(msg):
    raise RuntimeThrow(f"fatal error: {msg}")


def sys_reserve(v, n):
    """sysReserveOS: address space only (PROT_NONE). Returns the address or 0."""
    p, err = yield OSCall("runtime.sysMmap", (v, n, 0, MAP_ANONYMOUS | MAP_PRIVATE, -1 & 0xFFFFFFFF, 0))
    return 0 if err else p


def sys_map(v, n):
    """sysMapOS: make reserved memory readable and writable, fixed at v."""
    p, err = yield OSCall("runtime.sysMmap", (v, n, PROT_READ | PROT_WRITE,
                                               MAP_ANONYMOUS | MAP_FIXED | MAP_PRIVATE, -1 & 0xFFFFFFFF, 0))
    if err == ENOMEM:
        throw("runtime: out of memory")
    if p != v or err:
        throw(f"runtime: cannot map pages in arena address space (mmap({v:#x}, {n:#x}) = {p:#x}, errno {err})")


def sys_unused(v, n):
    """sysUnusedOS with debug.madvdontneed=1 (Linux's default): MADV_DONTNEED."""
    yield OSCall("runtime.madvise", (v, n, MADV_DONTNEED))



def run_direct(gen, kernel):
    """Drive a slow-path generator without a CPU, calling the kernel model directly
    (for pure-Python use of the heap model)."""
    from emu import syscalls as sc
    nr = {"runtime.sysMmap": sc.SYS_MMAP, "runtime.munmap": sc.SYS_MUNMAP, "runtime.madvise": sc.SYS_MADVISE}
    value = None
    while True:
        try:
            req = gen.send(value)
        except StopIteration as stop:
            return stop.value
        r = kernel.syscall(nr[req.routine], list(req.args))
        if req.routine == "runtime.sysMmap":
            value = (0, (-r) & 0xFFFFFFFFFFFFFFFF) if r >= (1 << 64) - 4095 else (r, 0)
        else:
            value = (r, 0)
