"""`gomemu bench PATH [-bench REGEX] [-benchtime Nx|DURATION]`: the package's Benchmark*
functions on the emulated runtime, printed as `go test -bench -benchmem` prints them, with
instructions/op and the allocations by mallocgc path (emu/benchmark.py, emu/program.py).

ns/op is modeled time (emu/clock.py: instructions at a stated clock), not the host's.
`--real` runs the same test binary natively for the real figures beside them;
`-memprofile FILE` writes every allocation with its Go call stack as pprof's profile.proto
(a second run with MemProfileRate = 1, as `go test -memprofilerate=1` makes one)."""

import subprocess

from emu.cli import inputs
from emu.cli.call import path_rows
from emu.cli.jsonout import document, dumps
from emu.clock import CLOCK_GHZ, INSTRUCTIONS_PER_CYCLE
from emu.errors import BadInput
from emu.program import GoProgram
from emu.timing.meter import Meter, summary_line


def register(sub):
    p = sub.add_parser("bench", help="run your package's benchmarks on the emulated runtime (like go test -bench)")
    p.add_argument("path", type=inputs.path, help="a package directory (or a _test.go file) with Benchmark functions")
    p.add_argument("-bench", default=".", metavar="REGEX", help="benchmarks to run (default: all)")
    p.add_argument("-benchtime", default="1000x", metavar="Nx|DURATION",
                   help="iterations (1000x, the default) or modeled time (e.g. 10ms, grown as go test does)")
    p.add_argument("-memprofile", type=inputs.path, metavar="FILE", help="write the allocation profile (pprof profile.proto)")
    p.add_argument("--real", action="store_true", help="also run the benchmarks natively and print the real figures")
    p.add_argument("--no-size-specialized", action="store_true",
                   help="build with GOEXPERIMENT=nosizespecializedmalloc")
    inputs.add_cycles_options(p, "cycles/op, L1/L2 misses, mispredicts")
    p.add_argument("--json", action="store_true", help="one JSON object (schema gomemu.bench/v1)")
    p.set_defaults(handler=run)


def _fmt_float(v):
    """testing: prettyPrint's precision for ns/op and friends."""
    if v == 0:
        return "0"
    if v >= 99.995:
        return f"{v:.0f}"
    if v >= 9.9995:
        return f"{v:.1f}"
    if v >= 0.99995:
        return f"{v:.2f}"
    return f"{v:.3f}" if v >= 0.099995 else f"{v:.4g}"


def real_run(binary, pattern, benchtime):
    """The real test binary's own run: {name: (N, ns/op, B/op, allocs/op)}."""
    cmd = [str(binary), "-test.run", "^$", "-test.bench", pattern, "-test.benchmem", "-test.benchtime", benchtime]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={"GOMAXPROCS": "1",
                                                                                     "GODEBUG": "asyncpreemptoff=1"})
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BadInput(f"running {binary} natively failed: {e}") from None
    res = {}
    for ln in out.stdout.splitlines():
        f = ln.split()
        if f and f[0].startswith("Benchmark") and "ns/op" in f:
            vals = dict(zip(f[3::2], f[2::2]))
            res[f[0].split("-")[0]] = (int(f[1]), float(vals["ns/op"]), int(vals.get("B/op", 0)),
                                       int(vals.get("allocs/op", 0)))
    return res


def memprofile(prog, names, benchtime, path):
    """Every allocation of the benchmarks, with its call stack, as profile.proto."""
    from emu import pprof
    records = []
    for name in names:
        m = prog.machine(mem_profile_rate=1)
        m.runtime.profile_stacks = records
        prog.bench(name, benchtime, machine=m)
    pprof.write_alloc_profile(path, [pprof.AllocRecord(stack, size, 1) for stack, size in records], period=1)
    return len(records)


def run(args):
    inputs.check_cycles_options(args)
    prog = GoProgram(args.path, size_specialized=not args.no_size_specialized)
    names = prog.benchmarks(args.bench)
    if not names:
        raise BadInput(f"{args.path}: no benchmark matches -bench {args.bench!r}")
    meters = [Meter.attach(prog.machine(), args.uarch) if args.cycles else None for _ in names]
    results = [prog.bench(n, args.benchtime, machine=mt and mt.m) for n, mt in zip(names, meters)]
    cycles = {r.name: mt.bench_summary(r) for r, mt in zip(results, meters) if mt}
    real = real_run(prog.built.binary, args.bench, args.benchtime) if args.real else {}
    nprof = memprofile(prog, names, args.benchtime, args.memprofile) if args.memprofile else None
    clock = f"instructions at {CLOCK_GHZ} GHz, {INSTRUCTIONS_PER_CYCLE:g} per cycle"
    if args.json:
        print(dumps(document("bench", package=prog.built.package, ns_per_op_is=f"modeled: {clock}", benchmarks=[
            {"name": r.name, "n": r.n, "ns_per_op": r.ns_per_op, "bytes_per_op": r.bytes_per_op,
             "allocs_per_op": r.allocs_per_op, "instructions_per_op": r.instructions_per_op,
             "instructions": r.instructions, "by_routine": r.by_routine, "extra": r.extra,
             "paths": [{"path": k, "calls": n, "instructions_min": lo, "instructions_max": hi}
                       for k, n, lo, hi in path_rows(r.allocations)],
             **({"real": dict(zip(("n", "ns_per_op", "bytes_per_op", "allocs_per_op"), real[r.name]))}
                if r.name in real else {}), **({"cycles": cycles[r.name]} if r.name in cycles else {})}
            for r in results],
            **({"memprofile": {"file": args.memprofile, "allocations": nprof}} if nprof is not None else {}))))
        return 0
    from emu.callouts import callouts_for
    callouts = {c.symbol for c in callouts_for(prog.image) if not c.models.startswith("not run by gomemu")}
    print("goos: linux\ngoarch: amd64")
    print(f"pkg: {prog.built.package}")
    print(f"cpu: gomemu: the program's go1.27.3 runtime in unicorn; ns/op is modeled ({clock})")
    width = max(len(r.name) for r in results)
    for r in results:
        line = (f"{r.name:<{width}}\t{r.n:8d}\t{_fmt_float(r.ns_per_op):>10} ns/op\t{r.bytes_per_op:8d} B/op\t"
                f"{r.allocs_per_op:8d} allocs/op\t{_fmt_float(r.instructions_per_op):>10} instructions/op")
        for unit, v in sorted(r.extra.items()):
            line += f"\t{_fmt_float(v)} {unit}"
        print(line)
        if r.name in real:
            n, ns, bpo, apo = real[r.name]
            print(f"{'  real (native)':<{width}}\t{n:8d}\t{_fmt_float(ns):>10} ns/op\t{bpo:8d} B/op\t{apo:8d} allocs/op")
    for r in results:
        rows = path_rows(r.allocations)
        print(f"\n{r.name}: {r.instructions} instructions timed, {len(r.allocations)} allocations")
        if r.name in cycles:
            print("  " + summary_line(cycles[r.name], "/op"))
        if rows:
            w = max(len(k) for k, *_ in rows)
            for k, n, lo, hi in rows:
                print(f"  {k:<{w}}  {n:>8} calls  {lo if lo == hi else f'{lo}..{hi}'} instructions")
        top = sorted(r.by_routine.items(), key=lambda kv: (-kv[1], kv[0]))[:8]
        print("  by routine: " + ", ".join(f"{name} {k}" for name, k in top))
        # A call-out's count is its one entry instruction: the call, not the work.
        python = sorted((name, k) for name, k in r.by_routine.items() if name in callouts)
        if python:
            print("  in Python (call-outs, their work not counted): " +
                  ", ".join(f"{name} {k} calls" for name, k in python))
    if nprof is not None:
        print(f"\nmemory profile: {nprof} allocations with their stacks in {args.memprofile} "
              "(go tool pprof -top or -traces reads it)")
    return 0
