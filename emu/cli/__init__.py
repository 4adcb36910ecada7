"""The `gomemu` command line.

Each family of subcommands lives in its own `emu/cli/*.py` module exposing
`register(subparsers)`; every handler returns an exit code. Every way a
command can end is one of:

  0    done (also when the reader of a pipe closed it: `gomemu step small | head`)
  1    an error the user can act on (GomemuError: bad input, a fault, an unreadable
       or unwritable file): one line `gomemu: error: ...` on stderr
  2    a command line that does not parse or an argument out of its bounds:
       one line `gomemu <command>: error: ...`
  130  Ctrl-C: one line `gomemu: interrupted` (emu/interrupts.py lets a running
       slow path finish first)
  70   anything else is a gomemu bug, reported in one line (GOMEMU_DEBUG=1 shows
       the traceback)

Machine-readable output (--json) is described in docs/json.md.
"""

import argparse
import importlib
import os
import sys

from emu import unicorn_core
from emu.cli.inputs import UsageError
from emu.cli.output import CheckedStdout
from emu.errors import GomemuError
from emu.version import GO_PLATFORM, GO_VERSION, GOMEMU_VERSION

# Subcommand modules, in the order `gomemu --help` lists them.
COMMAND_MODULES = [
    "emu.cli.report",
    "emu.cli.diff",
    "emu.cli.step",
    "emu.cli.pagealloc",
    "emu.cli.pacer",
    "emu.cli.barrier",
    "emu.cli.stack",
    "emu.cli.call",
    "emu.cli.bench",
    "emu.cli.calibrate",
    "emu.cli.run",
]
EXIT_BAD_INPUT, EXIT_USAGE, EXIT_BUG, EXIT_INTERRUPTED = 1, 2, 70, 130


class Parser(argparse.ArgumentParser):
    """argparse with its refusals as UsageError (one line), so main decides how to exit."""

    def error(self, message):
        raise UsageError(message, self.prog)


class _Version(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        print(f"gomemu {GOMEMU_VERSION} (models {GO_VERSION} {GO_PLATFORM})")
        print(unicorn_core.status().describe())
        parser.exit()


def build_parser():
    parser = Parser(
        prog="gomemu",
        description="Go 1.27 memory management, emulated: mallocgc, write barriers and stack checks as x86-64 machine code.",
    )
    parser.add_argument("--version", action=_Version, nargs=0,
                        help="gomemu's version, the Go it models, and the unicorn core it runs on")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _say(line):
    try:
        print(line, file=sys.stderr)
    except OSError:                 # stderr is gone too: the exit code has to tell
        pass


def _drop_stdout():
    """The reader of stdout went away: what is still buffered goes nowhere, so Python's
    flush at exit does not print 'Exception ignored ... BrokenPipeError'."""
    try:
        fd = sys.__stdout__.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def main(argv=None):
    stdout = sys.stdout
    sys.stdout = CheckedStdout(stdout)
    args = None
    try:
        try:
            args = build_parser().parse_args(argv)
            code = args.handler(args) or 0
        except SystemExit as e:     # --help, --version
            code = e.code or 0
        sys.stdout.flush()          # a write error shows here, not as 'Exception ignored' at exit
        return code
    except BrokenPipeError:
        _drop_stdout()
        return 0
    except UsageError as e:
        _say(f"{e.prog or 'gomemu ' + args.command}: error: {e}")
        return EXIT_USAGE
    except GomemuError as e:
        _say(f"gomemu: error: {e}")
        return EXIT_BAD_INPUT
    except OSError as e:            # commands name their files; this names what the OS did
        _say(f"gomemu: error: {e.filename + ': ' if e.filename else ''}{e.strerror or e}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _say("gomemu: interrupted")
        return EXIT_INTERRUPTED
    except Exception as e:          # a bug in gomemu: still one line (GOMEMU_DEBUG=1 for the traceback)
        if os.environ.get("GOMEMU_DEBUG"):
            raise
        _say(f"gomemu: internal error: {type(e).__name__}: {e}")
        return EXIT_BUG
    finally:
        sys.stdout = stdout


if __name__ == "__main__":
    sys.exit(main())
