"""A digest of the emulated state after a seeded workload (not a benchmark): speed work
must leave it unchanged.

About 3,000 allocations (16 B to 40,000 B, tiny, small with and without pointers, large),
pointer stores into a live set while cycles mark, 6 collections, then the live set
dropped and an idle phase for the scavenger. Prints the cycle count, the allocation count
and one SHA-256 over the gctrace lines, scavtrace lines, the per-cycle records, the final
memstats and every byte the run wrote: the off-heap metadata and every heap arena.

Run: PYTHONPATH=. python bench/state_digest.py   (compare its line before and after)
"""

import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emu import layout as L  # noqa: E402
from emu.mutator import WorkloadRun  # noqa: E402
from emu.workload import parse  # noqa: E402

DIGEST = """
name = "digest"
gomaxprocs = 2
seed = 11
[live]
bytes = "1MiB"
object_size = 512
pointers = true
[[garbage]]
object_size = {min = 8, max = 256, dist = "log"}
weight = 0.5
[[garbage]]
object_size = {min = 16, max = 512, dist = "log"}
pointers = true
pointer_writes = 1
weight = 0.4
[[garbage]]
object_size = 8192
weight = 1.5
[[garbage]]
object_size = 40000
pointers = true
weight = 0.4
[[phases]]
name = "churn"
allocate = "26MiB"
[[phases]]
name = "drop"
live = "64KiB"
allocate = "2MiB"
idle = "1s"
"""


def digest():
    lines = []
    run = WorkloadRun(parse(DIGEST, "digest.toml"), gctrace_out=lines.append,
                      scavtrace_out=lines.append).run()
    m = run.m
    h = hashlib.sha256("\n".join(lines).encode())
    h.update(json.dumps([run.cycles, run.summary(), m.runtime.read_mem_stats()], sort_keys=True,
                        default=repr).encode())
    h.update(m.mem.read(L.OFFHEAP.base, m.persistent_bytes()))
    for ai in m.runtime.mheap.heap_arenas:
        h.update(m.mem.read(L.HEAP_BASE + (ai - m.runtime.mheap.heap_arenas[0]) * L.HEAP_ARENA_BYTES,
                            L.HEAP_ARENA_BYTES))
    return len(run.rt.gc.cycles), run.mutator.allocs, h.hexdigest()


if __name__ == "__main__":
    cycles, allocs, d = digest()
    print(f"cycles {cycles} allocations {allocs} sha256 {d}")
