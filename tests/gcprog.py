"""tests/programs/gcstats on gomemu and natively: the helpers the GC tests share."""

import subprocess
from functools import lru_cache
from pathlib import Path

from unicorn.x86_const import UC_X86_REG_RAX, UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDI

PROGRAM = Path(__file__).resolve().parent / "programs" / "gcstats"
FUNCS = ("Live", "LivePtrs", "Drop", "Churn", "Metric", "Cycles", "MemStat", "SetGCPercent",
         "SetMemoryLimit", "FreeOSMemory", "GC")
MEMSTAT = ("HeapAlloc", "HeapSys", "HeapIdle", "HeapInuse", "HeapReleased", "NextGC", "NumGC", "Mallocs",
           "Frees", "StackInuse")          # gcstats.MemStat's fields, in its order
BLOCK = 4096


@lru_cache(maxsize=None)
def program():
    from emu.program import GoProgram
    return GoProgram(str(PROGRAM), funcs=FUNCS)


def machine(env=None, procs=1):
    """A machine running gcstats with the environment's GOGC/GOMEMLIMIT/GODEBUG."""
    from runtime_model.gcsettings import gcinit
    m = program().machine()
    gcinit(m.runtime, env or {})
    m.runtime.gc.procs = procs
    m.block_budget = 1 << 40
    return m


def call(m, func, *args, results=1):
    """func(args...) on a new goroutine; its first `results` result words."""
    g = m.new_goroutine()
    m.call_on(g, program().symbol(func), *[a & ((1 << 64) - 1) for a in args])
    out = [m.regs.read(r) for r in (UC_X86_REG_RAX, UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDI)[:results]]
    m.goexit(g)
    return out[0] if results == 1 else out


def native(test, env, timeout=120):
    """Run one Test of gcstats natively (the same test binary gomemu loads); its stdout
    lines, without go test's own."""
    import os
    full = {k: v for k, v in os.environ.items() if k not in ("GOGC", "GOMEMLIMIT", "GODEBUG")}
    full.update(env)
    out = subprocess.run([str(program().built.binary), "-test.run", f"^{test}$", "-test.v"], env=full,
                         capture_output=True, text=True, timeout=timeout)
    return out


def fields(line):
    """'k1 v1 k2 v2 ...' -> {k: int(v)}."""
    w = line.split()
    return dict(zip(w[0::2], map(int, w[1::2])))
