"""Benchmark of runtime_model.pagealloc (not a test).

1. Throughput: mixed alloc/free (1..64 pages, seeded RNG) on 16384 chunks spread
   over 128 GiB of address space (groups of 16 chunks with equal gaps).
2. Scaling: the same small workload on 16 chunks vs on the top 16 of 16384
   chunks whose other 16368 chunks are full. A linear scan over chunks would
   be ~1000x slower in the second case; the radix tree keeps it O(levels).

Run: PYTHONPATH=. python bench/bench_pagealloc.py [--ops N] [--smoke]
"""

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime_model.pagealloc import PALLOC_CHUNK_BYTES, PAGE_SIZE, PageAlloc, check_page_alloc  # noqa: E402

# The emulated Go heap starts at the amd64 arena hint 0xc000000000.
HEAP_BASE = 0xC000000000
GROUP = 16  # chunks per contiguous growth


def grow_spread(nchunks, stride_chunks):
    """PageAlloc with nchunks chunks grown GROUP at a time, every stride_chunks chunks."""
    p = PageAlloc()
    for g in range(nchunks // GROUP):
        p.grow(HEAP_BASE + g * stride_chunks * PALLOC_CHUNK_BYTES, GROUP * PALLOC_CHUNK_BYTES)
    return p


def run_ops(p, nops, live_cap, seed):
    """Mixed workload: allocate while below live_cap, else alloc or free a random live run."""
    rng = random.Random(seed)
    rand, randint = rng.random, rng.randint
    live = []
    alloc, free = p.alloc, p.free
    t0 = time.perf_counter()
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
    return time.perf_counter() - t0


def throughput(nops):
    nchunks = 16384
    p = grow_spread(nchunks, 2 * GROUP)
    span = (nchunks // GROUP) * 2 * GROUP * PALLOC_CHUNK_BYTES
    secs = run_ops(p, nops, live_cap=100_000, seed=1)
    check_page_alloc(p)
    print(
        f"pagealloc throughput: {nops} alloc/free ops (1-64 pages) on {nchunks} chunks over "
        f"{span >> 30} GiB: {secs:.2f} s, {nops / secs:,.0f} ops/s"
    )
    return nops / secs


def scaling(nops):
    small = grow_spread(GROUP, GROUP)
    big = grow_spread(16384, GROUP)
    # Fill every chunk of `big` except the top GROUP ones.
    for _ in range(16384 - GROUP):
        addr, _ = big.alloc(PALLOC_CHUNK_BYTES // PAGE_SIZE)
        assert addr
    t_small = run_ops(small, nops, live_cap=100, seed=2) / nops
    t_big = run_ops(big, nops, live_cap=100, seed=2) / nops
    check_page_alloc(big)
    ratio = t_big / t_small
    print(
        f"pagealloc scaling: {nops} ops each: 16 chunks {t_small * 1e6:.2f} us/op, "
        f"16384 chunks {t_big * 1e6:.2f} us/op, ratio {ratio:.2f} (target <= 2)"
    )
    return ratio


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=1_000_000, help="ops in the throughput run")
    ap.add_argument("--smoke", action="store_true", help="tiny version (a few seconds)")
    args = ap.parse_args(argv)
    nops = 20_000 if args.smoke else args.ops
    throughput(nops)
    scaling(5_000 if args.smoke else 100_000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
