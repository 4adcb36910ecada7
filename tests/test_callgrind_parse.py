"""bench/callgrind_go.py's reading of callgrind files: costs filed by instruction address,
and the write barrier's split between machine code and the runtime's own Go code."""

import sys

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import callgrind_go as cg  # noqa: E402

# Three functions by address; callgrind (as it does across goroutine switches) files the
# closure's instructions under the benchmark's name with a recursion level.
FUNCS = [(0x1000, 0x1100, "seed.Bench"), (0x2000, 0x2100, "runtime.mheap.alloc.func1"),
         (0x3000, 0x3100, "runtime.gcWriteBarrier2"), (0x3100, 0x3200, "gcWriteBarrier"),
         (0x4000, 0x4100, "runtime.gcStart")]


def func_at(addr):
    return next(name for lo, hi, name in FUNCS if lo <= addr < hi)


FILE = """version: 1
creator: callgrind-3.19.0
positions: instr line
events: Ir

fn=seed.Bench
0x1000 10 5
0x1004 11 7
cfn=runtime.gcWriteBarrier2
calls=3 0x3000 1
0x1008 12 60

fn=seed.Bench'2
0x2000 20 40
0x2004 21 2

fn=runtime.gcStart
0x4000 30 9
cfn=runtime.gcWriteBarrier2
calls=1 0x3000 1
0x4004 31 20

fn=runtime.gcWriteBarrier2
0x3000 1 8
cfn=gcWriteBarrier
calls=4 0x3100 1
0x3004 2 72

fn=gcWriteBarrier
0x3100 1 72

totals: 213
"""


def test_costs_go_to_the_function_whose_code_holds_the_instruction(tmp_path):
    f = tmp_path / "cg.out"
    f.write_text(FILE)
    by_name = cg.parse_callgrind(f)
    assert by_name.self_cost["seed.Bench'2"] == 42            # callgrind's own context
    p = cg.parse_callgrind(f, func_at)
    assert p.total == 213
    assert dict(p.self_cost) == {"seed.Bench": 12, "runtime.mheap.alloc.func1": 42, "runtime.gcStart": 9,
                                 "runtime.gcWriteBarrier2": 8, "gcWriteBarrier": 72}
    assert p.arcs[("seed.Bench", "runtime.gcWriteBarrier2")] == [3, 60]
    assert p.arcs[("runtime.gcWriteBarrier2", "gcWriteBarrier")] == [4, 72]


def test_the_barrier_run_for_the_runtimes_own_writes_is_not_machine_code(tmp_path):
    # 4 barrier calls, 3 from the benchmark: a quarter of the entry's 8 Ir and of the body's
    # 72 belongs to gcStart (gomemu runs it in Python), 20 Ir
    f = tmp_path / "cg.out"
    f.write_text(FILE)
    p = cg.parse_callgrind(f, func_at)
    machine = {"seed.Bench", "runtime.gcWriteBarrier2", "gcWriteBarrier"}
    assert cg._barrier_elsewhere(p, machine) == 20
    assert cg._real_split(p, machine, {"runtime.gcStart"})[0] == 12 + 8 + 72 - 20
