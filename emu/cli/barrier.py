"""`gomemu barrier`: what a pointer store costs with the write barrier off and on.

Two uses:
  - `barrier_paths(dialect)` measures the three paths of one pointer store
    (`*slot = ptr`, the compiled call site plus the barrier routines) in
    either dialect: barrier off; on, with room in p.wbBuf; on, with the buffer
    full so wbBufFlush runs. `gomemu report` prints them for both dialects.
  - `gomemu barrier FILE.go FUNC` builds the user's file with the real Go
    toolchain (emu/gobuild.py: build_package), loads the whole program on its
    own go1.27.3 runtime (globals, closures, maps, channels are real), and runs
    FUNC with the barrier off and on: it prints the step trace of the
    barrier-on run, the wbBuf contents, and the instruction counts.

Arguments for FUNC come from its Go signature (DWARF): a pointer parameter
(`*T`, func, unsafe.Pointer) gets a fresh 256-byte heap object whose words
all hold pointers to distinct "old" objects; a slice gets such an object with
len = cap = 8; a map a real empty map (makemap_small); a channel a real one
with a buffer of one (makechan); a string 6 bytes on the heap; an `any` such
an object, boxed; integers get --int (default 1), which must fit each one's
Go type. Other parameter types (floats, structs by value, interfaces with
methods) need --args. Before each run, every heap span of an argument (and of
what its words point at) and every global of the package is put back as it
was, so both runs start from the same state. Runs are on g0, as a bare call.
--json: docs/json.md, gomemu.barrier.
"""

import argparse
import re
from pathlib import Path
from dataclasses import dataclass

from emu.cli import inputs
from emu.textfile import read_text
from emu.cli.inputs import UsageError
from emu.cli.jsonout import document, dumps
from emu.cli.output import status
from emu.errors import BadInput
from emu import layout as L
from emu.machine import ABI_INT_REGS, REG_NAMES, WB_DIALECTS, Machine

TRACE_LIMIT = 100_000         # instructions of the barrier-on trace: half a minute of stepping
PATHS = ("barrier off", "barrier on, buffer has room", "barrier on, buffer full: wbBufFlush")
ARG_OBJECT_BYTES = 256
ARG_STRING = b"gomemu"     # a string argument's bytes


@dataclass
class PathCount:
    path: str
    instructions: int
    reads: int
    writes: int
    by_routine: dict
    callouts: dict


def _measure(m, fn, *args):
    snap = m.snapshot()
    fn(*args)
    c = m.counts_since(snap)
    r, w = c.memory_accesses()
    return PathCount("", c.instructions, r, w, c.by_routine(), dict(c.callouts))


def barrier_paths(dialect, machine=None):
    """{path: PathCount} for one `*slot = ptr` store, with Machine.store_pointer."""
    m = machine or Machine(wb_dialect=dialect)
    if m.wb_dialect != dialect:
        raise BadInput(f"the machine runs the {m.wb_dialect} dialect, not {dialect}")
    slot, _ = m.malloc_small_noscan(16)
    vals = [m.malloc_small_noscan(16)[0] for _ in range(2)]
    out = {}
    m.set_write_barrier(False)
    m.store_pointer(slot, vals[0])                      # warm: first translation of the blocks
    out[PATHS[0]] = _measure(m, m.store_pointer, slot, vals[1])
    m.set_write_barrier(True)
    m.wbbuf_reset()
    room = full = None
    for i in range(2 * 512):                            # at most one buffer's worth until it flushes
        pc = _measure(m, m.store_pointer, slot, vals[i % 2])
        if "runtime.wbBufFlush" in pc.callouts:
            full = pc
            break
        if room is None and i:
            room = pc
    m.set_write_barrier(False)
    if room is None or full is None:
        raise BadInput("the write barrier never flushed its buffer")
    out[PATHS[1]] = room
    out[PATHS[2]] = full
    for k, v in out.items():
        v.path = k
    return out


def write_barrier_rows():
    """[(dialect, PathCount)]: the three paths of a pointer store in each dialect (for `gomemu report`)."""
    return [(dialect, pc) for dialect in WB_DIALECTS for pc in barrier_paths(dialect).values()]


def write_barrier_lines(rows):
    """The write-barrier section of `gomemu report`."""
    out = ["", "write barrier: one pointer store `*slot = ptr` (call site + barrier; Python flush not counted)", ""]
    header = f"{'dialect':<8} {'path':<40} {'instructions':>12} {'reads':>6} {'writes':>6}  by routine"
    out += [header, "-" * len(header)]
    for dialect, pc in rows:
        routines = ", ".join(f"{r} {n}" for r, n in pc.by_routine.items())
        out.append(f"{dialect:<8} {pc.path:<40} {pc.instructions:>12} {pc.reads:>6} {pc.writes:>6}  {routines}")
    return out


def _count_json(pc):
    return {"instructions": pc.instructions, "reads": pc.reads, "writes": pc.writes,
            "by_routine": pc.by_routine, "callouts": dict(sorted(pc.callouts.items()))}


def write_barrier_json(rows):
    return [{"dialect": dialect, "path": pc.path, **_count_json(pc)} for dialect, pc in rows]


def register(sub):
    p = sub.add_parser("barrier", help="compile a Go function with the real toolchain and run its pointer "
                                       "stores with the write barrier off and on")
    p.add_argument("file", type=inputs.path, help="a Go source file, UTF-8 (compiled as package main)")
    p.add_argument("func", help="the function to run: F, main.F, or a method (*T).M or T.M (methods need --args)")
    p.add_argument("--int", type=inputs.bounded(*inputs.REGISTER_WORD), dest="int_value", metavar="N",
                   help="value for integer parameters (default 1); it must fit each one's Go type "
                        "(int64 -2^63..2^63-1, uint64 0..2^64-1, int8 -128..127, bool 0..1, ...)")
    p.add_argument("--args", type=register_words, metavar="A,B,...",
                   help=f"comma-separated register arguments (AX, BX, ...; at most {len(ABI_INT_REGS)}) instead "
                        f"of derived ones: integers -2^63..2^64-1, or 'obj' for a fresh object")
    p.add_argument("--no-trace", action="store_true",
                   help=f"counts and buffer only (the trace stops at {TRACE_LIMIT} instructions)")
    p.add_argument("--json", action="store_true", help="one JSON document (docs/json.md: gomemu.barrier)")
    p.set_defaults(handler=run)


def register_words(text):
    """--args: ['obj' | int, ...], each integer a 64-bit register word."""
    out = []
    for i, a in enumerate(text.split(","), 1):
        a = a.strip()
        if a == "obj":
            out.append(a)
            continue
        v = inputs.parse_int(a)
        lo, hi = inputs.REGISTER_WORD
        if v is None or not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"argument {i} ({a!r}) is neither 'obj' nor an integer in "
                                             f"-2^63..2^64-1")
        out.append(v)
    if len(out) > len(ABI_INT_REGS):
        raise argparse.ArgumentTypeError(f"{len(out)} arguments; at most {len(ABI_INT_REGS)} registers")
    return out


_POINTERISH = re.compile(r"^(\*|map\[|chan\b|<-chan\b|chan<-|func\b|unsafe\.Pointer$)")
# The integer types a register argument can be, and what each holds.
INT_RANGES = {
    "int": inputs.INT64, "int64": inputs.INT64, "uint": inputs.UINT64, "uint64": inputs.UINT64,
    "uintptr": inputs.UINT64, "int32": (-(1 << 31), (1 << 31) - 1), "rune": (-(1 << 31), (1 << 31) - 1),
    "uint32": (0, (1 << 32) - 1), "int16": (-(1 << 15), (1 << 15) - 1), "uint16": (0, (1 << 16) - 1),
    "int8": (-128, 127), "uint8": (0, 255), "byte": (0, 255), "bool": (0, 1),
}


def signature_params(src, func):
    """The parameter types of `func` in `src`, one per parameter, in order."""
    name = func.removeprefix("main.")
    m = re.search(rf"^func\s+{re.escape(name)}\s*\(([^)]*)\)", src, flags=re.M)
    if not m:
        raise BadInput(f"no top-level func {name} in the source (methods and generics need --args)")
    types, pending = [], 0
    for part in [p.strip() for p in m.group(1).split(",") if p.strip()]:
        bits = part.split(None, 1)
        if len(bits) == 1:          # a name whose type comes later (a, b *T), or an unnamed param
            if re.match(r"^[A-Za-z_]\w*$", bits[0]) and not bits[0] in INT_RANGES:
                pending += 1
                continue
            types.append(bits[0])
            continue
        types += [bits[1].strip()] * (pending + 1)
        pending = 0
    if pending:
        raise BadInput(f"cannot read the parameters of {name}")
    return types


class _Args:
    """Arguments made on the program's own heap, and what each run must find as it was."""

    def __init__(self, m, int_value):
        self.m, self.int_value = m, int_value
        self.objects = []            # (address, words of old pointers)
        self.typ = m.runtime.new_type(ARG_OBJECT_BYTES, range(ARG_OBJECT_BYTES // 8), name="gomemu.argobj")

    def obj(self):
        """A fresh 256-byte object whose words all point at distinct old objects."""
        m = self.m
        x = m.mallocgc(ARG_OBJECT_BYTES, self.typ)
        olds = [m.malloc_small_noscan(16)[0] for _ in range(ARG_OBJECT_BYTES // 8)]
        for i, o in enumerate(olds):
            m.mem.w64(x + 8 * i, o)
        self.objects.append((x, olds))
        return x

    def for_param(self, p):
        """[(value, what it is)] for a parameter (emu/goimage.py: Param) of the function."""
        m = self.m
        if p.type.startswith("map["):
            return [(m.call("runtime.makemap_small"), "map")]          # map.go: makemap_small
        if p.type.startswith("chan ") and p.rtype:
            return [(m.call("runtime.makechan", p.rtype, 1), "chan")]   # chan.go: makechan(t, 1): a send does not wait
        if p.kind == "pointer":
            return [(self.obj(), "object")]
        if p.kind == "slice":
            return [(self.obj(), "slice array"), (8, "slice len"), (8, "slice cap")]
        if p.kind == "string":
            s, _ = m.malloc_small_noscan(16)
            m.mem.write(s, ARG_STRING)
            return [(s, "string data"), (len(ARG_STRING), "string len")]
        if p.kind == "interface":
            if p.type not in ("interface {}", "any"):
                raise BadInput(f"parameter {p.name} has type {p.type!r} (an interface with methods, which needs "
                               "an itab); pass --args")
            return [(self.typ, "interface type"), (self.obj(), "interface data")]      # an argobj, boxed
        return [(self.int_value, "integer")]

    def given(self, words):
        return [(self.obj(), "object") if w == "obj" else (w, "given") for w in words]


class _Restore:
    """The bytes a run may change that the next run must find as they were: the heap
    spans of the arguments and of what their words point at (old objects, a map's or a
    channel's insides), and the package's globals."""

    def __init__(self, m, image, package, values):
        heap = m.runtime.mheap
        spans = {}

        def add(p):
            s = heap.span_of_heap(p) if p >= L.HEAP_BASE else None
            if s is not None and s.base() not in spans:
                spans[s.base()] = s.npages * L.PAGE_SIZE
                return True
            return False

        for v in values:
            s = heap.span_of_heap(v) if v >= L.HEAP_BASE else None
            if s is not None:
                add(v)
                for w in range(v, min(s.base() + s.npages * L.PAGE_SIZE, v + ARG_OBJECT_BYTES), 8):
                    add(m.mem.u64(w))          # one level down: old objects, a channel's buffer
        ranges = sorted(spans.items())
        ranges += [(s.addr, s.size) for name, s in image.symbols.items()
                   if s.kind == "object" and s.size and name == s.name and name.startswith(package + ".")]
        self.m, self.saved = m, [(a, m.mem.read(a, n)) for a, n in ranges]

    def __call__(self):
        for a, data in self.saved:
            self.m.mem.write(a, data)


def check_derivable(types, func, int_value):
    """Every parameter gets an argument from its type, and --int fits each integer one."""
    for i, t in enumerate(types, 1):
        where = f"parameter {i} of {func}"
        if t in INT_RANGES:
            lo, hi = INT_RANGES[t]
            if not lo <= int_value <= hi:
                raise UsageError(f"--int {int_value} does not fit {where} ({t}: {lo}..{hi})")
        elif not (_POINTERISH.match(t) or t.startswith("[]") or t in ("string", "any", "interface{}")):
            raise BadInput(f"{where} has type {t!r}, which is not derived automatically; pass --args")


def run(args):
    from emu import gobuild
    from emu.program import GoProgram
    gobuild.check_function_name(args.func)
    if args.args and args.int_value is not None:
        raise UsageError("--int makes the integer arguments that --args gives: use one of them")
    int_value = 1 if args.int_value is None else args.int_value
    src = read_text(args.file, "the Go source")
    types = None if args.args else signature_params(src, args.func)
    if types is not None:
        check_derivable(types, args.func, int_value)                 # before a build of seconds
    with status(f"go build of {args.file}"):
        prog = GoProgram(args.file, [args.func.removeprefix("main.")],
                         sources={Path(args.file).name: src})
    r = barrier_run(prog, args.func, int_value=int_value, given=args.args, trace=not args.no_trace)
    name, argv, runs, trace, olds = r.function, r.arguments, r.runs, r.trace, r.points_to
    code = prog.image.symbols[name]
    referred = referred_symbols(prog.image, code.addr, code.size)
    if args.json:
        print(dumps(document(
            "barrier", file=args.file, function=name, code_bytes=code.size, relocated=referred,
            arguments=[{"register": REG_NAMES[reg], "value": v, "kind": kind,
                        **({"points_to": olds[v]} if v in olds else {})}
                       for reg, (v, kind) in zip(ABI_INT_REGS, argv)],
            runs=[{"write_barrier": on, **_count_json(pc), "wbbuf": buf} for on, (pc, buf) in runs.items()],
            trace=None if args.no_trace else [rec.as_dict() for rec in trace])))
        return 0
    print(f"{name}: {code.size} bytes from the go build of {args.file}; refers to: "
          + (", ".join(referred) or "nothing"))
    print("arguments: " + " ".join(f"{v:#x}" for v, _ in argv))
    if trace:
        print("\n-- trace, write barrier on --")
        for rec in trace:
            print(rec.format())
    print("\n-- counts (instructions; Python call-outs not counted) --")
    for on, (pc, _) in runs.items():
        routines = ", ".join(f"{r} {n}" for r, n in pc.by_routine.items())
        co = ", ".join(f"{k} x{v}" for k, v in pc.callouts.items()) or "-"
        print(f"barrier {'on ' if on else 'off'}: {pc.instructions} instructions, {pc.reads} reads, "
              f"{pc.writes} writes ({routines}); call-outs: {co}")
    buf = runs[True][1]
    print(f"\nwbBuf after the barrier-on run: {len(buf)} pointers" + (": " if buf else ""))
    for i in range(0, len(buf), 2):
        print("  " + "  ".join(f"{v:#x}" for v in buf[i:i + 2]))
    return 0


@dataclass
class BarrierRun:
    function: str
    arguments: list          # [(register word, what it is)] in ABI order
    points_to: dict          # argument object -> the old pointers its words held
    runs: dict               # barrier on? -> (PathCount, p.wbBuf's words after the run)
    trace: list              # StepRecords of the barrier-on run ([] without a trace)


def barrier_run(prog, func, machine=None, *, int_value=1, given=None, trace=True):
    """Run `func` of a built GoProgram with the barrier off, then on, each from the same
    state (see the module docstring). `machine`: one of prog.machine()'s (a fresh one
    by default); a machine can run many functions one after another."""
    from emu.program import GoProgram
    if not isinstance(prog, GoProgram):
        raise BadInput("prog must be an emu.program.GoProgram")
    # The whole program is loaded: globals, closures, maps and channels are its own
    # runtime's; built with Go 1.27's default sizespecializedmalloc.
    m = machine or prog.machine()
    name = prog.symbol(func.removeprefix("main."))
    m.symbol(name)
    made = _Args(m, int_value)
    if given:
        argv = made.given(given)
    else:
        argv = [v for p in prog.image.signature(name).params for v in made.for_param(p)]
    if len(argv) > len(ABI_INT_REGS):
        raise BadInput(f"{name} takes {len(argv)} register words; at most {len(ABI_INT_REGS)} are supported")
    regs = [v for v, _ in argv]
    restore = _Restore(m, prog.image, prog.built.package, regs)
    runs, steps = {}, []
    try:
        for on in (False, True):
            restore()
            m.wbbuf_reset()
            m.set_write_barrier(on)
            if on and trace:
                steps = m.trace(name, *regs, limit=TRACE_LIMIT)
                restore()
                m.wbbuf_reset()
            runs[on] = (_measure(m, m.call, name, *regs), m.wbbuf())
    finally:
        m.set_write_barrier(False)
        m.wbbuf_reset()
    return BarrierRun(name, argv, dict(made.objects), runs, steps)


def referred_symbols(img, addr, size):
    """What a function's code calls or takes the address of (rip-relative operands and call
    targets), by symbol, or type descriptor name as `type:NAME`; sorted."""
    import capstone
    lo, hi = img.pclntab.module.types, img.pclntab.module.etypes
    cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    out = set()
    for a, n, mn, ops in cs.disasm_lite(img.read(addr, size), addr):
        target = None
        hit = re.search(r"\[rip ([+-]) (0x[0-9a-f]+)\]", ops)
        if hit:
            target = a + n + int(hit.group(2), 16) * (1 if hit.group(1) == "+" else -1)
        elif mn == "call" and re.fullmatch(r"0x[0-9a-f]+", ops):
            target = int(ops, 16)
        if target is None:
            continue
        if lo <= target < hi:
            out.add("type:" + img.type_name(target))
            continue
        f = img.func_at(target)
        sym = f.name if f is not None and f.addr == target else _data_symbol(img, target)
        if sym:
            out.add(sym)
    return sorted(out)


def _data_symbol(img, addr):
    for name, s in img.symbols.items():
        if s.kind == "object" and s.addr <= addr < s.addr + max(s.size, 1) and name == s.name:
            return s.name
    return None
