"""Scan work (gcw.heapScanWork) as Go 1.27's scanObject counts it: for each object, from
the object's start (b) through its last pointer word, `scanSize = addr - b + PtrSize`
(runtime/mgcmark_greenteagc.go, mgcmark_nogreenteagc.go: scanObject). An object with a
malloc header starts with the header word, so its data's word w ends at 8 + 8*(w+1)
bytes from the start; a large object (the span keeps its type) and an object whose
heap bits sit in its span have no header: word w ends at 8*(w+1)."""

import pytest

from emu.machine import Machine
from runtime_model import sizeclasses as sc
from runtime_model.mgcmark import HeapMarker

PTR = 8


def scan_work(size, pointer_word, count=1):
    """Scan work of marking and scanning `count` objects of `size` bytes, each with one
    pointer, at `pointer_word`."""
    m = Machine()
    t = m.runtime.new_type(size, (pointer_word,))
    objs = [m.mallocgc(size, t) for _ in range(count)]
    marker = HeapMarker(m.runtime)
    marker.shade(objs)
    return marker.drain()


def test_object_with_a_malloc_header_counts_its_header_word():
    # 1016 bytes of data + the 8-byte header fill the 1024-byte class: one copy of the type
    size = 1024 - sc.MALLOC_HEADER_SIZE
    assert size + sc.MALLOC_HEADER_SIZE > sc.MIN_SIZE_FOR_MALLOC_HEADER       # it has a header
    addr_minus_b = sc.MALLOC_HEADER_SIZE + 5 * PTR
    assert scan_work(size, 5) == addr_minus_b + PTR


def test_several_objects_with_headers_count_the_header_each():
    size = 2048 - sc.MALLOC_HEADER_SIZE
    assert scan_work(size, 0, count=3) == 3 * (sc.MALLOC_HEADER_SIZE + 0 * PTR + PTR)


def test_large_object_has_no_header():
    size = 5 * 8192                       # a large span of exactly the object: one copy
    assert size > sc.MAX_SMALL_SIZE
    assert scan_work(size, 7) == 7 * PTR + PTR


def test_a_partial_copy_of_the_type_at_the_objects_end_is_scanned():
    # 600 bytes + the header fill the 640-byte class: 632 bytes of data, a whole copy of the
    # type and 32 bytes of a second one, whose word 0 (data word 75) typePointers.next
    # still yields, its limit being the object's end
    assert sc.CLASS_TO_SIZE[sc.size_to_class(600 + sc.MALLOC_HEADER_SIZE)] == 640
    assert scan_work(600, 0) == sc.MALLOC_HEADER_SIZE + 75 * PTR + PTR


@pytest.mark.parametrize("size, word", [(64, 2), (512, 63)])
def test_object_with_heap_bits_has_no_header(size, word):
    assert size <= sc.MIN_SIZE_FOR_MALLOC_HEADER
    assert scan_work(size, word) == word * PTR + PTR
