"""Where everything lives in the emulated process, and Go 1.27's struct layouts.

One place for every address and struct offset the machine code or the Python
slow paths use. Offsets are Go 1.27.3's on linux/amd64, as the compiler
reports them in the runtime's `go_asm.h` (`go build -a -work`, then
`#define mspan_allocCache 56`); `tests/test_layout.py` rebuilds that header
with the installed toolchain and compares every offset here.

The memory map follows a linux/amd64 Go process, with few large regions
(unicorn slows down as regions multiply; emulator-facts.md):

  text     0x400000       the assembled routines from 0x401000, as Go's linker places text
  data     0x600000       runtime data and bss: writeBarrier, size-class tables, g0, m0, p0
  offheap  0x7f0000000000 persistentalloc/fixalloc memory: mcache, mspan, gcBits
  stack    0x7fff00000000 the system stack of g0 (an OS thread stack in Go)
  heap     0xc000000000   the heap arena reservation at Go's first arena hint

Simplifications: Go 1.27 randomizes the heap base (GOEXPERIMENT
RandomizedHeapBase64); we use the classic hint 0xc000000000 so addresses are
deterministic. p0 lives in data instead of being heap-allocated.
"""

from dataclasses import dataclass

from runtime_model import sizeclasses as sc

PAGE = 4096                     # physical page (PhysPageSize on linux/amd64)


@dataclass(frozen=True)
class Region:
    name: str
    base: int
    size: int
    prot: str          # initial protection: "rx", "rw" or "" (reserved, PROT_NONE)

    @property
    def end(self):
        return self.base + self.size


TEXT = Region("text", 0x400000, 0x200000, "rx")
DATA = Region("data", 0x600000, 0x200000, "rw")
OFFHEAP = Region("offheap", 0x7F0000000000, 0x40000000, "rw")
STACK = Region("stack", 0x7FFF00000000, 0x1000000, "rw")
HEAP_BASE = 0xC000000000        # malloc.go: mallocinit's first arena hint (0x00c0 << 32)
DEFAULT_HEAP_RESERVE = 64 << 30  # how much address space the heap may grow into

# Machine(image=...): gomemu's own routines, the call-out page and the exit address live
# below the program, which Go links from 0x400000; within rel32 reach of its code.
GOMEMU_TEXT = Region("gomemu", 0x200000, 0x200000, "rx")

TEXT_START = 0x401000           # cmd/link: the first function on linux/amd64
CALLOUT_PAGE = TEXT.end - 2 * PAGE   # stubs that hand control to Python (one `ret` each)
CALLOUT_STRIDE = 16
EXIT_ADDR = TEXT.end - PAGE          # return address of top-level calls; emulation stops here


# ---- struct layouts (go_asm.h names: <struct>_<field>) -------------------------------

class Stack:
    """runtime2.go: type stack struct, the bounds [lo, hi) of a goroutine stack."""
    SIZE = 16
    lo = 0
    hi = 8


class Gobuf:
    """runtime2.go: type gobuf struct: a saved context (g.sched, m.morebuf) that gogo resumes."""
    SIZE = 48
    sp = 0
    pc = 8
    g = 16                # guintptr
    ctxt = 24             # the closure context (DX), kept for morestack (not morestack_noctxt)
    lr = 32               # unused on amd64 (link-register architectures only)
    bp = 40               # the frame pointer


class G:
    """runtime2.go: type g struct."""
    SIZE = 456
    stack = 0             # g.stack (a Stack)
    stackguard0 = 16      # g.stackguard0: compared with SP in every prologue
    stackguard1 = 24
    m = 48                # g.m
    sched = 56            # g.sched (gobuf)
    syscallsp = 104       # g.syscallsp: SP while in a system call; stack growth is not allowed then
    stktopsp = 128        # g.stktopsp: the SP at the top of the stack (newproc1), moved by copystack
    atomicstatus = 144
    goid = 152
    preempt = 177
    secret = 228          # int32: nesting of runtime/secret.Do (no tiny allocator while > 0)
    gcAssistBytes = 440


class M:
    """runtime2.go: type m struct."""
    SIZE = 1832
    g0 = 0
    morebuf = 8           # m.morebuf (gobuf): f's caller, saved by morestack for newstack
    gsignal = 72
    tls = 128             # m.tls: FS points 8 bytes past tls[0], so -8(FS) is tls[0] = g
    curg = 184
    p = 208               # m.p (puintptr)
    mallocing = 240
    locks = 264


class P:
    """runtime2.go: type p struct."""
    SIZE = 15920
    id = 0
    status = 4
    m = 48
    mcache = 56
    gcw = 4696            # p.gcw (a GCWork): the P's mark work; gcmarknewobject adds to its bytesMarked
    wbBuf = 9552


class MCache:
    """mcache.go: type mcache struct."""
    SIZE = 2296
    nextSample = 0
    memProfRate = 8
    scanAlloc = 16
    tiny = 24
    tinyoffset = 32
    tinyAllocs = 40
    alloc = 48            # [numSpanClasses]*mspan
    reusableNoscan = 1136
    stackcache = 2224
    flushGen = 2288


class MSpan:
    """mheap.go: type mspan struct. Only mheap (Python) writes a span it does not
    own; the owning mcache's machine code updates freeindex, allocCache and
    allocCount on every allocation."""
    SIZE = 160
    next = 0
    prev = 8
    list = 16
    startAddr = 24
    npages = 32
    manualFreeList = 40
    freeindex = 48        # uint16
    nelems = 50           # uint16
    freeIndexForScan = 52  # uint16
    allocCache = 56       # uint64, inverted alloc bits from freeindex on
    allocBits = 64        # *gcBits
    gcmarkBits = 72       # *gcBits
    pinnerBits = 80
    sweepgen = 88         # uint32
    divMul = 92           # uint32
    allocCount = 96       # uint16
    spanclass = 98        # uint8
    state = 99            # uint8 (mSpanStateBox)
    needzero = 100        # uint8
    isUserArenaChunk = 101
    allocCountBeforeCache = 102  # uint16
    elemsize = 104
    limit = 112
    speciallock = 120
    specials = 128
    largeType = 152


class GCWork:
    """mgcwork.go: type gcWork struct (inside p: P.gcw). Only the GC's accounting kept in
    emulated memory: bytesMarked, which allocate-black (asm/gcmarknewobject.s, or the real
    image's gcmarknewobject) adds to and mark termination reads (runtime_model/mgc.py)."""
    SIZE = 4856
    bytesMarked = 2112    # uint64


class SpanInlineMarkBits:
    """mgcmark_greenteagc.go: type spanInlineMarkBits struct, the last 128 bytes of the first
    page of a span whose gcUsesSpanInlineMarkBits(elemsize) (runtime_model/mspan.py)."""
    SIZE = 128
    scans = 0             # [63]uint8: scanned bits
    owned = 63            # spanScanOwnership
    marks = 64            # [63]uint8: mark bits (then class, a spanClass, at 127)


class WBBuf:
    """mwbbuf.go: type wbBuf struct (inside p)."""
    SIZE = 4112
    next = 0
    end = 8
    buf = 16              # [wbBufEntries]uintptr
    ENTRIES = 512         # mwbbuf.go: wbBufEntries


class HeapArena:
    """mheap.go: type heapArena struct."""
    SIZE = 69648
    spans = 0
    pageInUse = 65536
    pageMarks = 66560
    zeroedBase = 69640


class Type:
    """internal/abi/type.go: type Type (the runtime's _type): a type descriptor."""
    SIZE = 48
    Size_ = 0
    PtrBytes = 8          # bytes of the prefix that can hold pointers; 0 means noscan
    Hash = 16
    TFlag = 20
    Align_ = 21
    FieldAlign_ = 22
    Kind_ = 23
    Equal = 24
    GCData = 32           # *byte: the pointer bitmap, one bit per word
    Str = 40
    PtrToThis = 44


class MHeap:
    """mheap.go: type mheap; only the fields kept in emulated memory (runtime.mheap_)."""
    SIZE = 93464
    sweepgen = 65856
    pagesInUse = 65888
    arenas = 66008        # [1 << arenaL1Bits]*[1 << arenaL2Bits]*heapArena


STRUCTS = {"_type": Type, "stack": Stack, "g": G, "m": M, "p": P, "mcache": MCache, "mspan": MSpan, "wbBuf": WBBuf,
           "gcWork": GCWork, "spanInlineMarkBits": SpanInlineMarkBits, "heapArena": HeapArena, "mheap": MHeap}
STRUCTS["gobuf"] = Gobuf

# mheap.go / malloc.go constants used on both sides.
NUM_SPAN_CLASSES = sc.NUM_SIZE_CLASSES << 1      # numSpanClasses
HEAP_ARENA_BYTES = 64 << 20                      # heapArenaBytes on linux/amd64
LOG_HEAP_ARENA_BYTES = 26                        # logHeapArenaBytes
ARENA_BASE_OFFSET = 0xFFFF800000000000           # malloc.go: arenaBaseOffset on amd64
# The heap reservation is mapped in unicorn in pieces of pallocChunkBytes, the unit of
# mheap.grow's sysMap: each mmap then changes whole regions, where unicorn's mem_protect
# of part of a region costs time in proportion to the region (~1 ms per 4 MiB mapped
# out of a 64 MiB arena, against ~15 us for whole regions).
HEAP_MAP_GRANULE = 4 << 20
PAGE_SHIFT = sc.PAGE_SHIFT                       # _PageShift
PAGE_SIZE = sc.PAGE_SIZE                         # _PageSize: 8 KiB runtime pages
MSPAN_IN_USE = 1                                 # mheap.go: mSpanInUse
MEM_PROFILE_RATE = 512 * 1024                    # mprof.go: MemProfileRate default


SIZE_SPECIALIZED_LIMIT = 81      # malloc.go: len(mallocNoScanTable); sizes below it take the specialised copies


# ---- data and bss symbols ------------------------------------------------------------

@dataclass(frozen=True)
class DataSymbol:
    name: str         # the linker name Go uses
    size: int
    align: int = 8


# In link order. Sizes come from the Go declarations named beside them.
DATA_SYMBOLS = [
    DataSymbol("runtime.writeBarrier", 16),                 # mgc.go: {enabled bool; pad [3]byte; alignme uint64}
    DataSymbol("runtime.zerobase", 8),                      # malloc.go: base of every 0-byte allocation
    DataSymbol("runtime.MemProfileRate", 8),                # mprof.go: int
    DataSymbol("runtime.gcBlackenEnabled", 4),              # mgc.go: uint32, 1 while mutators assist
    DataSymbol("runtime.debug.malloc", 1),                  # runtime1.go: debug.malloc (a field of runtime.debug)
    DataSymbol("internal/runtime/gc.SizeClassToSize", 2 * sc.NUM_SIZE_CLASSES, 2),   # [68]uint16
    DataSymbol("internal/runtime/gc.SizeClassToNPages", sc.NUM_SIZE_CLASSES, 1),     # [68]uint8
    DataSymbol("internal/runtime/gc.SizeClassToDivMagic", 4 * sc.NUM_SIZE_CLASSES, 4),  # [68]uint32
    DataSymbol("internal/runtime/gc.SizeToSizeClass8", len(sc.SIZE_TO_CLASS8), 1),     # [129]uint8
    DataSymbol("internal/runtime/gc.SizeToSizeClass128", len(sc.SIZE_TO_CLASS128), 1),  # [249]uint8
    DataSymbol("runtime.emptymspan", MSpan.SIZE),           # mcache.go: the span every empty mcache slot points at
    DataSymbol("runtime.mcache0", 8),                       # mcache.go: *mcache used before a P exists
    DataSymbol("runtime.g0", G.SIZE, 64),                   # proc.go
    DataSymbol("runtime.m0", M.SIZE, 64),                   # proc.go
    DataSymbol("runtime.p0", P.SIZE, 64),                   # stands for allp[0] (heap-allocated in Go)
    DataSymbol("runtime.mheap_", MHeap.SIZE, 64),           # mheap.go
    # malloc_tables_generated.go: [81]func(...) each, indexed by size; the machine fills in
    # the size-specialised routines' addresses (Machine(size_specialized=True)).
    DataSymbol("runtime.mallocScanTable", 8 * SIZE_SPECIALIZED_LIMIT),
    DataSymbol("runtime.mallocNoScanTable", 8 * SIZE_SPECIALIZED_LIMIT),
]


def _place(symbols, base):
    out, addr = {}, base
    for s in symbols:
        addr = (addr + s.align - 1) // s.align * s.align
        out[s.name] = addr
        addr += s.size
    return out


DATA_ADDR = _place(DATA_SYMBOLS, DATA.base)


def tls_fs_base():
    """FS base for m0: Go's settls points FS 8 bytes past m.tls[0]."""
    return DATA_ADDR["runtime.m0"] + M.tls + 8


# ---- constants the routines refer to by name, spelled as in go_asm.h -----------------

STACK_PREEMPT = 0xFFFFFFFFFFFFFADE     # stack.go: stackPreempt (uintptrMask & -1314)


def asm_constants(extra=None):
    """`<struct>_<field>`, `<struct>__size` and `const_<name>` for the .s files."""
    out = {}
    for sname, cls in STRUCTS.items():
        for k, v in vars(cls).items():
            if k == "SIZE":
                out[f"{sname}__size"] = v
            elif not k.startswith("_") and isinstance(v, int) and k != "ENTRIES":
                out[f"{sname}_{k}"] = v
    out.update({
        "const_smallSizeMax": sc.SMALL_SIZE_MAX,       # gc.SmallSizeMax
        "const_smallSizeDiv": sc.SMALL_SIZE_DIV,       # gc.SmallSizeDiv
        "const_largeSizeDiv": sc.LARGE_SIZE_DIV,       # gc.LargeSizeDiv
        "const_maxSmallSize": sc.MAX_SMALL_SIZE,       # gc.MaxSmallSize
        "const_mallocHeaderSize": sc.MALLOC_HEADER_SIZE,
        "const_stackPreempt": STACK_PREEMPT - (1 << 64),   # as a sign-extended immediate
        "const_wbBufEntries": WBBuf.ENTRIES,
        "const_maxTinySize": sc.TINY_SIZE,                 # malloc.go: maxTinySize
        "const_tinySpanClass": sc.make_span_class(sc.TINY_SIZE_CLASS, True),
        "const_minSizeForMallocHeader": sc.MIN_SIZE_FOR_MALLOC_HEADER,
        "const_pageSize": PAGE_SIZE,
        "const_pageShift": PAGE_SHIFT,
        "const_pagesPerArena": HEAP_ARENA_BYTES // PAGE_SIZE,       # mheap.go: pagesPerArena
        "const_logHeapArenaBytes": LOG_HEAP_ARENA_BYTES,
        "const_arenaBaseOffset": ARENA_BASE_OFFSET - (1 << 64),    # as a sign-extended immediate
        "const_mallocTableLen": SIZE_SPECIALIZED_LIMIT,   # len(mallocNoScanTable) == len(mallocScanTable)
        "const_sizeSpecializedMalloc": 0,       # malloc.go: sizeSpecializedMallocEnabled (a Machine option)
    })
    out.update(STACK_ASM_CONSTANTS)
    out.update(extra or {})
    return out


# ---- goroutine stacks (stack.go, internal/abi/stack.go; linux/amd64, stackSystem = 0) ----

STACK_MIN = 2048                 # stack.go: stackMin, the minimum stack size of Go code
FIXED_STACK = 2048               # stack.go: fixedStack, stackMin + stackSystem rounded up to a power of 2
STACK_SMALL = 128                # internal/abi/stack.go: StackSmall, bytes a frame may go below the guard
STACK_BIG = 4096                 # internal/abi/stack.go: StackBig, the largest frame without the wrap guard
STACK_NOSPLIT = 800              # stack.go: stackNosplit = abi.StackNosplitBase(800) * StackGuardMultiplier(1)
STACK_GUARD = 928                # stack.go: stackGuard = stackNosplit + stackSystem + abi.StackSmall
NUM_STACK_ORDERS = 4             # malloc.go: _NumStackOrders on linux (2, 4, 8, 16 KiB)
STACK_CACHE_SIZE = 32768         # malloc.go: _StackCacheSize, the per-P stack cache per order
STACK_FORCE_MOVE = 0xFFFFFFFFFFFFFEED   # stack.go: stackForceMove (uintptrMask & -275)
STACK_FORK = 0xFFFFFFFFFFFFFB2E  # stack.go: stackFork (uintptrMask & -1234)
MAX_STACK_SIZE = 1000000000      # proc.go: main sets maxstacksize to 1 GB (decimal) on 64-bit
MAX_STACK_CEILING = 2 * MAX_STACK_SIZE   # proc.go: maxstackceiling = 2 * maxstacksize
NEWPROC_TOP = 32                 # proc.go: newproc1's totalSize (4*PtrSize + MinFrameSize) above the first frame
G_RUNNABLE, G_RUNNING, G_WAITING, G_DEAD, G_COPYSTACK = 1, 2, 4, 6, 8   # runtime2.go: _Grunnable ...

STACK_ASM_CONSTANTS = {
    "const_stackGuard": STACK_GUARD,
    "const_stackSmall": STACK_SMALL,
    "const_stackBig": STACK_BIG,
}
