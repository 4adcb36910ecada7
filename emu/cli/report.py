"""`gomemu report`: what each allocation path costs, on a built-in workload.

Allocates through the emulated mallocgc and prints, per path, the exact
instruction count, memory reads and writes, and call-outs into Python, then
what the heap, the memory statistics and the emulated kernel saw, and what a
pointer store costs with the write barrier off and on. Deterministic: no
timings. `report_data` gathers everything once; the table and --json
(docs/json.md: gomemu.report) are two views of it.
"""

from dataclasses import dataclass, field

from emu import layout as L
from emu.cli import inputs
from emu.cli.jsonout import document, dumps
from emu.cli.inputs import UsageError
from emu.cli.output import Progress
from emu.errors import InvariantError
from emu.machine import Machine
from emu.paths import path_sort_key, survey

# (size, pointer words or None for noscan, allocations): every mallocgc path.
DEFAULT_WORKLOAD = [
    (0, None, 20), (8, None, 600), (12, None, 300), (16, None, 1200), (48, None, 600),
    (1024, None, 300), (8192, None, 200), (32760, None, 100),
    (24, (0,), 1200), (512, (0, 63), 200), (1024, (0,), 300),
    (100000, None, 40), (100000, (0,), 20),
]
CHUNK = 500                  # allocations surveyed at a time: samples are summed, then dropped


def register(sub):
    p = sub.add_parser("report", help="instruction counts per mallocgc path (built-in workload)")
    p.add_argument("--size", type=inputs.bounded(0, inputs.MAX_OBJECT), action="append",
                   help=f"object size in bytes to survey instead of the built-in workload (repeatable; "
                        f"0..{inputs.MAX_OBJECT})")
    p.add_argument("--scan", action="store_true",
                   help="with --size: objects whose first word is a pointer (sizes of 8 bytes or more)")
    p.add_argument("-n", type=inputs.bounded(1, inputs.MAX_ALLOCATIONS),
                   help=f"allocations per size (1..{inputs.MAX_ALLOCATIONS}; default: the workload's own "
                        f"counts, or 1000 with --size). In all at most {inputs.MAX_ALLOCATIONS} allocations "
                        f"(sizes under {L.SIZE_SPECIALIZED_LIMIT} B run twice: generic and size-specialised) and "
                        f"{inputs.MAX_HEAP_BYTES >> 30} GiB (the emulated heap's reservation)")
    inputs.add_cycles_options(p, "cycles, ns, L1/L2 misses and mispredicts of each hit path, and of a "
                                 "cold allocation")
    p.add_argument("--json", action="store_true", help="one JSON document (docs/json.md: gomemu.report)")
    p.set_defaults(handler=run)


@dataclass
class PathRow:
    """One row of the path table: every allocation of one size that took one path."""
    size: int
    pointer_words: tuple
    path: str                     # PathSample.key: the path, "+ profilealloc" if sampled
    profiled: bool
    count: int = 0
    instructions: list = field(default_factory=lambda: [None, None])   # [min, max]
    reads: list = field(default_factory=lambda: [None, None])
    writes: list = field(default_factory=lambda: [None, None])
    callouts: dict = field(default_factory=dict)
    first: object = None          # the first allocation on this path (a PathSample)

    def add(self, s):
        self.count += 1
        for span, v in ((self.instructions, s.instructions), (self.reads, s.reads), (self.writes, s.writes)):
            span[0] = v if span[0] is None else min(span[0], v)
            span[1] = v if span[1] is None else max(span[1], v)
        for name, k in s.callouts.items():
            self.callouts[name] = self.callouts.get(name, 0) + k
        if self.first is None:
            self.first = s


def survey_rows(m, workload, progress):
    """[PathRow] per size, in workload order and path order within a size."""
    rows = []
    for size, ptrs, n in workload:
        typ = m.runtime.new_type(size, ptrs) if ptrs else 0
        by_key = {}
        for start in range(0, n, CHUNK):
            k = min(CHUNK, n - start)
            for key, samples in survey(m, size, k, typ).items():
                row = by_key.setdefault(key, PathRow(size, tuple(ptrs or ()), key, samples[0].profiled))
                for s in samples:
                    row.add(s)
            progress.advance(k)
        rows += [by_key[key] for key in sorted(by_key, key=path_sort_key)]
    return rows


def hit_paths(rows):
    """The first hit path of each entry routine (not a profiled one): (entry, row)."""
    out = {}
    for r in rows:
        if "hit" in r.path and not r.profiled:
            out.setdefault(r.path.split(":")[0], r)
    return list(out.items())


def _specialised(workload):
    """The part of the workload a size-specialised machine runs again."""
    return [w for w in workload if w[0] < L.SIZE_SPECIALIZED_LIMIT]


def planned_allocations(workload):
    return sum(n for code, spec, _ in MACHINES for *_, n in _workload_for(code, spec, workload))


# The machines `gomemu report` surveys, in order: Go 1.27's default runtime (the real code,
# size-specialised), the same runtime built with GOEXPERIMENT=nosizespecializedmalloc (only
# the sizes the specialised copies serve), and gomemu's handwritten teaching routines.
MACHINES = (
    ("compiled", True, "go1.27.3's own runtime, Go 1.27's default GOEXPERIMENT sizespecializedmalloc "
                       "(Machine())"),
    ("compiled", False, f"go1.27.3's own runtime built with GOEXPERIMENT=nosizespecializedmalloc, sizes "
                        f"under {L.SIZE_SPECIALIZED_LIMIT} B (Machine(size_specialized=False))"),
    ("handwritten", False, "gomemu's handwritten routines, the commented teaching version that "
                           "`gomemu step --annotated` walks (Machine(handwritten=True))"),
)


def _machine(code, size_specialized):
    return Machine(handwritten=code == "handwritten", size_specialized=size_specialized)


def _workload_for(code, size_specialized, workload):
    return _specialised(workload) if code == "compiled" and not size_specialized else workload


def report_data(workload):
    """Everything `gomemu report` shows, as data."""
    progress = Progress("allocations", planned_allocations(workload))
    machines, first = [], None
    for code, spec, title in MACHINES:
        part = _workload_for(code, spec, workload)
        if not part:
            continue
        m = _machine(code, spec)
        first = first or m
        machines.append({"code": code, "size_specialized": spec, "title": title,
                         "rows": survey_rows(m, part, progress)})
    progress.close()
    m = first
    h = m.runtime.mheap
    from emu.cli.barrier import write_barrier_rows
    return {
        "workload": workload,
        "machines": machines,
        "memstats": m.runtime.read_mem_stats(),
        "heap": {"spans": h.nspans, "pages_in_use": h.pages_in_use, "mcache_refills": len(m.runtime.refills),
                 "profile_samples": len(m.runtime.mem_profile), "rss_bytes": m.kernel.rss_bytes()},
        "syscalls": list(m.kernel.log),
        "write_barrier": write_barrier_rows(),
    }


# ---- text --------------------------------------------------------------------------------------

def _fmt_range(span):
    lo, hi = span
    return f"{lo}" if lo == hi else f"{lo}..{hi}"


def _path_table(rows):
    header = (f"{'size':>6} {'type':<8} {'path':<60} {'count':>6} {'instructions':>12} {'reads':>6} "
              f"{'writes':>6}  call-outs")
    out = [header, "-" * len(header)]
    for r in rows:
        co = ", ".join(f"{name.split('.', 1)[1]} x{k}" for name, k in sorted(r.callouts.items())) or "-"
        out.append(f"{r.size:>6} {'scan' if r.pointer_words else 'noscan':<8} {r.path:<60} {r.count:>6} "
                   f"{_fmt_range(r.instructions):>12} {_fmt_range(r.reads):>6} {_fmt_range(r.writes):>6}  {co}")
    out += ["", "hit paths by routine (instructions):"]
    for entry, r in hit_paths(rows):
        parts = ", ".join(f"{name.removeprefix('runtime.')} {k}" for name, k in r.first.by_routine.items())
        out.append(f"  {entry} ({r.size} B): {r.first.instructions} = {parts}")
    return out


def text_lines(data):
    out = ["gomemu report: mallocgc on an emulated go1.27.3 linux/amd64 heap (counts are exact; "
           "call-outs run in Python and are not counted)"]
    for mc in data["machines"]:
        out += ["", mc["title"] + ":"]
        out += _path_table(mc["rows"])
    heap = data["heap"]
    out += ["", "heap and runtime.MemStats (after the mcache is flushed, as ReadMemStats does):"]
    out += [f"  {k:<16} {v}" for k, v in data["memstats"].items()]
    out += [f"  {'spans':<16} {heap['spans']}",
            f"  {'pagesInUse':<16} {heap['pages_in_use']}",
            f"  {'mcache refills':<16} {heap['mcache_refills']}",
            f"  {'profile samples':<16} {heap['profile_samples']}",
            f"  {'RSS':<16} {heap['rss_bytes']} bytes of mapped heap touched and not released",
            "", "system calls:"]
    out += [f"  {s}" for s in data["syscalls"]]
    from emu.cli.barrier import write_barrier_lines
    return out + write_barrier_lines(data["write_barrier"])


# ---- JSON (docs/json.md: gomemu.report) ---------------------------------------------------------

def _row_json(r):
    return {"size": r.size, "scan": bool(r.pointer_words), "pointer_words": list(r.pointer_words),
            "path": r.path, "profiled": r.profiled, "count": r.count,
            "instructions": {"min": r.instructions[0], "max": r.instructions[1]},
            "reads": {"min": r.reads[0], "max": r.reads[1]},
            "writes": {"min": r.writes[0], "max": r.writes[1]},
            "callouts": dict(sorted(r.callouts.items()))}


def syscall_json(s):
    return {"name": s.name, "nr": s.nr, "args": list(s.args), "result": s.result, "note": s.note}


def json_document(data):
    from emu.cli.barrier import write_barrier_json
    return document(
        "report", 2,
        workload=[{"size": s, "pointer_words": list(p or ()), "count": n} for s, p, n in data["workload"]],
        machines=[{"code": mc["code"], "size_specialized": mc["size_specialized"], "title": mc["title"],
                   "paths": [_row_json(r) for r in mc["rows"]],
                   "hit_paths": [{"entry": entry, "size": r.size, "path": r.path,
                                  "instructions": r.first.instructions, "by_routine": r.first.by_routine}
                                 for entry, r in hit_paths(mc["rows"])]}
                  for mc in data["machines"]],
        memstats=data["memstats"],
        heap=data["heap"],
        syscalls=[syscall_json(s) for s in data["syscalls"]],
        write_barrier=write_barrier_json(data["write_barrier"]),
    )


def workload_from(args):
    if args.scan and not args.size:
        raise UsageError("--scan describes the objects of --size; give --size too")
    if args.size:
        workload = [(s, (0,) if args.scan and s >= 8 else None, args.n or 1000) for s in args.size]
    else:
        workload = [(s, p, args.n or n) for s, p, n in DEFAULT_WORKLOAD]
    inputs.check_total(f"the allocations (sizes under {L.SIZE_SPECIALIZED_LIMIT} B twice: generic and "
                       "size-specialised)", planned_allocations(workload), inputs.MAX_ALLOCATIONS)
    inputs.check_total("the bytes allocated", sum(s * n for s, _, n in workload), inputs.MAX_HEAP_BYTES,
                       inputs.HEAP_BOUND)
    return workload


# ---- cycles (--cycles) ---------------------------------------------------------------------------

def cycles_data(u, how, rows):
    """Modelled cycles of each hit path (its size and type, warm: three calls first) and of the
    first allocation into a fresh span against the warm hit after three more, on a fresh
    default Machine with a Meter (emu/timing/meter.py)."""
    from emu.timing.meter import STATED_GHZ, Meter
    m = Machine()
    meter = Meter(m, u)
    paths = []
    for entry, r in hit_paths(rows):
        typ = m.runtime.new_type(r.size, r.pointer_words) if r.pointer_words else 0
        for _ in range(3):
            meter.measure(lambda: m.mallocgc(r.size, typ))
        # the next call that takes the row's path (tiny 8 B: every other call starts a block)
        for _ in range(MAX_TRIES):
            t = meter.measure(lambda: m.mallocgc(r.size, typ))
            if r.instructions[0] <= t.instructions <= r.instructions[1]:
                break
        else:
            raise InvariantError(f"--cycles: {MAX_TRIES} calls of mallocgc({r.size}) did not take {r.path!r}")
        paths.append({"entry": entry, "size": r.size, "scan": bool(r.pointer_words), "path": r.path,
                      **_timing_json(t)})
    for _ in range(3):                                             # the noscan hit code, warm
        meter.measure(lambda: m.mallocgc(WARM_SIZE))
    cold = meter.measure(lambda: m.mallocgc(COLD_SIZE))          # a size class not used yet: a fresh span
    for _ in range(3):
        meter.measure(lambda: m.mallocgc(COLD_SIZE))
    warm = meter.measure(lambda: m.mallocgc(COLD_SIZE))
    meter.close()
    return {"uarch": u.name, "uarch_name": u.vendor_name, "uarch_chosen": how, "ghz": STATED_GHZ,
            "how": "modelled", "paths": paths,
            "cold": {"size": COLD_SIZE, "first": _timing_json(cold), "warm": _timing_json(warm),
                     "explained": explain_cold(u, cold, warm)}}


MAX_TRIES = 8
COLD_SIZE = 96             # a size class the hit paths above do not use: its first allocation refills
WARM_SIZE = 8              # a noscan size class warmed first, so the cold call's code is warm


def _timing_json(t):
    from emu.timing.meter import STATED_GHZ
    return {"cycles": t.cycles, "ns": round(t.cycles / STATED_GHZ, 1), "instructions": t.instructions,
            "l1d_misses": t.l1d_misses, "l2_misses": t.l2_misses, "l3_misses": t.l3_misses,
            "dtlb_misses": t.dtlb_misses, "mispredicts": t.mispredicts}


def explain_cold(u, cold, warm):
    """The cold call's extra cycles as the cache model counts them: each miss level's latency
    over the L1's (an upper bound: misses overlap), and the mispredicts' penalty."""
    lat = [c.latency for c in u.caches] + [u.memory_latency]
    extra_l1 = cold.l1d_misses - warm.l1d_misses
    mem = (cold.l3_misses - warm.l3_misses) * (lat[3] - lat[0])
    l3 = ((cold.l2_misses - cold.l3_misses) - (warm.l2_misses - warm.l3_misses)) * (lat[2] - lat[0])
    l2 = ((cold.l1d_misses - cold.l2_misses) - (warm.l1d_misses - warm.l2_misses)) * (lat[1] - lat[0])
    br = (cold.mispredicts - warm.mispredicts) * u.mispredict_penalty
    return {"extra_cycles": cold.cycles - warm.cycles, "extra_l1d_misses": extra_l1,
            "serial_miss_cycles": mem + l3 + l2, "mispredict_cycles": br,
            "text": f"{extra_l1} more L1D misses ({cold.l3_misses - warm.l3_misses} from memory at {lat[3]}, "
                    f"{(cold.l2_misses - cold.l3_misses) - (warm.l2_misses - warm.l3_misses)} from L3 at {lat[2]}, "
                    f"{(cold.l1d_misses - cold.l2_misses) - (warm.l1d_misses - warm.l2_misses)} from L2 at {lat[1]}"
                    f": {mem + l3 + l2} cycles if none overlapped) and "
                    f"{cold.mispredicts - warm.mispredicts} more mispredicts ({br} cycles); "
                    f"{cold.instructions - warm.instructions} more instructions"}


def cycles_lines(c):
    out = ["", f"modelled cycles on {c['uarch']} ({c['uarch_name']}, µarch {c['uarch_chosen']}; ns at a stated "
               f"{c['ghz']} GHz; warm: each path called three times first):",
           f"  {'path':<60} {'size':>6} {'cycles':>7} {'ns':>6} {'instr':>6} {'L1D':>4} {'L2':>4} {'mispred':>7}"]
    for p in c["paths"]:
        out.append(f"  {p['path']:<60} {p['size']:>6} {p['cycles']:>7} {p['ns']:>6} {p['instructions']:>6} "
                   f"{p['l1d_misses']:>4} {p['l2_misses']:>4} {p['mispredicts']:>7}")
    cold = c["cold"]
    for label, t in (("first allocation into a fresh span", cold["first"]), ("the same size, warm (three calls later)", cold["warm"])):
        out.append(f"  {label + ' (' + str(cold['size']) + ' B)':<60} {cold['size']:>6} {t['cycles']:>7} {t['ns']:>6} "
                   f"{t['instructions']:>6} {t['l1d_misses']:>4} {t['l2_misses']:>4} {t['mispredicts']:>7}")
    out.append(f"  cold - warm = {cold['explained']['extra_cycles']} cycles: {cold['explained']['text']} "
               "(the refill itself runs in Python: its cycles are not modelled)")
    return out


def run(args):
    inputs.check_cycles_options(args)
    data = report_data(workload_from(args))
    if args.cycles:
        from emu.timing import choose
        u, how = choose(args.uarch)
        data["cycles"] = cycles_data(u, how, data["machines"][0]["rows"])
        if args.json:
            doc = json_document(data)
            doc["cycles"] = data["cycles"]
            print(dumps(doc))
        else:
            print("\n".join(text_lines(data) + cycles_lines(data["cycles"])))
        return 0
    print(dumps(json_document(data)) if args.json else "\n".join(text_lines(data)))
    return 0
