"""Where the commands write: standard output (a failed write names it), files they
are asked to write (a failure names the file), and progress on a terminal."""

import contextlib
import sys
import threading
import time

from emu.errors import GomemuError


class OutputError(GomemuError):
    """A write the command was asked to make failed (names where and why)."""


class CheckedStdout:
    """sys.stdout for the length of a command: a failed write (a full disk, a revoked
    terminal) becomes OutputError naming standard output. A closed pipe stays
    BrokenPipeError: the reader has what it wanted, and the command ends quietly."""

    def __init__(self, stream):
        self.stream = stream

    def _guard(self, op, *args):
        try:
            return op(*args)
        except BrokenPipeError:
            raise
        except OSError as e:
            raise OutputError(f"standard output: cannot write: {e.strerror or e}") from None

    def write(self, text):
        return self._guard(self.stream.write, text)

    def flush(self):
        return self._guard(self.stream.flush)

    def __getattr__(self, name):
        return getattr(self.stream, name)


@contextlib.contextmanager
def writing(path, what):
    """Around writing `what` to `path`: an OSError becomes OutputError naming both."""
    try:
        yield
    except OSError as e:
        raise OutputError(f"{path}: cannot write {what}: {e.strerror or e}") from None


class Progress:
    """`gomemu: <what>: 1200/50000` on stderr, redrawn at most five times a second once the
    work has run for a second, and only when stderr is a terminal (logs stay clean)."""

    DELAY, PERIOD = 1.0, 0.2

    def __init__(self, what, total, stream=None, clock=time.monotonic):
        self.what, self.total, self.done = what, total, 0
        self.stream = stream or sys.stderr
        self.clock = clock
        self.on = self.stream.isatty()
        self.width = 0
        self._next = clock() + self.DELAY

    def advance(self, n=1):
        self.done += n
        if self.on and self.clock() >= self._next:
            text = f"gomemu: {self.what}: {self.done}/{self.total}"
            self.stream.write("\r" + text.ljust(self.width))
            self.stream.flush()
            self.width = len(text)
            self._next = self.clock() + self.PERIOD

    def close(self):
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@contextlib.contextmanager
def status(what, stream=None):
    """`gomemu: <what> ...` on stderr while one long step (a go build) runs, once it has
    taken a second, on a terminal only; erased when it ends."""
    stream = stream or sys.stderr
    text = f"gomemu: {what} ..."
    shown = threading.Event()

    def show():
        stream.write("\r" + text)
        stream.flush()
        shown.set()
    timer = threading.Timer(Progress.DELAY, show)
    if stream.isatty():
        timer.start()
    try:
        yield
    finally:
        timer.cancel()
        if timer.is_alive():
            timer.join()
        if shown.is_set():
            stream.write("\r" + " " * len(text) + "\r")
            stream.flush()
