"""`gomemu run WORKLOAD`: a workload (a built-in name or a TOML file, emu/workload.py) run on
the emulated runtime, the collector, scavenger and limiter running by themselves.

Prints the gctrace lines (--gctrace) and scavtrace lines (--scavtrace) as the runtime
would on stderr, here on stdout in order, then a summary; --json prints one record per
cycle instead (docs/json.md, gomemu.run/v1); --plot draws the heap over modeled time.
"""

import sys

from emu.cli import inputs
from emu.cli.jsonout import document, dumps
from emu.cli.output import Progress, writing
from emu.errors import BadInput
from emu.mutator import WorkloadRun
from emu.timing.meter import Meter
from emu.timing.meter import summary_line as meter_line
from emu.workload import BUILTINS, load
from runtime_model.gcsettings import read_gogc, read_gomemlimit

MIB = 1 << 20


def register(sub):
    p = sub.add_parser("run", help="run a workload: GC cycles, scavenger, memory limit (gctrace, plot)",
                       description="Run a workload on the emulated runtime. WORKLOAD is a built-in "
                       f"({', '.join(BUILTINS)}) or a TOML file (docs/gc.md, Workloads).")
    p.add_argument("workload", metavar="WORKLOAD")
    p.add_argument("--gogc", metavar="N|off", help="GOGC instead of the workload's (as Go reads it)")
    p.add_argument("--memlimit", metavar="SIZE", help="GOMEMLIMIT instead of the workload's (e.g. 80MiB, off)")
    p.add_argument("--gctrace", action="store_true", help="print GODEBUG=gctrace=1's line after every cycle")
    p.add_argument("--scavtrace", action="store_true", help="print GODEBUG=scavtrace=1's lines")
    p.add_argument("--checked", action="store_true",
                   help="check the collector's invariants at every cycle (runtime_model/checkgc.py; slower)")
    p.add_argument("--plot", metavar="FILE.png", help="draw heap, goal, trigger, RSS and released memory over time")
    p.add_argument("--json", action="store_true", help="one JSON document: a record per cycle (gomemu.run/v1)")
    inputs.add_cycles_options(p, "time: gctrace's clock, the pacer's and the plot's from the cycle model of "
                                 "the machine code that ran, not its instructions at one a cycle "
                                 "(deterministic, about 50x slower)")
    p.set_defaults(handler=run_command)


def _settings(args):
    gogc = limit = None
    if args.gogc is not None:
        if args.gogc != "off" and not args.gogc.lstrip("-").isdigit():
            raise BadInput(f"--gogc {args.gogc}: not a percentage or off")
        gogc = read_gogc(args.gogc)
    if args.memlimit is not None:
        limit = read_gomemlimit(args.memlimit)
    return gogc, limit


def run_command(args):
    inputs.check_cycles_options(args)
    wl = load(args.workload)
    gogc, limit = _settings(args)
    out = sys.stdout
    echo = (lambda line: print(line, file=out)) if not args.json else None
    progress = Progress(f"{wl.name}: MiB allocated", wl.total_allocated // MIB)
    run = WorkloadRun(wl, gogc=gogc, memory_limit=limit, checked=args.checked,
                      gctrace_out=echo if args.gctrace else None,
                      scavtrace_out=echo if args.scavtrace else None,
                      on_progress=lambda allocated: progress.advance(allocated // MIB - progress.done))
    meter = Meter.attach(run.m, args.uarch) if args.cycles else None
    with progress:
        run.run()
    s = run.summary()
    cycles = {"cycles_model": meter.summary()} if meter else {}
    if args.plot:
        with writing(args.plot, "the plot"):
            plot(run, args.plot)
    if args.json:
        print(dumps(document("run", workload=wl.name, source=wl.source, gogc=run.rt.gc_controller.gc_percent,
                             memory_limit=run.memory_limit, gomaxprocs=wl.gomaxprocs, summary=s,
                             cycles=run.cycles, **cycles)))
        return 0
    print(summary_line(s))
    if meter:
        print(meter_line(cycles["cycles_model"]) + " (the modeled time above)")
    return 0


def summary_line(s):
    checked = f", invariants checked at {s['checked_cycles']} cycles" if s["checked_cycles"] is not None else ""
    return (f"{s['workload']}: {s['cycles']} GC cycles, {s['allocated'] / MIB:.0f} MiB allocated "
            f"({s['allocations']} objects), peak heap {s['peak_heap'] / MIB:.1f} MiB, "
            f"peak RSS {s['peak_rss'] / MIB:.1f} MiB, GC CPU {100 * s['gc_cpu_fraction']:.1f}%, "
            f"{s['modeled_ns'] / 1e9:.3f} s modeled{checked}")


def plot(run, path):
    """Live heap, goal, trigger, RSS and released memory over modeled time; cycles marked;
    the memory limit drawn when there is one."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(11, 6))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    t = [s[0] / 1e6 for s in run.samples]
    # the live heap also at each cycle's start and end, where its sawtooth turns
    live = sorted([(s[0], s[1]) for s in run.samples] +
                  [(c["start_ns"], c["heap_start"]) for c in run.cycles] +
                  [(c["mark_termination_ns"], c["heap_end"]) for c in run.cycles])
    ax.plot([x / 1e6 for x, _ in live], [y / MIB for _, y in live], "-", label="heap live", linewidth=1.2)
    for i, label, style in ((2, "goal", "--"), (3, "trigger", ":"), (4, "RSS", "-"), (5, "released", "-")):
        ax.plot(t, [s[i] / MIB for s in run.samples], style, label=label, linewidth=1.2)
    marked = [c["heap_marked"] / MIB for c in run.cycles]
    ax.plot([c["mark_termination_ns"] / 1e6 for c in run.cycles], marked, "k.", markersize=5,
            label="marked at each cycle's end")
    for c in run.cycles:
        ax.axvline(c["start_ns"] / 1e6, color="gray", alpha=0.15, linewidth=0.8)
    limit = run.memory_limit
    if limit < 1 << 62:
        ax.axhline(limit / MIB, color="tab:red", linewidth=1, label=f"memory limit {limit / MIB:.0f} MiB")
    ax.set_xlabel("modeled time (ms)")
    ax.set_ylabel("MiB")
    wl = run.wl
    gogc = run.rt.gc_controller.gc_percent
    ax.set_title(f"gomemu run {wl.name}: GOGC={'off' if gogc < 0 else gogc}, GOMAXPROCS={wl.gomaxprocs}, "
                 f"{len(run.cycles)} cycles (grey lines: cycle starts)")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=100)
