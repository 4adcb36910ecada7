"""`gomemu step`: watch one allocation (or one stack growth) instruction by instruction.

--json writes JSON Lines (docs/json.md: gomemu.step): a header naming the
schema and what is stepped, one object per instruction, and a last object
with the result.
"""

from unicorn.x86_const import UC_X86_REG_RAX

from emu.cli import inputs
from emu.cli.inputs import UsageError
from emu.cli.jsonout import document, dumps
from emu.cli.output import Progress
from emu.machine import Machine, check_small_noscan_size
from emu.timing.meter import summary, summary_line

DEFAULTS = {"size": 16, "warm": 1, "depth": 20, "no_size_specialized": False, "annotated": False, "cycles": False}
METER_WARM = 64             # --cycles: the model sees the last this many --warm allocations (caches, predictor)
MAX_STEP_DEPTH = 1000       # rec(1000) is 21 k instructions, five growths


def register(sub):
    p = sub.add_parser("step", help="step through one allocation, one instruction per record")
    p.add_argument("path", choices=["malloc", "small", "stack"],
                   help="malloc: runtime.mallocgc for any --size (and --scan); small: the same, "
                        "restricted to the small noscan path; stack: a stack growth, see --depth")
    p.add_argument("--size", type=inputs.bounded(0, inputs.MAX_OBJECT),
                   help=f"malloc, small: object size in bytes (0..{inputs.MAX_OBJECT}; default 16)")
    p.add_argument("--scan", action="store_true", help="malloc: an object whose first word is a pointer")
    p.add_argument("--warm", type=inputs.bounded(0, inputs.MAX_ALLOCATIONS),
                   help=f"malloc, small: allocations of the same kind made first, unrecorded (0.."
                        f"{inputs.MAX_ALLOCATIONS}, and with --size at most {inputs.MAX_HEAP_BYTES >> 30} GiB "
                        f"in all; default 1; 0 shows the first allocation: refill and heap growth)")
    p.add_argument("--no-size-specialized", action="store_true",
                   help="malloc, small: the runtime built with GOEXPERIMENT=nosizespecializedmalloc (Go 1.27's "
                        "default runs sizes under 81 B in mallocgcTinySC2, mallocgcSmallNoScanSC*, ...)")
    p.add_argument("--annotated", action="store_true",
                   help="malloc, small: gomemu's handwritten teaching routines, each instruction with the Go "
                        "statement it stands for, instead of the runtime's compiled code")
    p.add_argument("--json", action="store_true",
                   help="JSON Lines: a header, one object per instruction, the result (docs/json.md: gomemu.step)")
    inputs.add_cycles_options(p, "timing of each instruction: the cycle it was dispatched, issued, "
                                 "completed and retired, as llvm-mca's -timeline shows it (malloc, small)")
    p.add_argument("--depth", type=inputs.bounded(1, MAX_STEP_DEPTH),
                   help=f"stack: recursion depth of gomemu.rec (1..{MAX_STEP_DEPTH}; default 20: the 2 KiB "
                        "stack grows once)")
    p.set_defaults(handler=run)


def options(args):
    """The options that apply to args.path, defaults filled in; UsageError for the others."""
    applies = {"malloc": ("size", "scan", "warm", "no_size_specialized", "annotated", "cycles"),
               "small": ("size", "warm", "no_size_specialized", "annotated", "cycles"), "stack": ("depth",)}[args.path]
    given = [name for name in ("size", "scan", "warm", "no_size_specialized", "annotated", "depth", "cycles")
             if getattr(args, name) not in (None, False) and name not in applies]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise UsageError(f"{flags} do{'es' if len(given) == 1 else ''} not apply to `step {args.path}`")
    return {name: DEFAULTS[name] if getattr(args, name) is None else getattr(args, name)
            for name in applies}


def stream(records, header, as_json, extra=None):
    """Print each record (text, or a JSON Lines object); extra(rec) adds text lines and JSON
    fields for a record. Returns how many there were."""
    if as_json:
        print(dumps(header))
    n = 0
    for rec in records:
        more = extra(rec) if extra else {}
        if as_json:
            print(dumps({**rec.as_dict(), **{k: v for k, (v, _) in more.items()}}))
        else:
            print(rec.format())
            for _, line in more.values():
                print(line)
        n += 1
    return n


def timeline(make, size, typ, warm, uarch_name):
    """(Timing with its timeline, the meter's summary) of the stepped allocation, modelled on
    a twin machine (`make()`, deterministic: the same instructions) that made the same
    warm-up allocations, its last METER_WARM with the meter on."""
    from emu.timing.meter import Meter
    m = make()
    for _ in range(max(0, warm - METER_WARM)):
        m.mallocgc(size, typ)
    meter = Meter.attach(m, uarch_name)
    for _ in range(min(warm, METER_WARM)):
        m.mallocgc(size, typ)
    t = meter.measure(lambda: m.mallocgc(size, typ), timeline=True)
    meter.close()
    return t, meter


def timed(entries):
    """extra() for stream(): each record's timeline entry, matched by address in order (a
    REP instruction's iterations are one entry of the model's); cycles counted from the
    first instruction's dispatch."""
    t0 = entries[0].dispatched if entries else 0
    it, last = iter(entries), None
    pending = next(it, None)

    def extra(rec):
        nonlocal pending, last
        if pending is not None and pending.address == rec.address:
            last, pending = pending, next(it, None)
        elif last is None or last.address != rec.address:
            return {}
        e = last
        d = {k: getattr(e, k) - t0 for k in ("dispatched", "issued", "completed", "retired")}
        return {"cycles": (d, f"{'':7}cycles: dispatched {d['dispatched']}, issued {d['issued']}, completed "
                              f"{d['completed']}, retired {d['retired']}  {_bar(e)}")}
    return extra


def _bar(e, width=40):
    """llvm-mca's timeline letters for one instruction, from its dispatch: D, = waiting to
    issue, e executing, E completed, - waiting to retire, R retired."""
    s = "D" + "=" * max(0, e.issued - e.dispatched - 1)
    s += "e" * max(0, e.completed - max(e.issued, e.dispatched + 1)) + "E"
    s += "-" * max(0, e.retired - e.completed - 1) + ("R" if e.retired > e.completed else "")
    return s if len(s) <= width else s[:width - 1] + "…"


def run(args):
    inputs.check_cycles_options(args)
    opts = options(args)
    if args.path == "stack":
        from emu.cli.stack import step
        return step(opts["depth"], args.json)
    size, warm, scan = opts["size"], opts["warm"], opts.get("scan", False)
    if args.path == "small":
        check_small_noscan_size(size)
    if scan and size < 8:
        raise UsageError(f"--scan needs a size of 8 bytes or more (a pointer word), not {size}")
    inputs.check_total("the bytes of the --warm allocations", warm * size, inputs.MAX_HEAP_BYTES, inputs.HEAP_BOUND)
    spec = not opts["no_size_specialized"]

    def make():
        return Machine(size_specialized=spec, handwritten=opts["annotated"])
    m = make()
    typ = m.runtime.new_type(size, (0,)) if scan else 0
    timing = meter = None
    if opts["cycles"]:
        timing, meter = timeline(make, size, typ, warm, args.uarch)
    with Progress("warming up (allocations)", warm) as progress:
        for _ in range(warm):
            m.mallocgc(size, typ)
            progress.advance()
    header = document("step", path=args.path, routine="runtime.mallocgc", args=[size, typ, 1], size=size,
                      scan=scan, warm=warm, size_specialized=spec,
                      code="handwritten" if opts["annotated"] else "compiled")
    if timing is not None:
        header["cycles"] = {"uarch": meter.u.name, "uarch_chosen": meter.how, "how": "modelled"}
    n = stream(m.begin("runtime.mallocgc", size, typ, 1), header, args.json,
               timed(timing.timeline) if timing is not None else None)
    result = m.regs.read(UC_X86_REG_RAX)
    end = {"instructions": n, "returned": result}
    if timing is not None:
        end["cycles"] = {k: getattr(timing, k) for k in ("cycles", "l1d_misses", "l2_misses", "mispredicts")}
    print(dumps(end) if args.json else f"-- {n} instructions; returned {result:#x}")
    if timing is not None and not args.json:
        print(f"-- {summary_line(summary(meter.u, meter.how, timing))}; from an empty pipeline, caches and "
              f"predictor as the last {min(warm, METER_WARM)} --warm allocations left them")
    return 0
