"""The collector's invariants, checked over the emulated heap (tests, `gomemu run --checked`).

Go checks these only in debug builds (gcMarkDone's gcMarkTinyAllocs/gccheckmark mode,
debug.gccheckmark=1: after marking, a second stop-the-world mark must find nothing new);
here they are a walk of the heap from the program's roots, independent of the marker's
queues and counters:

  reachable   every heap pointer reachable from the roots (registered root ranges, the
              program's data and bss through their pointer masks) points into an
              allocated slot of an in-use span, and, in a span not yet swept
              (sweepgen-2, or -1 while being swept), at a marked object: the collector
              never freed, and its sweep will not free, what the program can still reach;
  marked      (at mark termination, before the sweep) every object reachable from the
              roots is marked, and no mark bit is set on a free slot (a zombie the sweep
              would resurrect);
  spans       every span the heap handed out is sound (mheap.span_problems: its shape
              against its size class, allocCount against its bitmaps, sweepgen).

Objects are scanned as the marker scans them (HeapMarker.pointer_slots: heap bits, malloc
headers, large spans' types), without touching mark or scanned bits. Stack roots are
left out: the walk runs where the program keeps nothing on its stacks (between the
mutator's batches, at a cycle's end inside its call-outs).
"""

import numpy as np

from emu.errors import InvariantError
from runtime_model.mgcmark import MIN_LEGAL_POINTER, GcWork, HeapMarker
from runtime_model.mspan import MSPAN_IN_USE, MSpan


def root_slots(runtime):
    """Addresses of the root pointer words the walk starts from."""
    m = runtime.machine
    out = []
    if m.image is not None:
        tab = m.image.pclntab
        for start, mask in ((tab.module.data, tab.gcdata_mask()), (tab.module.bss, tab.gcbss_mask())):
            out.extend(start + 8 * i for i in mask.bits())
    for addr, n in runtime.gc.root_ranges:
        out.extend(range(addr, addr + 8 * n, 8))
    return np.asarray(out, dtype=np.uint64)


def reachable(runtime):
    """{object base: (span, slot index)} of every heap object reachable from the roots;
    InvariantError at the first reachable pointer into a free slot or a freed span, or to an
    unmarked object of an unswept span (whose mark bits are the last cycle's)."""
    mem, heap = runtime.mem, runtime.mheap
    unswept = {(heap.sweepgen - 2) & 0xFFFFFFFF, (heap.sweepgen - 1) & 0xFFFFFFFF}
    gcw, scanner = GcWork(heap), HeapMarker(runtime)
    lo, hi = runtime.machine.heap_region.base, runtime.machine.heap_region.end
    seen = {}
    slots = root_slots(runtime)
    while len(slots):
        values = mem.gather64(slots)
        keep = (values >= np.uint64(max(lo, MIN_LEGAL_POINTER))) & (values < np.uint64(hi))
        grey = []
        for slot, p in zip(slots[keep].tolist(), values[keep].tolist()):
            found = gcw.find_object(p)
            if found is None:
                s = heap.span_of(p)
                if s is None or s.state != MSPAN_IN_USE or not s.startAddr <= p < s.limit:
                    continue            # not a heap object's address at all (Go's findObject: nil)
                raise InvariantError(f"reachable pointer {p:#x} (in the word at {slot:#x}) is in slot "
                                     f"{s.obj_index(p)} of mspan {s.addr:#x}, which is free")
            obj, span, idx = found
            if obj in seen:
                continue
            if span.sweepgen in unswept and not span.is_marked(idx):
                raise InvariantError(f"reachable object {obj:#x} (in the word at {slot:#x}, slot {idx} of "
                                     f"unswept mspan {span.addr:#x}) is not marked: the sweep would free it")
            seen[obj] = (span, idx)
            if not span.noscan():
                grey.append(obj)
        if not grey:
            break
        _, slots, _ = scanner.pointer_slots(np.asarray(grey, dtype=np.uint64))
    return seen


def check_spans(runtime):
    heap = runtime.mheap
    for a in sorted(heap.live_mspans):
        if MSpan(runtime.mem, a).state == MSPAN_IN_USE:
            heap.check_span(a, "after a GC cycle")


def check_marks(runtime, live):
    """At mark termination: every reachable object marked; no mark on a free slot."""
    for obj, (span, idx) in live.items():
        if not span.is_marked(idx):
            raise InvariantError(f"reachable object {obj:#x} (slot {idx} of mspan {span.addr:#x}) is not "
                                 "marked at mark termination")
    mem = runtime.mem
    for a in sorted(runtime.mheap.live_mspans):
        s = MSpan(mem, a)
        if s.state != MSPAN_IN_USE:
            continue
        for i in range(s.nelems):
            if i >= s.freeindex and not s.is_allocated(i) and s.is_marked(i):
                raise InvariantError(f"slot {i} of mspan {a:#x} is free but marked (a zombie)")


class Checker:
    """The invariants at every cycle: Collector.checker = Checker() calls `marked` at mark
    termination (before gcSweep) and `swept` after it, when the spans wait to be swept
    (lazily, runtime_model/mgcsweep.py). Counts what it checked."""

    def __init__(self):
        self.cycles = 0
        self.objects = 0             # reachable objects seen at the last check

    def marked(self, runtime):
        check_marks(runtime, reachable(runtime))

    def swept(self, runtime):
        live = reachable(runtime)
        check_spans(runtime)
        self.cycles += 1
        self.objects = len(live)
