/* runtime/mpallocbits.go in C: a chunk's bitmaps as 8 uint64 words, Go's word loops.
 * Running implementation; the reference model is runtime_model/pallocbits.py (mpagealloc.h
 * says why there are two). */
#include "mpagealloc.h"

/* pageBits.setRange */
void pageBits_setRange(pageBits *b, unsigned i, unsigned n) {
    if (n == 1) {
        b->b[i / 64] |= 1ULL << (i % 64);
        return;
    }
    unsigned j = i + n - 1;
    if (i / 64 == j / 64) {
        b->b[i / 64] |= lowMask(n) << (i % 64);
        return;
    }
    b->b[i / 64] |= ~0ULL << (i % 64);
    for (unsigned k = i / 64 + 1; k < j / 64; k++) b->b[k] = ~0ULL;
    b->b[j / 64] |= lowMask(j % 64 + 1);
}

/* pageBits.clearRange */
void pageBits_clearRange(pageBits *b, unsigned i, unsigned n) {
    if (n == 1) {
        b->b[i / 64] &= ~(1ULL << (i % 64));
        return;
    }
    unsigned j = i + n - 1;
    if (i / 64 == j / 64) {
        b->b[i / 64] &= ~(lowMask(n) << (i % 64));
        return;
    }
    b->b[i / 64] &= ~(~0ULL << (i % 64));
    for (unsigned k = i / 64 + 1; k < j / 64; k++) b->b[k] = 0;
    b->b[j / 64] &= ~lowMask(j % 64 + 1);
}

/* pageBits.popcntRange */
unsigned pageBits_popcntRange(const pageBits *b, unsigned i, unsigned n) {
    if (n == 1) return (b->b[i / 64] >> (i % 64)) & 1;
    unsigned j = i + n - 1;
    if (i / 64 == j / 64) return OnesCount64((b->b[i / 64] >> (i % 64)) & lowMask(n));
    unsigned s = OnesCount64(b->b[i / 64] >> (i % 64));
    for (unsigned k = i / 64 + 1; k < j / 64; k++) s += OnesCount64(b->b[k]);
    return s + OnesCount64(b->b[j / 64] & lowMask(j % 64 + 1));
}

/* pallocBits.summarize: start, max and end of the chunk's free (0) runs. */
pallocSum pallocBits_summarize(const pallocBits *b) {
    const unsigned notSetYet = ~0u;
    unsigned start = notSetYet, most = 0, cur = 0;
    for (int i = 0; i < 8; i++) {
        uint64_t x = b->b[i];
        if (x == 0) {
            cur += 64;
            continue;
        }
        unsigned t = TrailingZeros64(x), l = LeadingZeros64(x);
        cur += t;
        if (start == notSetYet) start = cur;
        if (cur > most) most = cur;
        cur = l;
    }
    if (start == notSetYet) return packPallocSum(pallocChunkPages, pallocChunkPages, pallocChunkPages);
    if (cur > most) most = cur;
    /* A run of 62 or more zeros spans a word boundary and was counted above. */
    if (most >= 64 - 2) return packPallocSum(start, most, cur);
    /* Look for runs inside each word longer than most: shrink every zero run by most,
     * and whatever survives is longer. */
    for (int i = 0; i < 8; i++) {
        uint64_t x = b->b[i];
        x >>= TrailingZeros64(x) & 63;
        if ((x & (x + 1)) == 0) continue; /* no more zeros (except at the top) */
        unsigned p = most, k = 1;         /* zeros still to shrink by; minimum run of ones in x */
        for (;;) {
            bool done = false;
            while (p > 0) {
                if (p <= k) {
                    x |= x >> (p & 63);
                    done = (x & (x + 1)) == 0;
                    break;
                }
                x |= x >> (k & 63);
                if ((x & (x + 1)) == 0) {
                    done = true;
                    break;
                }
                p -= k;
                k *= 2;
            }
            if (done) break; /* Go: continue outer */
            unsigned j = TrailingZeros64(~x); /* trailing ones */
            x >>= j & 63;
            j = TrailingZeros64(x);           /* trailing zeros: a new maximum */
            x >>= j & 63;
            most += j;
            if ((x & (x + 1)) == 0) break;
            p = j;
        }
    }
    return packPallocSum(start, most, cur);
}

/* pallocBits.find1 */
static unsigned find1(const pallocBits *b, unsigned searchIdx) {
    for (unsigned i = searchIdx / 64; i < 8; i++) {
        uint64_t x = b->b[i];
        if (~x == 0) continue;
        return i * 64 + TrailingZeros64(~x);
    }
    return NOT_FOUND;
}

/* pallocBits.findSmallN (npages <= 64) */
static unsigned findSmallN(const pallocBits *b, unsigned npages, unsigned searchIdx, unsigned *newSearchIdx) {
    unsigned end = 0;
    *newSearchIdx = NOT_FOUND;
    for (unsigned i = searchIdx / 64; i < 8; i++) {
        uint64_t bi = b->b[i];
        if (~bi == 0) {
            end = 0;
            continue;
        }
        /* First free page: where searchAddr can move to. */
        if (*newSearchIdx == NOT_FOUND) *newSearchIdx = i * 64 + TrailingZeros64(~bi);
        unsigned start = TrailingZeros64(bi);
        if (end + start >= npages) return i * 64 - end;
        unsigned j = findBitRange64(~bi, npages);
        if (j < 64) return i * 64 + j;
        end = LeadingZeros64(bi);
    }
    return NOT_FOUND;
}

/* pallocBits.findLargeN (npages > 64) */
static unsigned findLargeN(const pallocBits *b, uint64_t npages, unsigned searchIdx, unsigned *newSearchIdx) {
    unsigned start = NOT_FOUND;
    uint64_t size = 0;
    *newSearchIdx = NOT_FOUND;
    for (unsigned i = searchIdx / 64; i < 8; i++) {
        uint64_t x = b->b[i];
        if (x == ~0ULL) {
            size = 0;
            continue;
        }
        if (*newSearchIdx == NOT_FOUND) *newSearchIdx = i * 64 + TrailingZeros64(~x);
        if (size == 0) {
            size = LeadingZeros64(x);
            start = i * 64 + 64 - (unsigned)size;
            continue;
        }
        unsigned s = TrailingZeros64(x);
        if (s + size >= npages) return start;
        if (s < 64) {
            size = LeadingZeros64(x);
            start = i * 64 + 64 - (unsigned)size;
            continue;
        }
        size += 64;
    }
    if (size < npages) return NOT_FOUND;
    return start;
}

/* pallocBits.find: first fit of npages free pages at or after the word holding searchIdx;
 * *newSearchIdx is the first free page found on the way. */
unsigned pallocBits_find(const pallocBits *b, uint64_t npages, unsigned searchIdx, unsigned *newSearchIdx) {
    if (npages == 1) {
        unsigned addr = find1(b, searchIdx);
        *newSearchIdx = addr;
        return addr;
    }
    if (npages <= 64) return findSmallN(b, (unsigned)npages, searchIdx, newSearchIdx);
    return findLargeN(b, npages, searchIdx, newSearchIdx);
}

/* findBitRange64: first run of n set bits in c, or >= 64. Shift counts mod 64, as Go's. */
unsigned findBitRange64(uint64_t c, unsigned n) {
    unsigned p = n - 1, k = 1;
    while (p > 0) {
        if (p <= k) {
            c &= c >> (p & 63);
            break;
        }
        c &= c >> (k & 63);
        if (c == 0) return 64;
        p -= k;
        k *= 2;
    }
    return TrailingZeros64(c);
}

/* pallocData.allocRange: allocating clears the scavenged bits. */
void pallocData_allocRange(pallocData *m, unsigned i, unsigned n) {
    pageBits_setRange(&m->pallocBits, i, n);
    pageBits_clearRange(&m->scavenged, i, n);
}

/* pallocData.allocAll */
void pallocData_allocAll(pallocData *m) {
    for (int i = 0; i < 8; i++) {
        m->pallocBits.b[i] = ~0ULL;
        m->scavenged.b[i] = 0;
    }
}
