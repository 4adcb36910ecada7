"""The call-outs: the only places where machine code hands control to Python.

Each call-out is a Go runtime function that gomemu implements in Python. Its
symbol resolves to a one-byte stub (`ret`) on the call-out page; a code hook
on that page runs the Python function with the ABIInternal argument registers
and puts its results in AX, BX, ... before the `ret` executes. A handler that
needs the OS (heap growth) returns a generator yielding `OSCall`s; the machine runs
each named routine, with its real SYSCALL, and resumes the generator. refill and
allocLarge return one only when that call needs it (plain calls are cheaper).

| symbol                      | Go function it stands for                          |
|-----------------------------|----------------------------------------------------|
| runtime.(*mcache).refill    | mcache.go: (*mcache).refill -> mcentral -> mheap    |
| runtime.throw               | panic.go: throw (argument: an index into THROWS)   |
| runtime.profilealloc        | malloc.go: profilealloc                            |
| runtime.newstack            | stack.go: newstack -> copystack (called by asm/morestack.s; returns &gp.sched for gogo) |
| runtime.wbBufFlush          | mwbbuf.go: wbBufFlush -> wbBufFlush1 (shade the buffered pointers, reset p.wbBuf) |
| runtime.wbMove              | mbarrier.go: wbMove -> bulkBarrierPreWrite (the compiler copies after it) |
| runtime.typedmemmove        | mbarrier.go: typedmemmove (bulkBarrierPreWrite, then memmove)              |

In checked mode (Machine(checked=True)) each call-out first validates what it takes
from machine code (the mcache and span class, the span and its fields, the
size-class tables, p.wbBuf) and, for refill and allocLarge, the span it hands back.
"""

import math
import random
from dataclasses import dataclass

from unicorn.x86_const import UC_X86_REG_RSP

from emu.errors import BadInput, InvariantError
from emu.layout import NUM_SPAN_CLASSES, MCache
from runtime_model import mcache
from runtime_model.mem_linux import throw
from runtime_model.mspan import MSpan

# Messages of the throws in our routines. Go passes the string; the routines
# pass its index here (`$const_throw_<name>`).
THROWS = {
    "allocCountNotFull": "s.allocCount != s.nelems && freeIndex == s.nelems",
    "freeIndexInvalid": "freeIndex is not valid",
    "allocCountOverNelems": "s.allocCount > s.nelems",
    "freeindexPastNelems": "s.freeindex > s.nelems",
    "morestackOnG0": "morestack on g0",                 # proc.go: badmorestackg0
    "morestackOnGsignal": "morestack on gsignal",       # proc.go: badmorestackgsignal
    "mallocPanic": "not defined for sizeclass",         # malloc_stubs.go: mallocPanic
}
THROW_INDEX = {name: i for i, name in enumerate(THROWS)}
THROW_CONSTANTS = {f"const_throw_{name}": i for name, i in THROW_INDEX.items()}


@dataclass(frozen=True)
class Callout:
    symbol: str
    models: str
    handler: object      # handler(machine, *args) -> None | int | tuple | generator
    nargs: int           # argument registers it reads (AX, BX, CX, ...), so only those are fetched


def _run_pending(m):
    return m.take_pending_slow_path()


def _check_mcache_arg(m, c, what):
    if c != m.runtime.mcache:
        raise InvariantError(f"{what}: c = {c:#x} is not p0's mcache ({m.runtime.mcache:#x})")


# Go's ABIInternal passes a uint8 or bool in a register's low byte; the rest is not
# defined (compiled code leaves other values there), so narrow arguments are masked.

def _refill(m, c, spc):
    rt, spc = m.runtime, spc & 0xFF
    if m.checked:
        return _refill_checked(m, c, spc)
    return _background_after(rt, mcache.refill(rt, c, spc))


def _refill_checked(m, c, spc):
    rt = m.runtime
    _check_mcache_arg(m, c, "refill")
    rt.check_tables()                   # a broken SizeToSizeClass table is why spc would be wrong
    if not 2 <= spc < NUM_SPAN_CLASSES:
        raise InvariantError(f"refill: spc = {spc} is not the span class of a small size class")
    s = m.mem.u64(c + MCache.alloc + 8 * spc)
    if s == rt.emptymspan:
        rt.check_emptymspan()
    else:
        rt.mheap.check_span(s, f"mcache.alloc[{spc}]", spanclass=spc, cached=True)
    r = mcache.refill(rt, c, spc)
    if r is not None:
        yield from r
    rt.mheap.check_span(m.mem.u64(c + MCache.alloc + 8 * spc), "refilled", spanclass=spc, cached=True)
    rt.mheap.check_mirrors()
    yield from rt.scavenger.background()        # the background scavenger's due work


def _background_after(rt, r):
    """A refill's or a large allocation's end: the background scavenger's due work. r is
    the slow path's outcome: None (a refill), the large span, or a generator that gives
    either through machine code and OS calls. The call-out's result (None or the span's
    address), or a generator for the machine when anything needs the OS."""
    if r is None or r.__class__ is MSpan:
        bg = rt.scavenger.background()
        if not bg:                              # the common case: no generator at all
            return r if r is None else r.addr
        return _background_os(rt, r, bg)
    return _background_os(rt, r, None)


def _background_os(rt, r, bg):
    if bg is None:
        r = yield from r
        bg = rt.scavenger.background()
    yield from bg
    return r if r is None else r.addr


def _throw(m, idx):
    names = list(THROWS)
    throw(THROWS[names[idx]] if idx < len(names) else f"throw #{idx}")


def _profilealloc(m, mp, x, size):
    if m.checked and mp != m.symbol("runtime.m0"):
        raise InvariantError(f"profilealloc: mp = {mp:#x} is not m0")
    c = m.runtime.mcache_of(mp)
    rate = m.mem.u64(m.symbol("runtime.MemProfileRate"))
    m.mem.w64(c + MCache.memProfRate, rate)
    m.mem.w64(c + MCache.nextSample, m.runtime.next_sample(rate))
    m.runtime.mem_profile.append((x, size))


def _alloc_large(m, c, size, noscan):
    noscan = bool(noscan & 0xFF)
    if m.checked:
        return _alloc_large_checked(m, c, size, noscan)
    return _background_after(m.runtime, mcache.alloc_large(m.runtime, size, noscan))


def _alloc_large_checked(m, c, size, noscan):
    _check_mcache_arg(m, c, "allocLarge")
    if not 0 < size < 1 << 48:
        raise InvariantError(f"allocLarge: size = {size}")
    s = mcache.alloc_large(m.runtime, size, noscan)
    if s.__class__ is not MSpan:
        s = yield from s
    m.runtime.mheap.check_span(s.addr, "allocLarge", cached=False)
    m.runtime.mheap.check_mirrors()
    yield from m.runtime.scavenger.background()
    return s.addr


def _gc_assist_alloc(m, gp):
    if m.runtime.gc.phase:
        m.runtime.gc.assist(gp)
    else:                               # black allocation set up by hand, outside a cycle
        m.runtime.gc_assist_alloc(gp)


def _post_mallocgc_debug(m, x, elemsize, typ, size):
    m.runtime.trace_alloc(x, elemsize, typ, size)


def _newstack(m):
    from runtime_model import stack
    return (yield from stack.newstack(m.runtime.stacks))


@dataclass(frozen=True)
class GoTo:
    """A call-out's way of not returning: the machine continues at `routine` with
    `stack_args` as its ABI0 arguments (the words above the return address)."""
    routine: str
    stack_args: tuple = ()


@dataclass(frozen=True)
class StackResults:
    """Results of an ABI0 function: words written above the return address, from its
    `at`-th argument word on (ret+8*at(FP)...)."""
    words: tuple
    at: int = 0


def _write1(m, *_):
    """sys_linux_amd64.s: write1(fd, p, n) (ABI0): what the runtime prints (print, println,
    throw's messages) to standard output and error is kept in runtime.output, not written."""
    from unicorn.x86_const import UC_X86_REG_RSP
    sp = m.regs.read(UC_X86_REG_RSP)
    fd, p, n = m.mem.u64(sp + 8), m.mem.u64(sp + 16), m.mem.u32(sp + 24)
    if fd not in (1, 2):
        raise unsupported_error(m, f"writes to file descriptor {fd}", sp)
    m.runtime.output.append((fd, m.mem.read(p, min(n, 1 << 20))))
    return StackResults((n,), at=3)


def _nanotime1(m):
    """sys_linux_amd64.s: nanotime1 (vDSO clock_gettime(CLOCK_MONOTONIC)): modeled time."""
    return StackResults((m.clock.ns(),))


def _walltime(m):
    """sys_linux_amd64.s: walltime (sec int64, nsec int32): the modeled wall clock."""
    sec, nsec = m.clock.wall()
    return StackResults((sec, nsec))


def _newstack_then_gogo(m):
    """The real morestack calls newstack, which never returns: it ends in gogo(&gp.sched)
    (asm_amd64.s: gogo, ABI0, its argument on the stack)."""
    from runtime_model import stack
    sched = yield from stack.newstack(m.runtime.stacks)
    return GoTo("runtime.gogo", (sched,))


CALLOUTS = [
    Callout("runtime.(*mcache).refill", "mcache.go: (*mcache).refill", _refill, 2),
    Callout("gomemu.slowpath", "not Go: a slow path started from Python (run_slow_path)", _run_pending, 0),
    Callout("runtime.throw", "panic.go: throw", _throw, 1),
    Callout("runtime.profilealloc", "malloc.go: profilealloc", _profilealloc, 3),
    Callout("runtime.newstack", "stack.go: newstack", _newstack, 0),
    Callout("runtime.(*mcache).allocLarge", "mcache.go: (*mcache).allocLarge", _alloc_large, 3),
    Callout("runtime.gcAssistAlloc", "mgcmark.go: gcAssistAlloc", _gc_assist_alloc, 1),
    Callout("runtime.postMallocgcDebug", "malloc.go: postMallocgcDebug (allocfreetrace)",
            _post_mallocgc_debug, 4),
]


def _wb_buf_flush(m):
    from runtime_model import mwbbuf
    mwbbuf.wb_buf_flush(m)


def _wb_move(m, typ, dst, src):
    from runtime_model import mwbbuf
    mwbbuf.wb_move(m, typ, dst, src)


def _typedmemmove(m, typ, dst, src):
    from runtime_model import mwbbuf
    mwbbuf.typedmemmove(m, typ, dst, src)


# The write barrier's slow paths (runtime_model/mwbbuf.py).
CALLOUTS += [
    Callout("runtime.wbBufFlush", "mwbbuf.go: wbBufFlush", _wb_buf_flush, 0),
    Callout("runtime.wbMove", "mbarrier.go: wbMove", _wb_move, 3),
    Callout("runtime.typedmemmove", "mbarrier.go: typedmemmove", _typedmemmove, 3),
]


def _throw_string(m, ptr, n):
    """throw(s string), as the real runtime's code calls it; what the runtime printed just
    before (println ahead of the throw) leads the message, as it would on stderr."""
    printed = b"".join(data for fd, data in m.runtime.output[m.runtime.output_seen:] if fd == 2)
    m.runtime.output_seen = len(m.runtime.output)
    msg = m.mem.read(ptr, min(n, 4096)).decode("utf-8", "replace")
    if printed:
        from runtime_model.mem_linux import RuntimeThrow
        raise RuntimeThrow(printed.decode("utf-8", "replace").rstrip("\n") + "\nfatal error: " + msg)
    throw(msg)


def _mprof_malloc(m, mp, x, size):
    """mprof.go: mProf_Malloc: the sampled allocation, with its stack when asked for
    (runtime.profile_stacks: gomemu bench -memprofile)."""
    m.runtime.mem_profile.append((x, size))
    if m.runtime.profile_stacks is not None:
        from runtime_model.traceback import profile_stack
        m.runtime.profile_stacks.append((profile_stack(m, m.regs.read(UC_X86_REG_RSP)), size))


def _post_mallocgc_debug_image(m, x, elemsize, typ):
    """Go 1.27's postMallocgcDebug has no size argument: the record gets the slot size."""
    m.runtime.trace_alloc(x, elemsize, typ, elemsize)


def _gc_trigger_test(m, kind, now, n):
    """mgc.go: gcTrigger.test(t gcTrigger{kind, now, n}): the collector decides. mallocgc
    tests the trigger after a refill or a large allocation, once the allocation is done:
    there, the background mark workers also get the time that passed (and may finish the
    cycle) before the test."""
    m.runtime.gc.background()
    return int(m.runtime.gc.trigger_test(kind))


def _gc_start(m, kind, now, n):
    """mgc.go: gcStart(trigger): the mark phase begins (runtime_model/mgc.py)."""
    m.runtime.gc.start(kind)


def _gc(m):
    """mgc.go: GC (runtime.GC from the program): a whole forced cycle."""
    m.runtime.gc.collect()


def _read_mem_stats(m, stats):
    """mstats.go: ReadMemStats(m *MemStats) (without stopping a world gomemu does not have)."""
    from runtime_model.mstats import write_mem_stats
    write_mem_stats(m, stats)


def _int32(v):
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def _set_gc_percent(m, percent):
    """mgcpacer.go: setGCPercent (int32 in, int32 out), runtime/debug.SetGCPercent's."""
    from runtime_model.gcsettings import set_gc_percent
    return set_gc_percent(m.runtime, _int32(percent)) & 0xFFFFFFFF


def _set_memory_limit(m, limit):
    """mgcpacer.go: setMemoryLimit, runtime/debug.SetMemoryLimit's."""
    from runtime_model.gcsettings import set_memory_limit
    v = limit - (1 << 64) if limit >> 63 else limit
    return set_memory_limit(m.runtime, v) & 0xFFFFFFFFFFFFFFFF


def _free_os_memory(m):
    """mheap.go: runtime_debug_freeOSMemory: GC, then scavengeAll's madvise calls."""
    yield from m.runtime.scavenger.free_os_memory()


def _read_metrics(m, samples, n, cap):
    """metrics.go: readMetrics, runtime/metrics.Read's."""
    from runtime_model.metrics import read_samples
    read_samples(m, samples, n)


def _get_gc_mask_on_demand(m, typ):
    from runtime_model.gcmask import mask_on_demand
    return mask_on_demand(m, typ)


# Machine(image=...): the program's own runtime runs as machine code; these are the
# functions where it leaves its fast paths, by their linked names. Everything else in
# the table above that the real runtime has runs as the real code instead (profilealloc
# with nextSample, postMallocgcDebug, wbMove, typedmemmove).
IMAGE_CALLOUTS = [
    Callout("runtime.(*mcache).refill", "mcache.go: (*mcache).refill", _refill, 2),
    Callout("gomemu.slowpath", "not Go: a slow path started from Python (run_slow_path)", _run_pending, 0),
    Callout("runtime.throw", "panic.go: throw", _throw_string, 2),
    Callout("runtime.mProf_Malloc", "mprof.go: mProf_Malloc (the sample's record)", _mprof_malloc, 3),
    Callout("runtime.(*mcache).allocLarge", "mcache.go: (*mcache).allocLarge", _alloc_large, 3),
    Callout("runtime.gcAssistAlloc", "mgcmark.go: gcAssistAlloc", _gc_assist_alloc, 1),
    Callout("runtime.newstack", "stack.go: newstack (then gogo)", _newstack_then_gogo, 0),
    Callout("runtime.wbBufFlush", "mwbbuf.go: wbBufFlush", _wb_buf_flush, 0),
    Callout("runtime.gcTrigger.test", "mgc.go: gcTrigger.test", _gc_trigger_test, 3),
    Callout("runtime.gcStart", "mgc.go: gcStart", _gc_start, 3),
    Callout("runtime.GC", "mgc.go: GC", _gc, 0),
    Callout("runtime.ReadMemStats", "mstats.go: ReadMemStats", _read_mem_stats, 1),
    Callout("runtime/debug.setGCPercent", "mgcpacer.go: setGCPercent", _set_gc_percent, 1),
    Callout("runtime/debug.setMemoryLimit", "mgcpacer.go: setMemoryLimit", _set_memory_limit, 1),
    Callout("runtime/debug.freeOSMemory", "mheap.go: runtime_debug_freeOSMemory", _free_os_memory, 0),
    Callout("runtime/metrics.runtime_readMetrics", "metrics.go: readMetrics", _read_metrics, 3),
    Callout("runtime.getGCMaskOnDemand", "mbitmap.go: getGCMaskOnDemand", _get_gc_mask_on_demand, 1),
    Callout("runtime.postMallocgcDebug", "malloc.go: postMallocgcDebug (gomemu's allocation log while "
            "debug.malloc is set)", _post_mallocgc_debug_image, 3),
]


def _gopanic(m, typ, data):
    """panic.go: gopanic, entered with the panic value (an interface: type, data). Go would
    run the deferred calls and print the value; gomemu ends the call with the message."""
    from emu.errors import GoPanic
    from runtime_model.traceback import goroutine_frames, panic_message
    sp = m.regs.read(UC_X86_REG_RSP)
    raise GoPanic(panic_message(m, typ, data), goroutine_frames(m, m.mem.u64(sp), sp + 8))


# Functions of the program's runtime that gomemu does not run, with what they are for.
# Reaching one ends the call with an error naming the user's function and Go line.
UNSUPPORTED = {
    "runtime.newproc": "starts a goroutine (gomemu runs one goroutine at a time, with no scheduler)",
    "runtime.gopark": "blocks the goroutine (a channel, lock, select or sleep that must wait)",
    "runtime.mcall": "switches to the scheduler",
    "runtime.entersyscall": "makes a system call",
    "runtime.entersyscallblock": "makes a blocking system call",
    "runtime.stopTheWorld": "stops the world",
    "runtime.stopTheWorldGC": "stops the world",
    "runtime.exit": "exits the process",
    "runtime.raise": "sends a signal",
    # time_linux_amd64.s: time.now reads the vDSO clock on the g0 stack, where no Go frame
    # leads back to the caller: stopped at its entry instead.
    "time.now": "reads the wall clock, which gomemu does not model",
}


def unsupported_error(m, what, sp):
    """Unsupported naming what was reached, the user's function that led there and its line."""
    from emu.errors import Unsupported
    from runtime_model.traceback import goroutine_frames, where_in_user_code
    frames = goroutine_frames(m, m.mem.u64(sp), sp + 8)
    at = where_in_user_code(frames, m)
    if at is None:
        chain = " <- ".join(f for f, _, _ in frames[:4])
        return Unsupported(f"{what}, reached from {chain or 'outside Go code'}: gomemu does not run it")
    callee, fn, file, line = at
    via = f"calls {callee}, which {what}" if callee else f"{what}"
    return Unsupported(f"{fn} ({file}:{line}) {via}: gomemu does not run it")


def _unsupported(symbol, reason):
    def handler(m):
        raise unsupported_error(m, f"reaches {symbol} ({reason})", m.regs.read(UC_X86_REG_RSP))
    return handler


def _set_finalizer(m, obj_type, obj_data, fin_type, fin_data):
    """mfinal.go: SetFinalizer(obj, finalizer any). Simplified: the finalizer is recorded
    (runtime.finalizers), not attached as a span special; no finalizer goroutine runs."""
    if fin_type == 0:
        m.runtime.finalizers.pop(obj_data, None)
    else:
        m.runtime.finalizers[obj_data] = fin_data


IMAGE_CALLOUTS += [
    Callout("runtime.SetFinalizer", "mfinal.go: SetFinalizer (recorded, never run)", _set_finalizer, 4),
    Callout("runtime.gopanic", "panic.go: gopanic (the call ends with the message)", _gopanic, 2),
    Callout("runtime.nanotime1", "sys_linux_amd64.s: nanotime1 (the modeled clock)", _nanotime1, 0),
    Callout("runtime.walltime", "sys_linux_amd64.s: walltime (the modeled clock)", _walltime, 0),
    Callout("runtime.write1", "sys_linux_amd64.s: write1 (runtime output to fd 1 and 2, kept)", _write1, 0),
]


def _bench(m, what):
    if getattr(m, "bench", None) is None:
        raise BadInput(f"testing.(*B).{what} called outside a benchmark run by gomemu bench")
    return m.bench


def _start_timer(m, b):
    _bench(m, "StartTimer").start_timer()


def _stop_timer(m, b):
    _bench(m, "StopTimer").stop_timer()


def _reset_timer(m, b):
    _bench(m, "ResetTimer").reset_timer()


def _loop_slow_path(m, b):
    return _bench(m, "Loop").loop_slow_path()


def _report_metric(m, b, unit_ptr, unit_len):
    from emu.benchmark import report_metric
    report_metric(_bench(m, "ReportMetric"), unit_ptr, unit_len)


# emu/benchmark.py: a *testing.B's timer and loop, for programs that link testing.
BENCH_CALLOUTS = [
    Callout("testing.(*B).StartTimer", "benchmark.go: (*B).StartTimer", _start_timer, 1),
    Callout("testing.(*B).StopTimer", "benchmark.go: (*B).StopTimer", _stop_timer, 1),
    Callout("testing.(*B).ResetTimer", "benchmark.go: (*B).ResetTimer", _reset_timer, 1),
    Callout("testing.(*B).loopSlowPath", "benchmark.go: (*B).loopSlowPath", _loop_slow_path, 1),
    Callout("testing.(*B).ReportMetric", "benchmark.go: (*B).ReportMetric", _report_metric, 3),
]


def callouts_for(image):
    """The call-out table of a machine: the handwritten routines', or a program's with a
    trap for each unsupported function it links."""
    if image is None:
        return CALLOUTS
    traps = [Callout(sym, f"not run by gomemu: {why}", _unsupported(sym, why), 0)
             for sym, why in UNSUPPORTED.items() if image.has(sym)]
    bench = [c for c in BENCH_CALLOUTS if image.has(c.symbol)]
    return IMAGE_CALLOUTS + bench + traps


def next_sample(rng, rate):
    """malloc.go: nextSample/fastexprand: exponentially distributed sampling distance.

    Simplified: a seeded Python RNG stands for cheaprand, and math.log2 for the
    table-driven fastlog2, so samples are deterministic but not Go's exact values.
    """
    if rate == 0:
        return (1 << 63) - 1
    if rate == 1:
        return 0
    mean = min(rate, 0x7000000)
    q = rng.randrange(1 << 26) + 1
    qlog = min(math.log2(q) - 26, 0.0)
    return int(qlog * (-0.6931471805599453 * mean)) + 1


def new_sample_rng():
    return random.Random(0x60_6d_65_6d)   # fixed seed: runs are reproducible
