"""Ctrl-C (SIGINT) while the emulated CPU runs.

Python runs a signal handler only between bytecodes of the main thread. While
unicorn runs machine code none run (the ctypes call releases the GIL), and
when machine code enters Python through a ctypes callback (a call-out, a
SYSCALL) Python's default handler raises KeyboardInterrupt inside it: ctypes
prints and drops the exception, and the emulator goes on after a slow path
cut off halfway (later: `fatal error: freeIndex is not valid`).

So while a Machine runs (`state.run` is set), SIGINT only marks the run
interrupted, and the run is stopped where no slow path is in flight:
  - in a callback, the handler lets the slow path finish; the first callback
    that ends with no slow path in flight (a generator waiting for an OS
    call) stops the machine (Machine._stop_if_interrupted);
  - machine code that enters no callback (a runaway loop) is stopped by a
    watcher thread, woken by the byte Python's C-level handler writes to
    `signal.set_wakeup_fd`: after GRACE seconds without such a stop, and
    while no slow path is in flight, it sets the block counter's stop flag
    (emu/uc_raw.py), so the next block start stops the CPU, outside any
    callback. A flag only the watcher writes: an earlier version stored 1
    into the budget, and the counter's own decrement, racing on another
    core, overwrote it for tens of seconds on one KVM host. The watcher
    checks and sets holding the GIL, which a callback's Python needs; a
    callback already waiting for the GIL can still start a slow path, and
    then run_from resumes the run and the callback's end stops it;
then Machine.run_from raises KeyboardInterrupt once uc_emu_start returned.
Python runs the handler as the ctypes call returns, while the run still
counts as running, so one SIGINT is one KeyboardInterrupt. A watcher stop
for a SIGINT that already became a KeyboardInterrupt elsewhere (stopped as
asked without `interrupted`) is undone: run_from uncounts the stopped block
and goes on.
The interrupted call is abandoned where it stopped (as after a fault): the
Python model is whole, the machine code's call is not resumed.
Outside a run SIGINT raises KeyboardInterrupt as usual. Machines are meant to
run on the main thread (that is where Python delivers SIGINT).

`install` puts this in place once, from the main thread, and only over
Python's default handler and an unset wakeup fd: a program that handles
SIGINT itself (asyncio, an embedding application) keeps its own handling.
"""

import os
import signal
import threading
import time

GRACE = 0.2           # seconds a callback has to stop the run cleanly before the watcher does


class _State:
    run = None            # (Machine, count) of the uc_emu_start running now, or None
    interrupted = False   # SIGINT came during this run
    in_callback = False   # a call-out's Python slow path is running


state = _State()
_installed = False


def _on_sigint(signum, frame):
    if state.run is None:
        state.interrupted = False
        signal.default_int_handler(signum, frame)     # raises KeyboardInterrupt
    state.interrupted = True


def _stop_when_safe(run):
    """Ask the block counter to stop `run` at a block start once no slow path is in
    flight; done when asked or the run is over."""
    m, count = run
    if count:
        return                                        # a step: over within microseconds
    while True:
        time.sleep(GRACE)
        if state.run is not run:
            return
        if not m.slow_path_in_flight():
            m.counter.request_stop()                  # (run_from takes it from there)
            return


def _watch(rfd):
    while True:
        try:
            data = os.read(rfd, 64)
        except OSError:
            return
        if not data:
            return
        run = state.run
        if signal.SIGINT in data and run is not None:
            _stop_when_safe(run)


def install():
    """Defer SIGINT during runs (see the module doc); a no-op after the first call, off the
    main thread, or when SIGINT or the wakeup fd already belong to someone else."""
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    _installed = True
    if signal.getsignal(signal.SIGINT) not in (signal.default_int_handler, _on_sigint):
        return
    rfd, wfd = os.pipe()
    os.set_blocking(wfd, False)
    previous = signal.set_wakeup_fd(wfd, warn_on_full_buffer=False)
    if previous != -1:
        signal.set_wakeup_fd(previous)                # someone else's: leave it (no watcher)
        os.close(rfd)
        os.close(wfd)
    else:
        threading.Thread(target=_watch, args=(rfd,), name="gomemu-sigint", daemon=True).start()
    signal.signal(signal.SIGINT, _on_sigint)


def _forget_in_child():
    # The watcher thread does not survive fork, and the pipe is the parent's: a child
    # installs its own (its Machines call install again).
    global _installed
    _installed = False
    state.run = None
    state.interrupted = state.in_callback = False
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:                                # forked from a thread that is not main
        pass


os.register_at_fork(after_in_child=_forget_in_child)
