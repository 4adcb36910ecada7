"""Intel Sunny Cove (Ice Lake: client family 6 model 7Eh, server Xeon 3rd gen model 6Ah/6Ch).

Sources, named in each comment:
  ORM     Intel 64 and IA-32 Architectures Optimization Reference Manual, the Ice Lake (Sunny Cove)
          chapter: widths, buffers, ports, cache sizes and latencies
  SYSFS   this host's /sys/devices/system/cpu/cpu0/cache (a Xeon, family 6 model 106): sizes, ways
  UOPS    uops.info measurements for Ice Lake (ICL)
  AF      Agner Fog, "Instruction tables" and "The microarchitecture of Intel, AMD and VIA CPUs"
  C&C     chipsandcheese, "Sunny Cove: Intel's Lost Generation" and the Ice Lake SP article
  CORSIX  corsix.org, "x86 macro-op fusion notes": Ice Lake dropped INC/DEC and memory-operand fusion
  ICL065  Ice Lake specification update, erratum ICL065: microcode disables GPR move elimination
"approx." marks a number given as a range or taken from Skylake for lack of an Ice Lake figure.
"""

from emu.timing.uarch import CacheLevel, Form, TLBLevel, UArch

ALU = ("p0", "p1", "p5", "p6")
P06 = ("p0", "p6")             # shifts, branches, CMOV, SETcc, ADC (ORM port table)
P15 = ("p1", "p5")             # LEA, ANDN/BLS*
P1 = ("p1",)                   # the slow-int unit: IMUL, TZCNT/LZCNT/POPCNT/BSF
VEC = ("p0", "p1", "p5")
LOAD = ("p2", "p3")            # ORM: two load ports
STA = ("p7", "p8")             # ORM: two store-address ports
STD = ("p4", "p9")             # ORM: two store-data ports

F = Form

FORMS = {
    "alu": F(1, ALU, src="UOPS: ADD/SUB/AND/CMP/TEST r,r/imm latency 1, p0156"),
    "adc": F(1, P06, src="UOPS: ADC/SBB r,r 1 µop p06, latency 1"),
    "mov": F(1, ALU, src="UOPS/ICL065: MOV r64,r64 latency 1 on p0156 (move elimination disabled)"),
    "mov_imm": F(1, ALU, src="UOPS"),
    "movzx": F(1, ALU, src="UOPS: MOVZX/MOVSX r,r latency 1"),
    "lea": F(1, P15, src="UOPS: LEA latency 1, p15"),
    "lea_scaled": F(1, P15, src="UOPS: LEA with a scaled index latency 1, p15"),
    "lea3": F(1, P15, src="UOPS: three-component LEA latency 1 on ICL (3 on Skylake) (approx.)"),
    "shift": F(1, P06, src="UOPS: SHL/SHR/SAR r,imm latency 1, p06"),
    "shift_cl": F(2, P06, uops=2, src="UOPS/AF: SHL r,CL 2 µops latency 2 (approx.: 3 µops on Skylake)"),
    "shiftx": F(1, P06, src="UOPS: SHLX/SHRX/SARX latency 1, p06"),
    "imul": F(3, P1, src="UOPS: IMUL r64,r64 latency 3, p1"),
    "mul": F(4, ("p1", "p5"), occ=1, uops=2, src="UOPS: MUL r64 2 µops p1+p5, RDX after 4 cycles"),
    "div": F(15, P1, occ=10, uops=4, src="AF: DIV r64 latency about 15, throughput 10 on ICL (approx.)"),
    "bitcount": F(3, P1, src="UOPS: TZCNT/LZCNT/POPCNT latency 3, p1"),
    "bsf": F(3, P1, src="UOPS: BSF/BSR latency 3, p1"),
    "bmi": F(1, P15, src="UOPS: ANDN/BLSR/BLSI/BZHI latency 1, p15"),
    "bt": F(1, P06, src="UOPS: BT r,r/imm latency 1, p06"),
    "cmov": F(1, P06, src="UOPS: CMOVcc 1 µop p06, latency 1"),
    "setcc": F(1, P06, src="UOPS: SETcc latency 1, p06"),
    "xchg": F(2, ALU, uops=3, src="UOPS: XCHG r,r 3 µops latency 2 (approx.)"),
    "nop": F(0, (), src="ORM: NOPs take an allocation slot and no port"),
    "jcc": F(1, P06, src="ORM: conditional branches on p0/p6"),
    "jmp": F(1, ("p6",), src="ORM: taken branches on p6"),
    "jmp_ind": F(1, ("p6",), src="ORM"),
    "call": F(1, ("p6",), uops=2, src="UOPS: CALL rel32 2 fused µops (store + branch)"),
    "call_ind": F(1, ("p6",), uops=2, src="UOPS (approx.)"),
    "ret": F(1, ("p6",), uops=2, src="UOPS: RET 2 fused µops (load + branch)"),
    "load": F(0, LOAD, src="the load itself"),
    "store": F(0, STA, src="store address; data on p4/p9"),
    "vload": F(0, LOAD, src="as load, plus vec_load_extra"),
    "vstore": F(0, STA, src="as store"),
    "vmov": F(1, VEC, src="UOPS: MOVAPS x,x when not eliminated"),
    "movq_xr": F(2, ("p5",), src="UOPS: MOVQ xmm,r64 latency 2, p5 (approx.)"),
    "movq_rx": F(2, ("p0",), src="UOPS: MOVQ r64,xmm latency 2, p0 (approx.)"),
    "valu": F(1, VEC, src="UOPS: PXOR/POR/PADDQ/PCMPEQ latency 1, p015"),
    "vshuf": F(1, ("p1", "p5"), src="UOPS: shuffles p15 on ICL, latency 1 (approx.)"),
    "pmovmsk": F(3, ("p0",), src="UOPS: PMOVMSKB latency 3 (approx.)"),
    "locked": F(18, ALU, occ=18, uops=3, src="AF: LOCK CMPXCHG/XADD about 18 cycles (Skylake; approx.)"),
    "mfence": F(33, ALU, occ=33, src="AF: MFENCE throughput about 33 (Skylake; approx.)"),
    "lfence": F(4, ALU, src="AF: LFENCE throughput about 4 (approx.)"),
    "sfence": F(6, ALU, src="AF (approx.)"),
    "rdtsc": F(25, ALU, occ=25, uops=4, src="AF: RDTSC throughput about 25 (Skylake; approx.)"),
    "rep_str": F(0, STA, src="see rep_startup/rep_bytes_per_cycle"),
    "string": F(1, STA, uops=3, src="AF: MOVS/STOS without REP (approx.)"),
    "prefetch": F(0, LOAD, src="a load with no result"),
    "pause": F(140, ALU, occ=140, src="ORM: PAUSE about 140 cycles since Skylake"),
    "other": F(1, ALU, src="not described: one cycle on any ALU (reported as unmodelled)"),
}

SUNNY_COVE = UArch(
    name="sunny_cove",
    vendor_name="Intel Sunny Cove (Ice Lake, Xeon 3rd gen)",
    dispatch_width=5,          # ORM: allocation/rename 5 µops per cycle
    decode_width=4,            # ORM: legacy decode pipeline, 4 instructions (1 complex + 3 simple)
    opcache_width=6,           # ORM: DSB delivers 6 µops per cycle
    retire_width=8,            # C&C: 8 µops retired per cycle (approx.)
    rob=352,                   # ORM: 352-entry ROB
    store_buffer=72,           # ORM: 72-entry store buffer
    mispredict_penalty=16,     # AF: about 16-17 cycles (approx.)
    btb_miss_penalty=8,        # redirect at decode (approx.)
    taken_bubble=0,            # the allocator's paths fit 0 and 1 about equally (docs/timing.md);
                               # bench_timing's dense JMP loops (1.7-2.0 cycles a taken JMP, 2.4-2.7 a
                               # group of 4 ADDs and a JMP) would want 1: not understood, see the note
    ghist_bits=12,             # the model's gshare (not Intel's TAGE-like predictor)
    pht_bits=14,
    ras=16,                    # AF: 16-entry return stack buffer (Skylake; approx.)
    load_pipes=LOAD,
    sta_pipes=STA,
    std_pipes=STD,
    complex_addr_extra=1,      # ORM: 4 cycles for base + displacement under 2 KiB, 5 with an index
                               # (the ORM's fast path also wants the base from a load: not checked)
    vec_load_extra=1,          # ORM: XMM loads 6 cycles
    stlf_latency=5,            # AF: store forwarding about 5 cycles (approx.)
    stlf_fail_penalty=12,      # AF: a failed forward costs about 12 more (approx.)
    caches=(
        CacheLevel("L1D", 48 << 10, 12, 64, 4, "SYSFS/ORM: 48 KiB, 12-way; ORM: 4-cycle load-to-use for "
                                               "base + small displacement (5 otherwise: complex_addr_extra)"),
        CacheLevel("L2", 1280 << 10, 20, 64, 14, "SYSFS: 1.25 MiB, 20-way (server); ORM: 14 cycles"),
        CacheLevel("L3", 48 << 20, 12, 64, 75, "SYSFS: 48 MiB shared, 12-way; C&C: about 70-80 cycles on "
                                               "Ice Lake SP's mesh (approx.)"),
    ),
    memory_latency=300,        # C&C: Ice Lake SP DRAM about 100 ns + L3 (approx.)
    tlbs=(
        TLBLevel("L1 DTLB", 64, 4, 0, "ORM: 64 entries, 4-way, 4 KiB pages"),
        TLBLevel("STLB", 2048, 16, 9, "ORM: 2048 entries, 16-way; AF: about 9 cycles (approx.)"),
    ),
    page_walk=30,              # approx.: page-walk caches hitting
    fuse_first=frozenset({"cmp", "test", "and", "add", "sub"}),     # CORSIX: ICL dropped INC/DEC
    fuse_jcc={                 # CORSIX: CMP/ADD/SUB fuse with the carry, zero and signed-compare Jccs
        m: frozenset({"jb", "jae", "jbe", "ja", "je", "jne", "jl", "jge", "jle", "jg"})
        for m in ("cmp", "add", "sub")},
    fuse_with_memory=False,    # CORSIX: Ice Lake fuses no instruction with a memory operand
    move_elimination=False,    # ICL065
    vec_move_elimination=True,  # UOPS: MOVAPS x,x still eliminated (approx.)
    rmw_extra_uops=1,         # ORM: ADD m,r is 2 fused-domain µops (load+op, store)
    rep_startup=35,            # ORM/AF: fast short REP MOVSB (FSRM) startup (approx.)
    rep_bytes_per_cycle=32,    # ORM: fast-strings steady state (approx.)
    forms=FORMS,
    sources=("Intel ORM (Ice Lake)", "this host's sysfs", "uops.info", "Agner Fog", "chipsandcheese",
             "corsix.org macro-fusion notes", "Ice Lake spec update ICL065"),
    notes="The µarch of the development VM (family 6 model 106) at the time of measurement.",
)
