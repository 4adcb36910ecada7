"""Speed of the emulated machine: allocations, call-outs and stepping.

Reports, measured in one run on this machine (CPU time of the process, best of 3):
  - mcache-hit allocations per second through the driver loop on the default
    (size-specialised, compiled go1.27.3) machine, with the always-on exact
    instruction counting, and the same with the counting hook removed;
  - the same hits while the GC marks (allocate-black: the driver loop calls
    mallocgcSmallNoscan, which then also runs gcmarknewobject), and what a black
    hit costs against a plain one, each pair measured in turns; on the default
    machine (the compiled gcmarknewobject) and on the handwritten one (its twin,
    asm/gcmarknewobject.s);
  - the round trip of one call-out into Python (machine code calling the memory
    profile's record through the call-out page, and returning);
  - a refill: 4 KiB objects (two per span), each refill a call-out that takes a
    fresh span from mheap (heap growth included), and the gcTrigger.test call-out
    mallocgc makes after it; per refill, the whole batch's time and the refill
    call-out's own Python work; GOGC off and GOGC=100 (collections included);
  - a large object (40,000 B): mallocgc's allocLarge call-out's Python work;
  - stepping with full records (Machine.trace), instructions per second, on the
    16-byte hit path and on a 100-allocation driver loop (refills included).
Targets (issue 13): >= 2,500,000 hits/s, an allocate-black hit <= 1.5x a plain one,
refill call-out <= 10 us, large-object call-out <= 15 us, stepping >= 100,000
instructions/s.

With `--against DIR` (a checkout of gomemu, e.g. `git worktree add /tmp/base main`)
every measurement also runs on DIR's code, in child processes alternating with this
tree's, and the figures are printed side by side with their ratio: before and after
in one run.
"""

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TREE = os.environ.get("GOMEMU_BENCH_TREE") or str(Path(__file__).resolve().parents[1])
sys.path.insert(0, TREE)

from emu.layout import G, M, MCache  # noqa: E402
from emu.machine import Machine  # noqa: E402
from emu.uc_raw import hook_del  # noqa: E402
from runtime_model.mspan import MSpan  # noqa: E402
from runtime_model.sizeclasses import make_span_class, size_to_class  # noqa: E402

_clock = time.process_time     # a shared machine: wall time mostly measures the other jobs
SIZE = 16          # class 2: 504 objects per span
BEST = 3
LARGE = 40_000


def hit_rate(m, rounds):
    """Allocations/s over batches that stay inside one cached span (no call-out):
    each round first fills the current span and starts a fresh one, untimed."""
    n_total, t_total = 0, 0.0
    for i in range(rounds + 1):
        m.malloc_batch([SIZE] * (_free_in_cached_span(m) + 1))
        refills = len(m.runtime.refills)
        n = _free_in_cached_span(m)
        t = _clock()
        m.malloc_batch([SIZE] * n)
        dt = _clock() - t
        assert len(m.runtime.refills) == refills, "a timed batch refilled"
        if i:                        # round 0 warms the translation cache
            n_total, t_total = n_total + n, t_total + dt
    return n_total / t_total


def start_marking(m):
    """The mutator's view of a mark phase (mgc.go: gcStart): the write barrier on, assists
    enabled, and credit enough on each goroutine that no assist runs."""
    m.mem.w8(m.symbol("runtime.writeBarrier"), 1)
    m.mem.w32(m.symbol("runtime.gcBlackenEnabled"), 1)
    for g in {m.symbol("runtime.g0"), m.mem.u64(m.symbol("runtime.m0") + M.curg)} - {0}:
        m.mem.w64(g + G.gcAssistBytes, 1 << 60)


def plain_and_black_hit_rates(plain, marking, rounds, best):
    """(hits/s, allocate-black hits/s) of two machines alike but for the mark phase (started
    on `marking`), measured in turns so that the other jobs of a shared machine weigh on
    both alike."""
    start_marking(marking)
    rates = [(hit_rate(plain, rounds), hit_rate(marking, rounds)) for _ in range(best)]
    return max(p for p, _ in rates), max(b for _, b in rates)


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
    t = _clock()
    m.call("gomemu.calloutloop", n, *args)
    total = (_clock() - t) / n
    handler = next(c.handler for c in m.callouts if c.symbol == name)
    t = _clock()
    for _ in range(n):
        handler(m, *args[1:])
    work = (_clock() - t) / n
    return total, work, total - work


@contextlib.contextmanager
def _timed_handler(m, symbol):
    """While in the block, the call-out's handler adds its own time (a generator's to its
    end) to the yielded one-element list. (The call-out table is shared by every machine
    of the process, so the handler is put back afterwards.)"""
    acc = [0.0]
    co = next(c for c in m.callouts if c.symbol == symbol)
    f = co.handler

    def timed(*a):
        t = _clock()
        r = f(*a)
        if hasattr(r, "send"):              # a generator: to its end
            r = yield from r
        acc[0] += _clock() - t
        return r
    object.__setattr__(co, "handler", timed)
    try:
        yield acc
    finally:
        object.__setattr__(co, "handler", f)


def refill_cost(n, gogc):
    """(seconds per refill for the whole batch, seconds of the refill call-out's Python
    work per refill): n 4 KiB allocations, a refill every second one."""
    m = Machine(checked=False, gogc=gogc)
    m.malloc_batch([4096] * 200)
    with _timed_handler(m, "runtime.(*mcache).refill") as work:
        before = len(m.runtime.refills)
        t = _clock()
        m.malloc_batch([4096] * n)
        dt = _clock() - t
    refills = len(m.runtime.refills) - before
    return dt / refills, work[0] / refills


def large_cost(n):
    """Seconds of the allocLarge call-out's Python work per large allocation."""
    m = Machine(checked=False)
    m.mallocgc(LARGE)
    with _timed_handler(m, "runtime.(*mcache).allocLarge") as work:
        for _ in range(n):
            m.mallocgc(LARGE)
    return work[0] / n


def step_rate(reps):
    """Instructions/s of Machine.trace: (the 16-byte hit path, a 100-allocation loop)."""
    m = Machine(checked=False)
    m.malloc_batch([SIZE] * 8)
    m.trace("runtime.mallocgcSmallNoscan", SIZE, 0, 1)
    n, t = 0, _clock()
    for _ in range(reps):
        n += len(m.trace("runtime.mallocgcSmallNoscan", SIZE, 0, 1))
    short = n / (_clock() - t)
    k = 100
    buf = m._batch_buffer(24 * k)
    m.mem.write(buf, SIZE.to_bytes(8, "little") * k + bytes(8 * k))        # sizes, nil types
    fn = m.symbol("runtime.mallocgcSmallNoscan")
    n, t = 0, _clock()
    for _ in range(max(1, reps // 20)):
        n += len(m.trace("gomemu.batchloop", buf, buf + 8 * k, 1, k, fn, buf + 16 * k))
    return short, n / (_clock() - t)


def measure(smoke):
    """Every figure, the best of BEST runs (rates: the highest; costs: the lowest), so the
    other jobs of a shared machine show up less; --smoke runs each once."""
    rounds, calls, reps, nref, nlarge = (20, 2000, 20, 2000, 200) if smoke else (100, 50_000, 100, 10_000, 1000)
    best = 1 if smoke else BEST
    m = Machine(checked=False)             # speed of the machine itself: no checks at the boundaries
    counted, black = plain_and_black_hit_rates(m, Machine(checked=False), rounds, best)
    co_total, co_work, co_mech = min((callout_cost(m, calls) for _ in range(best)), key=lambda r: r[0])
    hand_plain, hand_black = plain_and_black_hit_rates(Machine(handwritten=True, checked=False),
                                                       Machine(handwritten=True, checked=False), rounds, best)
    bare = Machine(checked=False)          # the counting hook removed before any code runs
    hook_del(bare.uc, bare.counter.handle)
    uncounted = max(hit_rate(bare, rounds) for _ in range(best))
    r_off, r_off_work = min((refill_cost(nref, "off") for _ in range(best)), key=lambda r: r[1])
    r_on, r_on_work = min((refill_cost(nref, 100) for _ in range(best)), key=lambda r: r[1])
    large = min(large_cost(nlarge) for _ in range(best))
    steps = [step_rate(reps) for _ in range(best)]
    st_short, st_long = max(s for s, _ in steps), max(s for _, s in steps)
    return {
        "hits/s, counting on": counted,
        "hits/s, counting removed": uncounted,
        "allocate-black hits/s": black,
        "  a black hit's cost / a plain hit's": counted / black,
        "handwritten machine: hits/s": hand_plain,
        "handwritten machine: allocate-black hits/s": hand_black,
        "  handwritten: a black hit's cost / a plain hit's": hand_plain / hand_black,
        "call-out round trip (us)": co_total * 1e6,
        "  handler's own Python work (us)": co_work * 1e6,
        "  the mechanism (us)": co_mech * 1e6,
        "refill, GOGC off, whole batch per refill (us)": r_off * 1e6,
        "refill, GOGC off, refill call-out's work (us)": r_off_work * 1e6,
        "refill, GOGC=100, whole batch per refill (us)": r_on * 1e6,
        "refill, GOGC=100, refill call-out's work (us)": r_on_work * 1e6,
        "large object, allocLarge call-out's work (us)": large * 1e6,
        "stepping, 16 B hit path (insn/s)": st_short,
        "stepping, 100-allocation loop (insn/s)": st_long,
    }


TARGETS = {"hits/s, counting on": ">= 2,500,000", "  a black hit's cost / a plain hit's": "<= 1.5",
           "refill, GOGC off, refill call-out's work (us)": "<= 10",
           "refill, GOGC=100, refill call-out's work (us)": "<= 10",
           "large object, allocLarge call-out's work (us)": "<= 15",
           "stepping, 16 B hit path (insn/s)": ">= 100,000", "stepping, 100-allocation loop (insn/s)": ">= 100,000"}


def _fmt(v):
    return f"{v:14,.0f}" if v >= 1000 else f"{v:14.2f}"


def _child(tree, smoke):
    env = dict(os.environ, GOMEMU_BENCH_TREE=tree, PYTHONPATH=tree)
    out = subprocess.run([sys.executable, __file__, "--child"] + (["--smoke"] if smoke else []),
                         env=env, capture_output=True, text=True, check=True, cwd=tree)
    return json.loads(out.stdout.splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="a short run (a few seconds)")
    ap.add_argument("--against", metavar="DIR", help="also measure the gomemu checkout in DIR (before/after)")
    ap.add_argument("--runs", type=int, default=2, help="with --against: alternating runs of each tree")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.smoke)))
        return 0
    if not args.against:
        for k, v in measure(args.smoke).items():
            print(f"{k:<48} {_fmt(v)}  {('target ' + TARGETS[k]) if k in TARGETS else ''}")
        return 0
    here = str(Path(__file__).resolve().parents[1])
    before, after = [], []
    for _ in range(args.runs):
        before.append(_child(str(Path(args.against).resolve()), args.smoke))
        after.append(_child(here, args.smoke))
    print(f"{'':48} {'before':>14} {'after':>14} {'after/before':>12}   (medians of {args.runs} "
          f"alternating runs; before = {args.against})")
    for k in before[0]:
        b = statistics.median(r[k] for r in before)
        a = statistics.median(r[k] for r in after)
        print(f"{k:<48} {_fmt(b)} {_fmt(a)} {a / b:12.2f}   {('target ' + TARGETS[k]) if k in TARGETS else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
