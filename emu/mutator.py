"""The mutator of a workload (emu/workload.py): a Go program's allocations and pointer
stores, run as machine code on the machine's runtime.

Everything the program does happens in asm/mutator.s, a loop over a table of operations
in emulated memory: `p.f = new(T)` (runtime.mallocgc, then the store through the
compiler's write-barrier sequence) and `p.f = q.g`. Python only writes the tables
(numpy, a batch at a time) and calls the loop on one goroutine, so the collector, the
pacer, the scavenger and the limiter meet exactly what compiled Go code would hand them.

What the program keeps is reachable from its globals, as in Go: a registered root range
(Collector.root_ranges) stands for the program's data/bss, with these words:

  LIVE   -> the live set's holder, a heap array of slice headers ([]T as `[][]byte`
            keeps it: 24 bytes an element, its pointer word first), allocated first
  SINK   <- each garbage object, unreachable at the next store (`sink = make(...)`)
  LEAK   -> the newest leaked object; each points to the one leaked before it
  TMP       a leaked object between its allocation and its linking
  NIL       always nil: the source of the stores that drop live objects
  RING+k -> garbage kind k's ring of `lifetime` pointers: an object lives until its
            slot is reused, `lifetime` allocations of its kind later

[globals] adds a second root range of that many pointer-typed bytes (nil words: the
collector scans them, as it scans a Go program's pointer globals).

Every object of 8 bytes or more gets a stamp in its last word (its allocation number),
so a checker can tell that a reachable object still holds what the program wrote.
Objects with pointers have pointer words everywhere but that last word.
"""

import numpy as np

from emu.errors import BadInput
from runtime_model.gcsettings import gcinit

OP_WORDS = 8                   # asm/mutator.s: an operation is 8 words
ELEM = 24                      # a slice header in the live holder: ptr, len, cap
LIVE, SINK, LEAK, TMP, NIL, RING = range(6)
BATCH = 2048                   # operations per emu_start (and per sample of the heap)
_NO_SIZES = np.zeros(0, dtype=np.int64)


class Mutator:
    """Runs `workload` on `machine` (a fresh Machine: the workload sets GOGC, the memory
    limit, GOMAXPROCS). on_batch(mutator) is called after every batch of operations."""

    def __init__(self, machine, workload, *, gctrace_out=None, scavtrace=False, on_batch=None,
                 gogc=None, memory_limit=None):
        self.m, self.wl = machine, workload
        rt = self.rt = machine.runtime
        env = {"GOGC": "off" if (workload.gogc if gogc is None else gogc) < 0 else
               str(workload.gogc if gogc is None else gogc)}
        limit = workload.memory_limit if memory_limit is None else memory_limit
        if limit is not None:
            env["GOMEMLIMIT"] = str(limit)
        if scavtrace:
            env["GODEBUG"] = "scavtrace=1"
        gcinit(rt, env)
        rt.gc.procs = workload.gomaxprocs
        rt.gctrace_out = gctrace_out
        self.on_batch = on_batch
        machine.block_budget = 1 << 40
        if "gomemu.mutator" not in machine.symbols:
            from importlib import resources
            src = resources.files("asm").joinpath("mutator.s").read_text()
            machine.load([("asm/mutator.s", src)])
        self.rng = np.random.default_rng(workload.seed)
        kinds = []                     # every Garbage of every phase, one ring root each
        for ph in workload.phases:
            for g in ph.garbage:
                if g not in kinds:
                    kinds.append(g)
        self.kinds = kinds
        self.nroots = RING + len(kinds)
        self.roots = machine.persistentalloc(8 * self.nroots, 64)
        rt.gc.root_ranges.append((self.roots, self.nroots))
        if workload.globals_bytes:
            glb = machine.persistentalloc(workload.globals_bytes, 64)
            rt.gc.root_ranges.append((glb, workload.globals_bytes // 8))
        self.ops = machine.persistentalloc(BATCH * OP_WORDS * 8, 64)
        self.g = machine.new_goroutine()
        for gs in workload.goroutines:             # [[goroutines]]: parked, holding stack
            for _ in range(gs.count):
                machine.run_slow_path(rt.stacks.hold(gs.stack))
        self._types = {}
        self._type_tables = {}         # make -> (sizes met, sorted; their types): _types_for
        self._plans = {}               # id(phase) -> (phase, what _plan works out)
        self.allocs = 0                # allocations so far (the next stamp is allocs + 1)
        self.allocated = 0             # bytes requested so far
        self.live_n = 0                # live objects now in the holder
        self.ring_next = [0] * len(kinds)
        self._rows = []                # operations not yet run

    # ---- types -----------------------------------------------------------------------------
    def ptr_type(self, size):
        """A type of `size` bytes (a multiple of 8) with pointers in all words but the last."""
        t = self._types.get(("ptr", size))
        if t is None:
            t = self._types[("ptr", size)] = self.rt.new_type(size, range(size // 8 - 1))
        return t

    def _array_type(self, n, stride_words):
        t = self._types.get(("arr", n, stride_words))
        if t is None:
            t = self._types[("arr", n, stride_words)] = self.rt.new_type(
                8 * n * stride_words, range(0, n * stride_words, stride_words))
        return t

    # ---- operations ------------------------------------------------------------------------
    def _root(self, i):
        return self.roots + 8 * i

    def _emit(self, rows):
        self._rows.append(rows)
        if sum(len(r) for r in self._rows) >= BATCH:
            self.flush()

    def flush(self):
        """Run the operations emitted so far, BATCH at a time."""
        if not self._rows:
            return
        rows = np.concatenate(self._rows)
        self._rows = []
        for i in range(0, len(rows), BATCH):
            self.run_ops(rows[i:i + BATCH])

    def run_ops(self, rows):
        """Run operation rows (an (n, 8) int64 array in asm/mutator.s's format) as machine code."""
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        if rows.ndim != 2 or rows.shape[1] != OP_WORDS or len(rows) > BATCH:
            raise BadInput(f"operations must be at most {BATCH} rows of {OP_WORDS} words")
        self.m.mem.write(self.ops, rows.tobytes())
        self.m.call_on(self.g, "gomemu.mutator", self.ops, len(rows))
        if self.on_batch is not None:
            self.on_batch(self)

    def alloc_rows(self, sizes, types, dst, off1, off2):
        """Allocation operations; stamps are the allocation numbers."""
        n = len(sizes)
        rows = np.full((n, OP_WORDS), -1, dtype=np.int64)
        rows[:, 0] = sizes
        rows[:, 1] = types
        rows[:, 2] = np.where(np.asarray(sizes) >= 8, self.allocs + 1 + np.arange(n), 0)
        rows[:, 3] = rows[:, 7] = 0
        rows[:, 4], rows[:, 5], rows[:, 6] = dst, off1, off2
        self.allocs += n
        self.allocated += int(np.sum(sizes))
        return rows

    def copy_rows(self, src, soff1, soff2, dst, off1, off2):
        """Copy operations `*dst path = *src path`."""
        n = np.broadcast(src, soff1, dst, off1, off2).size
        rows = np.zeros((n, OP_WORDS), dtype=np.int64)
        rows[:, 1], rows[:, 2], rows[:, 3] = src, soff1, soff2
        rows[:, 4], rows[:, 5], rows[:, 6] = dst, off1, off2
        return rows

    # ---- the workload ----------------------------------------------------------------------
    def run(self):
        """The whole workload: the live set's holder, then each phase."""
        wl = self.wl
        self.live_cap = wl.live_max // wl.live.object_size if wl.live.bytes or wl.live_max else 0
        if self.live_cap:
            holder = self._array_type(self.live_cap, ELEM // 8)
            self._emit(self.alloc_rows([ELEM * self.live_cap], [holder], self._root(LIVE), -1, -1))
            self._uncount(ELEM * self.live_cap)     # the program's slice, not the workload's bytes
        for k, g in enumerate(self.kinds):
            if g.lifetime:
                self._emit(self.alloc_rows([8 * g.lifetime], [self._array_type(g.lifetime, 1)],
                                           self._root(RING + k), -1, -1))
                self._uncount(8 * g.lifetime)
        for ph in wl.phases:
            self.phase(ph)
        self.flush()

    def _uncount(self, size):
        """The program's own bookkeeping objects (slices, rings) are not the workload's bytes."""
        self.allocs -= 1
        self.allocated -= size

    def resize_live(self, nbytes):
        """Grow the live set with new objects, or drop objects from its end."""
        wl = self.wl
        n = min(nbytes // wl.live.object_size, self.live_cap)
        if n > self.live_n:
            size = wl.live.object_size
            typ = self.ptr_type(-(-size // 8) * 8) if wl.live.pointers else 0
            idx = np.arange(self.live_n, n)
            self._emit(self.alloc_rows(np.full(len(idx), size), np.full(len(idx), typ), self._root(LIVE),
                                       ELEM * idx, -1))
        elif n < self.live_n:
            idx = np.arange(n, self.live_n)
            self._emit(self.copy_rows(self._root(NIL), -1, -1, self._root(LIVE), ELEM * idx, -1))
        self.live_n = n

    def phase(self, ph):
        self.resize_live(ph.live)
        left = ph.allocate
        while left > 0:
            left -= self._garbage_batch(ph, left)
        if ph.idle_ns:
            self.flush()
            self.m.run_slow_path(self.rt.scavenger.idle(ph.idle_ns))
            if self.on_batch is not None:
                self.on_batch(self)

    def _sizes(self, dist, n):
        rng = self.rng
        if dist.kind == "fixed":
            return np.full(n, dist.sizes[0], dtype=np.int64)
        if dist.kind == "uniform":
            return rng.integers(dist.sizes[0], dist.sizes[1] + 1, n, dtype=np.int64)
        if dist.kind == "log":
            lo, hi = np.log(dist.sizes[0]), np.log(dist.sizes[1] + 1)
            return np.minimum(np.exp(rng.uniform(lo, hi, n)).astype(np.int64), dist.sizes[1])
        return np.asarray(dist.sizes, dtype=np.int64)[rng.choice(len(dist.sizes), n, p=dist.weights)]

    def _plan(self, ph):
        """What _garbage_batch needs of a phase, worked out once: (the kinds' weights as
        probabilities, their cumulative sums as Generator.choice makes them, the mean size, the
        ring of each kind)."""
        plan = self._plans.get(id(ph))
        if plan is None or plan[0] is not ph:
            weights = np.array([g.weight for g in ph.garbage])
            p = weights / weights.sum()
            mean = sum(g.object_size.mean() * w for g, w in zip(ph.garbage, p))
            cdf = p.cumsum()
            cdf /= cdf[-1]
            plan = self._plans[id(ph)] = (ph, p, cdf, mean, [self.kinds.index(g) for g in ph.garbage])
        return plan[1:]

    def _garbage_batch(self, ph, left):
        """Up to a batch of the phase's garbage (fewer when `left` bytes are reached); returns
        the bytes requested."""
        rng = self.rng
        p, cdf, mean, rings = self._plan(ph)
        n = int(max(1, min(BATCH // 2, left // max(1.0, mean) + 1)))
        # rng.choice(len(ph.garbage), n, p=p), as Generator.choice draws it (one uniform each)
        kind = cdf.searchsorted(rng.random(n), side="right")
        sizes = np.empty(n, dtype=np.int64)
        sel = [np.flatnonzero(kind == k) for k in range(len(ph.garbage))]
        for k, g in enumerate(ph.garbage):
            drawn = self._sizes(g.object_size, len(sel[k]))
            sizes[sel[k]] = np.maximum(16, (drawn + 7) // 8 * 8) if g.pointers else drawn
        cut = int(np.searchsorted(np.cumsum(sizes), left)) + 1
        if cut < n:
            kind, sizes = kind[:cut], sizes[:cut]
            sel = [i[:np.searchsorted(i, cut)] for i in sel]
        n = len(sizes)
        types = np.zeros(n, dtype=np.int64)
        dst = np.full(n, self._root(SINK), dtype=np.int64)
        off1 = np.full(n, -1, dtype=np.int64)
        writes = np.zeros(n, dtype=np.int64)
        if ph.retain:
            leak = rng.random(n) < ph.retain
            sizes[leak] = np.maximum(16, (sizes[leak] + 7) // 8 * 8)     # room for the chain's pointer
            lk = np.flatnonzero(leak)
            sel = [i[~leak[i]] for i in sel]
        else:
            leak, lk = None, ()
        for k, g in enumerate(ph.garbage):
            i, r = sel[k], rings[k]
            if g.pointers:
                types[i] = self._types_for(sizes[i], self.ptr_type)
            if g.lifetime:
                slots = (self.ring_next[r] + np.arange(len(i))) % g.lifetime
                self.ring_next[r] = int(self.ring_next[r] + len(i)) % g.lifetime
                dst[i], off1[i] = self._root(RING + r), 8 * slots
            if g.pointer_writes and self.live_n:
                writes[i] = g.pointer_writes
        if len(lk):
            types[lk] = self._types_for(sizes[lk], self.leak_type)
            dst[lk] = self._root(TMP)
        count = 1 + writes + (2 * leak if leak is not None else 0)
        start = np.cumsum(count) - count
        rows = np.empty((int(count.sum()), OP_WORDS), dtype=np.int64)
        rows[start] = self.alloc_rows(sizes, types, dst, off1, -1)
        # the new object's pointer writes: live[i].f = it, f a pointer word of live object i
        for j in range(1, int(writes.max(initial=0)) + 1):
            sel = np.flatnonzero(writes >= j)
            words = -(-self.wl.live.object_size // 8) - 1
            i = self.rng.integers(0, self.live_n, len(sel))
            f = self.rng.integers(0, words, len(sel))
            rows[start[sel] + j] = self.copy_rows(dst[sel], off1[sel], -1, self._root(LIVE), ELEM * i, 8 * f)
        # a leaked object: it.next = leak; leak = it
        if len(lk):
            rows[start[lk] + 1] = self.copy_rows(self._root(LEAK), -1, -1, self._root(TMP), 0, -1)[:1]
            rows[start[lk] + 2] = self.copy_rows(self._root(TMP), -1, -1, self._root(LEAK), -1, -1)[:1]
        self._emit(rows)
        return int(sizes.sum())

    def leak_type(self, size):
        """A leaked object's type: its first word points to the object leaked before it."""
        t = self._types.get(("leak", size))
        if t is None:
            t = self._types[("leak", size)] = self.rt.new_type(size, (0,))
        return t

    def _types_for(self, sizes, make):
        """make(size) for each of `sizes`, through a sorted table of the sizes met so far (one
        searchsorted a batch, not np.unique's sort); new sizes are made in ascending order,
        the order their types are laid out in emulated memory."""
        known, types = self._type_tables.get(make, (_NO_SIZES, _NO_SIZES))
        i = np.searchsorted(known, sizes)
        if len(sizes) and (i.max() >= len(known) or (known[i] != sizes).any()):
            known = np.union1d(known, sizes)
            types = np.asarray([make(u) for u in known.tolist()], dtype=np.int64)
            self._type_tables[make] = known, types
            i = np.searchsorted(known, sizes)
        return types[i]


SAMPLES = 500                  # samples of the heap over a run, about


class WorkloadRun:
    """A workload on a fresh machine, with what `gomemu run` reports: a record per GC
    cycle (docs/json.md, gomemu.run/v1) and samples of the heap over modeled time (after
    a batch of operations, about SAMPLES over the run, and at every cycle's end)."""

    def __init__(self, workload, *, gogc=None, memory_limit=None, gctrace_out=None, scavtrace_out=None,
                 checked=False, on_progress=None):
        from emu.machine import Machine
        self.wl = workload
        self.m = Machine(checked=False)
        self.rt = self.m.runtime
        self.on_progress = on_progress
        self.mutator = Mutator(self.m, workload, gctrace_out=gctrace_out, scavtrace=scavtrace_out is not None,
                               on_batch=self._sample, gogc=gogc, memory_limit=memory_limit)
        self.rt.scavenger.trace_out = scavtrace_out
        self.checker = None
        if checked:
            from runtime_model.checkgc import Checker
            self.checker = self.rt.gc.checker = Checker()
        self.rt.gc.on_cycle = self._cycle
        self.cycles = []
        self.samples = []              # (t_ns, heap_live, goal, trigger, rss, released)
        self.peak_rss = 0
        self._every = max(1, workload.total_allocated // SAMPLES)
        self._next_sample = 0

    @property
    def memory_limit(self):
        return self.rt.gc_controller.memory_limit

    def _now(self):
        c = self.rt.gc_controller
        self.rt.gc.sync_stats()          # the memory-limit goal reads mappedReady as it is now
        trigger, goal = c.trigger()
        rss = self.m.kernel.rss_bytes()
        self.peak_rss = max(self.peak_rss, rss)
        return self.m.clock.ns(), c.heap_live, goal, trigger, rss, self.rt.mheap.heap_released

    def _sample(self, mutator):
        if mutator.allocated >= self._next_sample:
            self.samples.append(self._now())
            self._next_sample = mutator.allocated + self._every
        if self.on_progress is not None:
            self.on_progress(mutator.allocated)

    def _cycle(self, cyc):
        now = self._now()
        self.samples.append(now)
        t, live, goal, trigger, rss, released = now
        self.cycles.append({
            "cycle": cyc.n, "forced": cyc.forced,
            "start_ns": cyc.t_sweep_term, "mark_ns": cyc.t_mark, "mark_termination_ns": cyc.t_mark_term,
            "end_ns": cyc.t_end,
            "heap_start": cyc.heap0, "heap_end": cyc.heap1, "heap_marked": cyc.heap2, "heap_goal": cyc.goal,
            "next_trigger": trigger, "stacks": cyc.stacks, "globals": cyc.globals,
            "assist_cpu_ns": cyc.assist_ns, "background_cpu_ns": cyc.bg_ns, "idle_cpu_ns": cyc.idle_ns,
            "scan_work": cyc.scan_work, "objects_marked": cyc.objects_marked,
            "gc_cpu_fraction": cyc.cpu_fraction, "rss": rss, "heap_released": released,
            "gctrace": cyc.gctrace(),
        })

    def run(self):
        self.mutator.run()
        self.samples.append(self._now())
        return self

    def summary(self):
        ns, gc = self.m.clock.ns(), self.rt.gc
        peak_heap = max([s[1] for s in self.samples] + [c["heap_end"] for c in self.cycles] + [0])
        return {
            "workload": self.wl.name, "cycles": len(self.rt.gc.cycles),
            "allocated": self.mutator.allocated, "allocations": self.mutator.allocs,
            "peak_heap": peak_heap, "peak_rss": self.peak_rss,
            "gc_cpu_fraction": gc.gc_cpu_ns / (ns * gc.procs) if ns else 0.0,     # gctrace's U%
            "modeled_ns": ns,
            "checked_cycles": self.checker.cycles if self.checker else None,
        }
