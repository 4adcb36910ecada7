"""The collector never frees what the program can reach: a seeded random program of 200,000
allocations whose pointer stores (through the compiler's write-barrier sequence, in
asm/mutator.s) rewire a graph of nodes while cycles mark, checked against a model of the
graph kept here, and by runtime_model/checkgc.py at every cycle.

The model is this file's own: it applies asm/mutator.s's documented operations (an op is
8 words: size, typ, stamp, -, dst root, dst off1, dst off2, -; a copy has size 0 and its
source path in words 1-3) to Python lists, and every reachable node must hold in emulated
memory the stamp and the pointers the model says. With the write barrier kept off during
marking the same program loses nodes, and the check says so.
"""

import random

import numpy as np
import pytest

from emu.machine import Machine
from emu.mutator import Mutator
from emu.workload import parse
from runtime_model.checkgc import Checker
from runtime_model.mgcmark import GcWork

ROOTS = 64
FIELDS = 5                  # a node: 5 pointer words, then its stamp
NODE = 8 * (FIELDS + 1)
GARBAGE = 256
ALLOCS = 200_000
BATCH = 256                 # operations per run of the loop: marking windows show at this grain


class Lost(AssertionError):
    """A node the program can reach does not hold what the program wrote."""


class Program:
    def __init__(self, barrier=True, checked=True, seed=12):
        self.m = Machine(checked=False)
        # the mutator's setup only (roots, driver, goroutine): its workload allocates nothing
        self.mu = Mutator(self.m, parse("total_allocated = 8\n[[garbage]]\nobject_size = 8\n", "setup.toml"), gogc=5)
        rt = self.m.runtime
        self.roots = self.m.persistentalloc(8 * (ROOTS + 1), 64)
        self.sink = self.roots + 8 * ROOTS
        rt.gc.root_ranges.append((self.roots, ROOTS + 1))
        self.node_t = rt.new_type(NODE, range(FIELDS))
        if not barrier:
            self.m.set_write_barrier = lambda on: Machine.set_write_barrier(self.m, False)
        self.checker = Checker() if checked else None
        rt.gc.checker = self.checker
        self.rng = random.Random(seed)
        self.root_ids = [None] * ROOTS            # the model: what each root holds
        self.fields = {}                          # node stamp -> its FIELDS pointers (stamps)
        self.stamp = 0
        self.marking_ops = 0                      # operations run while the barrier was on

    # the model's view of a path: ("root", i) or ("node", stamp, f), None through a nil node
    def _slot(self, i, f):
        if f < 0:
            return ("root", i)
        n = self.root_ids[i]
        return None if n is None else ("node", n, f)

    def _get(self, slot):
        return self.root_ids[slot[1]] if slot[0] == "root" else self.fields[slot[1]][slot[2]]

    def _set(self, slot, v):
        if slot[0] == "root":
            self.root_ids[slot[1]] = v
        else:
            self.fields[slot[1]][slot[2]] = v

    def _path(self, i, f):
        return self.roots + 8 * i, (8 * f if f >= 0 else -1), -1

    def ops(self, n):
        rows, rng = [], self.rng
        while len(rows) < n:
            r = rng.random()
            i, f = rng.randrange(ROOTS), rng.randrange(-1, FIELDS)
            if r < 0.45:                           # x := new(node); path = x
                self.stamp += 1
                self.fields[self.stamp] = [None] * FIELDS
                slot = self._slot(i, f)
                if slot is not None:
                    self._set(slot, self.stamp)
                rows.append([NODE, self.node_t, self.stamp, 0, *self._path(i, f), 0])
            elif r < 0.85:                         # path2 = path1
                j, g = rng.randrange(ROOTS), rng.randrange(-1, FIELDS)
                src, dst = self._slot(i, f), self._slot(j, g)
                if src is not None and dst is not None:
                    self._set(dst, self._get(src))
                rows.append([0, *self._path(i, f), *self._path(j, g), 0])
            else:                                  # sink = make([]byte, 256)
                self.stamp += 1
                rows.append([GARBAGE, 0, self.stamp, 0, self.sink, -1, -1, 0])
        return np.asarray(rows, dtype=np.int64)

    def run(self, allocs=ALLOCS, check_every=64):
        k = 0
        while self.stamp < allocs:
            barrier_on = self.m.write_barrier_enabled
            rows = self.ops(BATCH)
            self.mu.run_ops(rows)
            self.marking_ops += len(rows) if barrier_on else 0
            k += 1
            if k % check_every == 0:
                self.check()
        self.check()

    def check(self):
        """Every node reachable in the model: allocated, its stamp and its pointers as written."""
        mem, gcw = self.m.mem, GcWork(self.m.runtime.mheap)
        todo, seen = [], {}
        for i, want in enumerate(self.root_ids):
            todo.append((self.roots + 8 * i, want))
        while todo:
            slot, want = todo.pop()
            p = mem.u64(slot)
            if want is None:
                if p:
                    raise Lost(f"the word at {slot:#x} holds {p:#x}, the program stored nil")
                continue
            if seen.get(want, p) != p:
                raise Lost(f"node {want} is at {seen[want]:#x} and at {p:#x}")
            if want in seen:
                continue
            seen[want] = p
            found = gcw.find_object(p)
            if found is None or found[0] != p:
                raise Lost(f"node {want} at {p:#x} (from {slot:#x}) is not an allocated object: freed")
            got = mem.u64(p + 8 * FIELDS)
            if got != want:
                raise Lost(f"node {want} at {p:#x} holds stamp {got}: its slot was freed and reused")
            todo.extend((p + 8 * f, c) for f, c in enumerate(self.fields[want]))
        return len(seen)


def test_random_pointer_writes_during_marking_never_free_a_reachable_object():
    prog = Program()
    prog.run()
    cycles = len(prog.m.runtime.gc.cycles)
    assert prog.stamp >= ALLOCS
    assert cycles >= 15, cycles
    assert prog.checker.cycles == cycles                 # checkgc ran at every cycle
    assert prog.marking_ops > 1000, prog.marking_ops     # the graph changed while marking
    assert prog.check() > 100                            # a graph worth the name stayed live


def test_without_the_write_barrier_marking_loses_reachable_objects():
    prog = Program(barrier=False, checked=False)
    with pytest.raises(Lost):
        prog.run(check_every=1)


def test_without_the_write_barrier_checkgc_finds_an_unmarked_reachable_object():
    from emu.errors import InvariantError
    prog = Program(barrier=False, checked=True)
    with pytest.raises(InvariantError, match="not marked at mark termination|free"):
        prog.run(check_every=1)
