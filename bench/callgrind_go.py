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

Beside each case, gomemu runs the same binary's main.run_<case> (Machine(image=...))
over the same iterations, and the two are printed side by side: real Go's Ir split
into what gomemu runs as machine code and the inclusive cost of each call-out
function (refill, allocLarge, gcTrigger.test, wbBufFlush, ...: gomemu's Python slow
paths, named with their calls per iteration). `--record` writes the program and the
figures to tests/data/callgrind for tests/test_callgrind.py; `--go-test PKG` does the
same for a package's benchmarks, beside `gomemu bench` (docs/machine.md).

Costs come from parsing callgrind's output files (uncompressed names and
positions). They are counts of executed instructions: with the heap base fixed
(GOEXPERIMENT=norandomizedheapbase64, the default here) and no preemption by
sysmon (a run that was preempted is repeated), they repeat exactly.

    python bench/callgrind_go.py            # all cases, full N
    python bench/callgrind_go.py --smoke    # 2 cases, tiny N, < 60 s
    python bench/callgrind_go.py --cases noscan16,tiny8 --n 5000
    python bench/callgrind_go.py --record   # all cases, into tests/data/callgrind (~20 min)
    python bench/callgrind_go.py --go-test DIR   # DIR's benchmarks: go test binary vs gomemu bench
    python bench/callgrind_go.py --go-test examples/seed --repeat 5 --probe 30 --record
                                                 # ... into tests/data/callgrind/go_test_seed.json

With --go-test, callgrind runs with --dump-instr=yes and every cost is filed by the
address of its instruction under the binary's own symbols (callgrind's function context
goes wrong across goroutine switches), and a probe counts natively what depends on wall
time (clears, allocate-black: PROBE_EDITS) over many pairs of runs.

This file is deliberately not named bench_*.py: valgrind runs are slow, so
`bench/run_all.py` (and CI) do not run it. Results are in docs/machine.md
("Against the real runtime under callgrind") and docs/real_runtime_costs.md.
"""

import argparse
import functools
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

@dataclass
class Case:
    name: str
    size: int
    expr: str          # the Go statement each iteration runs (in the helper alloc_<case>)
    expect: str        # the path it should take in Go 1.27
    n: int             # iterations of the first run; the second runs 2n
    build: str = "default"   # "default", or "nossm": GOEXPERIMENT=nosizespecializedmalloc
    sink: str = ""     # the Go type of the global the statement stores into (sink_<case>)
    setup: str = ""    # Go statements run_<case> runs before its loop
    teardown: str = ""  # ... and after it
    warm: str = ""     # Go statements main runs before run_<case> (not measured)

    @property
    def func(self):
        """The case's name in the Go program (a variant runs the same code)."""
        return self.name.split(".")[0]


def _new(name, size, typ, expect, n=20000, build="default"):
    return Case(name, size, f"new({typ})", expect, n, build, sink=f"*{typ}")


# N: a few seconds per callgrind run at most, and at most ~130 MB of heap
# (GOGC=off: nothing is ever freed).
CASES = [
    Case("loop", 0, "&global", "no allocation (baseline): the store's write-barrier test, barrier off",
         20000, sink="*int"),
    Case("barrier_on", 0, "&global", "the same store with writeBarrier.enabled: gcWriteBarrier2, "
         "wbBufFlush when p.wbBuf is full", 20000, sink="*int",
         setup="writeBarrier.enabled = true", teardown="writeBarrier.enabled = false"),
    Case("stack_large", 1024, "var b [128]uintptr; useFrame128(&b)", "a 1 KiB frame: the prologue's "
         "3-instruction stack check (framesize > StackSmall)", 20000),
    Case("stack_huge", 8192, "var b [1024]uintptr; useFrame1024(&b)", "an 8 KiB frame: the 5-instruction "
         "check (framesize > StackBig); main grows the stack first", 500,
         warm="alloc_stack_huge()"),
    _new("zero_new", 0, "struct{}", "compiled to &runtime.zerobase, no call"),
    Case("zero_make", 0, "make([]byte, zeroLen)", "makeslice -> mallocgc size==0", 20000, sink="[]byte"),
    _new("tiny4", 4, "[4]byte", "mallocgcTinySC2, 4 per 16 B block (3 into the current block)"),
    _new("tiny8", 8, "[8]byte", "mallocgcTinySC2, 2 per 16 B block"),
    _new("tiny12", 12, "[12]byte", "mallocgcTinySC2, 1 per 16 B block (a new block every time)"),
    Case("tiny8_make", 8, "make([]byte, len8)", "makeslice -> mallocgc -> mallocgcTinySC2", 20000,
         sink="[]byte"),
    *[_new(f"noscan{s}", s, f"[{s}]byte", f"mallocgcSmallNoScanSC{c}")
      for s, c in ((16, 2), (24, 3), (32, 4), (48, 5), (64, 6), (80, 7))],
    Case("noscan16_make", 16, "make([]byte, len16)", "makeslice -> mallocgc -> mallocNoScanTable[16]",
         20000, sink="[]byte"),
    _new("noscan1024", 1024, "[1024]byte", "newobject -> mallocgc -> mallocgcSmallNoscan"),
    _new("noscan32760", 32760, "[32760]byte", "mallocgcSmallNoscan, 1 object per span", 2000),
    *[_new(f"scan{s}", s, f"scan{s}", f"mallocgcSmallScanNoHeaderSC{c}")
      for s, c in ((8, 1), (16, 2), (24, 3), (32, 4), (48, 5), (64, 6), (80, 7))],
    _new("scan512", 512, "scan512", "newobject -> mallocgc -> mallocgcSmallScanNoHeader"),
    _new("scanheader1024", 1024, "scan1024", "newobject -> mallocgc -> mallocgcSmallScanHeader"),
    Case("growslice", 32, "append(growBase, 1)", "growslice 16 -> 32 B: mallocgc(32) -> "
         "mallocgcSmallNoScanSC4, memmove 16 B, clear the tail", 20000, sink="[]byte"),
    Case("large_noscan", 65536, "make([]byte, largeLen)", "makeslice -> mallocgc -> mallocgcLarge", 1000,
         sink="[]byte"),
    Case("large_scan", 65536, "make([]*int, largePtr)", "makeslice -> mallocgc -> mallocgcLarge", 1000,
         sink="[]*int"),
    # The same program built with GOEXPERIMENT=nosizespecializedmalloc: the
    # generic functions (mallocgcSmallNoscan, mallocgcTiny, ...).
    _new("tiny12.nossm", 12, "[12]byte", "newobject -> mallocgc -> mallocgcTiny", build="nossm"),
    _new("noscan16.nossm", 16, "[16]byte", "newobject -> mallocgc -> mallocgcSmallNoscan", build="nossm"),
    _new("scan24.nossm", 24, "scan24", "newobject -> mallocgc -> mallocgcSmallScanNoHeader", build="nossm"),
]

GO_HEADER = '''// Generated by bench/callgrind_go.py (program_source): one loop per case, each
// calling a //go:noinline helper that allocates and stores into a global.
package main

import (
	"os"
	"strconv"
	_ "unsafe" // go:linkname
)

// runtime.writeBarrier (mgc.go), so barrier_on can turn the barrier on with no
// GC cycle; built with -ldflags=-checklinkname=0.
//
//go:linkname writeBarrier runtime.writeBarrier
var writeBarrier struct {
	enabled bool
	pad     [3]byte
	alignme uint64
}

type scan8 struct{ p *int }
type scan512 struct{ p [64]*int }
type scan1024 struct{ p [128]*int }
%(scan_types)s
var (
	global   int
	sinkWord uintptr
	growBase = make([]byte, 16)
	zeroLen  = 0
	len8     = 8
	len16    = 16
	largeLen = 65536
	largePtr = 8192
)

// Frames the stack cases' helpers keep on their stack (p does not escape).
//
//go:noinline
func useFrame128(p *[128]uintptr) { sinkWord = p[0] }

//go:noinline
func useFrame1024(p *[1024]uintptr) { sinkWord = p[0] }
'''

GO_CASE = '''
var sink_%(f)s %(sink)s

//go:noinline
func alloc_%(f)s() { %(stmt)s }

//go:noinline
func run_%(f)s(n int) {
%(setup)s	for i := 0; i < n; i++ {
		alloc_%(f)s()
	}
%(teardown)s}
'''


def program_source(cases=CASES):
    """The Go program: one helper and one loop function per case (a variant runs the
    same functions), and a main that runs the case named on the command line."""
    funcs, seen = [], set()
    for c in cases:
        if c.func in seen:
            continue
        seen.add(c.func)
        stmt = f"sink_{c.func} = {c.expr}" if c.sink else c.expr
        funcs.append(GO_CASE % dict(f=c.func, sink=c.sink or "int", stmt=stmt,
                                    setup=f"\t{c.setup}\n" if c.setup else "",
                                    teardown=f"\t{c.teardown}\n" if c.teardown else ""))
    scan_types = "".join(f"type scan{s} struct {{\n\tp *int\n\ta [{s // 8 - 1}]uintptr\n}}\n"
                         for s in (16, 24, 32, 48, 64, 80))
    header = GO_HEADER % dict(scan_types=scan_types)
    warm = {c.func: f"\t\t{c.warm}\n" for c in cases if c.warm}
    switch = "".join(f"\tcase \"{f}\":\n{warm.get(f, '')}\t\trun_{f}(n)\n" for f in sorted(seen))
    main = ("\nfunc main() {\n\tn, err := strconv.Atoi(os.Args[2])\n\tif err != nil {\n\t\tos.Exit(2)\n\t}\n"
            "\tswitch os.Args[1] {\n" + switch + "\tdefault:\n\t\tos.Exit(3)\n\t}\n}\n")
    return header + "".join(funcs) + main


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


def parse_callgrind(path, func_at=None):
    """Reads a callgrind output file (one event: Ir; positions `line`, or `instr line` from
    --dump-instr=yes). Handles compressed and plain names. With func_at (address -> function
    name, from the binary's symbol table) and instruction positions, every cost goes to the
    function whose code holds the instruction, and every call to the functions of its call
    site and its target: across goroutine switches callgrind's own function context is
    wrong (it files the closures that systemstack runs, e.g. mheap.alloc.func1, under the
    benchmark function as "seed.BenchmarkNewArray'2")."""
    prof = Profile()
    names = {}
    fn = callee = None
    pending = None            # calls of `callee` waiting for their cost line
    at = 1                    # the cost's field: after the position's parts

    def name_of(value):
        m = _NAME.match(value)
        if not m:
            return value
        if m.group(2) is not None:
            names[m.group(1)] = m.group(2)
        return names[m.group(1)]

    by_addr = False
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                fields = line.split()
                cost = int(fields[at]) if len(fields) > at else 0
                here = func_at(int(fields[0], 16)) if by_addr else fn
                if pending is not None:
                    arc = prof.arcs[(here, callee)]
                    arc[0] += pending
                    arc[1] += cost
                    pending = None
                else:
                    prof.self_cost[here] += cost
            elif line.startswith("fn="):
                fn = name_of(line[3:])
            elif line.startswith("cfn="):
                callee = name_of(line[4:])
            elif line.startswith("calls="):
                parts = line[6:].split()
                pending = int(parts[0])
                if by_addr:
                    callee = func_at(int(parts[1], 16))
            elif line.startswith("positions:"):
                at = len(line.split()) - 1
                by_addr = func_at is not None and line.split()[1] == "instr"
            elif line.startswith(("summary:", "totals:")):
                prof.total = int(line.split()[1])
    return prof


# --- building and running ---------------------------------------------------

def build(tmp, goamd64, variant="default", randomized_heap=False, go="go", source=None, escapes=True):
    """The program (program_source(), or `source`) built as this script measures it:
    GOAMD64, no cgo, the heap base fixed unless randomized_heap, linkname checks off (for
    runtime.writeBarrier). Returns (executable, the -gcflags=-m output, if `escapes`)."""
    src = Path(tmp) / "src"
    if not src.exists():
        src.mkdir()
        (src / "go.mod").write_text("module allocbench\n\ngo 1.27\n")
        (src / "main.go").write_text(source or program_source())
    env = dict(os.environ, GOFLAGS="-mod=mod", CGO_ENABLED="0", GOAMD64=goamd64, GOTOOLCHAIN="local")
    if not (os.environ.get("GOCACHE") or os.environ.get("HOME")):
        env["GOCACHE"] = str(Path(tmp) / "gocache")      # else the user's build cache
    env["GOEXPERIMENT"] = ",".join(experiments(variant, randomized_heap))
    exe = Path(tmp) / f"allocbench.{variant}"
    r = subprocess.run([go, "build", *BUILD_FLAGS, "-o", str(exe), "."], cwd=src, env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"go build failed:\n{r.stderr}")
    if not escapes:
        return exe, ""
    esc = subprocess.run([go, "build", *BUILD_FLAGS, "-o", os.devnull, "-gcflags=-m", "."], cwd=src,
                         env=env, capture_output=True, text=True)
    return exe, esc.stdout + esc.stderr


BUILD_FLAGS = ("-ldflags=-checklinkname=0",)


def experiments(variant, randomized_heap=False):
    """The GOEXPERIMENT list of a build variant."""
    out = [] if randomized_heap else ["norandomizedheapbase64"]
    if variant == "nossm":
        out.append("nosizespecializedmalloc")
    return out


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


def callout_costs(prof, callouts):
    """{call-out: [calls, inclusive Ir]} of each function gomemu runs in Python (its
    call-outs), called from code gomemu runs as machine code: a call-out that another
    one reaches (refill -> ... -> throw) is in that one's cost already."""
    children = defaultdict(set)
    for a, b in prof.arcs:
        if a != b:
            children[a].add(b)
    below, todo = set(), [c for c in callouts if c in children]
    while todo:
        for g in children[todo.pop()]:
            if g not in below:
                below.add(g)
                todo.append(g)
    out = {}
    for (a, b), (calls, incl) in prof.arcs.items():
        if b in callouts and a != b and a not in callouts and a not in below:
            c = out.setdefault(b, [0, 0])
            c[0] += calls
            c[1] += incl
    return out, below


def machine_callouts(exe):
    """The call-out symbols of a machine running `exe`: what gomemu runs in Python."""
    from emu.callouts import callouts_for
    from emu.goimage import load_image
    return {c.symbol for c in callouts_for(load_image(str(exe)))}


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
    callouts: dict           # call-out -> (calls/iter, inclusive Ir/iter): gomemu's Python half
    machine_code: float      # loop_per_iter without the call-outs: what gomemu runs as machine code
    machine_functions: dict  # self Ir/iter of the functions outside every call-out


def measure(exe, case, n, tmp, valgrind, callouts=frozenset()):
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
    (co1, below1), (co2, below2) = callout_costs(p1, callouts), callout_costs(p2, callouts)
    co = {f: ((co2[f][0] - co1.get(f, (0, 0))[0]) / n, (co2[f][1] - co1.get(f, (0, 0))[1]) / n)
          for f in sorted(co2) if co2[f] != co1.get(f)}
    hidden = below1 | below2 | set(callouts)
    machine_functions = {f: c for f, c in funcs if f not in hidden}
    return Result(case, n, loop, entry, mcalls / n, mcost, slow, funcs,
                  p2.total / (2 * n), time.perf_counter() - t, retries, preempted,
                  co, loop - sum(ir for _, ir in co.values()), machine_functions)


# --- gomemu on the same program ------------------------------------------------

# What the Python slow paths run as machine code on the way (mem_linux.OSCall: mmap, madvise
# and the ABI0 system calls behind them). In the real program they run inside the call-outs.
OS_ROUTINES = ("runtime.mmap", "runtime.sysMmap.abi0", "runtime.munmap", "runtime.sysMunmap.abi0",
               "gomemu.madvise", "runtime.madvise.abi0")


@dataclass
class GomemuResult:
    case: Case
    n: int
    per_iter: float          # every instruction gomemu counted, per iteration
    machine_code: float      # per_iter without the call-outs' entry JMPs and their OS routines
    callouts: dict           # call-out -> calls per iteration
    by_routine: dict         # routine -> instructions per iteration


def gomemu_measure(exe, case, n):
    """The case on gomemu: the same binary's main.run_<case>, on a fresh Machine running
    its image. Iterations n+1..2n, as callgrind's (2N run - N run): run(n), then run(n)
    again, less a run(0) (the call's own entry and exit)."""
    from emu.machine import Machine
    m = Machine(image=str(exe), checked=False)
    failed = m.runtime.run_inits()          # main's package initialisation (growBase)
    if failed:
        raise RuntimeError(f"{exe}: init of {failed[0][0]} failed: {failed[0][1]}")
    fn = f"main.run_{case.func}"
    m.call(fn, n)
    s = m.snapshot()
    m.call(fn, 0)
    c0 = m.counts_since(s)
    s = m.snapshot()
    m.call(fn, n)
    c = m.counts_since(s)
    r0, r = c0.by_routine(), c.by_routine()
    by_routine = {k: (v - r0.get(k, 0)) / n for k, v in r.items() if v != r0.get(k, 0)}
    callouts = {k: v / n for k, v in sorted(c.callouts.items())}
    # A call-out's entry is one JMP to its stub (counted under its name); in the real
    # program that instruction is the function's first, inside the call-out's cost.
    slow = sum(v for k, v in by_routine.items() if k in c.callouts or k in OS_ROUTINES)
    total = (c.instructions - c0.instructions) / n
    return GomemuResult(case, n, total, total - slow, callouts, by_routine)


def compare(results, emulated):
    """Rows of (case, callgrind machine code Ir/iter, gomemu's, difference in %, call-outs)."""
    rows = []
    for r in results:
        g = emulated[r.case.name]
        diff = 100 * (g.machine_code - r.machine_code) / r.machine_code if r.machine_code else 0.0
        names = sorted(set(r.callouts) | set(g.callouts))
        co = ", ".join(f"{_short(f)} {r.callouts.get(f, (0, 0))[0]:.4g}/{g.callouts.get(f, 0):.4g} calls "
                       f"{r.callouts.get(f, (0, 0))[1]:.5g} Ir" for f in names) or "-"
        rows.append((r.case.name, r.loop_per_iter, r.machine_code, g.machine_code, diff, co))
    return rows


def format_compare(rows):
    head = ("case", "real Ir/iter", "real, machine code", "gomemu", "diff %",
            "call-outs (Python in gomemu): calls/iter real/gomemu, real Ir/iter in them")
    body = [(c, f"{t:.6g}", f"{mc:.6g}", f"{g:.6g}", f"{d:+.3f}", co) for c, t, mc, g, d, co in rows]
    return _table([head] + body)


def _table(rows):
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        lines.append("| " + " | ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)) + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


# --- go test benchmarks (gomemu bench) -----------------------------------------

@dataclass
class BenchFigures:
    name: str                # the benchmark's linker name
    n: int
    real: float              # callgrind Ir/op inside the benchmark function, everything
    real_machine_code: float  # of that, the functions gomemu runs as machine code
    real_clears: float       # memclrNoHeapPointers calls/op from the allocation path
    real_clear_ir: float     # their Ir/op
    gomemu: float            # gomemu bench's instructions/op over the same ops
    gomemu_machine_code: float
    gomemu_clear_ir: float   # memclrNoHeapPointers instructions/op
    real_callouts: dict = field(default_factory=dict)   # call-out -> (calls/op, inclusive Ir/op)
    gomemu_callouts: dict = field(default_factory=dict)  # call-out -> calls/op
    real_runs: list = field(default_factory=list)       # (Ir/op, machine code Ir/op) of each repetition
    probe: dict = field(default_factory=dict)           # PROBE_FIELDS name -> (mean, sd, pairs) per op


CLEAR = "runtime.memclrNoHeapPointers"
# Leaves the runtime also calls from its slow paths (sweeping, fixalloc, GC, mcentral's
# cacheSpan for nextFreeIndex): only their calls from machine-code callers count as
# machine code.
SHARED_LEAVES = (CLEAR, "runtime.memmove", "runtime.(*mspan).nextFreeIndex")
# The write barrier (runtime.gcWriteBarrier1..8 and their common body, named so by gomemu's
# symbols) is also run by the runtime's own Go code: split per call (_barrier_elsewhere).
BARRIER_ENTRY, BARRIER_BODY = "runtime.gcWriteBarrier", "gcWriteBarrier"
_RECURSION = re.compile(r"'\d+$")


def _merged(files, func_at=None):
    """One profile of every thread's file, with callgrind's recursion levels (fn'2) folded
    into their function: with the GC on, goroutine switches make it see recursion."""
    out = Profile()
    for part in files:
        p = parse_callgrind(part, func_at)
        out.total += p.total
        for f, v in p.self_cost.items():
            out.self_cost[_RECURSION.sub("", f)] += v
        for (x, y), (k, ir) in p.arcs.items():
            arc = out.arcs[(_RECURSION.sub("", x), _RECURSION.sub("", y))]
            arc[0] += k
            arc[1] += ir
    return out


def bench_args(name, k):
    """The test binary's flags that run benchmark `name` (pkg.BenchmarkX) alone, k times."""
    return ["-test.run=^$", f"-test.bench=^{name.rsplit('.', 1)[1]}$", f"-test.benchtime={k}x"]


def go_test_command(valgrind, out, binary, name, k):
    return [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}", "--separate-threads=yes",
            f"--toggle-collect={name}", "--compress-strings=no", "--compress-pos=no", "--dump-instr=yes",
            str(binary), *bench_args(name, k)]


GO_TEST_ENV = {"GODEBUG": "asyncpreemptoff=1", "GOMAXPROCS": "1"}


def function_names(binary):
    """address -> the name of the function whose code holds it (the binary's symbols)."""
    from emu.goimage import load_image
    image = load_image(binary)

    @functools.lru_cache(maxsize=None)
    def func_at(addr):
        f = image.func_at(addr)
        return f.name if f is not None else f"0x{addr:x}"
    return func_at


def _real_bench(binary, func_at, name, k, valgrind, tmp, gogc, rep):
    f = Path(tmp) / f"cg.bench.{name}.{k}.{rep}.out"
    r = subprocess.run(go_test_command(valgrind, f, binary, name, k),
                       env=dict(os.environ, GOGC=gogc, **GO_TEST_ENV), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"callgrind {name} failed:\n{r.stderr[-2000:]}")
    return _merged(sorted(Path(tmp).glob(f.name + "-*")) or [f], func_at)


# The real counts that depend on wall time, counted natively by a probe: the runtime's own
# malloc.go and mgcmark.go with counters added (an overlay, `go test -c -overlay`; nothing
# else changes), printed at exit. Under callgrind one pair of runs gives one sample of them,
# and they vary from pair to pair (new([1024]int): clears/op 0.94-1.05 natively, sd 0.025),
# so a median of five callgrind pairs does not pin them; natively a pair takes milliseconds.
PROBE_EDITS = {
    "malloc.go": [
        ("memclrNoHeapPointers(x, size)", "probeClear(x, size)"),
        ("memclrNoHeapPointersChunked(size, x) //", "probeClearLarge(size, x) //"),
    ],
    "mgcmark.go": [
        ("func gcmarknewobject(span *mspan, obj uintptr) {\n",
         "func gcmarknewobject(span *mspan, obj uintptr) {\n\tprobeCounts[2]++\n"),
    ],
}
PROBE_SOURCE = """package runtime

import (
	"internal/runtime/exithook"
	"unsafe"
)

// gomemu's measurement probe (bench/callgrind_go.py), not part of Go: counts the small
// objects mallocgc clears, the large objects it clears, and gcmarknewobject's calls.
var probeCounts [3]uint64

func probeClear(x unsafe.Pointer, n uintptr) {
	probeCounts[0]++
	memclrNoHeapPointers(x, n)
}

func probeClearLarge(n uintptr, x unsafe.Pointer) {
	probeCounts[1]++
	memclrNoHeapPointersChunked(n, x)
}

func init() {
	exithook.Add(exithook.Hook{F: func() {
		print("gomemu-probe ", probeCounts[0], " ", probeCounts[1], " ", probeCounts[2], "\\n")
	}, RunOnFailure: true})
}
"""
PROBE_FIELDS = ("small clears", "large clears", "allocated black")


def build_probe(built, tmp, go):
    """The test binary of a BuiltPackage (emu/gobuild.py), built again from its sources, with
    its environment, against the probed runtime."""
    import json
    from emu.gobuild import go_env
    goroot = Path(subprocess.run([go, "env", "GOROOT"], capture_output=True, text=True,
                                 check=True).stdout.strip())
    ov = Path(tmp) / "probe"
    ov.mkdir(parents=True, exist_ok=True)
    replace = {}
    for name, edits in PROBE_EDITS.items():
        text = (goroot / "src" / "runtime" / name).read_text()
        for old, new in edits:
            if old not in text:
                raise RuntimeError(f"probe: {name} of {goroot} has no {old!r} (another Go version?)")
            text = text.replace(old, new)
        (ov / name).write_text(text)
        replace[str(goroot / "src" / "runtime" / name)] = str(ov / name)
    (ov / "gomemu_probe.go").write_text(PROBE_SOURCE)
    replace[str(goroot / "src" / "runtime" / "gomemu_probe.go")] = str(ov / "gomemu_probe.go")
    (ov / "overlay.json").write_text(json.dumps({"Replace": replace}))
    exe = ov / "probe.test"
    r = subprocess.run([go, "test", "-c", "-overlay", str(ov / "overlay.json"), "-o", str(exe), "."],
                       cwd=built.source_dir, env=go_env(), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"probe build failed:\n{r.stderr[-2000:]}")
    return exe


def probe_counts(exe, name, n, pairs, gogc):
    """Per op of N+1..2N, (2N - N) / N over `pairs` pairs of native runs: [[counts] per pair]."""
    out = []
    for _ in range(pairs):
        got = []
        for k in (n, 2 * n):
            r = subprocess.run([str(exe), *bench_args(name, k)], env=dict(os.environ, GOGC=gogc, **GO_TEST_ENV),
                               capture_output=True, text=True)
            m = re.search(r"gomemu-probe (\d+) (\d+) (\d+)", r.stderr)
            if r.returncode != 0 or not m:
                raise RuntimeError(f"probe run of {name} failed:\n{r.stderr[-2000:]}")
            got.append([int(v) for v in m.groups()])
        out.append([(b - a) / n for a, b in zip(*got)])
    return out


def _barrier_elsewhere(p, machine):
    """The write barrier's Ir/op run for callers outside the machine code (the runtime's own
    pointer writes in the functions gomemu runs in Python). Every barrier call runs the same
    few instructions (the buffer-full case calls wbBufFlush, a call-out), so each entry's cost,
    with its share of the common body, is split by its callers' calls; inclusive costs would
    carry the flushes with them."""
    calls = defaultdict(int)           # entry -> calls from everywhere
    from_machine = defaultdict(int)
    into_body = defaultdict(int)       # entry -> its calls of the body
    for (x, y), (k, _) in p.arcs.items():
        if y.startswith(BARRIER_ENTRY) and x != y:
            calls[y] += k
            if x in machine:
                from_machine[y] += k
        elif y == BARRIER_BODY and x.startswith(BARRIER_ENTRY):
            into_body[x] += k
    body = p.self_cost.get(BARRIER_BODY, 0) if BARRIER_BODY in machine else 0
    body_calls = sum(into_body.values())
    out = 0.0
    for e, k in calls.items():
        cost = (p.self_cost.get(e, 0) if e in machine else 0) + (body * into_body[e] / body_calls if body_calls else 0)
        out += cost * (k - from_machine[e]) / k
    return out


def _real_split(p, machine, callouts):
    """(machine-code Ir, memclr calls and Ir from machine code, {call-out: [calls, Ir]})."""
    own = sum(p.self_cost.get(f, 0) for f in machine)
    elsewhere = sum(ir for (x, y), (_, ir) in p.arcs.items()
                    if y in SHARED_LEAVES and y in machine and x not in machine and x != y) + _barrier_elsewhere(p, machine)
    clears = [(k, ir) for (x, y), (k, ir) in p.arcs.items() if y == CLEAR and x in machine]
    co = {}
    for (x, y), (k, ir) in p.arcs.items():
        if y in callouts and x in machine:
            c = co.setdefault(y, [0, 0])
            c[0] += k
            c[1] += ir
    return own - elsewhere, sum(k for k, _ in clears), sum(ir for _, ir in clears), co


def go_test_figures(pkg, pattern, n, valgrind, tmp, gogc="100", repeat=1, probe_pairs=0, go="go"):
    """Each benchmark of the package at -benchtime Nx and 2Nx, under callgrind on the real
    `go test -c` binary (the one gomemu bench builds and runs) and on gomemu bench: ops
    N+1..2N of the 2N run, as (2N - N) / N. callgrind collects inside the Benchmark
    function. With the GC on, its call graph is not reliable (a mark assist parks the
    goroutine and the GC's work shows up under gopark), so the machine-code share is
    the self cost of the functions gomemu runs as machine code, with the shared leaves
    (memclr, memmove, nextFreeIndex) counted only where a machine-code function called
    them. The real run depends on wall time (the GC's workers and the scavenger), so
    with repeat > 1 the pair of runs whose machine code is the median is reported; with
    probe_pairs, the wall-time-dependent counts (PROBE_FIELDS) are also counted natively
    over that many pairs."""
    from emu.program import GoProgram
    Path(tmp).mkdir(parents=True, exist_ok=True)
    prog = GoProgram(pkg)
    callouts = {c.symbol for c in prog.machine().callouts}
    machine_gogc = gogc if gogc == "off" else int(gogc)
    probe_exe = build_probe(prog.built, tmp, go) if probe_pairs else None
    func_at = function_names(prog.built.binary)
    out = []
    for name in prog.benchmarks(pattern):
        emu = [prog.bench(name, f"{k}x", machine=prog.machine(gogc=machine_gogc)) for k in (n, 2 * n)]
        machine = {r_ for g in emu for r_ in g.by_routine if r_ not in callouts and r_ not in OS_ROUTINES} | {name}
        runs = []
        for rep in range(repeat):
            p1, p2 = (_real_bench(prog.built.binary, func_at, name, k, valgrind, tmp, gogc, rep) for k in (n, 2 * n))
            (m1, c1, ci1, co1), (m2, c2, ci2, co2) = _real_split(p1, machine, callouts), \
                _real_split(p2, machine, callouts)
            co = {f: ((v[0] - co1.get(f, [0, 0])[0]) / n, (v[1] - co1.get(f, [0, 0])[1]) / n)
                  for f, v in sorted(co2.items())}
            runs.append(((m2 - m1) / n, (p2.total - p1.total) / n, (c2 - c1) / n, (ci2 - ci1) / n, co))
        med = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
        g = gomemu_split(emu, n, callouts)
        probe = {}
        if probe_exe:
            counts = list(zip(*probe_counts(probe_exe, name, n, probe_pairs, gogc)))
            probe = {f: (statistics.mean(c), statistics.stdev(c) if len(c) > 1 else 0.0, len(c))
                     for f, c in zip(PROBE_FIELDS, counts)}
        out.append(BenchFigures(name, n, med[1], med[0], med[2], med[3], g.per_op, g.machine_code, g.clear_ir,
                                med[4], g.callouts, [(r[1], r[0]) for r in runs], probe))
    return out


@dataclass
class GomemuBench:
    per_op: float            # every instruction gomemu counted, per op
    machine_code: float      # without the call-outs' entry JMPs and their OS routines
    clear_ir: float          # memclrNoHeapPointers instructions/op
    callouts: dict           # call-out -> calls/op


def gomemu_split(results, n, callouts):
    """gomemu bench's BenchResults at -benchtime Nx and 2Nx, as ops N+1..2N per op."""
    g1, g2 = results

    def delta(f):
        return (f(g2) - f(g1)) / n

    def mc(g):
        return g.instructions - sum(v for r_, v in g.by_routine.items() if r_ in callouts or r_ in OS_ROUTINES)

    return GomemuBench(delta(lambda g: g.instructions), delta(mc), delta(lambda g: g.by_routine.get(CLEAR, 0)),
                       {f: delta(lambda g: g.by_routine.get(f, 0)) for f in sorted(callouts)
                        if g2.by_routine.get(f, 0) != g1.by_routine.get(f, 0)})


def format_bench(figs):
    head = ("benchmark", "real Ir/op", "real, machine code", "gomemu instructions/op", "diff %",
            "clears/op real/gomemu", "without the clears: real / gomemu, diff %")
    rows = [head]
    for f in figs:
        per = f.real_clear_ir / f.real_clears if f.real_clears else 0.0
        g_clears = f.gomemu_clear_ir / per if per else 0.0
        r0, g0 = f.real_machine_code - f.real_clear_ir, f.gomemu_machine_code - f.gomemu_clear_ir
        rows.append((f.name, f"{f.real:.6g}", f"{f.real_machine_code:.6g}", f"{f.gomemu_machine_code:.6g}",
                     f"{100 * (f.gomemu_machine_code - f.real_machine_code) / f.real_machine_code:+.2f}",
                     f"{f.real_clears:.4g}/{g_clears:.4g} ({per:.6g} Ir each)",
                     f"{r0:.6g} / {g0:.6g}, {100 * (g0 - r0) / r0:+.2f}"))
    out = _table(rows)
    pr_rows = [("benchmark", "natively, per op (probe)", "mean", "sd of a pair", "pairs")]
    for f in figs:
        pr_rows += [(f.name, k, f"{m:.4g}", f"{sd:.2g}", str(p)) for k, (m, sd, p) in f.probe.items()]
    if len(pr_rows) > 1:
        out += "\n\n" + _table(pr_rows)
    co_rows = [("benchmark", "call-out (gomemu runs it in Python)", "real calls/op", "real inclusive Ir/op",
                "gomemu calls/op")]
    for f in figs:
        for c in sorted(set(f.real_callouts) | set(f.gomemu_callouts)):
            k, ir = f.real_callouts.get(c, (0, 0))
            co_rows.append((f.name, c, f"{k:.4g}", f"{ir:.6g}", f"{f.gomemu_callouts.get(c, 0):.4g}"))
    if len(co_rows) > 1:
        out += "\n\n" + _table(co_rows)
    return out


GO_TEST_RECORD = "go_test_{pkg}.json"


def record_go_test(figs, pkg, out_dir, *, go_version, vg_version, argv, gogc, repeat):
    """Add the benchmarks' callgrind figures to out_dir/go_test_<package>.json (other
    benchmarks already there are kept: each may be recorded with its own N)."""
    import json
    import shlex
    path = Path(out_dir) / GO_TEST_RECORD.format(pkg=Path(pkg).name)
    old = json.loads(path.read_text()) if path.exists() else {}
    data = {
        "toolchain": go_version, "valgrind": vg_version, "package": str(pkg),
        "recorded_by": "python bench/callgrind_go.py --go-test PKG ... --record: each benchmark's command "
                       "is its recorded_by",
        "run": f"GOGC={gogc} " + " ".join(f"{k}={v}" for k, v in GO_TEST_ENV.items()) + " " +
               " ".join(go_test_command("valgrind", "OUT", "<gomemu's go test -c binary>", "<pkg>.<Benchmark>", "<N>")) +
               f", then 2N; each repeated {repeat} times; figures are (2N run - N run) / N of the repetition "
               "whose machine-code Ir/op is the median",
        "benchmarks": dict(old.get("benchmarks", {})),
    }
    for f in figs:
        data["benchmarks"][f.name] = {
            "recorded_by": "python bench/callgrind_go.py " + shlex.join(argv),
            "n": f.n, "ir_per_op": f.real, "machine_code_ir_per_op": f.real_machine_code,
            "clears_per_op": f.real_clears, "clear_ir_per_op": f.real_clear_ir,
            "callouts": {c: {"calls_per_op": k, "ir_per_op": ir} for c, (k, ir) in f.real_callouts.items()},
            "runs": [{"ir_per_op": a, "machine_code_ir_per_op": b} for a, b in f.real_runs],
            "probe": {k: {"mean": m, "sd": sd, "pairs": p} for k, (m, sd, p) in f.probe.items()},
        }
    data["benchmarks"] = dict(sorted(data["benchmarks"].items()))
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


# --- recorded figures (tests/data/callgrind) ---------------------------------

DATA_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "callgrind"
RECORD = "figures.json"
PROGRAM = "main.go"


def record(results, out_dir, *, go_version, vg_version, goamd64, argv):
    """Write the program and every case's callgrind figures for tests/test_callgrind.py."""
    import hashlib
    import json
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    src = program_source()
    (out_dir / PROGRAM).write_text(src)
    data = {
        "toolchain": go_version,
        "valgrind": vg_version,
        "recorded_by": "python bench/callgrind_go.py " + " ".join(argv),
        "build": f"GOAMD64={goamd64} CGO_ENABLED=0 GOEXPERIMENT=<case's experiment> go build "
                 f"{' '.join(BUILD_FLAGS)} -o allocbench.<build> .",
        "run": "GOGC=off GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1 valgrind --tool=callgrind "
               "--callgrind-out-file=OUT --separate-threads=yes --toggle-collect=main.run_<case> "
               "--compress-strings=no --compress-pos=no --dump-instr=no ./allocbench.<build> <case> <N>, "
               "then <2N>; figures are (2N run - N run) / N",
        "program_sha256": hashlib.sha256(src.encode()).hexdigest(),
        "cases": {r.case.name: {
            "n": r.n, "build": r.case.build, "goexperiment": ",".join(experiments(r.case.build)),
            "ir_per_iter": r.loop_per_iter,
            "machine_code_ir_per_iter": r.machine_code,
            "callouts": {f: {"calls_per_iter": k, "ir_per_iter": ir} for f, (k, ir) in r.callouts.items()},
            "functions": {f: c for f, c in sorted(r.machine_functions.items())},
        } for r in results},
    }
    (out_dir / RECORD).write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")


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
    return _table(rows)


def format_functions(results, emulated=None):
    out = []
    for r in results:
        slow = ", ".join(f"{_short(f)} {k:.4g}" for f, k in r.slow_calls.items() if k)
        out.append(f"{r.case.name}: {r.case.expr}; expected {r.case.expect}; N={r.n}; "
                   f"2N run / 2N: {r.plain_per_iter:.6g} Ir/iter")
        if slow:
            out.append(f"    calls/iter: {slow}")
        g = emulated.get(r.case.name) if emulated else None
        for fn, c in r.functions:
            if abs(c) >= 0.01:
                side = ""
                if g is not None and fn in r.machine_functions:
                    side = f"  gomemu {g.by_routine.get(fn, 0):12.4f}"
                out.append(f"    {c:12.4f}{side}  {fn}")
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
    ap.add_argument("--no-gomemu", action="store_true", help="measure the real runtime only")
    ap.add_argument("--record", nargs="?", const=str(DATA_DIR), metavar="DIR",
                    help=f"write the program and the figures for the tests (default {DATA_DIR})")
    ap.add_argument("--keep", help="keep the build and callgrind files in this directory")
    ap.add_argument("--go-test", metavar="PKG", help="instead: the package's benchmarks, callgrind on its "
                    "go test binary beside gomemu bench (-benchtime Nx and 2Nx, N from --n, default 1000)")
    ap.add_argument("--bench", default=".", metavar="REGEX", help="with --go-test: the benchmarks to run")
    ap.add_argument("--gogc", default="100", help="with --go-test: GOGC for both (default 100, go test's)")
    ap.add_argument("--repeat", type=int, default=1, help="with --go-test: real runs per N (the median is kept)")
    ap.add_argument("--probe", type=int, default=20, metavar="PAIRS",
                    help="with --go-test: native pairs of runs of the probed runtime (0: none)")
    args = ap.parse_args(argv)

    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("skipped: valgrind not found")
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from emu.errors import GoToolchainMissing
    from emu.gobuild import find_go
    try:
        go = find_go()
    except GoToolchainMissing as e:
        print(f"skipped: {e}")
        return 0

    if args.go_test:
        with tempfile.TemporaryDirectory(prefix="callgrind_go.") as tmp:
            figs = go_test_figures(args.go_test, args.bench, args.n or 1000, valgrind, args.keep or tmp,
                                   args.gogc, args.repeat, args.probe, go)
        print(f"{args.go_test}: callgrind on the go test binary (GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1, "
              f"--toggle-collect=<benchmark>, GOGC={args.gogc}) and gomemu bench, ops N+1..2N of -benchtime 2Nx, N={args.n or 1000}; "
              "machine code = what gomemu runs as machine code (its call-outs, the GC among them, run in Python)")
        print(format_bench(figs))
        if args.record:
            vg_version = subprocess.run([valgrind, "--version"], capture_output=True, text=True).stdout.strip()
            go_version = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True).stdout.strip()
            print("recorded in", record_go_test(figs, args.go_test, args.record, go_version=go_version,
                                               vg_version=vg_version, argv=argv, gogc=args.gogc,
                                               repeat=args.repeat))
        return 0
    names = SMOKE_CASES if args.smoke else (
        args.cases.split(",") if args.cases else [c.name for c in CASES])
    unknown = [x for x in names if x not in CASE_BY_NAME]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; known: {', '.join(CASE_BY_NAME)}")
    if "loop" not in names:
        names = ["loop"] + names
    if args.record and (args.smoke or args.n or args.randomized_heap or args.goamd64 != "v1"):
        ap.error("--record takes the default cases' figures only (no --smoke, --n, --goamd64, "
                 "--randomized-heap)")

    vg_version = subprocess.run([valgrind, "--version"], capture_output=True,
                                text=True).stdout.strip()
    go_version = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True).stdout.strip()
    heap = "randomized heap base" if args.randomized_heap else \
        "GOEXPERIMENT=norandomizedheapbase64"
    print(f"{go_version} linux/amd64, GOAMD64={args.goamd64}, {heap}, {vg_version}; "
          "run with GOGC=off GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1", flush=True)

    tmp_ctx = None
    if args.keep:
        tmp = args.keep
        Path(tmp).mkdir(parents=True, exist_ok=True)
    else:
        tmp_ctx = tempfile.TemporaryDirectory(prefix="callgrind_go.")
        tmp = tmp_ctx.name
    try:
        exes, callouts = {}, {}
        for variant in sorted({CASE_BY_NAME[x].build for x in names}):
            exe, m_out = build(tmp, args.goamd64, variant, args.randomized_heap, go=go)
            bad = check_escapes(m_out)
            if bad:
                print("allocations that do not escape:\n  " + "\n  ".join(bad))
                return 1
            exes[variant] = exe
            callouts[variant] = machine_callouts(exe)
        results, emulated = [], {}
        for name in names:
            c = CASE_BY_NAME[name]
            n = SMOKE_N if args.smoke else (args.n or c.n)
            r = measure(exes[c.build], c, n, tmp, valgrind, callouts[c.build])
            note = f", {r.retries} run(s) repeated after a preemption" if r.retries else ""
            if r.preempted:
                note += f", WARNING: {r.preempted} preemption(s) left in the runs"
            if not args.no_gomemu:
                emulated[name] = gomemu_measure(exes[c.build], c, n)
            print(f"  {name}: N={n}, {r.seconds:.1f} s{note}", flush=True)
            results.append(r)
    finally:
        if tmp_ctx is not None:
            tmp_ctx.cleanup()

    baseline = results[0].loop_per_iter
    print(format_table(results, baseline))
    if emulated:
        print()
        print("Against gomemu on the same binary (Machine(image=...), main.run_<case>, the same "
              "iterations N+1..2N); machine code = everything but the call-outs, which gomemu runs "
              "in Python:")
        print(format_compare(compare(results, emulated)))
    if args.functions or not args.smoke:
        print()
        print(format_functions(results, emulated))
    if args.record:
        record(results, args.record, go_version=go_version, vg_version=vg_version,
               goamd64=args.goamd64, argv=argv)
        print(f"\nrecorded: {Path(args.record) / RECORD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
