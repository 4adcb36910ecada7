"""runtime/mgclimit.go: the GC CPU limiter (gcCPULimiterState).

The limiter keeps the collector from taking more than half of the CPU, which matters
when the memory limit makes the pacer run the GC back to back (the live heap at or
above the limit). It is a leaky bucket of CPU time: every window of modeled time adds
the GC's share minus the mutator's share. The GC's share is its assists (mark assists
and the allocator's scavenge assists) plus, while the GC is on, 25% of all CPU
(gcBackgroundUtilization: the mark workers); time the Ps spent idle is left out of the
total. The bucket holds 1 s of CPU per P; while it is full the limiter is "limiting":
gcAssistAlloc returns without assisting (the goroutine keeps its debt and allocates on),
and the allocator's heap-growth scavenging stops. Since assists are the only part that
can be given up, the cap is GC = mutator, 50%.

Go feeds it from the Ps' limiterEvent stamps, consumed at each update; in gomemu every
assist is over when it is reported, so its time is added whole (assist_done). The idle
time of a window is that of the procs-1 Ps that no mark worker uses (one mutator
goroutine runs at a time, runtime_model/mgc.py), which Go gets from limiterEventIdle
and limiterEventIdleMarkWork. Windows split at every GC transition, so a window is all
GC-on or all GC-off, as in Go. Simplified: no lock contention (tryLock only fails
during a transition), and a change of runtime.gc.procs is picked up at the next update
as procresize's resetCapacity would.
"""

from emu.errors import InvariantError
from runtime_model.pacer import GC_BACKGROUND_UTILIZATION

UPDATE_PERIOD_NS = 10_000_000       # gcCPULimiterUpdatePeriod: 10 ms
CAPACITY_PER_PROC_NS = 1_000_000_000  # capacityPerProc: 1 s
GC_ASSIST_TIME_SLACK_NS = 5000      # mgcpacer.go: gcAssistTimeSlack


class GcCPULimiter:
    """mgclimit.go: gcCPULimiterState for one machine (`runtime.limiter`)."""

    def __init__(self, runtime=None, now=0, nprocs=None):
        """The machine's limiter, or with runtime None the test limiter of export_test.go
        (NewGCCPULimiter(now, nprocs): no Ps, so no idle time and no limiter events)."""
        self.rt = runtime
        self.enabled = False             # limiting()
        self.gc_enabled = False
        self.transitioning = False
        self._locked = False
        self.fill = 0                    # bucket.fill
        self.capacity = 0                # bucket.capacity
        self.overflow = 0                # CPU time that did not fit in the bucket
        self.assist_time_pool = 0
        self.idle_time_pool = 0
        self.last_update = 0
        self.last_enabled_cycle = 0      # /gc/limiter/last-enabled:gc-cycle
        self.nprocs = 0
        self.idle_time = 0               # sched.idleTime: P time spent idle (cpuStats.IdleTime)
        self._assist_slack = 0           # p.gcAssistTime not yet reported
        self.reset_capacity(now, runtime.gc.procs if runtime is not None else nprocs)

    def limiting(self):
        return self.enabled

    # ---- transitions: gcStart and gcMarkDone/gcMarkTermination ------------------------------
    def start_gc_transition(self, enable_gc, now):
        """startGCTransition: the GC turns on (gcStart) or off (gcMarkDone)."""
        if self._locked:
            raise InvariantError("failed to acquire lock to start a GC transition")
        self._locked = True
        if self.gc_enabled == enable_gc:
            raise InvariantError("transitioning GC to the same state as before?")
        self._update_locked(now)
        self.gc_enabled = enable_gc
        self.transitioning = True

    def finish_gc_transition(self, now):
        """finishGCTransition: the world starts again; the stopped time was all GC time."""
        if not self.transitioning:
            raise InvariantError("finishGCTransition called without starting one?")
        if now >= self.last_update:
            self._accumulate(0, (now - self.last_update) * self.nprocs)
        self.last_update = now
        self.transitioning = False
        self._locked = False

    # ---- feeding --------------------------------------------------------------------------
    def need_update(self, now):
        return now - self.last_update > UPDATE_PERIOD_NS

    def update_if_needed(self, now):
        """What findRunnableGCWorker does with the time it has."""
        if self.need_update(now):
            self.update(now)

    def add_assist_time(self, t):
        self.assist_time_pool += t

    def assist_done(self, ns, now):
        """The end of a mark assist that took ns (gcAssistAlloc1): its time goes to the
        limiter, which is updated once the P's assist time passes gcAssistTimeSlack."""
        self.add_assist_time(ns)
        self._assist_slack += ns
        if self._assist_slack > GC_ASSIST_TIME_SLACK_NS:
            self.update(now)
            self._assist_slack = 0

    def update(self, now):
        if self._locked:
            return
        if self.rt is not None and self.nprocs != self.rt.gc.procs:
            self.reset_capacity(now, self.rt.gc.procs)
            return
        self._locked = True
        self._update_locked(now)
        self._locked = False

    def _update_locked(self, now):
        if now < self.last_update:
            return
        dt = now - self.last_update
        window_total = dt * self.nprocs
        self.last_update = now
        assist, self.assist_time_pool = self.assist_time_pool, 0
        idle, self.idle_time_pool = self.idle_time_pool, 0
        idle += dt * self._idle_procs()
        self.idle_time += dt * self._idle_procs()
        window_gc = assist
        if self.gc_enabled:
            window_gc += int(float(window_total) * GC_BACKGROUND_UTILIZATION)
        window_total -= idle
        self._accumulate(window_total - window_gc, window_gc)

    def _idle_procs(self):
        """Ps with neither the mutator nor a dedicated mark worker (idle mark workers run on
        idle Ps and count as idle, as limiterEventIdleMarkWork does)."""
        if self.rt is None:
            return 0
        busy = 1 + (self.rt.gc_controller.dedicated_mark_workers_needed if self.gc_enabled else 0)
        return max(0, self.nprocs - busy)

    def _numgc(self):
        return len(self.rt.gc.cycles) if self.rt is not None else 0

    def _accumulate(self, mutator_time, gc_time):
        """accumulate: the bucket fills by gcTime - mutatorTime, within [0, capacity]."""
        headroom = self.capacity - self.fill
        enabled = headroom == 0
        change = gc_time - mutator_time
        if change > 0 and headroom <= change:
            self.overflow += change - headroom
            self.fill = self.capacity
            if not enabled:
                self.enabled = True
                self.last_enabled_cycle = self._numgc() + 1
            return
        if change < 0 and self.fill <= -change:
            self.fill = 0
        else:
            self.fill -= -change
        if change != 0 and enabled:
            self.enabled = False

    # ---- procresize ----------------------------------------------------------------------
    def reset_capacity(self, now, nprocs):
        """resetCapacity: a bucket of 1 s per P."""
        if self._locked:
            raise InvariantError("failed to acquire lock to reset capacity")
        self._locked = True
        if self.nprocs:
            self._update_locked(now)
        self.nprocs = nprocs
        self.capacity = nprocs * CAPACITY_PER_PROC_NS
        if self.fill > self.capacity:
            self.fill = self.capacity
            self.enabled = True
            self.last_enabled_cycle = self._numgc() + 1
        elif self.fill < self.capacity:
            self.enabled = False
        self._locked = False
