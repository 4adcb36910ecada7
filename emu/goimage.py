"""A linked Go program as gomemu loads it: the image of a linux/amd64 process.

Go links linux/amd64 programs statically and, by default, not position
independent: text from 0x401000, then rodata (with the pclntab and the type
descriptors), then data and bss. So the program needs no relocation at all:
gomemu maps each PT_LOAD segment at its own address, copies its bytes in and
zeroes the rest (bss), and the program's machine code, globals with their
initial values, strings, type descriptors, itabs and pclntab are where the
code expects them. The runtime linked into the program is the runtime gomemu
runs: its mallocgc, write barriers and morestack are the real compiler's code.

`GoImage` reads an ELF once: segments, the symbol table (functions and data
objects), and, on demand, struct layouts from the DWARF the linker wrote
(`field_offset("runtime.debug", "malloc")`), so that fields of the runtime's
globals that `go_asm.h` does not list are found the way a debugger finds them.
"""

import bisect
import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from emu.errors import BadInput

PF_X, PF_W, PF_R = 1, 2, 4
DWARF_LAYOUT = 3            # bump when what _read_dwarf keeps changes (cache key)
# Compile units whose struct layouts and globals _dwarf_index keeps (the runtime's, and
# testing's for gomemu bench's *testing.B).
DWARF_PACKAGES = ("runtime", "internal/abi", "testing")


@dataclass(frozen=True)
class Segment:
    """One PT_LOAD: [vaddr, vaddr + memsz), the first len(data) bytes from the file."""
    vaddr: int
    memsz: int
    data: bytes
    prot: str          # "rx", "r" or "rw"

    @property
    def end(self):
        return self.vaddr + self.memsz


@dataclass(frozen=True)
class Symbol:
    name: str
    addr: int
    size: int
    kind: str          # "func" or "object"


class GoImage:
    """The ELF of a Go program (see the module docstring). Read-only; shared by machines."""

    def __init__(self, path, aliases=None):
        from elftools.common.exceptions import ELFError
        # {import path: name to show}: a main package linked into a test binary is named by
        # its import path there; its functions are shown (and found) as main.F.
        self.aliases = dict(aliases or {})
        from elftools.elf.elffile import ELFFile
        self.path = Path(path)
        try:
            self._raw = self.path.read_bytes()
        except OSError as e:
            raise BadInput(f"{path}: cannot read the program: {e.strerror or e}") from None
        import io
        self.digest = hashlib.sha256(self._raw).hexdigest()[:16]
        try:
            self._elf = ELFFile(io.BytesIO(self._raw))
            self._read(self._elf)
        except ELFError as e:
            raise BadInput(f"{path}: not a readable ELF file: {e}") from None
        self._pclntab = None
        self._starts = None

    def _read(self, elf):
        if elf["e_machine"] != "EM_X86_64" or elf["e_type"] != "ET_EXEC":
            raise BadInput(f"{self.path}: not a linux/amd64 executable linked at fixed addresses "
                           f"({elf['e_machine']}, {elf['e_type']}); build without -buildmode=pie")
        segs = []
        for seg in elf.iter_segments():
            if seg["p_type"] != "PT_LOAD":
                continue
            flags = seg["p_flags"]
            prot = "rx" if flags & PF_X else ("rw" if flags & PF_W else "r")
            segs.append(Segment(seg["p_vaddr"], seg["p_memsz"], seg.data(), prot))
        if not segs:
            raise BadInput(f"{self.path}: no loadable segments")
        self.segments = sorted(segs, key=lambda s: s.vaddr)
        symtab = elf.get_section_by_name(".symtab")
        if symtab is None:
            raise BadInput(f"{self.path}: no symbol table (built with -ldflags=-s?)")
        self.symbols = {}
        funcs = []
        for name, value, size, kind in self._symtab(symtab):
            if name in self.symbols:
                continue
            sym = Symbol(self.display(name), value, size, kind)
            self.symbols[name] = self.symbols[sym.name] = sym
            if kind == "func":
                funcs.append(sym)
        funcs.sort(key=lambda f: f.addr)
        self.funcs = funcs
        self._func_starts = [f.addr for f in funcs]
        text = elf.get_section_by_name(".text")
        self.text = (text["sh_addr"], text["sh_addr"] + text["sh_size"])
        self.sections = {s.name: (s["sh_addr"], s["sh_size"]) for s in elf.iter_sections() if s["sh_addr"]}

    def _symtab(self, symtab):
        """[(name, value, size, func|object)] of the symbol table; reading it with pyelftools
        takes about a second for a test binary, so it is kept per binary in the cache."""
        import json
        cached = cache_dir() / "symtab" / f"{self.digest}.json"
        try:
            return json.loads(cached.read_text())
        except (OSError, ValueError):
            pass
        out = []
        for s in symtab.iter_symbols():
            kind = {"STT_FUNC": "func", "STT_OBJECT": "object"}.get(s["st_info"]["type"])
            if s.name and kind is not None:
                out.append((s.name, s["st_value"], s["st_size"], kind))
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(out))
            os.replace(tmp, cached)
        except OSError:
            pass
        return out

    # ---- symbols ----------------------------------------------------------------------
    def display(self, name):
        """A linker (or type) name as gomemu shows it (see aliases)."""
        for path, shown in self.aliases.items():
            name = name.replace(path + ".", shown + ".")
        return name

    def address(self, name):
        """The address of a function or data symbol; ABI0-only assembly functions are
        found under their plain name too (`runtime.madvise` -> `runtime.madvise.abi0`)."""
        sym = self.symbols.get(name) or self.symbols.get(name + ".abi0")
        if sym is None:
            raise BadInput(f"{self.path.name}: no symbol {name}")
        return sym.addr

    def has(self, name):
        return name in self.symbols or name + ".abi0" in self.symbols

    def func_at(self, pc):
        """The function symbol whose code contains pc, or None."""
        i = bisect.bisect_right(self._func_starts, pc) - 1
        if i >= 0:
            f = self.funcs[i]
            if pc < f.addr + max(f.size, 1):
                return f
        return None

    def read(self, addr, n):
        """Bytes of the image as linked (bss reads as zero)."""
        for s in self.segments:
            if s.vaddr <= addr and addr + n <= s.end:
                off = addr - s.vaddr
                chunk = s.data[off:off + n]
                return chunk + bytes(n - len(chunk))
        raise BadInput(f"{self.path.name}: {addr:#x}+{n} is outside the program's segments")

    @property
    def end(self):
        return max(s.end for s in self.segments)

    def instruction_starts(self):
        """Addresses of every instruction of every function, decoded once (capstone, from the
        linked bytes): what the block counter's running instruction total counts."""
        if self._starts is None:
            import numpy as np
            cached = cache_dir() / "starts" / f"{self.digest}.npy"
            try:
                self._starts = np.load(cached)
                return self._starts
            except (OSError, ValueError):
                pass
            import capstone
            cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
            out = []
            for f in self.funcs:
                if f.size:
                    out.extend(a for a, _, _, _ in cs.disasm_lite(self.read(f.addr, f.size), f.addr))
            self._starts = np.asarray(out, dtype=np.int64)
            try:                      # decoding a program takes a second: kept per binary
                cached.parent.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_name(f"{self.digest}.{os.getpid()}.tmp.npy")
                np.save(tmp, self._starts)
                os.replace(tmp, cached)
            except OSError:
                pass
        return self._starts

    @property
    def pclntab(self):
        """The program's runtime symbol table (emu/pclntab.py), read on first use."""
        if self._pclntab is None:
            from emu.pclntab import Pclntab
            self._pclntab = Pclntab(self.path, self._raw)
        return self._pclntab

    def type_name(self, typ):
        """The name of the type descriptor at typ (internal/abi: Type.Str, a nameOff into the
        module's types; TFlagExtraStar drops its leading '*'), as %T prints it."""
        raw = self.read(typ, 48)
        tflag, off = raw[20], int.from_bytes(raw[40:44], "little", signed=True)
        at = self.pclntab.module.types + off
        head = self.read(at, 11)
        n, shift, i = 0, 0, 1
        while True:                               # the name's length: a uvarint after the flags byte
            b = head[i]
            n |= (b & 0x7F) << shift
            i += 1
            if b < 0x80:
                break
            shift += 7
        name = self.read(at + i, n).decode("utf-8", "replace")
        name = name[1:] if tflag & 2 and name.startswith("*") else name
        return self.display(name)

    def source(self, pc):
        """(file name, line, the line's text, inlined-into chain) of the Go code at pc,
        from the pclntab and the source files the program was built from; None outside Go."""
        try:
            frames = self.pclntab.inline_frames(pc)
        except BadInput:
            return None
        if not frames:
            return None
        inner = frames[0]
        text = source_line(inner.file, inner.line)
        chain = " <- ".join(f"{f.function.rsplit('.', 1)[-1]} ({os.path.basename(f.file)}:{f.line})"
                            for f in frames[1:])
        return os.path.basename(inner.file), inner.line, text, chain

    # ---- DWARF --------------------------------------------------------------------------
    def signature(self, func):
        """The parameters and results of a function of the program (a non-runtime package),
        from its DWARF subprogram entry."""
        want = {func} | {path + func[len(shown):] for path, shown in self.aliases.items()
                         if func.startswith(shown + ".")}
        pkg = func.rsplit(".", 1)[0] if "/" not in func else func[:func.index(".", func.rfind("/"))]
        cus = {pkg} | {path for path, shown in self.aliases.items() if shown == pkg}
        if not self._elf.has_dwarf_info():
            self._missing(func)
        for cu in self._elf.get_dwarf_info().iter_CUs():
            top = cu.get_top_DIE()
            if "DW_AT_name" not in top.attributes or top.attributes["DW_AT_name"].value.decode() not in cus:
                continue
            subs = [d for d in top.iter_children() if d.tag == "DW_TAG_subprogram"]
            for die in subs:
                if "DW_AT_name" not in die.attributes or die.attributes["DW_AT_name"].value.decode() not in want:
                    continue
                if "DW_AT_inline" in die.attributes:
                    # An abstract entry (the function is also inlined, e.g. into itself): the
                    # out-of-line instance refers to it and lists what it lacks (unnamed results).
                    die = next((d for d in subs if "DW_AT_abstract_origin" in d.attributes
                                and d.get_DIE_from_attribute("DW_AT_abstract_origin").offset == die.offset), die)
                params, results = [], []
                for c in die.iter_children():
                    if c.tag != "DW_TAG_formal_parameter":
                        continue
                    if "DW_AT_abstract_origin" in c.attributes:
                        c = c.get_DIE_from_attribute("DW_AT_abstract_origin")
                    if "DW_AT_type" not in c.attributes:
                        continue
                    t = c.get_DIE_from_attribute("DW_AT_type")
                    tname, kind = _param_kind(t)
                    size = t.attributes["DW_AT_byte_size"].value if "DW_AT_byte_size" in t.attributes else 8
                    rt = t.attributes.get(DW_AT_GO_RUNTIME_TYPE)
                    p = Param(c.attributes["DW_AT_name"].value.decode(), self.display(tname), kind, size,
                              self.pclntab.module.types + rt.value if rt is not None else 0)
                    is_result = "DW_AT_variable_parameter" in c.attributes and c.attributes["DW_AT_variable_parameter"].value
                    (results if is_result else params).append(p)
                return Signature(tuple(params), tuple(results))
        raise BadInput(f"{self.path.name}: no function {func} with debug information in the program")

    def field_offset(self, var, field):
        """Byte offset of `field` in the type of global `var` (from DWARF)."""
        fields = self._var_fields(var)
        if field not in fields:
            raise BadInput(f"{self.path.name}: {var} has no field {field}")
        return fields[field]

    def struct_fields(self, type_name):
        """{field: offset} of a named struct type (e.g. `runtime.mspan`), from DWARF."""
        return dict(self._dwarf_types().get(type_name) or self._missing(type_name))

    def _missing(self, what):
        raise BadInput(f"{self.path.name}: no DWARF description of {what} (built with -ldflags=-w?)")

    @lru_cache(maxsize=None)
    def _var_fields(self, var):
        types, variables = self._dwarf_index()
        if var not in variables:
            self._missing(var)
        return variables[var]

    def _dwarf_types(self):
        return self._dwarf_index()[0]

    @lru_cache(maxsize=None)
    def _dwarf_index(self):
        """Named struct types and global variables of the runtime's compile units; read
        once per program (reading DWARF takes a second or two) and kept in the cache."""
        import json
        cached = cache_dir() / "dwarf" / f"{self.digest}-{DWARF_LAYOUT}.json"
        try:
            data = json.loads(cached.read_text())
            return data["types"], data["variables"]
        except (OSError, ValueError, KeyError):
            pass
        types, variables = self._read_dwarf()
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"types": types, "variables": variables}))
            os.replace(tmp, cached)
        except OSError:
            pass                      # an unwritable cache only costs time
        return types, variables

    def _read_dwarf(self):
        if not self._elf.has_dwarf_info():
            self._missing("any type")
        dwarf = self._elf.get_dwarf_info()
        types, variables = {}, {}

        def members(die, prefix="", base=0, depth=0):
            """{field: offset}, with the fields of struct-typed fields as `outer.inner`."""
            out = {}
            for m in die.iter_children():
                if m.tag != "DW_TAG_member" or "DW_AT_data_member_location" not in m.attributes:
                    continue
                name = prefix + m.attributes["DW_AT_name"].value.decode().rsplit(".", 1)[-1]
                off = base + m.attributes["DW_AT_data_member_location"].value
                out[name] = off
                t = m.get_DIE_from_attribute("DW_AT_type") if "DW_AT_type" in m.attributes else None
                while t is not None and t.tag == "DW_TAG_typedef" and "DW_AT_type" in t.attributes:
                    t = t.get_DIE_from_attribute("DW_AT_type")
                if t is not None and t.tag == "DW_TAG_structure_type" and depth < 3:
                    inner = members(t, name + ".", off, depth + 1)
                    inner.pop("__size__", None)
                    out.update(inner)
            if "DW_AT_byte_size" in die.attributes and not prefix:
                out["__size__"] = die.attributes["DW_AT_byte_size"].value
            return out

        for cu in dwarf.iter_CUs():
            top = cu.get_top_DIE()
            name = top.attributes.get("DW_AT_name")
            if name is None or name.value.decode() not in DWARF_PACKAGES:
                continue
            for die in top.iter_children():
                nm = die.attributes.get("DW_AT_name")
                if nm is None:
                    continue
                if die.tag == "DW_TAG_structure_type":
                    types[nm.value.decode()] = members(die)
                elif die.tag == "DW_TAG_variable" and "DW_AT_type" in die.attributes:
                    t = die.get_DIE_from_attribute("DW_AT_type")
                    while t.tag == "DW_TAG_typedef" and "DW_AT_type" in t.attributes:
                        t = t.get_DIE_from_attribute("DW_AT_type")
                    if t.tag == "DW_TAG_structure_type":
                        variables[nm.value.decode()] = members(t)
        return types, variables


@lru_cache(maxsize=64)
def _source_file(path):
    try:
        return Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return None


def source_line(path, line):
    """The text of line `line` of a Go source file (stripped), or "" when unreadable."""
    lines = _source_file(path)
    return lines[line - 1].strip() if lines and 0 < line <= len(lines) else ""


@dataclass(frozen=True)
class Param:
    """A parameter or result of a Go function, from DWARF."""
    name: str
    type: str          # as Go spells it: int, *main.T, []int, string
    kind: str          # int, uint, bool, float, pointer, string, slice, interface, struct, other
    size: int
    rtype: int = 0     # the address of its runtime type descriptor (0: DWARF does not say)

    @property
    def words(self):
        """Integer registers the value takes under ABIInternal (0: not passed in integer registers)."""
        return {"int": 1, "uint": 1, "bool": 1, "pointer": 1, "string": 2, "slice": 3, "interface": 2}.get(self.kind, 0)


@dataclass(frozen=True)
class Signature:
    params: tuple
    results: tuple


# cmd/internal/dwarf: DW_AT_go_runtime_type, the type descriptor's offset from moduledata.types.
DW_AT_GO_RUNTIME_TYPE = 0x2904
_DW_ATE = {2: "bool", 4: "float", 5: "int", 7: "uint", 8: "uint"}     # DW_ATE_boolean, float, signed, unsigned, unsigned_char


def _param_kind(t):
    tag = t.tag
    name = t.attributes["DW_AT_name"].value.decode() if "DW_AT_name" in t.attributes else ""
    if tag == "DW_TAG_base_type":
        kind = _DW_ATE.get(t.attributes["DW_AT_encoding"].value, "other") if "DW_AT_encoding" in t.attributes else "other"
        if name in ("uintptr", "unsafe.Pointer"):
            kind = "uint" if name == "uintptr" else "pointer"
        return name, kind
    if tag in ("DW_TAG_pointer_type", "DW_TAG_subroutine_type"):
        return name, "pointer"
    if tag == "DW_TAG_typedef":
        under = t.get_DIE_from_attribute("DW_AT_type")
        inner_name, kind = _param_kind(under)
        if kind == "struct" and (name.startswith("map[") or name.startswith("chan ")):
            kind = "pointer"
        elif kind == "struct" and (name.startswith("interface {") or inner_name in ("runtime.eface", "runtime.iface")):
            kind = "interface"
        return name or inner_name, kind
    if tag == "DW_TAG_structure_type":
        if name == "string":
            return name, "string"
        if name.startswith("[]"):
            return name, "slice"
        return name, "struct"
    if tag == "DW_TAG_interface_type" or name.startswith("interface {") or name == "error":
        return name, "interface"
    return name, "other"


_IMAGES = {}


def load_image(path, aliases=None):
    """A GoImage, read once per file content for the whole process."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as e:
        raise BadInput(f"{path}: cannot read the program: {e.strerror or e}") from None
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size, tuple(sorted((aliases or {}).items())))
    img = _IMAGES.get(key)
    if img is None:
        img = _IMAGES[key] = GoImage(path, aliases)
    return img


def cache_dir():
    """gomemu's directory in the user's cache (XDG_CACHE_HOME or ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gomemu"


class ImageText:
    """The text of a loaded program as counting, stepping and where() see it: the same
    interface as asm.assembler.Program, computed lazily from the bytes in memory (which
    may be patched: call-out jumps) and the image's symbols. Instructions are decoded
    per function on first use and cached."""

    def __init__(self, image, read):
        self.image = image
        self.base, self.end = image.text
        self._read = read                # read(addr, n) -> the bytes the machine runs
        self._funcs = {}                 # entry -> (starts, [(size, disassembly)])
        self._acc = {}                   # entry -> prefix sums of (reads, writes)
        self.labels = {}
        self.symbols = {f.name: f.addr for f in image.funcs}

    def _decoded(self, f):
        """(instruction starts, [(size, disassembly)]) of a function, decoded once."""
        d = self._funcs.get(f.addr)
        if d is None:
            import capstone
            code = self._read(f.addr, f.size)
            cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
            starts, ins = [], []
            for a, size, mn, ops in cs.disasm_lite(code, f.addr):
                starts.append(a)
                ins.append((size, f"{mn} {ops}".strip()))
            d = self._funcs[f.addr] = (starts, ins)
        return d

    def _accesses(self, f):
        """Prefix sums of (reads, writes) over a function's instructions (capstone detail:
        slower, so only for what reports ask)."""
        acc = self._acc.get(f.addr)
        if acc is None:
            from asm.assembler import memory_accesses
            starts, ins = self._decoded(f)
            acc = [(0, 0)]
            for a, (size, _) in zip(starts, ins):
                r, w = memory_accesses(self._read(a, size), a)
                acc.append((acc[-1][0] + r, acc[-1][1] + w))
            self._acc[f.addr] = acc
        return acc

    def _span(self, start, end):
        f = self.image.func_at(start)
        if f is None:
            return None, 0, 0
        starts = self._decoded(f)[0]
        return f, bisect.bisect_left(starts, start), bisect.bisect_left(starts, end)

    def instructions_in(self, start, end):
        f, i, j = self._span(start, end)
        return j - i

    def block_accesses(self, start, end):
        f, i, j = self._span(start, end)
        if f is None:
            return 0, 0
        acc = self._accesses(f)
        return acc[j][0] - acc[i][0], acc[j][1] - acc[i][1]

    def routine_at(self, addr):
        f = self.image.func_at(addr)
        return f.name if f else None

    def where(self, addr):
        f = self.image.func_at(addr)
        return f"{f.name}+{addr - f.addr:#x}" if f else f"{addr:#x}"

    def entry_at(self, addr):
        from asm.assembler import ListingEntry
        f = self.image.func_at(addr)
        if f is None:
            return None
        starts, ins = self._decoded(f)
        i = bisect.bisect_left(starts, addr)
        if i == len(starts) or starts[i] != addr:
            return None
        acc = self._accesses(f)
        size, dis = ins[i]
        path, line, text, chain = self.image.source(addr) or ("", 0, "", "")
        r, w = acc[i + 1][0] - acc[i][0], acc[i + 1][1] - acc[i][1]
        models = f"{path}:{line}  {text}" + (f"   (inlined into {chain})" if chain else "") if path else ""
        return ListingEntry(addr, self._read(addr, size), f.name, path, line, text, models, dis, r, w)

