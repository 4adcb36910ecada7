"""setuptools entry: everything is in pyproject.toml except two build steps.

`pip install` (editable or not) also builds, into the user's cache, the page
allocator's C core (runtime_model/cpagealloc/build.py; a few seconds once, then
cached) and gomemu's patched unicorn core (emu/unicorn_core.py; about a minute
once, then cached). Neither step fails the install: without the first gomemu runs
the page allocator's Python model, without the second stock unicorn.
"""

import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class build_py_and_cores(build_py):
    def run(self):
        super().run()
        # Scripts, not imports: pip's isolated build environment has none of gomemu's dependencies.
        for what, script in (("page allocator C core", ROOT / "runtime_model" / "cpagealloc" / "build.py"),
                             ("patched unicorn core", ROOT / "emu" / "unicorn_core.py")):
            try:
                subprocess.run([sys.executable, str(script), "build"], check=False)
            except OSError as e:
                print(f"gomemu: {what} not built: {e}", file=sys.stderr)


setup(cmdclass={"build_py": build_py_and_cores})
