/* runtime/mranges.go in C: addrRanges, the sorted, coalesced ranges of grown memory
 * (pageAlloc.inUse). Offsets, not virtual addresses. Running implementation; the
 * reference model is AddrRanges in runtime_model/pagealloc.py. */
#include <stdlib.h>
#include <string.h>

#include "mpagealloc.h"

/* addrRanges.findSucc: index of the first range whose base is above addr. */
size_t addrRanges_findSucc(const addrRanges *a, uint64_t addr) {
    const size_t iterMax = 8;
    size_t bot = 0, top = a->len;
    while (top - bot > iterMax) {
        size_t i = (bot + top) >> 1;
        if (a->ranges[i].base <= addr && addr < a->ranges[i].limit) return i + 1;
        if (addr < a->ranges[i].base)
            top = i;
        else
            bot = i + 1;
    }
    for (size_t i = bot; i < top; i++)
        if (addr < a->ranges[i].base) return i;
    return top;
}

/* addrRanges.findAddrGreaterEqual: the smallest address in a range at or above addr. */
bool addrRanges_findAddrGreaterEqual(const addrRanges *a, uint64_t addr, uint64_t *out) {
    if (a->len == 0) return false;
    size_t i = addrRanges_findSucc(a, addr);
    if (i == 0) {
        *out = a->ranges[0].base;
        return true;
    }
    if (a->ranges[i - 1].base <= addr && addr < a->ranges[i - 1].limit) {
        *out = addr;
        return true;
    }
    if (i < a->len) {
        *out = a->ranges[i].base;
        return true;
    }
    return false;
}

/* addrRanges.contains */
bool addrRanges_contains(const addrRanges *a, uint64_t addr) {
    size_t i = addrRanges_findSucc(a, addr);
    return i > 0 && addr < a->ranges[i - 1].limit;
}

/* addrRanges.add: insert r, coalescing with the ranges it touches. Go doubles the array
 * with persistentalloc past 16 ranges; the model does not count that, so neither does this. */
int addrRanges_add(addrRanges *a, addrRange r) {
    size_t i = addrRanges_findSucc(a, r.base);
    bool down = i > 0 && a->ranges[i - 1].limit == r.base;
    bool up = i < a->len && r.limit == a->ranges[i].base;
    if (down && up) {
        a->ranges[i - 1].limit = a->ranges[i].limit;
        memmove(&a->ranges[i], &a->ranges[i + 1], (a->len - i - 1) * sizeof(addrRange));
        a->len--;
    } else if (down) {
        a->ranges[i - 1].limit = r.limit;
    } else if (up) {
        a->ranges[i].base = r.base;
    } else {
        if (a->len + 1 > a->cap) {
            size_t cap = a->cap ? 2 * a->cap : 16;
            addrRange *nr = realloc(a->ranges, cap * sizeof(addrRange));
            if (!nr) return PA_NOMEM;
            a->ranges = nr;
            a->cap = cap;
        }
        memmove(&a->ranges[i + 1], &a->ranges[i], (a->len - i) * sizeof(addrRange));
        a->ranges[i] = r;
        a->len++;
    }
    return PA_OK;
}
