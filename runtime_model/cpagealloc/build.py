"""Build and cache the page allocator's C core (the running implementation, issue 13).

The C sources beside this file are compiled with the system's gcc into one shared
library, `~/.cache/gomemu/cpagealloc-<key>/libcpagealloc.so`, where the key is a hash of
the sources and the compiler flags: one build serves every install and run of the same
sources, and a changed source builds anew. It takes one to two seconds.

When: `pip install` builds it through setup.py, `python runtime_model/cpagealloc/build.py`
by hand, and the first import of runtime_model.pagealloc if neither did (so an editable
checkout whose C changed rebuilds by itself). A build that fails leaves a note beside the
cache directory and is not retried at run time (the command above retries); without a
compiler nothing is noted. Either way gomemu runs on the Python reference model and says
so in one line (runtime_model/pagealloc.py).

This file imports only the standard library and emu.unicorn_core's cache helpers: setup.py
runs it as a script, in pip's build environment.
"""

import hashlib
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

if __name__ == "__main__":                       # as a script: the checkout's root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from emu.unicorn_core import cache_root, failure_note, locked_work_dir  # noqa: E402

SOURCE_DIR = Path(__file__).resolve().parent
LIBRARY = "libcpagealloc.so"
CFLAGS = ("-O2", "-std=c11", "-fPIC", "-shared", "-fvisibility=hidden", "-Wall", "-Wextra")
COMPILERS = ("gcc", "cc")


class Unavailable(Exception):
    """No core: no compiler, a failed build, or not Linux. The message says which."""


def sources():
    return sorted(SOURCE_DIR.glob("*.[ch]"))


def core_dir():
    """Where the core of these sources and flags lives."""
    h = hashlib.sha256()
    for path in sources():
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    h.update("\0".join(CFLAGS + (platform.machine(),)).encode())
    return cache_root() / f"cpagealloc-{h.hexdigest()[:12]}"


def compiler():
    return next((c for c in map(shutil.which, COMPILERS) if c), None)


def build(retry=False):
    """The built library's path, compiling it first if needed; Unavailable if it cannot be.
    A failed build is not retried unless `retry`."""
    if not sys.platform.startswith("linux"):
        raise Unavailable("the C core is built on Linux only")
    dest = core_dir()
    lib = dest / LIBRARY
    if lib.is_file():
        return lib
    note = failure_note(dest)
    if note.is_file() and not retry:
        raise Unavailable(f"its build failed: {note.read_text().splitlines()[0]} (see {note})")
    cc = compiler()
    if cc is None:
        raise Unavailable(f"no C compiler found ({' or '.join(COMPILERS)} on PATH)")
    try:
        return _compile(cc, dest, note)
    except OSError as e:                          # an unwritable cache, a full disk
        raise Unavailable(f"cannot build in {dest.parent}: {e}") from e


def _compile(cc, dest, note):
    lib = dest / LIBRARY
    with locked_work_dir(dest, LIBRARY) as work:
        if work is None:
            return lib
        cmd = [cc, *CFLAGS, "-o", str(work / LIBRARY), *map(str, (p for p in sources() if p.suffix == ".c"))]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            log = dest.with_name(dest.name + ".log")
            log.write_text(f"$ {' '.join(cmd)}\n{r.stdout}{r.stderr}")
            note.write_text(f"{Path(cc).name} exited with status {r.returncode}\nbuild log: {log}\n")
            raise Unavailable(f"its build failed: {Path(cc).name} exited with status {r.returncode} (log: {log})")
        shutil.rmtree(dest, ignore_errors=True)   # a directory left without its library
        os.replace(work, dest)
        note.unlink(missing_ok=True)
        return lib


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv not in ([], ["build"]):
        print(f"usage: python {__file__} [build]", file=sys.stderr)
        return 2
    try:
        lib = build(retry=True)
    except Unavailable as e:
        print(f"gomemu: page allocator C core not built, gomemu will run the Python model: {e}", file=sys.stderr)
        return 1
    print(f"gomemu: page allocator C core: {lib}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
