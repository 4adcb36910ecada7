"""runtime/mheap.go: type mspan, read and written in emulated memory.

An `MSpan` is a view: its fields live at Go 1.27's offsets (emu/layout.py)
in the machine's memory, where the allocator's machine code reads and updates
them. Python holds only the address.
"""

from emu.layout import MSpan as L
from runtime_model import sizeclasses as sc

# field -> (offset, width in bytes); widths from the Go declarations of mspan.
_FIELDS = {
    "next": 8, "prev": 8, "list": 8, "startAddr": 8, "npages": 8, "manualFreeList": 8,
    "freeindex": 2, "nelems": 2, "freeIndexForScan": 2, "allocCache": 8, "allocBits": 8,
    "gcmarkBits": 8, "pinnerBits": 8, "sweepgen": 4, "divMul": 4, "allocCount": 2,
    "spanclass": 1, "state": 1, "needzero": 1, "isUserArenaChunk": 1,
    "allocCountBeforeCache": 2, "elemsize": 8, "limit": 8, "largeType": 8,
}

MSPAN_DEAD, MSPAN_IN_USE, MSPAN_MANUAL = 0, 1, 2     # mheap.go: mSpanState


class MSpan:
    __slots__ = ("mem", "addr")

    def __init__(self, mem, addr):
        self.mem, self.addr = mem, addr

    def base(self):
        return self.startAddr

    def sizeclass(self):
        return self.spanclass >> 1

    def noscan(self):
        return bool(self.spanclass & 1)

    def __eq__(self, other):
        return isinstance(other, MSpan) and other.addr == self.addr

    def __hash__(self):
        return hash(self.addr)

    def __repr__(self):
        return (f"mspan@{self.addr:#x}(base={self.startAddr:#x} npages={self.npages} spc={self.spanclass} "
                f"elemsize={self.elemsize} nelems={self.nelems} freeindex={self.freeindex} "
                f"allocCount={self.allocCount} allocCache={self.allocCache:#018x})")

    def refill_alloc_cache(self, which_byte):
        """mbitmap.go: (*mspan).refillAllocCache: the next 64 alloc bits, inverted."""
        self.allocCache = ~self.mem.u64(self.allocBits + which_byte) & 0xFFFFFFFFFFFFFFFF

    def is_allocated(self, index):
        """The alloc bit of slot `index` (allocBits; freeindex and allocCache are not consulted)."""
        return bool(self.mem.u8(self.allocBits + index // 8) >> (index % 8) & 1)


def _field(off, width):
    get = {1: "u8", 2: "u16", 4: "u32", 8: "u64"}[width]
    put = {1: "w8", 2: "w16", 4: "w32", 8: "w64"}[width]
    return property(lambda s: getattr(s.mem, get)(s.addr + off),
                    lambda s, v: getattr(s.mem, put)(s.addr + off, v))


for _name, _w in _FIELDS.items():
    setattr(MSpan, _name, _field(getattr(L, _name), _w))


def gc_bits_bytes(nelems):
    """Bytes of an allocBits/gcmarkBits bitmap: whole uint64s (mheap.go: newMarkBits)."""
    return (nelems + 63) // 64 * 8


def span_inline_mark_bits_size():
    """mgcmark_greenteagc.go: sizeof(spanInlineMarkBits) = scans[63] + owned + marks[63] + class."""
    return 63 + 1 + 63 + 1


def uses_span_inline_mark_bits(elemsize):
    """mgcmark_greenteagc.go: gcUsesSpanInlineMarkBits (GOEXPERIMENT greenteagc, on in Go 1.27)."""
    return elemsize <= sc.MIN_SIZE_FOR_MALLOC_HEADER and elemsize >= 16


def nelems_for(sizeclass, noscan, npages):
    """Objects in a span of this class (mheap.go: initSpan, with GreenTeaGC's reserve)."""
    nbytes = npages * sc.PAGE_SIZE
    elemsize = sc.CLASS_TO_SIZE[sizeclass]
    reserve = 0
    if uses_span_inline_mark_bits(elemsize):
        reserve += span_inline_mark_bits_size()
    if elemsize <= sc.MIN_SIZE_FOR_MALLOC_HEADER and not noscan:    # heapBitsInSpan
        reserve += nbytes // 8 // 8
    return (nbytes - reserve) // elemsize
