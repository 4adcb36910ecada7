"""runtime/stack.go: goroutine stacks: allocation, growth by copying, shrinking.

Every goroutine runs on its own contiguous stack [g.stack.lo, g.stack.hi). A
function that is not NOSPLIT starts by comparing SP (less its frame, for big
frames) with g.stackguard0 = stack.lo + stackGuard; when there is not enough
room it calls morestack (asm/morestack.s, machine code), which saves the
function's context in g.sched and its caller in m.morebuf, switches to g0 and
calls newstack, here. newstack allocates a stack twice the size (more if the
function's frame needs it), copystack copies the used part to the top of the
new stack and adjusts every pointer into the old one (frame pointers, and the
pointer slots the frames' stack maps name), frees the old stack and returns
&gp.sched; gogo (machine code) resumes the function from its start and the
check passes. At GC, shrinkstack halves a stack that uses under a quarter.

Allocation (stackalloc/stackfree) follows Go: stacks of the four small orders
(2, 4, 8, 16 KiB) come from the per-P cache `mcache.stackcache[order]` (a
free list threaded through the free stacks, in emulated memory), refilled
from and released to the global `stackpool` (32 KiB spans from
mheap.allocManual, carved into stacks on `mspan.manualFreeList`); larger
stacks get a span of their own, reused through `stackLarge` while GC runs.

Stack maps of emulated frames (Go reads them from the binary's funcdata). A
`FrameMap` says, for one function:
  frame   bytes its body keeps below the return address, saved BP included
          (Go's funcMaxSPDelta: the prologue's PUSHQ BP plus SUBQ $n, SP);
  locals  offsets from the frame's SP in the body, as the code writes them
          (`0x18(SP)`), of the words that may hold pointers at its call sites;
  args    offsets from argp (the caller's SP, just above the return address)
          of argument words that may hold pointers: stack arguments and the
          spill slots of register arguments (which the morestack path fills).
A function with no registered map gets its frame size from its prologue
(PUSHQ BP; SUBQ $n, SP) and no pointer slots, like assembly marked
NO_LOCAL_POINTERS. Frame pointers are always adjusted (Go's adjustframe).

The unwinder (Go's unwinder over pcsp tables) is simplified accordingly: the
frame that called morestack is stopped in its prologue, before its frame
exists (SP delta 0); every other frame is stopped at a call in its body (SP
delta = its whole frame). The walk ends at the return address gomemu.exit,
which stands for goexit at the top of every goroutine.

Simplified: g structs come from persistentalloc (Go: new(g) on the heap);
stack pools and stackLarge lists are Python lists of spans (their mspan
fields are real); a preemption request (stackguard0 == stackPreempt) resumes
the goroutine at once, as rescheduling the only goroutine would; no
sudogs/defers/panics to adjust (g._defer and g._panic are adjusted if set);
the GC phase is only what stackfree and stackpoolfree look at.
"""

from dataclasses import dataclass

import capstone

from emu import args as A
from emu import layout as L
from emu.errors import BadInput
from emu.pclntab import FuncFlagTopFrame
from runtime_model.mem_linux import RuntimeThrow, throw
from runtime_model.mspan import MSPAN_MANUAL
from runtime_model.sizeclasses import PAGE_SHIFT

U64 = (1 << 64) - 1
G, GOBUF, M = L.G, L.Gobuf, L.M
_cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)


class StackOverflow(RuntimeThrow):
    """newstack: the stack would grow past maxstacksize (debug.SetMaxStack): Go prints
    `runtime: goroutine stack exceeds N-byte limit` and dies with `fatal error: stack overflow`."""


@dataclass(frozen=True)
class FrameMap:
    """The stack map of one emulated function (see the module docstring)."""
    frame: int
    locals: tuple = ()
    args: tuple = ()


@dataclass
class Frame:
    """runtime/traceback.go: stkframe, as copystack's unwinder sees it."""
    fn: str
    pc: int
    sp: int            # the frame's SP (for the top frame: where its return address is)
    fp: int            # the caller's SP: sp + SP delta + return address
    varp: int          # the saved BP slot when argp - varp == 16
    argp: int
    lr: int            # return address
    top: bool          # the frame that called morestack (in its prologue)
    slots: tuple = ()  # addresses of the words its stack maps say may hold pointers

    @property
    def saved_bp(self):
        """Where the frame saved its caller's BP, or None (adjustframe adjusts it)."""
        return self.varp if self.argp - self.varp == 16 else None


@dataclass
class Copy:
    """What one copystack did: the Python-side cost of a stack growth or shrink."""
    goid: int
    reason: str        # "grow" or "shrink"
    old: tuple         # (lo, hi)
    new: tuple
    used: int          # bytes in use = bytes copied
    frames: int        # frames walked
    words_checked: int  # pointer slots the maps name, saved BPs, sched.bp/ctxt, g._defer/_panic
    adjusted: int      # of those, pointers into the old stack that were moved

    @property
    def old_size(self):
        return self.old[1] - self.old[0]

    @property
    def new_size(self):
        return self.new[1] - self.new[0]


def round2(x):
    """stack.go: round2: the smallest power of 2 >= x."""
    s = 0
    while 1 << s < x:
        s += 1
    return 1 << s


def stacklog2(n):
    """stack.go: stacklog2 (bits.Len64(n), as Go computes it)."""
    return n.bit_length()


def prologue(framesize, label="morestack"):
    """cmd/internal/obj/x86/obj6.go: stacksplit: the stack check the compiler puts at
    the start of a function whose frame (saved BP included) is `framesize` bytes, in
    Go assembler syntax, jumping to `label` when the stack must grow."""
    if framesize <= L.STACK_SMALL:
        return [("CMPQ", "SP, g_stackguard0(R14)"), ("JLS", label)]
    if framesize <= L.STACK_BIG:
        return [("LEAQ", f"-{framesize - L.STACK_SMALL}(SP), R12"),
                ("CMPQ", "R12, g_stackguard0(R14)"), ("JLS", label)]
    return [("MOVQ", "SP, R12"), ("SUBQ", f"${framesize - L.STACK_SMALL}, R12"), ("JCS", label),
            ("CMPQ", "R12, g_stackguard0(R14)"), ("JLS", label)]


def prologue_form(framesize):
    return "small" if framesize <= L.STACK_SMALL else "large" if framesize <= L.STACK_BIG else "huge"


def morestack_condition(framesize, sp, stackguard0):
    """Go's condition for calling morestack, as stacksplit's comments state it."""
    if framesize <= L.STACK_SMALL:
        return sp <= stackguard0                              # SP <= stackguard
    if framesize <= L.STACK_BIG:
        return (sp - (framesize - L.STACK_SMALL)) & U64 <= stackguard0   # SP-framesize <= stackguard-StackSmall
    if sp < framesize - L.STACK_SMALL:                        # the subtraction would wrap
        return True
    return sp - (framesize - L.STACK_SMALL) <= stackguard0


class Stacks:
    """The runtime's stack state: stackpool, stackLarge, maxstacksize, allgs, and
    the stack maps of emulated functions. `runtime` is emu/boot.py's Runtime."""

    def __init__(self, runtime):
        self.rt = runtime
        self.mem = runtime.mem
        self.machine = runtime.machine
        self.mheap = runtime.mheap
        self.m0 = runtime.symbol("runtime.m0")
        self.g0 = runtime.symbol("runtime.g0")
        self.pool = [[] for _ in range(L.NUM_STACK_ORDERS)]   # stackpool[order].item.span, first at [0]
        self.large = {}            # stackLarge.free[log2npage]: spans of free large stacks
        self.gc_running = False    # gcphase != _GCoff
        self.maxstacksize = L.MAX_STACK_SIZE
        self.maxstackceiling = L.MAX_STACK_CEILING
        self.allgs = []
        self.gfree = []            # sched.gFree: dead gs for reuse (gfput/gfget)
        self.next_goid = 1
        self.frame_maps = {}
        self._derived = {}
        self.copies = []           # a Copy per copystack, in order
        self.preemptions = 0
        self.poison_copy = False   # stack.go: stackPoisonCopy: fill old stacks with 0xfc, new ones with 0xfd
        # mstart: g0.sched.sp, where morestack puts SP to call newstack.
        self.mem.w64(self.g0 + G.sched + GOBUF.sp, L.STACK.end - 0x100)

    # ---- stack maps ------------------------------------------------------------------------
    def set_frame_map(self, fn, frame_map):
        """Register the stack map of an emulated function (by symbol name)."""
        self.frame_maps[fn] = frame_map

    def frame_map(self, fn):
        fm = self.frame_maps.get(fn)
        if fm is None:
            fm = self._derived.get(fn)
            if fm is None:
                fm = self._derived[fn] = FrameMap(frame_size_from_prologue(self.machine, fn))
        return fm

    # ---- the global pool -------------------------------------------------------------------
    def stackpoolalloc(self, order):
        """stack.go: stackpoolalloc: a stack from a span of the global pool."""
        mem, lst = self.mem, self.pool[order]
        s = lst[0] if lst else None
        if s is None:
            # no free stacks. Allocate another span worth.
            s = yield from self.mheap.alloc_manual(L.STACK_CACHE_SIZE >> PAGE_SHIFT)
            if s is None:
                throw("out of memory")
            if s.allocCount != 0:
                throw("bad allocCount")
            if s.manualFreeList != 0:
                throw("bad manualFreeList")
            s.elemsize = L.FIXED_STACK << order
            for i in range(0, L.STACK_CACHE_SIZE, s.elemsize):
                x = s.base() + i
                mem.w64(x, s.manualFreeList)
                s.manualFreeList = x
            lst.insert(0, s)
        x = s.manualFreeList
        if x == 0:
            throw("span has no free stacks")
        s.manualFreeList = mem.u64(x)
        s.allocCount += 1
        if s.manualFreeList == 0:
            lst.remove(s)          # all stacks in s are allocated
        return x

    def stackpoolfree(self, x, order):
        """stack.go: stackpoolfree: give stack x back to its span."""
        s = self.mheap.span_of(x)
        if s is None or s.state != MSPAN_MANUAL:
            throw("freeing stack not in a stack span")
        if s.manualFreeList == 0:
            self.pool[order].insert(0, s)      # s will now have a free stack
        self.mem.w64(x, s.manualFreeList)
        s.manualFreeList = x
        s.allocCount -= 1
        if not self.gc_running and s.allocCount == 0:
            # Span is completely free: return it to the heap now (while GC runs, freeStackSpans does).
            self.pool[order].remove(s)
            s.manualFreeList = 0
            self.mheap.free_manual(s)

    # ---- the per-P cache ---------------------------------------------------------------------
    def _cache(self, c, order):
        return c + L.MCache.stackcache + 16 * order        # stackfreelist{list, size}

    def stackcacherefill(self, c, order):
        """stack.go: stackcacherefill: half a cache's worth from the global pool."""
        lst = size = 0
        while size < L.STACK_CACHE_SIZE // 2:
            x = yield from self.stackpoolalloc(order)
            self.mem.w64(x, lst)
            lst = x
            size += L.FIXED_STACK << order
        sc = self._cache(c, order)
        self.mem.w64(sc, lst)
        self.mem.w64(sc + 8, size)

    def stackcacherelease(self, c, order):
        """stack.go: stackcacherelease: give stacks back until half a cache is left."""
        sc = self._cache(c, order)
        x, size = self.mem.u64(sc), self.mem.u64(sc + 8)
        while size > L.STACK_CACHE_SIZE // 2:
            y = self.mem.u64(x)
            self.stackpoolfree(x, order)
            x = y
            size -= L.FIXED_STACK << order
        self.mem.w64(sc, x)
        self.mem.w64(sc + 8, size)

    def stackcache_clear(self, c):
        """stack.go: stackcache_clear."""
        for order in range(L.NUM_STACK_ORDERS):
            sc = self._cache(c, order)
            x = self.mem.u64(sc)
            while x:
                y = self.mem.u64(x)
                self.stackpoolfree(x, order)
                x = y
            self.mem.w64(sc, 0)
            self.mem.w64(sc + 8, 0)

    def cache_state(self, order):
        """(list head, size) of p0's mcache.stackcache[order]."""
        sc = self._cache(self._mcache(), order)
        return self.mem.u64(sc), self.mem.u64(sc + 8)

    def _mcache(self):
        """thisg.m.p.ptr().mcache, or 0 without a P (then the global pool is used)."""
        p = self.mem.u64(self.m0 + M.p)
        return self.mem.u64(p + L.P.mcache) if p else 0

    # ---- stackalloc / stackfree ----------------------------------------------------------------
    @staticmethod
    def _order(n):
        order = 0
        while n > L.FIXED_STACK:
            order += 1
            n >>= 1
        return order

    def stackalloc(self, n):
        """stack.go: stackalloc(n): the low end of a new n-byte stack (generator)."""
        if n & (n - 1):
            throw("stack size not a power of 2")
        if n < L.FIXED_STACK << L.NUM_STACK_ORDERS and n < L.STACK_CACHE_SIZE:
            order = self._order(n)
            c = self._mcache()
            if not c:
                x = yield from self.stackpoolalloc(order)
            else:
                sc = self._cache(c, order)
                x = self.mem.u64(sc)
                if x == 0:
                    yield from self.stackcacherefill(c, order)
                    x = self.mem.u64(sc)
                self.mem.w64(sc, self.mem.u64(x))
                self.mem.w64(sc + 8, self.mem.u64(sc + 8) - n)
            return x
        npage = n >> PAGE_SHIFT
        log2npage = stacklog2(npage)
        s = None
        free = self.large.get(log2npage)
        if free:
            s = free.pop(0)
        if s is None:
            s = yield from self.mheap.alloc_manual(npage)
            if s is None:
                throw("out of memory")
            s.elemsize = n
        return s.base()

    def stackfree(self, lo, hi):
        """stack.go: stackfree(stk)."""
        n = hi - lo
        if n & (n - 1):
            throw("stack not a power of 2")
        if n < L.FIXED_STACK << L.NUM_STACK_ORDERS and n < L.STACK_CACHE_SIZE:
            order = self._order(n)
            c = self._mcache()
            if not c:
                self.stackpoolfree(lo, order)
                return
            sc = self._cache(c, order)
            if self.mem.u64(sc + 8) >= L.STACK_CACHE_SIZE:
                self.stackcacherelease(c, order)
            self.mem.w64(lo, self.mem.u64(sc))
            self.mem.w64(sc, lo)
            self.mem.w64(sc + 8, self.mem.u64(sc + 8) + n)
            return
        s = self.mheap.span_of(lo)
        if s is None or s.state != MSPAN_MANUAL:
            throw("bad span state")
        if not self.gc_running:
            self.mheap.free_manual(s)
        else:
            self.large.setdefault(stacklog2(s.npages), []).append(s)

    def free_stack_spans(self):
        """stack.go: freeStackSpans, at the end of a GC cycle: empty pool spans and
        stackLarge go back to the heap."""
        for order, lst in enumerate(self.pool):
            for s in list(lst):
                if s.allocCount == 0:
                    lst.remove(s)
                    s.manualFreeList = 0
                    self.mheap.free_manual(s)
        for log2, lst in self.large.items():
            while lst:
                self.mheap.free_manual(lst.pop(0))

    # ---- goroutines ------------------------------------------------------------------------------
    def malg(self, stacksize):
        """proc.go: malg: a new g with a stacksize-byte stack (generator)."""
        gp = self.machine.persistentalloc(G.SIZE, 64)
        if stacksize >= 0:
            stacksize = round2(stacksize)
            lo = yield from self.stackalloc(stacksize)
            self._set_stack(gp, lo, lo + stacksize)
            self.mem.w64(gp + G.stackguard1, U64)
            self.mem.w64(lo, 0)    # clear the bottom word of the stack
        return gp

    def _set_stack(self, gp, lo, hi):
        self.mem.w64(gp + G.stack + L.Stack.lo, lo)
        self.mem.w64(gp + G.stack + L.Stack.hi, hi)
        self.mem.w64(gp + G.stackguard0, lo + L.STACK_GUARD)

    def newproc(self):
        """proc.go: newproc1 without a function to start: gfget, else malg(stackMin);
        the g waits with its SP at the top of its stack (less newproc1's totalSize)
        and goexit as its pc. Generator; returns the g."""
        gp = yield from self.gfget()
        if gp is None:
            gp = yield from self.malg(L.STACK_MIN)
            self.allgs.append(gp)
        self._park_at_top(gp)
        self.mem.w64(gp + G.goid, self.next_goid)
        self.next_goid += 1
        return gp

    def hold(self, used):
        """A parked goroutine with `used` bytes of its stack in use, frames without pointers
        (a goroutine blocked deep in a recursion over byte arrays: tests/programs/churn
        -goroutines), on the power-of-two stack that leaves the guard free, where newstack's
        doublings end. Large stacks come from the heap (stackalloc). Generator; returns the g."""
        gp = yield from self.malg(round2(used + L.STACK_GUARD))
        self.allgs.append(gp)
        self._park_at_top(gp)
        self.mem.w64(gp + G.sched + GOBUF.sp, self.stack(gp)[1] - used)
        self.mem.w64(gp + G.goid, self.next_goid)
        self.next_goid += 1
        return gp

    def parked(self):
        """(bytes in use of each, bytes allocated in all) of the stacks of every waiting
        goroutine but the running one: what markroot's stack jobs scan, a job a goroutine
        (scanstack: hi - sched.sp), and what gcController.maxStackScan counts
        (addScannableStack: hi - lo)."""
        curg = self.mem.u64(self.m0 + M.curg)
        used, size = [], 0
        for gp in self.allgs:
            if gp == curg or self.mem.u32(gp + G.atomicstatus) != L.G_WAITING:
                continue
            lo, hi = self.stack(gp)
            used.append(hi - self.mem.u64(gp + G.sched + GOBUF.sp))
            size += hi - lo
        return used, size

    def _park_at_top(self, gp):
        sp = self.stack(gp)[1] - L.NEWPROC_TOP
        mem = self.mem
        mem.fill(gp + G.sched, GOBUF.SIZE)
        mem.w64(gp + G.sched + GOBUF.sp, sp)
        mem.w64(gp + G.stktopsp, sp)
        mem.w64(gp + G.sched + GOBUF.pc, self.machine.goexit_pc)
        mem.w64(gp + G.sched + GOBUF.g, gp)
        mem.w32(gp + G.atomicstatus, L.G_WAITING)

    def gfget(self):
        """proc.go: gfget: a dead g, given a stack of the starting size if it has none."""
        if not self.gfree:
            return None
        gp = self.gfree.pop()
        lo, hi = self.stack(gp)
        if lo == 0:
            lo = yield from self.stackalloc(L.STACK_MIN)
            self._set_stack(gp, lo, lo + L.STACK_MIN)
        else:
            self.mem.w64(gp + G.stackguard0, lo + L.STACK_GUARD)
        return gp

    def gfput(self, gp):
        """proc.go: gdestroy + gfput: a stack of other than the starting size is freed."""
        self.mem.w32(gp + G.atomicstatus, L.G_DEAD)
        lo, hi = self.stack(gp)
        if lo and hi - lo != L.STACK_MIN:
            self.stackfree(lo, hi)
            self.mem.w64(gp + G.stack + L.Stack.lo, 0)
            self.mem.w64(gp + G.stack + L.Stack.hi, 0)
            self.mem.w64(gp + G.stackguard0, 0)
        self.gfree.append(gp)

    def check_runnable(self, gp):
        """BadInput unless gp is a goroutine made by newproc that is waiting to run."""
        if not isinstance(gp, int) or isinstance(gp, bool) or gp not in self.allgs:
            what = f"{gp:#x}" if isinstance(gp, int) else repr(gp)
            raise BadInput(f"g {what} is not a goroutine made by new_goroutine")
        status = self.mem.u32(gp + G.atomicstatus)
        if status == L.G_DEAD:
            raise BadInput(f"g {gp:#x} is dead (it exited or failed)")
        if status not in (L.G_WAITING, L.G_RUNNABLE):
            raise BadInput(f"g {gp:#x} is not runnable (status {status})")

    def execute(self, gp):
        """proc.go: execute: gp runs on m0: m.curg = gp, gp.m = m0, TLS g = gp."""
        if self.mem.u32(gp + G.atomicstatus) not in (L.G_WAITING, L.G_RUNNABLE):
            raise BadInput(f"goroutine {gp:#x} is not runnable (status {self.mem.u32(gp + G.atomicstatus)})")
        self.mem.w32(gp + G.atomicstatus, L.G_RUNNING)
        self.mem.w64(self.m0 + M.curg, gp)
        self.mem.w64(gp + G.m, self.m0)
        self.mem.w64(self.m0 + M.tls, gp)

    def park(self, gp):
        """The call on gp returned: back to g0; gp waits at the top of its stack."""
        self.mem.w64(self.m0 + M.curg, self.g0)
        self.mem.w64(self.m0 + M.tls, self.g0)
        self.mem.w64(gp + G.m, 0)
        self._park_at_top(gp)

    def died(self, gp):
        """The call on gp stopped with an error (a fatal error in Go): gp is dead."""
        self.mem.w64(self.m0 + M.curg, self.g0)
        self.mem.w64(self.m0 + M.tls, self.g0)
        self.mem.w64(gp + G.m, 0)
        self.gfput(gp)

    def stack(self, gp):
        return self.mem.u64(gp + G.stack + L.Stack.lo), self.mem.u64(gp + G.stack + L.Stack.hi)

    def set_max_stack(self, n):
        """runtime/debug.SetMaxStack (rdebug.go: setMaxStack): returns the previous limit."""
        A.integer("n", n, 1, A.GO_INT_MAX)
        out, self.maxstacksize = self.maxstacksize, n
        return out

    # ---- frames ------------------------------------------------------------------------------
    def frames(self, pc, sp, top=True):
        """The frames from (pc, sp) up to goexit. With top=True the first frame is
        stopped in its prologue (sp points at its return address), as at morestack;
        otherwise it is stopped in its body (sp is its SP there). A frame of the
        program's compiled code is described by its pclntab (frame size at the pc,
        the stack maps at the call site, stack objects: emu/pclntab.py), a frame of
        gomemu's own routines by its FrameMap."""
        mem, text = self.mem, self.machine.text
        image = self.machine.image
        out = []
        while pc != self.machine.exit_addr:
            if image is not None and image.text[0] <= pc < image.text[1]:
                fr = image.pclntab.frame(pc, sp)
                lr = mem.u64(fr.return_pc_slot)
                slots = list(fr.pointer_slots())
                for obj in fr.objects:
                    base = fr.object_addr(obj)
                    if base >= fr.sp:             # allocated in the frame already
                        slots += [base + 8 * i for i in obj.mask.bits()]
                out.append(Frame(fr.func.name, pc, sp, fr.fp, fr.varp, fr.argp, lr, top, tuple(slots)))
                if fr.func.flag & FuncFlagTopFrame:          # goexit
                    break
            else:
                fn = text.routine_at(pc)
                if fn is None:
                    throw(f"unknown pc {pc:#x}")
                fm = self.frame_map(fn)
                fp = sp + (0 if top else fm.frame) + 8
                varp = fp - 8
                if varp > sp:
                    varp -= 8          # the saved frame pointer
                lr = mem.u64(fp - 8)
                slots = tuple([] if top else [sp + off for off in fm.locals]) + tuple(fp + off for off in fm.args)
                out.append(Frame(fn, pc, sp, fp, varp, fp, lr, top, slots))
            if len(out) > 1 << 20:
                throw("traceback did not unwind completely")
            pc, sp, top = lr, out[-1].fp, False
        return out

    def frame_size(self, pc):
        """funcMaxSPDelta of the function at pc: the frame newstack must make room for."""
        image = self.machine.image
        if image is not None and image.text[0] <= pc < image.text[1]:
            return image.pclntab.findfunc(pc).max_sp_delta()
        fn = self.machine.text.routine_at(pc)
        return self.frame_map(fn).frame if fn is not None else 0

    # ---- newstack / copystack ------------------------------------------------------------------
    def copystack(self, gp, newsize, reason="grow"):
        """stack.go: copystack(gp, newsize) (generator)."""
        mem = self.mem
        if mem.u64(gp + G.syscallsp):
            throw("stack growth not allowed in system call")
        old_lo, old_hi = self.stack(gp)
        if old_lo == 0:
            throw("nil stackbase")
        sched_sp = mem.u64(gp + G.sched + GOBUF.sp)
        used = old_hi - sched_sp
        new_lo = yield from self.stackalloc(newsize)
        new_hi = new_lo + newsize
        if self.poison_copy:
            mem.fill(new_lo, newsize, 0xFD)
        delta = (new_hi - old_hi) & U64
        counts = [0, 0]

        def adjustpointer(addr):
            counts[0] += 1
            p = mem.u64(addr)
            if old_lo <= p < old_hi:
                mem.w64(addr, (p + delta) & U64)
                counts[1] += 1

        # memmove(new.hi - used, old.hi - used, used)
        mem.write(new_hi - used, mem.read(old_hi - used, used))
        # adjustctxt, adjustdefers, adjustpanics
        adjustpointer(gp + G.sched + GOBUF.ctxt)
        adjustpointer(gp + G.sched + GOBUF.bp)
        adjustpointer(gp + 40)     # g._defer
        adjustpointer(gp + 32)     # g._panic
        self._set_stack(gp, new_lo, new_hi)
        mem.w64(gp + G.sched + GOBUF.sp, new_hi - used)
        mem.w64(gp + G.stktopsp, (mem.u64(gp + G.stktopsp) + delta) & U64)
        # adjustframe for every frame, unwinding the new stack
        frames = self.frames(mem.u64(gp + G.sched + GOBUF.pc), new_hi - used)
        for f in frames:
            if f.saved_bp is not None:
                adjustpointer(f.saved_bp)
            for a in f.slots:
                adjustpointer(a)
        if self.poison_copy:
            mem.fill(old_lo, old_hi - old_lo, 0xFC)
        self.stackfree(old_lo, old_hi)
        rec = Copy(mem.u64(gp + G.goid), reason, (old_lo, old_hi), (new_lo, new_hi), used, len(frames),
                   counts[0], counts[1])
        self.copies.append(rec)
        return rec

    def newstack(self):
        """stack.go: newstack, called by morestack on g0. Returns &gp.sched, which the
        machine code hands to gogo (Go's newstack calls gogo itself). Generator."""
        mem, m0 = self.mem, self.m0
        morebuf_g = mem.u64(m0 + M.morebuf + GOBUF.g)
        gp = mem.u64(m0 + M.curg)
        if morebuf_g and mem.u64(morebuf_g + G.stackguard0) == L.STACK_FORK:
            throw("stack growth after fork")
        if morebuf_g != gp:
            throw("runtime: wrong goroutine in newstack")
        for f in (GOBUF.pc, GOBUF.lr, GOBUF.sp, GOBUF.g):
            mem.w64(m0 + M.morebuf + f, 0)
        stackguard0 = mem.u64(gp + G.stackguard0)
        lo, hi = self.stack(gp)
        if stackguard0 == L.STACK_PREEMPT:
            # A preemption request, not a full stack: the only goroutine is rescheduled at once.
            self.preemptions += 1
            mem.w64(gp + G.stackguard0, lo + L.STACK_GUARD)
            return gp + G.sched
        if lo == 0:
            throw("missing stack in newstack")
        sched_sp = mem.u64(gp + G.sched + GOBUF.sp)
        sp = sched_sp - 8
        if sp < lo:
            throw(f"runtime: split stack overflow: {sp:#x} < {lo:#x}")
        oldsize = hi - lo
        newsize = oldsize * 2
        # Make sure we grow at least as much as needed to fit the new frame.
        needed = self.frame_size(mem.u64(gp + G.sched + GOBUF.pc)) + L.STACK_GUARD
        used = hi - sched_sp
        while newsize - used < needed:
            newsize *= 2
        if stackguard0 == L.STACK_FORCE_MOVE:
            newsize = oldsize
        if newsize > self.maxstacksize or newsize > self.maxstackceiling:
            limit = min(self.maxstacksize, self.maxstackceiling)
            raise StackOverflow(f"runtime: goroutine stack exceeds {limit}-byte limit\n"
                                f"runtime: sp={sp:#x} stack=[{lo:#x}, {hi:#x}]\n"
                                "fatal error: stack overflow")
        mem.w32(gp + G.atomicstatus, L.G_COPYSTACK)
        yield from self.copystack(gp, newsize)
        mem.w32(gp + G.atomicstatus, L.G_RUNNING)
        return gp + G.sched

    # ---- shrinking at GC ---------------------------------------------------------------------
    def shrinkstack(self, gp):
        """stack.go: shrinkstack: halve a stack that uses under a quarter (generator).
        Returns the Copy, or None when the stack stays."""
        lo, hi = self.stack(gp)
        if lo == 0:
            throw("missing stack in shrinkstack")
        if self.mem.u32(gp + G.atomicstatus) not in (L.G_WAITING, L.G_RUNNABLE):
            throw("bad status in shrinkstack")
        if self.mem.u64(gp + G.syscallsp):
            throw("shrinkstack at bad time")
        oldsize = hi - lo
        newsize = oldsize // 2
        # Don't shrink the allocation below the minimum-sized stack allocation.
        if newsize < L.FIXED_STACK:
            return None
        # Compute how much of the stack is currently in use and only shrink the
        # stack if gp is using less than a quarter of it (the nosplit reserve counts as used).
        avail = hi - lo
        used = hi - self.mem.u64(gp + G.sched + GOBUF.sp) + L.STACK_NOSPLIT
        if used >= avail // 4:
            return None
        return (yield from self.copystack(gp, newsize, reason="shrink"))

    def gc_shrink_stacks(self):
        """What a GC cycle does to stacks: markroot's scanstack shrinks each goroutine
        that is not running (shrinkstack), and mark termination returns empty stack
        spans to the heap (freeStackSpans). Generator; returns the Copies made."""
        out = []
        self.gc_running = True
        try:
            for gp in self.allgs:
                if self.mem.u32(gp + G.atomicstatus) in (L.G_WAITING, L.G_RUNNABLE):
                    rec = yield from self.shrinkstack(gp)
                    if rec is not None:
                        out.append(rec)
        finally:
            self.gc_running = False
        self.free_stack_spans()
        return out


def newstack(stacks):
    """The call-out behind runtime.newstack (emu/callouts.py)."""
    return (yield from stacks.newstack())


def frame_size_from_prologue(machine, fn):
    """Go's funcMaxSPDelta from the code: PUSHQ BP (8) plus SUBQ $n, SP after the
    stack check; 0 for a function that makes no frame."""
    entry = machine.symbol(fn)
    code = machine.mem.read(entry, 64)
    delta = 0
    for _, _, mn, ops in _cs.disasm_lite(code, entry):
        if mn == "push" and ops == "rbp":
            delta += 8
        elif mn == "sub" and ops.startswith("rsp, "):
            return delta + int(ops.split(", ")[1], 0)
        elif mn in ("ret", "call", "jmp") or (delta and mn not in ("mov",)):
            break
    return delta


def recursion_source(name, framesize):
    """An emulated recursive Go function whose frames point into each other, for
    tests, `gomemu step stack` and the report:

        func rec(n int, p *int) int {   // frame: framesize bytes, saved BP included
            x := n
            q := &x
            if n == 0 { return *p }
            return rec(n-1, &x) + *p + *q
        }

    The prologue is the one the compiler emits for the frame size. Its stack map
    is `recursion_frame_map(framesize)`: p and q are pointers into the stack."""
    if framesize < 0x30 or framesize % 8:
        raise BadInput(f"frame size must be a multiple of 8 of at least 0x30, not {framesize}")
    check = "\n".join(f"\t{mn}\t{ops}" for mn, ops in prologue(framesize))
    locals_ = framesize - 8
    return f"""// {name}: a recursive function with a {framesize}-byte frame ({prologue_form(framesize)} prologue).
TEXT {name}(SB), 0, ${locals_:#x}-16
	// the stack check (cmd/internal/obj/x86: stacksplit)
{check}
	PUSHQ	BP
	MOVQ	SP, BP
	SUBQ	${locals_:#x}, SP
	// x := n (0(SP) and 8(SP) are the spill slots of the callee's arguments)
	MOVQ	AX, 0x10(SP)
	// p is kept for after the call
	MOVQ	BX, 0x18(SP)
	// q := &x
	LEAQ	0x10(SP), CX
	MOVQ	CX, 0x20(SP)
	// if n == 0
	TESTQ	AX, AX
	JNE	recurse
	// return *p
	MOVQ	(BX), AX
	JMP	done
recurse:
	// rec(n-1, &x)
	DECQ	AX
	LEAQ	0x10(SP), BX
	CALL	{name}(SB)
	// + *p
	MOVQ	0x18(SP), CX
	ADDQ	(CX), AX
	// + *q
	MOVQ	0x20(SP), CX
	ADDQ	(CX), AX
done:
	ADDQ	${locals_:#x}, SP
	POPQ	BP
	RET
morestack:
	// spill the register arguments to their slots, call morestack, reload, start again
	MOVQ	AX, 0x8(SP)
	MOVQ	BX, 0x10(SP)
	CALL	runtime·morestack_noctxt(SB)
	MOVQ	0x8(SP), AX
	MOVQ	0x10(SP), BX
	JMP	{name}(SB)
"""


def recursion_frame_map(framesize):
    """The stack map of recursion_source: p (0x18) and q (0x20) in the body; the
    spill slot of p (argp+8) at entry."""
    return FrameMap(framesize, locals=(0x18, 0x20), args=(8,))


def recursion_result(n, pv):
    """What recursion_source's rec(n, &v) returns when v == pv, computed in Python."""
    total, x = 0, pv
    for k in range(n, 0, -1):
        total += x + k
        x = k
    return total + x
