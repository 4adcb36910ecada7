"""Speed of the emulated machine: allocations, call-outs and stepping.

Reports, measured in one run on this machine:
  - mcache-hit allocations per second through the driver loop, with the
    always-on exact instruction counting, and the same with the counting hook
    removed (their ratio is what exact counting costs);
  - the round trip of one call-out into Python (machine code calling
    profilealloc through the call-out page, and returning);
  - stepping speed with full records, in instructions per second.
Targets (issue 2): >= 1,000,000 hit allocations/s with counts, call-out
<= 2 us, stepping >= 50,000 instructions/s.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emu.layout import MCache  # noqa: E402
from emu.machine import Machine  # noqa: E402
from emu.uc_raw import hook_del  # noqa: E402
from runtime_model.mspan import MSpan  # noqa: E402
from runtime_model.sizeclasses import make_span_class, size_to_class  # noqa: E402

SIZE = 16          # class 2: 504 objects per span


def hit_rate(m, rounds):
    """Allocations/s over batches that stay inside one cached span (no call-out):
    each round first fills the current span and starts a fresh one, untimed."""
    n_total, t_total = 0, 0.0
    for i in range(rounds + 1):
        m.malloc_batch([SIZE] * (_free_in_cached_span(m) + 1))
        refills = len(m.runtime.refills)
        n = _free_in_cached_span(m)
        t = time.perf_counter()
        m.malloc_batch([SIZE] * n)
        dt = time.perf_counter() - t
        assert len(m.runtime.refills) == refills, "a timed batch refilled"
        if i:                        # round 0 warms the translation cache
            n_total, t_total = n_total + n, t_total + dt
    return n_total / t_total


def _free_in_cached_span(m):
    s = MSpan(m.mem, m.mem.u64(m.runtime.mcache + MCache.alloc + 8 * make_span_class(size_to_class(SIZE), True)))
    return s.nelems - s.allocCount


def callout_cost(m, n):
    """Seconds per call-out: machine code calling a call-out n times, the memory profile's
    record (mProf_Malloc(mp, x, size); the handwritten machine's profilealloc). Returns
    (round trip, the handler's own Python work, the difference: the mechanism)."""
    name = "runtime.mProf_Malloc" if m.image else "runtime.profilealloc"
    args = (m.symbol(name), m.symbol("runtime.m0"), 0xC000000000, SIZE)
    m.call("gomemu.calloutloop", 10, *args)                   # warm the translation
    t = time.perf_counter()
    m.call("gomemu.calloutloop", n, *args)
    total = (time.perf_counter() - t) / n
    handler = next(c.handler for c in m.callouts if c.symbol == name)
    t = time.perf_counter()
    for _ in range(n):
        handler(m, *args[1:])
    work = (time.perf_counter() - t) / n
    return total, work, total - work


def step_rate(m, reps):
    m.malloc_batch([SIZE] * 8)
    m.trace("runtime.mallocgcSmallNoscan", SIZE, 0, 1)
    n, t = 0, time.perf_counter()
    for _ in range(reps):
        n += len(m.trace("runtime.mallocgcSmallNoscan", SIZE, 0, 1))
    return n / (time.perf_counter() - t)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="a short run (a few seconds)")
    args = ap.parse_args(argv)
    rounds, calls, reps = (20, 2000, 20) if args.smoke else (400, 200_000, 300)
    m = Machine(checked=False)             # speed of the machine itself: no checks at the boundaries
    counted = hit_rate(m, rounds)
    co_total, co_work, co_mech = callout_cost(m, calls)
    steps = step_rate(m, reps)
    bare = Machine(checked=False)          # the counting hook removed before any code runs
    hook_del(bare.uc, bare.counter.handle)
    uncounted = hit_rate(bare, rounds)
    print(f"mcache-hit allocations/s, exact counting on : {counted:12,.0f}  (target >= 1,000,000)")
    print(f"mcache-hit allocations/s, counting removed  : {uncounted:12,.0f}  (counting costs x{uncounted / counted:.2f})")
    print(f"call-out round trip (profilealloc)           : {co_total * 1e6:12.2f} us")
    print(f"  of which profilealloc's own Python work    : {co_work * 1e6:12.2f} us")
    print(f"  of which the call-out mechanism            : {co_mech * 1e6:12.2f} us (target <= 2 us)")
    print(f"stepping with full records                   : {steps:12,.0f} instructions/s (target >= 50,000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
