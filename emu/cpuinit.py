"""The CPU features the runtime reads, from the emulated CPU's own CPUID.

Go detects them at start-up (asm_amd64.s: rt0_go sets isIntel and processorVersionInfo;
internal/cpu/cpu_x86.go: doinit fills internal/cpu.X86; proc.go: cpuinit copies four
flags into the runtime; cpuflags_amd64.go: init sets memmoveBits), and the runtime's
machine code branches on them: memclrNoHeapPointers clears 2 KiB and more with REP STOSQ
when X86.HasERMS, and with a MOVOU loop otherwise. gomemu does not run those (doinit
builds its GODEBUG options on the heap), so this does what they do, in Python, from the
CPUID of unicorn's default CPU model (the one every machine runs on).

Simplified: the GODEBUG cpu.* options (processOptions) are not read.
"""

from functools import lru_cache

import keystone
from emu.errors import BadInput
from unicorn import Uc, UC_ARCH_X86, UC_MODE_64
from unicorn.x86_const import UC_X86_REG_EAX, UC_X86_REG_EBX, UC_X86_REG_ECX, UC_X86_REG_EDX

_CODE = 0x1000
_LEAVES = ((0, 0), (1, 0), (7, 0), (7, 1), (0x80000000, 0), (0x80000001, 0))

# cpu_x86.go: doinit, (field, CPUID leaf, register, bit, what else it needs), in its order.
# Needs: "avx" = osSupportsAVX, "avx512" = osSupportsAVX512, "HasX" = that flag.
_FEATURES = (
    ("HasSSE3", 1, "ecx", 0, ()), ("HasPCLMULQDQ", 1, "ecx", 1, ()), ("HasSSSE3", 1, "ecx", 9, ()),
    ("HasSSE41", 1, "ecx", 19, ()), ("HasSSE42", 1, "ecx", 20, ()), ("HasPOPCNT", 1, "ecx", 23, ()),
    ("HasAES", 1, "ecx", 25, ()), ("HasOSXSAVE", 1, "ecx", 27, ()),
    ("HasAVX", 1, "ecx", 28, ("avx",)), ("HasFMA", 1, "ecx", 12, ("HasAVX", "HasOSXSAVE")),
    ("HasBMI1", 7, "ebx", 3, ()), ("HasAVX2", 7, "ebx", 5, ("avx",)), ("HasBMI2", 7, "ebx", 8, ()),
    ("HasERMS", 7, "ebx", 9, ()), ("HasADX", 7, "ebx", 19, ()), ("HasSHA", 7, "ebx", 29, ()),
    ("HasVAES", 7, "ecx", 9, ("HasAVX",)), ("HasVPCLMULQDQ", 7, "ecx", 10, ()),
    ("HasAVX512F", 7, "ebx", 16, ("avx512",)),
    ("HasAVX512CD", 7, "ebx", 28, ("HasAVX512F",)), ("HasAVX512BW", 7, "ebx", 30, ("HasAVX512F",)),
    ("HasAVX512DQ", 7, "ebx", 17, ("HasAVX512F",)), ("HasAVX512VL", 7, "ebx", 31, ("HasAVX512F",)),
    ("HasAVX512GFNI", 7, "ecx", 8, ("HasAVX512F",)), ("HasAVX512BITALG", 7, "ecx", 12, ("HasAVX512F",)),
    ("HasAVX512VPOPCNTDQ", 7, "ecx", 14, ("HasAVX512F",)), ("HasAVX512VBMI", 7, "ecx", 1, ("HasAVX512F",)),
    ("HasAVX512VBMI2", 7, "ecx", 6, ("HasAVX512F",)), ("HasAVX512VNNI", 7, "ecx", 11, ("HasAVX512F",)),
    ("HasAVX512VPCLMULQDQ", 7, "ecx", 10, ("HasAVX512F",)), ("HasGFNI", 7, "ecx", 8, ("HasAVX512F",)),
    ("HasAVX512VAES", 7, "ecx", 9, ("HasAVX512F", "HasAES", "vl")),
    ("HasFSRM", 7, "edx", 4, ()), ("HasRDTSCP", 0x80000001, "edx", 27, ()),
    ("HasAVXVNNI", (7, 1), "eax", 4, ("HasAVX",)),
)
# proc.go: cpuinit's copies for the compiler's guarded instructions.
RUNTIME_COPIES = (("runtime.x86HasAVX", "HasAVX"), ("runtime.x86HasFMA", "HasFMA"),
                  ("runtime.x86HasPOPCNT", "HasPOPCNT"), ("runtime.x86HasSSE41", "HasSSE41"))
AVX_SUPPORTED, REPMOVS_PREFERRED = 1, 2      # cpuflags_amd64.go: memmoveBits


@lru_cache(maxsize=1)
def emulated_cpuid():
    """{(leaf, subleaf): (eax, ebx, ecx, edx)} and XGETBV(0)'s EAX of unicorn's default
    x86-64 CPU (the same model for every machine, so read once)."""
    ks = keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64)
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(_CODE, 0x1000)
    regs = (UC_X86_REG_EAX, UC_X86_REG_EBX, UC_X86_REG_ECX, UC_X86_REG_EDX)
    out = {}
    for code, leaf, sub in [("cpuid", lf, s) for lf, s in _LEAVES] + [("xgetbv", None, 0)]:
        b = bytes(ks.asm(code, _CODE)[0])
        uc.mem_write(_CODE, b)
        uc.reg_write(UC_X86_REG_EAX, leaf or 0)
        uc.reg_write(UC_X86_REG_ECX, sub)
        uc.emu_start(_CODE, _CODE + len(b))
        out[(leaf, sub) if leaf is not None else "xgetbv"] = tuple(uc.reg_read(r) & 0xFFFFFFFF for r in regs)
    return out


def x86_features(cpuid):
    """internal/cpu/cpu_x86.go: doinit (and Initialize's doDerived): {field: bool}."""
    f = {name: False for name, *_ in _FEATURES}
    f["HasAVX512"] = False
    max_id = cpuid[(0, 0)][0]
    if max_id < 1:
        return f
    regs = {leaf: dict(zip(("eax", "ebx", "ecx", "edx"), v)) for leaf, v in cpuid.items() if leaf != "xgetbv"}
    xcr0 = cpuid["xgetbv"][0] if cpuid[(1, 0)][2] >> 27 & 1 else 0     # XGETBV needs OSXSAVE
    os_avx = bool(xcr0 & 2 and xcr0 & 4)
    need = {"avx": os_avx, "avx512": os_avx and all(xcr0 >> b & 1 for b in (5, 6, 7)),
            "vl": bool(cpuid[(7, 0)][1] >> 31 & 1) if max_id >= 7 else False}
    ext = cpuid[(0x80000000, 0)][0]
    for name, leaf, reg, bit, needs in _FEATURES:
        key = leaf if isinstance(leaf, tuple) else (leaf, 0)
        if key[0] == 7 and max_id < 7 or key == (0x80000001, 0) and ext < 0x80000001:
            continue
        if key == (7, 1) and cpuid[(7, 0)][0] < 1:
            continue
        f[name] = bool(regs[key][reg] >> bit & 1) and all(f[n] if n in f else need[n] for n in needs)
    f["HasAVX512"] = all(f[n] for n in ("HasAVX512F", "HasAVX512CD", "HasAVX512BW", "HasAVX512DQ",
                                         "HasAVX512VL"))
    return f


def is_intel(cpuid):
    """asm_amd64.s: rt0_go's vendor test ("GenuineIntel" in EBX, EDX, ECX)."""
    _, ebx, ecx, edx = cpuid[(0, 0)]
    return (ebx, edx, ecx) == (0x756E6547, 0x49656E69, 0x6C65746E)


def memmove_bits(features, intel):
    """cpuflags_amd64.go: init: memmoveBits."""
    return (AVX_SUPPORTED if features["HasAVX"] else 0) | \
        (REPMOVS_PREFERRED if intel and features["HasERMS"] and features["HasFSRM"] else 0)


def x86_fields(image):
    """{field: offset} of internal/cpu.X86, whose type has no name: DWARF calls it by its
    text, the struct with HasERMS among its fields."""
    types = image._dwarf_types()
    for name, fields in types.items():
        if name.startswith("struct { internal/cpu._ internal/cpu.CacheLinePad;") and " HasERMS bool;" in name:
            return fields
    raise BadInput(f"{image.path.name}: no DWARF description of internal/cpu.X86")


def write_cpu_features(mem, image, symbol):
    """Set in emulated memory what rt0_go, cpuinit and the runtime's init set from CPUID."""
    cpuid = emulated_cpuid()
    feats = x86_features(cpuid)
    x86 = symbol("internal/cpu.X86")
    fields = x86_fields(image)
    for name, v in feats.items():
        mem.w8(x86 + fields[name], int(v))
    for var, name in RUNTIME_COPIES:
        if image.has(var):
            mem.w8(symbol(var), int(feats[name]))
    intel = is_intel(cpuid)
    for var, v in (("runtime.isIntel", int(intel)), ("runtime.memmoveBits", memmove_bits(feats, intel))):
        if image.has(var):
            mem.w8(symbol(var), v)
    if image.has("internal/cpu.maxExtendedFunctionInformation"):
        mem.w32(symbol("internal/cpu.maxExtendedFunctionInformation"), cpuid[(0x80000000, 0)][0])
    if image.has("runtime.processorVersionInfo"):
        mem.w32(symbol("runtime.processorVersionInfo"), cpuid[(1, 0)][0])
    return feats
