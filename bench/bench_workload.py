"""Benchmark of `gomemu run` (not a test): whole workloads on the emulated runtime.

1. churn, the built-in (64 MiB live, 1.5 GiB of 4 KiB garbage, about 29 cycles):
   issue 12's target is at most 30 s.
2. small: 10 million small allocations (16-256 bytes, a quarter with pointers, each of
   those stored into the live set while cycles mark), then the live set drops and the
   program idles so the scavenger returns memory, then more garbage: at most 60 s.

Each line also gives the marking rate, issue 12's other target (at least 1 million small
objects a second): objects marked over the CPU time of the mark work (HeapMarker.drain and
.shade: the roots, the background workers' and assists' draining, write-barrier flushes).

--smoke runs both scaled down (a few seconds each); --only churn|small runs one. Wall and CPU time of this process;
on the shared 2-core machine wall time also measures the other jobs.

Run: PYTHONPATH=. python bench/bench_workload.py [--smoke] [--only churn|small]
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emu.mutator import WorkloadRun  # noqa: E402
from emu.workload import load, parse  # noqa: E402
from runtime_model.mgcmark import HeapMarker  # noqa: E402

MIB = 1 << 20

SMALL = """
name = "small-objects"
gomaxprocs = 2
seed = 7
[live]
bytes = "{live}MiB"
object_size = 512
pointers = true
[[garbage]]
object_size = {{min = 16, max = 256, dist = "log"}}
weight = 3.0
[[garbage]]
object_size = {{min = 16, max = 256, dist = "log"}}
pointers = true
pointer_writes = 1
weight = 1.0
[[phases]]
name = "churn"
allocate = "{a}MiB"
[[phases]]
name = "drop"
live = "2MiB"
allocate = "{b}MiB"
idle = "2s"
[[phases]]
name = "after"
live = "2MiB"
allocate = "{c}MiB"
"""

CHURN_SMOKE = """
name = "churn-smoke"
gomaxprocs = 2
total_allocated = "96MiB"
[live]
bytes = "8MiB"
object_size = "64KiB"
[[garbage]]
object_size = 4096
"""


class MarkClock:
    """CPU time inside HeapMarker's entry points while installed (the outermost call
    only, where one calls the other)."""

    def __init__(self):
        self.cpu = 0.0
        self._depth = 0

    def __enter__(self):
        self._saved = HeapMarker.drain, HeapMarker.shade
        for name, fn in zip(("drain", "shade"), self._saved):
            setattr(HeapMarker, name, self._timed(fn))
        return self

    def __exit__(self, *exc):
        HeapMarker.drain, HeapMarker.shade = self._saved

    def _timed(self, fn):
        def wrapper(marker, *args, **kw):
            t0 = time.process_time()
            self._depth += 1
            try:
                return fn(marker, *args, **kw)
            finally:
                self._depth -= 1
                if not self._depth:
                    self.cpu += time.process_time() - t0
        return wrapper


def timed(name, wl, target_s):
    w0, c0 = time.perf_counter(), time.process_time()
    with MarkClock() as mark:
        run = WorkloadRun(wl).run()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    s = run.summary()
    released = sum(r for _, r, _ in run.rt.scavenger.runs)
    marked = sum(c.objects_marked for c in run.rt.gc.cycles)
    print(f"{name:14} {s['allocations']:>10} allocations {s['allocated'] / MIB:7.0f} MiB "
          f"{s['cycles']:4} cycles  released {released / MIB:6.1f} MiB  wall {wall:6.1f} s  cpu {cpu:6.1f} s"
          f"  ({s['allocations'] / cpu / 1e3:.0f} k allocations per CPU second; target {target_s} s)")
    print(f"{'':14} {marked:>10} objects marked in {mark.cpu:6.1f} s of mark work: "
          f"{marked / max(mark.cpu, 1e-9) / 1e6:.2f} M objects per second (target 1 M)")
    return run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="scaled down (a few seconds each)")
    ap.add_argument("--only", choices=("churn", "small"), help="run this shape only")
    args = ap.parse_args(argv)
    shapes = ("churn", "small") if args.only is None else (args.only,)
    if args.smoke:
        if "churn" in shapes:
            timed("churn (smoke)", parse(CHURN_SMOKE, "churn-smoke.toml"), 30)
        if "small" in shapes:
            # about 200,000 allocations of 16-256 bytes
            timed("small (smoke)", parse(SMALL.format(live=4, a=10, b=2, c=2), "small.toml"), 60)
    else:
        if "churn" in shapes:
            timed("churn", load("churn"), 30)
        if "small" in shapes:
            # 10 million allocations at a mean of about 85 bytes (8.75 M in 725 MiB): 850 MiB
            timed("small", parse(SMALL.format(live=16, a=700, b=90, c=60), "small.toml"), 60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
