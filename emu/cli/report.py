"""`gomemu report`: what each allocation path costs, on a built-in workload.

Allocates through the emulated mallocgc and prints, per path, the exact
instruction count, memory reads and writes, and call-outs into Python, then
what the heap, the memory statistics and the emulated kernel saw.
Deterministic: no timings.
"""

from emu import layout as L
from emu.errors import BadInput
from emu.machine import Machine
from emu.paths import path_sort_key, survey

# (size, pointer words or None for noscan, allocations): every mallocgc path.
DEFAULT_WORKLOAD = [
    (0, None, 20), (8, None, 600), (12, None, 300), (16, None, 1200), (48, None, 600),
    (1024, None, 300), (8192, None, 200), (32760, None, 100),
    (24, (0,), 1200), (512, (0, 63), 200), (1024, (0,), 300),
    (100000, None, 40), (100000, (0,), 20),
]


def register(sub):
    p = sub.add_parser("report", help="instruction counts per mallocgc path (built-in workload)")
    p.add_argument("--size", type=int, action="append",
                   help="object size to survey instead of the built-in workload (repeatable)")
    p.add_argument("--scan", action="store_true", help="with --size: objects whose first word is a pointer")
    p.add_argument("-n", type=int, help="allocations per size (default: the workload's own counts, "
                                        "or 1000 with --size)")
    p.set_defaults(handler=run)


def _fmt_range(values):
    lo, hi = min(values), max(values)
    return f"{lo}" if lo == hi else f"{lo}..{hi}"


def _path_table(m, workload):
    """Per size and path: count, instructions, reads, writes, call-outs; then the hit
    paths by routine."""
    header = (f"{'size':>6} {'type':<8} {'path':<60} {'count':>6} {'instructions':>12} {'reads':>6} "
              f"{'writes':>6}  call-outs")
    out = [header, "-" * len(header)]
    breakdown = {}
    for size, ptrs, n in workload:
        typ = m.runtime.new_type(size, ptrs) if ptrs else 0
        groups = survey(m, size, n, typ)
        for key in sorted(groups, key=path_sort_key):
            g = groups[key]
            callouts = {}
            for s in g:
                for name, k in s.callouts.items():
                    callouts[name] = callouts.get(name, 0) + k
            co = ", ".join(f"{name.split('.', 1)[1]} x{k}" for name, k in sorted(callouts.items())) or "-"
            out.append(f"{size:>6} {'scan' if ptrs else 'noscan':<8} {key:<60} {len(g):>6} "
                       f"{_fmt_range([s.instructions for s in g]):>12} {_fmt_range([s.reads for s in g]):>6} "
                       f"{_fmt_range([s.writes for s in g]):>6}  {co}")
            breakdown.setdefault(key.split(":")[0] if "hit" in key and "profilealloc" not in key else None,
                                 (size, g[0]))
    breakdown.pop(None, None)
    out += ["", "hit paths by routine (instructions):"]
    for entry, (size, sample) in breakdown.items():
        parts = ", ".join(f"{name.removeprefix('runtime.')} {k}" for name, k in sample.by_routine.items())
        out.append(f"  {entry} ({size} B): {sample.instructions} = {parts}")
    return out


def report_lines(workload):
    m = Machine()
    out = ["gomemu report: mallocgc on an emulated go1.27.3 linux/amd64 heap (counts are exact; "
           "call-outs run in Python and are not counted)", ""]
    out += _path_table(m, workload)
    small = [w for w in workload if w[0] < L.SIZE_SPECIALIZED_LIMIT]
    if small:
        out += ["", f"size-specialised (GOEXPERIMENT sizespecializedmalloc, Go 1.27's default; sizes under "
                    f"{L.SIZE_SPECIALIZED_LIMIT} B, a second machine: Machine(size_specialized=True)):"]
        out += _path_table(Machine(size_specialized=True), small)
    h = m.runtime.mheap
    ms = m.runtime.read_mem_stats()
    out += ["", "heap and runtime.MemStats (after the mcache is flushed, as ReadMemStats does):"]
    out += [f"  {k:<16} {v}" for k, v in ms.items()]
    out += [f"  {'spans':<16} {h.nspans}",
            f"  {'pagesInUse':<16} {h.pages_in_use}",
            f"  {'mcache refills':<16} {len(m.runtime.refills)}",
            f"  {'profile samples':<16} {len(m.runtime.mem_profile)}",
            f"  {'RSS':<16} {m.kernel.rss_bytes()} bytes of mapped heap touched and not released",
            "", "system calls:"]
    out += [f"  {s}" for s in m.kernel.log]
    out += _write_barrier_lines()
    return out


def _write_barrier_lines():
    from emu.cli.barrier import report_lines as barrier_report_lines
    return barrier_report_lines()


def run(args):
    if args.n is not None and args.n <= 0:
        raise BadInput(f"-n must be positive, not {args.n}")
    if args.size:
        for s in args.size:
            if not 0 <= s < 1 << 32:
                raise BadInput(f"size {s} is outside 0..4 GiB")
        workload = [(s, (0,) if args.scan and s >= 8 else None, args.n or 1000) for s in args.size]
    else:
        workload = [(s, p, args.n or n) for s, p, n in DEFAULT_WORKLOAD]
    print("\n".join(report_lines(workload)))
    return 0
