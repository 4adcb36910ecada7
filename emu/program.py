"""A user's Go code on the emulated runtime: build it, load it, call its functions.

    prog = GoProgram("bench/examples/alloc.go", funcs=["work"])
    run = prog.call("work", 100)          # on a fresh goroutine with a 2 KiB stack
    run.results, run.instructions, run.allocations, run.stack_growths

`GoProgram` builds the package with the real toolchain (emu/gobuild.py:
build_package), loads the linked binary whole (emu/goimage.py) and runs its
package initialisers once per machine. A call runs on a new goroutine, as a `go`
statement starts one (2 KiB, GODEBUG adaptivestackstart=0), with its integer
arguments in the ABIInternal registers, and every allocation measured on its
own (emu/paths.py). Results are decoded by the function's DWARF signature.
"""

from dataclasses import dataclass, field

from unicorn.x86_const import (UC_X86_REG_R8, UC_X86_REG_R9, UC_X86_REG_R10, UC_X86_REG_R11,
                               UC_X86_REG_RAX, UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDI,
                               UC_X86_REG_RSI)

from emu.errors import BadInput
from emu.gobuild import build_package

RESULT_REGS = (UC_X86_REG_RAX, UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDI, UC_X86_REG_RSI,
               UC_X86_REG_R8, UC_X86_REG_R9, UC_X86_REG_R10, UC_X86_REG_R11)
WRITE_BARRIERS = tuple(f"runtime.gcWriteBarrier{n}" for n in range(1, 9))


@dataclass
class CallResult:
    func: str
    args: tuple
    results: list                 # Go values as the function returned them (ints signed as declared)
    instructions: int
    by_routine: dict
    allocations: list             # emu.paths.PathSample per allocation, in order
    bytes_allocated: int          # MemStats.TotalAlloc grew by this much (as go test's B/op counts)
    mallocs: int                  # MemStats.Mallocs grew by this much (allocs/op)
    stack_growths: list           # runtime_model.stack.Copy per copystack
    write_barriers: int           # calls of gcWriteBarrier1..8
    wb_flushes: int
    callouts: dict = field(default_factory=dict)


def int_arg(text, param):
    """A command-line integer for a parameter, checked against what its type holds."""
    try:
        v = int(text, 0)
    except ValueError:
        raise BadInput(f"argument {param.name} ({param.type}): {text!r} is not an integer") from None
    bits = 8 * param.size
    if param.kind == "bool":
        lo, hi = 0, 1
    elif param.kind == "int":
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        lo, hi = 0, (1 << bits) - 1
    if not lo <= v <= hi:
        raise BadInput(f"argument {param.name} ({param.type}): {v} is outside {lo}..{hi}")
    return v & ((1 << 64) - 1)


def decode_result(machine, param, words):
    if param.kind == "int":
        bits = 8 * param.size
        v = words[0] & ((1 << bits) - 1)
        return v - (1 << bits) if v >> (bits - 1) else v
    if param.kind == "uint":
        return words[0] & ((1 << (8 * param.size)) - 1)
    if param.kind == "bool":
        return bool(words[0] & 0xFF)
    if param.kind == "pointer":
        return words[0]
    if param.kind == "string":
        ptr, n = words
        return machine.mem.read(ptr, min(n, 1 << 20)).decode("utf-8", "replace") if n else ""
    if param.kind == "slice":
        return {"ptr": words[0], "len": words[1], "cap": words[2]}
    if param.kind == "interface":
        return {"type": words[0], "data": words[1]}
    raise BadInput(f"result {param.name} ({param.type}) is not returned in integer registers")


class GoProgram:
    """A user's package (a .go file or a directory), built and loaded (see module doc)."""

    def __init__(self, path, funcs=(), *, size_specialized=True, sources=None):
        self.path = path
        self.funcs = tuple(funcs)
        self.built = build_package(path, keep=self.funcs, sources=sources,
                                   experiment="" if size_specialized else "nosizespecializedmalloc")
        self.image = self.built.image()
        self.size_specialized = size_specialized

    def machine(self, gogc=100, **kw):
        """A fresh machine running this program (GOGC=100 unless given), its packages
        initialised. Packages whose initialisation failed are in
        `machine.runtime.init_failures`."""
        from emu.machine import Machine
        m = Machine(image=self.image, size_specialized=self.size_specialized, gogc=gogc, **kw)
        m.runtime.run_inits()
        return m

    def symbol(self, func):
        return self.built.symbol(func)

    def call(self, func, *args, machine=None):
        """Run func(args...) on a new goroutine of `machine` (a fresh one by default).
        Integer arguments only; returns a CallResult."""
        m = machine or self.machine()
        name = self.symbol(func)
        m.symbol(name)                                  # a clear error for an unknown function
        sig = self.image.signature(name)
        if len(args) != len(sig.params):
            raise BadInput(f"{name} takes {len(sig.params)} arguments "
                           f"({', '.join(f'{p.name} {p.type}' for p in sig.params)}), not {len(args)}")
        regs = []
        for text, p in zip(args, sig.params):
            if p.kind not in ("int", "uint", "bool", "pointer"):
                raise BadInput(f"{name}: parameter {p.name} is a {p.type}; only integer arguments "
                               "can be given on the command line")
            regs.append(int_arg(str(text), p) if not isinstance(text, int) else text & ((1 << 64) - 1))
        nres = sum(r.words for r in sig.results)
        if any(r.words == 0 for r in sig.results) or nres > len(RESULT_REGS):
            raise BadInput(f"{name}: its results ({', '.join(r.type for r in sig.results)}) are not all "
                           "returned in integer registers")
        g = m.new_goroutine()
        samples = []
        before = m.runtime.read_mem_stats()
        copies, flushes = len(m.runtime.stacks.copies), len(m.wb_flushes)
        snap = m.snapshot()
        m.track_allocations(samples.append)
        try:
            m.call_on(g, name, *regs)
        finally:
            m.stop_tracking_allocations()
        words = [m.regs.read(r) for r in RESULT_REGS[:nres]]
        counts = m.counts_since(snap)
        after = m.runtime.read_mem_stats()
        results, i = [], 0
        for r in sig.results:
            results.append(decode_result(m, r, words[i:i + r.words]))
            i += r.words
        m.goexit(g)
        by_routine = counts.by_routine()
        barriers = sum(counts.blocks.get(m.symbol(s), (0, 0))[0] for s in WRITE_BARRIERS if s in m.symbols)
        return CallResult(name, tuple(regs), results, counts.instructions, by_routine, samples,
                          after["TotalAlloc"] - before["TotalAlloc"], after["Mallocs"] - before["Mallocs"],
                          m.runtime.stacks.copies[copies:], barriers, len(m.wb_flushes) - flushes,
                          counts.callouts)

    # ---- benchmarks (emu/benchmark.py) -----------------------------------------------------
    def benchmarks(self, pattern="."):
        """The Benchmark* functions of the package whose names match the regular expression
        (go test -bench), in source order."""
        import re
        try:
            rx = re.compile(pattern)
        except re.error as e:
            raise BadInput(f"-bench {pattern!r}: not a regular expression: {e}") from None
        prefix = self.built.package + ".Benchmark"
        names = [f.name for f in sorted(self.image.funcs, key=lambda f: f.addr)
                 if f.name.startswith(prefix) and "." not in f.name[len(prefix):]]
        return [n for n in names if rx.search(n.rsplit(".", 1)[1])]

    def bench(self, name, benchtime="1000x", machine=None):
        """Run one benchmark (its linker name) as go test does; returns a BenchResult."""
        from emu.benchmark import parse_benchtime, run_benchmark
        n, ns = parse_benchtime(benchtime)
        m = machine or self.machine()
        return run_benchmark(m, name, name.rsplit(".", 1)[1], n, ns)
