"""Bringing up the emulated Go runtime: what schedinit and mallocinit set up.

Writes the runtime's data into emulated memory (size-class tables, g0, m0,
p0 and its mcache, emptymspan, TLS) and creates the Python side of the
runtime's package-level state (`Runtime`: mheap_, gcController, memstats).
"""

from emu import layout as L
from emu.callouts import new_sample_rng, next_sample
from runtime_model import sizeclasses as sc
from runtime_model.mcache import MCacheStats
from runtime_model.mheap import MHeap
from runtime_model.pacer import GcControllerState

G0_STACK_GUARD = 928       # stack.go: stackGuard on linux/amd64 (StackGuard multiplier 1)
P_RUNNING = 1              # runtime2.go: _Prunning


class Runtime:
    """The runtime's globals, split between emulated memory and Python."""

    def __init__(self, machine, mem_profile_rate):
        self.machine = machine
        self.mem = machine.mem
        self.symbol = machine.symbol
        self.emptymspan = self.symbol("runtime.emptymspan")
        self.mheap = MHeap(machine, self.symbol("runtime.mheap_"), L.MHeap)
        self.gc_controller = GcControllerState()
        self.stats = MCacheStats(sc.NUM_SIZE_CLASSES)
        self.refills = []          # (spc, span address) per mcache.refill, in order
        self.mem_profile = []      # (address, size) of every sampled allocation
        self.bytes_marked = 0
        self._rng = new_sample_rng()
        self._write_tables()
        self.mem.w64(self.symbol("runtime.MemProfileRate"), mem_profile_rate)
        self.mcache = self._boot_scheduler()     # p0's mcache

    def next_sample(self, rate):
        return next_sample(self._rng, rate)

    def _write_tables(self):
        mem, sym = self.mem, self.symbol
        for i, v in enumerate(sc.CLASS_TO_SIZE):
            mem.w16(sym("internal/runtime/gc.SizeClassToSize") + 2 * i, v)
        mem.write(sym("internal/runtime/gc.SizeClassToNPages"), bytes(sc.CLASS_TO_NPAGES))
        for i, v in enumerate(sc.CLASS_TO_DIVMAGIC):
            mem.w32(sym("internal/runtime/gc.SizeClassToDivMagic") + 4 * i, v)
        mem.write(sym("internal/runtime/gc.SizeToSizeClass8"), bytes(sc.SIZE_TO_CLASS8))
        mem.write(sym("internal/runtime/gc.SizeToSizeClass128"), bytes(sc.SIZE_TO_CLASS128))

    def _boot_scheduler(self):
        """g0 on the system stack, m0 with its TLS, p0 with a fresh mcache (allocmcache)."""
        mem, sym = self.mem, self.symbol
        g0, m0, p0 = sym("runtime.g0"), sym("runtime.m0"), sym("runtime.p0")
        mem.w64(g0 + L.G.stack + L.Stack.lo, L.STACK.base)
        mem.w64(g0 + L.G.stack + L.Stack.hi, L.STACK.end)
        mem.w64(g0 + L.G.stackguard0, L.STACK.base + G0_STACK_GUARD)
        mem.w64(g0 + L.G.stackguard1, L.STACK.base + G0_STACK_GUARD)
        mem.w64(g0 + L.G.m, m0)
        mem.w64(m0 + L.M.g0, g0)
        mem.w64(m0 + L.M.curg, g0)
        mem.w64(m0 + L.M.tls, g0)          # -8(FS): the current g
        mem.w64(m0 + L.M.p, p0)
        mem.w32(p0 + L.P.status, P_RUNNING)
        mem.w64(p0 + L.P.m, m0)
        c = self.machine.persistentalloc(L.MCache.SIZE, 64)
        for spc in range(L.NUM_SPAN_CLASSES):
            mem.w64(c + L.MCache.alloc + 8 * spc, self.emptymspan)
        mem.w64(c + L.MCache.nextSample, self.next_sample(mem.u64(sym("runtime.MemProfileRate"))))
        mem.w64(p0 + L.P.mcache, c)
        wb = p0 + L.P.wbBuf
        mem.w64(wb + L.WBBuf.next, wb + L.WBBuf.buf)
        mem.w64(wb + L.WBBuf.end, wb + L.WBBuf.buf + 8 * L.WBBuf.ENTRIES)
        return c

    def mcache_of(self, mp):
        """mcache.go: getMCache(mp)."""
        p = self.mem.u64(mp + L.M.p)
        return self.mem.u64(p + L.P.mcache) if p else self.mem.u64(self.symbol("runtime.mcache0"))
