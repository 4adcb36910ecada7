"""Record how often the real go1.27.3 runtime copies a goroutine's stack for each case of
recursion.go: run the package (recompiled as main, with HARNESS) under callgrind and count
the calls of runtime.copystack; the Zero case is the harness's own. Writes
tests/data/recursion_copystack.json, which tests/test_programs.py reads (valgrind may be
absent where the tests run).

    python tests/programs/recursion/record_copystack.py
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
OUT = HERE.parent.parent / "data" / "recursion_copystack.json"
CASES = [("Small", 300), ("KiB", 40), ("Eight", 20), ("Hundred", 5), ("Mutual", 200), ("Chain", 100)]
# Each call runs on a new goroutine (2 KiB stack, as gomemu call starts one), under a closure
# whose frame is the only difference from gomemu's start.
HARNESS = """package main

import (
\t"os"
\t"strconv"
)

var funcs = map[string]func(int) int{%s}

func main() {
\tn, _ := strconv.Atoi(os.Args[2])
\tf := funcs[os.Args[1]]
\tc := make(chan int)
\tgo func() { c <- f(n) }()
\tos.Stdout.WriteString(strconv.Itoa(<-c) + "\\n")
}
""" % ", ".join(f'"{f}": {f}' for f in [c for c, _ in CASES] + ["Zero"])
CALLGRIND = ["valgrind", "--tool=callgrind", "--compress-strings=no", "--compress-pos=no"]
ENV = {"GODEBUG": "asyncpreemptoff=1", "GOMAXPROCS": "1"}


def copystacks(prog, func, n, work):
    out = work / f"cg.{func}"
    subprocess.run(CALLGRIND + [f"--callgrind-out-file={out}", str(prog), func, str(n)], env=ENV, check=True,
                   capture_output=True, timeout=600)
    lines = out.read_text().splitlines()
    return sum(int(lines[i + 1].split()[0].removeprefix("calls=")) for i, ln in enumerate(lines)
               if ln == "cfn=runtime.copystack")


def main():
    sys.path.insert(0, str(HERE.parent.parent.parent))
    from emu.gobuild import find_go, go_env
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src = (HERE / "recursion.go").read_text().replace("package recursion", "package main", 1)
        (work / "pkg.go").write_text(src)
        (work / "main.go").write_text(HARNESS)
        (work / "go.mod").write_text("module real\n\ngo 1.27\n")
        subprocess.run([find_go(), "build", "-o", "prog", "."], cwd=work, env=go_env(), check=True)
        prog = work / "prog"
        data = {
            "command": "python tests/programs/recursion/record_copystack.py  # " + " ".join(CALLGRIND)
                       + " ./prog FUNC N, with " + " ".join(f"{k}={v}" for k, v in ENV.items()),
            "harness": HARNESS,
            "baseline": copystacks(prog, "Zero", 0, work),
            "cases": [{"func": f, "n": n, "copystack": copystacks(prog, f, n, work)} for f, n in CASES],
        }
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps(data["cases"]))


if __name__ == "__main__":
    main()
