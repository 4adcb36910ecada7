/* runtime/mpagealloc.go and mpagealloc_64bit.go in C: pageAlloc's grow, update, alloc,
 * find, free, and the entry points the Python binding calls (pa_*).
 * Running implementation; the reference model is runtime_model/pagealloc.py (mpagealloc.h
 * says why there are two). Beyond Go's functions: free_many (a sweep's frees as one call,
 * leaving the state frees one by one leave), the state export for the tests' comparison
 * with the model, and export_test.go's NewPageAlloc chunk setup. */
#include <stdlib.h>
#include <string.h>

#include "mpagealloc.h"

#define leafLevel (summaryLevels - 1)
/* mpagealloc.go: freeChunkSum */
#define freeChunkSum \
    ((pallocSum)pallocChunkPages | ((pallocSum)pallocChunkPages << logMaxPackedValue) | \
     ((pallocSum)pallocChunkPages << (2 * logMaxPackedValue)))

int scavIndexGrow(pageAlloc *p, uint64_t c0, uint64_t c1);

int errorAt(pageAlloc *p, int code, uint64_t a, uint64_t b, uint64_t c) {
    p->out[4] = a;
    p->out[5] = b;
    p->out[6] = c;
    return code;
}

static uint64_t levelEntries(int l) { return 1ULL << (heapAddrBits - levelShift[l]); }

/* mergeSummaries: fold n consecutive child summaries into their parent's. */
pallocSum mergeSummaries(const pallocSum *sums, size_t n, unsigned logMaxPagesPerSum) {
    uint64_t start = sumStart(sums[0]), most = sumMax(sums[0]), end = sumEnd(sums[0]);
    for (size_t i = 1; i < n; i++) {
        uint64_t si = sumStart(sums[i]), mi = sumMax(sums[i]), ei = sumEnd(sums[i]);
        if (start == (uint64_t)i << logMaxPagesPerSum) start += si; /* all free so far */
        if (end + si > most) most = end + si;
        if (mi > most) most = mi;
        if (ei == 1ULL << logMaxPagesPerSum)
            end += 1ULL << logMaxPagesPerSum;
        else
            end = ei;
    }
    return packPallocSum(start, most, end);
}

/* The parent of p.summary[l+1][i<<3 : (i+1)<<3]. A block never straddles a piece. */
static pallocSum mergeChildren(const pageAlloc *p, int l, uint64_t i) {
    uint64_t first = i << levelBits[l + 1];
    const pallocSum *piece = sumPiece(p, l + 1, first);
    if (!piece) return 0;
    return mergeSummaries(piece + (first & (sumPieceEntries - 1)), 1u << levelBits[l + 1], levelLogPages[l + 1]);
}

bool grownRange(const pageAlloc *p, uint64_t base, uint64_t limit) {
    size_t i = addrRanges_findSucc(&p->inUse, base);
    return i > 0 && base < p->inUse.ranges[i - 1].limit && limit < p->inUse.ranges[i - 1].limit;
}

/* ---- lifetime ---------------------------------------------------------------------------- */

static void destroy(pageAlloc *p) {
    for (int l = 0; l < summaryLevels; l++) {
        if (!p->summary[l]) continue;
        for (uint64_t k = 0; k < levelEntries(l) >> logSumPieceEntries; k++) free(p->summary[l][k]);
        free(p->summary[l]);
    }
    for (size_t k = 0; k < 1u << pallocChunksL1Bits; k++) {
        free(p->chunks[k]);
        free(p->scav.index.chunks[k]);
    }
    free(p->inUse.ranges);
    free(p);
}

API void pa_destroy(pageAlloc *p) {
    if (p) destroy(p);
}

/* pageAlloc.init: nothing grown, searchAddr = maxSearchAddr, inUse's 16 ranges in sysStat. */
API pageAlloc *pa_new(void) {
    pageAlloc *p = calloc(1, sizeof(pageAlloc));
    if (!p) return NULL;
    for (int l = 0; l < summaryLevels; l++) {
        if (!(p->summary[l] = calloc(levelEntries(l) >> logSumPieceEntries, sizeof(pallocSum *)))) {
            destroy(p);
            return NULL;
        }
    }
    p->inUse.cap = 16;
    if (!(p->inUse.ranges = malloc(p->inUse.cap * sizeof(addrRange)))) {
        destroy(p);
        return NULL;
    }
    p->searchAddr = maxOffAddr;
    p->sysStat = inUseInitBytes;
    return p;
}

/* A deep copy (copy.deepcopy of the binding's object). */
API pageAlloc *pa_clone(const pageAlloc *src) {
    pageAlloc *p = malloc(sizeof(pageAlloc));
    if (!p) return NULL;
    memcpy(p, src, sizeof(pageAlloc));
    for (int l = 0; l < summaryLevels; l++) p->summary[l] = NULL;
    for (size_t k = 0; k < 1u << pallocChunksL1Bits; k++) {
        p->chunks[k] = NULL;
        p->scav.index.chunks[k] = NULL;
    }
    p->inUse.ranges = NULL;
    bool ok = (p->inUse.ranges = malloc(src->inUse.cap * sizeof(addrRange))) != NULL;
    if (ok) memcpy(p->inUse.ranges, src->inUse.ranges, src->inUse.len * sizeof(addrRange));
    for (int l = 0; ok && l < summaryLevels; l++) {
        uint64_t npieces = levelEntries(l) >> logSumPieceEntries;
        if (!(ok = (p->summary[l] = calloc(npieces, sizeof(pallocSum *))) != NULL)) break;
        for (uint64_t k = 0; ok && k < npieces; k++) {
            if (!src->summary[l][k]) continue;
            if ((ok = (p->summary[l][k] = malloc(physPageSize)) != NULL))
                memcpy(p->summary[l][k], src->summary[l][k], physPageSize);
        }
    }
    for (size_t k = 0; ok && k < 1u << pallocChunksL1Bits; k++) {
        if (src->chunks[k]) {
            size_t n = (size_t)1 << pallocChunksL2Bits;
            if ((ok = (p->chunks[k] = malloc(n * sizeof(pallocData))) != NULL))
                memcpy(p->chunks[k], src->chunks[k], n * sizeof(pallocData));
        }
        if (ok && src->scav.index.chunks[k]) {
            size_t n = (size_t)1 << pallocChunksL2Bits;
            if ((ok = (p->scav.index.chunks[k] = malloc(n * sizeof(scavChunkData))) != NULL))
                memcpy(p->scav.index.chunks[k], src->scav.index.chunks[k], n * sizeof(scavChunkData));
        }
    }
    if (!ok) {
        destroy(p);
        return NULL;
    }
    return p;
}

API uint64_t *pa_out(pageAlloc *p) { return p->out; }

/* ---- grow ---------------------------------------------------------------------------------- */

/* grow's check: 1 + the lowest grown chunk in [base, limit) (offsets), or 0 if none. */
API uint64_t pa_grow_conflict(const pageAlloc *p, uint64_t base, uint64_t limit) {
    const addrRanges *a = &p->inUse;
    size_t i = addrRanges_findSucc(a, base);
    if (i > 0 && base < a->ranges[i - 1].limit) return (base >> logPallocChunkBytes) + 1;
    if (i < a->len && a->ranges[i].base < limit) return (a->ranges[i].base >> logPallocChunkBytes) + 1;
    return 0;
}

/* pageAlloc.grow for [base, limit) (offsets, chunk aligned, checked by the caller):
 * sysGrow maps the block-aligned summary ranges (each new physical page counted in
 * sysStat), the scavenge index grows, the chunks' bitmaps are allocated (a new L2 array
 * counted) as free and scavenged, and update summarizes them. */
API int pa_grow(pageAlloc *p, uint64_t base, uint64_t limit) {
    for (int l = 0; l < summaryLevels; l++) {
        uint64_t lo = base >> levelShift[l], hi = ((limit - 1) >> levelShift[l]) + 1; /* addrsToSummaryRange */
        if (l == 0 && hi > p->rootEnd) p->rootEnd = hi;
        uint64_t e = 1ULL << levelBits[l];
        lo &= ~(e - 1); /* blockAlignSummaryRange */
        hi = (hi + e - 1) & ~(e - 1);
        for (uint64_t k = lo >> logSumPieceEntries; k < (hi + sumPieceEntries - 1) >> logSumPieceEntries; k++) {
            if (p->summary[l][k]) continue;
            if (!(p->summary[l][k] = calloc(sumPieceEntries, sizeof(pallocSum)))) return PA_NOMEM;
            p->sysStat += physPageSize;
        }
    }
    uint64_t c0 = base >> logPallocChunkBytes, c1 = limit >> logPallocChunkBytes;
    int r = scavIndexGrow(p, c0, c1);
    if (r) return r;
    if (p->start == 0 || c0 < p->start) p->start = c0; /* firstGrowth || start < p.start */
    if (c1 > p->end) p->end = c1;
    if ((r = addrRanges_add(&p->inUse, (addrRange){base, limit}))) return r;
    if (base < p->searchAddr) p->searchAddr = base; /* growing is like freeing */
    for (uint64_t c = c0; c < c1; c++) {
        pallocData **l2 = &p->chunks[c >> pallocChunksL2Bits];
        if (!*l2) {
            if (!(*l2 = calloc((size_t)1 << pallocChunksL2Bits, sizeof(pallocData)))) return PA_NOMEM;
            p->sysStat += ((uint64_t)1 << pallocChunksL2Bits) * sizeof(pallocData);
        }
        pallocData *chunk = chunkOf(p, c);
        memset(&chunk->pallocBits, 0, sizeof(chunk->pallocBits));
        memset(&chunk->scavenged, 0xff, sizeof(chunk->scavenged)); /* new memory is scavenged */
        memset(scavChunkOf(p, c), 0, sizeof(scavChunkData));
    }
    update(p, base, (limit - base) >> pageShift, true, false);
    return PA_OK;
}

/* ---- summaries ----------------------------------------------------------------------------- */

static pallocSum summarizeChunk(const pageAlloc *p, uint64_t ci) { return pallocBits_summarize(&chunkOf(p, ci)->pallocBits); }

/* pageAlloc.update: new leaf summaries for [base, +npages) (offsets), merged upwards
 * while a level changes. contig: the range was one allocation or free, so the chunks
 * strictly inside it are wholly allocated or wholly free. */
void update(pageAlloc *p, uint64_t base, uint64_t npages, bool contig, bool alloc) {
    uint64_t limit = base + npages * pageSize - 1;
    uint64_t sc = base >> logPallocChunkBytes, ec = limit >> logPallocChunkBytes;
    if (sc == ec) {
        pallocSum x = sumGet(p, leafLevel, sc), y = summarizeChunk(p, sc);
        if (x == y) return;
        sumSet(p, leafLevel, sc, y);
    } else if (contig) {
        sumSet(p, leafLevel, sc, summarizeChunk(p, sc));
        for (uint64_t c = sc + 1; c < ec; c++) sumSet(p, leafLevel, c, alloc ? 0 : freeChunkSum);
        sumSet(p, leafLevel, ec, summarizeChunk(p, ec));
    } else {
        for (uint64_t c = sc; c <= ec; c++) sumSet(p, leafLevel, c, summarizeChunk(p, c));
    }
    bool changed = true;
    for (int l = summaryLevels - 2; l >= 0 && changed; l--) {
        changed = false;
        uint64_t lo = base >> levelShift[l], hi = (limit >> levelShift[l]) + 1; /* addrsToSummaryRange */
        for (uint64_t i = lo; i < hi; i++) {
            pallocSum sum = mergeChildren(p, l, i);
            if (sumGet(p, l, i) != sum) {
                changed = true;
                sumSet(p, l, i, sum);
            }
        }
    }
}

static int cmpU64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* update for a scattered set of chunks (free_many): summarize each once, then refresh
 * each parent of a changed entry once per level. Leaves the summaries update on each
 * chunk in turn leaves, as every summary is a function of the bitmaps below it. */
static void updateChunks(pageAlloc *p, uint64_t *idx, size_t n) {
    qsort(idx, n, sizeof(uint64_t), cmpU64);
    size_t m = 0;
    for (size_t k = 0; k < n; k++) {
        if (k && idx[k] == idx[k - 1]) continue;
        pallocSum y = summarizeChunk(p, idx[k]);
        if (sumGet(p, leafLevel, idx[k]) == y) continue;
        sumSet(p, leafLevel, idx[k], y);
        idx[m++] = idx[k];
    }
    for (int l = summaryLevels - 2; l >= 0 && m; l--) {
        size_t changed = 0;
        uint64_t prev = ~0ULL;
        for (size_t k = 0; k < m; k++) {
            uint64_t i = idx[k] >> levelBits[l + 1]; /* non-decreasing; written back at <= k */
            if (i == prev) continue;
            prev = i;
            pallocSum sum = mergeChildren(p, l, i);
            if (sumGet(p, l, i) == sum) continue;
            sumSet(p, l, i, sum);
            idx[changed++] = i;
        }
        m = changed;
    }
}

/* ---- alloc ------------------------------------------------------------------------------- */

/* pageAlloc.allocRange: mark [base, +npages) in use and clear its scavenged bits; returns
 * through *scav the bytes that were scavenged. */
static int allocRange(pageAlloc *p, uint64_t base, uint64_t npages, uint64_t *scav) {
    uint64_t limit = base + npages * pageSize - 1;
    uint64_t sc = base >> logPallocChunkBytes, ec = limit >> logPallocChunkBytes;
    unsigned si = (base >> pageShift) & (pallocChunkPages - 1), ei = (limit >> pageShift) & (pallocChunkPages - 1);
    uint64_t n = 0;
    int r;
    if (sc == ec) {
        pallocData *chunk = chunkOf(p, sc);
        n += pageBits_popcntRange(&chunk->scavenged, si, ei + 1 - si);
        pallocData_allocRange(chunk, si, ei + 1 - si);
        if ((r = scavIndexAlloc(p, sc, ei + 1 - si))) return r;
    } else {
        pallocData *chunk = chunkOf(p, sc);
        n += pageBits_popcntRange(&chunk->scavenged, si, pallocChunkPages - si);
        pallocData_allocRange(chunk, si, pallocChunkPages - si);
        if ((r = scavIndexAlloc(p, sc, pallocChunkPages - si))) return r;
        for (uint64_t c = sc + 1; c < ec; c++) {
            chunk = chunkOf(p, c);
            n += pageBits_popcntRange(&chunk->scavenged, 0, pallocChunkPages);
            pallocData_allocAll(chunk);
            if ((r = scavIndexAlloc(p, c, pallocChunkPages))) return r;
        }
        chunk = chunkOf(p, ec);
        n += pageBits_popcntRange(&chunk->scavenged, 0, ei + 1);
        pallocData_allocRange(chunk, 0, ei + 1);
        if ((r = scavIndexAlloc(p, ec, ei + 1))) return r;
    }
    update(p, base, npages, true, true);
    *scav = n * pageSize;
    return PA_OK;
}

/* pageAlloc.findMappedAddr, test mode (consult inUse). */
static uint64_t findMappedAddr(const pageAlloc *p, uint64_t addr) {
    uint64_t v;
    return addrRanges_findAddrGreaterEqual(&p->inUse, addr, &v) ? v : maxOffAddr;
}

/* pageAlloc.find: walk the radix tree from the root to the first fit of npages pages,
 * narrowing firstFree (the first free memory seen) on the way; its base becomes the new
 * searchAddr. *found false: nothing fits (Go returns addr 0). */
int find(pageAlloc *p, uint64_t npages, bool *found, uint64_t *addr, uint64_t *searchAddr) {
    uint64_t i = 0;
    uint64_t ffBase = minOffAddr, ffBound = maxOffAddr; /* firstFree */
#define foundFree(a, size)                                                          \
    do {                                                                            \
        uint64_t a_ = (a), top_ = a_ + (size) - 1;                                  \
        if (ffBase <= a_ && top_ <= ffBound) {                                      \
            ffBase = a_;                                                            \
            ffBound = top_;                                                         \
        } else if (!(top_ < ffBase || ffBound < a_)) {                              \
            return errorAt(p, PA_OVERLAP, a_, ffBase, ffBound);                     \
        }                                                                           \
    } while (0)
    *found = false;
    for (int l = 0; l < summaryLevels; l++) {
        uint64_t entriesPerBlock = 1ULL << levelBits[l];
        unsigned logMaxPages = levelLogPages[l];
        i <<= levelBits[l];
        uint64_t j0 = 0, jEnd = entriesPerBlock;
        uint64_t searchIdx = p->searchAddr >> levelShift[l]; /* offAddrToLevelIndex */
        if ((searchIdx & ~(entriesPerBlock - 1)) == i) j0 = searchIdx & (entriesPerBlock - 1);
        if (l == 0 && jEnd > p->rootEnd) jEnd = p->rootEnd;  /* zeros beyond (see rootEnd) */
        uint64_t base = 0, size = 0;
        bool down = false;
        for (uint64_t j = j0; j < jEnd; j++) {
            pallocSum sum = sumGet(p, l, i + j);
            if (sum == 0) {
                size = 0; /* a fully allocated region breaks any run */
                continue;
            }
            foundFree((i + j) << levelShift[l], ((uint64_t)1 << logMaxPages) * pageSize);
            uint64_t s = sumStart(sum);
            if (size + s >= npages) { /* the run across entries fits */
                if (size == 0) base = j << logMaxPages;
                size += s;
                break;
            }
            if (sumMax(sum) >= npages) { /* it fits inside this entry: go down */
                i += j;
                down = true;
                break;
            }
            if (size == 0 || s < 1ULL << logMaxPages) {
                size = sumEnd(sum);
                base = ((j + 1) << logMaxPages) - size;
                continue;
            }
            size += 1ULL << logMaxPages; /* wholly free: the run goes on */
        }
        if (down) continue;
        if (size >= npages) {
            *addr = (i << levelShift[l]) + base * pageSize;
            *searchAddr = findMappedAddr(p, ffBase);
            *found = true;
            return PA_OK;
        }
        if (l == 0) { /* nothing fits */
            *searchAddr = maxOffAddr;
            return PA_OK;
        }
        return errorAt(p, PA_BAD_SUMMARY, l, i, npages);
    }
    /* i is a chunk whose summary says the run is inside it. */
    unsigned searchIdx, j = pallocBits_find(&chunkOf(p, i)->pallocBits, npages, 0, &searchIdx);
    if (j == NOT_FOUND) return errorAt(p, PA_BAD_SUMMARY, leafLevel, i, npages);
    *addr = (i << logPallocChunkBytes) + (uint64_t)j * pageSize;
    uint64_t sa = (i << logPallocChunkBytes) + (uint64_t)searchIdx * pageSize;
    foundFree(sa, ((i + 1) << logPallocChunkBytes) - sa);
    *searchAddr = findMappedAddr(p, ffBase);
    *found = true;
    return PA_OK;
#undef foundFree
}

/* pageAlloc.alloc: first fit of npages pages. Returns the virtual address (0: none; 1: an
 * error, its code in out[3]); out[0] = the bytes of it that were scavenged. */
API uint64_t pa_alloc(pageAlloc *p, uint64_t npages) {
    uint64_t sa = p->searchAddr, addr, newSearchAddr, scav;
    int r;
    p->out[0] = 0;
    if (sa >> logPallocChunkBytes >= p->end) return 0;
    unsigned pi = (sa >> pageShift) & (pallocChunkPages - 1);
    uint64_t i = sa >> logPallocChunkBytes;
    if (pallocChunkPages - pi >= npages && sumMax(sumGet(p, leafLevel, i)) >= npages) {
        /* Fast path: the chunk at searchAddr. */
        unsigned searchIdx, j = pallocBits_find(&chunkOf(p, i)->pallocBits, npages, pi, &searchIdx);
        if (j == NOT_FOUND) {
            p->out[3] = errorAt(p, PA_BAD_SUMMARY, leafLevel, i, npages);
            return 1;
        }
        addr = (i << logPallocChunkBytes) + (uint64_t)j * pageSize;
        newSearchAddr = (i << logPallocChunkBytes) + (uint64_t)searchIdx * pageSize;
    } else {
        bool found;
        if ((r = find(p, npages, &found, &addr, &newSearchAddr))) {
            p->out[3] = r;
            return 1;
        }
        if (!found) {
            if (npages == 1) p->searchAddr = maxOffAddr; /* not one page left */
            return 0;
        }
    }
    if ((r = allocRange(p, addr, npages, &scav))) {
        p->out[3] = r;
        return 1;
    }
    if (p->searchAddr < newSearchAddr) p->searchAddr = newSearchAddr;
    p->out[0] = scav;
    return addr + arenaBaseOffset;
}

/* ---- free -------------------------------------------------------------------------------- */

/* Pages of chunk c that [base, limit] covers (c between their chunks). */
static unsigned pagesIn(uint64_t c, uint64_t base, uint64_t limit) {
    uint64_t sc = base >> logPallocChunkBytes, ec = limit >> logPallocChunkBytes;
    unsigned si = c == sc ? (base >> pageShift) & (pallocChunkPages - 1) : 0;
    unsigned ei = c == ec ? (limit >> pageShift) & (pallocChunkPages - 1) : pallocChunkPages - 1;
    return ei + 1 - si;
}

/* free's checks on (virtual base, npages): grown memory. *b, *limit: offsets. */
static bool freeExtent(const pageAlloc *p, uint64_t base, uint64_t npages, uint64_t *b, uint64_t *limit) {
    *b = base - arenaBaseOffset;
    if (*b > maxOffAddr || npages > (1ULL << heapAddrBits) >> pageShift) return false;
    *limit = *b + npages * pageSize - 1;
    return *limit <= maxOffAddr && grownRange(p, *b, *limit);
}

/* pageAlloc.free's body without update: bitmaps and the scavenge index. */
static void freeBits(pageAlloc *p, uint64_t b, uint64_t limit, uint64_t npages) {
    if (b < p->searchAddr) p->searchAddr = b;
    uint64_t sc = b >> logPallocChunkBytes, ec = limit >> logPallocChunkBytes;
    unsigned si = (b >> pageShift) & (pallocChunkPages - 1), ei = (limit >> pageShift) & (pallocChunkPages - 1);
    if (npages == 1) {
        chunkOf(p, sc)->pallocBits.b[si / 64] &= ~(1ULL << (si % 64)); /* free1 */
        scavIndexFree(p, sc, si, 1);
    } else if (sc == ec) {
        pageBits_clearRange(&chunkOf(p, sc)->pallocBits, si, ei + 1 - si);
        scavIndexFree(p, sc, si, ei + 1 - si);
    } else {
        pageBits_clearRange(&chunkOf(p, sc)->pallocBits, si, pallocChunkPages - si);
        scavIndexFree(p, sc, si, pallocChunkPages - si);
        for (uint64_t c = sc + 1; c < ec; c++) {
            memset(&chunkOf(p, c)->pallocBits, 0, sizeof(pallocBits)); /* freeAll */
            scavIndexFree(p, c, 0, pallocChunkPages);
        }
        pageBits_clearRange(&chunkOf(p, ec)->pallocBits, 0, ei + 1);
        scavIndexFree(p, ec, 0, ei + 1);
    }
}

/* pageAlloc.free of npages (> 0) pages at the virtual address base. Checked first, as
 * the model checks: the range is in grown memory and takes no chunk below zero pages in
 * use ("allocated pages below zero?"); a refused free changes nothing. */
API int pa_free(pageAlloc *p, uint64_t base, uint64_t npages) {
    uint64_t b, limit;
    if (!freeExtent(p, base, npages, &b, &limit)) return errorAt(p, PA_NOT_GROWN, 0, 0, 0);
    for (uint64_t c = b >> logPallocChunkBytes; c <= limit >> logPallocChunkBytes; c++) {
        unsigned n = pagesIn(c, b, limit);
        if (scavChunkOf(p, c)->inUse < n) return errorAt(p, PA_BELOW_ZERO, c, scavChunkOf(p, c)->inUse, n);
    }
    freeBits(p, b, limit, npages);
    update(p, b, npages, true, false);
    return PA_OK;
}

/* A batch of frees, of npages[k] pages at the virtual address bases[k], leaving the
 * state free() on each in turn leaves. The batch is checked first (out[4] = the first bad
 * range's index; a chunk's pages in use against all the batch frees in it, chunks in the
 * order the batch first touches them), so a refused batch changes nothing. */
API int pa_free_many(pageAlloc *p, const uint64_t *bases, const uint64_t *npages, size_t n) {
    size_t touches = 0;
    uint64_t b, limit;
    for (size_t k = 0; k < n; k++) {
        if (npages[k] == 0) return errorAt(p, PA_NPAGES, k, 0, 0);
        if (!freeExtent(p, bases[k], npages[k], &b, &limit)) return errorAt(p, PA_NOT_GROWN, k, 0, 0);
        touches += (limit >> logPallocChunkBytes) - (b >> logPallocChunkBytes) + 1;
    }
    /* chunk -> pages the batch frees in it: open addressing, and the chunks in first-touch order. */
    size_t cap = 16;
    while (cap < 2 * touches) cap <<= 1;
    uint64_t *keys = malloc(cap * sizeof(uint64_t)), *order = malloc((touches + 1) * sizeof(uint64_t));
    uint64_t *counts = calloc(cap, sizeof(uint64_t));
    if (!keys || !order || !counts) {
        free(keys), free(order), free(counts);
        return PA_NOMEM;
    }
    memset(keys, 0xff, cap * sizeof(uint64_t));
    size_t nchunks = 0;
    for (size_t k = 0; k < n; k++) {
        freeExtent(p, bases[k], npages[k], &b, &limit);
        for (uint64_t c = b >> logPallocChunkBytes; c <= limit >> logPallocChunkBytes; c++) {
            size_t h = (size_t)(c * 0x9E3779B97F4A7C15ULL) & (cap - 1);
            while (keys[h] != c && keys[h] != ~0ULL) h = (h + 1) & (cap - 1);
            if (keys[h] == ~0ULL) {
                keys[h] = c;
                order[nchunks++] = h;
            }
            counts[h] += pagesIn(c, b, limit);
        }
    }
    int r = PA_OK;
    for (size_t k = 0; k < nchunks && !r; k++) {
        uint64_t c = keys[order[k]];
        if (scavChunkOf(p, c)->inUse < counts[order[k]]) r = errorAt(p, PA_BELOW_ZERO, c, scavChunkOf(p, c)->inUse, counts[order[k]]);
    }
    if (!r) {
        for (size_t k = 0; k < n; k++) {
            freeExtent(p, bases[k], npages[k], &b, &limit);
            freeBits(p, b, limit, npages[k]);
        }
        for (size_t k = 0; k < nchunks; k++) order[k] = keys[order[k]];
        updateChunks(p, order, nchunks);
    }
    free(keys), free(order), free(counts);
    return r;
}

/* ---- export_test.go: NewPageAlloc's per-chunk setup ------------------------------------------ */

/* After grow of chunk ci: clear its scavenged bits, let the index see every page
 * allocated and freed, set the scavenged bitmap scav[8], then allocate each range
 * (ranges[2k], ranges[2k+1] = start, npages; npages 0 is skipped) and update. */
API int pa_test_init_chunk(pageAlloc *p, uint64_t ci, const uint64_t *scav, const uint64_t *ranges, size_t n) {
    if (ci >= 1ULL << (heapAddrBits - logPallocChunkBytes) || !grownRange(p, ci << logPallocChunkBytes, ci << logPallocChunkBytes))
        return PA_NOT_GROWN;
    for (size_t k = 0; k < n; k++)
        if (ranges[2 * k] >= pallocChunkPages || ranges[2 * k + 1] > pallocChunkPages - ranges[2 * k]) return PA_BAD_RANGE;
    pallocData *chunk = chunkOf(p, ci);
    memset(&chunk->scavenged, 0, sizeof(pageBits));
    int r;
    if ((r = scavIndexAlloc(p, ci, pallocChunkPages)) || (r = scavIndexFree(p, ci, 0, pallocChunkPages))) return r;
    for (int i = 0; i < 8; i++) chunk->scavenged.b[i] = scav[i];
    for (size_t k = 0; k < n; k++) {
        if (!ranges[2 * k + 1]) continue;
        pallocData_allocRange(chunk, (unsigned)ranges[2 * k], (unsigned)ranges[2 * k + 1]);
        if ((r = scavIndexAlloc(p, ci, (unsigned)ranges[2 * k + 1]))) return r;
    }
    update(p, ci << logPallocChunkBytes, pallocChunkPages, false, false);
    return PA_OK;
}

/* ---- the state, for the binding and the tests ---------------------------------------------- */

/* searchAddr, start, end, sysStat, index gen, minHeapIdx, searchAddrForce, searchAddrBg,
 * freeHWM, index min, index max, len(inUse). */
API void pa_scalars(const pageAlloc *p, uint64_t *out) {
    const scavengeIndex *s = &p->scav.index;
    uint64_t v[] = {p->searchAddr, p->start, p->end, p->sysStat, s->gen, s->minHeapIdx, s->searchAddrForce,
                    s->searchAddrBg, s->freeHWM, s->min, s->max, p->inUse.len};
    memcpy(out, v, sizeof(v));
}

/* inUse as base, limit offsets (cap ranges at most); returns len(inUse). */
API size_t pa_in_use(const pageAlloc *p, uint64_t *out, size_t cap) {
    for (size_t k = 0; k < p->inUse.len && k < cap; k++) {
        out[2 * k] = p->inUse.ranges[k].base;
        out[2 * k + 1] = p->inUse.ranges[k].limit;
    }
    return p->inUse.len;
}

static bool grownChunk(const pageAlloc *p, uint64_t ci) {
    return ci < 1ULL << (heapAddrBits - logPallocChunkBytes) &&
           grownRange(p, ci << logPallocChunkBytes, ci << logPallocChunkBytes);
}

/* tryChunkOf for a grown chunk: out[0..7] = pallocBits, out[8..15] = scavenged. */
API int pa_chunk(const pageAlloc *p, uint64_t ci, uint64_t *out) {
    if (!grownChunk(p, ci)) return 0;
    const pallocData *c = chunkOf(p, ci);
    memcpy(out, c->pallocBits.b, sizeof(c->pallocBits.b));
    memcpy(out + 8, c->scavenged.b, sizeof(c->scavenged.b));
    return 1;
}

/* The index entry of a grown chunk: inUse, lastInUse, gen, has-free. */
API int pa_scav_chunk(const pageAlloc *p, uint64_t ci, uint64_t *out) {
    if (!grownChunk(p, ci)) return 0;
    const scavChunkData *sc = scavChunkOf(p, ci);
    out[0] = sc->inUse;
    out[1] = sc->lastInUse;
    out[2] = sc->gen;
    out[3] = sc->scavChunkFlags & scavChunkHasFree;
    return 1;
}

/* p.summary[level][idx], 0 where not mapped. */
API uint64_t pa_summary_at(const pageAlloc *p, uint64_t level, uint64_t idx) {
    if (level >= summaryLevels || idx >= levelEntries((int)level)) return 0;
    return sumGet(p, (int)level, idx);
}

/* The mapped physical pages of a summary level (the piece numbers); returns how many. */
API size_t pa_summary_pages(const pageAlloc *p, uint64_t level, uint64_t *out, size_t cap) {
    size_t n = 0;
    if (level >= summaryLevels) return 0;
    for (uint64_t k = 0; k < levelEntries((int)level) >> logSumPieceEntries; k++) {
        if (!p->summary[level][k]) continue;
        if (n < cap) out[n] = k;
        n++;
    }
    return n;
}

/* The non-zero summaries of a level: out[2k] = index, out[2k+1] = the sum (cap pairs at
 * most); returns how many there are. */
API size_t pa_summary_nonzero(const pageAlloc *p, uint64_t level, uint64_t *out, size_t cap) {
    size_t n = 0;
    if (level >= summaryLevels) return 0;
    for (uint64_t k = 0; k < levelEntries((int)level) >> logSumPieceEntries; k++) {
        const pallocSum *piece = p->summary[level][k];
        for (uint64_t j = 0; piece && j < sumPieceEntries; j++) {
            if (!piece[j]) continue;
            if (n < cap) {
                out[2 * n] = (k << logSumPieceEntries) + j;
                out[2 * n + 1] = piece[j];
            }
            n++;
        }
    }
    return n;
}

/* The L1 entries of p.chunks that have an L2 array. */
API size_t pa_chunks_l1(const pageAlloc *p, uint64_t *out, size_t cap) {
    size_t n = 0;
    for (size_t k = 0; k < 1u << pallocChunksL1Bits; k++) {
        if (!p->chunks[k]) continue;
        if (n < cap) out[n] = k;
        n++;
    }
    return n;
}

/* ---- Go's bit-level functions, for the tests ------------------------------------------------- */

API uint64_t pa_summarize(const uint64_t *bits) {
    pallocBits b;
    memcpy(b.b, bits, sizeof(b.b));
    return pallocBits_summarize(&b);
}

/* pallocBits.find: out[0] = index (2^32 - 1: none), out[1] = new searchIdx. */
API void pa_palloc_find(const uint64_t *bits, uint64_t npages, uint64_t searchIdx, uint64_t *out) {
    pallocBits b;
    memcpy(b.b, bits, sizeof(b.b));
    unsigned s, j = pallocBits_find(&b, npages, searchIdx >= pallocChunkPages ? pallocChunkPages - 1 : (unsigned)searchIdx, &s);
    out[0] = j;
    out[1] = s;
}

API uint64_t pa_merge_summaries(const uint64_t *sums, size_t n, uint64_t logMaxPagesPerSum) {
    return mergeSummaries(sums, n, (unsigned)logMaxPagesPerSum);
}

API uint64_t pa_find_bit_range64(uint64_t c, uint64_t n) { return findBitRange64(c, (unsigned)n); }

/* The constants the binding and the model must agree on. */
API void pa_constants(uint64_t *out) {
    uint64_t v[] = {heapAddrBits, arenaBaseOffset, pageShift, logPallocChunkPages, summaryLevels,
                    summaryLevelBits, logMaxPackedValue, pallocChunksL1Bits, physPageSize, physHugePageSize,
                    scavChunkHiOccPages, pageCachePages, inUseInitBytes, sizeof(pallocData)};
    memcpy(out, v, sizeof(v));
}
