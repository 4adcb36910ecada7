"""Instruction forms: what the scheduler needs to know about each instruction.

capstone decodes an instruction once (the model caches the result per block);
`classify` names its form (FORM_KEYS: a key of every µarch's `forms` table),
its shape (how its load, operation and store are wired), the registers it
reads for its address and for its data, the registers it writes, the memory
records unicorn reports for it, its branch kind, and the special cases the
renamer handles (zero idioms, moves). Register dependencies are tracked per
architectural register: every name of a register (al, ax, eax, rax) is one
slot; a write of 8 or 16 bits merges with the old value, so it also reads it.
The flags are one slot. RSP changes made by push/pop/call/ret are the stack
engine's and make no dependency.
"""

from dataclasses import dataclass

import capstone
from capstone import x86

# Shapes.
ALU, LOAD, LOADOP, STORE, RMW, ELIM = range(6)
# Branch kinds.
NOBR, COND, JUMP, JUMP_IND, CALL, CALL_IND, RET = range(7)
# Renamer special cases. FOLD: a 64-bit ADD/SUB/INC/DEC of a small immediate, or LEA r64, [r64 + disp],
# which a renamer that folds immediates (Golden Cove: uarch.imm_fold) completes at rename.
ZERO_IDIOM, MOVE, FOLD = 1, 2, 3

FORM_KEYS = (
    "alu",        # add sub and or xor cmp test neg not inc dec, cdq/cqo/cdqe (reg, imm)
    "adc",        # adc sbb
    "mov",        # mov r, r (when not eliminated)
    "mov_imm",    # mov r, imm
    "movzx",      # movzx movsx movsxd r, r
    "lea",        # lea with one or two of base/index/disp, scale 1
    "lea_scaled", # lea with a scaled index (with or without base and displacement)
    "lea3",       # lea with base, index (scale 1) and displacement
    "shift",      # shl shr sar rol ror r, imm / 1
    "shift_cl",   # shl shr sar rol ror r, cl
    "shiftx",     # shlx shrx sarx rorx (BMI2)
    "imul",       # imul r, r(, imm)
    "mul",        # one-operand mul/imul (128-bit result)
    "div",        # div idiv r64
    "bitcount",   # tzcnt lzcnt popcnt
    "bsf",        # bsf bsr
    "bmi",        # andn blsr blsi blsmsk bzhi
    "bt",         # bt bts btr btc r, r/imm
    "cmov",       # cmovcc
    "setcc",      # setcc
    "xchg",       # xchg r, r
    "nop",        # nop, endbr64, pause-free hints
    "jcc", "jmp", "jmp_ind", "call", "call_ind", "ret",
    "load",       # mov movzx movsx r, [m]; pop; (the load itself: the µarch's load pipes)
    "store",      # mov [m], r/imm; push
    "vload", "vstore",
    "vmov",       # movaps movups movdqa movdqu x, x (when not eliminated)
    "movq_xr",    # movq/movd xmm, r
    "movq_rx",    # movq/movd r, xmm
    "valu",       # pxor por pand paddq pcmpeq* xorps ...
    "vshuf",      # pshufd punpck* pshufb shufps
    "pmovmsk",    # pmovmskb movmskps
    "locked",     # lock-prefixed read-modify-write, xchg with memory
    "mfence", "lfence", "sfence",
    "rdtsc",      # rdtsc rdtscp
    "rep_str",    # rep movs / rep stos (fast strings)
    "string",     # movs stos lods without rep
    "prefetch",
    "pause",
    "other",      # anything else: treated as a one-cycle ALU operation and reported
)

_GPR = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi"] + [f"r{i}" for i in range(8, 16)]
FLAGS = 16
RSP = 4
XMM0 = 17
MISC = XMM0 + 32
NSLOTS = MISC + 1


def _slot_names():
    names = {}
    for i, r in enumerate(_GPR[:8]):
        b = r[1:]                               # ax, cx, ..., sp, bp, si, di
        names.update({r: (i, 8), "e" + b: (i, 4), b: (i, 2)})
    for i, low in enumerate(["al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil"]):
        names[low] = (i, 1)
    for i, high in enumerate(["ah", "ch", "dh", "bh"]):
        names[high] = (i, 1)
    for i in range(8, 16):
        names.update({f"r{i}": (i, 8), f"r{i}d": (i, 4), f"r{i}w": (i, 2), f"r{i}b": (i, 1)})
    for i in range(32):
        for p in ("xmm", "ymm", "zmm"):
            names[f"{p}{i}"] = (XMM0 + i, 16)
    names["rflags"] = names["eflags"] = (FLAGS, 8)
    return names


_SLOTS = _slot_names()
_IGNORED = {"rip", "eip", "fs", "gs", "cs", "ds", "es", "ss"}

_ALU = {"add", "sub", "and", "or", "xor", "cmp", "test", "neg", "not", "inc", "dec", "cdq", "cqo", "cdqe",
        "cwde", "cbw", "cwd", "clc", "stc", "cmc"}
_SHIFT = {"shl", "sal", "shr", "sar", "rol", "ror", "rcl", "rcr"}
_VMOV = {"movaps", "movups", "movdqa", "movdqu", "movapd", "movupd", "lddqu", "movntdq", "movntps"}
_VLOAD_ONLY = {"movq", "movd", "movss", "movsd", "movhps", "movlps", "movhpd", "movlpd"}
_VALU = {"pxor", "por", "pand", "pandn", "xorps", "xorpd", "orps", "andps", "andnps", "paddq", "paddd",
         "paddb", "paddw", "psubq", "psubd", "psubb", "pcmpeqb", "pcmpeqw", "pcmpeqd", "pcmpeqq", "pminub",
         "pmaxub", "psllq", "psrlq", "pslldq", "psrldq", "pcmpgtb", "ptest"}
_VSHUF = {"pshufd", "pshufb", "punpcklqdq", "punpckhqdq", "punpcklbw", "shufps", "pshuflw", "pshufhw",
          "palignr", "pinsrq", "pextrq", "pinsrd", "pextrd", "pinsrb"}
_ZERO_IDIOMS = {"xor", "sub", "pxor", "xorps", "xorpd", "psubq", "psubd", "psubb"}
_LOCKED_ALWAYS = {"xchg", "cmpxchg", "xadd"}      # read and write memory whatever capstone says
_STRINGS = {"movsb", "movsw", "movsd", "movsq", "stosb", "stosw", "stosd", "stosq", "lodsb", "lodsw", "lodsd",
            "lodsq"}


def _is_string(insn, m):
    """movs/stos/lods (movsd without XMM operands: the SSE movsd is not a string instruction)."""
    return m in _STRINGS and not any(insn.reg_name(op.reg).startswith("xmm")
                                      for op in insn.operands if op.type == x86.X86_OP_REG)
_BRANCH = {"jmp": JUMP, "call": CALL, "ret": RET}


@dataclass(frozen=True)
class Decoded:
    """One instruction as the scheduler sees it (uarch-independent)."""
    address: int
    length: int
    mnemonic: str
    text: str                 # capstone's Intel syntax
    key: str                  # form key (FORM_KEYS)
    shape: int
    addr_srcs: tuple          # register slots of the address
    srcs: tuple               # register slots of the data
    dsts: tuple
    records: int              # memory records unicorn reports (8-byte pieces; -1: REP, variable)
    branch: int
    special: int              # ZERO_IDIOM, MOVE, FOLD or 0
    mem_index: bool           # address has an index register (or a displacement over 2 KiB)
    vector_mem: bool          # the memory operand is an XMM load/store
    has_imm: bool
    imm: int                  # FOLD: the constant added (inc/dec: +-1; lea: the displacement)


_cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
_cs.detail = True


def decode_block(code, address):
    """Every instruction of code (bytes at address), in order."""
    return [classify(insn) for insn in _cs.disasm(code, address)]


def _slots(insn, regs):
    out = []
    for r in regs:
        name = insn.reg_name(r)
        if name in _IGNORED:
            continue
        s = _SLOTS.get(name, (MISC, 8))[0]
        if s not in out:
            out.append(s)
    return out


def _jcc(m):
    return m.startswith("j") and m not in ("jmp", "jrcxz", "jecxz")


def classify(insn):
    words = insn.mnemonic.split()
    rep = words[0] in ("rep", "repe", "repne", "repz", "repnz") and len(words) > 1
    locked = words[0] == "lock"
    m = words[-1]
    mem = next((op for op in insn.operands if op.type == x86.X86_OP_MEM), None)
    has_imm = any(op.type == x86.X86_OP_IMM for op in insn.operands)
    regops = [op for op in insn.operands if op.type == x86.X86_OP_REG]
    is_lea = m == "lea"
    accesses = mem is not None and not is_lea and not m.startswith(("nop", "prefetch"))
    reads_mem = writes_mem = False
    if accesses:
        reads_mem = bool(mem.access & capstone.CS_AC_READ)
        writes_mem = bool(mem.access & capstone.CS_AC_WRITE)
        if m in _LOCKED_ALWAYS or locked:
            reads_mem = writes_mem = True
        if _is_string(insn, m) and m.startswith("movs"):
            reads_mem = writes_mem = True
    data = _slots(insn, list(insn.regs_read) + [op.reg for op in regops if op.access & capstone.CS_AC_READ])
    dsts = _slots(insn, list(insn.regs_write) + [op.reg for op in regops if op.access & capstone.CS_AC_WRITE])
    addr = _slots(insn, [r for r in (mem.mem.base, mem.mem.index) if r]) if mem is not None else []
    if is_lea:
        data, addr = data + [a for a in addr if a not in data], []
    for op in regops:                       # 8/16-bit writes merge into the old register
        if op.access & capstone.CS_AC_WRITE and op.size < 4:
            s = _SLOTS.get(insn.reg_name(op.reg), (MISC, 8))[0]
            if s not in data:
                data.append(s)
    if m in ("cmpxchg", "xadd"):
        data += [s for s in (0,) if s not in data]
        dsts += [s for s in (0, FLAGS) if s not in dsts]
    branch = NOBR
    if _jcc(m):
        branch = COND
    elif m in _BRANCH:
        branch = _BRANCH[m]
        if m in ("jmp", "call") and (mem is not None or regops):
            branch = JUMP_IND if m == "jmp" else CALL_IND
    stack = m in ("push", "pop", "call", "ret", "leave", "pushfq", "popfq")
    if stack:                               # the stack engine updates RSP
        data = [s for s in data if s != RSP]
        dsts = [s for s in dsts if s != RSP]
    special = 0
    if m in _ZERO_IDIOMS and len(regops) == 2 and regops[0].reg == regops[1].reg and not mem:
        special, data = ZERO_IDIOM, []
    elif m == "sbb" and len(regops) == 2 and regops[0].reg == regops[1].reg:
        data = [FLAGS]                      # 0 or -1 from the carry alone (AF, SOG: no register input)
    elif m == "mov" and len(regops) == 2 and not mem and regops[0].size >= 4 and \
            regops[0].reg != regops[1].reg:
        special = MOVE
    elif m in _VMOV and len(regops) == 2 and not mem:
        special = MOVE
    imm = _fold_constant(insn, m, mem, regops)
    if imm is not None:
        special = FOLD

    # memory records: unicorn reports accesses in pieces of at most 8 bytes
    size = mem.size if accesses else 0
    pieces = max(1, -(-size // 8)) if accesses else 0
    records = pieces * (reads_mem + writes_mem)
    if m in ("push", "call"):
        records += 1
    elif m in ("pop", "ret", "leave"):
        records += 1
    if rep and _is_string(insn, m):
        records = -1
    vector_mem = accesses and (size >= 16 or any(insn.reg_name(op.reg).startswith("xmm") for op in regops))
    mem_index = mem is not None and (mem.mem.index != 0 or abs(mem.mem.disp) >= 2048)

    key = _form_key(m, rep, locked, mem, accesses, regops, is_lea, has_imm, insn)
    if key == "rep_str" or key == "string":
        shape = RMW if (reads_mem and writes_mem) else (STORE if writes_mem else LOAD)
    elif key == "prefetch" or key == "nop":
        shape = ELIM if key == "nop" else ALU
    elif m == "ret":
        shape = LOAD
    elif m in ("push", "call"):
        shape = STORE
    elif m == "pop" or m == "leave":
        shape = LOAD
    elif accesses and reads_mem and writes_mem:
        shape = RMW
    elif accesses and writes_mem:
        shape = STORE
    elif accesses and key in ("load", "vload"):
        shape = LOAD
    elif accesses:
        shape = LOADOP
    elif special == ZERO_IDIOM:
        shape = ELIM
    else:
        shape = ALU
    if m == "call" and branch == CALL_IND and mem is not None:
        records = pieces + 1
    return Decoded(insn.address, insn.size, insn.mnemonic, f"{insn.mnemonic} {insn.op_str}".strip(), key,
                   shape, tuple(addr), tuple(data), tuple(dsts), records, branch, special, mem_index,
                   bool(vector_mem), has_imm, imm or 0)


def _fold_constant(insn, m, mem, regops):
    """The constant of add/sub r64, imm, inc/dec r64 or lea r64, [r64 + disp] (one 64-bit register,
    no index), else None: what a folding renamer adds to the register's value at rename."""
    if len(regops) != 1 or regops[0].size != 8 or insn.reg_name(regops[0].reg) == "rsp":
        return None
    if m in ("inc", "dec") and len(insn.operands) == 1:
        return 1 if m == "inc" else -1
    imms = [op.imm for op in insn.operands if op.type == x86.X86_OP_IMM]
    if m in ("add", "sub") and len(insn.operands) == 2 and len(imms) == 1:
        return imms[0] if m == "add" else -imms[0]
    if m == "lea" and mem is not None and mem.mem.base and not mem.mem.index and mem.size == 8 and \
            insn.reg_name(mem.mem.base) not in ("rip", "rsp"):
        return mem.mem.disp
    return None


def _form_key(m, rep, locked, mem, accesses, regops, is_lea, has_imm, insn):
    xmm = any(insn.reg_name(op.reg).startswith("xmm") for op in regops)
    if _is_string(insn, m):
        return "rep_str" if rep else "string"
    if locked or (m in ("xchg",) and accesses):
        return "locked"
    if _jcc(m):
        return "jcc"
    if m == "jmp":
        return "jmp_ind" if (mem is not None or regops) else "jmp"
    if m == "call":
        return "call_ind" if (mem is not None or regops) else "call"
    if m == "ret":
        return "ret"
    if m == "push":
        return "store"
    if m in ("pop", "leave"):
        return "load"
    if m.startswith("nop") or m in ("endbr64", "endbr32"):
        return "nop"
    if m.startswith("prefetch"):
        return "prefetch"
    if is_lea:
        if mem.mem.index and mem.mem.scale > 1:
            return "lea_scaled"
        return "lea3" if mem.mem.base and mem.mem.index and mem.mem.disp else "lea"
    if xmm or m in _VALU or m in _VSHUF:
        if m in ("movq", "movd"):
            if accesses:
                return "vstore" if mem.access & capstone.CS_AC_WRITE else "vload"
            first = insn.reg_name(regops[0].reg)
            return "movq_xr" if first.startswith("xmm") else "movq_rx"
        if m in _VMOV or m in _VLOAD_ONLY:
            if accesses:
                return "vstore" if mem.access & capstone.CS_AC_WRITE else "vload"
            return "vmov"
        if m in ("pmovmskb", "movmskps", "movmskpd"):
            return "pmovmsk"
        if m in _VSHUF:
            return "vshuf"
        return "valu"
    if m in ("mov", "movabs"):
        if accesses:
            return "store" if mem.access & capstone.CS_AC_WRITE else "load"
        return "mov_imm" if has_imm else "mov"
    if m in ("movzx", "movsx", "movsxd"):
        return "load" if accesses else "movzx"
    if m in _ALU:
        return "alu"
    if m in ("adc", "sbb"):
        return "adc"
    if m in _SHIFT:
        return "shift_cl" if any(insn.reg_name(op.reg) == "cl" for op in regops[1:]) else "shift"
    if m in ("shlx", "shrx", "sarx", "rorx"):
        return "shiftx"
    if m == "imul" and len(insn.operands) >= 2:
        return "imul"
    if m in ("mul", "imul"):
        return "mul"
    if m in ("div", "idiv"):
        return "div"
    if m in ("tzcnt", "lzcnt", "popcnt"):
        return "bitcount"
    if m in ("bsf", "bsr"):
        return "bsf"
    if m in ("andn", "blsr", "blsi", "blsmsk", "bzhi", "bextr"):
        return "bmi"
    if m in ("bt", "bts", "btr", "btc"):
        return "bt"
    if m.startswith("cmov"):
        return "cmov"
    if m.startswith("set"):
        return "store" if accesses else "setcc"
    if m == "xchg":
        return "xchg"
    if m in ("mfence", "lfence", "sfence"):
        return m
    if m in ("rdtsc", "rdtscp"):
        return "rdtsc"
    if m == "pause":
        return "pause"
    if m in ("cmpxchg", "xadd"):
        return "locked"
    return "other"
