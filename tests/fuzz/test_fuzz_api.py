"""Fuzz: the Python API with hostile values. Machine(...) options, and sequences of
calls on one machine (new_type, mallocgc, malloc_batch, set_max_stack,
store_pointer(s), finish_cycle, mem.read/write/fill, goroutines, the write barrier)
whose arguments are mostly hostile and sometimes what the machine handed out.

Every call succeeds or raises a GomemuError; a refused call (BadInput) leaves the
machine's state as it was (tests/test_api_input.py: machine_state, with the
memory statistics); an out-of-memory or a fatal error leaves the heap as it was;
after every example the machine still allocates.
"""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from emu import layout as L
from emu.errors import BadInput
from emu.machine import Machine
from runtime_model.mgcsweep import finish_cycle
from tests.fuzz.harness import examples, outcome
from tests.fuzz.strategies import EDGE_INTS
from tests.test_api_input import machine_state

hostile = st.one_of(
    st.sampled_from(EDGE_INTS), st.integers(-64, 64),
    st.sampled_from([None, True, False, 1.5, -0.0, float("nan"), float("inf"), "16", "", b"\x00" * 8, (), [], {},
                     (0,), [1, 2], np.int64(16), np.uint64(2**64 - 1), np.float64(8.0), object()]))


def state(m):
    """machine_state and the memory statistics: what a refused call must leave alone.
    (ReadMemStats flushes the mcache, as Go's does: it is read first.)"""
    stats = m.runtime.read_mem_stats()
    return machine_state(m), stats


def heap_state(m):
    """What an out-of-memory or a fatal error must leave alone: the heap's pages and spans."""
    h = m.runtime.mheap
    return h.pages_in_use, h.sweepgen, len(h.live_mspans), m.mem.read(m.runtime.mcache, L.MCache.SIZE)


class Live:
    """What one example's machine handed out (objects, types, goroutines), so that calls
    can be given real values as well as hostile ones."""

    def __init__(self, m):
        self.m, self.objects, self.types, self.gs, self._scratch = m, [], [], [], None

    def scratch(self):
        """64 bytes of our own (persistentalloc) that mem.write and mem.fill may change."""
        self._scratch = self._scratch or self.m.persistentalloc(64)
        return self._scratch


class Ref:
    """The i-th of what `kind` (objects, types, gs) holds when the call runs, plus a byte
    offset: drawn without looking at the machine, so every example replays exactly."""

    def __init__(self, kind, i, off=0):
        self.kind, self.i, self.off = kind, i, off

    def resolve(self, live):
        have = getattr(live, self.kind)
        return have[self.i % len(have)] + self.off if have else self.off


def values(kind=None, offsets=(0,)):
    """Hostile values, or (kind given) a Ref to something the machine handed out."""
    if kind is None:
        return hostile
    return st.one_of(hostile, st.builds(Ref, st.just(kind), st.integers(0, 7), st.sampled_from(offsets)))


def resolved(live, v):
    if isinstance(v, Ref):
        return v.resolve(live)
    if isinstance(v, list):
        return [resolved(live, x) for x in v]
    return v


@st.composite
def api_call(draw, live):
    """(what it is, a function of no arguments) of one hostile call on live.m."""
    drawn, raw = [], draw

    def draw(strategy):                 # values resolved, and kept for the example's description
        drawn.append(resolved(live, raw(strategy)))
        return drawn[-1]
    name, call = _call(draw, live)
    return f"{name}{tuple(drawn[1:])!r}", call


def _call(draw, live):
    m, r = live.m, live.m.runtime
    fixed = st.sampled_from([L.OFFHEAP.base, L.OFFHEAP.end - 4, L.HEAP_BASE, L.STACK.base, 0x401000, L.OFFHEAP.end])
    addr = st.one_of(values("objects", (0, 8, 4, -16)), fixed)
    typ, g = st.one_of(values("types"), st.just(0)), values("gs")
    size = st.one_of(st.integers(0, 40_000), st.sampled_from([100_000, 1 << 30, (64 << 30) + 1, 1 << 39]), hostile)
    name = draw(st.sampled_from(["new_type", "mallocgc", "malloc_small_noscan", "malloc_batch", "set_max_stack",
                                 "store_pointer", "store_pointers", "finish_cycle", "mem.read", "mem.write", "mem.fill",
                                 "persistentalloc", "new_goroutine", "goexit", "call_on", "set_write_barrier",
                                 "block_budget", "call", "where"]))
    if name == "new_type":
        words = st.one_of(st.lists(st.one_of(hostile, st.sampled_from([0, 1, 2, 3])), max_size=3), hostile)
        args = draw(st.tuples(size, words))
        return name, lambda: live.types.append(r.new_type(*args))
    if name == "mallocgc":
        a, t, z = draw(size), draw(typ), draw(st.one_of(st.booleans(), hostile))
        return name, lambda: live.objects.append(m.mallocgc(a, t, z))
    if name == "malloc_small_noscan":
        a = draw(size)
        return name, lambda: m.malloc_small_noscan(a)
    if name == "malloc_batch":
        sizes = draw(st.one_of(st.lists(st.one_of(st.integers(0, 40_000), st.sampled_from(EDGE_INTS)), max_size=20),
                               hostile))
        types = draw(st.one_of(st.none(), typ, st.lists(typ, max_size=20), hostile))
        return name, lambda: live.objects.extend(m.malloc_batch(sizes, types).tolist())
    if name == "set_max_stack":
        n = draw(hostile)
        return name, lambda: m.set_max_stack(n)
    if name == "store_pointer":
        slot, p = draw(addr), draw(addr)
        return name, lambda: m.store_pointer(slot, p)
    if name == "store_pointers":
        addrs = st.one_of(st.lists(addr, max_size=8), hostile)
        slots, ptrs = draw(addrs), draw(addrs)
        return name, lambda: m.store_pointers(slots, ptrs)
    if name == "finish_cycle":
        objs = draw(st.one_of(st.lists(addr, max_size=4), hostile))
        eager = draw(st.one_of(st.booleans(), hostile))

        def cycle():
            finish_cycle(r, objs, eager)
            live.objects[:] = [o for o in live.objects if o in objs]     # the rest is free now
        return name, cycle
    if name == "mem.read":
        a, n = draw(addr), draw(st.one_of(st.integers(0, 64), hostile))
        return name, lambda: m.mem.read(a, n)
    if name in ("mem.write", "mem.fill"):
        # only into memory of our own (a persistentalloc buffer) or nowhere: corrupting the
        # runtime's own structures is test_fuzz_corrupt.py's job
        scratch = live.scratch()
        a = draw(st.one_of(st.sampled_from([scratch, scratch + 60, L.OFFHEAP.end - 4, 0, -8, 1 << 64, 0x401000]),
                           hostile))
        if name == "mem.write":
            data = draw(st.one_of(st.binary(max_size=16), hostile))
            return name, lambda: m.mem.write(a, data)
        n, byte = draw(st.one_of(st.integers(0, 16), hostile)), draw(st.one_of(st.integers(0, 255), hostile))
        return name, lambda: m.mem.fill(a, n, byte)
    if name == "persistentalloc":
        n, align = draw(st.one_of(st.integers(0, 4096), hostile)), draw(st.one_of(st.sampled_from([1, 8, 64]), hostile))
        return name, lambda: m.persistentalloc(n, align)
    if name == "new_goroutine":
        return name, lambda: live.gs.append(m.new_goroutine())
    if name == "goexit":
        gp = draw(g)

        def exit_():
            m.goexit(gp)
            live.gs.remove(gp)
        return name, exit_
    if name == "call_on":
        gp, n = draw(g), draw(size)
        return name, lambda: m.call_on(gp, "runtime.mallocgc", n, 0, 1)
    if name == "set_write_barrier":
        on = draw(st.one_of(st.booleans(), hostile))
        return name, lambda: m.set_write_barrier(on)
    if name == "block_budget":
        n = draw(st.one_of(st.just(50_000_000), hostile))
        return name, lambda: setattr(m, "block_budget", n)
    if name == "call":
        routine = draw(st.sampled_from(["runtime.mallocgc", "runtime.nosuch", "", "runtime.mallocgc\x00"]))
        args = draw(st.lists(hostile, max_size=10))
        return name, lambda: m.call(routine, *args)
    a = draw(addr)
    return name, lambda: m.where(a)


@examples(28)
@given(data=st.data())
def test_a_hostile_api_call_succeeds_or_is_refused_and_changes_nothing(data):
    m = Machine()
    live = Live(m)
    for _ in range(data.draw(st.integers(1, 8))):
        name, call = data.draw(api_call(live), label="call")
        before, heap_before = state(m), heap_state(m)
        err = outcome(call)
        if isinstance(err, BadInput):
            assert state(m) == before, f"{name} was refused ({err}) but changed the machine"
        elif err is not None:
            assert heap_state(m) == heap_before, f"{name} failed ({err}) and left the heap changed"
    m.set_write_barrier(False)
    m.block_budget = 50_000_000
    assert m.mallocgc(16)                                # still usable


machine_options = st.dictionaries(
    st.sampled_from(["heap_reserve", "mem_profile_rate", "block_budget", "wb_dialect", "size_specialized",
                     "checked", "gogc", "handwritten", "image"]),
    st.one_of(hostile, st.sampled_from(["go1.20", "go1.21", "off", "/nonexistent", 64 << 20, 1 << 36])),
    max_size=3)


@examples(60)
@given(kwargs=machine_options)
def test_a_machine_with_hostile_options_is_built_or_refused(kwargs):
    if kwargs.get("handwritten") is True:
        kwargs["handwritten"] = "yes"        # a valid handwritten machine takes seconds to assemble
    made = []
    err = outcome(lambda: made.append(Machine(**kwargs)))
    assert err is not None or made[0].mallocgc(16)
