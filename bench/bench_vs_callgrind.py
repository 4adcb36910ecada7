"""Time per exactly counted allocation: gomemu against callgrind on the real runtime.

A user who wants the instruction count of each allocation path can run gomemu, or run
the real go1.27.3 binary under `valgrind --tool=callgrind`. This measures both, side
by side in one run, on the same binary (bench/callgrind_go.py's program, one loop per
case): whole processes with N and 2N iterations, the difference divided by N, so
start-up (valgrind's, or Python's imports and the Machine's image load) cancels. CPU
time of the child (user + sys, from wait4), best of --runs: the machine is shared.

  callgrind   valgrind --tool=callgrind, collecting inside main.run_<case> only (the
              way bench/callgrind_go.py counts per path)
  gomemu      Machine(image=...) calling main.run_<case>(n), exact counting on
  hook-free   the same with the counting hook removed: unicorn on the same bytes
              without gomemu's instrumentation (the engine's own speed)

Issue 13's target: gomemu at most 0.8x callgrind's time per counted allocation.

    python bench/bench_vs_callgrind.py            # tiny8 (new(int)'s path) and noscan16
    python bench/bench_vs_callgrind.py --smoke    # small N, one run (CI)
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TREE = os.environ.get("GOMEMU_BENCH_TREE") or str(Path(__file__).resolve().parents[1])
sys.path.insert(0, TREE)
sys.path.insert(0, str(Path(__file__).resolve().parent))

import callgrind_go as cg  # noqa: E402

CASES = ("tiny8", "noscan16")        # new(int) takes tiny8's path (8 B, no pointers)
TARGET = 0.8


def child_cpu(cmd, env):
    """CPU seconds (user + sys) of one child process run to its end."""
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({p.returncode}): {err[-2000:]}")
    return ru.ru_utime + ru.ru_stime


def commands(exe, case, n, valgrind, tmp):
    """{tool: (argv, env)} of one run of `case` with n iterations."""
    go_env = dict(os.environ, GOGC="off", GODEBUG="asyncpreemptoff=1", GOMAXPROCS="1")
    py_env = dict(os.environ, PYTHONPATH=TREE)
    me = [sys.executable, __file__, "--child", str(exe), case, str(n)]
    out = {"gomemu": (me, py_env), "hook-free": (me + ["--no-count"], py_env)}
    if valgrind:
        out["callgrind"] = ([valgrind, "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.%p",
                             f"--toggle-collect=main.run_{case}", str(exe), case, str(n)], go_env)
    return out


def per_iteration(exe, case, n, runs, valgrind, tmp):
    """{tool: seconds per iteration}: (the fastest 2N run - the fastest N run) / N, the
    runs of all tools interleaved so that load on the machine falls on each alike."""
    one, two = commands(exe, case, n, valgrind, tmp), commands(exe, case, 2 * n, valgrind, tmp)
    fast1, fast2 = {}, {}
    for _ in range(runs):
        for tool in one:
            fast1[tool] = min(fast1.get(tool, float("inf")), child_cpu(*one[tool]))
            fast2[tool] = min(fast2.get(tool, float("inf")), child_cpu(*two[tool]))
    return {tool: (fast2[tool] - fast1[tool]) / n for tool in one}


def run_child(exe, case, n, count):
    from emu.machine import Machine
    from emu.uc_raw import hook_del
    m = Machine(image=exe, checked=False)
    if not count:
        hook_del(m.uc, m.counter.handle)
    if m.runtime.run_inits():
        raise SystemExit(f"{exe}: a package initialisation failed")
    from emu.machine import MAX_BLOCK_BUDGET
    m.block_budget = min(MAX_BLOCK_BUDGET, max(m.block_budget, 64 * n))     # one call of n iterations
    m.call(f"main.run_{case}", n)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="small N, one run")
    ap.add_argument("--n", type=int, help="iterations of the first run (default 400000; smoke 20000)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--child", nargs=3, metavar=("EXE", "CASE", "N"), help=argparse.SUPPRESS)
    ap.add_argument("--no-count", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        exe, case, n = args.child
        run_child(exe, case, int(n), not args.no_count)
        return 0
    n = args.n or (20_000 if args.smoke else 400_000)
    runs = 1 if args.smoke else args.runs
    valgrind = shutil.which("valgrind")
    from emu.gobuild import find_go
    go = find_go()
    with tempfile.TemporaryDirectory() as tmp:
        exe, _ = cg.build(tmp, "v1", go=go, source=cg.program_source([cg.CASE_BY_NAME[c] for c in CASES]),
                          escapes=False)
        print(f"time per counted allocation, CPU us, (2N - N) / N, N = {n:,}, best of {runs}"
              + ("" if valgrind else "  (valgrind not installed: callgrind left out)"))
        print(f"{'case':10} {'callgrind':>10} {'gomemu':>10} {'hook-free':>10} {'gomemu/callgrind':>17}")
        for case in CASES:
            t = per_iteration(exe, case, n, runs, valgrind, tmp)
            ratio = f"{t['gomemu'] / t['callgrind']:.2f}x" if "callgrind" in t else "-"
            print(f"{case:10} {t.get('callgrind', float('nan')) * 1e6:10.3f} {t['gomemu'] * 1e6:10.3f} "
                  f"{t['hook-free'] * 1e6:10.3f} {ratio:>17}")
        print(f"target (issue 13): gomemu at most {TARGET}x callgrind"
              + ("; --smoke: N is far too small for these figures to mean anything (it checks the "
                 "bench runs); measure with the default N" if args.smoke else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
