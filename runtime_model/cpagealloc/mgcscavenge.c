/* runtime/mgcscavenge.go in C: fillAligned, pallocData.findScavengeCandidate, the
 * scavenge index (scavengeIndex, scavChunkData) and pageAlloc.scavenge / scavengeOne.
 * Running implementation; the reference model is runtime_model/pagealloc.py and
 * pallocbits.py (mpagealloc.h says why there are two). */
#include <stdlib.h>

#include "mpagealloc.h"

/* fillAligned: every m-aligned group of m bits with any bit set becomes all ones. */
static uint64_t fillAligned(uint64_t x, unsigned m) {
    uint64_t c;
    switch (m) {
    case 1:
        return x;
    case 2:
        c = 0x5555555555555555ULL;
        break;
    case 4:
        c = 0x7777777777777777ULL;
        break;
    case 8:
        c = 0x7f7f7f7f7f7f7f7fULL;
        break;
    case 16:
        c = 0x7fff7fff7fff7fffULL;
        break;
    case 32:
        c = 0x7fffffff7fffffffULL;
        break;
    default: /* 64 == maxPagesPerPhysPage; other values are refused by the caller */
        c = 0x7fffffffffffffffULL;
        break;
    }
    x = ~((((x & c) + c) | x) | c);
    return ~((x - (x >> (m - 1))) | x);
}

/* pallocData.findScavengeCandidate: the highest run of free, unscavenged pages at or
 * below the word of searchIdx, at least min pages and min-aligned, cut to max pages from
 * its top, widened down to a huge page boundary if that keeps a huge page whole. */
int pallocData_findScavengeCandidate(const pallocData *m, unsigned searchIdx, uint64_t minimum, uint64_t max,
                                     unsigned *start_, unsigned *size_) {
    if ((minimum & (minimum - 1)) != 0 || minimum == 0 || minimum > maxPagesPerPhysPage) return PA_BAD_MIN;
    if (max > pallocChunkPages) max = pallocChunkPages; /* no run is longer; and alignUp cannot wrap */
    if (max == 0)
        max = minimum;
    else
        max = (max + minimum - 1) & ~(minimum - 1); /* alignUp */
    unsigned mm = (unsigned)minimum;
    if (searchIdx >= pallocChunkPages) searchIdx = pallocChunkPages - 1; /* the model scans the whole chunk then */
    int i = (int)(searchIdx / 64);
    for (; i >= 0; i--) {
        uint64_t x = fillAligned(m->scavenged.b[i] | m->pallocBits.b[i], mm);
        if (x != ~0ULL) break;
    }
    if (i < 0) {
        *start_ = *size_ = 0;
        return PA_OK;
    }
    uint64_t x = fillAligned(m->scavenged.b[i] | m->pallocBits.b[i], mm);
    unsigned z1 = LeadingZeros64(~x);
    unsigned run = 0, end = (unsigned)i * 64 + (64 - z1);
    if (x << z1 != 0) {
        run = LeadingZeros64(x << z1);
    } else {
        run = 64 - z1;
        for (int j = i - 1; j >= 0; j--) {
            uint64_t y = fillAligned(m->scavenged.b[j] | m->pallocBits.b[j], mm);
            run += LeadingZeros64(y);
            if (y != 0) break;
        }
    }
    unsigned size = run < max ? run : (unsigned)max;
    unsigned start = end - size;
    if (physHugePageSize > pageSize && physHugePageSize > physPageSize) {
        const unsigned pagesPerHugePage = physHugePageSize / pageSize;
        unsigned hugePageAbove = (start + pagesPerHugePage - 1) & ~(pagesPerHugePage - 1);
        if (hugePageAbove <= end) {
            unsigned hugePageBelow = start & ~(pagesPerHugePage - 1);
            if (hugePageBelow >= end - run) {
                size += start - hugePageBelow;
                start = hugePageBelow;
            }
        }
    }
    *start_ = start;
    *size_ = size;
    return PA_OK;
}

/* ---- scavChunkData ------------------------------------------------------------------------ */

/* scavChunkData.shouldScavenge */
static bool shouldScavenge(const scavChunkData *sc, uint32_t currGen, bool force) {
    if (!(sc->scavChunkFlags & scavChunkHasFree)) return false;
    if (force) return true;
    if (sc->gen == currGen) return sc->inUse < scavChunkHiOccPages && sc->lastInUse < scavChunkHiOccPages;
    return sc->inUse < scavChunkHiOccPages;
}

/* scavengeIndex.alloc (scavChunkData.alloc) */
int scavIndexAlloc(pageAlloc *p, uint64_t ci, unsigned npages) {
    scavChunkData *sc = scavChunkOf(p, ci);
    if ((unsigned)sc->inUse + npages > pallocChunkPages) return errorAt(p, PA_TOO_MANY, ci, sc->inUse, npages);
    if (sc->gen != p->scav.index.gen) {
        sc->lastInUse = sc->inUse;
        sc->gen = p->scav.index.gen;
    }
    sc->inUse += npages;
    if (sc->inUse == pallocChunkPages) sc->scavChunkFlags &= ~scavChunkHasFree; /* nothing to take here */
    return PA_OK;
}

/* scavengeIndex.free (scavChunkData.free); raises the forced search address to the freed range. */
int scavIndexFree(pageAlloc *p, uint64_t ci, unsigned page, unsigned npages) {
    scavengeIndex *s = &p->scav.index;
    scavChunkData *sc = scavChunkOf(p, ci);
    if (sc->inUse < npages) return errorAt(p, PA_BELOW_ZERO, ci, sc->inUse, npages);
    if (sc->gen != s->gen) {
        sc->lastInUse = sc->inUse;
        sc->gen = s->gen;
    }
    sc->inUse -= npages;
    sc->scavChunkFlags |= scavChunkHasFree;
    uint64_t addr = (ci << logPallocChunkBytes) + (uint64_t)(page + npages - 1) * pageSize;
    if (s->freeHWM < addr) s->freeHWM = addr;
    if (s->searchAddrForce < addr) s->searchAddrForce = addr;
    return PA_OK;
}

/* ---- scavengeIndex ------------------------------------------------------------------------ */

/* scavengeIndex.grow and sysGrow for chunks [c0, c1): the index's mapped range [min, max),
 * 512 chunks (one physical page of entries) at a time, counted as the model counts it. */
int scavIndexGrow(pageAlloc *p, uint64_t c0, uint64_t c1) {
    scavengeIndex *s = &p->scav.index;
    const uint64_t perPage = physPageSize / 8; /* unsafe.Sizeof(atomicScavChunkData{}) */
    uint64_t haveMin = s->min, haveMax = s->max;
    uint64_t needMin = c0 / perPage * perPage, needMax = (c1 + perPage - 1) / perPage * perPage;
    bool none = haveMin == 0 && haveMax == 0;
    if (!none) {
        if (haveMax < needMin) needMin = haveMax;
        if (haveMin > needMax) needMax = haveMin;
    }
    uint64_t lo = needMin > haveMin ? needMin : haveMin, hi = needMax < haveMax ? needMax : haveMax;
    uint64_t mapped = needMax - needMin - (hi > lo ? hi - lo : 0);
    if (mapped) {
        p->sysStat += mapped * 8;
        s->min = none || needMin < haveMin ? needMin : haveMin;
        s->max = needMax > haveMax ? needMax : haveMax;
    }
    if (s->minHeapIdx == 0 || c0 < s->minHeapIdx) s->minHeapIdx = c0;
    for (uint64_t c = c0; c < c1; c = ((c >> pallocChunksL2Bits) + 1) << pallocChunksL2Bits) {
        scavChunkData **l2 = &s->chunks[c >> pallocChunksL2Bits];
        if (!*l2 && !(*l2 = calloc(1u << pallocChunksL2Bits, sizeof(scavChunkData)))) return PA_NOMEM;
    }
    return PA_OK;
}

/* scavengeIndex.find: the highest chunk at or below the cursor worth scavenging, and the
 * page to search down from; false (Go: chunk 0) if none, which clears the cursor. */
static bool scavIndexFind(pageAlloc *p, bool force, uint64_t *ci, unsigned *pageIdx) {
    scavengeIndex *s = &p->scav.index;
    uint64_t *cursor = force ? &s->searchAddrForce : &s->searchAddrBg;
    uint64_t searchAddr = *cursor;
    if (searchAddr == minOffAddr) return false;
    uint64_t start = searchAddr >> logPallocChunkBytes;
    /* Go walks every entry from start down to minHeapIdx. Entries of chunks never grown
     * are zero, which never scavenges, so walking the grown chunks (inUse) is the same. */
    const addrRanges *in = &p->inUse;
    for (size_t k = addrRanges_findSucc(in, start << logPallocChunkBytes); k-- > 0;) {
        uint64_t lo = in->ranges[k].base >> logPallocChunkBytes, hi = (in->ranges[k].limit >> logPallocChunkBytes) - 1;
        if (hi > start) hi = start;
        for (uint64_t i = hi + 1; i-- > lo;) {
            if (i < s->minHeapIdx) break;
            if (!shouldScavenge(scavChunkOf(p, i), s->gen, force)) continue;
            if (i == start) {
                *ci = i;
                *pageIdx = (searchAddr >> pageShift) & (pallocChunkPages - 1);
                return true;
            }
            *cursor = (i << logPallocChunkBytes) + pallocChunkBytes - pageSize;
            *ci = i;
            *pageIdx = pallocChunkPages - 1;
            return true;
        }
    }
    *cursor = minOffAddr;
    return false;
}

/* scavengeIndex.nextGen */
API void pa_next_gen(pageAlloc *p) {
    scavengeIndex *s = &p->scav.index;
    s->gen++;
    if (s->searchAddrBg < s->freeHWM) s->searchAddrBg = s->freeHWM;
    s->freeHWM = minOffAddr;
}

/* ---- pageAlloc.scavenge -------------------------------------------------------------------- */

/* pageAlloc.scavengeOne without its alloc/free round trip around sysUnused (it leaves the
 * bitmaps and summaries as they were); its searchAddr move-back is kept. */
static uint64_t scavengeOne(pageAlloc *p, uint64_t ci, unsigned searchIdx, uint64_t max, uint64_t *addrOut) {
    uint64_t maxPages = max / pageSize + (max % pageSize != 0);
    uint64_t minPages = physPageSize / pageSize;
    if (minPages < 1) minPages = 1;
    if (sumMax(sumGet(p, summaryLevels - 1, ci)) >= minPages) {
        pallocData *chunk = chunkOf(p, ci);
        unsigned base, npages;
        pallocData_findScavengeCandidate(chunk, searchIdx, minPages, maxPages, &base, &npages);
        if (npages != 0) {
            uint64_t addr = (ci << logPallocChunkBytes) + (uint64_t)base * pageSize;
            if (addr < p->searchAddr) p->searchAddr = addr;
            pageBits_setRange(&chunk->scavenged, base, npages);
            *addrOut = addr;
            return (uint64_t)npages * pageSize;
        }
    }
    scavChunkOf(p, ci)->scavChunkFlags &= ~scavChunkHasFree; /* scavengeIndex.setEmpty */
    return 0;
}

/* pageAlloc.scavenge(nbytes, nil, force): release free, unscavenged pages, highest first.
 * Each released run goes to ranges[] as (virtual address, bytes), for the caller's
 * sysUnused; with cap runs recorded the loop stops early and out[1] = 1 (call again
 * for the rest). out[0] = bytes released; returns the number of runs recorded. */
API size_t pa_scavenge(pageAlloc *p, uint64_t nbytes, int force, uint64_t *ranges, size_t cap) {
    uint64_t released = 0;
    size_t n = 0;
    p->out[1] = 0;
    while (released < nbytes) {
        if (n == cap) {
            p->out[1] = 1;
            break;
        }
        uint64_t ci, addr;
        unsigned pageIdx;
        if (!scavIndexFind(p, force, &ci, &pageIdx)) break;
        uint64_t r = scavengeOne(p, ci, pageIdx, nbytes - released, &addr);
        if (r) {
            ranges[2 * n] = addr + arenaBaseOffset;
            ranges[2 * n + 1] = r;
            n++;
        }
        released += r;
    }
    p->out[0] = released;
    return n;
}

/* pallocData.findScavengeCandidate on a chunk given as bitmaps (Go's vectors for it). */
API int pa_find_scavenge_candidate(const uint64_t *bits, const uint64_t *scav, uint64_t searchIdx, uint64_t minimum,
                                   uint64_t max, uint64_t *out) {
    pallocData m;
    for (int i = 0; i < 8; i++) {
        m.pallocBits.b[i] = bits[i];
        m.scavenged.b[i] = scav[i];
    }
    unsigned start, size;
    int r = pallocData_findScavengeCandidate(&m, searchIdx >= pallocChunkPages ? pallocChunkPages - 1 : (unsigned)searchIdx,
                                             minimum, max, &start, &size);
    out[0] = start;
    out[1] = size;
    return r;
}
