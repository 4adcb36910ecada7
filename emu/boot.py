"""Bringing up the emulated Go runtime: what schedinit and mallocinit set up.

Writes the runtime's data into emulated memory (size-class tables, g0, m0,
p0 and its mcache, emptymspan, TLS) and creates the Python side of the
runtime's package-level state (`Runtime`: mheap_, gcController, memstats).
"""

import struct
from dataclasses import dataclass

from emu import args as A
from emu import layout as L
from emu.callouts import new_sample_rng, next_sample
from emu.errors import BadInput, InvariantError
from runtime_model import mwbbuf
from runtime_model import sizeclasses as sc
from runtime_model.mcache import MCacheStats
from runtime_model.mheap import MHeap
from runtime_model.pacer import GcControllerState
from runtime_model.stack import Stacks

TINY_SPAN_CLASS = sc.make_span_class(sc.TINY_SIZE_CLASS, True)   # malloc.go: tinySpanClass
G0_STACK_GUARD = 928       # stack.go: stackGuard on linux/amd64 (StackGuard multiplier 1)
GC_OVER_ASSIST_WORK = 64 << 10   # mgcpacer.go: gcOverAssistWork
MAX_TYPE_SIZE = 1 << 40          # the largest object Machine.mallocgc makes
# internal/runtime/gc's tables in emulated memory: (name, element format, Go's values).
SIZE_CLASS_TABLES = [("SizeClassToSize", "H", sc.CLASS_TO_SIZE), ("SizeClassToNPages", "B", sc.CLASS_TO_NPAGES),
                     ("SizeClassToDivMagic", "I", sc.CLASS_TO_DIVMAGIC), ("SizeToSizeClass8", "B", sc.SIZE_TO_CLASS8),
                     ("SizeToSizeClass128", "B", sc.SIZE_TO_CLASS128)]


# malloc_stubs.go: mallocPanic's message (Go panics; the routine throws). Appended to the
# call-out's message table, so its index follows the routines' own throws.


def size_specialized_routine(size, scan):
    """The routine malloc_tables_generated.go puts at mallocScanTable[size] (scan) or
    mallocNoScanTable[size]: the copy for size's class, mallocPanic where none serves
    (mkmalloc.go: noscan from maxTinySize, scan from 1 byte)."""
    if size == 0 or (not scan and size < sc.TINY_SIZE):
        return "runtime.mallocPanic"
    cls = sc.SIZE_TO_CLASS8[-(-size // sc.SMALL_SIZE_DIV)]
    return f"runtime.mallocgc{'SmallScanNoHeader' if scan else 'SmallNoScan'}SC{cls}"


def _i64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def malloc_path(size, ptr_bytes):
    """Which path mallocgc takes for `size` bytes of a type with `ptr_bytes` pointer bytes."""
    if size == 0:
        return "zero"
    if size > sc.MAX_SMALL_NOSCAN:
        return "large"
    if ptr_bytes:
        return "small-scan" if size <= sc.MIN_SIZE_FOR_MALLOC_HEADER else "small-scan-header"
    return "tiny" if size < sc.TINY_SIZE else "small-noscan"


@dataclass(frozen=True)
class AllocRecord:
    """One allocfreetrace line."""
    event: str          # "alloc" or "free"
    address: int
    size: int           # requested bytes (0 for frees, where Go does not know it)
    elemsize: int
    spanclass: int
    path: str
    type: str

    def __str__(self):
        return (f"{self.event} {self.address:#x} size={self.size} elemsize={self.elemsize} "
                f"spanclass={self.spanclass} path={self.path}" + (f" type={self.type}" if self.type else ""))
P_RUNNING = 1              # runtime2.go: _Prunning
# Packages whose init tasks run_inits leaves out: gomemu boots the runtime itself (their
# inits start goroutines and read CPU features and the environment).
RUNTIME_PACKAGES = {"runtime", "internal/bytealg", "internal/cpu", "internal/godebug"}
# runtime1.go: parseRuntimeDebugVars's defaults on linux (GODEBUG empty): the fields of
# runtime.debug that are not zero.
IMAGE_DEBUG_DEFAULTS = {
    "cgocheck": 1, "invalidptr": 1, "adaptivestackstart": 1, "madvdontneed": 1,
    "traceadvanceperiod": 1_000_000_000,     # trace.go: defaultTraceAdvancePeriod, 1 s in ns
    "containermaxprocs": 1, "decoratemappings": 1, "profstackdepth": 128, "updatemaxprocs": 1,
    "tracebacklabels": 1,
}


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
        self.profile_stacks = None  # a list to collect (stack, size) of each sample into, or None
        self.assists = []          # (g, scan work) per gcAssistAlloc
        self.alloc_trace = []      # allocfreetrace records, when runtime.debug.malloc is set
        self.type_names = {}       # type descriptor address -> name
        self.finalizers = {}       # object -> its finalizer's funcval (runtime.SetFinalizer)
        self.output = []           # (fd, bytes) the runtime printed (write1), in order
        self.output_seen = 0       # of those, how many a throw's message has shown
        # (address, Go's bytes, name, format) of each size-class table, for checked mode
        self._tables = [(machine.symbols[f"internal/runtime/gc.{name}"], struct.pack(f"<{len(v)}{fmt}", *v), name, fmt)
                        for name, fmt, v in SIZE_CLASS_TABLES if f"internal/runtime/gc.{name}" in machine.symbols]
        self._rng = new_sample_rng()
        if machine.image is None:
            self._write_tables()
            if machine.size_specialized:
                self._write_malloc_tables()
        else:
            self._boot_image(machine.image)
        if machine.image is not None and machine.image.has("runtime.disableMemoryProfiling") and \
                self.mem.u8(self.symbol("runtime.disableMemoryProfiling")):
            # proc.go: schedinit: the linker found nothing that reads the memory profile
            # (no runtime.memProfileInternal), so MemProfileRate = 0, whatever it was asked
            # to be (Go overrides GODEBUG=memprofilerate the same way).
            mem_profile_rate = 0
        self.mem.w64(self.symbol("runtime.MemProfileRate"), mem_profile_rate)
        # The memory holding all the tables (gaps included) when they lie close together,
        # as in the data segment: one read then checks them all.
        lo = min((a for a, *_ in self._tables), default=0)
        hi = max((a + len(w) for a, w, *_ in self._tables), default=0)
        self._tables_block = (lo, self.mem.read(lo, hi - lo) if 0 < hi - lo <= 4096 else b"")
        self.mcache = self._boot_scheduler()     # p0's mcache
        self.stacks = Stacks(self)               # stack.go: stackpool, stackLarge, maxstacksize; allgs
        from runtime_model.mgc import Collector
        self.gc = Collector(self)                # mgc.go: the collector's cycle
        self.gctrace_out = None                  # GODEBUG=gctrace=1: callback(line) per cycle
        from runtime_model.mgclimit import GcCPULimiter
        from runtime_model.mgcscavenge import Scavenger
        from runtime_model.mstats import CpuStats
        self.limiter = GcCPULimiter(self)        # mgclimit.go: gcCPULimiter
        self.scavenger = Scavenger(self)         # mgcscavenge.go: scavenge, scavenger
        from runtime_model.mgcsweep import Sweeper
        self.sweeper = Sweeper(self)             # mgcsweep.go: sweep, mheap_'s sweep pacing
        self.mheap.scavenger = self.scavenger
        self.cpu_stats = CpuStats()              # mstats.go: work.cpuStats

    def next_sample(self, rate):
        return next_sample(self._rng, rate)

    def _write_tables(self):
        for name, fmt, values in SIZE_CLASS_TABLES:
            self.mem.write(self.symbol(f"internal/runtime/gc.{name}"), struct.pack(f"<{len(values)}{fmt}", *values))

    def _write_malloc_tables(self):
        """malloc_tables_generated.go: mallocScanTable and mallocNoScanTable, filled in
        with the assembled routines' addresses (the linker's job in Go)."""
        for name, scan in (("runtime.mallocScanTable", True), ("runtime.mallocNoScanTable", False)):
            base = self.symbol(name)
            for size in range(L.SIZE_SPECIALIZED_LIMIT):
                self.mem.w64(base + 8 * size, self.symbol(size_specialized_routine(size, scan)))

    def _boot_image(self, image):
        """What the program's own initialisation would have set that its runtime's
        machine code reads (schedinit, mallocinit, parsedebugvars, osinit, procresize).
        CPU features come from the emulated CPU's CPUID (emu/cpuinit.py).
        The program's data and bss are loaded as linked: the size-class and malloc
        tables, MemProfileRate and firstmoduledata already hold their values.
        Simplified: p0 comes from persistentalloc (Go: new(p) in procresize) and is
        named runtime.p0 like the handwritten machine's; one P (GOMAXPROCS=1)."""
        mem, sym = self.mem, self.symbol
        p0 = self.machine.persistentalloc(L.P.SIZE, 64)
        self.machine.symbols["runtime.p0"] = p0
        allp = self.machine.persistentalloc(8, 8)
        mem.w64(allp, p0)
        for field, v in ((0, allp), (8, 1), (16, 1)):           # allp = []*p{p0}
            mem.w64(sym("runtime.allp") + field, v)
        mem.w32(sym("runtime.gomaxprocs"), 1)
        mem.w64(sym("runtime.physPageSize"), L.PAGE)            # osinit: from the auxiliary vector
        mem.w64(sym("runtime.physHugePageSize"), 2 << 20)       # /sys/kernel/mm/transparent_hugepage
        dbg = sym("runtime.debug")
        for field, v in IMAGE_DEBUG_DEFAULTS.items():
            mem.w32(dbg + image.field_offset("runtime.debug", field), v)
        # debug.malloc (bool): mallocgc's pre/post debug hooks, by the name the handwritten
        # machine gives it
        self.machine.symbols["runtime.debug.malloc"] = dbg + image.field_offset("runtime.debug", "malloc")
        from emu.cpuinit import write_cpu_features
        self.cpu_features = write_cpu_features(mem, image, sym)   # rt0_go, cpuinit, memmoveBits

    def run_inits(self):
        """proc.go: main's doInit over firstmoduledata.inittasks: each package's init
        functions, in the linker's order, on a goroutine (as Go's main goroutine runs them).
        The runtime's own tasks are not run (gomemu boots the runtime itself). A package
        whose init reaches something gomemu cannot run is left half-initialised, as far as
        it got; returns [(package, error)] for those."""
        from emu.errors import GomemuError
        image, mem, m = self.machine.image, self.mem, self.machine
        md = self.symbol("runtime.firstmoduledata")
        off = image.struct_fields("runtime.moduledata")["inittasks"]
        tasks, n = mem.u64(md + off), mem.u64(md + off + 8)
        failures = []
        for i in range(n):
            t = mem.u64(tasks + 8 * i)
            nfns = mem.u32(t + 4)
            fns = [mem.u64(t + 8 + 8 * k) for k in range(nfns)]
            pkg = image.display(image.pclntab.findfunc(fns[0]).name).rsplit(".init", 1)[0] if fns else ""
            if mem.u32(t) == 2 or pkg in RUNTIME_PACKAGES:
                continue
            mem.w32(t, 1)
            for fn in fns:
                g = m.new_goroutine()
                try:
                    m.call_on(g, "gomemu.init", sp=None, entry=fn)
                except GomemuError as e:
                    failures.append((pkg, e))
                    break
                m.goexit(g)
            else:
                mem.w32(t, 2)
        self.init_failures = failures
        return failures

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
        mwbbuf.reset(mem, p0)                 # procresize's wbBuf.reset for the new P
        return c

    def new_type(self, size, pointer_words=(), name=None):
        """A type descriptor (internal/abi.Type) in emulated memory, as the linker
        would put one in rodata: `size` bytes, pointers at the given word indexes."""
        A.integer("size", size, 0, MAX_TYPE_SIZE)
        words = -(-size // 8)
        if isinstance(pointer_words, (str, bytes)) or not hasattr(pointer_words, "__iter__"):
            raise BadInput(f"pointer_words must be a sequence of word indexes, not {pointer_words!r}")
        pointer_words = [A.integer(f"pointer_words of a {size}-byte type", w, 0, words - 1) for w in pointer_words]
        if name is not None and not isinstance(name, str):
            raise BadInput(f"name must be a string, not {name!r}")
        ptr_words = max(pointer_words) + 1 if pointer_words else 0
        mask = bytearray(max(8, -(-ptr_words // 64) * 8))    # GCData covers PtrBytes, read as whole uintptrs
        for w in pointer_words:
            mask[w // 8] |= 1 << (w % 8)
        t = self.machine.persistentalloc(L.Type.SIZE + len(mask), 8)
        self.mem.w64(t + L.Type.Size_, size)
        self.mem.w64(t + L.Type.PtrBytes, ptr_words * 8)
        self.mem.w8(t + L.Type.Align_, 8)
        self.mem.w8(t + L.Type.FieldAlign_, 8)
        self.mem.w64(t + L.Type.GCData, t + L.Type.SIZE)
        self.mem.write(t + L.Type.SIZE, bytes(mask))
        self.type_names[t] = name or f"[{size}]byte" + (f"+ptrs{sorted(pointer_words)}" if pointer_words else "")
        return t

    def gc_assist_alloc(self, gp):
        """mgcmark.go: gcAssistAlloc: pay an allocation debt with scan work.

        Simplified: there is no heap graph to scan yet, so the scan work the
        pacer's assist ratio asks for counts as done at once (after stealing
        background credit, as Go does), and the g's balance is credited.
        """
        c = self.gc_controller
        debt = -_i64(self.mem.u64(gp + L.G.gcAssistBytes))
        scan_work = int(c.assist_work_per_byte * float(debt))
        if scan_work < GC_OVER_ASSIST_WORK:
            scan_work = GC_OVER_ASSIST_WORK
            debt = int(c.assist_bytes_per_work * float(scan_work))
        balance = _i64(self.mem.u64(gp + L.G.gcAssistBytes))
        if c.bg_scan_credit > 0:
            stolen = min(c.bg_scan_credit, scan_work)
            balance += (1 + int(c.assist_bytes_per_work * float(stolen))) if stolen < scan_work else debt
            c.bg_scan_credit -= stolen
            scan_work -= stolen
        if scan_work:
            balance += 1 + int(c.assist_bytes_per_work * float(scan_work))
        self.mem.w64(gp + L.G.gcAssistBytes, balance)
        self.assists.append((gp, scan_work))

    def trace_alloc(self, x, elemsize, typ, size):
        """malloc.go: postMallocgcDebug -> tracealloc (GODEBUG=allocfreetrace=1)."""
        s = self.mheap.span_of(x)
        self.alloc_trace.append(AllocRecord("alloc", x, size, elemsize, s.spanclass if s else -1,
                                            malloc_path(size, typ and self.mem.u64(typ + L.Type.PtrBytes)),
                                            self.type_names.get(typ, "")))

    def read_mem_stats(self):
        """runtime.ReadMemStats: every MemStats field by its Go name (runtime_model/mstats.py)."""
        from runtime_model.mstats import read_mem_stats
        return read_mem_stats(self)

    def tracing_allocs(self):
        return bool(self.mem.u8(self.symbol("runtime.debug.malloc")))

    def trace_free(self, x, elemsize, spanclass):
        """mgcsweep.go: tracefree, for each object a sweep frees."""
        self.alloc_trace.append(AllocRecord("free", x, 0, elemsize, spanclass,
                                            "large" if spanclass >> 1 == 0 else "small", ""))

    def mcache_of(self, mp):
        """mcache.go: getMCache(mp)."""
        p = self.mem.u64(mp + L.M.p)
        return self.mem.u64(p + L.P.mcache) if p else self.mem.u64(self.symbol("runtime.mcache0"))

    # ---- checked mode (Machine(checked=True)) ------------------------------------------------
    def check_tables(self):
        """The size-class tables in emulated memory are still Go's."""
        lo, block = self._tables_block
        if block and self.mem.read(lo, len(block)) == block:
            return
        for addr, want, name, fmt in self._tables:
            got = self.mem.read(addr, len(want))
            if got != want:
                n = len(want) // struct.calcsize(fmt)
                i, g, w = next((i, g, w) for i, (g, w) in enumerate(zip(struct.unpack(f"<{n}{fmt}", got),
                                                                      struct.unpack(f"<{n}{fmt}", want))) if g != w)
                raise InvariantError(f"internal/runtime/gc.{name}[{i}] = {g} in emulated memory; Go's is {w}")

    def check_emptymspan(self):
        """emptymspan, the span of every empty mcache slot, stays all zero."""
        from runtime_model.mspan import span_fields
        f = span_fields(self.mem, self.emptymspan)
        bad = [f"{k} = {v}" for k, v in f.items() if v]
        if bad:
            raise InvariantError(f"emptymspan ({self.emptymspan:#x}) must stay all zero: {', '.join(bad)}")

    def check_mcache(self):
        """Every slot of p0's mcache holds emptymspan or a sound cached span of its class."""
        c = self.mcache
        slots = struct.unpack(f"<{L.NUM_SPAN_CLASSES}Q", self.mem.read(c + L.MCache.alloc, 8 * L.NUM_SPAN_CLASSES))
        for spc, a in enumerate(slots):
            if a == self.emptymspan:
                continue
            where = f"mcache.alloc[{spc}]"
            if a not in self.mheap.live_mspans:
                raise InvariantError(f"{where} = {a:#x} is not an mspan of the heap (nor emptymspan)")
            if spc >> 1 == 0:
                raise InvariantError(f"{where} = {a:#x}: size class 0 (large objects) is never cached")
            self.mheap.check_span(a, where, spanclass=spc, cached=True)

    def check_state(self):
        """Everything the machine code relies on: the tables, emptymspan, the mcache's
        spans, p0's wbBuf. Raises InvariantError naming the first thing broken."""
        self.check_tables()
        self.check_emptymspan()
        self.check_mcache()
        mwbbuf.check(self.mem, self.symbol("runtime.p0"))

    def check_object(self, span_addr, x, size, what, fields=None):
        """x, of `size` bytes, lies in an allocated slot of the heap span at span_addr
        (which the caller has checked)."""
        from runtime_model.mspan import span_fields
        f = fields or span_fields(self.mem, span_addr)
        base, elemsize = f["startAddr"], f["elemsize"]
        i = (x - base) // elemsize if x >= base else -1
        slot = base + i * elemsize
        if not (0 <= i < f["nelems"] and x + max(size, 1) <= min(slot + elemsize, f["limit"])):
            raise InvariantError(f"{what}: {x:#x} (+{size}) is not inside a slot of mspan {span_addr:#x} "
                                 f"[{base:#x}, {f['limit']:#x})")
        if i >= f["freeindex"] and not self.mem.u8(f["allocBits"] + i // 8) >> (i % 8) & 1:
            raise InvariantError(f"{what}: {x:#x} is in slot {i} of mspan {span_addr:#x}, which is free")

    def check_allocation(self, x, size):
        """What mallocgc returned: the tables, the span x came from (cached in the mcache
        for a small object), and x inside an allocated slot of it."""
        from runtime_model.mspan import span_fields
        self.check_tables()
        if size == 0:
            if x != self.symbol("runtime.zerobase"):
                raise InvariantError(f"mallocgc(0) returned {x:#x}, not &zerobase")
            return
        heap = self.mheap
        a = heap.spans_entry(x)
        if a not in heap.live_mspans:
            self.check_state()            # a broken mcache span names the cause
            raise InvariantError(f"mallocgc({size}) = {x:#x} is in no span of the heap")
        f = span_fields(self.mem, a)
        spc = f["spanclass"]
        if spc >> 1 == 0:
            heap.check_span(a, "a large object's span", cached=False, fields=f)
        elif spc == TINY_SPAN_CLASS and size < sc.TINY_SIZE and x & ~(sc.TINY_SIZE - 1) == \
                self.mem.u64(self.mcache + L.MCache.tiny):
            # Combined into the current tiny block, which mallocgcTiny keeps when a later block
            # leaves less room (size >= c.tinyoffset), even after the span it came from has been
            # replaced in the mcache by a refill.
            heap.check_span(a, "the current tiny block's span", spanclass=spc, fields=f)
        elif spc >= L.NUM_SPAN_CLASSES or self.mem.u64(self.mcache + L.MCache.alloc + 8 * spc) != a:
            self.check_state()
            raise InvariantError(f"mallocgc({size}) = {x:#x} is in mspan {a:#x}, which mcache does not "
                                 f"cache for spanclass {spc}")
        else:
            heap.check_span(a, f"mcache.alloc[{spc}]", spanclass=spc, cached=True, fields=f)
        self.check_object(a, x, size, "mallocgc", fields=f)
