"""What a CPU description holds (one module per µarch: zen4.py, sunny_cove.py, ...).

A description is data, in the manner of uiCA's microArchConfigs.py: every
number carries its meaning and where it comes from. The scheduler
(emu/timing/model.py) reads nothing else about the CPU.

Instruction forms are named by emu/timing/decode.py (FORM_KEYS lists them);
a description gives each a `Form`: the pipes it may issue on, its latency
from sources to result, how long it holds its pipe, and how many dispatch
slots (macro-ops / fused-domain µops) it takes. A memory operand adds the
load (and for a store, the store-address and store-data work) on top of the
register form, as both vendors' optimisation guides describe load-op
instructions.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Form:
    lat: int                 # cycles from the last source ready to the result ready
    pipes: tuple             # names of the pipes/ports it may issue on (one is chosen); () = none
    occ: int = 1             # cycles it keeps that pipe busy (1 = fully pipelined)
    uops: int = 1            # dispatch slots (macro-ops on AMD, fused-domain µops on Intel)
    src: str = ""            # where the numbers come from


@dataclass(frozen=True)
class CacheLevel:
    name: str
    size: int                # bytes
    ways: int
    line: int                # bytes per line
    latency: int             # load-to-use cycles of a hit at this level (for L1: simple addressing)
    src: str = ""

    @property
    def sets(self):
        return self.size // (self.ways * self.line)


@dataclass(frozen=True)
class TLBLevel:
    name: str
    entries: int
    ways: int                # == entries: fully associative
    penalty: int             # extra cycles of a miss in the level before it that hits here
    src: str = ""

    @property
    def sets(self):
        return self.entries // self.ways


@dataclass(frozen=True)
class UArch:
    name: str                # --uarch name
    vendor_name: str         # what the CPU is called
    # front end
    dispatch_width: int      # macro-ops / µops renamed and dispatched per cycle
    decode_width: int        # instructions per cycle from the legacy decoders (code not in the op cache)
    opcache_width: int       # macro-ops per cycle the op cache (DSB) delivers
    retire_width: int        # macro-ops / µops retired per cycle
    rob: int                 # reorder buffer entries (the model counts instructions)
    store_buffer: int        # store queue entries: older stores a load can forward from
    # branches
    mispredict_penalty: int  # cycles from the branch's execution to the next correct dispatch
    btb_miss_penalty: int    # a taken branch the predictor has not seen: redirect at decode
    taken_bubble: int        # cycles the front end loses after each taken branch
    ghist_bits: int          # gshare global history length (the model's predictor, not the CPU's)
    pht_bits: int            # log2 of the pattern table size of the model's predictor
    ras: int                 # return address stack entries
    # memory
    load_pipes: tuple        # pipes that take loads (AGU + load)
    sta_pipes: tuple         # pipes that compute store addresses
    std_pipes: tuple         # pipes that move store data (() = none: data goes with the address)
    complex_addr_extra: int  # extra load-to-use cycles with an index register or a large displacement
    vec_load_extra: int      # extra cycles of a load into an XMM register over an integer load
    stlf_latency: int        # store-to-load forwarding: store data ready to load result
    stlf_fail_penalty: int   # a load that overlaps a buffered store it cannot take data from
    caches: tuple            # CacheLevel, L1D first; the last level's miss goes to memory
    memory_latency: int      # cycles to DRAM after the last level misses
    tlbs: tuple              # TLBLevel: L1 DTLB, then the second-level TLB
    page_walk: int           # cycles of a page walk after the last TLB misses
    # fusion and renaming
    fuse_first: frozenset    # mnemonics that macro-fuse with a following Jcc
    fuse_jcc: dict           # mnemonic -> set of Jcc mnemonics it fuses with (absent: all)
    fuse_with_memory: bool   # a first instruction with a memory operand can fuse
    move_elimination: bool   # reg-reg MOV of GPRs renamed away (0 latency, no pipe)
    vec_move_elimination: bool
    rmw_extra_uops: int      # dispatch slots a load-op-store takes beyond its register form
    # string instructions (REP MOVS/STOS, fast-strings microcode)
    rep_startup: int         # cycles before the first byte
    rep_bytes_per_cycle: int
    memory_renaming: bool = False       # a load of exactly the bytes of a buffered store, addressed without an
                                        # index, takes the store's data register at rename (no forwarding latency)
    scheduler: int = 0                  # instructions dispatched and not yet issued at most (0: not modelled)
    imm_fold: int = 0                   # ADD/SUB/INC/DEC r64 of an immediate below this (in magnitude) and
                                        # LEA r64, [r64 + disp] complete at rename when their flags are dead
    store_address_latency: int = 1      # cycles from a store's address µop issuing to the store being complete
                                        # (ready to retire; its data: one cycle after it is ready)
    fold_sinks: frozenset = frozenset()  # with imm_fold: forms that cannot read a folded register (the ADD
                                        # feeding one, directly or through moves, in its block, executes)
    renamed_sizes: frozenset = frozenset({1, 2, 4, 8})   # load sizes memory renaming serves
    fence_until_retired: bool = False   # LFENCE dispatches when every older instruction has retired and
                                        # holds younger ones until it retires (else: until they complete)
    fence_queue: bool = False           # with fence_until_retired: the front end keeps fetching into a queue
                                        # meanwhile, and the queued ops are allocated dispatch_width a cycle
    forms: dict = field(default_factory=dict)   # form key (decode.FORM_KEYS) -> Form
    sources: tuple = ()      # the documents the numbers come from
    notes: str = ""
