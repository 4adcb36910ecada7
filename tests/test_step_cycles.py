"""`gomemu step --cycles`: each stepped instruction with the cycle it was dispatched,
issued, completed and retired on the modelled core (a timeline like llvm-mca's)."""

import contextlib
import io
import json
import pytest

from emu.cli import main

ARGS = ["step", "small", "--size", "16", "--warm", "20", "--json"]


@pytest.fixture(scope="module")
def runs():
    out = {}
    for key, extra in (("plain", []), ("cycles", ["--cycles", "--uarch", "zen4"])):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(ARGS + extra) == 0
        out[key] = [json.loads(ln) for ln in buf.getvalue().splitlines()]
    return out


def test_the_records_are_the_plain_steps_plus_their_cycles(runs):
    plain, timed = runs["plain"], runs["cycles"]
    assert timed[0]["cycles"]["uarch"] == "zen4"
    assert len(timed) == len(plain)
    for p, t in zip(plain[1:-1], timed[1:-1]):
        c = t["cycles"]
        assert {k: v for k, v in t.items() if k != "cycles"} == p
        assert set(c) == {"dispatched", "issued", "completed", "retired"}


def test_an_instruction_moves_through_the_pipeline_in_order_and_retires_in_program_order(runs):
    recs = [r["cycles"] for r in runs["cycles"][1:-1]]
    assert recs[0]["dispatched"] == 0
    for c in recs:
        assert c["dispatched"] <= c["issued"] <= c["completed"] <= c["retired"]
    retired = [c["retired"] for c in recs]
    assert retired == sorted(retired)
    dispatched = [c["dispatched"] for c in recs]
    assert dispatched == sorted(dispatched)
    # the model's widths count macro-ops (a fused CMP+Jcc is one; eliminated moves take
    # none), so instructions per cycle may exceed them; a cycle holds some, not all
    assert 1 < len(set(retired)) < len(retired)
    end = runs["cycles"][-1]["cycles"]
    assert 0 < retired[-1] <= end["cycles"]


def test_the_text_shows_a_timeline_line_per_instruction(capsys):
    assert main(["step", "small", "--size", "16", "--warm", "20", "--cycles", "--uarch", "zen4"]) == 0
    out = capsys.readouterr().out.splitlines()
    heads = [ln for ln in out if ln[:5].strip().isdigit()]
    timed = [ln for ln in out if ln.strip().startswith("cycles: dispatched")]
    assert len(heads) == len(timed) > 50
    assert out[-1].startswith("-- cycles: ") and "modelled on zen4" in out[-1]


@pytest.mark.parametrize("argv, message", [
    (["step", "stack", "--cycles"], "gomemu step: error: --cycles does not apply to `step stack`"),
    (["step", "small", "--uarch", "zen4"], "gomemu step: error: --uarch picks the CPU of --cycles; give --cycles too"),
    (["step", "small", "--cycles", "--uarch", "nosuch"], "gomemu: error: unknown µarch 'nosuch'"),
])
def test_refusals(capsys, argv, message):
    assert main(argv) in (1, 2)
    assert capsys.readouterr().err.startswith(message)
