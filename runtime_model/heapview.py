"""The heap's metadata read in bulk: spans, their fields and mark bits as numpy arrays.

Marking and sweeping touch millions of objects; reading each field through
Memory.u64 costs microseconds. A `HeapView` reads the same emulated memory
through zero-copy numpy views of the host backings (Memory.array): the heap
region, and the off-heap metadata (mheap_.arenas, heapArena, the mspan structs,
gcmarkBits), so a whole frontier of pointers is resolved to spans, objects and
mark bits with a few vectorised gathers (runtime_model/mgcmark.py: HeapMarker;
mgcsweep.py: sweep_spans, which reads and writes whole mspan records). Nothing is
cached across cycles: emulated memory stays the one place the state lives.
"""

import numpy as np

from emu.layout import HEAP_ARENA_BYTES, PAGE_SIZE, MSpan as L
from runtime_model.mspan import _FIELDS, INLINE_SCANS, MSPAN_IN_USE, span_inline_mark_bits_size
from runtime_model import sizeclasses as sc
from runtime_model.mheap import ARENA_BASE_OFFSET

PAGES_PER_ARENA = HEAP_ARENA_BYTES // PAGE_SIZE
ARENA_INDEX_BIAS = (-ARENA_BASE_OFFSET) % (1 << 64)  # arenaIndex(p) = (p - arenaBaseOffset) / heapArenaBytes, mod 2^64
INLINE_BITS = span_inline_mark_bits_size()           # bytes at the end of a small span's first page
HEAP_BITS_BYTES = PAGE_SIZE // 8 // 8                # mbitmap.go: one bit per word of a one-page span
_WIDTH_DTYPE = {1: "u1", 2: "<u2", 4: "<u4", 8: "<u8"}
# an mspan's fields as one numpy record (emu/layout.py's offsets, mspan.py's widths)
SPAN_RECORD = np.dtype({"names": list(_FIELDS), "formats": [_WIDTH_DTYPE[w] for w in _FIELDS.values()],
                        "offsets": [getattr(L, f) for f in _FIELDS], "itemsize": L.SIZE})


class HeapView:
    def __init__(self, mheap):
        self.h = mheap
        mem = mheap.mem
        self.mem = mem
        self.heap_base, self.heap8 = mem.array(mheap.env.heap_region.base, "u1")
        _, self.heap64 = mem.array(mheap.env.heap_region.base, "<u8")
        self.off_base, self.off8 = mem.array(mheap.arenas_l2, "u1")
        _, self.off16 = mem.array(mheap.arenas_l2, "<u2")
        _, self.off32 = mem.array(mheap.arenas_l2, "<u4")
        _, self.off64 = mem.array(mheap.arenas_l2, "<u8")
        self.heap_end = self.heap_base + len(self.heap8)
        # spans[k]: the bytes of the mspan at off_base + 8k (records overlap: an mspan is 8-byte
        # aligned), so one gather reads many spans and one scatter writes them back (as raw
        # bytes: numpy copies a record of many fields field by field, ten times slower)
        self.spans = np.ndarray(((len(self.off8) - L.SIZE) // 8 + 1,), dtype=f"V{L.SIZE}", buffer=self.off8,
                                strides=(8,))

    # ---- gathers -------------------------------------------------------------------------
    def field(self, spans, off, width):
        a = spans + off - self.off_base
        if width == 8:
            return self.off64[a >> 3]
        if width == 4:
            return self.off32[a >> 2]
        if width == 2:
            return self.off16[a >> 1]
        return self.off8[a]

    def h64(self, addrs):
        return self.heap64[(addrs - self.heap_base) >> 3]

    def read_spans(self, k):
        """The mspans at off_base + 8k as SPAN_RECORDs (a copy: write_spans stores it back)."""
        return self.spans[k].view(SPAN_RECORD)

    def write_spans(self, k, records):
        self.spans[k] = records.view(self.spans.dtype)


def inline_mark_bits(elemsize):
    """mgcmark_greenteagc.go: gcUsesSpanInlineMarkBits, vectorised."""
    # 16 <= elemsize <= minSizeForMallocHeader in one unsigned compare
    return (np.asarray(elemsize, dtype=np.uint64) - np.uint64(16)) <= np.uint64(sc.MIN_SIZE_FOR_MALLOC_HEADER - 16)


__all__ = ["HeapView", "inline_mark_bits", "INLINE_SCANS", "MSPAN_IN_USE", "HEAP_BITS_BYTES"]
