"""runtime/mgc.go: the garbage collector's cycle, driving the emulated heap.

A cycle runs as Go's does, in the machine's modeled time (emu/clock.py):

  trigger     mallocgc's own machine code tests gcTrigger{gcTriggerHeap} after a
              refill or a large allocation (call-out gcTrigger.test: heapLive >=
              the pacer's trigger), and calls gcStart; runtime.GC forces a cycle.
  gcStart     the last cycle's sweep finished (the mutator's sweepone loop, then
              finishsweep_m), sweep termination, the pacer's startCycle,
              setGCPhase(_GCmark): writeBarrier.enabled and gcBlackenEnabled are
              set in emulated memory, so from here the mutator's machine code (the
              compiler's and the runtime's) takes the write barrier and allocates
              black, exactly where Go would. The roots are shaded: data and bss
              through the program's pointer masks, the running goroutine's stack
              through its stack maps, parked goroutines' stacks, the mcache's tiny
              block, registered root ranges. Their CPU time (the root jobs) is owed.
  marking     concurrent: whenever the mutator enters the runtime's slow paths,
              the background workers get the CPU time that passed (the pacer's
              dedicated/fractional workers, and idle workers on idle Ps): root jobs
              first, then scan work at MARK_NS_PER_BYTE; allocating goroutines in
              debt do assist work (gcAssistAlloc), which stops them for its
              duration, and park (gcParkAssist) when there is none to do.
  gcMarkDone  when the grey set is empty: p.wbBuf is flushed and shaded; if that
              leaves nothing to scan, mark termination.
  termination writeBarrier and gcBlackenEnabled off, the pacer's endCycle and
              resetLive (heapMarked), gcSweep (sweepgen += 2), the mcache released,
              gcControllerCommit (gcPaceSweeper), the gctrace line.
  sweep       concurrent, as mgcsweep.go's (runtime_model/mgcsweep.py: Sweeper): bgsweep
              on an idle P, the allocating mutator's proportional sweep
              (deductSweepCredit), mcentral.cacheSpan's and the page reclaimer's.

Simplified: one mutator goroutine runs at a time (the others are parked at the
top of their stacks), so "concurrent" work is interleaved at the runtime's slow
paths; stop-the-world phases cost fixed modeled times; objects with finalizers are
roots (finalizers never run). The costs are stated constants (below, with their
sources), not measurements of the host.
"""

import numpy as np

from emu.layout import G, GCWork, MCache, P
from runtime_model.mgcmark import HeapMarker
from runtime_model.mgcsweep import release_all
from runtime_model.mstats import mapped_ready
from runtime_model.pacer import _i64

# Modeled costs of the collector's work, in ns (emu/clock.py runs the mutator at 3.6 GHz,
# one instruction per cycle). Each is a median of real go1.27.3 gctrace figures of
# tests/programs/churn on this machine (tests/data/churn/*.gctrace, cycles 10 on, GOMAXPROCS=2);
# docs/real_runtime_costs.md gives the arithmetic, tests/test_workload.py rechecks it.
STW_SWEEP_TERM_NS = 48_000       # sweep termination's clock (gogc100: median 0.048 ms)
STW_MARK_TERM_NS = 40_000        # mark termination's clock (gogc100: median 0.041 ms)
STW_MARK_TERM_PARKED_NS = 4_000  # the same when the mutator is parked in an assist, so stopping the
                                 # world preempts no running goroutine: small_memlimit4 (live heap
                                 # above the limit, assists park) median 0.004 ms, 63% of its
                                 # cycles under 0.01 ms against 0-13% in the other shapes
# Mark CPU (assist + background + idle, median a cycle) of the real shapes: gogc100 0.301 ms
# (1,025 live objects of 64 KiB), small 0.202 ms (129), globals 2.735 ms (gogc100 plus 8 MiB
# of pointer globals), stacks 1.904 ms (gogc100 plus 16 MiB of parked stacks).
MARK_NS_PER_LARGE_OBJECT = 110   # greying an object of a large span (spanOf, its own mspan's mark
                                 # bit, pageMarks): (0.301 - 0.202 ms) / 896 more 64 KiB objects
MARK_FIXED_NS = 188_000          # a cycle's fixed mark work (root jobs: spans, finalizers, the
                                 # workers' start and stop): small's 0.202 ms less 129 objects
MARK_NS_PER_BYTE = 0.29          # scan work, globals and heap: (2.735 - 0.301 ms) / 8 MiB of globals
STACK_NS_PER_BYTE = 0.0955       # stack scanning, per byte in use: (1.904 - 0.301 ms) / 16 MiB
                                 # of stacks in 1 KiB frames (scanstack: unwinding, stack maps)
MARK_NS_PER_OBJECT = 10          # greying a small object. Stated: the real shapes have none; a
                                 # span-at-a-time (Green Tea) mark bit is cheaper than a large
                                 # object's, whose figure is per span as much as per object.

GC_OFF, GC_MARK, GC_MARKTERMINATION = 0, 1, 2     # mgc.go: _GCoff, _GCmark, _GCmarktermination
TRIGGER_HEAP, TRIGGER_TIME, TRIGGER_CYCLE = 0, 1, 2   # mgc.go: gcTriggerKind


def itoa_div(val, dec):
    """mgc.go: itoaDiv: val with a decimal point dec digits from the right."""
    s = str(val)
    if dec == 0:
        return s
    s = s.rjust(dec + 1, "0")
    return s[:-dec] + "." + s[-dec:]


def fmt_ns_as_ms(ns):
    """mgc.go: fmtNSAsMS: whole milliseconds from 10 ms, else two significant digits."""
    if ns >= 10_000_000:
        return itoa_div(ns // 1_000_000, 0)
    x = ns // 1000
    if x == 0:
        return "0"
    dec = 3
    while x >= 100:
        x //= 10
        dec -= 1
    return itoa_div(x, dec)


class Cycle:
    """mgc.go: work's per-cycle record, and what gctrace prints from it."""

    def __init__(self, n, forced, procs):
        self.n = n                       # memstats.numgc after this cycle
        self.forced = forced
        self.procs = procs
        self.t_sweep_term = self.t_mark = self.t_mark_term = self.t_end = 0
        self.heap0 = self.heap1 = self.heap2 = 0
        self.goal = self.stacks = self.globals = 0
        self.assist_ns = self.bg_ns = self.idle_ns = 0
        self.cpu_fraction = 0.0
        self.scan_work = self.objects_marked = 0

    def gctrace(self):
        """gcMarkTermination's `gctrace=1` line, in Go 1.27's format."""
        util = int(self.cpu_fraction * 100)
        clock = "+".join(fmt_ns_as_ms(b - a) for a, b in ((self.t_sweep_term, self.t_mark),
                                                           (self.t_mark, self.t_mark_term),
                                                           (self.t_mark_term, self.t_end)))
        stw1 = self.procs * (self.t_mark - self.t_sweep_term)
        stw2 = self.procs * (self.t_end - self.t_mark_term)
        cpu = (f"{fmt_ns_as_ms(stw1)}+{fmt_ns_as_ms(self.assist_ns)}/{fmt_ns_as_ms(self.bg_ns)}/"
               f"{fmt_ns_as_ms(self.idle_ns)}+{fmt_ns_as_ms(stw2)}")
        line = (f"gc {self.n} @{itoa_div(self.t_sweep_term // 1_000_000, 3)}s {util}%: {clock} ms clock, "
                f"{cpu} ms cpu, {self.heap0 >> 20}->{self.heap1 >> 20}->{self.heap2 >> 20} MB, "
                f"{self.goal >> 20} MB goal, {self.stacks >> 20} MB stacks, {self.globals >> 20} MB globals, "
                f"{self.procs} P")
        return line + (" (forced)" if self.forced else "")


class Collector:
    """The collector of one machine: `runtime.gc` (see the module docstring)."""

    def __init__(self, runtime, procs=1):
        self.rt = runtime
        self.m = runtime.machine
        self.procs = procs               # GOMAXPROCS as the pacer and gctrace see it
        self.phase = GC_OFF
        self.cycles = []                 # Cycle per completed cycle (memstats.numgc = len)
        self.cycle = None                # the cycle in progress
        self.marker = None
        self.root_ranges = []            # (address, words): registered roots, every word a pointer
        self.enabled = True              # memstats.enablegc
        self.pause_total_ns = 0
        self.gc_cpu_ns = 0               # GC CPU time but the idle workers' (memstats.gc_cpu_fraction's
                                         # numerator: GCTotalTime - GCIdleTime, mgc.go)
        self.on_cycle = None             # callback(Cycle) after each cycle (workload drivers)
        self.checker = None              # runtime_model/checkgc.py: Checker, run at every cycle
        self._last_step = 0
        self._owed_ns = 0                # background work done ahead of its CPU time (background)
        self._roots_ns = 0               # the root jobs' time not yet worked (markroot)
        self._parked = False             # the mutator waits in gcParkAssist
        self._mut_frac_ns = 0            # the mutator's P's gcFractionalMarkTime this cycle
        self._mut_frac = None            # (start, gcFractionalMarkTime then, 1): its fractional worker
                                         # while the mutator is parked
        self._other_frac = None          # (start, 0, Ps): the other Ps' fractional workers
        self.gctrace = []                # the gctrace lines printed so far
        self._gcw_marked = self.m.symbol("runtime.p0") + P.gcw + GCWork.bytesMarked   # p0.gcw.bytesMarked

    # ---- the pacer's view of memory ----------------------------------------------------------
    def sync_stats(self):
        """The memory statistics memoryLimitHeapGoal reads (heapFree, mappedReady), from the
        heap as it is now (runtime_model/mstats.py: mapped_ready)."""
        c = self.rt.gc_controller
        c.heap_free = self.rt.mheap.heap_free
        c.mapped_ready = mapped_ready(self.rt)

    # ---- gcTrigger.test ------------------------------------------------------------------
    def trigger_test(self, kind=TRIGGER_HEAP):
        """mgc.go: gcTrigger.test."""
        if not self.enabled or self.phase != GC_OFF:
            return False
        if kind == TRIGGER_HEAP:
            self.sync_stats()
            c = self.rt.gc_controller
            trigger, _ = c.trigger()
            return c.heap_live >= trigger
        return kind == TRIGGER_CYCLE

    # ---- gcStart ---------------------------------------------------------------------------
    def start(self, kind=TRIGGER_HEAP):
        """mgc.go: gcStart: sweep termination, then the mark phase begins."""
        if self.phase != GC_OFF:
            return
        rt, clock = self.rt, self.m.clock
        rt.sweeper.finish()                          # gcStart: for trigger.test() && sweepone() ...
        rt.sweeper.finishsweep_m()
        cyc = self.cycle = Cycle(len(self.cycles) + 1, kind == TRIGGER_CYCLE, self.procs)
        cyc.t_sweep_term = clock.ns()
        c = rt.gc_controller
        cyc.heap0 = c.heap_live
        self.sync_stats()
        rt.limiter.start_gc_transition(True, clock.ns())     # mgclimit.py
        self._pause(STW_SWEEP_TERM_NS)
        rt.limiter.finish_gc_transition(clock.ns())
        c.start_cycle(cyc.t_sweep_term, self.procs, time_trigger=kind == TRIGGER_TIME)   # markStartTime: gcStart's now
        self.marker = HeapMarker(rt)
        rt.mheap.clear_page_marks()                  # gcResetMarkState
        self._reset_gcw()
        self._set_phase(GC_MARK)
        cyc.t_mark = clock.ns()
        self._last_step = cyc.t_mark
        self._owed_ns = 0
        self._mut_frac_ns = 0                        # startCycle: p.gcFractionalMarkTime = 0
        others = self.procs - 1 - c.dedicated_mark_workers_needed
        self._other_frac = (cyc.t_mark, 0, others) if c.fractional_utilization_goal and others > 0 else None
        self._mark_roots()
        self.rt.gc_assist_credit = 0
        for gp in self.rt.stacks.allgs:              # gcResetMarkState: no assist credit or debt
            self.m.mem.w64(gp + G.gcAssistBytes, 0)

    def _set_phase(self, phase):
        """mgc.go: setGCPhase, and gcBlackenEnabled as gcStart/gcMarkDone set it."""
        self.phase = phase
        self.m.set_write_barrier(phase != GC_OFF)
        self.m.mem.w32(self.m.symbol("runtime.gcBlackenEnabled"), int(phase == GC_MARK))

    def _pause(self, ns):
        """A stop-the-world phase: the mutator waits."""
        self.m.clock.advance(ns)
        self.pause_total_ns += ns
        self.gc_cpu_ns += ns * self.procs

    # ---- roots (mgcmark.go: markroot) -------------------------------------------------------
    def _mark_roots(self):
        m, marker = self.m, self.marker
        words = []
        globals_bytes = 0
        if m.image is not None:
            tab = m.image.pclntab
            for start, mask in ((tab.module.data, tab.gcdata_mask()), (tab.module.bss, tab.gcbss_mask())):
                bits = np.asarray(list(mask.bits()), dtype=np.uint64)
                if len(bits):
                    words.append(m.mem.gather64(np.uint64(start) + np.uint64(8) * bits))
                globals_bytes += 8 * mask.n
        for addr, n in self.root_ranges:
            words.append(m.mem.gather64(np.uint64(addr) + np.uint64(8) * np.arange(n, dtype=np.uint64)))
            globals_bytes += 8 * n
        stack_slots = self._stack_slots()
        if stack_slots:
            words.append(m.mem.gather64(np.asarray(stack_slots, dtype=np.uint64)))
        tiny = m.mem.u64(self.rt.mcache + MCache.tiny)          # gcMarkTinyAllocs
        if tiny:
            words.append(np.array([tiny], dtype=np.uint64))
        if self.rt.finalizers:
            words.append(np.asarray(list(self.rt.finalizers), dtype=np.uint64))
        c = self.rt.gc_controller
        c.globals_scan = globals_bytes
        # parked goroutines' stacks: scanned (their frames hold no pointers, Stacks.hold)
        parked_used, parked_size = self.rt.stacks.parked()
        stacks = [8 * len(stack_slots)] + parked_used
        c.max_stack_scan = max(c.max_stack_scan, 8 * len(stack_slots) + parked_size)
        self.cycle.globals, self.cycle.stacks = globals_bytes, sum(stacks)
        if words:
            marker.shade(np.concatenate(words))
        # The roots are shaded now; their CPU time is work the workers (or assists) still owe
        # (markroot's jobs, in gcNextMarkRoot's order: data and bss in blocks, the fixed roots
        # and spans, a stack a goroutine), so the mark phase lasts at least that long.
        # Their scan work reaches the pacer (globalsScanWork, stackScanWork) as the jobs are done.
        blocks = [min(ROOT_BLOCK_BYTES, globals_bytes - o) for o in range(0, globals_bytes, ROOT_BLOCK_BYTES)]
        fixed = MARK_FIXED_NS + self._object_ns(marker.objects_marked, marker.large_marked)
        self._root_jobs = ([_RootJob(b * MARK_NS_PER_BYTE, b, 0) for b in blocks]
                           + [_RootJob(fixed, 0, 0, whole=False)]
                           + [_RootJob(b * STACK_NS_PER_BYTE, 0, b) for b in stacks if b])
        self._roots_ns = sum(j.left for j in self._root_jobs)

    def _stack_slots(self):
        """Pointer slots of every goroutine stack with frames: the running one (stopped in a
        call-out: its frames from the return address up) and g0's when a Python-started
        call is under way."""
        from unicorn.x86_const import UC_X86_REG_RSP
        m = self.m
        sp = m.regs.read(UC_X86_REG_RSP)
        try:
            frames = m.runtime.stacks.frames(m.mem.u64(sp), sp + 8, top=False)
        except Exception:          # a stack that does not unwind (e.g. stopped outside Go code)
            frames = []
        slots = []
        for f in frames:
            slots.extend(f.slots)
        return slots

    def _reset_gcw(self):
        """p.gcw.bytesMarked: what the allocator's machine code marks black during the cycle
        (mgcmark.go: gcmarknewobject; the same field on both machines)."""
        self.m.mem.w64(self._gcw_marked, 0)

    # ---- concurrent marking -----------------------------------------------------------------
    def background(self):
        """The background mark workers' share of the time since the last step (called at
        the runtime's slow paths while marking)."""
        if self.phase != GC_MARK:
            return
        now = self.m.clock.ns()
        self.rt.limiter.update_if_needed(now)      # findRunnableGCWorker
        dt = now - self._last_step
        if dt <= 0:
            return
        start, self._last_step = self._last_step, now
        c = self.rt.gc_controller
        dedicated, idle, fractional = self._workers()
        cpu_ns = dt * (dedicated + idle + fractional)
        if fractional:
            self.m.clock.advance(dt * fractional)        # the fractional worker shares the mutator's P
        # the Ps running workers beside the mutator, and the parked mutator's P, start with a
        # fractional worker (their part of idle)
        other_frac = min(dt * idle, self._fractional_ns(self._other_frac, start, now))
        parked_frac = self._fractional_ns(self._mut_frac, start, now) if self._parked else 0
        parked_frac = min(parked_frac, dt * idle - other_frac)
        # what the workers did past their time (a batch of objects greyed at once) is owed:
        # the cycle cannot end before the CPU time it takes has passed
        paid = min(self._owed_ns, cpu_ns)
        self._owed_ns -= paid
        done, work = self._work(cpu_ns - paid) if cpu_ns > paid else (0, 0)
        done += paid
        c.bg_scan_credit += work                   # gcFlushBgCredit (parked assists take it)
        self._owed_ns += max(0, done - cpu_ns)
        # the workers ran only as long as they found work: each mode's share of what was done
        ran = min(cpu_ns, done) / cpu_ns if cpu_ns > 0 else 0
        ded_ns = int(dt * dedicated * ran)
        frac_ns = int((dt * fractional + other_frac + parked_frac) * ran)
        idle_ns = int(min(cpu_ns, done)) - ded_ns - frac_ns
        self._mut_frac_ns += int(parked_frac * ran)     # pp.gcFractionalMarkTime
        self.cycle.bg_ns += ded_ns + frac_ns
        self.cycle.idle_ns += idle_ns
        c.dedicated_mark_time += ded_ns
        c.fractional_mark_time += frac_ns
        c.idle_mark_time += idle_ns
        self.gc_cpu_ns += ded_ns + frac_ns
        if self._drained():
            self.mark_done()

    def _workers(self):
        """(dedicated, idle, fractional) workers now, as findRunnableGCWorker schedules them
        beside one mutator goroutine: every other P runs an idle worker, and the mutator's
        P too while it is parked in an assist (a fractional worker first: _park_assist).
        The other Ps' workers start at the cycle's start (procresize assigns them in
        startTheWorldWithSema, assignWaitingGCWorker): beyond the dedicated ones, in
        fractional mode (start: _other_frac) until pollFractionalWorkerExit stops them;
        findRunnable, with nothing else to run, then gives the P an idle worker."""
        c = self.rt.gc_controller
        dedicated = c.dedicated_mark_workers_needed
        free = self.procs - dedicated - (0 if self._parked else 1)
        idle = max(0, min(free, c.max_idle_mark_workers))
        fractional = c.fractional_utilization_goal * self.procs if dedicated == 0 and idle == 0 else 0.0
        return dedicated, idle, fractional

    def _fractional_ns(self, window, start, now):
        """The CPU time in [start, now] of the fractional workers of window (the time they
        started, their P's gcFractionalMarkTime then, how many Ps), each running until
        pollFractionalWorkerExit finds selfTime/delta over 1.2 x the goal, delta counted from
        markStartTime (sweep termination's start). Go checks after each root job and every
        drainCheckThreshold of heap scan work; gomemu's fixed roots and heap work are
        divisible, so the exit is at that moment."""
        if window is None:
            return 0
        began, before, count = window
        c = self.rt.gc_controller
        limit = FRACTIONAL_SLACK * c.fractional_utilization_goal
        # before + (t - began) = limit * (t - markStartTime), solved for t
        t_exit = (began - before - limit * c.mark_start_time) / (1 - limit)
        return count * max(0, min(now, t_exit) - max(start, began))

    def _drained(self):
        return not len(self.marker.grey) and not self._owed_ns and not self._roots_ns

    @staticmethod
    def _object_ns(objects, large):
        return large * MARK_NS_PER_LARGE_OBJECT + (objects - large) * MARK_NS_PER_OBJECT

    def _work(self, budget_ns):
        """Up to budget_ns of the workers' mark work, the root jobs first (as gcDrain takes
        them); returns (the ns it took, the scan work done in bytes)."""
        roots, root_work = self._pay_roots(budget_ns) if self._roots_ns else (0, 0)
        if budget_ns <= roots:
            return roots, root_work
        ns, work = self._drain(budget_ns - roots)
        return roots + ns, root_work + work

    def _drain(self, budget_ns):
        """Up to budget_ns of heap marking; returns (the ns it took, the scan work)."""
        marker = self.marker
        before_objs, before_large, before = marker.objects_marked, marker.large_marked, marker.scan_work
        budget = None if budget_ns == float("inf") else max(1, int(budget_ns / MARK_NS_PER_BYTE))
        marker.drain(budget)
        work = marker.scan_work - before
        c = self.rt.gc_controller
        c.heap_scan_work += work
        self.cycle.scan_work += work
        ns = work * MARK_NS_PER_BYTE + self._object_ns(marker.objects_marked - before_objs,
                                                      marker.large_marked - before_large)
        return ns, work

    def _pay_roots(self, budget_ns):
        """Up to budget_ns of the root jobs, in order, done by the workers; returns (the ns,
        the bytes of the jobs finished)."""
        ns = work = 0
        for job in self._root_jobs:
            if ns >= budget_ns:
                break
            if job.left:
                take = min(job.left, budget_ns - ns)
                ns += take
                work += job.work(take, self.rt.gc_controller)
        self._roots_ns = sum(j.left for j in self._root_jobs)
        return ns, work

    def _assist_roots(self, scan_work):
        """mgcmark.go: gcDrainN's root jobs: the jobs no worker has begun, each whole, until
        scan_work is done (so an assist may end past its debt). The fixed roots, a stated
        lump of small jobs and the workers' own costs that scans nothing, it takes only as
        far as scan_work's time goes. Returns (the ns, the bytes of the jobs)."""
        ns = work = 0
        for job in self._root_jobs:
            if work >= scan_work:
                break
            if not job.left:
                continue
            if not job.whole:
                take = min(job.left, max(0, scan_work * MARK_NS_PER_BYTE - ns))
            elif job.left == job.total:                # else done, or a worker's
                take = job.left
            else:
                continue
            ns += take
            work += job.work(take, self.rt.gc_controller)
        self._roots_ns = sum(j.left for j in self._root_jobs)
        return ns, work

    def assist(self, gp):
        """mgcmark.go: gcAssistAlloc: gp's allocation debt paid with scan work (stolen
        background credit first), stopping gp for the time it takes; credited with the work
        it did; when that is not enough, gp parks (gcParkAssist)."""
        mem, c = self.m.mem, self.rt.gc_controller
        if self.phase != GC_MARK:
            return
        self.background()
        if self.phase != GC_MARK:
            return
        credit = _i64(mem.u64(gp + G.gcAssistBytes))
        if credit >= 0 or self.rt.limiter.limiting():    # the CPU limiter: no assist, debt kept
            return
        debt = -credit
        scan_work = int(c.assist_work_per_byte * debt)
        if scan_work < GC_OVER_ASSIST_WORK:
            scan_work = GC_OVER_ASSIST_WORK
            debt = int(c.assist_bytes_per_work * scan_work)
        if c.bg_scan_credit > 0:                    # steal background credit first
            if c.bg_scan_credit < scan_work:
                stolen = c.bg_scan_credit
                credit += 1 + int(c.assist_bytes_per_work * stolen)
            else:
                stolen = scan_work
                credit += debt
            c.bg_scan_credit -= stolen
            scan_work -= stolen
        if scan_work:
            ns, work = self._assist_roots(scan_work) if self._roots_ns else (0, 0)   # gcAssistAlloc1: gcDrainN
            if work < scan_work:
                heap_ns, heap_work = self._drain((scan_work - work) * MARK_NS_PER_BYTE)
                ns, work = ns + heap_ns, work + heap_work
            self.m.clock.advance(ns)
            self.cycle.assist_ns += int(ns)
            c.assist_time += int(ns)
            self.rt.limiter.assist_done(int(ns), self.m.clock.ns())
            self.gc_cpu_ns += int(ns)
            credit += 1 + int(c.assist_bytes_per_work * work)
            self.rt.assists.append((gp, scan_work))
        mem.w64(gp + G.gcAssistBytes, credit)
        if self._drained():
            self.mark_done()
        elif credit < 0:
            self._park_assist(gp)

    def _park_assist(self, gp):
        """mgcmark.go: gcParkAssist: gp waits on the assist queue until the background
        workers' scan credit pays its debt (gcFlushBgCredit) or the mark phase ends
        (gcWakeAllAssists); meanwhile its P runs an idle worker. The credit flushed is taken
        every PARK_STEP_NS. The wait is the mutator's time, not GC CPU."""
        mem, c = self.m.mem, self.rt.gc_controller
        self._parked = True
        # schedule: findRunnableGCWorker gives the P a fractional worker if it is behind its
        # goal (assignWaitingGCWorker), else findRunnable an idle one
        now, goal = self.m.clock.ns(), c.fractional_utilization_goal
        delta = now - c.mark_start_time
        if goal and not (delta > 0 and self._mut_frac_ns / delta > goal):
            self._mut_frac = (now, self._mut_frac_ns, 1)
        try:
            while self.phase == GC_MARK and not self.rt.limiter.limiting():
                self.m.clock.advance(PARK_STEP_NS)
                self.background()
                credit = _i64(mem.u64(gp + G.gcAssistBytes))
                if c.bg_scan_credit > 0:
                    scan_bytes = int(c.bg_scan_credit * c.assist_bytes_per_work)
                    c.bg_scan_credit = 0
                    if scan_bytes + credit >= 0:
                        c.bg_scan_credit = int((scan_bytes + credit) * c.assist_work_per_byte)
                        mem.w64(gp + G.gcAssistBytes, 0)
                        return
                    mem.w64(gp + G.gcAssistBytes, credit + scan_bytes)
        finally:
            self._parked = False
            self._mut_frac = None

    def shade(self, ptrs):
        """What the write barrier's flush hands the collector (wbBufFlush1)."""
        if self.marker is not None:
            self.marker.shade(np.asarray(ptrs, dtype=np.uint64))

    # ---- gcMarkDone / gcMarkTermination ----------------------------------------------------------
    def mark_done(self):
        """mgc.go: gcMarkDone: flush the write-barrier buffer; finish when nothing is grey."""
        from runtime_model import mwbbuf
        if self.phase != GC_MARK:
            return
        while True:
            flushed = mwbbuf.buffered(self.m.mem, self.m.symbol("runtime.p0"))
            mwbbuf.reset(self.m.mem, self.m.symbol("runtime.p0"))
            if flushed:
                self.shade(flushed)
            if not len(self.marker.grey):
                break
            self._work(float("inf"))
        self.mark_termination()

    def mark_termination(self):
        """mgc.go: gcMarkTermination, then gcSweep."""
        rt, m, clock = self.rt, self.m, self.m.clock
        cyc, c = self.cycle, rt.gc_controller
        cyc.t_mark_term = clock.ns()
        cyc.heap1 = c.heap_live
        if self.checker is not None:
            self.checker.marked(rt)      # marking is complete: the mark bits are the cycle's
        self._set_phase(GC_MARKTERMINATION)
        bytes_marked = self.marker.bytes_marked + m.mem.u64(self._gcw_marked)
        cyc.heap2 = bytes_marked
        cyc.objects_marked = self.marker.objects_marked
        rt.limiter.start_gc_transition(False, clock.ns())    # gcMarkDone
        self._pause(STW_MARK_TERM_PARKED_NS if self._parked else STW_MARK_TERM_NS)
        cyc.t_end = clock.ns()
        self.sync_stats()
        c.end_cycle(cyc.t_mark_term, self.procs)
        c.reset_live(bytes_marked)
        cyc.goal = c.last_heap_goal
        # gcMarkTermination: gcSweep starts a new sweep generation; every P's mcache is flushed.
        rt.sweeper.start()
        release_all(rt, rt.mcache)
        self._set_phase(GC_OFF)
        self.marker = None
        c.commit(False)                 # gcControllerCommit: sweeping has not run yet
        rt.sweeper.pace(c.trigger()[0])  # ... gcPaceSweeper
        rt.scavenger.mark_termination()  # lastHeapInUse, gcPaceScavenger, index.nextGen
        rt.cpu_stats.accumulate(rt, cyc, cyc.t_end)
        rt.limiter.finish_gc_transition(cyc.t_end)
        if self.checker is not None:
            self.checker.swept(rt)
        self.cycles.append(cyc)
        cyc.cpu_fraction = self.gc_cpu_ns / max(1, clock.ns() * self.procs)
        self.cycle = None
        line = cyc.gctrace()
        self.gctrace.append(line)
        if self.rt.gctrace_out is not None:
            self.rt.gctrace_out(line)
        if self.on_cycle is not None:
            self.on_cycle(cyc)

    # ---- runtime.GC ---------------------------------------------------------------------------
    def collect(self):
        """mgc.go: GC: a forced cycle, run to its end and swept (by the caller's sweepone loop)
        before returning."""
        if self.phase != GC_OFF:
            self._work(float("inf"))
            self.mark_done()
        self.start(TRIGGER_CYCLE)
        self._work(float("inf"))
        self.mark_done()
        self.rt.sweeper.finish()


GC_OVER_ASSIST_WORK = 64 << 10       # mgcpacer.go: gcOverAssistWork
ROOT_BLOCK_BYTES = 256 << 10         # mgcmark.go: rootBlockBytes, the globals a root job scans
FRACTIONAL_SLACK = 1.2               # mgc.go: pollFractionalWorkerExit's slack over the goal
PARK_STEP_NS = 10_000                # a parked assist takes the credit the workers flushed every 10 us
                                     # of modeled time, through the root jobs too: Go's gcDrain flushes
                                     # (gcFlushBgCredit, which wakes it) after each markroot job and every
                                     # gcCreditSlack (2000) units of heap scan work, 0.6 us here; a job of
                                     # globals (256 KiB, rootBlockBytes) is 76 us. A wake-up is up to 10 us late


class _RootJob:
    """A markroot job: its modeled time (total, left) and the globals and stack bytes it
    scans; whole=False for the fixed roots, taken as divisible."""

    def __init__(self, ns, globals_bytes, stack_bytes, whole=True):
        self.total = self.left = ns
        self.globals, self.stack, self.whole = globals_bytes, stack_bytes, whole

    def work(self, ns, c):
        """ns of the job worked; at its end its bytes reach the pacer and the credit
        (markroot: workCounter.Add, then gcFlushBgCredit): returns them."""
        self.left -= ns
        if self.left:
            return 0
        c.globals_scan_work += self.globals
        c.stack_scan_work += self.stack
        return self.globals + self.stack
