"""`gomemu report`: what each allocation path costs, on built-in defaults.

Allocates through the emulated mallocgc and prints, per path, the exact
instruction count, memory reads and writes, and call-outs into Python, then
what the heap and the emulated kernel saw. Deterministic: no timings.
"""

from emu.errors import BadInput
from emu.machine import Machine, check_small_noscan_size
from emu.paths import PATH_ORDER, survey

DEFAULT_SIZES = (16, 48, 1024, 8192, 32760)


def register(sub):
    p = sub.add_parser("report", help="instruction counts per allocation path (built-in defaults)")
    p.add_argument("--size", type=int, action="append",
                   help="object size to survey (repeatable; default: 16 48 1024 8192 32760)")
    p.add_argument("-n", type=int, default=2000, help="allocations per size (default 2000)")
    p.set_defaults(handler=run)


def _fmt_range(values):
    lo, hi = min(values), max(values)
    return f"{lo}" if lo == hi else f"{lo}..{hi}"


def report_lines(sizes, n):
    m = Machine()
    out = ["gomemu report: mallocgcSmallNoscan (noscan, needzero) on an emulated go1.27.3 linux/amd64 heap",
           ""]
    header = f"{'size':>6}  {'path':<44} {'count':>6} {'instructions':>12} {'reads':>6} {'writes':>6}  call-outs"
    out.append(header)
    out.append("-" * len(header))
    hit_breakdown = None
    for size in sizes:
        groups = survey(m, size, n)
        keys = sorted(groups, key=lambda k: (PATH_ORDER.index(k.split(" + profilealloc")[0]), k))
        for key in keys:
            g = groups[key]
            callouts = {}
            for s in g:
                for name, k in s.callouts.items():
                    callouts[name] = callouts.get(name, 0) + k
            co = ", ".join(f"{name.split('.', 1)[1]} x{k}" for name, k in sorted(callouts.items())) or "-"
            out.append(f"{size:>6}  {key:<44} {len(g):>6} {_fmt_range([s.instructions for s in g]):>12} "
                       f"{_fmt_range([s.reads for s in g]):>6} {_fmt_range([s.writes for s in g]):>6}  {co}")
            if hit_breakdown is None and key == PATH_ORDER[0]:
                hit_breakdown = (size, g[0].by_routine)
    if hit_breakdown:
        size, routines = hit_breakdown
        out += ["", f"mcache hit, size {size}, by routine:"]
        out += [f"  {name:<40} {k:>4}" for name, k in routines.items()]
    h = m.runtime.mheap
    out += ["", "heap:",
            f"  spans allocated     {h.nspans}",
            f"  pages in use        {h.pages_in_use} ({h.pages_in_use * 8192} bytes)",
            f"  HeapSys             {h.heap_sys}",
            f"  HeapInuse           {h.heap_in_use}",
            f"  HeapIdle            {h.heap_idle}",
            f"  HeapReleased        {h.heap_released}",
            f"  mcache refills      {len(m.runtime.refills)}",
            f"  profiled samples    {len(m.runtime.mem_profile)}",
            f"  resident (RSS)      {m.kernel.rss_bytes()} bytes of mapped heap",
            "", "system calls:"]
    out += [f"  {s}" for s in m.kernel.log]
    return out


def run(args):
    sizes = args.size or list(DEFAULT_SIZES)
    if args.n <= 0:
        raise BadInput(f"-n must be positive, not {args.n}")
    for s in sizes:
        check_small_noscan_size(s)
    print("\n".join(report_lines(sizes, args.n)))
    return 0
