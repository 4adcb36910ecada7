"""The gomemu command: report, step, and errors as one readable line."""

import json

import pytest

from emu.cli import main
from emu.machine import Machine


def test_report_lists_every_path_with_its_instruction_count(capsys):
    assert main(["report"]) == 0
    out = capsys.readouterr().out
    for path in ("zero-size", "tiny: into the current block", "tiny: new block: hit (nextFreeFast)",
                 "small noscan: hit (nextFreeFast)", "small noscan: allocCache reload (nextFree)",
                 "small noscan: refill (mcache.refill)", "refill + heap growth (mmap)",
                 "small scan, heap bits: hit", "small scan, malloc header: hit", "large"):
        assert path in out, path
    hit = next(ln for ln in out.splitlines() if ln.split()[:5] == ["16", "noscan", "small", "noscan:", "hit"])
    # One exact count (not a range), equal to the number of instructions stepping shows for a hit.
    m = Machine()
    m.mallocgc(16)
    assert hit.split()[-4] == str(len(m.trace("runtime.mallocgc", 16, 0, 1)))
    assert "mmap(0xc000000000, 0x4000000, 0x0, 0x22" in out


def test_report_is_deterministic(capsys):
    main(["report", "-n", "300", "--size", "48", "--size", "40000", "--scan"])
    first = capsys.readouterr().out
    main(["report", "-n", "300", "--size", "48", "--size", "40000", "--scan"])
    assert capsys.readouterr().out == first


def test_step_small_prints_each_instruction_with_its_go_source(capsys):
    assert main(["step", "small", "--size", "16"]) == 0
    out = capsys.readouterr().out
    assert "tzcnt r10, r9" in out and "go: nextFreeFast: theBit := sys.TrailingZeros64(s.allocCache)" in out
    assert out.rstrip().endswith("returned 0xc000000010")


def test_step_json_is_one_object_per_instruction(capsys):
    assert main(["step", "small", "--size", "32", "--json"]) == 0
    recs = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert recs[0]["where"] == "runtime.mallocgc+0x0" and recs[-1]["disasm"] == "ret"
    assert any(r["where"].startswith("runtime.mallocgcSmallNoscan+") for r in recs)


def test_step_malloc_shows_any_path(capsys):
    assert main(["step", "malloc", "--size", "100000", "--scan"]) == 0
    out = capsys.readouterr().out
    assert "runtime.mallocgcLarge+" in out and "call-out into Python: runtime.(*mcache).allocLarge" in out


@pytest.mark.parametrize("argv, needle", [
    (["step", "small", "--size", "8"], "outside the small noscan path"),
    (["report", "--size", "-5"], "outside 0..4 GiB"),
    (["report", "-n", "0"], "-n must be positive"),
    (["pagealloc", "replay", "/nonexistent.json"], "nonexistent"),
])
def test_bad_input_is_one_line_and_a_nonzero_exit(capsys, argv, needle):
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err
