"""The heap's metadata read in bulk: spans, their fields and mark bits as numpy arrays.

Marking and sweeping touch millions of objects; reading each field through
Memory.u64 costs microseconds. A `HeapView` reads the same emulated memory
through zero-copy numpy views of the host backings (Memory.array): the arena
index and heapArena.spans (mheap.go: spanOf), the mspan structs, mark bits
and heap bits, so a whole frontier of pointers is resolved to spans, objects
and mark bits with a few vectorised gathers. Nothing is cached across cycles:
emulated memory stays the one place the state lives.
"""

import numpy as np

from emu.layout import HEAP_ARENA_BYTES, HeapArena, PAGE_SIZE
from emu.layout import MSpan as S
from runtime_model.mspan import INLINE_MARKS, INLINE_SCANS, MSPAN_IN_USE, span_inline_mark_bits_size
from runtime_model import sizeclasses as sc
from runtime_model.mheap import ARENA_BASE_OFFSET

PAGES_PER_ARENA = HEAP_ARENA_BYTES // PAGE_SIZE
ARENA_INDEX_BIAS = (-ARENA_BASE_OFFSET) % (1 << 64)  # arenaIndex(p) = (p - arenaBaseOffset) / heapArenaBytes, mod 2^64
INLINE_BITS = span_inline_mark_bits_size()           # bytes at the end of a small span's first page
HEAP_BITS_BYTES = PAGE_SIZE // 8 // 8                # mbitmap.go: one bit per word of a one-page span


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

    # ---- gathers -------------------------------------------------------------------------
    def o64(self, addrs):
        return self.off64[(addrs - self.off_base) >> 3]

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

    # ---- spanOf ----------------------------------------------------------------------------
    def span_of(self, p):
        """mheap.go: spanOf for an array of addresses: the mspan address of each (0 where
        none: outside the heap arenas or on a page no span holds)."""
        p = np.asarray(p, dtype=np.uint64)
        out = np.zeros(len(p), dtype=np.uint64)
        inheap = (p >= self.heap_base) & (p < self.heap_end)
        idx = np.flatnonzero(inheap)
        if not len(idx):
            return out
        q = p[idx]
        ai = (q + np.uint64(ARENA_INDEX_BIAS)) // np.uint64(HEAP_ARENA_BYTES)
        ha = self.o64(np.uint64(self.h.arenas_l2) + ai * np.uint64(8))
        ok = ha != 0
        page = (q // np.uint64(PAGE_SIZE)) % np.uint64(PAGES_PER_ARENA)
        s = np.zeros(len(q), dtype=np.uint64)
        s[ok] = self.o64(ha[ok] + np.uint64(HeapArena.spans) + page[ok] * np.uint64(8))
        out[idx] = s
        return out

    def spans_fields(self, spans):
        """The fields marking needs of an array of (non-zero) span addresses."""
        f = self.field
        return {
            "base": f(spans, S.startAddr, 8), "limit": f(spans, S.limit, 8), "elemsize": f(spans, S.elemsize, 8),
            "nelems": f(spans, S.nelems, 2), "divMul": f(spans, S.divMul, 4), "spanclass": f(spans, S.spanclass, 1),
            "state": f(spans, S.state, 1), "gcmarkBits": f(spans, S.gcmarkBits, 8),
            "largeType": f(spans, S.largeType, 8),
        }


def inline_mark_bits(elemsize):
    """mgcmark_greenteagc.go: gcUsesSpanInlineMarkBits, vectorised."""
    return (elemsize >= 16) & (elemsize <= sc.MIN_SIZE_FOR_MALLOC_HEADER)


def mark_byte_addr(base, gcmarkbits, elemsize, idx):
    """(address, mask) of each object's mark bit: the span's inline mark bits for small
    objects (GreenTeaGC), gcmarkBits otherwise (mspan.py: mark_bit)."""
    inline = inline_mark_bits(elemsize)
    inl = base + np.uint64(PAGE_SIZE - INLINE_BITS + INLINE_MARKS) + idx // np.uint64(8)
    out = np.where(inline, inl, gcmarkbits + idx // np.uint64(8))
    return out, (np.uint8(1) << (idx % np.uint64(8)).astype(np.uint8)), inline


__all__ = ["HeapView", "mark_byte_addr", "inline_mark_bits", "INLINE_SCANS", "MSPAN_IN_USE", "HEAP_BITS_BYTES"]
