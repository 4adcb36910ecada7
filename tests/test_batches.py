"""Machine.malloc_batch with types and Machine.store_pointers: one run of a driver loop
(asm/driver.s) does what the same calls one by one do (Machine.mallocgc, store_pointer),
on every allocation path and with the write barrier on."""

import hashlib

import numpy as np
import pytest

from emu import layout as L
from emu.errors import BadInput
from emu.machine import Machine
from runtime_model import sizeclasses as sc


def state(m, objects=()):
    """The off-heap metadata (spans, mcache, bitmaps) but the batch buffer, the objects' bytes and the statistics
    the allocator keeps. (Not the whole arena: the goroutine's stack is there, and a loop's
    frames are not the calls'.)"""
    buf, n = m._batch                   # the batch's own requests and results left out
    off = m.mem.read(L.OFFHEAP.base, m.persistent_bytes())
    h = hashlib.sha256(off[:buf - L.OFFHEAP.base] + off[buf - L.OFFHEAP.base + n:])
    for x, n in objects:
        h.update(m.mem.read(x, n))
    return h.hexdigest(), repr(sorted(m.runtime.read_mem_stats().items()))


def mixed(m):
    """Sizes and types over every path: tiny, small noscan, scan without and with a
    malloc header, large noscan and large scan. The machine's batch buffer is made first
    (persistentalloc, as the batch would make it), so that both machines' off-heap layouts
    match."""
    m._batch_buffer(1 << 16)
    t24 = m.runtime.new_type(24, pointer_words=(0, 2))
    t1k = m.runtime.new_type(1024, pointer_words=range(0, 128, 3))
    rng = np.random.default_rng(5)
    kinds = [(8, 0), (3, 0), (48, 0), (24, t24), (1024, t1k), (4000, 0), (40_000, 0), (70_000, t1k), (512, t24)]
    pick = rng.integers(0, len(kinds), 600)
    return [kinds[k][0] for k in pick], [kinds[k][1] for k in pick]


@pytest.mark.parametrize("handwritten", [False, True])
def test_a_typed_batch_allocates_what_the_calls_one_by_one_do(handwritten):
    one, batch = Machine(handwritten=handwritten), Machine(handwritten=handwritten)
    sizes, types = mixed(one)
    assert mixed(batch) == (sizes, types)          # the same type descriptors on both
    want = [one.mallocgc(s, t) for s, t in zip(sizes, types)]
    got = batch.malloc_batch(sizes, types)
    assert got.tolist() == want
    objects = list(zip(want, sizes))
    assert state(batch, objects) == state(one, objects)
    assert any(s > sc.MAX_SMALL_SIZE for s in sizes) and any(s < 16 for s in sizes)


def test_one_type_for_the_whole_batch_and_needzero():
    m = Machine()
    t = m.runtime.new_type(32, pointer_words=(1,))
    xs = m.malloc_batch([32] * 300, t)
    assert len(set(xs.tolist())) == 300
    assert m.malloc_batch([64] * 3, 0, needzero=False).dtype == np.dtype("<u8")


def test_untyped_batch_honours_needzero():
    # freed slots keep a dead object's bytes; mallocgcSmallNoscan clears them only if asked
    from runtime_model.mgcsweep import finish_cycle
    per_span = (8192 - 128) // 64                       # GreenTeaGC's inline mark bits take 128 B
    for needzero, want in ((True, bytes(64)), (False, b"\xee" * 64)):
        m = Machine()
        xs = m.malloc_batch([64] * (2 * per_span)).tolist()
        for x in xs:
            m.mem.write(x, b"\xee" * 64)
        finish_cycle(m.runtime, xs[::2])
        again = m.malloc_batch([64] * per_span, needzero=needzero).tolist()
        assert set(again) == set(xs[1::2])
        assert all(m.mem.read(x, 64) == want for x in again), needzero


def start_marking(m):
    from emu.layout import G, M
    m.mem.w8(m.symbol("runtime.writeBarrier"), 1)
    m.mem.w32(m.symbol("runtime.gcBlackenEnabled"), 1)
    for g in {m.symbol("runtime.g0"), m.mem.u64(m.symbol("runtime.m0") + M.curg)} - {0}:
        m.mem.w64(g + G.gcAssistBytes, 1 << 60)


@pytest.mark.parametrize("dialect", ["go1.21", "go1.20"])
def test_a_batch_of_pointer_stores_is_the_stores_one_by_one(dialect):
    ms = [Machine(wb_dialect=dialect) for _ in range(2)]
    plans, held = [], []
    for m in ms:
        t = m.runtime.new_type(16, pointer_words=(0, 1))
        objs = m.malloc_batch([16] * 400, t).tolist()
        held.append([(x, 16) for x in objs])
        start_marking(m)
        rng = np.random.default_rng(9)
        # enough stores (two barrier slots each) to fill p.wbBuf and flush it
        slots = [objs[i] + 8 * j for i, j in zip(rng.integers(0, 400, 700), rng.integers(0, 2, 700))]
        ptrs = [objs[i] for i in rng.integers(0, 400, 700)]
        plans.append((slots, ptrs))
    assert plans[0] == plans[1]
    slots, ptrs = plans[0]
    for s, p in zip(slots, ptrs):
        ms[0].store_pointer(s, p)
    ms[1].store_pointers(slots, ptrs)
    assert ms[1].callout_counts == ms[0].callout_counts and ms[1].callout_counts["runtime.wbBufFlush"] > 0
    assert ms[1].wbbuf() == ms[0].wbbuf() != []
    assert held[0] == held[1] and state(ms[1], held[1]) == state(ms[0], held[0])


@pytest.mark.parametrize("call,message", [
    (lambda m: m.malloc_batch([16, 32], [0]), "types must be one type descriptor or one per size"),
    (lambda m: m.malloc_batch([16, 32], 12345), "not a type descriptor"),
    (lambda m: m.malloc_batch([16, -1], 0), "sizes must be integers in 0..2"),
    (lambda m: m.malloc_batch([[16]], 0), "one-dimensional"),
    (lambda m: m.store_pointers([0xc000000008], [1, 2]), "of one length"),
    (lambda m: m.store_pointers([0xc000000004], [0]), "not 8-byte aligned"),
])
def test_bad_batches_are_refused_before_anything_runs(call, message):
    m, twin = Machine(), Machine()
    for x in (m, twin):
        x.malloc_batch([16] * 10)
    with pytest.raises(BadInput, match=message):
        call(m)
    assert state(m) == state(twin)


def test_empty_batches_run_nothing():
    m, twin = Machine(), Machine()
    assert m.malloc_batch([]).tolist() == m.malloc_batch([], 0).tolist() == []
    assert m.store_pointers([], []) is None
    assert state(m) == state(twin)
