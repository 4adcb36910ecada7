/* runtime/mpagecache.go in C, the page allocator's side of it: allocToCache and
 * pageCache.flush's work on the allocator. The cache itself (pageCache.alloc) stays in
 * Python, runtime_model/pagecache.py. Running implementation; the reference model is
 * runtime_model/pagealloc.py (mpagealloc.h says why there are two). */
#include "mpagealloc.h"

/* pageAlloc.allocToCache: take the 64-page aligned block holding the first free page.
 * out[0] = its virtual base (0: empty cache, nothing free), out[1] = cache (1 = free, now
 * marked in use here), out[2] = scav (the block's scavenged word). */
API int pa_alloc_to_cache(pageAlloc *p) {
    const int leaf = summaryLevels - 1;
    p->out[0] = p->out[1] = p->out[2] = 0;
    if (p->searchAddr >> logPallocChunkBytes >= p->end) return PA_OK;
    uint64_t ci = p->searchAddr >> logPallocChunkBytes, base;
    pallocData *chunk;
    unsigned j;
    if (sumGet(p, leaf, ci) != 0) {
        /* Fast path: the chunk at searchAddr has a free page at or after it. */
        chunk = chunkOf(p, ci);
        unsigned unused;
        j = pallocBits_find(&chunk->pallocBits, 1, (p->searchAddr >> pageShift) & (pallocChunkPages - 1), &unused);
        if (j == NOT_FOUND) return errorAt(p, PA_BAD_SUMMARY, leaf, ci, 1);
    } else {
        bool found;
        uint64_t addr, unused;
        int r = find(p, 1, &found, &addr, &unused);
        if (r) return r;
        if (!found) {
            p->searchAddr = maxOffAddr;
            return PA_OK;
        }
        ci = addr >> logPallocChunkBytes;
        chunk = chunkOf(p, ci);
        j = (addr >> pageShift) & (pallocChunkPages - 1);
    }
    base = (ci << logPallocChunkBytes) + (uint64_t)(j & ~63u) * pageSize;
    uint64_t cache = ~chunk->pallocBits.b[j / 64]; /* ^pages64(j) */
    uint64_t scav = chunk->scavenged.b[j / 64];
    chunk->pallocBits.b[j / 64] |= cache;           /* allocPages64 */
    chunk->scavenged.b[j / 64] &= ~(cache & scav);  /* clearBlock64: free and scavenged */
    update(p, base, pageCachePages, false, true);
    int r = scavIndexAlloc(p, ci, OnesCount64(cache));
    if (r) return r;
    /* The block's last page, not the page after it, which might be unmapped. */
    p->searchAddr = base + pageSize * (pageCachePages - 1);
    p->out[0] = base + arenaBaseOffset;
    p->out[1] = cache;
    p->out[2] = scav;
    return PA_OK;
}

/* pageCache.flush(p) for a cache (virtual base, cache, scav) that is not empty: free each
 * cached page (free1 and scavengeIndex.free, page by page as Go does), set each scav bit,
 * move searchAddr back as free does and update as a non-contiguous free. */
API int pa_flush_cache(pageAlloc *p, uint64_t base, uint64_t cache, uint64_t scav) {
    if (cache == 0) return PA_OK; /* pageCache.empty */
    uint64_t b = base - arenaBaseOffset;
    if (b > maxOffAddr || !grownRange(p, b, b)) return PA_NOT_GROWN;
    if (b % (pageCachePages * pageSize)) return PA_BAD_RANGE;
    uint64_t ci = b >> logPallocChunkBytes;
    unsigned pi = (b >> pageShift) & (pallocChunkPages - 1);
    pallocData *chunk = chunkOf(p, ci);
    for (unsigned i = 0; i < 64; i++) {
        if (cache & (1ULL << i)) {
            chunk->pallocBits.b[(pi + i) / 64] &= ~(1ULL << ((pi + i) % 64)); /* free1 */
            int r = scavIndexFree(p, ci, pi + i, 1);
            if (r) return r;
        }
        if (scav & (1ULL << i)) chunk->scavenged.b[(pi + i) / 64] |= 1ULL << ((pi + i) % 64);
    }
    if (b < p->searchAddr) p->searchAddr = b;
    update(p, b, pageCachePages, false, false);
    return PA_OK;
}
