"""The `gomemu` command line.

Each family of subcommands lives in its own `emu/cli/*.py` module exposing
`register(subparsers)`; every handler returns an exit code. Errors derived
from `GomemuError` (and OSError on input files) become one readable line on
stderr and exit 1; anything else is a gomemu bug, reported in one line with
exit 70 (set GOMEMU_DEBUG=1 to see the traceback).
"""

import argparse
import importlib
import os
import sys

from emu import unicorn_core
from emu.errors import GomemuError
from emu.version import GO_PLATFORM, GO_VERSION, GOMEMU_VERSION

# Subcommand modules, in the order `gomemu --help` lists them.
COMMAND_MODULES = [
    "emu.cli.report",
    "emu.cli.step",
    "emu.cli.pagealloc",
    "emu.cli.pacer",
    "emu.cli.barrier",
    "emu.cli.stack",
]


class _Version(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        print(f"gomemu {GOMEMU_VERSION} (models {GO_VERSION} {GO_PLATFORM})")
        print(unicorn_core.status().describe())
        parser.exit()


def build_parser():
    parser = argparse.ArgumentParser(
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


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args) or 0
    except GomemuError as e:
        print(f"gomemu: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"gomemu: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("gomemu: interrupted", file=sys.stderr)
        return 130
    except Exception as e:          # a bug in gomemu: still one line (GOMEMU_DEBUG=1 for the traceback)
        if os.environ.get("GOMEMU_DEBUG"):
            raise
        print(f"gomemu: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
