"""How long `gomemu bench` of a 1,000-iteration `new(int)` loop takes, end to end, as a user
runs it: a new process, the package built (the build cached: gomemu's cache and Go's build
cache in the user's cache directory), the program loaded, the benchmark run (N=1, then
1000). Target (issue 11): under 2 s. Reports the wall time and the process's user+system
CPU time (the machine is shared: CPU time is what an idle machine's wall time would be),
median of the runs after a first one that fills the caches.

Run: python bench/bench_gobench.py [--smoke] [--runs R]
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 2.0


def one_run(bench_filter):
    cmd = [sys.executable, "-m", "emu.cli", "bench", str(ROOT / "examples" / "seed"), "-bench", bench_filter]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="one measured run")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    one_run("NewInt$")                                  # fills the build and decode caches
    runs = [one_run("NewInt$") for _ in range(1 if args.smoke else args.runs)]
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    print(f"gomemu bench examples/seed -bench NewInt$ (1000x new(int)), cached build: "
          f"{wall:.2f} s wall, {cpu:.2f} s CPU (target {TARGET_S} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
