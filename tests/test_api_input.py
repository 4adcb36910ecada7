"""Every public entry of the machine refuses bad arguments with BadInput naming the
argument, and a refused call leaves the machine as it was."""

import pytest

from emu import layout as L
from emu.errors import BadInput
from emu.machine import Machine
from runtime_model.mgcsweep import finish_cycle


@pytest.fixture(scope="module")
def m():
    m = Machine()
    m.mallocgc(16)
    return m


def machine_state(m):
    """What a refused call must not change."""
    h = m.runtime.mheap
    return (m._offheap_next, h.sweepgen, h.pages_in_use, m.runtime.stacks.maxstacksize,
            len(m.runtime.stacks.allgs), len(m.runtime.stacks.gfree), m.mem.read(m.runtime.mcache, L.MCache.SIZE),
            dict(m.callout_counts), len(m.kernel.log), m.wbbuf())


@pytest.mark.parametrize("kwargs, name", [
    ({"block_budget": 0}, "block_budget"),
    ({"block_budget": -1}, "block_budget"),
    ({"block_budget": 1.5}, "block_budget"),
    ({"block_budget": True}, "block_budget"),
    ({"block_budget": 2**64}, "block_budget"),
    ({"heap_reserve": 0}, "heap_reserve"),
    ({"heap_reserve": -1}, "heap_reserve"),
    ({"heap_reserve": 2**47}, "heap_reserve"),
    ({"heap_reserve": (64 << 20) + 8192}, "heap_reserve"),
    ({"heap_reserve": "64G"}, "heap_reserve"),
    ({"mem_profile_rate": -1}, "mem_profile_rate"),
    ({"mem_profile_rate": 0.5}, "mem_profile_rate"),
    ({"size_specialized": "yes"}, "size_specialized"),
    ({"checked": 1}, "checked"),
    ({"wb_dialect": "go1.19"}, "wb_dialect"),
])
def test_a_machine_with_a_bad_option_is_refused_naming_it(kwargs, name):
    with pytest.raises(BadInput, match=name):
        Machine(**kwargs)


def test_a_non_positive_block_budget_cannot_switch_the_runaway_guard_off(m):
    for bad in (0, -5):
        with pytest.raises(BadInput, match="block_budget"):
            m.block_budget = bad
    assert m.block_budget > 0


def test_the_smallest_heap_reservation_is_one_arena():
    m = Machine(heap_reserve=64 << 20)
    assert m.mallocgc(16) == L.HEAP_BASE


@pytest.mark.parametrize("call, name", [
    (lambda m: m.runtime.new_type(-8), "size"),
    (lambda m: m.runtime.new_type(2**64, (0,)), "size"),
    (lambda m: m.runtime.new_type(1.5), "size"),
    (lambda m: m.runtime.new_type(16, (2,)), "pointer_words"),
    (lambda m: m.runtime.new_type(16, (-1,)), "pointer_words"),
    (lambda m: m.runtime.new_type(16, 0), "pointer_words"),
    (lambda m: m.runtime.new_type(16, (True,)), "pointer_words"),
    (lambda m: m.runtime.new_type(16, (), name=5), "name"),
    (lambda m: m.set_max_stack(1.5), "n"),
    (lambda m: m.set_max_stack(2**64), "n"),
    (lambda m: m.set_max_stack("x"), "n"),
    (lambda m: m.set_max_stack(0), "n"),
    (lambda m: finish_cycle(m.runtime, None), "live"),
    (lambda m: finish_cycle(m.runtime, [1.5]), "live"),
    (lambda m: finish_cycle(m.runtime, [0x401000]), "live"),
    (lambda m: finish_cycle(m.runtime, [], eager="no"), "eager"),
    (lambda m: m.mem.read(L.OFFHEAP.base + 1, -5), "n"),
    (lambda m: m.mem.read(L.OFFHEAP.base, 1.5), "n"),
    (lambda m: m.mem.fill(L.OFFHEAP.base + 1, -5), "n"),
    (lambda m: m.mem.write(L.OFFHEAP.base, "text"), "data"),
    (lambda m: m.mem.read(None, 4), "addr"),                       # found by the fuzz suite: TypeError
    (lambda m: m.mem.read(float(L.OFFHEAP.base), 4), "addr"),      # ... a float inside a region
    (lambda m: m.mem.write(float(L.OFFHEAP.base), b"x"), "addr"),
    (lambda m: m.mem.fill(float(L.OFFHEAP.base), 2), "addr"),
    (lambda m: m.mem.u64(None), "addr"),
    (lambda m: m.mallocgc(16, needzero="no"), "needzero"),
    (lambda m: m.mallocgc(16, typ=-1), "typ"),
    (lambda m: m.call("runtime.mallocgc", 16, 1.5), "argument"),
    (lambda m: m.call("runtime.mallocgc", 2**64), "argument"),
    (lambda m: m.call_on(m.symbol("runtime.g0"), "runtime.mallocgc", 16), "g"),
    (lambda m: m.call_on(0x1234, "runtime.mallocgc", 16), "g"),
    (lambda m: m.goexit(0x1234), "g"),
    (lambda m: m.store_pointer(L.HEAP_BASE + 4, 0), "slot"),
    (lambda m: m.store_pointer(L.HEAP_BASE, "p"), "ptr"),
    (lambda m: m.set_write_barrier("on"), "on"),
    (lambda m: m.set_alloc_trace(None), "on"),
    (lambda m: m.trace("runtime.mallocgc", 16, 0, 1, limit=0), "limit"),
    (lambda m: m.persistentalloc(-1), "size"),
    (lambda m: m.persistentalloc(8, 3), "align"),
    (lambda m: m.persistentalloc(1 << 40), "size"),
    (lambda m: m.run_slow_path(None), "gen"),
    (lambda m: m.where("0x400000"), "addr"),
    (lambda m: m.load_rodata("blob", 5), "data"),
    (lambda m: m.load_code("runtime.mallocgc", b"\xc3"), "name"),
    (lambda m: m.load_code("test.f", "ret"), "code"),
    (lambda m: m.counts_since(None), "snap"),
])
def test_a_refused_call_names_its_argument_and_changes_nothing(m, call, name):
    before = machine_state(m)
    with pytest.raises(BadInput, match=rf"\b{name}\b"):
        call(m)
    assert machine_state(m) == before
    assert m.mallocgc(16)                                  # still usable


def test_goexit_on_a_dead_goroutine_is_refused_and_the_g_is_reused_once():
    m = Machine()
    g = m.new_goroutine()
    m.goexit(g)
    with pytest.raises(BadInput, match="dead"):
        m.goexit(g)
    a, b = m.new_goroutine(), m.new_goroutine()
    assert a == g and b != g


def test_a_goroutine_that_is_dead_cannot_be_called():
    m = Machine()
    g = m.new_goroutine()
    m.goexit(g)
    with pytest.raises(BadInput, match="dead"):
        m.call_on(g, "runtime.mallocgc", 16, 0, 1)


def test_set_max_stack_accepts_any_positive_go_int(m):
    old = m.set_max_stack(2**63 - 1)
    assert m.set_max_stack(old) == 2**63 - 1
