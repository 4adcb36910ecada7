"""The one rule of the fuzz suite, for every outcome.

Every input the strategies make (replay files, command lines, API calls, corrupt
struct writes) must end in one of two ways: success, or a typed GomemuError
(emu/errors.py) that names the input; never another exception, never a run past
a bound, and a refused call leaves the machine as it was. `outcome` and `cli`
check the first three; the tests compare machine state themselves.
"""

import contextlib
import re
import signal

import pytest
from hypothesis import settings

from emu.errors import GomemuError
from tests.fuzz.conftest import DEEP


def examples(n):
    """The settings of a fuzz test that runs n examples (ten times as many when deep)."""
    return settings(settings.get_profile("fuzz"), max_examples=n * 10 if DEEP else n)


class Hang(BaseException):
    """Raised by the watchdog: a BaseException, so no `except Exception` in gomemu eats it."""


@contextlib.contextmanager
def watchdog(seconds):
    """Fail the example if it runs past `seconds` (SIGALRM; a call-out that meets it
    stops the emulator and re-raises it, emu/machine.py: _on_callout_page)."""
    def fire(*_):
        raise Hang(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _chain(e):
    while e is not None:
        yield e
        e = e.__cause__ or e.__context__


def outcome(call, seconds=10):
    """Run call(); return None on success or the GomemuError it raised. Anything else
    fails the example: another exception, a GomemuError that only wraps one (a Python
    error inside a slow path is reported as "internal error in a Python slow path"),
    or a run past `seconds`."""
    try:
        with watchdog(seconds):
            call()
    except GomemuError as e:
        hang = next((c for c in _chain(e) if isinstance(c, Hang)), None)
        if hang is not None:
            pytest.fail(f"hang: {hang}")
        if "internal error" in str(e):
            raise AssertionError(f"an untyped error inside gomemu, reported as {type(e).__name__}: {e}") from e
        return e
    except Hang as e:
        pytest.fail(f"hang: {e}")
    return None


USAGE = re.compile(r"^gomemu( [a-z]+)*: error: ")     # exit 2: `gomemu step: error: ...`


def cli(capsys, argv, names=(), seconds=20, may_differ=False):
    """Run `gomemu argv` in-process. It must exit 0, 1 (an error: one line
    `gomemu: error: ...`; with may_differ also a replay that differs from its
    reference: nothing on stderr, the caller checks stdout) or 2 (a refused command
    line: one line `gomemu <command>: error: ...`). An error line must name one of
    `names` (the input: a file, an option) when given. Returns (code, stdout, stderr)."""
    from emu.cli import main
    capsys.readouterr()
    code = None

    def run():
        nonlocal code
        code = main(list(argv))
    try:
        with watchdog(seconds):
            run()
    except Hang as e:
        pytest.fail(f"hang: gomemu {' '.join(argv)}: {e}")
    out, err = capsys.readouterr()
    shown = f"gomemu {' '.join(map(str, argv))} -> {code}: {err!r}"
    assert code in (0, 1, 2), shown
    assert "Traceback" not in err and "internal error" not in err, shown
    if code == 0:
        return code, out, err
    if code == 1 and err == "" and may_differ:
        return code, out, err
    assert err.count("\n") == 1 and err.endswith("\n"), shown
    if code == 1:
        assert err.startswith("gomemu: error: "), shown
    else:
        assert USAGE.match(err), shown
    if names:
        assert any(str(n) in err for n in names), f"the error names none of {list(names)}: {shown}"
    return code, out, err
