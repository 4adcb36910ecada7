"""runtime/traceback.go and runtime/error.go: where a goroutine is, and what a panic says.

gomemu stops a call where Go would panic or where the program reaches something
gomemu does not run; the error must say what Go would say, and where in the
user's code. `goroutine_frames` walks the emulated stack of the program being
run with its own pclntab (emu/pclntab.py: the unwinder and CallersFrames, with
inlined calls), from a pc and sp; `panic_message` formats a panic value as
printpanicval and the runtime error types' Error methods do.

Simplified: panics end the call (deferred functions and recover are not run);
an error value whose type is not one of the runtime's own (or errors.New's)
prints as `(T) 0xADDR`, since its Error method is not run.
"""

import os

from emu.errors import BadInput, InvariantError

# internal/abi/bounds.go: BoundsErrorCode, and runtime/error.go's formats for each.
BOUNDS_FORMATS = [
    "index out of range [%x] with length %y",
    "slice bounds out of range [:%x] with length %y",
    "slice bounds out of range [:%x] with capacity %y",
    "slice bounds out of range [%x:%y]",
    "slice bounds out of range [::%x] with length %y",
    "slice bounds out of range [::%x] with capacity %y",
    "slice bounds out of range [:%x:%y]",
    "slice bounds out of range [%x:%y:]",
    "cannot convert slice with length %y to array or pointer to array with length %x",
]
BOUNDS_NEG_FORMATS = [
    "index out of range [%x]", "slice bounds out of range [:%x]", "slice bounds out of range [:%x]",
    "slice bounds out of range [%x:]", "slice bounds out of range [::%x]", "slice bounds out of range [::%x]",
    "slice bounds out of range [:%x:]", "slice bounds out of range [%x::]",
]
NIL_DEREFERENCE = "runtime error: invalid memory address or nil pointer dereference"   # panic.go: memoryError
MIN_LEGAL_POINTER = 4096          # malloc.go: minLegalPointer; faults below it are nil dereferences

# internal/abi/type.go: Kind values of the basic kinds printpanicval prints by value.
_SIGNED = {2: 64, 3: 8, 4: 16, 5: 32, 6: 64}             # int, int8, int16, int32, int64
_UNSIGNED = {7: 64, 8: 8, 9: 16, 10: 32, 11: 64, 12: 64}  # uint ... uintptr
KIND_BOOL, KIND_STRING = 1, 24


def _i64(v, bits=64):
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def bounds_error(mem, data):
    """runtime/error.go: boundsError.Error, from the struct {x int64; y int; signed bool; code uint8}."""
    x, y = _i64(mem.u64(data)), _i64(mem.u64(data + 8))
    signed, code = bool(mem.u8(data + 16)), mem.u8(data + 17)
    if code >= len(BOUNDS_FORMATS):
        raise InvariantError(f"boundsError with code {code}")
    fmt = BOUNDS_NEG_FORMATS[code] if signed and x < 0 else BOUNDS_FORMATS[code]
    xs = str(x if signed else x & ((1 << 64) - 1))
    return "runtime error: " + fmt.replace("%x", xs).replace("%y", str(y))


def go_string(mem, ptr, n, limit=1 << 16):
    if n == 0:
        return ""
    return mem.read(ptr, min(n, limit)).decode("utf-8", "replace")


def panic_message(machine, typ, data):
    """What `panic(v)` prints after `panic: `, for the interface value (typ, data)."""
    mem, image = machine.mem, machine.image
    if typ == 0:
        return "panic called with nil argument (use runtime.PanicNilError)"   # panic.go: PanicNilError
    name = image.type_name(typ)
    if name == "runtime.boundsError":
        return bounds_error(mem, data)
    if name in ("runtime.errorString", "runtime.plainError"):
        s = go_string(mem, mem.u64(data), mem.u64(data + 8))
        return ("runtime error: " + s) if name == "runtime.errorString" else s
    if name == "*errors.errorString":
        return go_string(mem, mem.u64(data), mem.u64(data + 8))
    kind = mem.u8(typ + 23) & 0x1F
    shown = "" if name in ("string", "bool") or name in _BASIC_NAMES else name
    if kind == KIND_STRING:
        s = go_string(mem, mem.u64(data), mem.u64(data + 8))
        return f"{shown}({s!r})".replace("'", '"') if shown else s
    if kind in _SIGNED or kind in _UNSIGNED:
        size = mem.u64(typ)
        raw = int.from_bytes(mem.read(data, size), "little")
        v = _i64(raw, 8 * size) if kind in _SIGNED else raw
        return f"{shown}({v})" if shown else str(v)
    if kind == KIND_BOOL:
        v = "true" if mem.u8(data) else "false"
        return f"{shown}({v})" if shown else v
    return f"({name}) {data:#x}"


_BASIC_NAMES = {"int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64",
                "uintptr", "byte", "rune"}


def goroutine_frames(machine, pc, sp, limit=100):
    """[(function, file, line)], innermost first, of the Go frames from (pc, sp): pc is the
    frame's pc (a return address for frames that made a call), sp its SP. Inlined calls
    are their own frames. Stops at goexit or at the first pc that is not the program's."""
    image = machine.image
    try:
        phys = image.pclntab.unwind(pc, sp, machine.mem.u64)
    except (BadInput, InvariantError):
        phys = []
    if not phys:
        return []
    out = []
    for f in image.pclntab.callers_frames([fr.pc for fr in phys][:limit]):
        out.append((image.display(f.function), os.path.basename(f.file), f.line))
    return out


def profile_stack(machine, sp, limit=64):
    """The Go call stack above a call-out entered from the runtime (sp points at the return
    address), as pprof frames, innermost first (emu/pprof.py)."""
    from emu.pprof import Frame
    image = machine.image
    try:
        phys = image.pclntab.unwind(machine.mem.u64(sp), sp + 8, machine.mem.u64)
    except (BadInput, InvariantError):
        return []
    return [Frame(image.display(f.function), f.file, f.line, f.pc, f.start_line)
            for f in image.pclntab.callers_frames([fr.pc for fr in phys][:limit])]


def import_path(name):
    """The package path of a function's linker name: `a/b.T.M` -> `a/b`."""
    slash = name.rfind("/")
    dot = name.find(".", slash + 1)
    return name[:dot] if dot > 0 else name


def is_user_function(machine, name):
    """A function of the user's program, not of the runtime or the standard library (whose
    import paths have no dot in their first element)."""
    path = import_path(name)
    return path in machine.image.aliases.values() or path == "main" or "." in path.split("/")[0]


def where_in_user_code(frames, machine):
    """(callee, user function, file, line) for the innermost frame of the user's code in
    frames, and the function it called (None when the user's code is the top frame)."""
    for i, (fn, file, line) in enumerate(frames):
        if is_user_function(machine, fn):
            return (frames[i - 1][0] if i else None), fn, file, line
    return None
