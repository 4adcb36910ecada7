"""What the commands accept: integers within bounds the emulator can finish, and
paths that name a file (emu/textfile.py reads them).

Every bound is stated where the option is (its --help) and in the refusal.
"""

import argparse

from emu import layout as L
from emu.errors import BadInput

# Allocations one command makes: `gomemu report` classifies about 2000 a second, so a
# million is under ten minutes; `gomemu step --warm` runs about 12000 small ones a second.
MAX_ALLOCATIONS = 1_000_000
# Bytes one command may allocate in all (nothing is freed): the emulated heap's reservation.
MAX_HEAP_BYTES = L.DEFAULT_HEAP_RESERVE
MAX_OBJECT = (1 << 32) - 1              # the largest --size (4 GiB - 1)
INT64 = (-(1 << 63), (1 << 63) - 1)
UINT64 = (0, (1 << 64) - 1)
REGISTER_WORD = (INT64[0], UINT64[1])   # a register argument, as signed or as unsigned


class UsageError(BadInput):
    """A command line that is refused: a value out of its bounds, options that do not go
    together. `prog` is the command it was for (`gomemu step`) when known."""

    def __init__(self, message, prog=None):
        super().__init__(message)
        self.prog = prog


def parse_int(text):
    """Decimal or 0x/0o/0b text, with _ separators as in Go and Python; None if it is not one."""
    for base in (0, 10):                # base 10 also takes leading zeros: 016
        try:
            return int(text, base)
        except ValueError:
            pass
    return None


def bounded(lo, hi, unit=""):
    """An argparse type: an integer in lo..hi, refused naming the bound otherwise."""
    def integer(text):
        v = parse_int(text)
        if v is None:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{v} is outside {lo}..{hi}{unit}")
        return v
    return integer


def path(text):
    """An argparse type for a file argument: any path but the empty one, which names no
    file (Path('') would be the current directory, and messages would start ': ...')."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path names no file")
    return text


def add_cycles_options(p, what):
    """--cycles (also modelled `what`) and --uarch, as every command that models cycles takes them."""
    p.add_argument("--cycles", action="store_true", help=f"also modelled {what} (emu/timing; --uarch picks the CPU)")
    p.add_argument("--uarch", help="with --cycles: the µarch (default: the host's when gomemu describes it, else zen4)")


def check_cycles_options(args):
    """Refuse --uarch without --cycles, and an unknown --uarch, before anything is built."""
    if args.uarch and not args.cycles:
        raise UsageError("--uarch picks the CPU of --cycles; give --cycles too")
    if args.uarch:
        from emu.timing import uarch
        uarch(args.uarch)


def check_total(what, count, limit, why=""):
    """UsageError when what the options add up to (allocations, bytes) passes its bound."""
    if count > limit:
        raise UsageError(f"{what} come to {count}, more than {limit}{why}")


HEAP_BOUND = f" (the {MAX_HEAP_BYTES >> 30} GiB the emulated heap reserves; nothing is freed)"
