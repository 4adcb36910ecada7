"""What a guest store costs on each unicorn core (emu/unicorn_core.py): stock 2.1.4
and gomemu's patched build, measured in one run.

  - a loop of N iterations doing only register work, one load, one store, or a
    load and a store to the same page, in ns per iteration (best of 5), on an
    engine mapped as gomemu maps memory (mem_map_ptr, a hook on invalid accesses);
  - mcache-hit allocations/s of a Machine (bench_machine.hit_rate).
The binding loads libunicorn once per process, so each core runs in its own
subprocesses (GOMEMU_UNICORN=stock selects stock), alternating, and the
figures are medians of those runs; compare the ratios, not the absolute numbers,
on a shared machine. Target (issue 13): a store costs what a load costs.

Run: python bench/bench_stores.py [--smoke] [--runs R]
"""

import argparse
import ctypes
import json
import mmap
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import emu  # noqa: E402,F401  (chooses the core before the binding loads)

CODE, DATA = 0x400000, 0x610000
BODIES = {
    "registers only": "add rax, 1",
    "+ 1 load": "mov rax, qword ptr [rdi]",
    "+ 1 store": "mov qword ptr [rdi], rax",
    "+ load and store": "mov rax, qword ptr [rdi]; mov qword ptr [rdi + 8], rax",
}


def loop_ns(body, n, virtual_tlb=False, invalid_hook=True):
    """ns per iteration of `body; dec rcx; jnz` run n times (best of 5).

    virtual_tlb: the API-level alternative to the patch on stock unicorn (docs/machine.md):
    UC_TLB_VIRTUAL with a TLB-fill hook that maps data pages read-write but not
    executable, so notdirty_write may clear TLB_NOTDIRTY; it does only where no
    memory hook covers the page, hence invalid_hook (gomemu's Machine has one)."""
    import keystone
    from unicorn import (UC_ARCH_X86, UC_HOOK_MEM_INVALID, UC_HOOK_TLB_FILL, UC_MEM_FETCH, UC_MODE_64,
                         UC_PROT_ALL, UC_PROT_EXEC, UC_PROT_READ, UC_PROT_WRITE, UC_TLB_VIRTUAL, Uc)
    from unicorn.x86_const import UC_X86_REG_RCX, UC_X86_REG_RDI
    ks = keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64)
    code = bytes(ks.asm(f"again: {body}; dec rcx; jnz again", CODE)[0])
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    if virtual_tlb:
        def fill(_uc, addr, access, entry, _ud):
            entry.paddr = addr
            entry.perms = UC_PROT_ALL if access == UC_MEM_FETCH else UC_PROT_READ | UC_PROT_WRITE
            return True
        uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL)
        uc.hook_add(UC_HOOK_TLB_FILL, fill)
    uc.mem_map(CODE, 0x1000, UC_PROT_READ | UC_PROT_EXEC)
    backing = mmap.mmap(-1, 0x10000)
    uc.mem_map_ptr(DATA, 0x10000, UC_PROT_READ | UC_PROT_WRITE, ctypes.addressof(ctypes.c_char.from_buffer(backing)))
    if invalid_hook:
        uc.hook_add(UC_HOOK_MEM_INVALID, lambda *_: False)
    uc.mem_write(CODE, code)
    best = float("inf")
    for _ in range(5):
        uc.reg_write(UC_X86_REG_RCX, n)
        uc.reg_write(UC_X86_REG_RDI, DATA)
        t = time.perf_counter()
        uc.emu_start(CODE, CODE + len(code))
        best = min(best, time.perf_counter() - t)
    return best / n * 1e9


# Engine configurations per core: (label, loop_ns options).
CONFIGS = {
    "stock": [("stock", {}),
              ("stock, virtual TLB", {"virtual_tlb": True}),
              ("stock, virtual TLB, no invalid hook", {"virtual_tlb": True, "invalid_hook": False})],
    "patched": [("patched", {})],
}


def worker(core, n, rounds):
    """One process's figures, as JSON on stdout."""
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_machine import hit_rate
    from emu.machine import Machine
    out = {"core": Machine.unicorn_core.describe(), "patched": Machine.unicorn_core.patched}
    if out["patched"] == (core == "patched"):
        out["loops"] = {label: {name: loop_ns(body, n, **opts) for name, body in BODIES.items()}
                        for label, opts in CONFIGS[core]}
        out["hits"] = hit_rate(Machine(), rounds)
    print(json.dumps(out))


def run_worker(core, n, rounds):
    env = dict(os.environ)
    env.pop("GOMEMU_UNICORN", None)
    if core == "stock":
        env["GOMEMU_UNICORN"] = "stock"
    r = subprocess.run([sys.executable, __file__, "--worker", core, str(n), str(rounds)], env=env,
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="a short run (a few seconds)")
    ap.add_argument("--runs", type=int, help="subprocesses per core (default 5, 1 with --smoke)")
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker[0], *map(int, args.worker[1:]))
        return 0
    n, rounds, runs = (200_000, 4, 1) if args.smoke else (2_000_000, 100, 5)
    runs = args.runs or runs
    runs_of = {core: [] for core in CONFIGS}
    for _ in range(runs):
        for core in list(runs_of):
            r = run_worker(core, n, rounds)
            if "loops" in r:
                runs_of[core].append(r)
            else:
                print(f"{core}: not available here: {r['core']}")
                del runs_of[core]
    loops = {label: {k: statistics.median(r["loops"][label][k] for r in rs) for k in BODIES}
             for rs in runs_of.values() for label in rs[0]["loops"]}
    hits = {core: statistics.median(r["hits"] for r in rs) for core, rs in runs_of.items()}
    print(f"ns per loop iteration (median of {runs} processes, each the best of 5 runs of {n:,} iterations)")
    print(f"{'':38s}" + "".join(f"{k:>18s}" for k in BODIES) + "   store - load")
    for label, row in loops.items():
        extra = row["+ 1 store"] - row["+ 1 load"]
        print(f"{label:38s}" + "".join(f"{row[k]:18.1f}" for k in BODIES) + f"{extra:15.1f}")
    line = "mcache-hit allocations/s (Machine, exact counting on): " + ", ".join(f"{c} {h:,.0f}" for c, h in hits.items())
    if len(hits) == 2:
        line += f"; patched/stock x{hits['patched'] / hits['stock']:.2f}"
        line += f"; stores patched/stock x{loops['patched']['+ 1 store'] / loops['stock']['+ 1 store']:.2f}"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
