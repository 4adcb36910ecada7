"""Classifying allocations by the path they took, and measuring each path.

A small allocation takes one of these paths through mallocgcSmallNoscan:

  mcache hit       nextFreeFast finds a free slot in allocCache
  allocCache reload nextFree -> nextFreeIndex reloads 64 bits of allocBits
  refill           the span is full: call-out to mcache.refill, a span from mcentral
  refill + grow    ... and mheap grows the heap with mmap system calls
  (+ profilealloc) the mcache's sampling distance ran out: call-out to profilealloc

Counts come from the block counter, one allocation per emu_start, so they are
exact and include every instruction of the allocator's routines (not the
driver's).
"""

from dataclasses import dataclass

from emu.syscalls import SYS_MMAP

HIT, RELOAD, REFILL, GROW = "mcache hit (nextFreeFast)", "allocCache reload (nextFree)", \
    "refill (mcache.refill)", "refill + heap growth (mmap)"
PATH_ORDER = [HIT, RELOAD, REFILL, GROW]


@dataclass
class PathSample:
    path: str
    profiled: bool
    address: int
    instructions: int
    reads: int
    writes: int
    callouts: dict
    syscalls: int
    by_routine: dict


def allocate_classified(machine, size, needzero=True):
    """One small noscan allocation, with its path and exact counts."""
    snap = machine.snapshot()
    nsys = len(machine.kernel.log)
    x, _ = machine.malloc_small_noscan(size, needzero)
    c = machine.counts_since(snap)
    syscalls = machine.kernel.log[nsys:]
    routines = c.by_routine()
    if any(s.nr == SYS_MMAP for s in syscalls):
        path = GROW
    elif c.callouts.get("runtime.(*mcache).refill"):
        path = REFILL
    elif routines.get("runtime.(*mcache).nextFree"):
        path = RELOAD
    else:
        path = HIT
    reads, writes = c.memory_accesses()
    return PathSample(path, bool(c.callouts.get("runtime.profilealloc")), x, c.instructions, reads, writes,
                      c.callouts, len(syscalls), routines)


def survey(machine, size, n):
    """Allocate n objects of `size`; group the samples by path (profiled ones apart)."""
    groups = {}
    for _ in range(n):
        s = allocate_classified(machine, size)
        key = s.path + (" + profilealloc" if s.profiled else "")
        groups.setdefault(key, []).append(s)
    return groups
