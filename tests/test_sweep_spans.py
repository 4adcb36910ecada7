"""Sweeping many spans in one pass leaves exactly what sweeping them one by one leaves."""

import random

import pytest

from emu.machine import Machine
from runtime_model.mgcsweep import release_all, sweep, sweep_spans


def _heap_after_marking(seed):
    """A heap of mixed objects (tiny, small noscan and scan, header, large), a random
    40% of them marked, a new sweep generation begun; returns (machine, spans to sweep).
    The 8-byte pointers fill spans of 1024 objects, whose 16-word bitmaps are wider than
    any span with inline mark bits has (at most 8 words)."""
    m = Machine()
    rng = random.Random(seed)
    rt = m.runtime
    types = {32: rt.new_type(32, (0,)), 1024: rt.new_type(1024, (0, 5)), 50000: rt.new_type(50000, (1,))}
    objs = [m.mallocgc(sz, types.get(sz, 0))
            for sz in (rng.choice([8, 16, 24, 32, 48, 100, 512, 1024, 4096, 40000, 50000]) for _ in range(2500))]
    ptr8 = rt.new_type(8, (0,))
    objs += [m.mallocgc(8, ptr8) for _ in range(3000)]
    for p in objs:
        if rng.random() < 0.4:
            s = rt.mheap.span_of_heap(p)
            s.set_bit(s.mark_bit(s.obj_index(p)))
    rt.mheap.sweepgen += 2
    release_all(rt, rt.mcache)
    sg, todo = rt.mheap.sweepgen, []
    for c in rt.mheap.central:
        for unswept in (c.partial_unswept(sg), c.full_unswept(sg)):
            while unswept:
                s = unswept.popleft()
                if c.try_acquire(s, sg):
                    todo.append(s)
    return m, todo


def _state(m):
    rt, mem = m.runtime, m.mem
    spans = sorted((s.addr, s.allocCount, s.freeindex, s.allocCache, s.sweepgen, s.needzero, s.state, spc,
                    mem.read(s.allocBits, (s.nelems + 63) // 64 * 8), which)
                   for spc, c in enumerate(rt.mheap.central)
                   for which, lst in enumerate(c.partial + c.full) for s in lst)
    return (spans, list(rt.stats.small_free_count), rt.stats.large_free, rt.stats.large_free_count,
            rt.gc_controller.total_free, rt.mheap.heap_free, rt.mheap.heap_in_use, rt.mheap.nspans,
            rt.mheap.pages_in_use)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sweeping_all_spans_at_once_equals_sweeping_them_one_by_one(seed):
    one, spans = _heap_after_marking(seed)
    for s in spans:
        sweep(one.runtime, s)
    bulk, spans = _heap_after_marking(seed)
    freed = sweep_spans(bulk.runtime, spans)
    assert freed and len(freed) < len(spans)          # both kinds of outcome occur
    assert _state(one) == _state(bulk)
