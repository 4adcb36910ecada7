"""AMD Zen 4 (family 19h, models 10h-1Fh and 60h-7Fh: EPYC 9004 Genoa, Ryzen 7000).

Sources, named in each comment:
  SOG     AMD, Software Optimization Guide for the AMD Zen4 Microarchitecture (pub. 57647, rev. 1.00, 2023)
  AT      AnandTech, "AMD Zen 4 Ryzen 9 7950X and Ryzen 5 7600X Review" (2022), the front-end page
  C&C     chipsandcheese, "AMD's Zen 4 Part 1: Frontend and Execution Engine" and "Part 2: Memory
          Subsystem" (2022); "Genoa's memory latency" for EPYC
  AF      Agner Fog, "Instruction tables" and "The microarchitecture of Intel, AMD and VIA CPUs" (2024)
  UOPS    uops.info measurements for Zen 4
  CORSIX  corsix.org, "x86 macro-op fusion notes" (table of fusible pairs per µarch)
"approx." marks a number that the sources give as a range or that was not measured for Zen 4
itself (taken from Zen 3); the calibration note in docs/timing.md lists how each was checked.
"""

from emu.timing.uarch import CacheLevel, Form, TLBLevel, UArch

ALU = ("alu0", "alu1", "alu2", "alu3")
BR = ("alu0", "alu3")          # the two branch units sit beside ALU0 and ALU3 (SOG 2.10; approx. which)
SHIFT = ("alu1", "alu2")       # shifts, rotates, bit counts: two of the four ALUs (AF; approx.)
MUL = ("alu1",)                # one integer multiplier (SOG: IMUL throughput 1/cycle)
FP = ("fp0", "fp1", "fp2", "fp3")
AGU = ("agu0", "agu1", "agu2")  # three memory ops per cycle (SOG, C&C)

F = Form

FORMS = {
    "alu": F(1, ALU, src="SOG/AF: simple integer ops, latency 1, 4 per cycle"),
    "adc": F(1, ALU, src="AF: ADC/SBB r,r latency 1"),
    "mov": F(1, ALU, src="AF: MOV r,r when not eliminated"),
    "mov_imm": F(1, ALU, src="AF"),
    "movzx": F(1, ALU, src="AF: MOVZX/MOVSX r,r latency 1"),
    "lea": F(1, ALU, src="SOG: LEA with one or two components, latency 1"),
    "lea_scaled": F(2, ALU, src="SOG/AF: LEA with a scaled index: latency 2 (approx.)"),
    "lea3": F(2, ALU, src="SOG/AF: LEA with three components: latency 2"),
    "shift": F(1, SHIFT, src="AF: SHL/SHR/SAR r,imm latency 1"),
    "shift_cl": F(1, SHIFT, uops=1, src="AF: SHL r,CL latency 1 (approx.)"),
    "shiftx": F(1, SHIFT, src="AF/UOPS: SHLX/SHRX/SARX latency 1"),
    "imul": F(3, MUL, src="SOG/AF: IMUL r64,r64 latency 3, throughput 1"),
    "mul": F(4, MUL, occ=2, uops=2, src="AF: MUL r64: 2 macro-ops, RDX after 4 cycles"),
    "div": F(14, MUL, occ=7, uops=2, src="AF: DIV r64 latency 10-18 (approx. middle)"),
    "bitcount": F(1, SHIFT, src="UOPS: TZCNT/LZCNT/POPCNT r64 latency 1, 2 per cycle (LLVM 19's 2 is wrong)"),
    "bsf": F(1, SHIFT, src="AF (Zen 3/4): BSF/BSR r64 latency 1 (approx.)"),
    "bmi": F(1, ALU, src="AF: ANDN/BLSR/BLSI/BZHI latency 1 (approx. for BLS*)"),
    "bt": F(1, ALU, src="AF: BT r,r/imm latency 1"),
    "cmov": F(1, ALU, src="AF: CMOVcc latency 1"),
    "setcc": F(1, ALU, src="AF: SETcc latency 1"),
    "xchg": F(1, ALU, uops=2, src="AF: XCHG r,r 2 macro-ops (approx.)"),
    "nop": F(0, (), src="SOG: NOPs use no execution pipe"),
    "jcc": F(1, BR, src="SOG: two branch units"),
    "jmp": F(1, BR, src="SOG"),
    "jmp_ind": F(1, BR, src="SOG"),
    "call": F(1, BR, uops=2, src="AF: CALL near 2 macro-ops (approx.)"),
    "call_ind": F(1, BR, uops=2, src="AF (approx.)"),
    "ret": F(1, BR, uops=2, src="AF: RET 2 macro-ops (approx.)"),
    "load": F(0, AGU, src="the load itself: load pipes and L1 latency below"),
    "store": F(0, AGU, src="store address on an AGU"),
    "vload": F(0, AGU, src="as load, plus vec_load_extra"),
    "vstore": F(0, AGU, src="as store"),
    "vmov": F(1, FP, src="AF: MOVAPS x,x when not eliminated"),
    "movq_xr": F(3, FP, src="AF: MOVQ xmm,r64 latency 3 (approx.)"),
    "movq_rx": F(2, FP, src="AF: MOVQ r64,xmm latency 2 (approx.)"),
    "valu": F(1, FP, src="AF: PXOR/POR/PADDQ/PCMPEQ latency 1 on all four FP pipes"),
    "vshuf": F(1, ("fp1", "fp2"), src="AF: shuffles on FP1/FP2, latency 1"),
    "pmovmsk": F(2, ("fp2",), src="AF: PMOVMSKB latency 2 (approx.)"),
    "locked": F(8, ALU, occ=8, uops=2, src="AF: LOCK CMPXCHG/XADD/XCHG m about 8 cycles (approx.)"),
    "mfence": F(33, ALU, occ=33, src="AF: MFENCE throughput about 33 (approx.)"),
    "lfence": F(1, ALU, src="AF: LFENCE throughput 1 (dispatch serialising: approx.)"),
    "sfence": F(1, ALU, src="AF (approx.)"),
    "rdtsc": F(38, ALU, occ=38, src="AF: RDTSC about 38 cycles (approx.)"),
    "rep_str": F(0, AGU, src="see rep_startup/rep_bytes_per_cycle"),
    "string": F(1, AGU, uops=3, src="AF: MOVS/STOS without REP, microcoded (approx.)"),
    "prefetch": F(0, AGU, src="a load with no result"),
    "pause": F(64, ALU, occ=64, src="SOG: PAUSE 64 cycles (approx.)"),
    "other": F(1, ALU, src="not described: one cycle on any ALU (reported as unmodelled)"),
}

ZEN4 = UArch(
    name="zen4",
    vendor_name="AMD Zen 4 (EPYC 9004 / Ryzen 7000)",
    dispatch_width=6,          # AT, SOG: 6 macro-ops dispatched per cycle
    decode_width=4,            # SOG: 4 instructions per cycle from the decoders
    opcache_width=9,           # AT: op cache delivers up to 9 macro-ops per cycle (dispatch still 6)
    retire_width=8,            # SOG: 8 macro-ops retired per cycle
    rob=320,                   # AT, C&C: 320-entry retire queue
    store_buffer=64,           # C&C: 64-entry store queue
    mispredict_penalty=13,     # SOG: 11-18 cycles, typically 13 (approx.)
    btb_miss_penalty=5,
    taken_bubble=0,            # AT: the L1 BTB predicts up to 2 taken branches per cycle, no bubble        # a taken branch not in the BTBs: found at decode (approx.)
    ghist_bits=12,             # the model's gshare (the real predictor is TAGE-like, SOG)
    pht_bits=14,
    ras=32,                    # SOG: 32-entry return address stack
    load_pipes=AGU,            # SOG: 3 loads per cycle
    sta_pipes=("agu0", "agu1"),  # SOG: at most 2 of the 3 memory ops per cycle are stores
    std_pipes=(),
    complex_addr_extra=1,      # SOG: index addressing adds a cycle to load-to-use (approx.)
    vec_load_extra=3,          # SOG: 7-cycle FP/vector load-to-use vs 4 integer
    stlf_latency=7,            # AF: store forwarding about 7 cycles (approx.; memory renaming of
                               # stack slots, SOG "memfile", is not modelled)
    stlf_fail_penalty=12,      # AF: failed forwarding about 12 cycles more (approx.)
    caches=(
        CacheLevel("L1D", 32 << 10, 8, 64, 4, "SOG: 32 KiB, 8-way, 64 B lines, 4-cycle integer load-to-use"),
        CacheLevel("L2", 1 << 20, 8, 64, 14, "SOG, C&C: 1 MiB, 8-way, 14 cycles"),
        CacheLevel("L3", 32 << 20, 16, 64, 50, "SOG: 32 MiB per CCD, 16-way; C&C: about 50 cycles"),
    ),
    memory_latency=350,        # C&C: Genoa DRAM about 95-110 ns at 3.7 GHz (approx.)
    tlbs=(
        TLBLevel("L1 DTLB", 72, 72, 0, "SOG: 72 entries, fully associative"),
        TLBLevel("L2 DTLB", 3072, 24, 7, "SOG: 3072 entries; C&C: an L2 DTLB hit adds about 7 cycles"),
    ),
    page_walk=30,              # C&C: page walks with the page-walk caches hitting (approx.)
    fuse_first=frozenset({"cmp", "test", "and", "or", "xor", "add", "sub", "inc", "dec"}),  # CORSIX: Zen 3+
    fuse_jcc={},               # CORSIX: with every Jcc that reads the flags they set
    fuse_with_memory=True,     # SOG: except a memory operand together with an immediate (checked)
    move_elimination=True,     # SOG: MOV r,r and zeroing idioms handled at rename
    vec_move_elimination=True,
    rmw_extra_uops=0,         # SOG: a load-op-store instruction is one macro-op
    memory_renaming=True,      # AF (Zen 2 and later, "mirroring memory operands"): a load from the address
                               # and size of a recent store, base + displacement without an index, gets
                               # the stored register's value at rename, latency 0 (SOG: the "memfile");
                               # measured here on Zen 3: bench_timing's store/reload loop, 1.1 cycles per
                               # iteration natively vs 7 with forwarding (approx.: the real conditions,
                               # e.g. which base registers, are narrower)
    fence_until_retired=True,  # AMD, "Software Techniques for Managing Speculation on AMD Processors" (2018):
                               # LFENCE is dispatch serializing (the MSR bit Linux sets), i.e. (AMD64 APM)
                               # it dispatches when every older instruction has retired, and younger ones
                               # dispatch after it (approx.: Zen 3 and 4 assumed to keep the definition)
    rep_startup=25,            # AF: REP MOVSB/STOSB startup (approx.)
    rep_bytes_per_cycle=32,    # AF: fast-strings steady state (approx.)
    forms=FORMS,
    sources=("SOG 57647", "AnandTech Zen 4 review", "chipsandcheese Zen 4", "Agner Fog", "uops.info",
             "corsix.org macro-fusion notes"),
    notes="Default µarch of gomemu (the issue's target machine family).",
)
