"""Classifying allocations by the path they took through mallocgc, and what each cost.

mallocgc picks a path by size and pointers (zero-size, tiny, small noscan,
small scan with heap bits, small scan with a malloc header, large); within a
small path the slot comes from one of:

  hit               nextFreeFast finds a free slot in allocCache
  allocCache reload nextFree -> nextFreeIndex loads 64 more bits of allocBits
  refill            the span is full: mcache.refill gets one from mcentral
  refill + growth   ... and mheap maps more heap with mmap system calls

and "+ profilealloc" marks allocations that took a memory-profile sample.
Counts come from the block counter, one allocation per emu_start: exact, and
only the allocator's own routines (no driver loop).
"""

import re
from dataclasses import dataclass

from emu.syscalls import SYS_MMAP

ENTRY_PATHS = [
    ("runtime.mallocgcTiny", "tiny"),
    ("runtime.mallocgcSmallNoscan", "small noscan"),
    ("runtime.mallocgcSmallScanNoHeader", "small scan, heap bits"),
    ("runtime.mallocgcSmallScanHeader", "small scan, malloc header"),
    ("runtime.mallocgcLarge", "large"),
]
# Go 1.27's size-specialised copies (Machine(size_specialized=True)): routine pattern -> path.
# A copy that took forceSlowPath runs its slow path, which runs a generic routine.
SC_PATHS = [
    (re.compile(r"runtime\.mallocgcTiny(SC\d+)$"), "tiny"),
    (re.compile(r"runtime\.mallocgcSmallNoScan(SC\d+)$"), "small noscan"),
    (re.compile(r"runtime\.mallocgcSmallScanNoHeader(SC\d+)$"), "small scan, heap bits"),
]
HIT, RELOAD, REFILL, GROW = "hit (nextFreeFast)", "allocCache reload (nextFree)", "refill (mcache.refill)", \
    "refill + heap growth (mmap)"
SUBPATH_ORDER = ["", "zero-size", "into the current block", HIT, RELOAD, REFILL, GROW, "heap growth (mmap)"]


@dataclass
class PathSample:
    path: str            # e.g. "small noscan: hit (nextFreeFast)"
    profiled: bool
    address: int
    instructions: int
    reads: int
    writes: int
    callouts: dict
    syscalls: int
    by_routine: dict

    @property
    def key(self):
        return self.path + (" + profilealloc" if self.profiled else "")


def classify(machine, counts, grew):
    """The path of one mallocgc call, from the routines and blocks it ran."""
    routines = counts.by_routine()
    entry = next((name for sym, name in ENTRY_PATHS if sym in routines), None)
    tiny_routine = "runtime.mallocgcTiny"
    for pattern, name in SC_PATHS:
        sc = next((m for m in map(pattern.match, routines) if m), None)
        if sc is None:
            continue
        if entry is None:          # the copy's own fast body
            entry, tiny_routine = f"{name} ({sc.group(1)})", sc.group(0)
        else:                      # forceSlowPath: the slow path ran the generic routine
            entry = f"{entry} ({sc.group(1)} slow path)"
        break
    if entry is None:
        return "zero-size"
    if entry == "large":
        return "large: heap growth (mmap)" if grew else "large"
    if entry.startswith("tiny") and machine.text.label(f"{tiny_routine}:newblock") not in counts.blocks:
        return f"{entry}: into the current block"
    if grew:
        sub = GROW
    elif counts.callouts.get("runtime.(*mcache).refill"):
        sub = REFILL
    elif routines.get("runtime.(*mcache).nextFree"):
        sub = RELOAD
    else:
        sub = HIT
    return f"{entry}{': new block' if entry.startswith('tiny') else ''}: {sub}"


def allocate_classified(machine, size, typ=0, needzero=True):
    """One mallocgc call, with its path and exact counts."""
    snap = machine.snapshot()
    nsys = len(machine.kernel.log)
    x = machine.mallocgc(size, typ, needzero)
    c = machine.counts_since(snap)
    syscalls = machine.kernel.log[nsys:]
    path = classify(machine, c, any(s.nr == SYS_MMAP for s in syscalls))
    reads, writes = c.memory_accesses()
    return PathSample(path, bool(c.callouts.get("runtime.profilealloc")), x, c.instructions, reads, writes,
                      c.callouts, len(syscalls), c.by_routine())


def survey(machine, size, n, typ=0):
    """Allocate n objects; group the samples by path (profiled ones apart)."""
    groups = {}
    for _ in range(n):
        s = allocate_classified(machine, size, typ)
        groups.setdefault(s.key, []).append(s)
    return groups


def path_sort_key(key):
    entry = next((i for i, (_, name) in enumerate(ENTRY_PATHS) if key.startswith(name)), -1)
    sub = next((i for i, name in enumerate(SUBPATH_ORDER) if name and name in key), 0)
    return entry, sub, key
