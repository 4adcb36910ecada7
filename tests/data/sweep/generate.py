"""Record how often the real runtime clears a small object per op of
tests/programs/sweepreuse's benchmark: ops N+1..2N of -benchtime 2Nx, as (2N run - N run)
/ N, counted natively by bench/callgrind_go.py's probe (the runtime's malloc.go with a
counter around memclrNoHeapPointers, built with go test -overlay), over many pairs of
runs, with go test's GOGC=100, GODEBUG=asyncpreemptoff=1, GOMAXPROCS=1.

Run: PYTHONPATH=. python tests/data/sweep/generate.py [--pairs 40]
  -> tests/data/sweep/clears.json
"""

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import callgrind_go as cg  # noqa: E402
from emu.gobuild import go_version  # noqa: E402
from emu.program import GoProgram  # noqa: E402

PKG = ROOT / "tests" / "programs" / "sweepreuse"
N = 1000


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--go", default="go")
    args = ap.parse_args(argv)
    prog = GoProgram(PKG)
    (name,) = prog.benchmarks(".")
    with tempfile.TemporaryDirectory() as tmp:
        exe = cg.build_probe(prog.built, tmp, args.go)
        counts = cg.probe_counts(exe, name, N, args.pairs, "100")
    small = [c[cg.PROBE_FIELDS.index("small clears")] for c in counts]
    rec = {"toolchain": go_version(args.go), "benchmark": name, "n": N, "pairs": args.pairs,
           "env": dict(cg.GO_TEST_ENV, GOGC="100"),
           "recorded_by": "PYTHONPATH=. python tests/data/sweep/generate.py " + " ".join(argv or sys.argv[1:]),
           "clears_per_op": {"mean": statistics.mean(small), "median": statistics.median(small),
                             "sd": statistics.stdev(small), "runs": small}}
    out = Path(__file__).with_name("clears.json")
    out.write_text(json.dumps(rec, indent=1) + "\n")
    print(out, rec["clears_per_op"]["mean"], rec["clears_per_op"]["sd"])


if __name__ == "__main__":
    main()
