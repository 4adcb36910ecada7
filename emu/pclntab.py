"""Go 1.27's runtime symbol table, read out of a linked binary the way the runtime reads it.

    tab = Pclntab.open("prog")                  # a linux/amd64, non-PIE, static Go 1.27 ELF
    f = tab.findfunc(pc)                        # runtime/symtab.go: findfunc -> Func
    f.name, f.entry, f.end, f.args, f.func_id   # runtime2.go: _func
    f.file_line(pc), f.sp_delta(pc)             # funcline1 (pcfile/pcln), funcspdelta (pcsp)
    tab.inline_frames(pc)                       # symtabinl.go: the inlined calls at pc, innermost first
    tab.callers_frames(pcs)                     # runtime.CallersFrames over runtime.Callers' PCs
    fr = tab.frame(pc, sp)                      # traceback.go + stkframe.go: fp, varp, argp and
    fr.locals, fr.args, fr.objects              #   getStackMap's bitmaps and stack objects
    tab.unwind(pc, sp, read_word)               # traceback.go: unwinder, every physical frame
    tab.gcdata_mask(), tab.gcbss_mask()         # symtab.go: modulesinit's progToPointerMask
    tab.itabs(), tab.typelinks()                # iface.go: addModuleItabs; type.go: moduleTypelinks

Where it starts. The linker writes one `runtime.moduledata` (symbol
runtime.firstmoduledata, section .go.module) whose fields point at everything
else; we read it at its linked address, as the runtime does, and check it
against the pcHeader at the start of .gopclntab (magic 0xfffffff1 since Go
1.20, minLC 1, ptrSize 8). The tables (cmd/link/internal/ld/pcln.go):

  funcnametab  NUL-terminated names; _func.nameOff indexes it (the runtime reads offset 0,
               the first function's name, as "")
  cutab        per compilation unit, uint32 offsets into filetab (~0: file dropped)
  filetab      NUL-terminated file names
  pctab        every pc-value table, deduplicated; offset 0 means "no table"
  pclntable    ftab = nfunc+1 {entryoff, funcoff} pairs (the last holds only the end
               pc), then each _func (44 bytes) + npcdata uint32 pctab offsets +
               nfuncdata uint32 offsets from moduledata.gofunc (go:func.*; ~0: none)

A pc-value table is a list of (value delta, pc delta) pairs starting from value
-1 at the function's entry: the value delta a zig-zag varint, the pc delta an
unsigned varint in units of PCQuantum (1 on amd64), a zero byte after the first
pair ending the table (symtab.go: step). The last pc reached is the end of the
function (cmd/internal/obj/pcln.go: funcpctab closes every table at the
function's size), which is how `Func.end` is known without the ELF symbol table.

Frames on amd64 (traceback.go: unwinder.resolveInternal; stkframe.go: getStackMap):
at a pc with stack pointer sp,

    fp   = sp + pcsp(pc) + 8          the caller's SP: CALL pushed the return PC at fp-8
    varp = fp - 8, then 8 less again if varp > sp: the saved BP sits at varp
    argp = fp                         MinFrameSize is 0 on amd64

  locals bitmap (FUNCDATA_LocalsPointerMaps), bit i: the word at varp - 8*n + 8*i
    (n = the map's nbit: the compiler sizes it to the whole pointer-bearing local area)
  args bitmap (FUNCDATA_ArgsPointerMaps), bit i: the word at argp + 8*i (the caller-
    allocated area where register arguments spill and stack arguments live)
  stack object off < 0: at varp + off; off >= 0: at argp + off
  the stack-map index is PCDATA_StackMapIndex at continpc-1 (at the entry itself: 0).

Simplified or left out: one module (no plugins or -linkshared); reflect's
makeFuncStub/methodValueCall frames, whose argument maps live in memory, are
refused; FUNCDATA_OpenCodedDeferInfo is only located, not decoded; type
descriptors are sized (typelinks) but not decoded further; unwinding does not jump
between g0 and goroutine stacks. Everything read is bounds-checked; bad or foreign files raise
BadInput naming the file and the field.
"""

import bisect
import io
import struct
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from emu.errors import BadInput, InvariantError

PTR_SIZE = 8                    # goarch.PtrSize
PC_QUANTUM = 1                  # sys.PCQuantum on amd64
MIN_FRAME_SIZE = 0              # sys.MinFrameSize on amd64 (no link register)

# internal/abi/symtab.go
GO120_PCLNTAB_MAGIC = 0xFFFFFFF1                  # Go120PCLnTabMagic = CurrentPCLnTabMagic
OLD_MAGICS = {0xFFFFFFFB: "Go 1.2-1.15", 0xFFFFFFFA: "Go 1.16-1.17", 0xFFFFFFF0: "Go 1.18-1.19"}

PCDATA_UnsafePoint = 0
PCDATA_StackMapIndex = 1
PCDATA_InlTreeIndex = 2
PCDATA_ArgLiveIndex = 3
PCDATA_PanicBounds = 4

FUNCDATA_ArgsPointerMaps = 0
FUNCDATA_LocalsPointerMaps = 1
FUNCDATA_StackObjects = 2
FUNCDATA_InlTree = 3
FUNCDATA_OpenCodedDeferInfo = 4
FUNCDATA_ArgInfo = 5
FUNCDATA_ArgLiveInfo = 6
FUNCDATA_WrapInfo = 7

UnsafePointSafe = -1            # safe for async preemption
UnsafePointUnsafe = -2
UnsafePointRestart1 = -3
UnsafePointRestart2 = -4
UnsafePointRestartAtEntry = -5

FuncFlagTopFrame = 1 << 0
FuncFlagSPWrite = 1 << 1
FuncFlagAsm = 1 << 2

# abi.FuncID, in declaration order (FuncIDNormal = 0)
FUNC_IDS = ("normal", "abort", "asmcgocall", "asyncPreempt", "cgocallback", "corostart",
            "debugCallV2", "gcBgMarkWorker", "goexit", "gogo", "gopanic", "handleAsyncEvent",
            "mcall", "morestack", "mstart", "panicwrap", "rt0_go", "runtime_main",
            "runFinalizers", "runCleanups", "sigpanic", "systemstack", "systemstack_switch",
            "wrapper")
FuncIDNormal = 0
FuncID_cgocallback = FUNC_IDS.index("cgocallback")
FuncID_gopanic = FUNC_IDS.index("gopanic")
FuncID_panicwrap = FUNC_IDS.index("panicwrap")
FuncID_sigpanic = FUNC_IDS.index("sigpanic")
FuncIDWrapper = FUNC_IDS.index("wrapper")

ARGS_SIZE_UNKNOWN = -0x80000000     # abi.ArgsSizeUnknown

# internal/abi/type.go: the FUNCDATA_ArgInfo byte stream's operators
TraceArgsEndSeq = 0xFF
TraceArgsStartAgg = 0xFE
TraceArgsEndAgg = 0xFD
TraceArgsDotdotdot = 0xFC
TraceArgsOffsetTooLarge = 0xFB
TRACE_ARGS_MAX_LEN = (5 * 3 + 2) * 10 + 1   # TraceArgsMaxLen: (TraceArgsMaxDepth*3+2)*TraceArgsLimit+1

REFLECT_STUBS = ("reflect.makeFuncStub", "reflect.methodValueCall")   # stkframe.go: argMapInternal


# ---- struct layouts (go_asm.h names: <struct>_<field>; tests compare them) ------------

class PcHeaderLayout:
    """runtime/symtab.go: type pcHeader struct (the start of .gopclntab)."""
    NAME = "pcHeader"
    SIZE = 72
    magic = 0               # uint32
    pad1 = 4
    pad2 = 5
    minLC = 6
    ptrSize = 7
    nfunc = 8               # int
    nfiles = 16             # uint
    funcnameOffset = 32     # offsets from the pcHeader (24 is the unused old textStart)
    cuOffset = 40
    filetabOffset = 48
    pctabOffset = 56
    pclnOffset = 64


class ModuledataLayout:
    """runtime/symtab.go: type moduledata struct, as cmd/link/internal/ld/symtab.go writes it.
    Slices are {ptr, len, cap}."""
    NAME = "moduledata"
    SIZE = 568
    pcHeader = 0
    funcnametab = 8
    cutab = 32
    filetab = 56
    pctab = 80
    pclntable = 104
    ftab = 128
    findfunctab = 152
    minpc = 160
    maxpc = 168
    text = 176
    etext = 184
    noptrdata = 192
    enoptrdata = 200
    data = 208
    edata = 216
    bss = 224
    ebss = 232
    noptrbss = 240
    enoptrbss = 248
    covctrs = 256
    ecovctrs = 264
    end = 272
    gcdata = 280            # a GC program over [data, edata)
    gcbss = 288             # a GC program over [bss, ebss)
    types = 296
    typedesclen = 304
    etypes = 312
    itaboffset = 320        # itabs live at types+itaboffset, itabsize bytes
    itabsize = 328
    rodata = 336
    gofunc = 344            # go:func.*, the base of funcdata offsets
    epclntab = 352
    textsectmap = 360       # []textsect{vaddr, end, baseaddr}
    hasmain = 512


class FuncLayout:
    """runtime/runtime2.go: type _func struct; npcdata uint32 pctab offsets and nfuncdata
    uint32 gofunc offsets follow it."""
    NAME = "_func"
    SIZE = 44
    entryOff = 0
    nameOff = 4
    args = 8
    deferreturn = 12
    pcsp = 16
    pcfile = 20
    pcln = 24
    npcdata = 28
    cuOffset = 32
    startLine = 36
    funcID = 40
    flag = 41
    nfuncdata = 43


class StackObjectRecordLayout:
    """runtime/stack.go: type stackObjectRecord struct (after a uintptr count in the funcdata)."""
    NAME = "stackObjectRecord"
    SIZE = 16
    off = 0                 # int32: < 0 from varp, >= 0 from argp
    size = 4
    ptrBytes = 8
    gcdataoff = 12          # uint32 from moduledata.rodata


LAYOUTS = (PcHeaderLayout, ModuledataLayout, FuncLayout, StackObjectRecordLayout)

# internal/abi/type.go: unsafe.Sizeof of each kind's descriptor, for Type.DescriptorSize
TYPE_SIZE = 48              # Type {Size_, PtrBytes uintptr; Hash u32; TFlag, Align_, FieldAlign_,
                            #       Kind_ u8; Equal, GCData *; Str, PtrToThis int32}
TYPE_KIND = 23              # Type.Kind_
TYPE_TFLAG = 20             # Type.TFlag
TFLAG_UNCOMMON = 1 << 0
KINDS = ("invalid", "bool", "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16",
         "uint32", "uint64", "uintptr", "float32", "float64", "complex64", "complex128", "array",
         "chan", "func", "interface", "map", "ptr", "slice", "string", "struct", "unsafe.Pointer")
KIND_BASE_SIZE = {"array": 72, "chan": 64, "func": 56, "interface": 80, "map": 136, "ptr": 56,
                  "slice": 56, "struct": 80}     # other kinds: TYPE_SIZE
UNCOMMON_TYPE_SIZE = 16     # UncommonType {PkgPath int32; Mcount, Xcount u16; Moff u32; _ u32}
METHOD_SIZE = 16            # Method {Name, Mtyp, Ifn, Tfn int32}
IMETHOD_SIZE = 8            # Imethod {Name, Typ int32}
STRUCT_FIELD_SIZE = 24      # StructField {Name; Typ *Type; Offset uintptr}
SLICE_LEN_AFTER_NAME = 64   # len of InterfaceType.Methods / StructType.Fields (after Type, a Name, a ptr)

INLINED_CALL_SIZE = 16      # runtime/symtabinl.go: inlinedCall {funcID u8; _ [3];
                            #   nameOff, parentPc, startLine int32}
TEXTSECT_SIZE = 24          # runtime/symtab.go: textsect {vaddr, end, baseaddr uintptr}
ITAB_SIZE = 32              # internal/abi/iface.go: ITab {Inter, Type *; Hash uint32; Fun [1]uintptr}

_FUNC = struct.Struct("<IiiIIIIIIiBBxB")
assert _FUNC.size == FuncLayout.SIZE


# ---- values -------------------------------------------------------------------------

@dataclass(frozen=True)
class BitVector:
    """runtime: type bitvector {n int32; bytedata *uint8}: n bits, least significant first."""
    n: int
    data: bytes

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return bool(self.data[i >> 3] >> (i & 7) & 1)

    def bits(self):
        """Indexes of the set bits, ascending (stack scanning asks at every frame: the
        loop visits the set bits only)."""
        v = int.from_bytes(self.data, "little") & ((1 << self.n) - 1)
        out = []
        while v:
            low = v & -v
            out.append(low.bit_length() - 1)
            v ^= low
        return out


EMPTY = BitVector(0, b"")


@dataclass(frozen=True)
class StackMap:
    """runtime/symtab.go: type stackmap {n, nbit int32; bytedata}: n bitmaps of nbit bits,
    each starting on a byte boundary; [i] is stackmapdata(stkmap, i)."""
    n: int
    nbit: int
    data: bytes

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        step = (self.nbit + 7) >> 3
        return BitVector(self.nbit, self.data[i * step:(i + 1) * step])


@dataclass(frozen=True)
class StackObject:
    """runtime/stack.go: stackObjectRecord, with its GC mask (ptrdata/8 bits) resolved."""
    off: int            # < 0: from varp; >= 0: from argp
    size: int
    ptr_bytes: int
    gcdataoff: int
    gcdata: int         # address of the mask: moduledata.rodata + gcdataoff
    mask: BitVector     # bit i: the word at offset 8*i of the object holds a pointer

    def pointer_offsets(self):
        return [8 * i for i in self.mask.bits()]


@dataclass(frozen=True)
class InlinedCall:
    """runtime/symtabinl.go: inlinedCall."""
    func_id: int
    name_off: int
    name: str
    parent_pc: int      # offset from the entry of an instruction whose position is the call site
    start_line: int


@dataclass(frozen=True)
class SourceFrame:
    """One logical frame at a pc (symtabinl.go: inlineFrame + srcFunc + fileLine)."""
    pc: int             # a "call PC": the pc whose file:line is this frame's position
    name: str           # as in funcnametab
    function: str       # as runtime.Frame.Function shows it: funcNameForPrint(name), "" at nameOff 0
    file: str
    line: int
    start_line: int
    func_id: int
    inlined: bool       # False only for the physical (outermost) function


@dataclass(frozen=True)
class Frame:
    """runtime/symtab.go: Frame, as (*Frames).Next returns it."""
    pc: int
    func: "Func | None"     # None for an inlined frame (and for non-Go code)
    function: str
    file: str
    line: int
    start_line: int
    entry: int


@dataclass(frozen=True)
class ArgSlot:
    """One word of a traceback's argument list (traceback.go: printArgs)."""
    off: int            # from argp
    size: int
    live: bool          # False prints as "0x...?" (a register arg whose spill slot is not yet written)


@dataclass(frozen=True)
class Itab:
    """internal/abi/iface.go: ITab."""
    addr: int
    inter: int
    type: int
    hash: int
    fun: tuple          # method addresses; (0,) when Type does not implement Inter
    size: int


@dataclass(frozen=True)
class TypeDesc:
    """An internal/abi.Type the linker laid out among the typelinks (type.go: moduleTypelinks)."""
    addr: int
    kind: str
    size: int
    ptr_bytes: int
    descriptor_size: int    # abi.Type.DescriptorSize


@dataclass(frozen=True)
class FrameLayout:
    """A physical frame as the unwinder and getStackMap see it (stkframe.go: stkframe).

    locals bit i covers the word at locals_base + 8*i (locals_base = varp - 8*locals.n);
    args bit i the word at argp + 8*i; objects[k] lives at object_addr(objects[k])."""
    func: "Func"
    pc: int
    continpc: int
    sp: int
    fp: int
    varp: int
    argp: int
    stack_map_index: int
    locals: BitVector
    args: BitVector
    objects: tuple

    @property
    def return_pc_slot(self):
        return self.fp - PTR_SIZE

    @property
    def saved_bp_slot(self):
        """Where the caller's BP is saved (stack.go: adjustframe adjusts it), or None."""
        return self.varp if self.argp - self.varp == 2 * PTR_SIZE else None

    @property
    def locals_base(self):
        return self.varp - PTR_SIZE * self.locals.n

    def object_addr(self, obj):
        return (self.varp if obj.off < 0 else self.argp) + obj.off

    def pointer_slots(self):
        """Addresses of the live pointer words of the locals and args maps, ascending."""
        return ([self.locals_base + PTR_SIZE * i for i in self.locals.bits()]
                + [self.argp + PTR_SIZE * i for i in self.args.bits()])


def func_name_for_print(name):
    """runtime/traceback.go: funcNameForPrint: the shape names of generic functions become "..."."""
    i = name.find("[")
    if i < 0:
        return name
    j = name.rfind("]")
    if j <= i:
        return name
    interior = name[i + 1:j]
    if "[" not in interior:
        return name[:i] + "[...]" + name[j + 1:]
    # A generic method of a generic type: "pkg.T[...].M[...]"; anything else stays whole.
    depth, rbr, lbr = 1, -1, -1
    for k, c in enumerate(interior):
        if c == "[":
            depth += 1
            if depth == 1:
                lbr = k
                break
        elif c == "]":
            depth -= 1
            if depth < 0:
                break
            if depth == 0:
                rbr = k
    if depth == 1:
        if 0 <= rbr < lbr:
            return name[:i] + "[...]" + interior[rbr + 1:lbr] + "[...]" + name[j + 1:]
        if rbr == -1 and lbr == -1:
            return name[:i] + "[...]" + name[j + 1:]
    return name


def _print_name(name_off, name):
    """funcNameForPrint(srcFunc.name()): moduledata.funcName reads offset 0 as no name."""
    return func_name_for_print(name) if name_off else ""


def elide_wrapper_calling(func_id):
    """runtime/traceback.go: elideWrapperCalling."""
    return func_id not in (FuncID_gopanic, FuncID_sigpanic, FuncID_panicwrap)


def run_gc_prog(prog, what="GC program"):
    """runtime/mbitmap.go: runGCProg -> the bits it writes (a bytearray of 0/1), from a
    bytes-like `prog`: 0 stops; 0nnnnnnn emits n literal bits from the next (n+7)/8 bytes;
    1nnnnnnn c (n = 0: n is a varint first) repeats the previous n bits c times."""
    bits = bytearray()
    p = 0

    def byte():
        nonlocal p
        if p >= len(prog):
            raise BadInput(f"{what}: runs past its end at byte {p}")
        b = prog[p]
        p += 1
        return b

    def varint():
        v = shift = 0
        while True:
            b = byte()
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7

    while True:
        inst = byte()
        n = inst & 0x7F
        if not inst & 0x80:
            if n == 0:
                return bits
            for k in range((n + 7) // 8):
                b = byte()
                bits.extend((b >> j) & 1 for j in range(min(8, n - 8 * k)))
            continue
        if n == 0:
            n = varint()
        c = varint()
        if n > len(bits):
            raise BadInput(f"{what}: repeats {n} bits with only {len(bits)} written (byte {p})")
        bits.extend(bytes(bits[-n:]) * c)


def _pack(bits):
    out = bytearray((len(bits) + 7) // 8)
    for i, b in enumerate(bits):
        if b:
            out[i >> 3] |= 1 << (i & 7)
    return BitVector(len(bits), bytes(out))


# ---- the binary's memory -------------------------------------------------------------

class _Image:
    """The PT_LOAD segments of the ELF at their linked addresses (bss reads as zeros)."""

    def __init__(self, path, data):
        self.path = path
        self.data = data
        try:
            elf = ELFFile(io.BytesIO(data))
            if elf.elfclass != 64 or not elf.little_endian or elf["e_machine"] != "EM_X86_64":
                raise BadInput(f"{path}: not a linux/amd64 binary (ELF class {elf.elfclass}, "
                               f"machine {elf['e_machine']})")
            if elf["e_type"] != "ET_EXEC":
                raise BadInput(f"{path}: ELF type {elf['e_type']}: only non-PIE executables "
                               "(ET_EXEC, linked at fixed addresses) are supported")
            segs = []
            for seg in elf.iter_segments():
                if seg["p_type"] != "PT_LOAD":
                    continue
                off, filesz = seg["p_offset"], seg["p_filesz"]
                if off + filesz > len(data):
                    raise BadInput(f"{path}: truncated: a PT_LOAD segment at {seg['p_vaddr']:#x} "
                                   f"needs file bytes up to {off + filesz:#x}, the file has {len(data):#x}")
                segs.append((seg["p_vaddr"], seg["p_memsz"], off, filesz))
            self.segments = sorted(segs)
            self._starts = [s[0] for s in self.segments]
            self.sections = {}
            for sec in elf.iter_sections():
                if sec["sh_flags"] & 2:      # SHF_ALLOC
                    self.sections[sec.name] = (sec["sh_addr"], sec["sh_size"])
            self._elf = elf
        except BadInput:
            raise
        except (ELFError, struct.error, ValueError, IndexError) as e:
            raise BadInput(f"{path}: not a readable ELF file: {e}") from None

    def symbol(self, name):
        """The address of a .symtab symbol, or None (parsing .symtab is slow: look-ups only)."""
        try:
            symtab = self._elf.get_section_by_name(".symtab")
            found = symtab.get_symbol_by_name(name) if symtab is not None else None
        except (ELFError, struct.error, ValueError, IndexError) as e:
            raise BadInput(f"{self.path}: unreadable .symtab: {e}") from None
        return found[0]["st_value"] if found else None

    def view(self, addr, n, what):
        """n bytes at addr (a memoryview, or zeros in bss), or BadInput naming `what`."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0:
            vaddr, memsz, off, filesz = self.segments[i]
            rel = addr - vaddr
            if n >= 0 and rel + n <= memsz:
                if rel + n <= filesz:
                    return memoryview(self.data)[off + rel:off + rel + n]
                if rel >= filesz:
                    return memoryview(bytes(n))
                return memoryview(bytes(self.data[off + rel:off + filesz]) + bytes(rel + n - filesz))
        raise BadInput(f"{self.path}: {what}: [{addr:#x}, {addr + n:#x}) is outside the loaded image")

    def u64(self, addr, what):
        return int.from_bytes(self.view(addr, 8, what), "little")

    def u32(self, addr, what):
        return int.from_bytes(self.view(addr, 4, what), "little")


class Moduledata:
    """The fields of runtime.moduledata that the runtime's symbol table and GC read.
    Slices are (address, length) pairs."""

    _WORDS = ("pcHeader", "findfunctab", "minpc", "maxpc", "text", "etext", "noptrdata",
              "enoptrdata", "data", "edata", "bss", "ebss", "noptrbss", "enoptrbss", "covctrs",
              "ecovctrs", "end", "gcdata", "gcbss", "types", "typedesclen", "etypes",
              "itaboffset", "itabsize", "rodata", "gofunc", "epclntab")
    _SLICES = ("funcnametab", "cutab", "filetab", "pctab", "pclntable", "ftab", "textsectmap")

    def __init__(self, image, addr):
        raw = image.view(addr, ModuledataLayout.SIZE, "runtime.firstmoduledata")
        self.addr = addr
        for name in self._WORDS:
            o = getattr(ModuledataLayout, name)
            setattr(self, name, int.from_bytes(raw[o:o + 8], "little"))
        for name in self._SLICES:
            o = getattr(ModuledataLayout, name)
            setattr(self, name, (int.from_bytes(raw[o:o + 8], "little"),
                                 int.from_bytes(raw[o + 8:o + 16], "little")))
        self.hasmain = raw[ModuledataLayout.hasmain]


# ---- functions -----------------------------------------------------------------------

class Func:
    """runtime._func of one function (a funcInfo), decoded from the pclntable."""

    __slots__ = ("tab", "index", "funcoff", "entry_off", "entry", "name_off", "name", "args",
                 "deferreturn", "pcsp", "pcfile", "pcln", "npcdata", "cu_offset", "start_line",
                 "func_id", "flag", "nfuncdata", "pcdata_offs", "funcdata_offs", "_end", "_cache")

    def __init__(self, tab, index, funcoff):
        self.tab, self.index, self.funcoff = tab, index, funcoff
        what = f"_func of ftab[{index}] at pclntable+{funcoff:#x}"
        raw = tab._slice(tab._pclntable, funcoff, FuncLayout.SIZE, what)
        (self.entry_off, self.name_off, self.args, self.deferreturn, self.pcsp, self.pcfile,
         self.pcln, self.npcdata, self.cu_offset, self.start_line, self.func_id, self.flag,
         self.nfuncdata) = _FUNC.unpack(raw)
        extra = tab._slice(tab._pclntable, funcoff + FuncLayout.SIZE,
                           4 * (self.npcdata + self.nfuncdata), what + " pcdata/funcdata")
        offs = struct.unpack(f"<{self.npcdata + self.nfuncdata}I", extra)
        self.pcdata_offs = offs[:self.npcdata]
        self.funcdata_offs = offs[self.npcdata:]
        self.entry = tab.text_addr(self.entry_off)
        self.name = tab.func_name(self.name_off)
        self._end = None
        self._cache = {}

    def __repr__(self):
        return f"<Func {self.name} {self.entry:#x}-{self.end:#x}>"

    @property
    def end(self):
        """One past the last instruction: where the pcsp table ends (funcpctab closes every
        table at the function's size); without one, the next function's entry."""
        if self._end is None:
            if self.pcsp:
                self._end = self.entry + self.tab._table(self.pcsp, self)[0][-1]
            else:
                self._end = self.tab.text_addr(self.tab._entryoffs[self.index + 1])
        return self._end

    @property
    def size(self):
        return self.end - self.entry

    @property
    def func_id_name(self):
        return FUNC_IDS[self.func_id] if self.func_id < len(FUNC_IDS) else str(self.func_id)

    @property
    def deferreturn_pc(self):
        """The CALL runtime.deferreturn (_func.deferreturn is its offset; 0: none)."""
        return self.entry + self.deferreturn if self.deferreturn else None

    # -- pc-value tables

    def pcvalue(self, off, pc, strict=True):
        """runtime/symtab.go: pcvalue -> (value at pc, pc where that value starts).
        No table (off 0): (-1, 0). A pc the table does not cover: BadInput when strict,
        else (-1, 0)."""
        if off == 0:
            return -1, 0
        ends, vals = self.tab._table(off, self)
        rel = pc - self.entry
        if rel >= 0:
            i = bisect.bisect_right(ends, rel)
            if i < len(ends):
                return vals[i], self.entry + (ends[i - 1] if i else 0)
        if strict:
            raise BadInput(f"{self.tab.path}: {self.name}: pc {pc:#x} is not covered by its "
                           f"pc-value table at pctab+{off:#x} (function {self.entry:#x}-{self.end:#x})")
        return -1, 0

    def sp_delta(self, pc):
        """runtime/symtab.go: funcspdelta: bytes between SP at pc and SP at entry (the frame
        size at pc, not counting the return PC)."""
        return self.pcvalue(self.pcsp, pc)[0]

    def max_sp_delta(self):
        """runtime/symtab.go: funcMaxSPDelta."""
        if not self.pcsp:
            return 0
        return max(0, *self.tab._table(self.pcsp, self)[1])

    def file_line(self, pc, strict=False):
        """runtime/symtab.go: funcline1 -> (file, line); ("?", 0) where unknown."""
        fileno = self.pcvalue(self.pcfile, pc, strict)[0]
        line = self.pcvalue(self.pcln, pc, strict)[0]
        if fileno == -1 or line == -1 or fileno >= self.tab._filetab[1]:
            return "?", 0
        return self.tab.func_file(self.cu_offset, fileno), line

    def pcdata(self, table, pc, strict=True):
        """runtime/symtab.go: pcdatavalue (-1 where the function has no such table)."""
        if table >= self.npcdata:
            return -1
        return self.pcvalue(self.pcdata_offs[table], pc, strict)[0]

    def unsafe_point(self, pc):
        return self.pcdata(PCDATA_UnsafePoint, pc)

    def stack_map_index(self, pc):
        return self.pcdata(PCDATA_StackMapIndex, pc)

    # -- funcdata

    def funcdata(self, i):
        """runtime/symtab.go: funcdata: the address of the i-th funcdata, or None."""
        if i >= self.nfuncdata or self.funcdata_offs[i] == 0xFFFFFFFF:
            return None
        return self.tab.module.gofunc + self.funcdata_offs[i]

    def _stackmap(self, i, what):
        addr = self.funcdata(i)
        if addr is None:
            return None
        img = self.tab.image
        n, nbit = struct.unpack("<ii", img.view(addr, 8, f"{self.name} {what}"))
        if n < 0 or nbit < 0:
            raise BadInput(f"{self.tab.path}: {self.name}: {what} at {addr:#x} has n={n}, nbit={nbit}")
        data = bytes(img.view(addr + 8, n * ((nbit + 7) >> 3), f"{self.name} {what} bitmaps"))
        return StackMap(n, nbit, data)

    def args_pointer_maps(self):
        """FUNCDATA_ArgsPointerMaps, or None."""
        return self._memo("args", lambda: self._stackmap(FUNCDATA_ArgsPointerMaps, "args stackmap"))

    def locals_pointer_maps(self):
        """FUNCDATA_LocalsPointerMaps, or None."""
        return self._memo("locals", lambda: self._stackmap(FUNCDATA_LocalsPointerMaps, "locals stackmap"))

    def stack_objects(self):
        """FUNCDATA_StackObjects: a uintptr count, then stackObjectRecords (stack.go)."""
        return self._memo("objs", self._read_stack_objects)

    def _read_stack_objects(self):
        addr = self.funcdata(FUNCDATA_StackObjects)
        if addr is None:
            return ()
        img, what = self.tab.image, f"{self.name} stack objects"
        count = img.u64(addr, what)
        raw = img.view(addr + 8, count * StackObjectRecordLayout.SIZE, what)
        out = []
        for off, size, ptr_bytes, gcdataoff in struct.iter_unpack("<iiiI", raw):
            gcdata = self.tab.module.rodata + gcdataoff
            nwords = ptr_bytes // PTR_SIZE
            mask = bytes(img.view(gcdata, (nwords + 7) // 8, f"{what}: GC mask"))
            out.append(StackObject(off, size, ptr_bytes, gcdataoff, gcdata, BitVector(nwords, mask)))
        return tuple(out)

    def inlined_call(self, index):
        """Entry `index` of FUNCDATA_InlTree (symtabinl.go: inlinedCall)."""
        addr = self.funcdata(FUNCDATA_InlTree)
        if addr is None or index < 0:
            raise BadInput(f"{self.tab.path}: {self.name}: no inline tree entry {index}")
        raw = self.tab.image.view(addr + INLINED_CALL_SIZE * index, INLINED_CALL_SIZE,
                                  f"{self.name} inlTree[{index}]")
        func_id, name_off, parent_pc, start_line = struct.unpack("<B3xiii", raw)
        return InlinedCall(func_id, name_off, self.tab.func_name(name_off), parent_pc, start_line)

    def wrapped_entry(self):
        """FUNCDATA_WrapInfo: the entry of the function a wrapper wraps (tracestack.go:
        startPCForTrace), or None."""
        addr = self.funcdata(FUNCDATA_WrapInfo)
        return None if addr is None else self.tab.text_addr(self.tab.image.u32(addr, f"{self.name} wrapinfo"))

    def traceback_args(self, pc):
        """The argument words a traceback prints for this frame at pc (a "call PC"),
        traceback.go: printArgs: ArgSlot(off from argp, size, live) and the markers
        "{", "}", "..." and "_" (offset too large). () when there is no FUNCDATA_ArgInfo."""
        addr = self.funcdata(FUNCDATA_ArgInfo)
        if addr is None:
            return ()
        img, what = self.tab.image, f"{self.name} arginfo"
        live_addr = self.funcdata(FUNCDATA_ArgLiveInfo)
        live_idx = self.pcdata(PCDATA_ArgLiveIndex, pc)
        start = img.view(live_addr, 1, what)[0] if live_addr is not None else 0xFF

        def is_live(off, slot):
            if live_addr is None or live_idx <= 0 or off < start:
                return True
            return bool(img.view(live_addr + live_idx + slot // 8, 1, what)[0] >> (slot % 8) & 1)

        out, p, slot = [], addr, 0
        limit = addr + TRACE_ARGS_MAX_LEN
        markers = {TraceArgsStartAgg: "{", TraceArgsEndAgg: "}", TraceArgsDotdotdot: "...",
                   TraceArgsOffsetTooLarge: "_"}
        while p < limit:
            o = img.view(p, 1, what)[0]
            p += 1
            if o == TraceArgsEndSeq:
                return tuple(out)
            if o in markers:
                out.append(markers[o])
                continue
            sz = img.view(p, 1, what)[0]
            p += 1
            out.append(ArgSlot(o, sz, is_live(o, slot)))
            if o >= start:
                slot += 1
        raise BadInput(f"{self.tab.path}: {what} at {addr:#x} has no end within {TRACE_ARGS_MAX_LEN} bytes")

    def _memo(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]


# ---- the table -----------------------------------------------------------------------

class Pclntab:
    """The runtime symbol table of one linked Go binary (one moduledata)."""

    def __init__(self, path, data):
        self.path = str(path)
        self.image = img = _Image(self.path, data)
        # The linker puts runtime.firstmoduledata alone in .go.module (the symbol table
        # may be stripped; when the section is missing, look for the symbol).
        if ".go.module" in img.sections:
            md_addr = img.sections[".go.module"][0]
        else:
            md_addr = img.symbol("runtime.firstmoduledata")
        if md_addr is None:
            raise BadInput(f"{self.path}: not a Go binary: no runtime.firstmoduledata symbol "
                           "and no .go.module section")
        self.module = md = Moduledata(img, md_addr)
        self._check_header()
        self._funcnametab = md.funcnametab
        self._cutab = (md.cutab[0], 4 * md.cutab[1])          # a []uint32
        self._filetab = md.filetab
        self._pctab = md.pctab
        self._pclntable = md.pclntable
        self._views = {}
        self._strings = {}
        self._cutab_words = None
        self._maps = {}
        nfunc = md.ftab[1] - 1
        if nfunc < 1:
            raise BadInput(f"{self.path}: moduledata.ftab has {md.ftab[1]} entries")
        raw = img.view(md.ftab[0], 8 * nfunc + 4, "ftab")
        words = struct.unpack(f"<{2 * nfunc + 1}I", raw)
        self._entryoffs = list(words[0::2])           # nfunc entries + the end offset
        self._funcoffs = words[1::2]
        if any(a > b for a, b in zip(self._entryoffs, self._entryoffs[1:])):
            raise BadInput(f"{self.path}: ftab is not sorted by entry offset")
        nsect = md.textsectmap[1]
        self._textsects = list(struct.iter_unpack("<QQQ", img.view(md.textsectmap[0], TEXTSECT_SIZE * nsect,
                                                                   "textsectmap")))
        self._funcs = [None] * nfunc
        self._tables = {}
        self._by_name = None
        self._gcmasks = {}

    @classmethod
    def open(cls, path):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise BadInput(f"{path}: cannot read: {e.strerror}") from None
        return cls(path, data)

    # -- raw access

    def _check_header(self):
        md, img = self.module, self.image
        hdr = img.view(md.pcHeader, PcHeaderLayout.SIZE, "pcHeader")
        magic = int.from_bytes(hdr[0:4], "little")
        if magic != GO120_PCLNTAB_MAGIC:
            era = OLD_MAGICS.get(magic, "not a Go pclntab")
            raise BadInput(f"{self.path}: pcHeader.magic is {magic:#x} ({era}); Go 1.20+ writes "
                           f"{GO120_PCLNTAB_MAGIC:#x}")
        if hdr[4] or hdr[5] or hdr[6] != PC_QUANTUM or hdr[7] != PTR_SIZE:
            raise BadInput(f"{self.path}: pcHeader pad1={hdr[4]} pad2={hdr[5]} minLC={hdr[6]} "
                           f"ptrSize={hdr[7]}; want 0, 0, {PC_QUANTUM}, {PTR_SIZE}")
        self.nfunc_header = int.from_bytes(hdr[8:16], "little")
        self.nfiles = int.from_bytes(hdr[16:24], "little")
        for field, table in (("funcnameOffset", md.funcnametab), ("cuOffset", md.cutab),
                             ("filetabOffset", md.filetab), ("pctabOffset", md.pctab),
                             ("pclnOffset", md.pclntable)):
            o = getattr(PcHeaderLayout, field)
            if md.pcHeader + int.from_bytes(hdr[o:o + 8], "little") != table[0]:
                raise BadInput(f"{self.path}: pcHeader.{field} does not point where moduledata's "
                               f"table does ({table[0]:#x})")
        if self.nfunc_header != md.ftab[1] - 1:
            raise BadInput(f"{self.path}: pcHeader.nfunc {self.nfunc_header} but moduledata.ftab "
                           f"has {md.ftab[1]} entries")

    def _view(self, table, what):
        key = table[0]
        if key not in self._views:
            self._views[key] = self.image.view(table[0], table[1], what)
        return self._views[key]

    def _slice(self, table, off, n, what):
        v = self._view(table, what)
        if off < 0 or off + n > len(v):
            raise BadInput(f"{self.path}: {what}: bytes [{off:#x}, {off + n:#x}) past the table's "
                           f"{len(v):#x} bytes")
        return v[off:off + n]

    def _cstring(self, table, off, what):
        key = (table[0], off)
        s = self._strings.get(key)
        if s is None:
            s = self._strings[key] = self._read_cstring(table, off, what)
        return s

    def _read_cstring(self, table, off, what):
        v = self._view(table, what)
        if not 0 <= off < len(v):
            raise BadInput(f"{self.path}: {what}: offset {off:#x} past the table's {len(v):#x} bytes")
        end = bytes(v[off:off + 4096]).find(b"\0")
        if end < 0:
            raise BadInput(f"{self.path}: {what}: no NUL after offset {off:#x}")
        return bytes(v[off:off + end]).decode("utf-8", "replace")

    def _table(self, off, func):
        """The pc-value table at pctab+off as (ends, values): values[i] holds for
        entry+ends[i-1] <= pc < entry+ends[i] (symtab.go: step). Decoded once, shared by
        every function using those bytes."""
        t = self._tables.get(off)
        if t is not None:
            return t
        p = self._view(self._pctab, "pctab")
        ends, vals = [], []
        pc, val, i, n = 0, -1, off, len(p)

        def varint():
            nonlocal i
            v = shift = 0
            while True:
                if i >= n:
                    raise BadInput(f"{self.path}: {func.name}: pc-value table at pctab+{off:#x} "
                                   "runs past the end of pctab")
                b = p[i]
                i += 1
                v |= (b & 0x7F) << (shift & 31)
                if not b & 0x80:
                    return v & 0xFFFFFFFF
                shift += 7

        while True:
            if i >= n:
                raise BadInput(f"{self.path}: {func.name}: pc-value table at pctab+{off:#x} "
                               "runs past the end of pctab")
            if p[i] == 0 and pc != 0:
                break
            uv = varint()
            val = ((val + ((uv >> 1) ^ -(uv & 1))) + 0x80000000) % (1 << 32) - 0x80000000
            pc += varint() * PC_QUANTUM
            ends.append(pc)
            vals.append(val)
        if not ends:
            raise BadInput(f"{self.path}: {func.name}: empty pc-value table at pctab+{off:#x}")
        t = self._tables[off] = (ends, vals)
        return t

    # -- names and addresses

    def func_name(self, name_off):
        """The name at funcnametab+name_off. The runtime's moduledata.funcName gives "" for
        offset 0, the first function's name; frames (SourceFrame.function, Frame.function)
        follow the runtime, Func.name and InlinedCall.name do not."""
        return self._cstring(self._funcnametab, name_off, "funcnametab")

    def func_file(self, cu_offset, fileno):
        """runtime/symtab.go: funcfile ("?" where the file was dropped)."""
        if self._cutab_words is None:
            raw = self._slice(self._cutab, 0, self._cutab[1], "cutab")
            self._cutab_words = struct.unpack(f"<{len(raw) // 4}I", raw)
        idx = cu_offset + fileno
        if not 0 <= idx < len(self._cutab_words):
            raise BadInput(f"{self.path}: cutab index {idx} past its {len(self._cutab_words)} entries")
        fileoff = self._cutab_words[idx]
        if fileoff == 0xFFFFFFFF:
            return "?"
        return self._cstring(self._filetab, fileoff, "filetab")

    def text_addr(self, off):
        """runtime/symtab.go: moduledata.textAddr."""
        res = self.module.text + off
        if len(self._textsects) > 1:
            for i, (vaddr, end, base) in enumerate(self._textsects):
                if vaddr <= off < end or (i == len(self._textsects) - 1 and off == end):
                    res = base + off - vaddr
                    break
            if res > self.module.etext:
                raise BadInput(f"{self.path}: text offset {off:#x} out of range")
        return res

    def text_off(self, pc):
        """runtime/symtab.go: moduledata.textOff -> offset from text, or None."""
        res = pc - self.module.text
        if len(self._textsects) > 1:
            for i, (vaddr, end, base) in enumerate(self._textsects):
                if base > pc:
                    return None
                stop = base + (end - vaddr) + (1 if i == len(self._textsects) - 1 else 0)
                if pc < stop:
                    return pc - base + vaddr
        return res

    # -- functions

    def __len__(self):
        return len(self._funcs)

    def func(self, index):
        """The index-th function of ftab (in entry order)."""
        f = self._funcs[index]
        if f is None:
            f = self._funcs[index] = Func(self, index, self._funcoffs[index])
        return f

    def funcs(self):
        return [self.func(i) for i in range(len(self._funcs))]

    def findfunc(self, pc, strict=False):
        """runtime/symtab.go: findfunc: the function whose entry is the last at or below pc,
        for minpc <= pc < maxpc (as the runtime, a pc in the padding after a function
        finds that function; strict=True refuses it). BadInput outside every function."""
        f = self._findfunc(pc)
        if f is None or (strict and pc >= f.end):
            raise BadInput(f"{self.path}: pc {pc:#x} is in no Go function (text "
                           f"{self.module.minpc:#x}-{self.module.maxpc:#x})")
        return f

    def _findfunc(self, pc):
        md = self.module
        if not md.minpc <= pc < md.maxpc:
            return None
        off = self.text_off(pc)
        if off is None:
            return None
        i = bisect.bisect_right(self._entryoffs, off, 0, len(self._funcs)) - 1
        return self.func(i) if i >= 0 else None

    def func_named(self, name):
        """The function of that funcnametab name (the first, if several have it)."""
        if self._by_name is None:
            self._by_name = {}
            for f in self.funcs():
                self._by_name.setdefault(f.name, f)
        f = self._by_name.get(name)
        if f is None:
            raise BadInput(f"{self.path}: no function named {name!r}")
        return f

    # -- source positions

    def inline_frames(self, pc):
        """runtime/symtabinl.go: the inlineUnwinder walk at a "call PC": each logical frame,
        innermost first, the physical function last."""
        f = self.findfunc(pc)
        inl = f.funcdata(FUNCDATA_InlTree) is not None
        out = []
        idx = f.pcdata(PCDATA_InlTreeIndex, pc, strict=False) if inl else -1
        while True:
            if idx < 0:
                file, line = f.file_line(pc)
                out.append(SourceFrame(pc, f.name, _print_name(f.name_off, f.name), file, line,
                                       f.start_line, f.func_id, False))
                return out
            if len(out) > 10000:
                raise BadInput(f"{self.path}: {f.name}: the inline tree loops at pc {pc:#x}")
            call = f.inlined_call(idx)
            file, line = f.file_line(pc)
            out.append(SourceFrame(pc, call.name, _print_name(call.name_off, call.name), file, line,
                                   call.start_line, call.func_id, True))
            pc = f.entry + call.parent_pc
            idx = f.pcdata(PCDATA_InlTreeIndex, pc, strict=False)

    def callers_frames(self, pcs):
        """runtime/symtab.go: CallersFrames(pcs) then Next until done: every Frame, given the
        return PCs runtime.Callers stores (virtual PCs of inlined callers included; where
        they are missing, as in PCs taken from a printed trace, they are filled in).
        PCs in no Go function are skipped (there is no cgo symbolizer)."""
        callers, next_pc, out = list(pcs), 0, []
        while callers:
            if next_pc:
                pc, next_pc = next_pc, 0
            else:
                pc = callers.pop(0)
            f = self._findfunc(pc)
            if f is None:
                continue
            if pc > f.entry:
                pc -= 1
            frames = self.inline_frames(pc)
            sf, func = frames[0], f
            if sf.inlined:
                func = None
                for unext in frames[1:]:
                    if not callers or callers[0] == unext.pc + 1:
                        break
                    if unext.func_id == FuncIDWrapper and elide_wrapper_calling(sf.func_id):
                        continue
                    next_pc = unext.pc + 1
                    break
            file, line = f.file_line(pc)
            out.append(Frame(pc, func, sf.function, file, line, sf.start_line, f.entry))
        return out

    # -- frames and stack maps

    def frame(self, pc, sp, continpc=None):
        """The frame of the function running at pc with stack pointer sp, and its stack maps
        (traceback.go: resolveInternal for fp/varp/argp; stkframe.go: getStackMap).

        pc is frame.pc: for a frame that made a call, its return address. continpc (where
        execution resumes, whose liveness counts) defaults to pc; 0 means a dead frame
        (no maps)."""
        return self._frame(self.findfunc(pc), pc, sp, pc if continpc is None else continpc)

    def _frame(self, f, pc, sp, continpc):
        if f.pcsp == 0:
            raise BadInput(f"{self.path}: {f.name} has no pcsp table: no frame information")
        fp = sp + f.sp_delta(pc) + PTR_SIZE          # the CALL pushed the return PC
        varp = fp - PTR_SIZE
        if varp > sp:                                # a frame saves BP at its top
            varp -= PTR_SIZE
        argp = fp + MIN_FRAME_SIZE
        if continpc == 0:
            return FrameLayout(f, pc, 0, sp, fp, varp, argp, -1, EMPTY, EMPTY, ())
        idx, locals_, args, objs = self._stack_maps(f, continpc, varp - sp)
        return FrameLayout(f, pc, continpc, sp, fp, varp, argp, idx, locals_, args, objs)

    def unwind(self, pc, sp, read_word):
        """The physical frames of a goroutine stack, innermost first, as a precise unwind for
        a GC scan or copystack walks them (traceback.go: unwinder with no flags): from pc/sp
        (gp.sched.pc/sp), each caller's pc is the word at fp-8 (read_word(addr) reads stack
        memory) and its sp is fp. It stops after a FuncFlagTopFrame function (goexit), at a
        zero return PC, at a function without frame information, or after an innermost
        SPWRITE function. A frame that called sigpanic continues at its deferreturn (or is
        dead). Not modelled: jumps between g0 and the goroutine stack (morestack,
        systemstack) and the cgo cases; an unwind that meets them raises InvariantError."""
        frames, callee_id, innermost = [], FuncIDNormal, True
        f = self._findfunc(pc)
        if f is None:
            raise InvariantError(f"{self.path}: unwind: pc {pc:#x} is in no Go function")
        while True:
            continpc = pc
            if callee_id == FuncID_sigpanic:
                continpc = f.entry + f.deferreturn + 1 if f.deferreturn else 0
            if f.pcsp == 0:
                return frames
            fr = self._frame(f, pc, sp, continpc)
            frames.append(fr)
            if f.flag & FuncFlagTopFrame:
                return frames
            if f.flag & FuncFlagSPWrite and f.func_id != FuncID_cgocallback:
                if not innermost:
                    raise InvariantError(f"{self.path}: traceback: unexpected SPWRITE function {f.name}")
                return frames
            lr = read_word(fr.return_pc_slot)
            if lr == 0:
                return frames
            caller = self._findfunc(lr)
            if caller is None:
                raise InvariantError(f"{self.path}: unexpected return pc for {f.name} called from {lr:#x}")
            if pc == lr and sp == fr.fp:
                raise InvariantError(f"{self.path}: traceback stuck. pc={pc:#x} sp={sp:#x}")
            callee_id, f, pc, sp, innermost = f.func_id, caller, lr, fr.fp, False

    def _stack_maps(self, f, targetpc, locals_size):
        key = (f.index, targetpc, locals_size > MIN_FRAME_SIZE)
        maps = self._maps.get(key)
        if maps is None:
            maps = self._maps[key] = self._get_stack_map(f, targetpc, locals_size)
        return maps

    def _get_stack_map(self, f, targetpc, locals_size):
        """stkframe.go: getStackMap -> (stack-map index, locals, args, stack objects)."""
        where = f"{self.path}: {f.name} at pc {targetpc:#x}"
        pcdata = -1
        if targetpc != f.entry:
            targetpc -= 1                            # back up into the CALL
            pcdata = f.stack_map_index(targetpc)
        if pcdata == -1:
            pcdata = 0                               # the prologue: assume the entry map
        locals_ = EMPTY
        if locals_size > MIN_FRAME_SIZE:
            stkmap = f.locals_pointer_maps()
            if stkmap is None or stkmap.n <= 0:
                raise BadInput(f"{where}: missing locals stackmap for a {locals_size}-byte frame")
            if stkmap.nbit > 0:
                if not 0 <= pcdata < stkmap.n:
                    raise BadInput(f"{where}: stack map index {pcdata} but {stkmap.n} locals maps")
                locals_ = stkmap[pcdata]
        args = EMPTY
        if f.args == ARGS_SIZE_UNKNOWN:
            if f.name in REFLECT_STUBS:
                raise BadInput(f"{where}: reflect stub frames (argument maps in memory) are not supported")
        elif f.args // PTR_SIZE > 0:
            stkmap = f.args_pointer_maps()
            if stkmap is None or stkmap.n <= 0:
                raise BadInput(f"{where}: missing args stackmap for {f.args} bytes of arguments")
            if not 0 <= pcdata < stkmap.n:
                raise BadInput(f"{where}: stack map index {pcdata} but {stkmap.n} args maps")
            if stkmap.nbit > 0:
                args = stkmap[pcdata]
        return pcdata, locals_, args, f.stack_objects()

    # -- module-level GC data

    def _gc_mask(self, prog_addr, lo, hi, what):
        """symtab.go: modulesinit: progToPointerMask(prog, hi-lo): bit i covers the word at lo+8*i."""
        n = (hi - lo) // PTR_SIZE
        sec_end = max((a + s for a, s in self.image.sections.values() if a <= prog_addr < a + s),
                      default=prog_addr)
        prog = self.image.view(prog_addr, sec_end - prog_addr, what)
        bits = run_gc_prog(prog, f"{self.path}: {what}")
        if len(bits) > n:
            raise BadInput(f"{self.path}: {what} writes {len(bits)} bits for a {n}-word section")
        return _pack(bits)

    def gcdata_mask(self):
        """The pointer mask of .data: bit i set when the word at moduledata.data + 8*i holds a pointer."""
        md = self.module
        if "gcdata" not in self._gcmasks:
            self._gcmasks["gcdata"] = self._gc_mask(md.gcdata, md.data, md.edata, "runtime.gcdata")
        return self._gcmasks["gcdata"]

    def gcbss_mask(self):
        """The pointer mask of .bss: bit i set when the word at moduledata.bss + 8*i holds a pointer."""
        md = self.module
        if "gcbss" not in self._gcmasks:
            self._gcmasks["gcbss"] = self._gc_mask(md.gcbss, md.bss, md.ebss, "runtime.gcbss")
        return self._gcmasks["gcbss"]

    def typelinks(self):
        """runtime/type.go: moduleTypelinks: the type descriptors from types+8 to
        types+typedesclen, each at a pointer-aligned address after the previous one's
        DescriptorSize."""
        md, img = self.module, self.image
        td, end, out = md.types + PTR_SIZE, md.types + md.typedesclen, []
        while td < end:
            td = (td + PTR_SIZE - 1) & -PTR_SIZE
            raw = img.view(td, TYPE_SIZE, "type descriptor")
            size, ptr_bytes = struct.unpack_from("<QQ", raw)
            kind_no = raw[TYPE_KIND]
            if not 0 < kind_no < len(KINDS):
                raise BadInput(f"{self.path}: type descriptor at {td:#x} has kind {kind_no}")
            kind = KINDS[kind_no]
            n = KIND_BASE_SIZE.get(kind, TYPE_SIZE)
            base = n
            if kind == "func":
                incount, outcount = struct.unpack("<HH", img.view(td + TYPE_SIZE, 4, "FuncType"))
                extra = (incount + (outcount & 0x7FFF)) * PTR_SIZE
            elif kind in ("interface", "struct"):
                count = img.u64(td + SLICE_LEN_AFTER_NAME, f"{kind} type descriptor")
                extra = count * (IMETHOD_SIZE if kind == "interface" else STRUCT_FIELD_SIZE)
            else:
                extra = 0
            if raw[TYPE_TFLAG] & TFLAG_UNCOMMON:
                mcount = struct.unpack("<H", img.view(td + base + 4, 2, "UncommonType"))[0]
                n += UNCOMMON_TYPE_SIZE + mcount * METHOD_SIZE
            n += extra
            out.append(TypeDesc(td, kind, size, ptr_bytes, n))
            td += n
        if td != end:
            raise BadInput(f"{self.path}: typelinks end at {td:#x}, moduledata says {end:#x}")
        return out

    def itabs(self):
        """iface.go: addModuleItabs: the itabs the linker laid out at types+itaboffset."""
        md, img = self.module, self.image
        p = md.types + md.itaboffset
        end = p + md.itabsize
        out = []
        while p < end:
            inter, typ = img.u64(p, "itab"), img.u64(p + 8, "itab")
            h = img.u32(p + 16, "itab")
            fun0 = img.u64(p + 24, "itab")
            nmeth = img.u64(inter + SLICE_LEN_AFTER_NAME, "itab's interface type") if fun0 else 1
            if nmeth == 0:
                raise BadInput(f"{self.path}: itab at {p:#x}: interface with no methods")
            size = ITAB_SIZE + (nmeth - 1) * PTR_SIZE if fun0 else ITAB_SIZE
            fun = struct.unpack(f"<{nmeth}Q", img.view(p + 24, 8 * nmeth, "itab.Fun"))
            out.append(Itab(p, inter, typ, h, fun, size))
            p += size
        return out

