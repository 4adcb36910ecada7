"""AMD Zen 3 (family 19h, models 00h-0Fh, 20h-2Fh, 40h-5Fh: EPYC 7003 Milan, Ryzen 5000).

Zen 4 kept Zen 3's integer core (the same four ALUs, three AGUs, two branch units, the
same fusion rules) and enlarged the buffers, the op cache and the L2; this description is
Zen 4's (zen4.py) with every number that differs replaced, each with its source:
  SOG3    AMD, Software Optimization Guide for AMD EPYC 7003 Processors (pub. 56665, rev. 3.00, 2020)
  C&C3    chipsandcheese, "AMD's Zen 3: a Look at the Front End and Execution Engine" and
          "Zen 3's Memory Subsystem" (2021); Milan's DRAM latency in the EPYC 7003 article
  AF      Agner Fog, "The microarchitecture of Intel, AMD and VIA CPUs" (2024), the Zen 3 chapter
  LSCPU   this host (family 19h model 01h, an EPYC Milan under KVM): L1D 32 KiB, L2 512 KiB per
          core, L3 32 MiB (lscpu, /proc/cpuinfo "cache size")
"approx." as in zen4.py. The instruction forms are Zen 4's: AF and uops.info give Zen 3 the
same latencies for every form our routines and the compiler's code use (approx. for the
bit counts, which AF lists as 1 on both).
"""

from dataclasses import replace

from emu.timing.uarch import CacheLevel, TLBLevel
from emu.timing.zen4 import ZEN4

ZEN3 = replace(
    ZEN4,
    name="zen3",
    vendor_name="AMD Zen 3 (EPYC 7003 / Ryzen 5000)",
    opcache_width=8,           # SOG3: the op cache delivers 8 macro-ops per cycle (4K entries)
    rob=256,                   # SOG3, C&C3: 256-entry retire queue
    store_buffer=64,           # SOG3: 64-entry store queue
    mispredict_penalty=13,     # SOG3: 11-18 cycles, typically 13 (approx.)
    caches=(
        CacheLevel("L1D", 32 << 10, 8, 64, 4, "SOG3/LSCPU: 32 KiB, 8-way, 64 B lines, 4-cycle integer load-to-use"),
        CacheLevel("L2", 512 << 10, 8, 64, 12, "SOG3/LSCPU: 512 KiB, 8-way; SOG3: 12 cycles"),
        CacheLevel("L3", 32 << 20, 16, 64, 46, "SOG3/LSCPU: 32 MiB per CCX, 16-way; C&C3: about 46 cycles"),
    ),
    memory_latency=380,        # C&C3: Milan DRAM about 110-120 ns at 3.3-3.7 GHz (approx.)
    tlbs=(
        TLBLevel("L1 DTLB", 64, 64, 0, "SOG3: 64 entries, fully associative"),
        TLBLevel("L2 DTLB", 2048, 16, 7, "SOG3: 2048 entries; C&C3: an L2 DTLB hit adds about 7 cycles (approx.)"),
    ),
    sources=("SOG 56665", "chipsandcheese Zen 3", "Agner Fog", "uops.info", "corsix.org macro-fusion notes",
             "this host's lscpu"),
    notes="The µarch of the development VM (family 19h model 01h) at the time of measurement.",
)
