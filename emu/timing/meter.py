"""Cycles of what a Machine runs: the recorded blocks and accesses, modelled on one µarch.

A `Meter` keeps one Recorder on the machine's unicorn engine and one Model (caches,
predictor and pipeline carry over from call to call, as on a real core). Counting
stays as it is when no meter is attached; with one, every block and access is also
recorded (a few ns each) and modelled when asked. The figures are deterministic: the
same run on the same µarch gives the same cycles.

    meter = Meter(machine, uarch("zen4"))
    t = meter.measure(lambda: machine.mallocgc(16))    # a Timing: cycles, l1d_misses, ...
    meter.cycles()                                     # every cycle so far (for a clock)

Python slow paths (call-outs) touch memory the model does not see, and take no
modelled cycles: their lines stay cold to the model (docs/timing.md).

A meter drives the machine's clock (emu/clock.py: Clock.drive) while attached: nanotime,
walltime and benchmark timers then read modelled cycles at the stated clock; `close`
gives the clock back to instructions. Machines without a meter are not slowed at all.
"""

import numpy as np

from emu.clock import CLOCK_GHZ
from emu.timing import choose
from emu.timing.model import Model, Timing
from emu.timing.recorder import BLOCK_TAG, Recorder, Stream

SUMMED = ("cycles", "instructions", "uops", "loads", "stores", "l1d_misses", "l2_misses", "l3_misses",
          "dtlb_misses", "stlb_misses", "forwarded", "forward_failed", "branches", "taken", "mispredicts", "fused")
STATED_GHZ = CLOCK_GHZ     # ns = cycles / this (emu/clock.py: the core clock, stated)


class Meter:
    def __init__(self, machine, u, how="--uarch"):
        self.m, self.u, self.how = machine, u, how
        self.model = Model(u, machine.mem.read)
        self.rec = Recorder(machine.uc)
        self.rec.start()
        self.total = Timing(u.name)              # every run so far, summed
        self._held = np.zeros(0, dtype=np.uint64)  # recorded words not modelled yet (see _pending)
        machine.clock.drive(self)

    @classmethod
    def attach(cls, machine, uarch_name=None):
        """A meter on `machine` for --cycles [--uarch NAME] (emu.timing.choose)."""
        u, how = choose(uarch_name)
        return cls(machine, u, how)

    def close(self):
        self.m.clock.drive(None)
        self.rec.stop()

    def _pending(self, hold_last=False, timeline=False):
        """Model what was recorded since the last call; returns its Timing (with each
        instruction's timeline when asked). hold_last: keep the last block for the next call
        (called from a slow path, the block running the call-out has not made all its
        accesses yet)."""
        words = np.concatenate([self._held, self.rec.words()])
        self.rec.clear()
        self._held = words[:0]
        if hold_last:
            blocks = np.flatnonzero(words[1::2] & BLOCK_TAG)
            if len(blocks):
                words, self._held = words[:2 * blocks[-1]], words[2 * blocks[-1]:]
        t = self.model.run(Stream.from_words(words), timeline=timeline)
        for k in SUMMED:
            setattr(self.total, k, getattr(self.total, k) + getattr(t, k))
        return t

    def measure(self, fn, drain=True, timeline=False):
        """Run fn() and return the Timing of what it ran (from an empty pipeline when drain;
        with each instruction's dispatch, issue, completion and retirement when timeline)."""
        self._pending()
        if drain:
            self.model.drain()
        fn()
        return self._pending(timeline=timeline)

    def cycles(self, running=False):
        """Every modelled cycle since the meter was attached: what the machine's clock reads
        (running: from inside a run, the block still running left out until it is complete)."""
        self._pending(hold_last=running)
        return self.total.cycles

    def summary(self):
        """summary() of everything run since the meter was attached."""
        self._pending()
        return summary(self.u, self.how, self.total)

    def bench_summary(self, r):
        """Per operation of a benchmark (emu/benchmark.py's BenchResult r): the run's modelled
        cycles per instruction times the timed instructions, per iteration (the meter sees
        the whole run, setup included; the timer counts instructions only)."""
        self._pending()
        scale = r.instructions / max(1, self.total.instructions) / max(1, r.n)
        s = summary(self.u, self.how, self.total, per=1 / scale if scale else float("inf"))
        s["how"] = "modelled: the run's cycles (and misses) per instruction x the timed instructions per op"
        return s


def summary(u, how, t, per=1):
    """The --cycles figures of a Timing (per `per` operations), as data; "how" says what they are."""
    return {"uarch": u.name, "uarch_chosen": how, "how": "modelled", "ghz": STATED_GHZ,
            "cycles": t.cycles / per, "ns": t.cycles / per / STATED_GHZ, "instructions": t.instructions / per,
            "l1d_misses": t.l1d_misses / per, "l2_misses": t.l2_misses / per, "mispredicts": t.mispredicts / per}


def summary_line(s, unit=""):
    return (f"cycles{unit}: {s['cycles']:.6g} modelled on {s['uarch']} ({s['uarch_chosen']}) = {s['ns']:.1f} ns at "
            f"a stated {s['ghz']} GHz; L1D misses {s['l1d_misses']:g}, L2 misses {s['l2_misses']:g}, "
            f"mispredicts {s['mispredicts']:g}")
