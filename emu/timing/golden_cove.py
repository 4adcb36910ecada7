"""Intel Golden Cove / Raptor Cove: the P-core of Alder Lake and Raptor Lake (family 6, models 97h,
9Ah, B7h, BAh, BFh) and the core of Sapphire Rapids and Emerald Rapids (models 8Fh, CFh).

Raptor Cove is Golden Cove with a larger L2 (2 MiB client, the server parts had it already) and
a higher clock: Intel documents the two as one core; the description is one for both.

Sources, named in each comment:
  ORM     Intel 64 and IA-32 Architectures Optimization Reference Manual, vol. 1, the Golden Cove
          chapter (Alder Lake P-core / Sapphire Rapids): widths, buffers, ports, L1D latency
  UOPS    uops.info measurements for Alder Lake-P (ADL-P)
  AF      Agner Fog, "Instruction tables" (Alder Lake P) and "The microarchitecture of Intel, AMD
          and VIA CPUs", the Alder Lake chapter
  C&C     chipsandcheese, "Popping the Hood on Golden Cove" (2021) and its Sapphire Rapids articles
  CORSIX  corsix.org, "x86 macro-op fusion notes"
  SYSFS   this host's /sys/devices/system/cpu/cpu0/cache (an Emerald Rapids Xeon, family 6
          model CFh, under KVM): L1D 48 KiB 12-way, L2 2 MiB 16-way, L3 300 MiB 20-way
          (the later Sapphire Rapids guest, model reported as A7h: L1D and L2 the same)
  HOST    measured on those hosts with dependent chains of each form timed by RDTSCP against a
          chain of ADD r64, r64 (docs/timing.md, "The host"; the Sapphire Rapids ones in "The fourth
          VM's measurements"), where the documents give no number
"approx." marks a number given as a range or taken from the neighbouring generation.
"""

from emu.timing.sunny_cove import FORMS as SUNNY_COVE_FORMS
from emu.timing.uarch import CacheLevel, Form, TLBLevel, UArch

ALU = ("p0", "p1", "p5", "p6", "p10")    # ORM: five integer ALU ports (p10 new in Golden Cove)
P06 = ("p0", "p6")                      # ORM: shifts, branches, CMOV, SETcc, ADC
P1 = ("p1",)                            # the slow-int unit: IMUL, TZCNT/LZCNT/POPCNT/BSF
LOAD = ("p2", "p3", "p11")              # ORM: three load ports
STA = ("p7", "p8")                      # ORM: two store-address ports
STD = ("p4", "p9")                      # ORM: two store-data ports

F = Form

# Sunny Cove's forms where UOPS gives Alder Lake-P the same latency and ports (the integer
# core kept Ice Lake's units and added p10), with the ones that differ replaced.
FORMS = dict(SUNNY_COVE_FORMS)
FORMS.update({
    "alu": F(1, ALU, src="UOPS: ADD/SUB/AND/CMP/TEST r,r/imm latency 1, p0156+10"),
    "mov": F(1, ALU, src="UOPS: MOV r64,r64 when not eliminated, p0156+10"),
    "mov_imm": F(1, ALU, src="UOPS: MOV r,imm p0156+10"),
    "movzx": F(1, ALU, src="UOPS: MOVZX/MOVSX r,r latency 1, p0156+10; HOST: 1.0"),
    "lea": F(1, ALU, src="UOPS: LEA with base and displacement or base and index latency 1, p0156+10"),
    "lea_scaled": F(2, ALU, src="HOST: chains of LEA with a scaled index ([r + r*2], [r + r*8], [r*8], with a "
                                "displacement too) 2 cycles each; 60 independent ones as fast as simple LEAs"),
    "lea3": F(1, ALU, src="HOST: a chain of LEA [r + r + disp] (scale 1) 1 cycle each, as an ADD chain"),
    "shift_cl": F(1, P06, uops=2, src="UOPS: SHL/SHR r,CL 2 µops on p06, latency 1 to the register; "
                                      "HOST: 1.3 with CL from a zero idiom, 1 a cycle independent"),
    "bsf": F(3, P1, src="UOPS: BSF/BSR latency 3, p1; HOST: 2.9"),
    "bitcount": F(3, P1, src="UOPS: TZCNT/LZCNT/POPCNT latency 3, p1; HOST: 2.9"),
    "imul": F(3, P1, src="UOPS: IMUL r64,r64 latency 3, p1; HOST: 2.9"),
    "adc": F(1, P06, src="UOPS: ADC/SBB r,r 1 µop p06, latency 1; HOST: SBB r,r after ADD 1"),
    "xchg": F(2, ALU, uops=3, src="UOPS: XCHG r,r 3 µops (approx.)"),
    "locked": F(19, ALU, occ=19, uops=3, src="HOST: LOCK CMPXCHG back to back 19 cycles; AF: about 18-20"),
    "nop": F(0, (), src="ORM: NOPs take an allocation slot and no port; HOST: 5.5 NOPs a cycle"),
})

GOLDEN_COVE = UArch(
    name="golden_cove",
    vendor_name="Intel Golden Cove / Raptor Cove (Alder/Raptor Lake P-core, Sapphire/Emerald Rapids)",
    dispatch_width=6,          # ORM: allocation/rename 6 µops per cycle; HOST: 5.5 NOPs or folded ADDs a cycle
    decode_width=6,            # ORM: six legacy decoders
    opcache_width=8,           # ORM: the decoded ICache (DSB) delivers 8 µops per cycle, 4K entries
    retire_width=8,            # ORM: 8 µops retired per cycle
    rob=512,                   # ORM, C&C: 512-entry ROB
    scheduler=97,              # C&C: a 97-entry unified scheduler for the math ports (Intel's Architecture Day
                               # 2021 figure); loads and stores have their own queues (approx.: one limit for all)
    store_buffer=114,          # ORM: 114-entry store buffer (C&C: 114)
    mispredict_penalty=25,     # HOST: a RET whose return address was overwritten (the return stack mispredicts
                               # it every time) costs 27 cycles in the harness, 33 with 10 ADDs after it, the
                               # model 19 / 23 with 17 (AF's "about 17" for Alder Lake P, approx.), 27 / 31 with 25
    btb_miss_penalty=8,        # redirect at decode, as sunny_cove (approx.)
    taken_bubble=0,            # HOST: a taken JMP every 16-64 bytes 1.1-1.25 cycles, 4 ADDs and a JMP 1.3 (a
                               # taken branch ends the dispatch group: 1); one every 2 bytes 6.4 (not modelled)
    ghist_bits=12,             # the model's gshare (not Intel's TAGE-like predictor)
    pht_bits=14,
    ras=16,                    # approx.: AF gives no Golden Cove figure; Skylake's 16
    load_pipes=LOAD,
    sta_pipes=STA,
    std_pipes=STD,
    complex_addr_extra=0,      # ORM: 5-cycle L1 load-to-use; HOST: a pointer chase through [r] and
                               # through [r + r*8] both 5.0 cycles (no fast path for simple addresses)
    vec_load_extra=1,          # ORM: XMM loads one cycle more than integer loads (approx.)
    stlf_latency=5,            # C&C: store-to-load forwarding about 5 cycles; HOST: PUSH r; POP r 4.7
    stlf_fail_penalty=12,      # approx.: sunny_cove's
    memory_renaming=True,      # C&C: zero-latency forwarding when the load's address matches the store's
                               # exactly; HOST: MOV [r+8], r; MOV r, [r+8] chained 0.5 cycles a pair, with
                               # [rsp-8] too (PUSH/POP: 4.7, implicit stack loads not renamed, as in the model)
    renamed_sizes=frozenset({1, 4, 8}),  # HOST: byte, dword and qword reloads renamed (0.7-0.8 cycles a
                               # store/reload pair), a word store and its MOVZX word reload not (5.6)
    imm_fold=1024,             # HOST: chains of ADD/SUB/INC/DEC r64, imm and LEA r64, [r64 + disp] run at
                               # 0.18-0.2 cycles an instruction for |imm| < 1024, 1 cycle from 1024; 32-bit
                               # forms and ADDs whose flags a later instruction reads are not folded (the
                               # documents above give no figure for this: HOST only; the accumulated-offset
                               # limit, 0.28-0.44 cycles for repeated 64-256, is not modelled)
    store_address_latency=4,   # HOST: after 30 dependent ADDs, a store whose address is the chain's result adds
                               # 3.6 cycles ([rdx + r8]) and 5.4 (ADD rdx, r8 first: 6.4 with it) to the routine,
                               # one whose data is the result 0.9; a load of that address 7.5 (ADD + 5 + ~1.5)
    fold_sinks=frozenset({"shift", "shift_cl", "shiftx", "bt"}),  # HOST: after BSF rcx, a folded INC/ADD/SUB/LEA
                               # of rcx costs 1.5-2.5 cycles when a shift (SHL/SHR/SAR/ROL by CL or by an
                               # immediate, SHRX either operand) or BT reads rcx, and nothing when an ADD, SUB,
                               # AND, CMOV, ADC, IMUL, TZCNT, MOVZX or MOV does (the model: 1, the ADD executes)
    caches=(
        CacheLevel("L1D", 48 << 10, 12, 64, 5, "SYSFS: 48 KiB, 12-way; ORM: 5-cycle load-to-use; HOST: 5.0"),
        CacheLevel("L2", 2 << 20, 16, 64, 16, "SYSFS: 2 MiB, 16-way; C&C: about 16 cycles on Sapphire Rapids "
                                              "(15 on Alder Lake's 1.25 MiB) (approx.)"),
        CacheLevel("L3", 300 << 20, 20, 64, 120, "SYSFS: 300 MiB shared (as the VM reports it), 20-way; C&C: about "
                                                 "33 ns on Sapphire Rapids' mesh, ~120 cycles (approx.)"),
    ),
    memory_latency=400,        # C&C: Sapphire Rapids DRAM about 110-130 ns beyond L3 (approx.)
    tlbs=(
        TLBLevel("L1 DTLB", 96, 6, 0, "ORM: 96 entries for 4 KiB loads, 6-way (approx.)"),
        TLBLevel("STLB", 2048, 16, 8, "ORM: 2048 entries, 16-way; about 8 cycles (approx.: Skylake-class)"),
    ),
    page_walk=30,              # approx.: page-walk caches hitting
    fuse_first=frozenset({"cmp", "test", "and", "add", "sub"}),     # CORSIX: as Ice Lake (approx. for GLC)
    fuse_jcc={
        m: frozenset({"jb", "jae", "jbe", "ja", "je", "jne", "jl", "jge", "jle", "jg"})
        for m in ("cmp", "add", "sub")},
    fuse_with_memory=False,    # CORSIX: since Ice Lake no fusion with a memory operand (approx. for GLC)
    move_elimination=True,     # AF: Alder Lake P eliminates register moves again; HOST: MOV r,r chains 0.17
                               # cycles a move
    vec_move_elimination=True,  # AF
    rmw_extra_uops=1,          # ORM: ADD m,r is 2 fused-domain µops (load+op, store)
    fence_until_retired=True,  # Intel, "Speculative Execution Side Channel Mitigations" (2018): LFENCE does not
                               # execute until all prior instructions have completed locally, and no later
                               # instruction begins execution until it completes; HOST (docs/timing.md, "The
                               # harness"): the native loop around a bare RET hides 15 cycles of a dependent
                               # chain, which this reading (with CALL m64 and RET as below) gives as 11 and the
                               # execution-barrier reading as 5
    fence_queue=True,          # HOST: 20 taken JMPs after an LFENCE that waits for 20 IMULs add 1.1 cycles: the
                               # front end fetches them into the allocation queue (ORM: the IDQ) meanwhile
    rep_startup=35,            # ORM/AF: fast short REP MOVSB (FSRM) startup (approx.: as sunny_cove)
    rep_bytes_per_cycle=64,    # ORM: fast strings move a 64-byte line a cycle from Golden Cove (approx.)
    forms=FORMS,
    sources=("Intel ORM (Golden Cove)", "uops.info (ADL-P)", "Agner Fog", "chipsandcheese Golden Cove",
             "corsix.org macro-fusion notes", "this host's sysfs", "chains measured on this host"),
    notes="The µarch of the development VMs (Emerald Rapids, family 6 model CFh; then Sapphire Rapids, "
          "reported as model A7h) at the time of measurement.",
)
