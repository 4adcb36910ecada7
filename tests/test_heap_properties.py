"""Property tests of the whole allocator: random allocation and collection sequences
against a reference model of which byte ranges are live."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emu.machine import Machine
from runtime_model import sizeclasses as sc
from runtime_model.mgcsweep import finish_cycle

SIZES = st.one_of(st.integers(1, 15), st.integers(16, 1024), st.integers(1025, sc.MAX_SMALL_NOSCAN),
                  st.integers(sc.MAX_SMALL_NOSCAN + 1, 200_000))
OPS = st.lists(st.one_of(
    st.tuples(st.just("alloc"), SIZES, st.booleans(), st.integers(1, 20)),
    st.tuples(st.just("gc"), st.floats(0, 1), st.booleans(), st.just(0)),
), min_size=1, max_size=12)


def check_heap(m, live):
    """Live objects never overlap, lie inside in-use spans of a fitting size, and keep
    their contents; the heap's page counts add up."""
    spans = {}
    ranges = sorted((x, x + max(size, 1)) for x, (size, _) in live.items())
    for (a0, a1), (b0, _) in zip(ranges, ranges[1:]):
        assert a1 <= b0, f"objects overlap at {a0:#x} and {b0:#x}"
    for x, (size, stamp) in live.items():
        s = m.runtime.mheap.span_of_heap(x)
        assert s is not None, f"{x:#x} is not in an in-use span"
        assert x + size <= s.base() + s.npages * sc.PAGE_SIZE
        if size >= 8:
            assert m.mem.u64(x) == stamp, f"{x:#x} lost its contents"
        spans[s.addr] = s
    assert sum(s.npages for s in spans.values()) <= m.runtime.mheap.pages_in_use


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS)
def test_random_allocation_and_collection_keep_the_heap_consistent(ops):
    m = Machine()
    live, stamp = {}, 1
    for op, arg, flag, count in ops:
        if op == "alloc":
            typ = m.runtime.new_type(arg, (0,)) if flag and arg >= 8 else 0
            for _ in range(count):
                x = m.mallocgc(arg, typ)
                assert x not in live and m.mem.read(x, min(arg, 64)) == bytes(min(arg, 64)) or arg < 16 and not typ
                if arg >= 8:
                    m.mem.w64(x, stamp)          # the program writes its object
                live[x] = (arg, stamp)
                stamp += 1
        else:
            keep = {x: v for i, (x, v) in enumerate(sorted(live.items())) if (i * 0.618) % 1 < arg}
            finish_cycle(m.runtime, list(keep), eager=flag)
            live = keep
        check_heap(m, live)
    stats = m.runtime.read_mem_stats()
    assert stats["HeapObjects"] >= 0 and stats["HeapAlloc"] >= 0
    assert stats["HeapInuse"] + stats["HeapIdle"] == stats["HeapSys"]


@pytest.mark.slow
def test_soak_two_hundred_thousand_objects_through_ten_collections():
    m = Machine()
    t = m.runtime.new_type(64, (0, 3))
    live = {}
    sizes = [8, 24, 64, 200, 1500, 9000, 40_000]
    for cycle in range(10):
        for i in range(20_000):
            size = sizes[(i * 7 + cycle) % len(sizes)]
            x = m.mallocgc(size, t if size == 64 else 0)
            if size >= 8:
                m.mem.w64(x, i + 1)
            live[x] = (size, i + 1)
        keep = dict(list(live.items())[::3])
        finish_cycle(m.runtime, list(keep), eager=cycle % 2 == 0)
        live = keep
        check_heap(m, live)
