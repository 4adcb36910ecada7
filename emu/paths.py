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

from unicorn.x86_const import UC_X86_REG_RAX

from emu.layout import MCache
from emu.syscalls import SYS_MMAP

MAX_TINY_SIZE = 16        # malloc.go: maxTinySize, the tiny block

ENTRY_PATHS = [
    ("runtime.mallocgcTiny", "tiny"),
    ("runtime.mallocgcSmallNoscan", "small noscan"),
    ("runtime.mallocgcSmallScanNoHeader", "small scan, heap bits"),
    ("runtime.mallocgcSmallScanHeader", "small scan, malloc header"),
    ("runtime.mallocgcLarge", "large"),
]
# Go 1.27's size-specialised copies: routine pattern -> path. A copy that took
# forceSlowPath runs its slow path (the real runtime's mallocgc*SlowPath, or a generic
# routine in the handwritten machine).
SC_PATHS = [
    (re.compile(r"runtime\.mallocgcTiny(SC\d+)$"), "tiny"),
    (re.compile(r"runtime\.mallocgcSmallNoScan(SC\d+)$"), "small noscan"),
    (re.compile(r"runtime\.mallocgcSmallScanNoHeader(SC\d+)$"), "small scan, heap bits"),
]
SLOW_PATHS = {"runtime.mallocgcTinySlowPath", "runtime.mallocgcSmallNoScanSlowPath",
              "runtime.mallocgcSmallScanSlowPath"}
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


def classify(machine, counts, grew, tiny_block=0, x=0):
    """The path of one mallocgc call, from the routines it ran and what it returned.
    tiny_block: mcache.tiny before the call (an object inside it came from the block)."""
    routines = counts.by_routine()
    entry = next((name for sym, name in ENTRY_PATHS if sym in routines), None)
    for pattern, name in SC_PATHS:
        sc = next((m for m in map(pattern.match, routines) if m), None)
        if sc is None:
            continue
        if entry is None and not SLOW_PATHS & set(routines):    # the copy's own fast body
            entry = f"{name} ({sc.group(1)})"
        else:
            entry = f"{entry or name} ({sc.group(1)} slow path)"
        break
    if entry is None:
        return "zero-size"
    if entry == "large":
        return "large: heap growth (mmap)" if grew else "large"
    if entry.startswith("tiny") and tiny_block and tiny_block <= x < tiny_block + MAX_TINY_SIZE:
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


def measure_call(machine, run):
    """Run one allocation call (`run()` runs it to its return) and classify it."""
    snap = machine.snapshot()
    nsys = len(machine.kernel.log)
    tiny = machine.mem.u64(machine.runtime.mcache + MCache.tiny)
    run()
    x = machine.regs.read(UC_X86_REG_RAX)
    c = machine.counts_since(snap)
    syscalls = machine.kernel.log[nsys:]
    path = classify(machine, c, any(s.nr == SYS_MMAP for s in syscalls), tiny, x)
    reads, writes = c.memory_accesses()
    profiled = bool(c.callouts.get("runtime.profilealloc") or c.callouts.get("runtime.mProf_Malloc"))
    return PathSample(path, profiled, x, c.instructions, reads, writes, c.callouts, len(syscalls),
                      c.by_routine())


def allocate_classified(machine, size, typ=0, needzero=True):
    """One mallocgc call, with its path and exact counts."""
    return measure_call(machine, lambda: machine.mallocgc(size, typ, needzero))


def allocation_entries(machine):
    """The routines an allocation enters the allocator through: mallocgc, and the
    size-specialised copies the compiler calls directly for small fixed sizes."""
    return sorted(name for name in machine.symbols
                  if name == "runtime.mallocgc" or any(p.match(name) for p, _ in SC_PATHS))


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
