"""Benchmark of the page allocator (not a test): the running implementation, PageAlloc
(the C core, runtime_model/cpagealloc/, or the Python model where it is unavailable), or
with --impl the C core or the Python reference model (runtime_model/pagealloc.py).

1. Throughput: mixed alloc/free (1..64 pages, seeded RNG) on 16384 chunks spread
   over 128 GiB of address space (groups of 16 chunks with equal gaps).
2. Scaling: the same small workload on 16 chunks vs on the top 16 of 16384
   chunks whose other 16368 chunks are full (best of 3 alternating runs). A
   linear scan over chunks would be ~1000x slower in the second case; the
   radix tree keeps it O(levels).
3. GC churn, the pattern a collecting program produces (mheap.allocSpan and
   freeSpan of one-page spans): on a heap full of one-page spans, free a random
   one and allocate one through a page cache (refilled by alloc_to_cache when
   empty), interleaved.
4. Sweep: free a third of those spans (one-page runs spread over every chunk)
   one by one with free, and on a copy at once with free_many; the two final
   states must be identical.
Times are CPU seconds of this process.

Run: PYTHONPATH=. python bench/bench_pagealloc.py [--ops N] [--smoke] [--impl running|c|python]
"""

import argparse
import copy
import gc
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime_model.pagealloc import (  # noqa: E402
    PALLOC_CHUNK_BYTES, PAGE_SIZE, CPageAlloc, PageAlloc, PyPageAlloc, check_page_alloc)
from runtime_model.pagecache import PageCache  # noqa: E402

IMPLS = {"running": PageAlloc, "c": CPageAlloc, "python": PyPageAlloc}

# Timings are this process's CPU time: on a shared machine wall time mostly
# measures the other jobs; on an idle one the two agree.
_clock = time.process_time
# The emulated Go heap starts at the amd64 arena hint 0xc000000000.
HEAP_BASE = 0xC000000000
GROUP = 16  # chunks per contiguous growth


def grow_spread(impl, nchunks, stride_chunks):
    """A page allocator with nchunks chunks grown GROUP at a time, every stride_chunks chunks."""
    p = impl()
    for g in range(nchunks // GROUP):
        p.grow(HEAP_BASE + g * stride_chunks * PALLOC_CHUNK_BYTES, GROUP * PALLOC_CHUNK_BYTES)
    return p


def run_ops(p, nops, live_cap, seed):
    """Mixed workload: allocate while below live_cap, else alloc or free a random live run."""
    rng = random.Random(seed)
    rand, randint = rng.random, rng.randint
    live = []
    alloc, free = p.alloc, p.free
    t0 = _clock()
    for _ in range(nops):
        if len(live) < live_cap or rand() < 0.5:
            n = randint(1, 64)
            addr, _ = alloc(n)
            if addr:
                live.append((addr, n))
        elif live:
            k = randint(0, len(live) - 1)
            live[k], live[-1] = live[-1], live[k]
            free(*live.pop())
    return _clock() - t0


def throughput(impl, nops):
    nchunks = 16384
    p = grow_spread(impl, nchunks, 2 * GROUP)
    span = (nchunks // GROUP) * 2 * GROUP * PALLOC_CHUNK_BYTES
    secs = run_ops(p, nops, live_cap=100_000, seed=1)
    check_page_alloc(p)
    print(
        f"pagealloc throughput: {nops} alloc/free ops (1-64 pages) on {nchunks} chunks over "
        f"{span >> 30} GiB: {secs:.2f} CPU s, {nops / secs:,.0f} ops/s (target >= 200,000)"
    )
    return nops / secs


def scaling(impl, nops, rounds=3):
    """Per-op cost on 16 chunks vs 16384; the best of `rounds` alternating runs of each,
    so that load from elsewhere on the machine does not decide the ratio."""
    t_small = t_big = float("inf")
    for _ in range(rounds):
        small = grow_spread(impl, GROUP, GROUP)
        big = grow_spread(impl, 16384, GROUP)
        # Fill every chunk of `big` except the top GROUP ones.
        for _ in range(16384 - GROUP):
            addr, _ = big.alloc(PALLOC_CHUNK_BYTES // PAGE_SIZE)
            assert addr
        t_small = min(t_small, run_ops(small, nops, live_cap=100, seed=2) / nops)
        t_big = min(t_big, run_ops(big, nops, live_cap=100, seed=2) / nops)
    check_page_alloc(big)
    ratio = t_big / t_small
    print(
        f"pagealloc scaling: {nops} ops, best of {rounds}: 16 chunks {t_small * 1e6:.2f} us/op, "
        f"16384 chunks {t_big * 1e6:.2f} us/op, ratio {ratio:.2f} (target within 1.2x)"
    )
    return ratio


class SpanHeap:
    """One-page spans the way mheap.allocSpan and freeSpan get them: through p0's page cache."""

    def __init__(self, p):
        self.p = p
        self.cache = PageCache()
        self.live = []

    def alloc1(self):
        if self.cache.empty():
            self.cache = self.p.alloc_to_cache()
        addr, _ = self.cache.alloc(1)
        if addr == 0:
            addr, _ = self.p.alloc(1)
        self.live.append(addr)

    def free_random(self, rng):
        live = self.live
        k = rng.randrange(len(live))
        live[k], live[-1] = live[-1], live[k]
        self.p.free(live.pop(), 1)


def gc_churn(impl, nchunks, nops):
    """Interleaved one-page frees and cache allocations on a heap of one-page spans."""
    p = impl()
    p.grow(HEAP_BASE, nchunks * PALLOC_CHUNK_BYTES)
    heap = SpanHeap(p)
    pages = nchunks * (PALLOC_CHUNK_BYTES // PAGE_SIZE)
    for _ in range(pages * 9 // 10):
        heap.alloc1()
    rng = random.Random(3)
    t0 = _clock()
    for _ in range(nops // 2):
        heap.free_random(rng)
        heap.alloc1()
    secs = _clock() - t0
    check_page_alloc(p)
    print(
        f"pagealloc gc churn: {nops} one-page frees and page-cache allocs, interleaved, on "
        f"{nchunks} chunks 90% full: {secs:.2f} CPU s, {nops / secs:,.0f} ops/s"
    )
    return heap


def sweep(heap, nfree):
    """A sweep's batch of one-page frees: free one by one vs free_many on a copy."""
    rng = random.Random(4)
    batch = [(a, 1) for a in rng.sample(heap.live, nfree)]
    one = heap.p
    many = copy.deepcopy(one)
    t0 = _clock()
    for addr, n in batch:
        one.free(addr, n)
    t_one = _clock() - t0
    t0 = _clock()
    many.free_many(batch)
    t_many = _clock() - t0
    check_page_alloc(many)
    if one.state() != many.state():
        raise SystemExit("pagealloc sweep: free_many left a different state than free one by one")
    print(
        f"pagealloc sweep: {nfree} one-page frees over {len({a >> 22 for a, _ in batch})} chunks: "
        f"free one by one {t_one * 1e3:.1f} ms ({nfree / t_one:,.0f}/s), "
        f"free_many {t_many * 1e3:.1f} ms ({nfree / t_many:,.0f}/s), {t_one / t_many:.1f}x, same state"
    )
    return t_one / t_many


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=1_000_000, help="ops in the throughput run")
    ap.add_argument("--smoke", action="store_true", help="tiny version (a few seconds)")
    ap.add_argument("--impl", choices=IMPLS, default="running",
                    help="the running implementation (default), the C core, or the Python reference model")
    args = ap.parse_args(argv)
    impl = IMPLS[args.impl]
    print(f"pagealloc implementation: {impl.__name__}")
    nops = 20_000 if args.smoke else args.ops
    # The allocator makes no reference cycles; Python's cycle collector would only
    # add noise (walking, e.g., the sweep's two copies of the heap) to the timings.
    gc.disable()
    try:
        throughput(impl, nops)
        scaling(impl, 2_000, rounds=1) if args.smoke else scaling(impl, 50_000)
        # 1.5 GiB of heap is 384 chunks; the smoke run uses 16.
        heap = gc_churn(impl, 16 if args.smoke else 384, 10_000 if args.smoke else 400_000)
        sweep(heap, len(heap.live) // 3)
    finally:
        gc.enable()
    return 0


if __name__ == "__main__":
    sys.exit(main())
