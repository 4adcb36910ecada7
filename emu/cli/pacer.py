"""`gomemu pacer replay FILE.json`: replay a TestGcPacer scenario through the pacer model.

Prints a per-cycle table (or JSON with --json), optionally plots it, and when
a sibling `<Name>.expected.json` exists compares every value with it. A replay
that runs for over a second shows its progress on stderr when that is a terminal.
"""

import math
from pathlib import Path

from emu.cli import inputs
from emu.cli.jsonout import document, dumps
from emu.cli.output import Progress, writing
from emu.errors import BadInput
from runtime_model.pacer import GC_GOAL_UTILIZATION, RESULT_FIELDS, load_scenario, replay

MIB = 1 << 20


def register(subparsers):
    p = subparsers.add_parser("pacer", help="GC pacer model (runtime/mgcpacer.go)")
    sub = p.add_subparsers(dest="pacer_command", metavar="SUBCOMMAND")
    sub.required = True
    r = sub.add_parser(
        "replay",
        help="replay a TestGcPacer scenario file",
        description="Replay a TestGcPacer scenario (<Name>.input.json) through the pacer model. "
        "If <Name>.expected.json lies beside it, every value is compared; the exit code is 1 "
        "when any differs.",
    )
    r.add_argument("file", type=inputs.path, metavar="FILE.json", help="scenario input file")
    r.add_argument("--json", action="store_true",
                   help="print the results as JSON instead of a table (schema gomemu.pacer-replay/v1, docs/json.md)")
    r.add_argument("--plot", type=inputs.path, metavar="FILE.png", help="also draw heap sizes and GC CPU utilisation per cycle")
    r.set_defaults(handler=replay_command)


def _reference_path(path):
    name = path.name
    stem = name[: -len(".input.json")] if name.endswith(".input.json") else path.stem
    return path.with_name(f"{stem}.expected.json")


def _same(a, b):
    # Exact comparison: same type and value (NaN equals NaN).
    if type(a) is not type(b):
        return False
    return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


def _compare(results, ref_path):
    """Number of differing values and the set of differing cycles (by index)."""
    ref = load_scenario(ref_path)
    ref_results = ref.get("results") if isinstance(ref, dict) else None
    if not isinstance(ref_results, list) or not all(isinstance(r, dict) for r in ref_results):
        raise BadInput(f"{ref_path}: expected an object with a 'results' list")
    n_diff = abs(len(ref_results) - len(results)) * len(RESULT_FIELDS)
    bad_rows = set(range(min(len(results), len(ref_results)), len(results)))
    for i, (got, want) in enumerate(zip(results, ref_results)):
        row_diff = sum(not _same(got[k], want.get(k)) for k in RESULT_FIELDS)
        if row_diff:
            n_diff += row_diff
            bad_rows.add(i)
    return n_diff, bad_rows


def _count(n, noun):
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _table(name, results, ref_path, n_diff, bad_rows):
    head = f"{'cycle':>5}  {'heap live':>14}  {'trigger':>14}  {'peak':>14}  {'goal':>20}  {'GC util %':>9}"
    lines = [head]
    for i, r in enumerate(results):
        mark = "  *" if i in bad_rows else ""
        lines.append(
            f"{r['cycle']:>5}  {r['heap_live']:>14}  {r['heap_trigger']:>14}  {r['heap_peak']:>14}"
            f"  {r['heap_goal']:>20}  {r['gc_utilization'] * 100:>9.3f}{mark}"
        )
    n = len(results)
    if n_diff is None:
        lines.append(f"{name}: {n} cycles (no reference {ref_path.name} to compare with)")
    elif n_diff == 0:
        lines.append(f"{name}: {n} cycles, all values equal to the reference")
    else:
        lines.append(
            f"{name}: {n} cycles, {_count(n_diff, 'value')} in {_count(len(bad_rows), 'cycle')}"
            f" differ from the reference {ref_path.name} (rows marked *)"
        )
    return "\n".join(lines)


def _plot(name, results, out):
    # Figure + Agg canvas directly: no pyplot global state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cycles = [r["cycle"] for r in results]
    fig = Figure(figsize=(10, 7))
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for key, label, style in (
        ("heap_live", "heap live (marked)", "-"),
        ("heap_trigger", "trigger", "--"),
        ("heap_peak", "peak", "-"),
        ("heap_goal", "goal", ":"),
    ):
        top.plot(cycles, [r[key] / MIB for r in results], style, label=label)
    top.set_ylabel("MiB")
    top.set_title(f"GC pacer: {name}")
    top.legend(loc="best")
    top.grid(alpha=0.3)
    util = [r["gc_utilization"] * 100 for r in results]
    bottom.plot(cycles, util, color="tab:red", label="GC CPU utilisation")
    bottom.axhline(GC_GOAL_UTILIZATION * 100, color="gray", linestyle="--", linewidth=0.8, label="goal")
    # Absolute axis from 0: the offset notation hides that Steady sits flat at 25%.
    bottom.set_ylim(0, max([30.0] + [u * 1.1 for u in util if math.isfinite(u)]))
    bottom.ticklabel_format(axis="y", useOffset=False)
    bottom.legend(loc="best")
    bottom.set_ylabel("GC CPU %")
    bottom.set_xlabel("GC cycle")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, format="png")


def _json_number(v):
    # Go's 0/0 utilisation of a cycle that took no time is NaN, which JSON cannot hold.
    return None if isinstance(v, float) and math.isnan(v) else v


def replay_command(args):
    path = Path(args.file)
    scenario = load_scenario(path)
    with Progress(f"pacer replay {path.name}: cycles", 0) as progress:
        def on_cycle(i, n):
            progress.total = n
            progress.advance()
        try:
            out = replay(scenario, on_cycle=on_cycle)
        except BadInput as e:
            raise BadInput(f"{path}: {e}") from e
    results = out["results"]
    ref_path = _reference_path(path)
    n_diff, bad_rows = _compare(results, ref_path) if ref_path.is_file() else (None, set())
    if args.json:
        print(dumps(document(
            "pacer-replay",
            name=out["name"],
            results=[{k: _json_number(r[k]) for k in RESULT_FIELDS} for r in results],
            reference=str(ref_path) if n_diff is not None else None,
            differing_values=n_diff,
            differing_cycles=sorted(i + 1 for i in bad_rows),
        )))
    else:
        print(_table(out["name"], results, ref_path, n_diff, bad_rows))
    if args.plot:
        with writing(args.plot, "the plot"):
            _plot(out["name"], results, args.plot)
    return 1 if n_diff else 0
