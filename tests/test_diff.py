"""`gomemu diff`: two `gomemu report --json` documents compared path by path. The
second report is the first with known edits (or a report of another workload), so
every expected difference is the edit, not a figure of the code under test."""

import contextlib
import copy
import io
import json

import pytest

from emu.cli import main


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A real report with cycles: 16-byte noscan allocations (hits, reloads, refills)."""
    out = tmp_path_factory.mktemp("diff") / "a.json"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["report", "--size", "16", "-n", "600", "--cycles", "--uarch", "zen4", "--json"]) == 0
    out.write_text(buf.getvalue())
    return out, json.loads(buf.getvalue())


def write(tmp_path, name, doc):
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return str(p)


def run(capsys, *argv):
    code = main(["diff", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_report_against_itself_differs_nowhere(report, capsys):
    path, doc = report
    code, out, _ = run(capsys, str(path), str(path), "--json")
    assert code == 0
    d = json.loads(out)
    assert d["schema"] == "gomemu.diff/v1"
    assert [m["in"] for m in d["machines"]] == ["both"] * len(doc["machines"])
    rows = [p for m in d["machines"] for p in m["paths"]]
    assert len(rows) == sum(len(m["paths"]) for m in doc["machines"])
    assert all(p["delta"]["count"] == 0 and p["delta"]["instructions"] == {"min": 0, "max": 0} for p in rows)
    assert all(not any(p["delta"].values()) for p in d["cycles"]["paths"])
    code, out, _ = run(capsys, str(path), str(path))
    assert "with equal figures" in out and "->" not in out


def test_edits_show_as_their_differences(report, capsys, tmp_path):
    path, doc = report
    b = copy.deepcopy(doc)
    row = b["machines"][0]["paths"][0]
    row["instructions"] = {"min": row["instructions"]["min"] + 7, "max": row["instructions"]["max"] + 9}
    row["writes"]["min"] -= 1
    gone = b["machines"][0]["paths"].pop()
    b["cycles"]["paths"][0]["cycles"] += 5
    b["cycles"]["paths"][0]["mispredicts"] += 1
    code, out, _ = run(capsys, str(path), write(tmp_path, "b.json", b), "--json")
    assert code == 0
    d = json.loads(out)
    first = d["machines"][0]["paths"][0]
    assert first["delta"]["instructions"] == {"min": 7, "max": 9}
    assert first["delta"]["writes"]["min"] == -1
    last = d["machines"][0]["paths"][-1]
    assert (last["path"], last["b"], last["delta"]) == (gone["path"], None, None)
    cyc = d["cycles"]["paths"][0]["delta"]
    assert (cyc["cycles"], cyc["mispredicts"], cyc["l1d_misses"]) == (5, 1, 0)
    code, out, _ = run(capsys, str(path), str(tmp_path / "b.json"))
    lines = out.splitlines()
    assert any(row["path"] in ln and "+7..+9" in ln for ln in lines), out
    assert any(gone["path"][:58] in ln and "only in A" in ln for ln in lines), out
    assert any("+5" in ln and ln.strip().startswith(str(doc["cycles"]["paths"][0]["size"])) for ln in lines)


def test_another_workload_lists_the_paths_only_one_has(report, capsys, tmp_path):
    path, doc = report
    b = copy.deepcopy(doc)
    for m in b["machines"]:
        for p in m["paths"]:
            p["size"] = 24                      # as if the other report allocated 24 B objects
    del b["cycles"]
    code, out, _ = run(capsys, str(path), write(tmp_path, "b.json", b))
    assert code == 0
    n = sum(len(m["paths"]) for m in doc["machines"])
    assert out.count("only in A") == n and out.count("only in B") == n
    assert "cycles: not in both reports" in out


@pytest.mark.parametrize("content, message", [
    ("{not json", "b.json: not JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    ('{"schema": "gomemu.stack/v1"}', "b.json: not a `gomemu report --json` document (gomemu.report/v2): "
                                      "its schema is 'gomemu.stack/v1'"),
    ('[1, 2]', "b.json: not a `gomemu report --json` document (gomemu.report/v2): its schema is None"),
    ('{"schema": "gomemu.report/v2"}', "b.json: machines: no field 'machines'"),
    ('{"schema": "gomemu.report/v2", "machines": [{"code": "compiled", "size_specialized": true, '
     '"paths": [{"size": 16, "pointer_words": [], "path": "p", "count": 1, "instructions": {"min": "9"}}]}]}',
     "b.json: machines[0].paths[0].instructions.min: expected int, found str"),
])
def test_bad_documents_are_one_line_naming_file_and_field(report, capsys, tmp_path, content, message):
    path, _ = report
    (tmp_path / "b.json").write_text(content)
    code, out, err = run(capsys, str(path), str(tmp_path / "b.json"))
    assert (code, out) == (1, "")
    assert err == f"gomemu: error: {tmp_path / message}\n"
