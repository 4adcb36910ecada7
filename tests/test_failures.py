"""A failed call leaves the machine as it was between calls.

Go dies on a fatal error; the emulated process must not: after an out-of-memory,
a fault in machine code, an error in a Python slow path or an abandoned stepped
call, the next call behaves as if the failed one had never started.
"""

import pytest
from unicorn.x86_const import UC_X86_REG_RAX

from emu import layout as L
from emu.errors import BadInput, EmulationFault
from emu.machine import Machine
from runtime_model.mem_linux import OSCall, RuntimeThrow
from runtime_model.mgcsweep import finish_cycle
from runtime_model.sizeclasses import make_span_class, size_to_class

TINY_SPC = 5          # makeSpanClass(tinySizeClass, true): where 16-byte noscan objects come from


def m0_state(m):
    m0 = m.symbol("runtime.m0")
    return {"mallocing": m.mem.u32(m0 + L.M.mallocing), "locks": m.mem.u32(m0 + L.M.locks),
            "curg": m.mem.u64(m0 + L.M.curg), "tls": m.mem.u64(m0 + L.M.tls)}


def assert_idle(m):
    g0 = m.symbol("runtime.g0")
    assert m0_state(m) == {"mallocing": 0, "locks": 0, "curg": g0, "tls": g0}
    assert m._gen is None and m._pending is None


def heap_state(m):
    h = m.runtime.mheap
    return (list(h.arena_hints), list(h.cur_arena), list(h.heap_arenas), h.heap_sys, h.heap_released,
            h.heap_in_use, h.heap_free, h.pages_in_use, m.kernel.mapped_ranges())


def cached_slot(m, spc):
    return m.runtime.mcache + L.MCache.alloc + 8 * spc


# ---- out of memory -------------------------------------------------------------------------

def test_a_huge_allocation_that_fails_leaves_the_heap_as_it_was():
    """sysAlloc on a 64 GiB reservation cannot place 100 GiB anywhere: Go throws "out of
    memory". The hints it could not use stay, so the heap grows again afterwards."""
    m = Machine()
    m.mallocgc(16)
    before = heap_state(m)
    with pytest.raises(RuntimeThrow, match="out of memory"):
        m.mallocgc(100 << 30)
    assert heap_state(m) == before
    assert_idle(m)
    assert m.mallocgc(16)
    big = m.mallocgc(100 << 20)                  # needs a fresh reservation at the kept hint
    assert m.runtime.mheap.span_of_heap(big).npages == (100 << 20) // L.PAGE_SIZE


def fill_heap(m, size=1 << 20):
    """Large objects until the reservation is used up; returns them."""
    objs = []
    with pytest.raises(RuntimeThrow, match="out of memory"):
        while True:
            objs.append(m.mallocgc(size))
    return objs


def test_an_out_of_memory_inside_refill_leaves_the_mcache_usable():
    """refill returns the full span to mcentral, then mcentral cannot grow: the next
    allocation is another clean out-of-memory, not 'bad sweepgen in refill', and once
    memory is freed allocation works again."""
    m = Machine(heap_reserve=64 << 20)
    fill_heap(m, 1 << 20)
    fill_heap(m, 8192)            # one object per span: every allocation refills, the last one fails
    spc = make_span_class(size_to_class(8192), True)
    for _ in range(2):
        with pytest.raises(RuntimeThrow, match="fatal error: out of memory"):
            m.mallocgc(8192)
        assert_idle(m)
        assert m.mem.u64(cached_slot(m, spc)) == m.runtime.emptymspan
    finish_cycle(m.runtime, [])
    x = m.mallocgc(8192)
    assert m.runtime.mheap.span_of_heap(x).spanclass == spc
    assert m.runtime.read_mem_stats()["HeapObjects"] == 1


def test_an_out_of_memory_in_the_large_path_leaves_m_idle():
    m = Machine(heap_reserve=64 << 20)
    fill_heap(m)
    assert_idle(m)
    finish_cycle(m.runtime, [])
    assert m.mallocgc(1 << 20) == L.HEAP_BASE


# ---- faults in machine code ------------------------------------------------------------------

def test_a_fault_inside_mallocgc_leaves_m_mallocing_and_locks_as_they_were():
    m = Machine(checked=False)
    m.mallocgc(16)
    slot = cached_slot(m, TINY_SPC)
    good = m.mem.u64(slot)
    m.mem.w64(slot, 0xDEAD0000)                      # a span pointer into nothing
    with pytest.raises(EmulationFault, match="unmapped memory at 0xdead0038"):
        m.mallocgc(16)
    assert_idle(m)
    m.mem.w64(slot, good)
    x, y = m.mallocgc(16), m.mallocgc(16)
    assert y == x + 16
    assert_idle(m)


def test_a_fault_inside_a_goroutine_leaves_g0_current_and_the_goroutine_dead():
    m = Machine()
    g = m.new_goroutine()
    m.load([("bad.s", "TEXT test.bad(SB), NOSPLIT, $0\n\tMOVQ $0x10, BX\n\tMOVQ (BX), AX\n\tRET\n")])
    with pytest.raises(EmulationFault):
        m.call_on(g, "test.bad")
    assert_idle(m)
    assert m.mem.u32(g + L.G.atomicstatus) == L.G_DEAD
    assert m.new_goroutine() == g                    # reused once, from the free list


def test_a_fault_during_a_write_barrier_flush_leaves_a_usable_buffer():
    """The flush zeroes wbBuf.next while it works; a corrupted buffer that makes the
    barrier fault must not leave next pointing at nothing."""
    m = Machine(checked=False)
    slot, p = m.mallocgc(8, m.runtime.new_type(8, (0,))), m.mallocgc(16)
    wb = m.symbol("runtime.p0") + L.P.wbBuf
    m.mem.w64(wb + L.WBBuf.next, 0x10)               # as if a flush died half-way
    m.set_write_barrier(True)
    with pytest.raises(EmulationFault):
        m.store_pointer(slot, p)
    assert m.wbbuf() == []
    m.store_pointer(slot, p)
    assert m.wbbuf() == [p, 0] and m.mem.u64(slot) == p


# ---- Python slow paths -----------------------------------------------------------------------

def test_a_slow_path_cut_short_by_a_fault_is_closed_not_left_half_run():
    """A generator whose OS call faults in machine code: its cleanup runs at once (not
    whenever Python collects it) and the next call-out does not resume it."""
    m = Machine()
    m.load([("bad.s", "TEXT test.badsys(SB), NOSPLIT, $0\n\tMOVQ $0x10, BX\n\tMOVQ (BX), AX\n\tRET\n")])
    cleaned = []

    def slow():
        try:
            yield OSCall("test.badsys", ())
        finally:
            cleaned.append(True)

    with pytest.raises(EmulationFault):
        m.run_slow_path(slow())
    assert cleaned == [True]
    assert_idle(m)
    g = m.new_goroutine()                            # a slow path of its own, through the same stub
    assert m.runtime.stacks.stack(g)[1] - m.runtime.stacks.stack(g)[0] == 2048


def test_a_python_error_in_a_call_out_leaves_m_idle():
    m = Machine()
    m.mallocgc(16)
    m.mem.w64(m.symbol("runtime.MemProfileRate"), 1)      # every allocation calls profilealloc
    m.runtime.mem_profile = None                          # ... which now fails in Python
    with pytest.raises(EmulationFault, match="internal error in a Python slow path"):
        m.mallocgc(16)
    assert_idle(m)
    m.runtime.mem_profile = []
    m.mallocgc(16)
    assert len(m.runtime.mem_profile) == 1


# ---- stepping ----------------------------------------------------------------------------------

def test_a_step_that_faults_ends_the_stepped_call_and_the_machine_stays_usable():
    m = Machine(checked=False)
    m.mallocgc(16)
    slot = cached_slot(m, TINY_SPC)
    good = m.mem.u64(slot)
    m.mem.w64(slot, 0xDEAD0000)
    m.begin("runtime.mallocgc", 16, 0, 1)
    with pytest.raises(EmulationFault):
        while m.step() is not None:
            pass
    assert_idle(m)
    with pytest.raises(BadInput, match="begin"):
        m.step()
    m.mem.w64(slot, good)
    assert m.mallocgc(16)


def step_into_the_allocation(m):
    """begin mallocgc(16) and step until it holds m.locks (mid-allocation)."""
    m.begin("runtime.mallocgc", 16, 0, 1)
    while m0_state(m)["locks"] == 0:
        m.step()
    for _ in range(5):
        m.step()


def test_a_call_made_while_another_is_being_stepped_first_runs_the_stepped_one_to_its_end():
    """A stepped call may be between two stores of one update (allocCache, freeindex,
    allocCount): dropping it there would leave a torn span, so it completes first."""
    m = Machine()
    x = m.mallocgc(16)
    step_into_the_allocation(m)
    assert m0_state(m)["locks"] == 1
    y = m.mallocgc(16)
    assert_idle(m)
    with pytest.raises(BadInput, match="begin"):
        m.step()
    assert y == x + 32                               # the stepped call took x + 16
    assert m.mallocgc(16) == x + 48


def test_beginning_a_new_stepped_call_completes_the_old_one():
    m = Machine()
    x = m.mallocgc(16)
    step_into_the_allocation(m)
    recs = m.trace("runtime.mallocgc", 16, 0, 1)
    assert m.regs.read(UC_X86_REG_RAX) == x + 32 and recs[-1].disasm == "ret"
    assert_idle(m)


def test_a_trace_cut_off_at_its_limit_leaves_m_idle():
    m = Machine()
    m.mallocgc(16)
    with pytest.raises(EmulationFault, match="did not return within 30 instructions"):
        m.trace("runtime.mallocgc", 16, 0, 1, limit=30)
    assert_idle(m)
    assert m.mallocgc(16)
