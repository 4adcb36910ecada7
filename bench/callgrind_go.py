"""Instructions the REAL go1.27.3 runtime executes per allocation, per mallocgc path.

Builds one small Go program (a case selector and an iteration count on its
command line) with the installed toolchain, runs every case under
`valgrind --tool=callgrind` with N and 2N iterations, and reports, from the
difference of the two runs divided by N (so runtime start-up and exit cancel):

  loop Ir/iter   every instruction executed inside main.run_<case> (callgrind
                 --toggle-collect), per iteration: the loop, the call of the
                 //go:noinline helper, the store into a global sink (with its
                 write-barrier test), and the allocation
  net Ir/alloc   loop Ir/iter minus the same for the `loop` case (same loop,
                 a helper that stores &global: 16 Ir/iter)
  entry          inclusive Ir per call of the runtime function the helper
                 calls: the compiler emits newobject / makeslice, or for
                 new(T) with size <= 80 B the size-specialised function directly
  mallocgc       inclusive Ir per call of runtime.mallocgc ("-": not called)
  functions      self Ir per iteration of every function that ran (which
                 mallocgc path really ran), and calls per iteration of the
                 slow-path functions (nextFree, refill, mheap.alloc, ...)

Costs come from parsing callgrind's output files (uncompressed names and
positions). They are counts of executed instructions: with the heap base fixed
(GOEXPERIMENT=norandomizedheapbase64, the default here) and no preemption by
sysmon (a run that was preempted is repeated), they repeat exactly.

    python bench/callgrind_go.py            # all cases, full N
    python bench/callgrind_go.py --smoke    # 2 cases, tiny N, < 60 s
    python bench/callgrind_go.py --cases noscan16,tiny8 --n 5000

This file is deliberately not named bench_*.py: valgrind runs are slow, so
`bench/run_all.py` (and CI) do not run it. Results are in
docs/real_runtime_costs.md.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

GO_PROGRAM = r'''
package main

import (
	"os"
	"strconv"
)

type scan24 struct {
	p    *int
	a, b uintptr
}

type scan512 struct {
	p [64]*int
}

type scan1024 struct {
	p [128]*int
}

var (
	global   int
	sinkInt  *int
	sinkZero *struct{}
	sinkS    []byte
	sinkB8   *[8]byte
	sinkB12  *[12]byte
	sinkB16  *[16]byte
	sinkB1K  *[1024]byte
	sinkB32K *[32760]byte
	sinkS24  *scan24
	sinkS512 *scan512
	sinkS1K  *scan1024
	sinkP    []*int
	zeroLen  = 0
	len8     = 8
	len16    = 16
	largeLen = 65536
	largePtr = 8192
)

//go:noinline
func allocNone() { sinkInt = &global }

//go:noinline
func allocZeroNew() { sinkZero = new(struct{}) }

//go:noinline
func allocZeroMake() { sinkS = make([]byte, zeroLen) }

//go:noinline
func allocTiny8() { sinkB8 = new([8]byte) }

//go:noinline
func allocTiny12() { sinkB12 = new([12]byte) }

//go:noinline
func allocNoscan16() { sinkB16 = new([16]byte) }

//go:noinline
func allocNoscan1024() { sinkB1K = new([1024]byte) }

//go:noinline
func allocNoscan32760() { sinkB32K = new([32760]byte) }

//go:noinline
func allocScan24() { sinkS24 = new(scan24) }

//go:noinline
func allocScan512() { sinkS512 = new(scan512) }

//go:noinline
func allocScanHeader1024() { sinkS1K = new(scan1024) }

//go:noinline
func allocTiny8Make() { sinkS = make([]byte, len8) }

//go:noinline
func allocNoscan16Make() { sinkS = make([]byte, len16) }

//go:noinline
func allocLargeNoscan() { sinkS = make([]byte, largeLen) }

//go:noinline
func allocLargeScan() { sinkP = make([]*int, largePtr) }

// One loop function per case, so that callgrind's inclusive cost of
// main.run_<case> is exactly the loop and its allocations.

//go:noinline
func run_loop(n int) {
	for i := 0; i < n; i++ {
		allocNone()
	}
}

//go:noinline
func run_zero_new(n int) {
	for i := 0; i < n; i++ {
		allocZeroNew()
	}
}

//go:noinline
func run_zero_make(n int) {
	for i := 0; i < n; i++ {
		allocZeroMake()
	}
}

//go:noinline
func run_tiny8(n int) {
	for i := 0; i < n; i++ {
		allocTiny8()
	}
}

//go:noinline
func run_tiny12(n int) {
	for i := 0; i < n; i++ {
		allocTiny12()
	}
}

//go:noinline
func run_noscan16(n int) {
	for i := 0; i < n; i++ {
		allocNoscan16()
	}
}

//go:noinline
func run_noscan1024(n int) {
	for i := 0; i < n; i++ {
		allocNoscan1024()
	}
}

//go:noinline
func run_noscan32760(n int) {
	for i := 0; i < n; i++ {
		allocNoscan32760()
	}
}

//go:noinline
func run_scan24(n int) {
	for i := 0; i < n; i++ {
		allocScan24()
	}
}

//go:noinline
func run_scan512(n int) {
	for i := 0; i < n; i++ {
		allocScan512()
	}
}

//go:noinline
func run_scanheader1024(n int) {
	for i := 0; i < n; i++ {
		allocScanHeader1024()
	}
}

//go:noinline
func run_tiny8_make(n int) {
	for i := 0; i < n; i++ {
		allocTiny8Make()
	}
}

//go:noinline
func run_noscan16_make(n int) {
	for i := 0; i < n; i++ {
		allocNoscan16Make()
	}
}

//go:noinline
func run_large_noscan(n int) {
	for i := 0; i < n; i++ {
		allocLargeNoscan()
	}
}

//go:noinline
func run_large_scan(n int) {
	for i := 0; i < n; i++ {
		allocLargeScan()
	}
}

func main() {
	n, err := strconv.Atoi(os.Args[2])
	if err != nil {
		os.Exit(2)
	}
	switch os.Args[1] {
	case "loop":
		run_loop(n)
	case "zero_new":
		run_zero_new(n)
	case "zero_make":
		run_zero_make(n)
	case "tiny8":
		run_tiny8(n)
	case "tiny12":
		run_tiny12(n)
	case "noscan16":
		run_noscan16(n)
	case "noscan1024":
		run_noscan1024(n)
	case "noscan32760":
		run_noscan32760(n)
	case "scan24":
		run_scan24(n)
	case "scan512":
		run_scan512(n)
	case "scanheader1024":
		run_scanheader1024(n)
	case "tiny8_make":
		run_tiny8_make(n)
	case "noscan16_make":
		run_noscan16_make(n)
	case "large_noscan":
		run_large_noscan(n)
	case "large_scan":
		run_large_scan(n)
	default:
		os.Exit(3)
	}
}
'''


@dataclass
class Case:
    name: str
    size: int
    expr: str          # the Go allocation
    expect: str        # the path it should take in Go 1.27
    n: int             # iterations of the first run; the second runs 2n
    build: str = "default"   # "default", or "nossm": GOEXPERIMENT=nosizespecializedmalloc

    @property
    def func(self):
        """The case's name in the Go program (a variant runs the same code)."""
        return self.name.split(".")[0]


# N: a few seconds per callgrind run at most, and at most ~130 MB of heap
# (GOGC=off: nothing is ever freed).
CASES = [
    Case("loop", 0, "sinkInt = &global", "no allocation (baseline)", 20000),
    Case("zero_new", 0, "new(struct{})", "compiled to &runtime.zerobase, no call", 20000),
    Case("zero_make", 0, "make([]byte, n), n=0", "makeslice -> mallocgc size==0", 20000),
    Case("tiny8", 8, "new([8]byte)", "mallocgcTinySC2, 2 per 16 B block", 20000),
    Case("tiny12", 12, "new([12]byte)", "mallocgcTinySC2, 1 per 16 B block", 20000),
    Case("tiny8_make", 8, "make([]byte, n), n=8", "makeslice -> mallocgc -> mallocgcTinySC2", 20000),
    Case("noscan16", 16, "new([16]byte)", "mallocgcSmallNoScanSC2", 20000),
    Case("noscan16_make", 16, "make([]byte, n), n=16",
         "makeslice -> mallocgc -> mallocNoScanTable[16]", 20000),
    Case("noscan1024", 1024, "new([1024]byte)", "newobject -> mallocgc -> mallocgcSmallNoscan", 20000),
    Case("noscan32760", 32760, "new([32760]byte)", "mallocgcSmallNoscan, 1 object per span", 2000),
    Case("scan24", 24, "new(struct{p *int; a, b uintptr})", "mallocgcSmallScanNoHeaderSC3", 20000),
    Case("scan512", 512, "new(struct{p [64]*int})",
         "newobject -> mallocgc -> mallocgcSmallScanNoHeader", 20000),
    Case("scanheader1024", 1024, "new(struct{p [128]*int})",
         "newobject -> mallocgc -> mallocgcSmallScanHeader", 20000),
    Case("large_noscan", 65536, "make([]byte, n), n=65536", "makeslice -> mallocgc -> mallocgcLarge", 1000),
    Case("large_scan", 65536, "make([]*int, n), n=8192", "makeslice -> mallocgc -> mallocgcLarge", 1000),
    # The same program built with GOEXPERIMENT=nosizespecializedmalloc: the
    # generic functions gomemu models (mallocgcSmallNoscan, mallocgcTiny, ...).
    Case("tiny12.nossm", 12, "new([12]byte)", "newobject -> mallocgc -> mallocgcTiny", 20000, "nossm"),
    Case("noscan16.nossm", 16, "new([16]byte)", "newobject -> mallocgc -> mallocgcSmallNoscan",
         20000, "nossm"),
    Case("scan24.nossm", 24, "new(struct{p *int; a, b uintptr})",
         "newobject -> mallocgc -> mallocgcSmallScanNoHeader", 20000, "nossm"),
]
CASE_BY_NAME = {c.name: c for c in CASES}
SMOKE_CASES = ["loop", "noscan16"]
SMOKE_N = 500

MALLOCGC = "runtime.mallocgc"
NEWSTACK = "runtime.newstack"
MAX_RETRIES = 30
# Counted per iteration, to tell the fast path from the slow ones.
SLOW_CALLS = ("runtime.(*mcache).nextFree", "runtime.(*mcache).refill",
              "runtime.(*mheap).alloc", "runtime.(*pageAlloc).grow", "runtime.sysUsedOS",
              "runtime.memclrNoHeapPointers", "runtime.newstack")


# --- callgrind output -------------------------------------------------------

@dataclass
class Profile:
    """Costs from one callgrind.out file (event Ir only)."""
    total: int = 0
    self_cost: dict = field(default_factory=lambda: defaultdict(int))
    # (caller, callee) -> [calls, inclusive Ir of those calls]
    arcs: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    def calls(self, fn):
        """Calls of fn from other functions (recursion not counted twice)."""
        return sum(v[0] for (a, b), v in self.arcs.items() if b == fn and a != fn)

    def inclusive(self, fn):
        return sum(v[1] for (a, b), v in self.arcs.items() if b == fn and a != fn)

    def callees(self, fn):
        return {b: v for (a, b), v in self.arcs.items() if a == fn and b != fn}


_NAME = re.compile(r"^\((\d+)\)(?: (.*))?$")


def parse_callgrind(path):
    """Reads a callgrind output file (positions are lines, one event: Ir).
    Handles compressed and plain names; a cost line's cost is its 2nd field."""
    prof = Profile()
    names = {}
    fn = callee = None
    pending = None            # calls of `callee` waiting for their cost line

    def name_of(value):
        m = _NAME.match(value)
        if not m:
            return value
        if m.group(2) is not None:
            names[m.group(1)] = m.group(2)
        return names[m.group(1)]

    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                fields = line.split()
                cost = int(fields[1]) if len(fields) > 1 else 0
                if pending is not None:
                    arc = prof.arcs[(fn, callee)]
                    arc[0] += pending
                    arc[1] += cost
                    pending = None
                else:
                    prof.self_cost[fn] += cost
            elif line.startswith("fn="):
                fn = name_of(line[3:])
            elif line.startswith("cfn="):
                callee = name_of(line[4:])
            elif line.startswith("calls="):
                pending = int(line[6:].split()[0])
            elif line.startswith(("summary:", "totals:")):
                prof.total = int(line.split()[1])
    return prof


# --- building and running ---------------------------------------------------

def build(tmp, goamd64, variant="default", randomized_heap=False):
    src = Path(tmp) / "src"
    if not src.exists():
        src.mkdir()
        (src / "go.mod").write_text("module allocbench\n\ngo 1.27\n")
        (src / "main.go").write_text(GO_PROGRAM)
    env = dict(os.environ, GOFLAGS="-mod=mod", CGO_ENABLED="0", GOAMD64=goamd64,
               GOCACHE=str(Path(tmp) / "gocache"), GOTOOLCHAIN="local")
    experiments = [] if randomized_heap else ["norandomizedheapbase64"]
    if variant == "nossm":
        experiments.append("nosizespecializedmalloc")
    env["GOEXPERIMENT"] = ",".join(experiments)
    exe = Path(tmp) / f"allocbench.{variant}"
    r = subprocess.run(["go", "build", "-o", str(exe), "."], cwd=src, env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"go build failed:\n{r.stderr}")
    esc = subprocess.run(["go", "build", "-o", os.devnull, "-gcflags=-m", "."], cwd=src,
                         env=env, capture_output=True, text=True)
    return exe, esc.stdout + esc.stderr


def check_escapes(m_output):
    """Every allocation must escape to the heap (else it would not be allocated)."""
    return [ln for ln in m_output.splitlines()
            if ("new(" in ln or "make(" in ln) and ": " in ln and "escapes to heap" not in ln]


def callgrind(exe, case, n, tmp, valgrind):
    """One callgrind run, collecting only inside main.run_<case> (so start-up,
    exit and other threads cost nothing); returns the merged profile of all
    threads (--separate-threads=yes writes one file per thread)."""
    out = Path(tmp) / f"cg.{exe.name}.{case}.{n}.out"
    env = dict(os.environ, GOGC="off", GODEBUG="asyncpreemptoff=1", GOMAXPROCS="1")
    cmd = [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}",
           "--separate-threads=yes", f"--toggle-collect=main.run_{case}",
           "--compress-strings=no", "--compress-pos=no", "--dump-instr=no",
           str(exe), case, str(n)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"callgrind {case} {n} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    merged = Profile()
    files = sorted(Path(tmp).glob(out.name + "-*")) or [out]
    for f in files:
        p = parse_callgrind(f)
        merged.total += p.total
        for k, v in p.self_cost.items():
            merged.self_cost[k] += v
        for k, v in p.arcs.items():
            merged.arcs[k][0] += v[0]
            merged.arcs[k][1] += v[1]
    return merged


@dataclass
class Result:
    case: Case
    n: int
    loop_per_iter: float
    entry: list              # [(runtime function the helper calls, Ir/call, calls/iter)]
    mallocgc_calls_per_iter: float
    mallocgc_per_call: float
    slow_calls: dict         # SLOW_CALLS name -> calls per iteration
    functions: list          # [(name, self Ir per iteration)], highest first
    plain_per_iter: float    # Ir collected in the 2N run / 2N (no differencing)
    seconds: float
    retries: int             # runs repeated because sysmon preempted one of them
    preempted: int           # newstack calls left in the two runs (0 when clean)


def measure(exe, case, n, tmp, valgrind):
    t = time.perf_counter()
    root = f"main.run_{case.func}"
    # sysmon preempts a goroutine that has run for 10 ms (asyncpreemptoff only
    # stops the signal): the next function prologue then goes through
    # morestack -> newstack -> schedule, thousands of instructions that depend
    # on wall time (and may run other goroutines). Nothing in these loops grows
    # the stack, so a run with any newstack call was preempted: run it again.
    retries = 0

    def clean_run(iters):
        nonlocal retries
        p = callgrind(exe, case.func, iters, tmp, valgrind)
        while p.calls(NEWSTACK) and retries < MAX_RETRIES:
            retries += 1
            p = callgrind(exe, case.func, iters, tmp, valgrind)
        return p

    p1 = clean_run(n)
    p2 = clean_run(2 * n)
    preempted = p1.calls(NEWSTACK) + p2.calls(NEWSTACK)
    loop = (p2.total - p1.total) / n
    helpers = [f for f in p2.callees(root) if f.startswith("main.alloc")]
    entry = []
    for h in helpers:
        c1, c2 = p1.callees(h), p2.callees(h)
        for fn, (calls2, incl2) in sorted(c2.items()):
            calls1, incl1 = c1.get(fn, (0, 0))
            if calls2 - calls1 and "WriteBarrier" not in fn:
                entry.append((fn, (incl2 - incl1) / (calls2 - calls1), (calls2 - calls1) / n))
    mcalls = p2.calls(MALLOCGC) - p1.calls(MALLOCGC)
    mcost = (p2.inclusive(MALLOCGC) - p1.inclusive(MALLOCGC)) / mcalls if mcalls else 0.0
    slow = {f: (p2.calls(f) - p1.calls(f)) / n for f in SLOW_CALLS}
    funcs = []
    for fn in set(p1.self_cost) | set(p2.self_cost):
        d = p2.self_cost.get(fn, 0) - p1.self_cost.get(fn, 0)
        if d:
            funcs.append((fn, d / n))
    funcs.sort(key=lambda x: (-x[1], x[0]))
    return Result(case, n, loop, entry, mcalls / n, mcost, slow, funcs,
                  p2.total / (2 * n), time.perf_counter() - t, retries, preempted)


# --- report -------------------------------------------------------------------

def _short(fn):
    return fn.replace("runtime.", "")


def format_table(results, baseline, top=3):
    rows = [("case", "size", "loop Ir/iter", "net Ir/alloc", "entry (Ir/call)",
             "mallocgc Ir/call", "runtime functions, self Ir/iter (top %d)" % top)]
    for r in results:
        net = "-" if r.case.name == "loop" else f"{r.loop_per_iter - baseline:.6g}"
        entry = ", ".join(f"{_short(f)} {c:.6g}" + (f" x{k:g}" if k != 1 else "")
                          for f, c, k in r.entry) or "-"
        mg = f"{r.mallocgc_per_call:.6g}" if r.mallocgc_calls_per_iter else "-"
        fn_list = [(f, c) for f, c in r.functions if not f.startswith("main.") and c >= 0.5]
        fn_txt = ", ".join(f"{_short(f)} {c:.4g}" for f, c in fn_list[:top]) or "-"
        if len(fn_list) > top:
            fn_txt += f", +{len(fn_list) - top} more"
        rows.append((r.case.name, str(r.case.size), f"{r.loop_per_iter:.6g}", net, entry, mg,
                     fn_txt))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        lines.append("| " + " | ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)) + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def format_functions(results):
    out = []
    for r in results:
        slow = ", ".join(f"{_short(f)} {k:.4g}" for f, k in r.slow_calls.items() if k)
        out.append(f"{r.case.name}: {r.case.expr}; expected {r.case.expect}; N={r.n}; "
                   f"2N run / 2N: {r.plain_per_iter:.6g} Ir/iter")
        if slow:
            out.append(f"    calls/iter: {slow}")
        for fn, c in r.functions:
            if abs(c) >= 0.01:
                out.append(f"    {c:12.4f}  {fn}")
    return "\n".join(out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true",
                    help=f"cases {','.join(SMOKE_CASES)} with N={SMOKE_N} only")
    ap.add_argument("--cases", help="comma-separated case names (default: all)")
    ap.add_argument("--n", type=int, help="override N for every case")
    ap.add_argument("--goamd64", default="v1")
    ap.add_argument("--randomized-heap", action="store_true",
                    help="keep Go 1.27's randomized heap base (default: built with "
                         "GOEXPERIMENT=norandomizedheapbase64, so heap growth repeats exactly)")
    ap.add_argument("--functions", action="store_true",
                    help="also print every function's self Ir per iteration")
    ap.add_argument("--keep", help="keep the build and callgrind files in this directory")
    args = ap.parse_args(argv)

    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("skipped: valgrind not found")
        return 0
    if shutil.which("go") is None:
        print("skipped: go not found")
        return 0

    names = SMOKE_CASES if args.smoke else (
        args.cases.split(",") if args.cases else [c.name for c in CASES])
    unknown = [x for x in names if x not in CASE_BY_NAME]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; known: {', '.join(CASE_BY_NAME)}")
    if "loop" not in names:
        names = ["loop"] + names

    vg_version = subprocess.run([valgrind, "--version"], capture_output=True,
                                text=True).stdout.strip()
    go_version = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
    heap = "randomized heap base" if args.randomized_heap else \
        "GOEXPERIMENT=norandomizedheapbase64"
    print(f"{go_version}, GOAMD64={args.goamd64}, {heap}, {vg_version}; "
          "run with GOGC=off GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1", flush=True)

    tmp_ctx = None
    if args.keep:
        tmp = args.keep
        Path(tmp).mkdir(parents=True, exist_ok=True)
    else:
        tmp_ctx = tempfile.TemporaryDirectory(prefix="callgrind_go.")
        tmp = tmp_ctx.name
    try:
        exes = {}
        for variant in sorted({CASE_BY_NAME[x].build for x in names}):
            exe, m_out = build(tmp, args.goamd64, variant, args.randomized_heap)
            bad = check_escapes(m_out)
            if bad:
                print("allocations that do not escape:\n  " + "\n  ".join(bad))
                return 1
            exes[variant] = exe
        results = []
        for name in names:
            c = CASE_BY_NAME[name]
            n = SMOKE_N if args.smoke else (args.n or c.n)
            r = measure(exes[c.build], c, n, tmp, valgrind)
            note = f", {r.retries} run(s) repeated after a preemption" if r.retries else ""
            if r.preempted:
                note += f", WARNING: {r.preempted} preemption(s) left in the runs"
            print(f"  {name}: N={n}, {r.seconds:.1f} s{note}", flush=True)
            results.append(r)
    finally:
        if tmp_ctx is not None:
            tmp_ctx.cleanup()

    baseline = results[0].loop_per_iter
    print(format_table(results, baseline))
    if args.functions or not args.smoke:
        print()
        print(format_functions(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
