"""Go's size classes, computed the way Go computes them.

Models `runtime/_mkmalloc/mksizeclasses.go` (the generator of
`internal/runtime/gc/sizeclasses.go`): classes are derived from the alignment
and waste rules, not typed in. `tests/test_sizeclasses.py` checks the result
against the table in the installed Go 1.27 source.
"""

from dataclasses import dataclass

# internal/runtime/gc/sizeclasses.go constants (generated there from these inputs).
MIN_HEAP_ALIGN = 8          # minHeapAlign
MAX_SMALL_SIZE = 32768      # maxSmallSize
SMALL_SIZE_DIV = 8          # smallSizeDiv
SMALL_SIZE_MAX = 1024       # smallSizeMax
LARGE_SIZE_DIV = 128        # largeSizeDiv
PAGE_SHIFT = 13             # pageShift
PAGE_SIZE = 1 << PAGE_SHIFT
TINY_SIZE = 16              # tinySize (maxTinySize in malloc.go)
NUM_SIZE_CLASSES = 68       # gc.NumSizeClasses
MALLOC_HEADER_SIZE = 8      # gc.MallocHeaderSize
MAX_SMALL_NOSCAN = MAX_SMALL_SIZE - MALLOC_HEADER_SIZE  # mallocgc's bound for the small paths
MIN_SIZE_FOR_MALLOC_HEADER = 8 * 64  # gc.MinSizeForMallocHeader: ptrSize * ptrBits


@dataclass(frozen=True)
class SizeClass:
    index: int
    size: int       # gc.SizeClassToSize
    npages: int     # gc.SizeClassToNPages
    divmagic: int   # gc.SizeClassToDivMagic: ^uint32(0)/size + 1


def _pow2(x):
    return x != 0 and x & (x - 1) == 0


def _make_classes():
    """mksizeclasses.go: makeClasses."""
    sizes = [(0, 0)]  # class 0 is the dummy entry for large objects
    align = MIN_HEAP_ALIGN
    size = align
    while size <= MAX_SMALL_SIZE:
        if _pow2(size):  # alignment grows with the size
            if size >= 2048:
                align = 256
            elif size >= 128:
                align = size // 8
            elif size >= 32:
                align = 16
        # Smallest span (in pages) whose tail waste is at most 1/8.
        allocsize = PAGE_SIZE
        while allocsize % size > allocsize // 8:
            allocsize += PAGE_SIZE
        npages = allocsize // PAGE_SIZE
        prev_size, prev_npages = sizes[-1]
        if len(sizes) > 1 and npages == prev_npages and allocsize // size == allocsize // prev_size:
            sizes[-1] = (size, npages)  # same span, same count: keep only the larger size
        else:
            sizes.append((size, npages))
        size += align
    # Grow each class to the largest size that fits the same number of objects.
    out = []
    for i, (size, npages) in enumerate(sizes):
        if i:
            psize = npages * PAGE_SIZE
            size = max(size, (psize // (psize // size)) & ~(LARGE_SIZE_DIV - 1))
        out.append((size, npages))
    if len(out) != NUM_SIZE_CLASSES:
        raise AssertionError(f"size-class algorithm produced {len(out)} classes, Go has {NUM_SIZE_CLASSES}")
    return [SizeClass(i, s, n, (0xFFFFFFFF // s + 1) if s else 0) for i, (s, n) in enumerate(out)]


CLASSES = _make_classes()
CLASS_TO_SIZE = [c.size for c in CLASSES]
CLASS_TO_NPAGES = [c.npages for c in CLASSES]
CLASS_TO_DIVMAGIC = [c.divmagic for c in CLASSES]


def _first_class_at_least(size):
    return next(c.index for c in CLASSES if c.size >= size)


# gc.SizeToSizeClass8 and gc.SizeToSizeClass128 (mksizeclasses.go: printClasses).
SIZE_TO_CLASS8 = [_first_class_at_least(i * SMALL_SIZE_DIV) for i in range(SMALL_SIZE_MAX // SMALL_SIZE_DIV + 1)]
SIZE_TO_CLASS128 = [_first_class_at_least(SMALL_SIZE_MAX + i * LARGE_SIZE_DIV)
                    for i in range((MAX_SMALL_SIZE - SMALL_SIZE_MAX) // LARGE_SIZE_DIV + 1)]
TINY_SIZE_CLASS = _first_class_at_least(TINY_SIZE)


def size_to_class(size):
    """The class mallocgc's small paths pick for `size` (malloc.go: mallocgcSmallNoscan)."""
    if not 0 < size <= MAX_SMALL_SIZE:
        raise ValueError(f"size {size} is not a small-object size (1..{MAX_SMALL_SIZE})")
    if size <= SMALL_SIZE_MAX - 8:
        return SIZE_TO_CLASS8[(size + SMALL_SIZE_DIV - 1) // SMALL_SIZE_DIV]
    return SIZE_TO_CLASS128[(size - SMALL_SIZE_MAX + LARGE_SIZE_DIV - 1) // LARGE_SIZE_DIV]


def make_span_class(sizeclass, noscan):
    """mheap.go: makeSpanClass: class<<1 | noscan."""
    return (sizeclass << 1) | int(bool(noscan))
