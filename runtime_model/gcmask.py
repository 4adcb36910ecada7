"""runtime/type.go: the GC pointer masks of type descriptors (getGCMask, getGCMaskOnDemand,
buildGCMask).

A type's GCData is a bitmap, one bit per word of its first PtrBytes bytes. For
large types the linker sets TFlagGCMaskOnDemand and GCData points to a slot in
bss instead: the runtime builds the bitmap on first use (persistentalloc) from
the type's structure (array elements, struct fields) and stores it there. Both
the allocator's machine code (writeHeapBitsSmall, via the call-out) and the
collector's scanning read masks through here.
"""

import numpy as np

from emu.errors import InvariantError
from emu.layout import Type

TFLAG_GC_MASK_ON_DEMAND = 1 << 4       # internal/abi/type.go: TFlagGCMaskOnDemand
KIND_ARRAY, KIND_STRUCT = 17, 25       # internal/abi/type.go: Array, Struct
KIND_MASK = 0x1F
ARRAY_ELEM, ARRAY_LEN = 48, 64         # ArrayType{Type; Elem *Type; Slice *Type; Len uintptr}
STRUCT_FIELDS = 56                     # StructType{Type; PkgPath Name; Fields []StructField}
STRUCT_FIELD_SIZE, FIELD_TYP, FIELD_OFFSET = 24, 8, 16   # StructField{Name Name; Typ *Type; Offset uintptr}


def pointer_words(mem, typ):
    """Indexes of the pointer words in the first PtrBytes of a value of type typ (a numpy
    int64 array), from GCData or, for on-demand types, from the type's structure."""
    nwords = mem.u64(typ + Type.PtrBytes) // 8
    if nwords == 0:
        return np.zeros(0, dtype=np.int64)
    bits = np.zeros(nwords, dtype=bool)
    _build(mem, typ, bits, 0, depth=0)
    return np.flatnonzero(bits)


def _build(mem, t, bits, at, depth):
    """type.go: buildGCMask: the mask of t written into bits from word `at`."""
    if depth > 128:
        raise InvariantError(f"type {t:#x}: GC mask nests too deep")
    ptr_words = mem.u64(t + Type.PtrBytes) // 8
    if ptr_words == 0:
        return
    if not mem.u8(t + Type.TFlag) & TFLAG_GC_MASK_ON_DEMAND:
        mask = mem.read(mem.u64(t + Type.GCData), -(-ptr_words // 8))
        row = np.unpackbits(np.frombuffer(mask, dtype=np.uint8), bitorder="little")[:ptr_words].astype(bool)
        n = min(ptr_words, len(bits) - at)
        bits[at:at + n] |= row[:n]
        return
    kind = mem.u8(t + Type.Kind_) & KIND_MASK
    if kind == KIND_ARRAY:
        elem, n = mem.u64(t + ARRAY_ELEM), mem.u64(t + ARRAY_LEN)
        esize = mem.u64(elem + Type.Size_) // 8
        if mem.u64(elem + Type.PtrBytes) == 0 or n == 0:
            return
        sub = np.zeros(esize, dtype=bool)
        _build(mem, elem, sub, 0, depth + 1)
        reps = min(n, -(-(len(bits) - at) // max(esize, 1)))
        tiled = np.tile(sub, reps)[:len(bits) - at]
        bits[at:at + len(tiled)] |= tiled
    elif kind == KIND_STRUCT:
        fields, nf = mem.u64(t + STRUCT_FIELDS), mem.u64(t + STRUCT_FIELDS + 8)
        for i in range(nf):
            f = fields + i * STRUCT_FIELD_SIZE
            ft = mem.u64(f + FIELD_TYP)
            if mem.u64(ft + Type.PtrBytes):
                _build(mem, ft, bits, at + mem.u64(f + FIELD_OFFSET) // 8, depth + 1)
    else:
        raise InvariantError(f"type {t:#x}: a GC mask on demand for kind {kind}")


def mask_on_demand(machine, typ):
    """type.go: getGCMaskOnDemand: the mask of a large type, built once into persistentalloc
    memory and kept in the slot GCData points to. Returns the mask's address."""
    mem = machine.mem
    slot = mem.u64(typ + Type.GCData)
    p = mem.u64(slot)
    if p:
        return p
    nwords = mem.u64(typ + Type.PtrBytes) // 8
    nbytes = 8 * -(-nwords // 64)
    p = machine.persistentalloc(nbytes, 8)
    bits = np.zeros(nbytes * 8, dtype=bool)
    words = pointer_words(mem, typ)
    bits[words] = True
    mem.write(p, np.packbits(bits, bitorder="little").tobytes())
    mem.w64(slot, p)
    return p
