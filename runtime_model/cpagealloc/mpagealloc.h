/* Go 1.27's page allocator in C: the running implementation (gomemu issue 13).
 *
 * Two implementations of the same pageAlloc exist on purpose:
 *   - runtime_model/pagealloc.py (PyPageAlloc) is the reference model: readable Python,
 *     checked against every one of Go's own page-allocator test vectors.
 *   - this C core (CPageAlloc, runtime_model/cpagealloc/__init__.py) is what the emulated
 *     heap runs on. The Python model is tuned as far as Python goes (about 40-50 k mixed
 *     ops/s); the target is 200 k, which needs compiled code.
 * The C side transcribes Go's code (mpagealloc.go, mpagealloc_64bit.go, mpallocbits.go,
 * mgcscavenge.go, mpagecache.go, mranges.go) function by function, where the Python model
 * reaches the same results by other means (512-bit ints, a closed-form find). The tests
 * drive both with Go's vectors and with random operation sequences and compare every
 * result and the full state (tests/test_cpagealloc.py); they must agree exactly.
 *
 * What the C side simplifies is what the model simplifies (docs/pagealloc.md,
 * "Simplified"): no locks or atomics, scavengeOne's alloc/free round trip elided,
 * findMappedAddr in test mode (inUse), summary memory counted in sysStat the way the
 * model counts it. Addresses are kept as offAddr offsets (addr - arenaBaseOffset), as
 * the model keeps them; the API takes and returns virtual addresses.
 *
 * Memory: Go reserves each summary level and the scavenge index as one array and maps
 * pieces on grow. Here each summary level is a table of 4 KiB pieces (512 pallocSums, one
 * physical page) allocated where Go maps them, and the scavenge index, like p.chunks,
 * is a two-level array whose second level is allocated where chunks are grown.
 */
#ifndef GOMEMU_MPAGEALLOC_H
#define GOMEMU_MPAGEALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API __attribute__((visibility("default")))

/* malloc.go: heapAddrBits (64-bit, not iOS/Wasm), arenaBaseOffset (amd64) */
#define heapAddrBits 48
#define arenaBaseOffset 0xffff800000000000ULL
/* internal/runtime/gc: PageShift, PageSize */
#define pageShift 13
#define pageSize (1ULL << pageShift)
/* mpagealloc.go */
#define logPallocChunkPages 9
#define pallocChunkPages (1u << logPallocChunkPages)
#define logPallocChunkBytes (logPallocChunkPages + pageShift)
#define pallocChunkBytes (1ULL << logPallocChunkBytes)
#define summaryLevelBits 3
/* mpagealloc_64bit.go: summaryLevels, pallocChunksL1Bits */
#define summaryLevels 5
#define summaryL0Bits (heapAddrBits - logPallocChunkBytes - (summaryLevels - 1) * summaryLevelBits)
#define pallocChunksL1Bits 13
#define pallocChunksL2Bits (heapAddrBits - logPallocChunkBytes - pallocChunksL1Bits)
/* mpagealloc.go: logMaxPackedValue, maxPackedValue, pallocSumBytes */
#define logMaxPackedValue (logPallocChunkPages + (summaryLevels - 1) * summaryLevelBits)
#define maxPackedValue (1u << logMaxPackedValue)
#define pallocSumBytes 8
/* linux/amd64: physPageSize, physHugePageSize; mheap.go: maxPhysPageSize */
#define physPageSize 4096
#define physHugePageSize (2ULL << 20)
#define maxPagesPerPhysPage ((512u << 10) / pageSize)
/* mranges.go: minOffAddr, maxOffAddr (as offsets) */
#define minOffAddr 0ULL
#define maxOffAddr ((1ULL << heapAddrBits) - 1)
/* mgcscavenge.go: scavChunkHiOccPages = uint16(0.96875 * pallocChunkPages) */
#define scavChunkHiOccPages ((uint16_t)(pallocChunkPages * 31 / 32))
/* mpagecache.go: pageCachePages */
#define pageCachePages 64
/* mranges.go: addrRanges.init persistentallocs 16 addrRanges of 16 bytes into sysStat */
#define inUseInitBytes (16 * 16)

/* A summary piece: one physical page of a level's pallocSum array. */
#define sumPieceEntries (physPageSize / pallocSumBytes)
#define logSumPieceEntries 9

static const unsigned levelBits[summaryLevels] = {summaryL0Bits, summaryLevelBits, summaryLevelBits,
                                                  summaryLevelBits, summaryLevelBits};
static const unsigned levelShift[summaryLevels] = {
    heapAddrBits - summaryL0Bits, heapAddrBits - summaryL0Bits - 1 * summaryLevelBits,
    heapAddrBits - summaryL0Bits - 2 * summaryLevelBits, heapAddrBits - summaryL0Bits - 3 * summaryLevelBits,
    heapAddrBits - summaryL0Bits - 4 * summaryLevelBits};
static const unsigned levelLogPages[summaryLevels] = {
    logPallocChunkPages + 4 * summaryLevelBits, logPallocChunkPages + 3 * summaryLevelBits,
    logPallocChunkPages + 2 * summaryLevelBits, logPallocChunkPages + 1 * summaryLevelBits, logPallocChunkPages};

/* Why a call failed; the binding turns each into emu.errors' type with the model's message. */
enum {
    PA_OK = 0,
    PA_NOT_GROWN,    /* free/flush outside grown memory (InvariantError); out[4] = the range's index in a batch */
    PA_BELOW_ZERO,   /* scavChunkData.free: "allocated pages below zero?"; out[4..6] = chunk, inUse, npages */
    PA_TOO_MANY,     /* scavChunkData.alloc: "too many pages allocated in chunk?"; out[4..6] as above */
    PA_BAD_SUMMARY,  /* find/alloc/allocToCache: "bad summary data"; out[4..6] = level, index, npages */
    PA_NPAGES,       /* free_many: a range of no pages (BadInput); out[4] = its index */
    PA_NOMEM,        /* malloc failed (MemoryError) */
    PA_BAD_MIN,      /* findScavengeCandidate: min not a power of two <= maxPagesPerPhysPage (BadInput) */
    PA_BAD_RANGE,    /* a page range outside its chunk, or a page cache not on a 64-page block (BadInput) */
    PA_OVERLAP,      /* find: "range partially overlaps" (InvariantError) */
};

/* mpagealloc.go: pallocSum, packed start/max/end */
typedef uint64_t pallocSum;

/* mpallocbits.go: pageBits [pallocChunkPages/64]uint64; pallocBits pageBits */
typedef struct {
    uint64_t b[pallocChunkPages / 64];
} pageBits;
typedef pageBits pallocBits;

/* mpallocbits.go: pallocData (a chunk's allocation bitmap, 1 = in use, and scavenged bitmap) */
typedef struct {
    pallocBits pallocBits;
    pageBits scavenged;
} pallocData;

/* mranges.go: addrRange [base, limit), offsets; addrRanges sorted and coalesced */
typedef struct {
    uint64_t base, limit;
} addrRange;
typedef struct {
    addrRange *ranges;
    size_t len, cap;
} addrRanges;

/* mgcscavenge.go: scavChunkData (Go packs it in a uint64; gen is uint32 in both) */
typedef struct {
    uint16_t inUse;
    uint16_t lastInUse;
    uint32_t gen;
    uint8_t scavChunkFlags;
} scavChunkData;
#define scavChunkHasFree 1

/* mgcscavenge.go: scavengeIndex. The search addresses are plain offsets (single-threaded:
 * the "marked" states collapse to plain stores); minOffAddr means cleared. */
typedef struct {
    scavChunkData *chunks[1 << pallocChunksL1Bits]; /* second level: 1 << pallocChunksL2Bits entries */
    uint64_t min, max;                              /* chunk indices whose entries are mapped (sysGrow) */
    uint64_t minHeapIdx;
    uint64_t searchAddrBg, searchAddrForce;
    uint64_t freeHWM;
    uint32_t gen;
} scavengeIndex;

/* mpagealloc.go: pageAlloc */
typedef struct {
    pallocSum **summary[summaryLevels];             /* summary[l][i >> 9][i & 511]; NULL piece = not mapped */
    pallocData *chunks[1 << pallocChunksL1Bits];    /* chunks[ci.l1()][ci.l2()] */
    uint64_t searchAddr;                            /* offAddr offset: no free page below it */
    uint64_t start, end;                            /* chunkIdx bounds of grown memory */
    addrRanges inUse;                               /* grown memory (chunk aligned) */
    struct {
        scavengeIndex index;
    } scav;
    uint64_t sysStat;                               /* p.sysStat: bytes of metadata mapped (gcMiscSys) */
    /* Not Go's: one past the highest root entry grow touched. find's root scan stops there;
     * the entries above are zero, and Go's scan skips zeros. */
    uint64_t rootEnd;
    /* Not Go's: results for the binding (out[0..3]) and the last error's details (out[4..7]). */
    uint64_t out[8];
} pageAlloc;

/* ---- mpagealloc.go: pallocSum -------------------------------------------------------- */

static inline pallocSum packPallocSum(uint64_t start, uint64_t max, uint64_t end) {
    if (max == maxPackedValue) return (pallocSum)1 << 63;
    return (start & (maxPackedValue - 1)) | ((max & (maxPackedValue - 1)) << logMaxPackedValue) |
           ((end & (maxPackedValue - 1)) << (2 * logMaxPackedValue));
}
static inline uint64_t sumStart(pallocSum p) {
    return p >> 63 ? maxPackedValue : p & (maxPackedValue - 1);
}
static inline uint64_t sumMax(pallocSum p) {
    return p >> 63 ? maxPackedValue : (p >> logMaxPackedValue) & (maxPackedValue - 1);
}
static inline uint64_t sumEnd(pallocSum p) {
    return p >> 63 ? maxPackedValue : (p >> (2 * logMaxPackedValue)) & (maxPackedValue - 1);
}
pallocSum mergeSummaries(const pallocSum *sums, size_t n, unsigned logMaxPagesPerSum);

/* ---- internal/runtime/sys --------------------------------------------------------------- */

static inline unsigned TrailingZeros64(uint64_t x) { return x ? (unsigned)__builtin_ctzll(x) : 64; }
static inline unsigned LeadingZeros64(uint64_t x) { return x ? (unsigned)__builtin_clzll(x) : 64; }
static inline unsigned OnesCount64(uint64_t x) { return (unsigned)__builtin_popcountll(x); }
/* uint64(1)<<n - 1 with Go's shift semantics (n >= 64 shifts everything out). */
static inline uint64_t lowMask(unsigned n) { return n >= 64 ? ~0ULL : (1ULL << n) - 1; }

/* ---- mpallocbits.go ---------------------------------------------------------------------- */

#define NOT_FOUND (~0u)   /* ^uint(0) */
void pageBits_setRange(pageBits *b, unsigned i, unsigned n);
void pageBits_clearRange(pageBits *b, unsigned i, unsigned n);
unsigned pageBits_popcntRange(const pageBits *b, unsigned i, unsigned n);
pallocSum pallocBits_summarize(const pallocBits *b);
unsigned pallocBits_find(const pallocBits *b, uint64_t npages, unsigned searchIdx, unsigned *newSearchIdx);
unsigned findBitRange64(uint64_t c, unsigned n);
void pallocData_allocRange(pallocData *m, unsigned i, unsigned n);
void pallocData_allocAll(pallocData *m);

/* ---- mranges.go -------------------------------------------------------------------------- */

size_t addrRanges_findSucc(const addrRanges *a, uint64_t addr);
bool addrRanges_findAddrGreaterEqual(const addrRanges *a, uint64_t addr, uint64_t *out);
bool addrRanges_contains(const addrRanges *a, uint64_t addr);
int addrRanges_add(addrRanges *a, addrRange r);

/* ---- mpagealloc.go ----------------------------------------------------------------------- */

static inline pallocSum *sumPiece(const pageAlloc *p, int l, uint64_t i) {
    return p->summary[l][i >> logSumPieceEntries];
}
/* p.summary[l][i]: 0 where Go would not have mapped it (find never reads there). */
static inline pallocSum sumGet(const pageAlloc *p, int l, uint64_t i) {
    const pallocSum *piece = sumPiece(p, l, i);
    return piece ? piece[i & (sumPieceEntries - 1)] : 0;
}
static inline void sumSet(pageAlloc *p, int l, uint64_t i, pallocSum s) {
    sumPiece(p, l, i)[i & (sumPieceEntries - 1)] = s;
}
static inline pallocData *chunkOf(const pageAlloc *p, uint64_t ci) {
    return &p->chunks[ci >> pallocChunksL2Bits][ci & ((1u << pallocChunksL2Bits) - 1)];
}
static inline scavChunkData *scavChunkOf(const pageAlloc *p, uint64_t ci) {
    return &p->scav.index.chunks[ci >> pallocChunksL2Bits][ci & ((1u << pallocChunksL2Bits) - 1)];
}
/* Every chunk of [base, limit] (offsets, limit inclusive) has been grown. */
bool grownRange(const pageAlloc *p, uint64_t base, uint64_t limit);
void update(pageAlloc *p, uint64_t base, uint64_t npages, bool contig, bool alloc);
int find(pageAlloc *p, uint64_t npages, bool *found, uint64_t *addr, uint64_t *searchAddr);
int errorAt(pageAlloc *p, int code, uint64_t a, uint64_t b, uint64_t c);

/* ---- mgcscavenge.go ---------------------------------------------------------------------- */

int scavIndexAlloc(pageAlloc *p, uint64_t ci, unsigned npages);
int scavIndexFree(pageAlloc *p, uint64_t ci, unsigned page, unsigned npages);
int pallocData_findScavengeCandidate(const pallocData *m, unsigned searchIdx, uint64_t minimum, uint64_t max,
                                     unsigned *start, unsigned *size);

#endif
