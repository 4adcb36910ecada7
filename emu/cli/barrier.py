"""`gomemu barrier`: what a pointer store costs with the write barrier off and on.

Two uses:
  - `barrier_paths(dialect)` measures the three paths of one pointer store
    (`*slot = ptr`, the compiled call site plus the barrier routines) in
    either dialect: barrier off; on, with room in p.wbBuf; on, with the buffer
    full so wbBufFlush runs. `gomemu report` prints them for both dialects.
  - `gomemu barrier FILE.go FUNC` compiles the user's file with the real Go
    toolchain (emu/gobuild.py), loads FUNC's machine code into the emulator,
    and runs it with the barrier off and on: it prints the step trace of the
    barrier-on run, the wbBuf contents, and the instruction counts.

Arguments for FUNC come from its Go signature: every pointer-shaped parameter
(`*T`, map, chan, func, unsafe.Pointer) gets a fresh 256-byte heap object
whose words all hold pointers to distinct "old" objects; a slice gets such an
object with len = cap = 8; integers get --int (default 1). Other parameter
types (strings, floats, structs by value) need --args.
"""

import re
from dataclasses import dataclass

from emu.errors import BadInput
from emu.machine import WB_DIALECTS, Machine

PATHS = ("barrier off", "barrier on, buffer has room", "barrier on, buffer full: wbBufFlush")
ARG_OBJECT_BYTES = 256


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


def report_lines():
    """The write-barrier section of `gomemu report`."""
    out = ["", "write barrier: one pointer store `*slot = ptr` (call site + barrier; Python flush not counted)", ""]
    header = f"{'dialect':<8} {'path':<40} {'instructions':>12} {'reads':>6} {'writes':>6}  by routine"
    out += [header, "-" * len(header)]
    for dialect in WB_DIALECTS:
        for path, pc in barrier_paths(dialect).items():
            routines = ", ".join(f"{r} {n}" for r, n in pc.by_routine.items())
            out.append(f"{dialect:<8} {path:<40} {pc.instructions:>12} {pc.reads:>6} {pc.writes:>6}  {routines}")
    return out


def register(sub):
    p = sub.add_parser("barrier", help="compile a Go function with the real toolchain and run its pointer "
                                       "stores with the write barrier off and on")
    p.add_argument("file", help="a Go source file (compiled as package main)")
    p.add_argument("func", help="the function to run, e.g. storeField")
    p.add_argument("--int", type=int, default=1, dest="int_value", help="value for integer parameters (default 1)")
    p.add_argument("--args", help="comma-separated register arguments (AX, BX, ...) instead of derived ones; "
                                  "'obj' allocates a fresh object")
    p.add_argument("--no-trace", action="store_true", help="counts and buffer only")
    p.set_defaults(handler=run)


_POINTERISH = re.compile(r"^(\*|map\[|chan\b|<-chan\b|chan<-|func\b|unsafe\.Pointer$)")
_INTS = {"int", "uint", "uintptr", "int64", "uint64", "int32", "uint32", "int16", "uint16", "int8", "uint8",
         "byte", "rune", "bool"}


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
            if re.match(r"^[A-Za-z_]\w*$", bits[0]) and not bits[0] in _INTS:
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
    def __init__(self, m, int_value):
        self.m, self.int_value = m, int_value
        self.objects = []            # (address, words of old pointers) to restore between runs
        self.typ = m.runtime.new_type(ARG_OBJECT_BYTES, range(ARG_OBJECT_BYTES // 8), name="gomemu.argobj")

    def obj(self):
        m = self.m
        x = m.mallocgc(ARG_OBJECT_BYTES, self.typ)
        olds = [m.malloc_small_noscan(16)[0] for _ in range(ARG_OBJECT_BYTES // 8)]
        self.objects.append((x, olds))
        return x

    def restore(self):
        for x, olds in self.objects:
            for i, o in enumerate(olds):
                self.m.mem.w64(x + 8 * i, o)

    def for_type(self, t):
        if _POINTERISH.match(t):
            return [self.obj()]
        if t.startswith("[]"):
            return [self.obj(), 8, 8]
        if t in _INTS:
            return [self.int_value]
        raise BadInput(f"parameter type {t!r} is not derived automatically; pass --args")


def run(args):
    from emu import gobuild
    with open(args.file) as f:
        src = f.read()
    fn = gobuild.build_functions(src, [args.func])[args.func]
    m = Machine()
    gobuild.load(m, fn)
    made = _Args(m, args.int_value)
    if args.args:
        regs = [made.obj() if a.strip() == "obj" else int(a, 0) for a in args.args.split(",")]
    else:
        regs = [v for t in signature_params(src, args.func) for v in made.for_type(t)]
    if len(regs) > 9:
        raise BadInput(f"{fn.name} takes {len(regs)} register words; at most 9 are supported")
    print(f"{fn.name}: {len(fn.code)} bytes from the go build of {args.file}; relocated: "
          + (", ".join(sorted({r.symbol for r in fn.relocations if r.size})) or "nothing"))
    print("arguments: " + " ".join(f"{v:#x}" for v in regs))
    results = {}
    for on in (False, True):
        made.restore()
        m.wbbuf_reset()
        m.set_write_barrier(on)
        if on and not args.no_trace:
            print("\n-- trace, write barrier on --")
            for rec in m.trace(fn.name, *regs):
                print(rec.format())
            made.restore()
            m.wbbuf_reset()
        pc = _measure(m, m.call, fn.name, *regs)
        results[on] = (pc, m.wbbuf())
    m.set_write_barrier(False)
    print("\n-- counts (instructions; Python call-outs not counted) --")
    for on, (pc, buf) in results.items():
        routines = ", ".join(f"{r} {n}" for r, n in pc.by_routine.items())
        co = ", ".join(f"{k} x{v}" for k, v in pc.callouts.items()) or "-"
        print(f"barrier {'on ' if on else 'off'}: {pc.instructions} instructions, {pc.reads} reads, "
              f"{pc.writes} writes ({routines}); call-outs: {co}")
    buf = results[True][1]
    print(f"\nwbBuf after the barrier-on run: {len(buf)} pointers" + (": " if buf else ""))
    for i in range(0, len(buf), 2):
        print("  " + "  ".join(f"{v:#x}" for v in buf[i:i + 2]))
    return 0
