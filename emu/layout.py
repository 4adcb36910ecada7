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


class G:
    """runtime2.go: type g struct."""
    SIZE = 456
    stack = 0             # g.stack (a Stack)
    stackguard0 = 16      # g.stackguard0: compared with SP in every prologue
    stackguard1 = 24
    m = 48                # g.m
    sched = 56            # g.sched (gobuf)
    atomicstatus = 144
    goid = 152
    preempt = 177
    gcAssistBytes = 440


class M:
    """runtime2.go: type m struct."""
    SIZE = 1832
    g0 = 0
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


class MHeap:
    """mheap.go: type mheap; only the fields kept in emulated memory (runtime.mheap_)."""
    SIZE = 93464
    sweepgen = 65856
    pagesInUse = 65888
    arenas = 66008        # [1 << arenaL1Bits]*[1 << arenaL2Bits]*heapArena


STRUCTS = {"stack": Stack, "g": G, "m": M, "p": P, "mcache": MCache, "mspan": MSpan, "wbBuf": WBBuf, "heapArena": HeapArena, "mheap": MHeap}

# mheap.go / malloc.go constants used on both sides.
NUM_SPAN_CLASSES = sc.NUM_SIZE_CLASSES << 1      # numSpanClasses
HEAP_ARENA_BYTES = 64 << 20                      # heapArenaBytes on linux/amd64
PAGE_SHIFT = sc.PAGE_SHIFT                       # _PageShift
PAGE_SIZE = sc.PAGE_SIZE                         # _PageSize: 8 KiB runtime pages
MSPAN_IN_USE = 1                                 # mheap.go: mSpanInUse
MEM_PROFILE_RATE = 512 * 1024                    # mprof.go: MemProfileRate default


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
]


def _place(symbols, base):
    out, addr = {}, base
    for s in symbols:
        addr = (addr + s.align - 1) // s.align * s.align
        out[s.name] = addr
        addr += s.size
    return out


DATA_ADDR = _place(DATA_SYMBOLS, DATA.base)
DATA_SIZE = {s.name: s.size for s in DATA_SYMBOLS}


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
    })
    out.update(extra or {})
    return out
