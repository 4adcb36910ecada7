"""The seeded corpus (tests/fuzz/corpus/issue10.json): issue 10's 16 defects as inputs
to the fuzz suite's checks, run every time. Each case names its defect; the
strategies of the other tests make inputs of the same kinds at random."""

import copy
import json
import signal
import threading
from pathlib import Path

import pytest

from emu import layout as L
from emu.errors import BadInput
from emu.machine import Machine
from runtime_model import sizeclasses as sc
from runtime_model.mgcsweep import finish_cycle
from runtime_model.mspan import MSpan
from tests.conftest import DATA
from tests.fuzz.harness import cli, outcome
from tests.fuzz.test_fuzz_cli import GO_SRC
from tests.fuzz.test_fuzz_corrupt import cached_spans, sound
from tests.fuzz.test_fuzz_replay import SCENARIOS, VECTORS
from tests.test_api_input import machine_state
from tests.test_failures import assert_idle

SPC16 = sc.make_span_class(sc.size_to_class(16), True)
CORPUS = json.loads((Path(__file__).parent / "corpus" / "issue10.json").read_text())["cases"]
CLOSURE = "package main\n\ntype T struct{ p *int }\n\nfunc mk(x *T) func() *T {\n\treturn func() *T { return x }\n}\n"
REC = "\nfunc rec(n int) int {\n\tif n == 0 {\n\t\treturn 0\n\t}\n\treturn rec(n-1) + 1\n}\n"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    (d / "prog.go").write_text(GO_SRC + REC)
    (d / "closure.go").write_text(CLOSURE)
    (d / "latin1.go").write_bytes(b"package main\n\n// caf\xe9\nfunc f() {}\n")
    return d


def edited(doc, changes, repeat_cycle=None):
    doc = copy.deepcopy(doc)
    if repeat_cycle:
        doc["cycles"] = [dict(doc["cycles"][0]) for _ in range(repeat_cycle)]
        doc["length"] = repeat_cycle
    for path, value in changes:
        nodes = [doc]
        for k in path[:-1]:
            nodes = [x for n in nodes for x in (n if k == "*" else [n[k]])]
        for n in nodes:
            n[path[-1]] = value
    return doc


def call(m, method, args):
    if method == "new_type":
        return m.runtime.new_type(*args)
    if method == "finish_cycle":
        return finish_cycle(m.runtime, *args)
    if method == "mem.read":
        return m.mem.read(*args)
    return getattr(m, method)(*args)


def run_api(m, case):
    """Each call as the case says (ok unless it says refused or error); a refused call
    changes nothing."""
    got = {}
    for name, method, args, *more in case["calls"]:
        times, expect = (more[0] if more else 1), (more[1] if len(more) > 1 else "ok")
        results = []
        for _ in range(times):
            rows = [[]]
            for a in args:
                if isinstance(a, str) and a.endswith("[*]"):
                    rows = [r + [v] for r in rows for v in got[a[1:-3]]]
                else:
                    rows = [r + [resolve(got, a)] for r in rows]
            for row in rows:
                before = machine_state(m)
                err = outcome(lambda: results.append(call(m, method, row)))
                assert (err is None) == (expect == "ok"), f"{method}{tuple(row)}: {err}"
                if expect == "refused":
                    assert isinstance(err, BadInput) and machine_state(m) == before, err
        if name:
            got[name] = results if times > 1 else results[0]
    if "distinct" in case:
        vals = [got[k] for k in case["distinct"]]
        assert len(set(vals)) == len(vals), vals
    return got


def resolve(got, a):
    if isinstance(a, list):
        return [resolve(got, x) for x in a]
    if isinstance(a, str) and a.startswith("$"):
        name, _, index = a[1:].partition("[")
        return got[name][int(index[:-1])] if index else got[name]
    return a


@pytest.mark.parametrize("case", CORPUS, ids=[f"defect{c['defect']}-{c['kind']}-{i}" for i, c in enumerate(CORPUS)])
def test_a_case_of_issue_10_meets_the_fuzz_suites_rule(case, folder, tmp_path, capsys, go_env, monkeypatch):
    kind = case["kind"]
    if kind == "cli":
        monkeypatch.setenv("GOCACHE", go_env["GOCACHE"])
        argv = [a.format(dir=folder, data=DATA) for a in case["argv"]]
        code, out, err = cli(capsys, argv, seconds=600)
        assert code == case["code"] and case.get("says", "") in err, err
    elif kind in ("pacer", "pagealloc"):
        base = SCENARIOS[case["base"]][0] if kind == "pacer" else VECTORS[case["base"]]
        path = tmp_path / ("Case.input.json" if kind == "pacer" else "case.json")
        path.write_text(json.dumps(edited(base, case["set"], case.get("repeat_cycle"))))
        code, _, err = cli(capsys, [kind, "replay", str(path)], names=[path])
        assert code == case["code"] and err, err
    elif kind == "machine":
        err = outcome(lambda: Machine(**case["options"]))
        assert isinstance(err, BadInput), err
    elif kind == "api":
        m = Machine()
        run_api(m, case)
        assert m.mallocgc(16)
    elif kind == "corrupt":
        m = Machine()
        done = [(m.mallocgc(16), 16)]
        if "field" in case:
            setattr(MSpan(m.mem, cached_spans(m)[0]), case["field"], case["value"])
        elif "table" in case:
            sym = f"internal/runtime/gc.{case['table']}"
            m.mem.fill(m.symbol(sym), next(s.size for s in L.DATA_SYMBOLS if s.name == sym))
        else:                               # the 16-byte noscan class's slot
            m.mem.w64(m.runtime.mcache + L.MCache.alloc + 8 * SPC16, case["mcache_slot"])

        def alloc():
            x = m.mallocgc(16)
            sound(m, x, 16, done)
            done.append((x, 16))
        for _ in range(600):
            err = outcome(alloc)
            if err is not None:
                break
        assert err is not None, "the corruption went unnoticed for 600 allocations"
        assert_idle(m)
    else:
        assert kind == "interrupt"
        m = Machine()
        timer = threading.Timer(case["after"], signal.raise_signal, (signal.SIGINT,))
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                outcome(lambda: m.malloc_batch([case["sizes"]] * case["count"]), seconds=60)
        finally:
            timer.cancel()
        m.runtime.check_state()
        assert_idle(m)
        assert m.mallocgc(16)
