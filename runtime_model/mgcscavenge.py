"""runtime/mgcscavenge.go: returning free pages to the OS, in the machine's modeled time.

Go releases the physical memory behind free heap pages (madvise MADV_DONTNEED, one
real SYSCALL per released run here, through mheap.scavenge and the page allocator's
scavenge index) in three places:

  background  bgscavenge, a goroutine that works towards two goals set after every GC
              (gcPaceScavenger): the gcPercent goal, retaining about
              lastHeapInUse x heapGoal/lastHeapGoal, plus 10% (retainExtraPercent),
              page-aligned; and the memory-limit goal, 95% of the limit
              (reduceExtraPercent), measured against mappedReady. It runs while either
              is unmet: batches of scavengeQuantum (64 KiB) until it has worked 1 ms
              (minScavWorkTime), then sleeps worked/sleepRatio, where a PI controller
              steers sleepRatio so that its CPU time is scavengePercent (1%) of
              GOMAXPROCS x wall time. It is readied by the last sweeper of a cycle
              (sysmon wakes it), woken at sweep termination, and parks when a run
              releases nothing. It only takes chunks that were not densely used in the
              current GC generation (force=false).
  allocation  mheap.allocSpan: when mappedReady plus the new span's scavenged bytes
              would pass the memory limit (unless the CPU limiter is on), the excess is
              scavenged at once, forced; when the span made the heap grow and the
              gcPercent goal is set, the growth past the goal is scavenged (not forced).
              This is the allocating goroutine's time (scavenge assist).
  forced      debug.FreeOSMemory: a forced GC, then scavengeAll (everything, forced).

With GODEBUG=scavtrace=1 each cycle's sweep end, and each scavengeAll, prints
printScavTrace's line (mgcscavenge.go's format: "scav B KiB work (bg), E KiB work
(eager), R KiB now, U% util", then " (forced)" or " [controller reset]").

Modeled time: the background scavenger's timeline is its own (runs, sleeps, wake-ups at
modeled times); its work is done at the runtime's next slow path after the time it was
due (`background()`, called from the refill and large-allocation call-outs, and by
`idle(ns)`), with the releases' times being those it was due at. Its CPU time comes out
of the mutator's only with GOMAXPROCS=1 (with more Ps it runs on an idle one). The cost
of releasing is a stated constant per physical page (below), as Go's own nanotime
would measure the madvise calls; sysmon's wake-up comes a stated delay after ready().
Simplified: the allocator's scavenging does not stop midway if the CPU limiter turns
on during it (its shouldStop), since the limiter only changes at its updates.
"""

from emu.errors import InvariantError
from runtime_model.mstats import heap_retained, mapped_ready
from runtime_model.pacer import MAX_UINT64, _f2u64

SCAVENGE_PERCENT = 1                  # scavengePercent: the background scavenger's CPU share
RETAIN_EXTRA_PERCENT = 10             # retainExtraPercent
REDUCE_EXTRA_PERCENT = 5              # reduceExtraPercent
SCAVENGE_QUANTUM = 64 << 10           # (*scavengerState).run: scavengeQuantum
MIN_SCAV_WORK_TIME = 1e6              # minScavWorkTime: 1 ms
STARTING_SCAV_SLEEP_RATIO = 0.001     # startingScavSleepRatio
SCAVENGE_COST_RATIO = 0.0             # scavengeCostRatio: 0 on Linux (0.7 on Darwin/iOS)
APPROX_WORKED_NS_PER_PHYS_PAGE = 10e3  # run's estimate when the clock did not move
CONTROLLER_COOLDOWN_NS = 5e9          # sleep's cooldown after a controller failure
PHYS_PAGE_SIZE = 4096
# Cost of releasing one 4 KiB page, as nanotime around pageAlloc.scavenge sees it: measured
# on this machine with madvise(MADV_DONTNEED) of 64 KiB runs of resident pages, 20-26 us a
# call (docs/gc.md, "Scavenger, memory limit and statistics").
SCAVENGE_NS_PER_PHYS_PAGE = 1400
# sysmon wakes a readied scavenger at its next tick; a busy program's sysmon has backed off to
# its longest delay (proc.go: sysmon: delay doubles after 50 idle ticks, up to 10 ms).
SYSMON_WAKE_DELAY_NS = 10_000_000

PARKED, SLEEPING, RUNNABLE = "parked", "sleeping", "runnable"


class PIController:
    """mgcscavenge.go: piController."""

    def __init__(self, kp, ti, tt, lo, hi):
        self.kp, self.ti, self.tt, self.min, self.max = kp, ti, tt, lo, hi
        self.err_integral = 0.0
        self.err_overflow = self.input_overflow = False

    def next(self, inp, setpoint, period):
        """next: (new output, ok); ok is False when the state over- or underflowed."""
        prop = self.kp * (setpoint - inp)
        raw = prop + self.err_integral
        out = raw
        if out != out or out in (float("inf"), float("-inf")):
            self.err_integral = 0.0
            self.input_overflow = True
            return self.min, False
        if out < self.min:
            out = self.min
        elif out > self.max:
            out = self.max
        if self.ti != 0 and self.tt != 0:
            self.err_integral += (self.kp * period / self.ti) * (setpoint - inp) + (period / self.tt) * (out - raw)
            e = self.err_integral
            if e != e or e in (float("inf"), float("-inf")):
                self.err_integral = 0.0
                self.err_overflow = True
                return self.min, False
        return out, True


def scav_trace_line(released_bg, released_eager, heap_released, heap_in_use, retained, forced, reset=False):
    """mgcscavenge.go: printScavTrace's line (without the newline)."""
    line = (f"scav {released_bg >> 10} KiB work (bg), {released_eager >> 10} KiB work (eager), "
            f"{heap_released >> 10} KiB now, {heap_in_use * 100 // retained}% util")
    if forced:
        return line + " (forced)"
    return line + (" [controller reset]" if reset else "")


class Scavenger:
    """The scavenger of one machine (`runtime.scavenger`): mgcscavenge.go's `scavenge`
    goals and times, the background scavenger's scavengerState, and the page allocator's
    releasedBg/releasedEager (mpagealloc.go: p.scav)."""

    def __init__(self, runtime):
        self.rt = runtime
        # scavenge.gcPercentGoal / memoryLimitGoal: zero until the first gcPaceScavenger, as
        # in Go (so heap growth before the first GC scavenges the growth).
        self.gc_percent_goal = 0
        self.memory_limit_goal = 0
        self.assist_time = 0              # scavenge.assistTime (ns since the last GC's end)
        self.background_time = 0          # scavenge.backgroundTime
        self.last_heap_in_use = 0         # memstats.lastHeapInUse
        self.released_bg = 0              # pages.scav.releasedBg (since the last scavtrace)
        self.released_eager = 0
        self.released_bg_total = 0        # every byte the background scavenger released
        self.scavtrace = 0                # debug.scavtrace
        self.trace = []                   # scavtrace lines printed
        self.trace_out = None             # callback(line) for each one
        # scavengerState
        self.state = PARKED
        self.t = 0                        # the time of the state's next event
        self.sleep_start = 0
        self.sleep_worked = 0.0
        self.wakes = []                   # times at which wake() was called or sysmon wakes it
        self._sysmon_wake = None          # the time of the pending sysmon wake-up (sysmonWake set)
        self.sleep_ratio = STARTING_SCAV_SLEEP_RATIO
        self.controller = PIController(0.3375, 3.2e6, 1e9, 0.001, 1000.0)
        self.controller_cooldown = 0
        self.print_controller_reset = False
        self.runs = []                    # (start ns, released bytes, worked ns) per run

    # ---- goals (gcPaceScavenger) -------------------------------------------------------------
    def pace(self, memory_limit, heap_goal, last_heap_goal):
        """mgcscavenge.go: gcPaceScavenger."""
        goal = _f2u64(float(memory_limit) * (1 - REDUCE_EXTRA_PERCENT / 100.0))
        self.memory_limit_goal = MAX_UINT64 if mapped_ready(self.rt) <= goal else goal
        if last_heap_goal == 0:
            self.gc_percent_goal = MAX_UINT64
            return
        ratio = float(heap_goal) / float(last_heap_goal)
        goal = _f2u64(float(self.last_heap_in_use) * ratio)
        goal += goal // (100 // RETAIN_EXTRA_PERCENT)     # / (1.0 / (retainExtraPercent/100.0)) = / 10
        goal = (goal + PHYS_PAGE_SIZE - 1) & ~(PHYS_PAGE_SIZE - 1)
        retained = heap_retained(self.rt)
        if retained <= goal or retained - goal < PHYS_PAGE_SIZE:
            self.gc_percent_goal = MAX_UINT64
        else:
            self.gc_percent_goal = goal

    def controller_commit(self):
        """mgcpacer.go: gcControllerCommit's last consumer: the pacer's trigger and goal feed
        gcPaceScavenger."""
        c = self.rt.gc_controller
        self.rt.gc.sync_stats()
        _, goal = c.trigger()
        self.pace(c.memory_limit, goal, c.last_heap_goal)

    def mark_termination(self):
        """What gcMarkTermination does for the scavenger: memstats.lastHeapInUse (the heap in
        use before sweeping), gcControllerCommit's gcPaceScavenger, and the scavenge index's
        next generation (mheap_.pages.scav.index.nextGen)."""
        self.last_heap_in_use = self.rt.mheap.heap_in_use
        self.controller_commit()
        self.rt.mheap.pages.next_gen()

    def should_stop(self):
        """scavengerState.shouldStop: both goals met."""
        return heap_retained(self.rt) <= self.gc_percent_goal and mapped_ready(self.rt) <= self.memory_limit_goal

    # ---- printScavTrace -------------------------------------------------------------------------
    def _print(self, released_bg, released_eager, forced):
        h = self.rt.mheap
        reset = not forced and self.print_controller_reset
        if reset:
            self.print_controller_reset = False
        line = scav_trace_line(released_bg, released_eager, h.heap_released, h.heap_in_use,
                               heap_retained(self.rt), forced, reset)
        self.trace.append(line)
        if self.trace_out is not None:
            self.trace_out(line)

    def sweep_done(self):
        """mgcsweep.go: sweepone's last sweeper: the scavtrace line with what was released since
        the last one, then scavenger.ready() (sysmon wakes it at its next tick)."""
        if self.scavtrace > 0:
            self._print(self.released_bg, self.released_eager, False)
            self.released_bg = self.released_eager = 0
        # ready() sets sysmonWake, a flag: one wake-up pending at a time, however many
        # sweeps end before sysmon's tick sees it
        if self._sysmon_wake not in self.wakes:
            self._sysmon_wake = self.rt.machine.clock.ns() + SYSMON_WAKE_DELAY_NS
            self.wakes.append(self._sysmon_wake)

    def wake(self):
        """scavengerState.wake, as finishsweep_m calls it at sweep termination."""
        self.wakes.append(self.rt.machine.clock.ns())

    # ---- the background scavenger's timeline -------------------------------------------------------
    def background(self):
        """Run the background scavenger's work that was due by now (for `yield from`: its
        madvise calls are SYSCALLs). Called at the runtime's slow paths, most often with
        the scavenger parked and nothing to wake it: then an empty tuple, no generator."""
        if self.state == PARKED and not self.wakes:
            return ()
        return self._background()

    def _background(self):
        """background's work. Events are taken in time order: a wake-up (wake(), or
        sysmon after ready()) unparks it or ends its sleep early, and means nothing while
        it runs; its timer ends a sleep."""
        now = self.rt.machine.clock.ns()
        while True:
            wake = min(self.wakes) if self.wakes else None
            if wake is not None and wake <= now and (self.state == PARKED or wake <= self.t):
                self.wakes.remove(wake)
                if self.state == PARKED:
                    self.state, self.t = RUNNABLE, wake
                elif self.state == SLEEPING and wake >= self.sleep_start:
                    self._woke(wake)
                continue
            if self.state == PARKED or self.t > now:
                return
            if self.state == SLEEPING:
                self._woke(self.t)             # the timer fired
            yield from self._run_once()

    def idle(self, ns):
        """The mutator sleeps for ns of modeled time: the clock moves on, and what the
        collector's workers and the background scavenger do meanwhile is done (a generator,
        for machine.run_slow_path)."""
        self.rt.machine.clock.advance(ns)
        self.rt.gc.background()
        self.rt.sweeper.idle(ns)
        yield from self.background()

    def _run_once(self):
        """One iteration of bgscavenge's loop at time self.t: run(), then park or sleep."""
        start = self.t
        released, worked = yield from self._run()
        self.runs.append((start, released, worked))
        if released == 0:
            self.state = PARKED
            return
        self.released_bg += released
        self.released_bg_total += released
        self._sleep(worked)

    def _run(self):
        """scavengerState.run: scavenge in quanta until 1 ms of work, the goals, or an empty heap."""
        released, worked = 0, 0.0
        share = self.rt.gc.procs == 1      # the scavenger takes the mutator's only P
        while worked < MIN_SCAV_WORK_TIME:
            if self.should_stop():
                break
            r = yield from self.rt.mheap.scavenge(SCAVENGE_QUANTUM, force=False)
            duration = (r // PHYS_PAGE_SIZE) * SCAVENGE_NS_PER_PHYS_PAGE
            if duration == 0:
                worked += APPROX_WORKED_NS_PER_PHYS_PAGE * float(r // PHYS_PAGE_SIZE)
            else:
                worked += float(duration)
                self.background_time += duration
                if share:
                    self.rt.machine.clock.advance(duration)
            self.t += duration
            released += r
            if r < SCAVENGE_QUANTUM:
                break
        if 0 < released < PHYS_PAGE_SIZE:
            raise InvariantError("released less than one physical page of memory")
        return released, worked

    def _sleep(self, worked):
        """scavengerState.sleep, up to the timer: sleep for worked / sleepRatio."""
        if worked < MIN_SCAV_WORK_TIME:
            worked = MIN_SCAV_WORK_TIME
        worked *= 1 + SCAVENGE_COST_RATIO
        self.state = SLEEPING
        self.sleep_start = self.t
        self.sleep_worked = worked
        self.t = self.sleep_start + int(worked / self.sleep_ratio)

    def _woke(self, at):
        """The rest of scavengerState.sleep once the goroutine runs again at `at` (its timer
        fired, or wake() ended the sleep early): the controller learns from the fraction."""
        slept = at - self.sleep_start
        worked = self.sleep_worked
        self.state, self.t = RUNNABLE, at
        if self.controller_cooldown > 0:
            t = slept + int(worked)
            self.controller_cooldown = 0 if t > self.controller_cooldown else self.controller_cooldown - t
            return
        ideal = SCAVENGE_PERCENT / 100.0
        cpu_fraction = worked / ((float(slept) + worked) * float(self.rt.gc.procs))
        self.sleep_ratio, ok = self.controller.next(cpu_fraction, ideal, float(slept) + worked)
        if not ok:
            self.sleep_ratio = STARTING_SCAV_SLEEP_RATIO
            self.controller_cooldown = int(CONTROLLER_COOLDOWN_NS)
            self.print_controller_reset = True

    # ---- the allocator's scavenging (mheap.go: allocSpan) ---------------------------------------
    def alloc_scavenge_todo(self, scav, growth):
        """allocSpan's test after it found pages (scav of them scavenged; growth: the bytes the
        heap grew for them): (bytes to scavenge, forced) for the memory limit and for heap
        growth past the gcPercent goal; (0, False) on the common path, without a generator."""
        rt = self.rt
        todo, force = 0, False
        limit = rt.gc_controller.memory_limit
        # Mapped memory and scav are bounded by the 48-bit address space: a limit above
        # twice that cannot be exceeded, and mappedReady need not be summed.
        if limit < 1 << 49 and not rt.limiter.limiting():
            inuse = mapped_ready(rt)
            if scav + inuse > limit:
                todo, force = scav + inuse - limit, True
        goal = self.gc_percent_goal
        if goal != MAX_UINT64 and growth > 0:
            retained = heap_retained(rt)
            if retained + growth > goal:
                grow = min(growth, retained + growth - goal)
                todo = max(todo, grow)
        return todo, force

    def alloc_scavenge(self, todo, force):
        """allocSpan's scavenging of what alloc_scavenge_todo asked for (a generator);
        returns the bytes released."""
        rt = self.rt
        released = yield from rt.mheap.scavenge(todo, force=force)
        self.released_eager += released
        ns = (released // PHYS_PAGE_SIZE) * SCAVENGE_NS_PER_PHYS_PAGE
        rt.machine.clock.advance(ns)                 # the allocating goroutine's own time
        rt.limiter.add_assist_time(ns)               # limiterEventScavengeAssist
        self.assist_time += ns
        return released

    # ---- debug.FreeOSMemory ---------------------------------------------------------------------------
    def scavenge_all(self):
        """mheap.go: scavengeAll: every free page released, forced (a generator)."""
        released = yield from self.rt.mheap.scavenge(MAX_UINT64, force=True)
        if self.scavtrace > 0:
            self._print(0, released, True)
        return released

    def free_os_memory(self):
        """mheap.go: runtime_debug_freeOSMemory: GC(), then scavengeAll (a generator)."""
        self.rt.gc.collect()
        return (yield from self.scavenge_all())
