"""`gomemu calibrate`: the cycle model against this CPU, path by path.

For each fast path (emu/timing/paths.py) it prints the modelled cycles, the
cycles measured by running the same bytes natively at the same addresses
(emu/timing/native.py: TSC ticks converted to core cycles with a dependent-ADD
chain timed in the same run; the fastest of --runs runs, each the median of
its rounds, because the host is shared), the error, llvm-mca's estimate with
`--compare llvm-mca`, whether the native run left the emulator's memory, and
the mean absolute percentage error. A thin view of emu/timing/calibrate.py:
`calibrate()`. Where native execution is impossible it refuses in one line.
"""

from emu.cli import inputs
from emu.cli.jsonout import document, dumps
from emu.errors import BadInput
from emu.timing import DEFAULT, choose, mca
from emu.timing.calibrate import RESOLUTION, calibrate
from emu.timing.native import NativeUnavailable, check_host


def register(sub):
    p = sub.add_parser("calibrate", help="modelled vs natively measured cycles of each fast path on this CPU")
    p.add_argument("--uarch", help="the µarch description to check (default: the host's when gomemu has one, "
                                   f"else {DEFAULT})")
    p.add_argument("--compare", choices=["llvm-mca"], help="also llvm-mca's estimate of each path's instructions")
    p.add_argument("--reps", type=inputs.bounded(5, 10_000), default=200,
                   help="native repetitions per round (5..10000; default 200)")
    p.add_argument("--runs", type=inputs.bounded(1, 20), default=3,
                   help="native runs per path, the fastest kept (1..20; default 3)")
    p.add_argument("--json", action="store_true", help="one JSON document (docs/json.md: gomemu.calibrate)")
    p.set_defaults(handler=run)


def _pct(x):
    return "-" if x is None else f"{x:+.1f}%"


def _num(x):
    return "-" if x is None else f"{x:.1f}"


def _error(f, which):
    v = getattr(f, which)
    return None if f.measured is None or f.measured < RESOLUTION or v is None else 100 * (v - f.measured) / f.measured


def text_lines(c):
    u = c.uarch
    out = [f"gomemu calibrate: cycles per call of each fast path on {u.name} ({u.vendor_name}), "
           f"µarch {c.uarch_chosen}",
           "  modelled: the cycle model (emu/timing) of the recorded stream inside the native harness's loop; "
           "alone: one warm call from an empty pipeline",
           "  measured: the same bytes run natively at the same addresses, TSC ticks / ticks per dependent ADD, "
           "best of the runs"]
    if c.mca_path:
        out.append(f"  llvm-mca: {c.mca_path} -mcpu={mca.MCPU[u.name]}, cycles per pass in its steady state")
    w = max(len(n) for n, _ in c.rows)
    head = (f"{'path':<{w}} {'modelled':>8} {'alone':>6} {'measured':>8} {'error':>7}"
            + (f" {'llvm-mca':>8} {'error':>7}" if c.mca_path else "")
            + f" {'L1 miss':>7} {'mispred':>7}  native memory")
    out += ["", head, "-" * len(head)]
    for name, f in c.rows:
        mem = {True: "same as emulated", False: f"DIFFERS in {len(f.differences)} words", None: "-"}[f.memory_equal]
        if f.native_refused:
            mem += f" ({f.native_refused})"
        out.append(f"{name:<{w}} {_num(f.modelled):>8} {f.alone:>6} {_num(f.measured):>8} "
                   f"{_pct(_error(f, 'modelled')):>7}"
                   + (f" {_num(f.llvm_mca):>8} {_pct(_error(f, 'llvm_mca')):>7}" if c.mca_path else "")
                   + f" {f.counts['l1d_misses']:>7} {f.counts['mispredicts']:>7}  {mem}")
    mape = c.mape()
    line = f"\nmean absolute percentage error over the measured paths: model {_num(mape)}%"
    if c.mca_path:
        line += f", llvm-mca {_num(c.mape('llvm_mca'))}%"
    out.append(line)
    out.append(f"(a path measured below {RESOLUTION:g} cycles is hidden in the harness's own work: no error, "
               "not in the mean; the host is shared, so measured figures move between runs)")
    return out


def json_document(c):
    u = c.uarch
    return document(
        "calibrate", uarch=u.name, uarch_name=u.vendor_name, uarch_chosen=c.uarch_chosen,
        llvm_mca=c.mca_path,
        paths=[{"path": name, "modelled": f.modelled, "alone": f.alone, "measured": f.measured,
                "error": _error(f, "modelled"), "llvm_mca": f.llvm_mca, "llvm_mca_error": _error(f, "llvm_mca"),
                "ticks_per_cycle": f.ticks_per_cycle, "segments": f.segments,
                "memory_equal": f.memory_equal,
                "differences": [{"address": a, "emulated": e, "native": n} for a, e, n in f.differences],
                "native_refused": f.native_refused or None, "counts": f.counts,
                "how": {"modelled": "modelled", "alone": "modelled", "measured": "measured", "llvm_mca": "llvm-mca"}}
               for name, f in c.rows],
        mape=c.mape(), llvm_mca_mape=c.mape("llvm_mca") if c.mca_path else None)


def run(args):
    u, how = choose(args.uarch)
    check_host()                                 # one line (exit 1) where native execution is impossible
    if args.compare == "llvm-mca" and not mca.available(mca.MCPU.get(u.name, "")):
        raise BadInput(f"--compare llvm-mca: no llvm-mca on PATH knows -mcpu={mca.MCPU.get(u.name, '?')} "
                       "(Debian: apt-get install llvm-19)")
    c = calibrate(u, how, with_mca=args.compare == "llvm-mca", reps=args.reps, runs=args.runs)
    refused = [f.native_refused for _, f in c.rows if f.native_refused and f.memory_equal is None]
    if refused and len(refused) == len(c.rows):
        raise NativeUnavailable(f"native execution is impossible here: {refused[0]}")
    print(dumps(json_document(c)) if args.json else "\n".join(text_lines(c)))
    return 0
