"""Ctrl-C while the emulator runs (emu/interrupts.py): a slow path that has started
finishes, the machine stops, KeyboardInterrupt comes out of the call, and the
next call works; a loop of machine code that never enters Python stops too."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from emu import interrupts
from emu.machine import Machine
from emu.syscalls import SYS_MMAP

ROOT = Path(__file__).resolve().parents[1]
REFILL = "runtime.(*mcache).refill"
# mgcmark_greenteagc.go: the last 128 bytes of a 16-byte class span are its spanInlineMarkBits.
OBJECTS_PER_16B_SPAN = (8192 - 128) // 16


def interrupt_at_callout(m, symbol, nth):
    """SIGINT from inside the nth entry into `symbol`, before its Python slow path runs."""
    seen = []

    def hook(co):
        if co.symbol == symbol:
            seen.append(co)
            if len(seen) == nth:
                signal.raise_signal(signal.SIGINT)
    m.on_callout = hook
    return seen


def test_ctrl_c_in_a_refill_lets_the_refill_finish_then_stops_the_batch():
    m = Machine()
    seen = interrupt_at_callout(m, REFILL, 3)
    with pytest.raises(KeyboardInterrupt):
        m.malloc_batch([16] * 100_000)
    m.on_callout = None
    assert len(seen) == 3 and len(m.runtime.refills) == 3        # the third refill completed
    # The same heap as after the allocations that fit the first two spans, plus the refill:
    # the next object is the third span's first slot.
    ref = Machine()
    ref.malloc_batch([16] * (2 * OBJECTS_PER_16B_SPAN))
    assert m.mallocgc(16) == ref.mallocgc(16)
    assert list(m.malloc_batch([16] * 2000)) == list(ref.malloc_batch([16] * 2000))


def test_ctrl_c_during_heap_growth_lets_its_system_calls_finish():
    """allocLarge grows the heap with mmap SYSCALLs run on the CPU: the slow path is in
    flight across them, so the machine stops only once the span is allocated."""
    m = Machine()
    real = m.kernel.syscall
    calls = []

    def syscall(nr, args):
        calls.append(nr)
        if nr == SYS_MMAP and len(calls) == 1:
            signal.raise_signal(signal.SIGINT)
        return real(nr, args)
    m.kernel.syscall = syscall
    with pytest.raises(KeyboardInterrupt):
        m.mallocgc(100 << 20)
    ref = Machine()
    ref.mallocgc(100 << 20)
    assert [str(s) for s in m.kernel.log] == [str(s) for s in ref.kernel.log]
    assert m.runtime.mheap.pages_in_use == ref.runtime.mheap.pages_in_use
    assert m.mallocgc(100 << 20) == ref.mallocgc(100 << 20)


def test_ctrl_c_between_runs_is_a_plain_keyboard_interrupt():
    m = Machine()
    m.mallocgc(16)
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
    assert m.mallocgc(16) == m.mallocgc(16) - 16


def test_ctrl_c_stops_machine_code_that_never_enters_python():
    """A one-block loop enters no callback: the watcher's stop request ends it. Five times:
    a stop stored into the block budget lost its race with the counter's decrement on
    one host (two runs in three ran on for 10-50 s)."""
    m = Machine()
    m.load([("spin.s", "TEXT gomemu.spin(SB), 0, $0-0\nloop:\n\tJMP\tloop\n")])
    m.block_budget = 20_000_000_000         # minutes of looping: only the interrupt can end it soon
    for _ in range(5):
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        t0 = time.monotonic()
        try:
            with pytest.raises(KeyboardInterrupt):
                m.call("gomemu.spin")
        finally:
            timer.cancel()
        assert time.monotonic() - t0 < 5
    assert m.mallocgc(16) == 0xc000000000


def test_a_watcher_stop_for_a_ctrl_c_already_delivered_does_not_cut_the_run_short(monkeypatch):
    """SIGINT outside a run is a KeyboardInterrupt at once, but the watcher thread woken by
    the same signal may find the next run going and stop it: that run goes on where it
    stopped, and its counts stay exact."""
    # an earlier test's SIGINT may still wake the real watcher thread: let it find no run
    # going first (else it stops this run too, and the run resumes twice)
    time.sleep(4 * interrupts.GRACE)
    m = Machine()
    m.load([("countdown.s", "TEXT gomemu.countdown(SB), 0, $0-0\nloop:\n\tDECQ\tAX\n\tJNE\tloop\n\tRET\n")])
    m.block_budget = 10 ** 10
    n = 1_000_000_000                    # seconds on a fast host: far longer than the watcher's grace
    resumed = []
    real = m.counter.uncount
    monkeypatch.setattr(m.counter, "uncount", lambda addr: (resumed.append(addr), real(addr)))

    def late_watcher():                  # what the watcher does when it wakes during the run
        while interrupts.state.run is None:
            time.sleep(0.001)
        interrupts._stop_when_safe(interrupts.state.run)
    t = threading.Thread(target=late_watcher)
    t.start()
    snap = m.snapshot()
    assert m.call("gomemu.countdown", n) == 0
    t.join()
    assert resumed == [m.symbol("gomemu.countdown")]
    assert m.counts_since(snap).instructions == 2 * n + 1


INTERRUPTED_STEP = """
import signal, sys
from emu import machine
seen = []
def hook(self, co):
    if co.symbol == "runtime.(*mcache).allocLarge":
        seen.append(co)
        if len(seen) == 50:
            signal.raise_signal(signal.SIGINT)
machine.Machine.on_callout = hook
from emu.cli import main
sys.exit(main(["step", "malloc", "--size", "100000", "--warm", "100000"]))
"""


def test_gomemu_interrupted_in_a_slow_path_exits_130_with_one_line():
    out = subprocess.run([sys.executable, "-c", INTERRUPTED_STEP], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert (out.returncode, out.stderr, out.stdout) == (130, "gomemu: interrupted\n", "")


def test_gomemu_stopped_with_ctrl_c_exits_130_with_one_line():
    p = subprocess.Popen([sys.executable, "-m", "emu.cli", "step", "small", "--warm", "1000000"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert (p.returncode, err, out) == (130, "gomemu: interrupted\n", "")
