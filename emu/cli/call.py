"""`gomemu call PATH FUNC [ARG ...]`: run one function of the user's Go code on the emulated
runtime and say what it cost: its results, every allocation by mallocgc path, instructions
per routine, write barriers and wbBuf flushes, stack growths (emu/program.py)."""

from emu.cli import inputs
from emu.cli.jsonout import document, dumps
from emu.program import GoProgram
from emu.timing.meter import Meter, summary_line


def register(sub):
    p = sub.add_parser("call", help="run a function of your Go code on the emulated runtime and show its costs")
    p.add_argument("path", type=inputs.path, help="a .go file or a package directory (built with the real toolchain)")
    p.add_argument("func", help="the function to call, e.g. work or (*T).M")
    p.add_argument("args", nargs="*", metavar="ARG", help="integer arguments (decimal or 0x...)")
    p.add_argument("--no-size-specialized", action="store_true",
                   help="build with GOEXPERIMENT=nosizespecializedmalloc")
    inputs.add_cycles_options(p, "cycles, L1/L2 misses, mispredicts")
    p.add_argument("--json", action="store_true", help="one JSON object (schema gomemu.call/v1)")
    p.set_defaults(handler=run)


def path_rows(samples):
    """[(path, calls, min, max instructions, bytes of objects)] per allocation path, in path order."""
    from emu.paths import path_sort_key
    groups = {}
    for s in samples:
        groups.setdefault(s.key, []).append(s)
    return [(k, len(g), min(s.instructions for s in g), max(s.instructions for s in g))
            for k, g in sorted(groups.items(), key=lambda kv: path_sort_key(kv[0]))]


def growth_dict(c):
    return {"from": c.old_size, "to": c.new_size, "bytes_copied": c.used, "frames": c.frames,
            "pointers_adjusted": c.adjusted, "reason": c.reason}


def run(args):
    inputs.check_cycles_options(args)
    prog = GoProgram(args.path, [args.func], size_specialized=not args.no_size_specialized)
    m = prog.machine()
    meter = Meter.attach(m, args.uarch) if args.cycles else None
    res = prog.call(args.func, *args.args, machine=m)
    cycles = {"cycles": meter.summary()} if meter else {}
    rows = path_rows(res.allocations)
    if args.json:
        print(dumps(document(
            "call", function=res.func, args=[a - (1 << 64) if a >> 63 else a for a in res.args],
            results=res.results, instructions=res.instructions, allocations=len(res.allocations),
            mallocs=res.mallocs, bytes_allocated=res.bytes_allocated,
            paths=[{"path": k, "calls": n, "instructions_min": lo, "instructions_max": hi} for k, n, lo, hi in rows],
            by_routine=res.by_routine, write_barriers=res.write_barriers, wb_flushes=res.wb_flushes,
            stack_growths=[growth_dict(c) for c in res.stack_growths], callouts=res.callouts,
            init_failures=[{"package": p, "error": str(e)} for p, e in m.runtime.init_failures], **cycles)))
        return 0
    shown_args = ", ".join(str(a) for a in args.args)
    print(f"{res.func}({shown_args}) = {', '.join(str(r) for r in res.results) or '(no results)'}")
    print(f"  on a new goroutine (2 KiB stack) of {m.image.path.name}'s own go1.27.3 runtime; "
          "instructions are exact, call-outs into Python are not counted")
    for pkg, err in m.runtime.init_failures:
        print(f"  note: package {pkg}'s initialisation stopped: {err}")
    print(f"\ninstructions: {res.instructions}")
    if meter:
        print(summary_line(cycles["cycles"]))
    print(f"allocations:  {len(res.allocations)} calls into the allocator, {res.mallocs} mallocs, "
          f"{res.bytes_allocated} bytes (MemStats.TotalAlloc)")
    if rows:
        w = max(len(k) for k, *_ in rows)
        print(f"\n  {'mallocgc path':<{w}}  {'calls':>6}  instructions")
        for k, n, lo, hi in rows:
            print(f"  {k:<{w}}  {n:>6}  {lo if lo == hi else f'{lo}..{hi}'}")
    print("\ninstructions by routine:")
    for r, n in sorted(res.by_routine.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {n:>10}  {r}")
    print(f"\nwrite barriers: {res.write_barriers} taken, {res.wb_flushes} wbBuf flushes")
    print(f"stack growths:  {len(res.stack_growths)}")
    for c in res.stack_growths:
        print(f"  {c.old_size} -> {c.new_size} bytes: copied {c.used}, {c.frames} frames, "
              f"{c.adjusted} pointers adjusted")
    if res.callouts:
        print("call-outs into Python: " + ", ".join(f"{k} x{v}" for k, v in sorted(res.callouts.items())))
    return 0
