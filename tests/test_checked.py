"""Checked mode (Machine(checked=True), the default): Go's doubleCheckMalloc and
debug.invalidptr in spirit.

The fast paths stay pure machine code; what they rely on (every field of the cached
spans, the size-class tables in emulated memory, p.wbBuf) is validated where machine
code and Python meet: the call-outs, the addresses Python gets back from mallocgc,
the spans Python takes back from the mcache, and after a fault.
"""

import pytest

from emu import layout as L
from emu.errors import EmulationFault, InvariantError
from emu.machine import Machine
from runtime_model import sizeclasses as sc
from runtime_model.mgcsweep import finish_cycle
from runtime_model.mspan import MSpan

SPC16 = sc.make_span_class(sc.size_to_class(16), True)


def cached(m, spc=SPC16):
    return MSpan(m.mem, m.mem.u64(m.runtime.mcache + L.MCache.alloc + 8 * spc))


# (field, value, what the message must say: the field with the value it holds when found)
CORRUPTIONS = [
    ("elemsize", 0, r"elemsize = 0, .*16"),            # mallocgc would return the same address every time
    ("startAddr", 0x401000, r"startAddr = 0x401000 .*heap"),   # ... addresses in the text segment
    ("nelems", 0xFFFF, r"nelems = 65535, .*504"),      # ... slots past the span's end
    ("state", 0, r"state = 0 .*mSpanInUse"),
    ("spanclass", 9, r"spanclass = 9, .*5"),
    ("limit", 0, r"limit = 0x0, "),
    ("divMul", 0, rf"divMul = 0, .*{sc.CLASS_TO_DIVMAGIC[2]}"),
    ("npages", 3, r"npages = 3, .*1"),
    ("allocCount", 300, r"allocCount = 301, "),        # found after the next allocation counted itself
    ("allocCache", 0x5555, r"allocCache = 0x2aaa, "),  # ... shifted past the slot it handed out
    ("allocBits", 0, r"allocBits = 0x0 "),
    ("sweepgen", 7, r"sweepgen = 7, "),
]


@pytest.mark.parametrize("field, value, says", CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_a_corrupted_cached_span_is_reported_with_its_field_and_value(field, value, says):
    m = Machine()
    m.mallocgc(16)
    s = cached(m)
    setattr(s, field, value)
    with pytest.raises(InvariantError, match=says) as e:
        m.mallocgc(16)
    assert f"mspan {s.addr:#x}" in str(e.value)


@pytest.mark.parametrize("field, value, says", CORRUPTIONS[:3], ids=[c[0] for c in CORRUPTIONS[:3]])
def test_the_machine_code_loop_meets_a_corrupted_span_at_its_next_refill(field, value, says):
    """malloc_batch allocates without Python; the refill call-out checks the span it
    takes back (and the batch's end checks the mcache)."""
    m = Machine()
    m.mallocgc(16)
    s = cached(m)
    setattr(s, field, value)
    with pytest.raises(InvariantError, match=says):
        m.malloc_batch([16] * 600)


def test_unchecked_the_fast_path_does_not_notice():
    """Machine(checked=False), as in the benchmarks: nothing but machine code runs. (96 B:
    the generic path, which reads span.elemsize; the size-specialised copies have it as a
    constant.)"""
    m = Machine(checked=False)
    x = m.mallocgc(96)
    s = m.runtime.mheap.span_of(x)
    s.elemsize = 0
    assert {m.mallocgc(96) for _ in range(3)} == {s.base()}


TABLES = ["SizeClassToSize", "SizeClassToNPages", "SizeClassToDivMagic", "SizeToSizeClass8",
          "SizeToSizeClass128"]


@pytest.mark.parametrize("table", TABLES)
def test_a_zeroed_size_class_table_is_reported_by_name_and_entry(table):
    m = Machine()
    m.mallocgc(16)
    sym = f"internal/runtime/gc.{table}"
    size = next(s.size for s in L.DATA_SYMBOLS if s.name == sym)
    m.mem.fill(m.symbol(sym), size)
    with pytest.raises(InvariantError, match=rf"gc\.{table}\[\d+\] = 0 .*Go's is [1-9]"):
        m.mallocgc(16)


def test_a_zeroed_size_to_class_table_is_named_even_on_the_refill_path():
    """Zeroed SizeToSizeClass8 sends mallocgc to span class 1; without checks the
    refill call-out fails deep in the page cache (npages must be positive)."""
    m = Machine()
    m.mem.fill(m.symbol("internal/runtime/gc.SizeToSizeClass8"), len(sc.SIZE_TO_CLASS8))
    with pytest.raises(InvariantError, match="SizeToSizeClass8"):
        m.malloc_batch([16] * 10)


def test_a_corrupted_span_pointer_is_named_after_the_fault_it_causes():
    m = Machine()
    m.mallocgc(16)
    slot = m.runtime.mcache + L.MCache.alloc + 8 * SPC16
    m.mem.w64(slot, 0xDEAD0000)
    with pytest.raises(InvariantError, match=r"mcache\.alloc\[5\] = 0xdead0000 .*not an mspan") as e:
        m.mallocgc(16)
    assert isinstance(e.value.__cause__, EmulationFault)


def test_a_corrupted_empty_span_is_reported():
    m = Machine()
    MSpan(m.mem, m.runtime.emptymspan).nelems = 8
    with pytest.raises(InvariantError, match="emptymspan.*nelems = 8"):
        m.mallocgc(16)


def test_a_broken_write_barrier_buffer_is_reported_at_the_flush():
    m = Machine()
    slot, p = m.mallocgc(8, m.runtime.new_type(8, (0,))), m.mallocgc(16)
    wb = m.symbol("runtime.p0") + L.P.wbBuf
    m.mem.w64(wb + L.WBBuf.end, wb + L.WBBuf.buf + 16)      # a buffer two entries long
    m.set_write_barrier(True)
    m.store_pointer(slot, p)
    with pytest.raises(InvariantError, match="wbBuf.end"):
        m.store_pointer(slot, p)
    m.store_pointer(slot, p)                                 # the failed call reset the buffer
    assert m.wbbuf() == [p, p]


def test_a_span_that_leaves_the_mcache_is_checked():
    """finish_cycle flushes the mcache: the spans Python takes back are validated first."""
    m = Machine()
    m.mallocgc(16)
    cached(m).limit = 1
    with pytest.raises(InvariantError, match="limit"):
        finish_cycle(m.runtime, [])


def test_checked_mode_is_the_default_and_accepts_every_path():
    m = Machine()
    assert m.checked
    new_type = m.runtime.new_type
    for size, typ in [(8, 0), (16, 0), (24, new_type(24, (0, 2))), (600, new_type(600, (0,))), (5000, 0),
                      (40_000, new_type(40_000, (1,))), (100_000, 0), (0, 0)]:
        for _ in range(3):
            m.mallocgc(size, typ)
    m.malloc_batch([16, 32, 48] * 400)
    finish_cycle(m.runtime, [])
    m.mallocgc(16)


def test_the_heap_fields_python_keeps_are_checked_against_mheap_in_memory():
    """mheap_.sweepgen and pagesInUse live in emulated memory, where machine code reads
    them; the model keeps them too and writes them through. A refill compares the two."""
    m = Machine()
    m.mallocgc(4096)
    m.mem.w32(m.symbol("runtime.mheap_") + L.MHeap.sweepgen, 9)
    with pytest.raises(InvariantError, match=r"mheap_.sweepgen = 9 in memory, but the heap model holds 0"):
        m.malloc_batch([4096] * 4)
