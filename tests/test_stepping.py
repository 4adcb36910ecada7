"""Stepping's hooks stay in between stepped runs (emu/stepping.py: StepHooks) and out of plain ones."""

from emu.machine import Machine


def _calls(m, trace):
    """The same allocations, each recorded (trace) or run plainly; per call, what a twin
    machine must agree on: the instructions the block counter added, RAX, and for a
    trace its length."""
    out = []
    for size in (16, 16, 4096, 16, 40_000, 24, 16):
        before = m.total_instructions()
        if trace == "trace":
            n = len(m.trace("runtime.mallocgc", size, 0, 1))
        elif trace == "step":
            m.begin("runtime.mallocgc", size, 0, 1)
            n = 0
            while m.step() is not None:
                n += 1
        else:
            m.mallocgc(size, 0)
            n = None
        out.append((m.total_instructions() - before, m.regs.read(35), n))   # 35: UC_X86_REG_RAX
    return out


def test_traces_and_plain_runs_interleaved_count_as_a_machine_that_never_stepped():
    """Recorded runs count as unstepped ones do, and a plain run after a trace carries none
    of its hooks (counts, results and allocations as on the never-stepped twin)."""
    stepped, plain = Machine(), Machine()
    for mode in ("trace", "plain", "trace", "trace", "plain", "trace"):
        got, want = _calls(stepped, mode), _calls(plain, "plain")
        assert [(c, r) for c, r, _ in got] == [(c, r) for c, r, _ in want], mode
        if mode == "trace":          # a hit's trace: its steps are the instructions counted
            assert got[1][2] == want[1][0]
    assert stepped.mem.read(stepped.runtime.mcache, 4096) == plain.mem.read(plain.runtime.mcache, 4096)


def test_the_recorder_is_in_only_while_recorded_runs_follow_each_other():
    m = Machine()
    m.trace("runtime.mallocgc", 16, 0, 1)
    hooks = m.step_hooks
    first = hooks.recorder.handle
    m.trace("runtime.mallocgc", 16, 0, 1)
    assert first is not None and hooks.recorder.handle == first    # kept: translations kept
    m.mallocgc(16, 0)
    assert hooks.recorder.handle is None and hooks._write_hook is None
    m.begin("runtime.mallocgc", 16, 0, 1)
    m.step()
    assert hooks.recorder.handle is None and hooks._write_hook is not None
    m.mallocgc(16, 0)                # finishes the stepped call, then runs plainly
    assert hooks._write_hook is None
