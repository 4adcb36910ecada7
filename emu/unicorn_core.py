"""Which unicorn core gomemu runs on: unicorn 2.1.4 patched so that guest stores
cost what loads cost, or stock 2.1.4 from the wheel.

In stock 2.1.4 every guest store to RAM leaves the translated code for
store_helper and notdirty_write (unicorn issue #1970): about 24 ns per store
against 1.7 ns per load, and an allocation makes 20-31 stores, so 80% of the
emulator's time went there (docs/machine.md, "Why unicorn is patched").
The patch (emu/patches/) keeps stores on the inline fast path wherever the
slow path has nothing to do. It is applied to PyPI's own unicorn 2.1.4 source
distribution, and the x86 target alone is built with CMake into the user's
cache directory, `~/.cache/gomemu/unicorn-2.1.4-<key>/` (key: a hash of the
source, the patch and the build options), so one build serves every install
and run.

When: `pip install` builds it through setup.py (one to three minutes on two
cores, then cached); `python emu/unicorn_core.py build` does the same by hand. A build
never fails the install and gomemu never builds at run time: without a built
core it runs on stock unicorn, and `status()` (shown by `gomemu --version`)
says so and why. GOMEMU_UNICORN=stock selects stock unicorn and skips the build.

Loading: the binding reads LIBUNICORN_PATH once, when `unicorn` is first
imported, and falls back to its own library when that path has none, so
`select()` runs from emu/__init__.py, before anything in gomemu imports
unicorn. The stock wheel stays installed and untouched.

This file imports only the standard library: setup.py runs it as a script.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

VERSION = "2.1.4"                   # must equal the binding's version (pyproject.toml pins unicorn==2.1.4)
SDIST = f"unicorn-{VERSION}.tar.gz"
# sha256 of PyPI's unicorn-2.1.4.tar.gz: the patch is written against exactly these sources
SDIST_SHA256 = "00567a70e323f749b419cd86bee4f9115beab7ebba32194581c090cbb7c59cff"
PATCH = Path(__file__).resolve().parent / "patches" / f"unicorn-{VERSION}-memory-fast-path.patch"
LIBRARY = "libunicorn.so.2"         # the name the binding loads on Linux
CMAKE_OPTIONS = ("-DCMAKE_BUILD_TYPE=Release", "-DUNICORN_ARCH=x86", "-DUNICORN_BUILD_TESTS=off",
                 "-DUNICORN_INSTALL=off", "-DUNICORN_LEGACY_STATIC_ARCHIVE=off")
SWITCH = "GOMEMU_UNICORN"           # "stock": use and build nothing but stock unicorn

_not_selected = None                # why select() left the binding on its own library


def cache_root():
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gomemu"


def core_dir():
    """Where the patched core of this source, patch and build options lives."""
    h = hashlib.sha256(SDIST_SHA256.encode())
    h.update(PATCH.read_bytes())
    h.update("\0".join(CMAKE_OPTIONS).encode())
    return cache_root() / f"unicorn-{VERSION}-{h.hexdigest()[:12]}"


def failure_note(d):
    """The file that says why the build of cache directory d failed (and stops retries)."""
    return d.with_name(d.name + ".failed")


@contextlib.contextmanager
def locked_work_dir(dest, library):
    """Holds the cache's build lock (one build at a time; the others wait, then find it)
    and yields a fresh work directory beside dest, removed afterwards; None when another
    process built dest/library meanwhile."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (dest / library).is_file():
            yield None
            return
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=dest.parent))
        try:
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)


def select():
    """Point the unicorn binding at the patched core if it is built. Call before
    `unicorn` is imported; afterwards it cannot change which library is loaded."""
    global _not_selected
    if os.environ.get("LIBUNICORN_PATH") == str(core_dir()):
        del os.environ["LIBUNICORN_PATH"]         # inherited from a gomemu parent process: choose afresh
    if "unicorn" in sys.modules:
        _not_selected = "the unicorn binding was imported before gomemu"
    elif os.environ.get(SWITCH) == "stock":
        _not_selected = f"{SWITCH}=stock"
    elif not sys.platform.startswith("linux"):
        _not_selected = "the patched core is built on Linux only"
    elif "LIBUNICORN_PATH" in os.environ:
        _not_selected = f"LIBUNICORN_PATH={os.environ['LIBUNICORN_PATH']} chosen outside gomemu"
    elif _binding_version() != VERSION:
        _not_selected = f"the installed unicorn binding is {_binding_version()}, the patched core is {VERSION}"
    else:
        d = core_dir()
        if (d / LIBRARY).is_file():
            os.environ["LIBUNICORN_PATH"] = str(d)
            return
        note = failure_note(d)
        if note.is_file():
            _not_selected = f"its build failed: {note.read_text().splitlines()[0]} (see {note})"
        else:
            _not_selected = f"not built yet; `python -m pip install -e .` or `python {__file__} build` builds it"


def _binding_version():
    try:
        return metadata.version("unicorn")
    except metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class Core:
    patched: bool
    library: str          # the libunicorn this process loaded
    why_stock: str = ""

    def describe(self):
        if self.patched:
            return f"unicorn {VERSION}, patched core (guest loads and stores on the fast path): {self.library}"
        return f"unicorn {VERSION}, stock core (guest stores on the slow path): {self.why_stock}"


def status():
    """The core this process runs on (imports the binding)."""
    from unicorn.unicorn_py3.unicorn import uclib
    lib = Path(uclib._name).resolve()
    if lib.parent == core_dir().resolve():
        return Core(True, str(lib))
    why = _not_selected or f"{core_dir()} holds no library the binding could load"
    return Core(False, str(lib), why)


# ---- building ----------------------------------------------------------------------------------

def build(log=None):
    """Build the patched core into core_dir() unless it is there; returns its directory,
    or None when it cannot be built (the reason goes to core_dir() + '.failed')."""
    log = log or (lambda msg: print(f"gomemu: {msg}", file=sys.stderr, flush=True))
    if os.environ.get(SWITCH) == "stock" or not sys.platform.startswith("linux"):
        return None
    dest = core_dir()
    if (dest / LIBRARY).is_file():
        return dest
    with locked_work_dir(dest, LIBRARY) as work:
        if work is None:
            return dest
        transcript = dest.with_name(dest.name + ".log")
        try:
            with open(transcript, "w") as out:
                lib = _build_in(work, out, log)
            staged = work / "core"
            staged.mkdir()
            shutil.copy2(lib, staged / LIBRARY)
            (staged / "BUILD.json").write_text(json.dumps(
                {"unicorn": VERSION, "sdist_sha256": SDIST_SHA256, "patch": PATCH.name,
                 "patch_sha256": hashlib.sha256(PATCH.read_bytes()).hexdigest(),
                 "cmake_options": CMAKE_OPTIONS}, indent=1) + "\n")
            os.replace(staged, dest)
            failure_note(dest).unlink(missing_ok=True)
            log(f"patched unicorn core built: {dest}")
            return dest
        except Exception as e:                    # whatever stops the build, gomemu runs on stock unicorn
            reason = str(e) if isinstance(e, BuildFailed) else f"{type(e).__name__}: {e}"
            failure_note(dest).write_text(f"{reason}\nbuild log: {transcript}\n")
            log(f"patched unicorn core not built, gomemu will run on stock unicorn: {reason} (log: {transcript})")
            return None


class BuildFailed(Exception):
    pass


def _run(step, cmd, out, **kw):
    out.write(f"\n$ {' '.join(map(str, cmd))}\n")
    out.flush()
    r = subprocess.run(list(map(str, cmd)), stdout=out, stderr=subprocess.STDOUT, **kw)
    if r.returncode:
        raise BuildFailed(f"{step} exited with status {r.returncode}")


def _build_in(work, out, log):
    """Download, check, patch and build in `work`; returns the built library."""
    cmake = shutil.which("cmake")
    if cmake is None:
        raise BuildFailed("cmake is not installed")
    t0 = time.monotonic()
    log(f"building the patched unicorn {VERSION} core (once: one to three minutes on two cores) ...")
    # pip as the user runs it (setup.py runs us inside pip's isolated build environment)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONNOUSERSITE")}
    _run("pip download", [sys.executable, "-m", "pip", "download", f"unicorn=={VERSION}", "--no-binary", ":all:",
          "--no-deps", "--disable-pip-version-check", "-d", work], out, env=env)
    sdist = work / SDIST
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise BuildFailed(f"{SDIST} has sha256 {digest}, expected {SDIST_SHA256}")
    with tarfile.open(sdist) as tar:
        tar.extractall(work, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    src = work / f"unicorn-{VERSION}" / "src"
    apply_patch(PATCH.read_text(), src)
    build_dir = work / "build"
    _run("cmake (configure)", [cmake, "-S", src, "-B", build_dir, *CMAKE_OPTIONS], out)
    _run("cmake --build", [cmake, "--build", build_dir, "--target", "unicorn", "-j", str(os.cpu_count() or 2)], out)
    lib = build_dir / LIBRARY
    if not lib.is_file():
        raise BuildFailed(f"the build made no {LIBRARY}")
    out.write(f"\nbuilt in {time.monotonic() - t0:.0f} s\n")
    return lib


_HUNK = re.compile(r"@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@")


def apply_patch(text, root):
    """Apply a unified diff (git diff format) under `root`. Every hunk must match
    exactly where it says, with context lines: no fuzz, no offsets found by search. A
    file's last line without a newline is marked as diff marks it ("\\ No newline")."""
    for file_diff in re.split(r"^diff --git ", text, flags=re.M)[1:]:
        lines = file_diff.splitlines(keepends=True)
        target = next(ln[6:].strip() for ln in lines if ln.startswith("+++ b/"))
        path = root / target
        with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
            body = f.read().splitlines(keepends=True)
        shift = 0
        i = next(k for k, ln in enumerate(lines) if ln.startswith("@@"))
        while i < len(lines):
            m = _HUNK.match(lines[i])
            if not m:
                raise BuildFailed(f"{PATCH.name}: cannot read hunk header {lines[i].strip()!r}")
            old, new, prev = [], [], " "
            i += 1
            while i < len(lines) and not lines[i].startswith("@@"):
                tag, ln = lines[i][:1], lines[i][1:]
                if tag == "\\":               # "\ No newline at end of file": the line before has none
                    for side in ((old, new) if prev == " " else (old,) if prev == "-" else (new,)):
                        side[-1] = side[-1].rstrip("\n")
                if tag in " -":
                    old.append(ln)
                if tag in " +":
                    new.append(ln)
                prev = tag
                i += 1
            at = int(m.group(1)) - 1 + shift
            if body[at:at + len(old)] != old:
                raise BuildFailed(f"{PATCH.name}: a hunk does not match {target} at line {at + 1}")
            body[at:at + len(old)] = new
            shift += len(new) - len(old)
        with open(path, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
            f.write("".join(body))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["build"]:
        return 0 if build() else 1
    if argv:
        print(f"usage: python {__file__} [build]", file=sys.stderr)
        return 2
    select()
    print(status().describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
