"""Assembles gomemu's routines (and lines from Go listings) into machine code.

Each instruction is assembled by keystone on its own, at its final address,
with every symbol already replaced by a number: branch targets as absolute
addresses, data references as RIP-relative displacements (or absolute disp32
for indexed tables, as Go links non-PIE code). Branch sizes depend on
distances, so layout repeats until no instruction changes size. Every result
is decoded again by capstone and must come back as the same single
instruction: keystone has known mis-encodings and this catches them.

The result is a `Program`: code bytes, symbol addresses and a listing that
maps every address to its source file, line and the Go code it models.
"""

import bisect
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import capstone
import keystone

from asm.plan9 import hexnum, parse_text
from emu.errors import AssemblyError

FUNC_ALIGN = 32          # cmd/link: funcAlign on amd64
PAD_BYTE = 0xCC          # the linker pads between functions with INT3
ROUTINE_DIR = Path(__file__).resolve().parent

_ks = keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64)
_cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
_csd = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
_csd.detail = True
_STACK_ACCESS = {"push": (0, 1), "pop": (1, 0), "call": (0, 1), "ret": (1, 0)}


def memory_accesses(code, address):
    """(reads, writes) of memory one instruction makes: its memory operands by
    access mode, plus the stack slot of push/pop/call/ret. LEA and NOP only
    compute addresses. REP-prefixed string instructions count one iteration."""
    from capstone import x86
    insn = next(_csd.disasm(code, address, 1))
    if insn.mnemonic in _STACK_ACCESS:
        return _STACK_ACCESS[insn.mnemonic]
    if insn.mnemonic.startswith(("lea", "nop")):
        return 0, 0
    reads = writes = 0
    for op in insn.operands:
        if op.type == x86.X86_OP_MEM:
            reads += bool(op.access & capstone.CS_AC_READ)
            writes += bool(op.access & capstone.CS_AC_WRITE)
    return reads, writes


@dataclass(frozen=True)
class ListingEntry:
    address: int
    code: bytes
    symbol: str        # routine the instruction belongs to
    path: str
    lineno: int
    source: str        # the source line as written
    models: str        # the Go code this instruction stands for (from the comments)
    disasm: str        # capstone's reading of `code`
    reads: int = 0     # memory reads the instruction makes (explicit operands and stack)
    writes: int = 0    # memory writes

    @property
    def end(self):
        return self.address + len(self.code)


@dataclass
class Program:
    base: int
    code: bytes
    symbols: dict          # routine name -> entry address
    listing: list          # ListingEntry, ascending by address
    routine_ranges: list   # (start, end, name), ascending
    labels: dict = field(default_factory=dict)   # "routine:label" -> address

    def __post_init__(self):
        self._starts = [e.address for e in self.listing]
        self._rstarts = [r[0] for r in self.routine_ranges]
        self._acc = [(0, 0)]           # prefix sums of (reads, writes)
        for e in self.listing:
            r, w = self._acc[-1]
            self._acc.append((r + e.reads, w + e.writes))

    @property
    def end(self):
        return self.base + len(self.code)

    def entry_at(self, addr):
        """The listing entry of the instruction starting at `addr`, or None."""
        i = bisect.bisect_left(self._starts, addr)
        if i < len(self._starts) and self._starts[i] == addr:
            return self.listing[i]
        return None

    def instructions_in(self, start, end):
        """Number of listed instructions starting in [start, end)."""
        return bisect.bisect_left(self._starts, end) - bisect.bisect_left(self._starts, start)

    def block_accesses(self, start, end):
        """(reads, writes) of the listed instructions starting in [start, end)."""
        i = bisect.bisect_left(self._starts, start)
        j = bisect.bisect_left(self._starts, end)
        return self._acc[j][0] - self._acc[i][0], self._acc[j][1] - self._acc[i][1]

    def routine_at(self, addr):
        i = bisect.bisect_right(self._rstarts, addr) - 1
        if i >= 0 and addr < self.routine_ranges[i][1]:
            return self.routine_ranges[i][2]
        return None

    def where(self, addr):
        """`symbol+0xoff` for an address in this program."""
        name = self.routine_at(addr)
        return f"{name}+{hexnum(addr - self.symbols[name])}" if name else hexnum(addr)


@dataclass
class _Item:
    routine: str
    path: str
    lineno: int
    source: str
    models: str
    insn: object
    size: int = 2
    address: int = 0
    code: bytes = b""


def _collect(sources, consts):
    """Parse all sources into routines of instruction items with scoped labels."""
    items, labels, order = [], {}, []
    for path, text in sources:
        routine, last_comment = None, ""
        for no, raw, ln in parse_text(text, path, consts, _header):
            if ln.text_symbol:
                routine = ln.text_symbol
                if routine in labels:
                    raise AssemblyError(f"{path}:{no}: routine {routine} defined twice")
                labels[routine] = {}
                order.append((routine, len(items)))
                last_comment = ""
                continue
            if ln.comment and not ln.insn and not ln.label:
                last_comment = ln.comment
            if routine is None:
                if ln.insn or ln.label:
                    raise AssemblyError(f"{path}:{no}: instruction outside a TEXT routine: {raw.strip()!r}")
                continue
            if ln.label:
                if ln.label in labels[routine]:
                    raise AssemblyError(f"{path}:{no}: label {ln.label} defined twice in {routine}")
                labels[routine][ln.label] = len(items)
            if ln.listing_pc is not None:
                labels[routine].setdefault(f".pc{ln.listing_pc}", len(items))
            if ln.insn:
                models = ln.comment or last_comment
                if ln.listing_pos:
                    models = ln.listing_pos
                items.append(_Item(routine, path, no, raw.strip(), models, ln.insn))
    return items, labels, order


def _resolve(item, labels, items, symbols):
    """Address of the symbol an instruction refers to."""
    ref = item.insn.target or item.insn.rip_ref
    local = labels[item.routine]
    if ref.name in local:
        idx = local[ref.name]
        if idx >= len(items):
            raise AssemblyError(f"{item.path}:{item.lineno}: label {ref.name} has no instruction after it")
        return items[idx].address + ref.addend
    if ref.name in symbols:
        return symbols[ref.name] + ref.addend
    raise AssemblyError(f"{item.path}:{item.lineno}: undefined symbol {ref.name!r} in {item.source!r}")


def _encode(item, labels, items, symbols):
    t = item.insn.template
    if item.insn.target:
        t = t.replace("{target}", hexnum(_resolve(item, labels, items, symbols)))
    if item.insn.rip_ref:
        target = _resolve(item, labels, items, symbols)
        if item.insn.rip_ref.absolute:
            if not -2**31 <= target < 2**31:
                raise AssemblyError(f"{item.path}:{item.lineno}: {item.insn.rip_ref.name} at {target:#x} is out of disp32 range")
            t = t.replace("{abs}", hexnum(target))
        else:
            disp = target - (item.address + item.size)
            t = t.replace("{rip}", hexnum(disp)).replace("+ -0x", "- 0x").replace("{addr}", hexnum(disp))
    try:
        enc, _ = _ks.asm(t, item.address)
    except keystone.KsError as e:
        raise AssemblyError(f"{item.path}:{item.lineno}: keystone cannot assemble {item.source!r} (as {t!r}): {e}") from None
    if not enc:
        raise AssemblyError(f"{item.path}:{item.lineno}: {item.source!r} assembled to nothing (as {t!r})")
    return bytes(enc)


_ALIASES = {"movabs": "mov"}


def _check_roundtrip(item):
    """capstone must decode exactly this one instruction with the mnemonic we meant."""
    got = list(_cs.disasm_lite(item.code, item.address))
    want = item.insn.template.split()[0]
    if want in ("rep", "lock"):
        want = " ".join(item.insn.template.split()[:2])
    if len(got) != 1 or got[0][1] != len(item.code):
        raise AssemblyError(f"{item.path}:{item.lineno}: {item.source!r} encoded as {item.code.hex()}, "
                            f"which does not decode as one instruction")
    mnem = _ALIASES.get(got[0][2], got[0][2])
    if mnem != want and not (mnem.startswith(want) or want.startswith(mnem.split()[0])):
        raise AssemblyError(f"{item.path}:{item.lineno}: {item.source!r} encoded as {item.code.hex()} "
                            f"= {got[0][2]} {got[0][3]}, not {want}")
    return f"{got[0][2]} {got[0][3]}".strip()


def assemble(sources, base, data_symbols, consts=None):
    """Assemble [(path, text), ...] at `base`, resolving symbols against
    `data_symbols` and named constants (go_asm.h style) against `consts`."""
    key = (tuple(sources), base, tuple(sorted(data_symbols.items())), tuple(sorted((consts or {}).items())))
    return _assemble_cached(key)


@lru_cache(maxsize=32)
def _assemble_cached(key):
    sources, base, data_symbols, consts = key
    items, labels, order = _collect(sources, dict(consts))
    if not order:
        raise AssemblyError("no TEXT routine in the sources")
    starts = {idx: name for name, idx in order}
    symbols = dict(data_symbols)
    # Branch sizes depend on distances: lay out, encode, repeat until stable.
    # After a few rounds sizes may only grow, which always terminates; an
    # instruction left shorter than its slot is then padded with NOPs.
    for rnd in range(32):
        addr = base
        for i, it in enumerate(items):
            if i in starts:
                addr = (addr + FUNC_ALIGN - 1) // FUNC_ALIGN * FUNC_ALIGN
                symbols[starts[i]] = addr
            if it.insn.listing_pc is not None:
                # A -S listing fixes every instruction's pc; alignment NOPs left gaps.
                addr = max(addr, symbols[it.routine] + it.insn.listing_pc)
            it.address = addr
            addr += it.size
        for name, idx in order:   # a routine with no instructions still gets an address
            if idx >= len(items):
                symbols[name] = (addr + FUNC_ALIGN - 1) // FUNC_ALIGN * FUNC_ALIGN
        stable = True
        for it in items:
            it.code = _encode(it, labels, items, symbols)
            want = len(it.code) if rnd < 8 else max(len(it.code), it.size)
            if want != it.size:
                it.size, stable = want, False
        if stable:
            break
    else:
        raise AssemblyError("instruction layout did not converge")
    out = bytearray()
    listing, ranges = [], []
    end_of = {name: None for name, _ in order}
    for it in items:
        pad = it.address - (base + len(out))
        if pad and end_of[it.routine] is not None:     # inside a routine: NOPs, listed
            for k in range(pad):
                listing.append(ListingEntry(base + len(out) + k, b"\x90", it.routine, it.path, it.lineno,
                                            "NOP (alignment)", "", "nop", 0, 0))
            out += b"\x90" * pad
        else:
            out += bytes([PAD_BYTE]) * pad      # between routines: INT3, as the linker pads
        dis = _check_roundtrip(it)
        reads, writes = memory_accesses(it.code, it.address)
        listing.append(ListingEntry(it.address, it.code, it.routine, it.path, it.lineno, it.source, it.models,
                                    dis, reads, writes))
        out += it.code
        if it.size > len(it.code):              # a slot the layout kept larger: NOPs, listed
            nop_at = it.address + len(it.code)
            nop = bytes([0x90]) * (it.size - len(it.code))
            for k, b in enumerate(nop):
                listing.append(ListingEntry(nop_at + k, bytes([b]), it.routine, it.path, it.lineno,
                                            "NOP (layout padding)", "", "nop", 0, 0))
            out += nop
        end_of[it.routine] = it.address + it.size
    for name, _ in order:
        start = symbols[name]
        ranges.append((start, end_of[name] or start, name))
    ranges.sort()
    label_addrs = {f"{r}:{name}": items[i].address for r, ls in labels.items() for name, i in ls.items()
                   if i < len(items) and not name.startswith(".pc")}
    return Program(base, bytes(out), {n: symbols[n] for n, _ in order}, listing, ranges, label_addrs)


def _header(name):
    """`#include "x.h"` in a routine: headers live beside the routines in asm/."""
    f = ROUTINE_DIR / name
    return f.read_text() if f.parent == ROUTINE_DIR and f.suffix == ".h" and f.exists() else None


def routine_sources(names=None):
    """The `.s` files shipped in asm/, as (path, text), in name order."""
    files = sorted(ROUTINE_DIR.glob("*.s"))
    if names is not None:
        files = [f for f in files if f.stem in names]
    return tuple((f"asm/{f.name}", f.read_text()) for f in files)



class Text:
    """The text segment: every Program loaded into it, looked up by address."""

    def __init__(self, programs=()):
        self.programs = sorted(programs, key=lambda p: p.base)
        self._blocks = {}

    def block_info(self, start, size):
        """(instructions, routine) of the block [start, start+size), cached: counting asks
        for the same blocks over and over."""
        key = (start, size)
        info = self._blocks.get(key)
        if info is None:
            info = self._blocks[key] = (self.instructions_in(start, start + size), self.routine_at(start))
        return info

    def add(self, program):
        self.programs.append(program)
        self.programs.sort(key=lambda p: p.base)
        self._blocks.clear()

    @property
    def end(self):
        return max(p.end for p in self.programs)

    def _at(self, addr):
        for p in self.programs:
            if p.base <= addr < p.end:
                return p
        return None

    def entry_at(self, addr):
        p = self._at(addr)
        return p.entry_at(addr) if p else None

    def instructions_in(self, start, end):
        p = self._at(start)
        return p.instructions_in(start, end) if p else 0

    def block_accesses(self, start, end):
        key = (start, end, "rw")
        rw = self._blocks.get(key)
        if rw is None:
            p = self._at(start)
            rw = self._blocks[key] = p.block_accesses(start, end) if p else (0, 0)
        return rw

    def routine_at(self, addr):
        p = self._at(addr)
        return p.routine_at(addr) if p else None

    def where(self, addr):
        p = self._at(addr)
        return p.where(addr) if p else hexnum(addr)

    def label(self, name):
        """The address of `routine:label` in whichever program defines it."""
        for p in self.programs:
            if name in p.labels:
                return p.labels[name]
        raise KeyError(name)
