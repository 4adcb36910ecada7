"""Runs every bench/bench_*.py; `--smoke` runs each in its short mode (CI does this)."""

import importlib.util
import sys
import time
from pathlib import Path


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    rc = 0
    for path in sorted(Path(__file__).parent.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        print(f"== {path.name} {' '.join(argv)}", flush=True)
        t = time.perf_counter()
        rc |= mod.main(list(argv)) or 0
        print(f"   ({time.perf_counter() - t:.1f} s)", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
