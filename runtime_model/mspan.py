"""runtime/mheap.go: type mspan, read and written in emulated memory.

An `MSpan` is a view: its fields live at Go 1.27's offsets (emu/layout.py)
in the machine's memory, where the allocator's machine code reads and updates
them. Python holds only the address.
"""

import struct

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
# mgcmark_greenteagc.go: spanInlineMarkBits {scans [63]uint8; owned uint8; marks [63]uint8; class uint8}
INLINE_SCANS, INLINE_OWNED, INLINE_MARKS, INLINE_CLASS = 0, 63, 64, 127


class MSpan:
    __slots__ = ("mem", "addr", "_b", "_o", "loc")

    def __init__(self, mem, addr, backing=None):
        self.mem, self.addr = mem, addr
        # the host backing that holds the struct (given, or found once): each field is then
        # one index into its typed view (emu/memory.py)
        self._b = b = backing or mem._backing(addr, L.SIZE)
        self._o = addr - b.base
        self.loc = (b.buf, self._o)     # the struct's place, as struct's *_from/_into take it

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

    def obj_index(self, p):
        """mbitmap.go: (*mspan).objIndex, by the size class's magic divisor."""
        return ((p - self.base()) * self.divMul) >> 32 if self.divMul else 0

    def inline_mark_bits(self):
        """mgcmark_greenteagc.go: the spanInlineMarkBits at the end of the span's first page."""
        return self.base() + sc.PAGE_SIZE - span_inline_mark_bits_size()

    def mark_bit(self, index):
        """mgcmark_greenteagc.go: markBitsForIndex: (byte address, mask) of the mark bit.
        Spans with inline mark bits keep marks there; others in gcmarkBits."""
        if uses_span_inline_mark_bits(self.elemsize):
            return self.inline_mark_bits() + INLINE_MARKS + index // 8, 1 << (index % 8)
        return self.gcmarkBits + index // 8, 1 << (index % 8)

    def scanned_bit(self, index):
        """mgcmark_greenteagc.go: scannedBitsForIndex (spans with inline mark bits only)."""
        return self.inline_mark_bits() + INLINE_SCANS + index // 8, 1 << (index % 8)

    def is_marked(self, index):
        a, mask = self.mark_bit(index)
        return bool(self.mem.u8(a) & mask)

    def set_bit(self, bit):
        a, mask = bit
        self.mem.w8(a, self.mem.u8(a) | mask)

    def heap_bits_range(self):
        """mbitmap.go: spanHeapBitsRange: (address, bytes) of the pointer bitmap of a
        one-page span of small scan objects, below the inline mark bits."""
        size = sc.PAGE_SIZE // 8 // 8
        base = self.base() + sc.PAGE_SIZE - size
        if uses_span_inline_mark_bits(self.elemsize):
            base -= span_inline_mark_bits_size()
        return base, size

    def init_heap_bits(self):
        """mbitmap.go: (*mspan).initHeapBits, then GreenTeaGC's initInlineMarkBits."""
        spc, needzero, elemsize = _HEAP_BITS_FIELDS.unpack(*self.loc)
        if not span_has_bits(spc, elemsize):
            return                              # a header, a large type or no pointers: no bits
        heap_bits = not spc & 1 and elemsize <= sc.MIN_SIZE_FOR_MALLOC_HEADER
        inline = uses_span_inline_mark_bits(elemsize)
        b = self.mem._backing(self.startAddr, sc.PAGE_SIZE)     # both in the span's first page
        if inline:
            o = self.inline_mark_bits() - b.base
            if needzero:
                b.buf[o:o + span_inline_mark_bits_size()] = bytes(span_inline_mark_bits_size())
            b.b[o + INLINE_CLASS] = spc
        if heap_bits:
            a, n = self.heap_bits_range()
            a -= b.base                         # 8-byte objects: every word is a pointer
            b.buf[a:a + n] = (b"\xff" if spc >> 1 == 1 else b"\x00") * n

    def is_allocated(self, index):
        """The alloc bit of slot `index` (allocBits; freeindex and allocCache are not consulted)."""
        return bool(self.mem.u8(self.allocBits + index // 8) >> (index % 8) & 1)


def _fields_struct(wanted=None):
    """A struct.Struct over the whole mspan holding the fields `wanted` (all when None),
    in offset order, and their names; the bytes between them are pad bytes, which
    pack writes as zero."""
    fmt, at, names = "<", 0, []
    for name, width in sorted(_FIELDS.items(), key=lambda f: getattr(L, f[0])):
        if wanted is not None and name not in wanted:
            continue
        off = getattr(L, name)
        fmt += "x" * (off - at) + {1: "B", 2: "H", 4: "I", 8: "Q"}[width]
        at = off + width
        names.append(name)
    return struct.Struct(fmt + "x" * (L.SIZE - at)), names


_ALL, _ALL_NAMES = _fields_struct()


def span_fields(mem, addr):
    """Every field of the mspan at addr, as {name: value}, from one read."""
    return dict(zip(_ALL_NAMES, _ALL.unpack(mem.read(addr, L.SIZE))))


class SpanFields:
    """Some fields of an mspan in one struct call: `unpack(*s.loc)` reads them from MSpan s
    (a tuple, one C call instead of a property call per field), `write(*s.loc, *values)`
    packs a whole mspan, the named fields and every other byte zero (the pad bytes of its
    struct). The names are given in offset order, so the values go straight into and out
    of the struct."""

    def __init__(self, *names):
        if list(names) != sorted(names, key=lambda n: getattr(L, n)) or not set(names) <= _FIELDS.keys():
            raise ValueError(f"SpanFields{names}: mspan fields in offset order expected")
        self.names = names
        self._struct, _ = _fields_struct(set(names))
        self.unpack = self._struct.unpack_from
        self.write = self._struct.pack_into


def _field(off, width):
    """A property over the field's aligned slot in the backing's typed view (mspan's fields
    are naturally aligned and the struct is 8-aligned). Setters store with one subscript
    (not a lambda calling __setitem__) and wrap the value only when the view refuses it."""
    if width == 8:
        i = off >> 3

        def get(s):
            return s._b.q[(s._o >> 3) + i]

        def set_(s, v):
            try:
                s._b.q[(s._o >> 3) + i] = v
            except (ValueError, TypeError):
                s._b.q[(s._o >> 3) + i] = v & 0xFFFFFFFFFFFFFFFF
    elif width == 4:
        i = off >> 2

        def get(s):
            return s._b.i[(s._o >> 2) + i]

        def set_(s, v):
            try:
                s._b.i[(s._o >> 2) + i] = v
            except (ValueError, TypeError):
                s._b.i[(s._o >> 2) + i] = v & 0xFFFFFFFF
    elif width == 2:
        i = off >> 1

        def get(s):
            return s._b.h[(s._o >> 1) + i]

        def set_(s, v):
            try:
                s._b.h[(s._o >> 1) + i] = v
            except (ValueError, TypeError):
                s._b.h[(s._o >> 1) + i] = v & 0xFFFF
    else:
        def get(s):
            return s._b.b[s._o + off]

        def set_(s, v):
            try:
                s._b.b[s._o + off] = v
            except (ValueError, TypeError):
                s._b.b[s._o + off] = v & 0xFF
    return property(get, set_)


for _name, _w in _FIELDS.items():
    setattr(MSpan, _name, _field(getattr(L, _name), _w))

_HEAP_BITS_FIELDS = SpanFields("spanclass", "needzero", "elemsize")      # initHeapBits reads

# Indices of fields the allocation paths store, in the typed view of their width, from the
# struct's offset: `s._b.i[(s._o >> 2) + SWEEPGEN_I] = v` stores without a property call
# (for a value the field holds: the view refuses others).
SWEEPGEN_I = L.sweepgen >> 2
FREEINDEX_H, FREE_INDEX_FOR_SCAN_H, NELEMS_H = L.freeindex >> 1, L.freeIndexForScan >> 1, L.nelems >> 1
ALLOC_COUNT_H, ALLOC_COUNT_BEFORE_CACHE_H = L.allocCount >> 1, L.allocCountBeforeCache >> 1
ALLOC_CACHE_Q, ALLOC_BITS_Q, GCMARK_BITS_Q = L.allocCache >> 3, L.allocBits >> 3, L.gcmarkBits >> 3
LIMIT_Q = L.limit >> 3
STATE_B, NEEDZERO_B = L.state, L.needzero


def gc_bits_bytes(nelems):
    """Bytes of an allocBits/gcmarkBits bitmap: whole uint64s (mheap.go: newMarkBits)."""
    return (nelems + 63) // 64 * 8


def span_inline_mark_bits_size():
    """mgcmark_greenteagc.go: sizeof(spanInlineMarkBits) = scans[63] + owned + marks[63] + class."""
    return 63 + 1 + 63 + 1


def span_has_bits(spanclass, elemsize):
    """initHeapBits writes something in a span of this class and object size: heap bits
    (small scan objects, mbitmap.go: heapBitsInSpan) or inline mark bits."""
    return (not spanclass & 1 and elemsize <= sc.MIN_SIZE_FOR_MALLOC_HEADER) or uses_span_inline_mark_bits(elemsize)


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
