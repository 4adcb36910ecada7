"""setuptools entry: everything is in pyproject.toml except one build step.

`pip install` (editable or not) also builds gomemu's patched unicorn core into
the user's cache (emu/unicorn_core.py; about a minute once, then cached). The
step never fails the install: without the core gomemu runs on stock unicorn.
"""

import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class build_py_and_unicorn_core(build_py):
    def run(self):
        super().run()
        # A script, not an import: pip's isolated build environment has no unicorn.
        try:
            subprocess.run([sys.executable, str(ROOT / "emu" / "unicorn_core.py"), "build"], check=False)
        except OSError as e:
            print(f"gomemu: patched unicorn core not built: {e}", file=sys.stderr)


setup(cmdclass={"build_py": build_py_and_unicorn_core})
