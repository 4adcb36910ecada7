"""Cycles per path: a timing model of the instruction stream gomemu executed.

  recorder.py   Recorder: the executed blocks and data accesses of a run, recorded by
                native unicorn callbacks (cheap); Stream: what the model reads
  decode.py     capstone -> instruction forms, registers, memory records, branches
  uarch.py      what a CPU description holds; zen4.py, zen3.py, sunny_cove.py, golden_cove.py: the descriptions,
                every number with its source (as uiCA's microArchConfigs.py)
  model.py      Model: the stream scheduled on one µarch (front end, renamer, pipes,
                caches and TLBs from cache.py, store forwarding, branch prediction)
  tsc.py        RDTSC/RDTSCP inside the emulator return a value from Python (the modelled cycles)
  native.py     runs the same bytes on the host in a child process and times them
  harness.py    the native measurement's own loop, modelled (so both are the same quantity)
  mca.py        llvm-mca's estimate for the executed blocks, where llvm-mca is installed
  calibrate.py  one path modelled, measured and estimated by llvm-mca, and the native memory
                compared with the emulator's

Typical use:
    with Recorder(uc) as rec:
        ...run the code...
    model = Model(uarch("zen4"), read_code)
    t = model.run(rec.stream())          # t.cycles, t.l1d_misses, t.mispredicts, ...
See docs/timing.md for what is modelled, the sources, and the figures measured.
"""

from emu.errors import BadInput
from emu.timing.golden_cove import GOLDEN_COVE
from emu.timing.sunny_cove import SUNNY_COVE
from emu.timing.zen3 import ZEN3
from emu.timing.zen4 import ZEN4

UARCHS = {u.name: u for u in (ZEN4, ZEN3, SUNNY_COVE, GOLDEN_COVE)}
ALIASES = {"icelake": "sunny_cove", "ice_lake": "sunny_cove", "icelake-server": "sunny_cove", "znver4": "zen4",
           "znver3": "zen3", "raptor_cove": "golden_cove", "alderlake": "golden_cove",
           "sapphirerapids": "golden_cove", "emeraldrapids": "golden_cove"}
# Intel family 6 models whose (P-)core is Golden Cove or Raptor Cove (Intel SDM vol. 4, table 2-1;
# Linux arch/x86/include/asm/intel-family.h): Alder Lake 97h/9Ah, Raptor Lake B7h/BAh/BFh,
# Sapphire Rapids 8Fh, Emerald Rapids CFh. Alder Lake-N (BEh) is E-cores only; Granite Rapids
# (ADh/AEh) and Meteor Lake (AAh/ACh) have Redwood Cove, which gomemu does not describe.
GOLDEN_COVE_MODELS = frozenset({0x97, 0x9A, 0xB7, 0xBA, 0xBF, 0x8F, 0xCF})
# Redwood Cove parts that have AMX too: named, so the AMX rule below does not claim them.
GRANITE_RAPIDS_MODELS = frozenset({0xAD, 0xAE})
SUNNY_COVE_MODELS = frozenset({0x6A, 0x6C, 0x7D, 0x7E})
DEFAULT = "zen4"


def uarch(name=DEFAULT):
    """The description named `name` (--uarch)."""
    key = ALIASES.get(name, name)
    if key not in UARCHS:
        raise BadInput(f"unknown µarch {name!r}: known are {', '.join(sorted(UARCHS))}")
    return UARCHS[key]


def host_uarch():
    """The description of this host's core, from /proc/cpuinfo, or None when there is none."""
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                k = k.strip()
                if k in ("vendor_id", "cpu family", "model", "flags") and k not in info:
                    info[k] = v.strip()
                if len(info) == 4:
                    break
    except OSError:
        return None
    try:
        family, model = int(info.get("cpu family", "")), int(info.get("model", ""))
    except ValueError:
        return None
    return core_of(info.get("vendor_id"), family, model, info.get("flags", "").split())


def core_of(vendor, family, model, flags=()):
    """The description of the core of a CPU named by its CPUID vendor, family and model (and its
    /proc/cpuinfo flags), or None."""
    if vendor == "AuthenticAMD" and family == 0x19 and (0x10 <= model <= 0x1F or 0x60 <= model <= 0x7F
                                                        or 0xA0 <= model <= 0xAF):
        return ZEN4
    if vendor == "AuthenticAMD" and family == 0x19 and (model <= 0x0F or 0x20 <= model <= 0x2F
                                                        or 0x40 <= model <= 0x5F):
        return ZEN3
    if vendor == "GenuineIntel" and family == 6 and model in SUNNY_COVE_MODELS:
        return SUNNY_COVE
    if vendor == "GenuineIntel" and family == 6 and model in GOLDEN_COVE_MODELS:
        return GOLDEN_COVE
    # A hypervisor may report another model number (a KVM guest on Sapphire Rapids said 167, A7h,
    # which is Rocket Lake's): of the family 6 parts only Sapphire/Emerald Rapids (Golden/Raptor
    # Cove) and Granite Rapids (not described) have AMX (Intel's ISE programming reference, chapter
    # 1's feature list), so AMX on
    # an unlisted model is a Golden Cove core.
    if (vendor == "GenuineIntel" and family == 6 and "amx_tile" in flags
            and model not in GRANITE_RAPIDS_MODELS):
        return GOLDEN_COVE
    return None


def choose(name=None):
    """(description, how it was chosen) for --uarch NAME, or the default: the host's core when
    gomemu describes it, else DEFAULT."""
    if name:
        return uarch(name), "--uarch"
    u = host_uarch()
    if u is not None:
        return u, "the host's (/proc/cpuinfo)"
    return uarch(DEFAULT), "the default (gomemu has no description of the host's core)"
