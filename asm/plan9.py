"""Front-end for Go's (Plan 9 style) amd64 assembler syntax.

Parses one line of Go assembly, as written in `src/runtime/*.s` or printed by
`go build -gcflags=-S`, into an `Insn`: an Intel-syntax template for keystone
plus the symbolic references (labels, `sym(SB)`) that the assembler resolves
once addresses are known. Only forms this module recognises reach keystone,
because keystone aborts the whole process on some malformed operands.

Conventions carried over from Go's assembler (cmd/asm, cmd/internal/obj/x86):
- operands are `source, destination`; CMP keeps Intel's order;
- the size is in the mnemonic suffix (Q 64, L 32, W 16, B 8);
- `off(BASE)(INDEX*SCALE)` is memory, `sym+off(SB)` a RIP-relative symbol
  (off a number or, after `+`, a constant such as `mheap_arenas`),
  `$x` an immediate, `$sym(SB)` the address of a symbol;
- `(TLS)` is the goroutine pointer slot, -8(FS) on linux/amd64.
Simplification: `name+off(SP)` is read as the hardware SP (what -S listings
print); handwritten pseudo-SP offsets are not modelled. Every number is
emitted in hex because keystone's radix handling is unreliable.
"""

import re
from dataclasses import dataclass, field

from emu.errors import AssemblyError

_GPR64 = {"AX": "rax", "BX": "rbx", "CX": "rcx", "DX": "rdx", "SI": "rsi", "DI": "rdi",
          "BP": "rbp", "SP": "rsp", **{f"R{i}": f"r{i}" for i in range(8, 16)}}
_GPR32 = {"AX": "eax", "BX": "ebx", "CX": "ecx", "DX": "edx", "SI": "esi", "DI": "edi",
          "BP": "ebp", "SP": "esp", **{f"R{i}": f"r{i}d" for i in range(8, 16)}}
_GPR16 = {"AX": "ax", "BX": "bx", "CX": "cx", "DX": "dx", "SI": "si", "DI": "di",
          "BP": "bp", "SP": "sp", **{f"R{i}": f"r{i}w" for i in range(8, 16)}}
_GPR8 = {"AX": "al", "BX": "bl", "CX": "cl", "DX": "dl", "SI": "sil", "DI": "dil",
         "BP": "bpl", "SP": "spl", **{f"R{i}": f"r{i}b" for i in range(8, 16)}}
_BY_WIDTH = {64: _GPR64, 32: _GPR32, 16: _GPR16, 8: _GPR8}
_XREG = {f"X{i}": f"xmm{i}" for i in range(16)}
# Go's names for byte registers (cmd/asm: AL, BL, ..., SIB, R8B): aliases of the full register.
_BYTE_ALIAS = {"AL": "AX", "BL": "BX", "CL": "CX", "DL": "DX", "SIB": "SI", "DIB": "DI", "BPB": "BP",
               "SPB": "SP", **{f"R{i}B": f"R{i}" for i in range(8, 16)}}
_PTR = {8: "byte", 16: "word", 32: "dword", 64: "qword", 128: "xmmword"}

# Conditional jumps: Go name -> Intel (cmd/internal/obj/x86 anames; JZ/JNZ are aliases).
_JCC = {"JEQ": "je", "JZ": "je", "JNE": "jne", "JNZ": "jne", "JLS": "jbe", "JHI": "ja",
        "JCS": "jb", "JLO": "jb", "JCC": "jae", "JHS": "jae", "JLT": "jl", "JGE": "jge",
        "JLE": "jle", "JGT": "jg", "JMI": "js", "JPL": "jns", "JOS": "jo", "JOC": "jno",
        "JPS": "jp", "JPC": "jnp"}
# cmd/asm/internal/arch: the Intel-style spellings Go's assembler also accepts.
for _alias, _go in {"JA": "JHI", "JAE": "JCC", "JB": "JCS", "JBE": "JLS", "JC": "JCS", "JE": "JEQ",
                    "JG": "JGT", "JL": "JLT", "JNA": "JLS", "JNAE": "JCS", "JNB": "JCC", "JNBE": "JHI",
                    "JNC": "JCC", "JNG": "JLE", "JNGE": "JLT", "JNL": "JGE", "JNLE": "JGT", "JNO": "JOC",
                    "JNP": "JPC", "JNS": "JPL", "JO": "JOS", "JP": "JPS", "JPE": "JPS", "JPO": "JPC",
                    "JS": "JMI"}.items():
    _JCC[_alias] = _JCC[_go]

# Two-operand integer ops with a size suffix, Intel mnemonic, and whether Go keeps
# Intel's operand order (CMP) instead of reversing it.
_ALU = {"MOV": ("mov", False), "ADD": ("add", False), "SUB": ("sub", False), "AND": ("and", False),
        "OR": ("or", False), "XOR": ("xor", False), "CMP": ("cmp", True), "TEST": ("test", False),
        "LEA": ("lea", False), "ADC": ("adc", False), "SBB": ("sbb", False), "XCHG": ("xchg", False),
        "SHL": ("shl", False), "SHR": ("shr", False), "SAR": ("sar", False), "ROL": ("rol", False),
        "ROR": ("ror", False), "IMUL": ("imul", False), "BSF": ("bsf", False), "BSR": ("bsr", False),
        "TZCNT": ("tzcnt", False), "LZCNT": ("lzcnt", False), "POPCNT": ("popcnt", False),
        "BT": ("bt", False), "BTS": ("bts", False), "BTR": ("btr", False), "CMPXCHG": ("cmpxchg", False),
        "XADD": ("xadd", False), "ANDN": ("andn", False)}
_UNARY = {"INC": "inc", "DEC": "dec", "NEG": "neg", "NOT": "not", "PUSH": "push", "POP": "pop",
          "MUL": "mul", "DIV": "div"}
_SUFFIX = {"Q": 64, "L": 32, "W": 16, "B": 8}
# Moves with extension: Go name -> (Intel mnemonic, source width, destination width).
_MOVX = {"MOVBLZX": ("movzx", 8, 32), "MOVBQZX": ("movzx", 8, 64), "MOVWLZX": ("movzx", 16, 32),
         "MOVWQZX": ("movzx", 16, 64), "MOVLQZX": ("mov", 32, 32), "MOVBLSX": ("movsx", 8, 32),
         "MOVBQSX": ("movsx", 8, 64), "MOVWLSX": ("movsx", 16, 32), "MOVWQSX": ("movsx", 16, 64),
         "MOVLQSX": ("movsxd", 32, 64)}
# SSE moves Go's runtime uses for zeroing and copying (memclr_amd64.s).
_SSE = {"MOVOU": "movdqu", "MOVO": "movdqa", "MOVUPS": "movups", "PXOR": "pxor", "XORPS": "xorps"}
_NOOPERAND = {"RET": "ret", "SYSCALL": "syscall", "HLT": "hlt", "NOPL": "nop", "CQO": "cqo",
              "CLD": "cld", "STOSQ": "stosq", "MOVSQ": "movsq", "PAUSE": "pause", "UD2": "ud2",
              "MFENCE": "mfence", "LFENCE": "lfence", "SFENCE": "sfence", "INT3": "int3",
              "RDTSC": "rdtsc", "RDTSCP": "rdtscp"}
_PREFIXES = {"REP": "rep", "LOCK": "lock"}
# Pseudo-instructions of cmd/asm and -S listings that emit no bytes here.
# NOP is Go's zero-length pseudo-instruction (a real one-byte nop is NOPL).
_PSEUDO = {"PCDATA", "FUNCDATA", "NO_LOCAL_POINTERS", "GLOBL", "DATA", "ABIInternal", "NOP"}

# `sym+off(SB)`: off a number, or after `+` a constant (`runtime·mheap_+mheap_arenas(SB)`)
_SYM_OFF = r"(?:(?P<off>[+-][0-9a-fA-Fx]+|\+[A-Za-z_]\w*))?"
_SYMREF = re.compile(r"^(?P<sym>[^\s+$]+?)(?:<>)?" + _SYM_OFF + r"\(SB\)$")
_SYMIDX = re.compile(r"^(?P<sym>[^\s+$]+?)(?:<>)?" + _SYM_OFF + r"\(SB\)\((?P<idx>[A-Z0-9]+)\*(?P<scale>[1248])\)$")
_MEM = re.compile(r"^(?P<off>.*?)\((?P<base>[A-Z0-9]+)\)(?:\((?P<idx>[A-Z0-9]+)\*(?P<scale>[1248])\))?$")
_LISTING = re.compile(r"^\s*0x[0-9a-f]{4,}\s+(?P<pc>\d{5,})\s+\((?P<pos>[^)]*)\)\s+(?P<text>.*)$")
_LISTING_NOISE = re.compile(r"^\s*(0x[0-9a-f]{4,}(\s+[0-9a-f]{2})+.*|rel\s.*|\S+ STEXT .*)$")


def normalize_symbol(name):
    """Go's assembler writes `runtime·f`; listings and the linker write `runtime.f`."""
    return name.replace("·", ".").replace("∕", "/")


_EXPR_TOKEN = re.compile(r"\s*(?:(0x[0-9a-fA-F]+|\d+)|([A-Za-z_][\w]*)|(<<|>>|[-+*/&|^~()]))")


def parse_int(text, where="constant", consts=None):
    """Evaluate an integer expression: numbers, names from `consts` (go_asm.h
    style, e.g. `mspan_allocCache`), + - * / << >> & | ^ ~ and parentheses."""
    src = text.strip()
    toks, pos = [], 0
    while pos < len(src):
        m = _EXPR_TOKEN.match(src, pos)
        if not m or m.end() == pos:
            raise ValueError(f"bad {where} {text!r}")
        num, name, op = m.groups()
        if num:
            toks.append(str(int(num, 0)))
        elif name:
            if not consts or name not in consts:
                raise ValueError(f"unknown constant {name!r} in {where} {text!r}")
            toks.append(str(consts[name]))
        else:
            toks.append("//" if op == "/" else op)
        pos = m.end()
    if not toks:
        raise ValueError(f"empty {where}")
    try:
        # Only digits and operators reach eval, and no names or calls.
        return int(eval(" ".join(toks), {"__builtins__": {}}, {}))
    except Exception:
        raise ValueError(f"bad {where} {text!r}") from None


def hexnum(v):
    return f"-0x{-v:x}" if v < 0 else f"0x{v:x}"


@dataclass
class SymRef:
    """A reference the assembler resolves: a label, a routine, or a data symbol."""
    name: str
    addend: int = 0
    absolute: bool = False     # an absolute disp32 (indexed table) instead of RIP-relative


@dataclass
class Insn:
    """One machine instruction parsed from a source line.

    `template` is Intel syntax with `{rip}` where a RIP-relative displacement
    goes, `{abs}` where an absolute disp32 goes, `{addr}` for a symbol's
    address as an immediate, and `{target}` for an absolute branch target.
    """
    template: str
    mnemonic: str              # the Go mnemonic as written (for messages and checks)
    rip_ref: SymRef | None = None
    target: SymRef | None = None
    listing_pc: int | None = None   # byte offset printed by -gcflags=-S, if the line came from one


@dataclass
class Line:
    """The parsed content of one source line."""
    label: str | None = None
    insn: Insn | None = None
    text_symbol: str | None = None       # `TEXT sym(SB), flags, $frame-args` opens a routine
    frame_size: int = 0
    comment: str = ""
    listing_pc: int | None = None
    listing_pos: str | None = None       # file:line the compiler attributes the instruction to
    extra: dict = field(default_factory=dict)


class _Ctx:
    def __init__(self, frame_size, consts, listing=False):
        self.frame_size = frame_size
        self.consts = consts or {}
        self.listing = listing      # a -S listing line: its (FP) offsets are from the hardware SP


def _reg(name, width):
    if name in _XREG and width == 128:
        return _XREG[name]
    table = _BY_WIDTH.get(width)
    if table is None or name not in table:
        raise ValueError(f"register {name} cannot be used as a {width}-bit operand")
    return table[name]


def _operand(op, width, ctx, *, allow_mem=True):
    """Translate one operand. Returns (intel_text, rip_ref, kind)."""
    op = op.strip()
    if op.startswith("$"):
        body = op[1:]
        m = _SYMREF.match(body)
        if m:
            return "{addr}", SymRef(normalize_symbol(m.group("sym")), parse_int(m.group("off") or "0", "offset", ctx.consts)), "addr"
        return hexnum(parse_int(body, "immediate", ctx.consts)), None, "imm"
    if op in _BYTE_ALIAS:
        if width != 8:
            raise ValueError(f"byte register {op} used as a {width}-bit operand")
        return _GPR8[_BYTE_ALIAS[op]], None, "reg"
    if op in _GPR64 or op in _XREG:
        return _reg(op, 128 if op in _XREG else width), None, "reg"
    if op == "(TLS)":   # linux/amd64: g lives at -8(FS)
        return f"{_PTR[width]} ptr fs:[0xfffffffffffffff8]", None, "mem"
    if not allow_mem:
        raise ValueError(f"operand {op!r} must be a register or immediate")
    m = _SYMREF.match(op)
    if m:
        ref = SymRef(normalize_symbol(m.group("sym")), parse_int(m.group("off") or "0", "offset", ctx.consts))
        return f"{_PTR[width]} ptr [rip + {{rip}}]", ref, "mem"
    m = _SYMIDX.match(op)
    if m:   # a table indexed by a register: absolute disp32, as Go links non-PIE code
        if m.group("idx") not in _GPR64:
            raise ValueError(f"bad index register {m.group('idx')!r}")
        ref = SymRef(normalize_symbol(m.group("sym")), parse_int(m.group("off") or "0", "offset", ctx.consts), absolute=True)
        idx = f"{_GPR64[m.group('idx')]}*0x{int(m.group('scale')):x}"
        return f"{_PTR[width]} ptr [{idx} + {{abs}}]", ref, "mem"
    m = _MEM.match(op)
    if m:
        base, off = m.group("base"), m.group("off").strip()
        disp = 0
        if off:
            # `name+off(SP)` / `name-off(FP)`: a name that is not a constant is documentation.
            om = re.fullmatch(r"([A-Za-z_.·∕/][\w.·∕/<>]*)([+-].*)?", off)
            if om and base in ("SP", "FP") and om.group(1) not in ctx.consts:
                disp = parse_int(om.group(2), "offset", ctx.consts) if om.group(2) else 0
            else:
                disp = parse_int(off, "offset", ctx.consts)
        if base == "FP":    # caller's SP: our frame plus the return address (listings: already resolved)
            return f"{_PTR[width]} ptr [rsp + {hexnum(disp if ctx.listing else disp + ctx.frame_size + 8)}]", None, "mem"
        if base == "FS":
            return f"{_PTR[width]} ptr fs:[{hexnum(disp & (2**64 - 1))}]", None, "mem"
        if base not in _GPR64:
            raise ValueError(f"bad base register {base!r}")
        parts = [_GPR64[base]]
        if m.group("idx"):
            idx = m.group("idx")
            if idx not in _GPR64:
                raise ValueError(f"bad index register {idx!r}")
            parts.append(f"{_GPR64[idx]}*0x{int(m.group('scale')):x}")
        addr = " + ".join(parts)
        if disp:
            addr += f" + {hexnum(disp)}" if disp > 0 else f" - {hexnum(-disp)}"
        return f"{_PTR[width]} ptr [{addr}]", None, "mem"
    raise ValueError(f"cannot parse operand {op!r}")


def _split_operands(text):
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def _branch_target(op):
    op = op.strip()
    m = _SYMREF.match(op)
    if m:
        return SymRef(normalize_symbol(m.group("sym")), parse_int(m.group("off") or "0", "offset"))
    if re.fullmatch(r"\d+", op):          # -S listings print targets as pc offsets
        return SymRef(f".pc{int(op)}")
    if re.fullmatch(r"[A-Za-z_.][\w.]*", op):
        return SymRef(op)
    raise ValueError(f"bad branch target {op!r}")


def _check_imm(mn, text, width, imm64_ok):
    """An immediate (`text`, as emitted for keystone) must fit its operand as Go's
    assembler requires: the operand's width, and at most a sign-extended 32 bits except
    for MOVQ $imm64, reg. keystone would silently truncate the rest."""
    v = int(text, 16)
    bits = width if width < 64 or imm64_ok else 32
    lo, hi = -(1 << (bits - 1)), 1 << bits
    if bits == 32 and width == 64:
        hi = 1 << 31                  # sign-extended: 0x80000000 would turn negative
    if not lo <= v < hi:
        raise ValueError(f"immediate {v:#x} does not fit {mn}'s {bits}-bit operand")


def _translate(mn, ops, ctx):
    """Plan 9 mnemonic + operands -> Insn."""
    def one(o, w, **kw):
        return _operand(o, w, ctx, **kw)

    if mn in _NOOPERAND and not ops:
        return Insn(_NOOPERAND[mn], mn)
    if mn == "INT" and len(ops) == 1:
        return Insn(f"int {hexnum(parse_int(ops[0].lstrip('$'), 'immediate', ctx.consts))}", mn)
    if mn in ("CALL", "JMP") or mn in _JCC:
        if len(ops) != 1:
            raise ValueError(f"{mn} takes one operand")
        intel = {"CALL": "call", "JMP": "jmp"}.get(mn) or _JCC[mn]
        if mn in ("CALL", "JMP") and not _SYMREF.match(ops[0]) and (ops[0] in _GPR64 or _MEM.match(ops[0])):
            text, _, _ = one(ops[0], 64)
            return Insn(f"{intel} {text}", mn)
        return Insn(f"{intel} {{target}}", mn, target=_branch_target(ops[0]))
    if mn in _MOVX:
        if len(ops) != 2:
            raise ValueError(f"{mn} takes two operands")
        intel, sw, dw = _MOVX[mn]
        src, ref, _ = one(ops[0], sw)
        dst, _, kind = one(ops[1], dw)
        if kind != "reg":
            raise ValueError(f"{mn} needs a register destination")
        return Insn(f"{intel} {dst}, {src}", mn, rip_ref=ref)
    if mn in _SSE:
        if len(ops) != 2:
            raise ValueError(f"{mn} takes two operands")
        src, r1, _ = one(ops[0], 128)
        dst, r2, _ = one(ops[1], 128)
        return Insn(f"{_SSE[mn]} {dst}, {src}", mn, rip_ref=r1 or r2)
    if mn == "MOVQ" and len(ops) == 2 and (ops[0] in _XREG or ops[1] in _XREG):
        a, r1, _ = one(ops[0], 128 if ops[0] in _XREG else 64)
        b, r2, _ = one(ops[1], 128 if ops[1] in _XREG else 64)
        return Insn(f"movq {b}, {a}", mn, rip_ref=r1 or r2)
    if mn.startswith("CMOV") and len(mn) > 5 and mn[4] in _SUFFIX:     # CMOVQEQ src, dst
        width, cond = _SUFFIX[mn[4]], _JCC.get("J" + mn[5:])
        if cond is None or len(ops) != 2:
            raise ValueError(f"bad conditional move {mn}")
        src, ref, _ = one(ops[0], width)
        dst, _, _ = one(ops[1], width, allow_mem=False)
        return Insn(f"cmov{cond[1:]} {dst}, {src}", mn, rip_ref=ref)
    base, width = mn[:-1], _SUFFIX.get(mn[-1])
    if mn == "IMUL3Q" or mn == "IMUL3L":
        width = 64 if mn.endswith("Q") else 32
        imm, _, _ = one(ops[0], width)
        src, ref, _ = one(ops[1], width)
        dst, _, _ = one(ops[2], width, allow_mem=False)
        return Insn(f"imul {dst}, {src}, {imm}", mn, rip_ref=ref)
    if width and base in _UNARY and len(ops) == 1:
        text, ref, kind = one(ops[0], width)
        if kind == "imm":
            _check_imm(mn, text, width, False)
        return Insn(f"{_UNARY[base]} {text}", mn, rip_ref=ref)
    if width and base in _ALU and len(ops) == 2:
        intel, keep = _ALU[base]
        if base in ("SHL", "SHR", "SAR", "ROL", "ROR") and ops[0] == "CX":
            src, ref1 = "cl", None
        else:
            src, ref1, kind = one(ops[0], width)
            if kind == "addr":
                if base not in ("MOV", "LEA"):
                    raise ValueError(f"{mn} cannot take a symbol address")
                intel, src, ref1 = "lea", f"{_PTR[width]} ptr [rip + {{rip}}]", ref1
        dst, ref2, dkind = one(ops[1], width)
        for imm in (src, dst):
            if imm.startswith(("0x", "-0x")):
                _check_imm(mn, imm, width, base == "MOV" and dkind == "reg")
        if base == "LEA":
            src = src.split(" ptr ", 1)[-1]
        if intel == "lea" and base == "MOV":
            src = src.split(" ptr ", 1)[-1]
        if ref1 and ref2:
            raise ValueError("at most one symbol reference per instruction")
        a, b = (src, dst) if keep else (dst, src)
        return Insn(f"{intel} {a}, {b}", mn, rip_ref=ref1 or ref2)
    if width and base in _ALU and len(ops) == 3 and base == "ANDN":
        s1, _, _ = one(ops[0], width)
        s2, _, _ = one(ops[1], width)
        d, _, _ = one(ops[2], width, allow_mem=False)
        return Insn(f"andn {d}, {s2}, {s1}", mn)
    raise ValueError(f"unsupported instruction {mn} {', '.join(ops)}".strip())


def parse_line(raw, frame_size=0, consts=None):
    """Parse one line of Go assembly (handwritten or from a -S listing) into a `Line`.

    Raises ValueError with a short reason; the assembler adds file and line.
    """
    line = Line()
    text = raw.rstrip("\n")
    m = _LISTING.match(text)
    if m:
        line.listing_pc, line.listing_pos = int(m.group("pc")), m.group("pos")
        text = m.group("text")
    elif _LISTING_NOISE.match(text):
        return line
    if "//" in text:
        text, line.comment = text.split("//", 1)
        line.comment = line.comment.strip()
    text = text.strip()
    if text.endswith(";"):
        text = text[:-1].strip()
    lm = re.match(r"^([A-Za-z_][\w.]*):\s*(.*)$", text)
    if lm:
        line.label, text = lm.group(1), lm.group(2).strip()
    if not text:
        return line
    parts = text.split(None, 1)
    mn = parts[0].rstrip(";").upper()
    rest = parts[1].strip() if len(parts) > 1 else ""
    if mn == "TEXT":
        ops = _split_operands(rest)
        sm = _SYMREF.match(ops[0]) if ops else None
        if not sm:
            raise ValueError(f"bad TEXT directive {text!r}")
        line.text_symbol = normalize_symbol(sm.group("sym"))
        fm = re.search(r"\$(-?(?:0x[0-9a-fA-F]+|\d+))", rest)
        line.frame_size = int(fm.group(1), 0) if fm else 0
        return line
    if mn in _PSEUDO:
        return line
    prefix = ""
    if mn in _PREFIXES:   # `REP; STOSQ` or `LOCK CMPXCHGQ ...`
        prefix = _PREFIXES[mn] + " "
        rest = rest.lstrip(";").strip()
        parts = rest.split(None, 1)
        if not parts:
            raise ValueError(f"{mn} needs an instruction")
        mn = parts[0].upper()
        rest = parts[1].strip() if len(parts) > 1 else ""
    ops = _split_operands(rest)
    if mn == "XCHGL" and ops == ["AX", "AX"]:     # Go's one-byte NOP (0x90), e.g. after a call that never returns
        mn, ops = "NOPL", []
    insn = _translate(mn, ops, _Ctx(frame_size, consts, listing=line.listing_pc is not None))
    insn.template = prefix + insn.template
    insn.mnemonic = (prefix.upper() + mn) if prefix else mn
    insn.listing_pc = line.listing_pc
    line.insn = insn
    return line


_DEFINE = re.compile(r"^\s*#define\s+([A-Za-z_]\w*)(?:\(([^)]*)\))?\s*(.*)$")


_INCLUDE = re.compile(r'^\s*#include\s+"([^"]+)"\s*$')
# Headers every Go .s file includes; their contents are built in (constants, TEXT flags).
_BUILTIN_HEADERS = {"go_asm.h", "textflag.h", "funcdata.h", "asm_amd64.h"}


def _includes(text, path, include, depth=0):
    out = []
    for no, ln in enumerate(text.splitlines(), 1):
        m = _INCLUDE.match(ln)
        if not m:
            out.append(ln)
            continue
        if m.group(1) in _BUILTIN_HEADERS:
            out.append("")
            continue
        if include is None or depth > 8:
            raise AssemblyError(f"{path}:{no}: cannot include {m.group(1)!r}")
        body = include(m.group(1))
        if body is None:
            raise AssemblyError(f"{path}:{no}: no header {m.group(1)!r}")
        # Keep line numbers of the including file: the header's lines collapse onto this one.
        out.append("\x00".join(_includes(body, m.group(1), include, depth + 1)))
    return out


_COND = re.compile(r"^\s*#(ifdef|ifndef|else|endif)\b\s*(.*?)\s*(//.*)?$")


def expand_macros(text, path="<text>", include=None, consts=None):
    """Go assembler's `#define NAME(a, b) body` (cpp-style), line by line.

    A body continues over lines ending in `\\`; each physical line of the body
    becomes one line where the macro is used, keeping its own comment. A use
    is a whole statement: `NAME(x, y)` alone on a line. Returns
    [(lineno, text)], each expanded line carrying its use's line number.

    `#ifdef NAME` / `#ifndef NAME` / `#else` / `#endif` keep or drop the lines
    between them (nesting allowed); NAME is defined if a `#define` above made
    it or `consts` has it with a non-zero value (how a machine option reaches
    the sources). Dropped lines and directives leave blank lines behind.
    """
    lines = [ln.split("\x00") for ln in _includes(text, path, include)]
    lines, numbers = [x for grp in lines for x in grp], [i + 1 for i, grp in enumerate(lines) for _ in grp]
    consts = consts or {}
    macros, out, i = {}, [], 0
    conds = []      # per open #if: [this branch taken, an #else seen, enclosing branches taken]
    while i < len(lines):
        c = _COND.match(lines[i])
        if c:
            kind, name = c.group(1), c.group(2)
            if kind in ("ifdef", "ifndef"):
                if not re.fullmatch(r"[A-Za-z_]\w*", name):
                    raise AssemblyError(f"{path}:{numbers[i]}: #{kind} needs one name, not {name!r}")
                defined = name in macros or bool(consts.get(name, 0))
                outer = all(cd[0] for cd in conds)
                conds.append([defined == (kind == "ifdef"), False, outer])
            elif name:
                raise AssemblyError(f"{path}:{numbers[i]}: #{kind} takes no argument, got {name!r}")
            elif not conds:
                raise AssemblyError(f"{path}:{numbers[i]}: #{kind} without #ifdef or #ifndef")
            elif kind == "else":
                if conds[-1][1]:
                    raise AssemblyError(f"{path}:{numbers[i]}: a second #else")
                conds[-1][0], conds[-1][1] = not conds[-1][0], True
            else:
                conds.pop()
            out.append((numbers[i], ""))
            i += 1
            continue
        if conds and not (conds[-1][0] and conds[-1][2]):
            out.append((numbers[i], ""))
            i += 1
            continue
        m = _DEFINE.match(lines[i])
        if not m:
            out.append((numbers[i], lines[i]))
            i += 1
            continue
        name, params = m.group(1), [p.strip() for p in (m.group(2) or "").split(",") if p.strip()]
        body, first = [], m.group(3)
        cur = first
        while True:
            cont = cur.rstrip().endswith("\\")
            seg = cur.rstrip()[:-1] if cont else cur
            if seg.strip():
                body.append(seg)
            if not cont:
                break
            i += 1
            if i >= len(lines):
                raise AssemblyError(f"{path}:{i}: #define {name} runs past the end of the file")
            cur = lines[i]
        macros[name] = (params, body)
        i += 1
    if conds:
        raise AssemblyError(f"{path}: #ifdef or #ifndef without #endif")
    return _expand(out, macros, path, 0)


def _expand(lines, macros, path, depth):
    if depth > 16:
        raise AssemblyError(f"{path}: macros nest too deeply")
    expanded, again = [], False
    for no, ln in lines:
        m = re.match(r"^\s*([A-Za-z_]\w*)(?:\((.*)\))?\s*(//.*)?$", ln)
        if m and m.group(1) in macros:
            params, body = macros[m.group(1)]
            raw = m.group(2) or ""
            args = [a.strip() for a in raw.split(",")] if raw.strip() else []
            if len(args) != len(params):
                raise AssemblyError(f"{path}:{no}: {m.group(1)} takes {len(params)} arguments, got {len(args)}")
            for seg in body:
                for p_, a in zip(params, args):
                    seg = re.sub(rf"\b{re.escape(p_)}\b", a, seg)
                expanded.append((no, seg))
            again = True
        else:
            expanded.append((no, ln))
    return _expand(expanded, macros, path, depth + 1) if again else expanded


def parse_text(text, path="<text>", consts=None, include=None):
    """Parse a whole file; errors name the file, line number and text.
    `include(name)` returns the text of a `#include`d header, or None."""
    out, frame = [], 0
    for no, raw in expand_macros(text, path, include, consts):
        try:
            ln = parse_line(raw, frame, consts)
        except ValueError as e:
            raise AssemblyError(f"{path}:{no}: {e}: {raw.strip()!r}") from None
        if ln.text_symbol:
            frame = ln.frame_size
        out.append((no, raw, ln))
    return out
