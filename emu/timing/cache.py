"""Set-associative caches with LRU replacement, and the data TLBs.

Fed by the recorded data accesses in program order (the model's
simplification: a real core updates its caches in execution order and has
prefetchers, which this model has not). A miss fills every level above the
one that hit (an inclusive fill; Zen 4's L3 is a victim cache and Ice Lake
SP's is non-inclusive, which matters only when L2 evictions matter).
"""


class SetAssoc:
    """One level: `nsets` sets (any count: a sliced L3 such as Sapphire Rapids' 300 MiB, 20-way, has
    245,760), each a dict of tags in LRU order (least recent first), made when first used."""

    def __init__(self, sets, ways):
        self.ways = ways
        self.nsets = sets
        self.sets = {}

    def touch(self, key):
        """True on a hit; on a miss the key is filled (evicting the least recently used)."""
        i = key % self.nsets
        s = self.sets.get(i)
        if s is None:
            s = self.sets[i] = {}
        if key in s:
            del s[key]
            s[key] = None
            return True
        s[key] = None
        if len(s) > self.ways:
            del s[next(iter(s))]
        return False

    def __contains__(self, key):
        s = self.sets.get(key % self.nsets)
        return s is not None and key in s


class Hierarchy:
    """L1D, L2, L3 (from the µarch's CacheLevel list) and two TLB levels."""

    def __init__(self, uarch):
        self.levels = [SetAssoc(c.sets, c.ways) for c in uarch.caches]
        self.latency = [c.latency for c in uarch.caches] + [uarch.memory_latency]
        self.line_shift = uarch.caches[0].line.bit_length() - 1
        self.tlbs = [SetAssoc(t.sets, t.ways) for t in uarch.tlbs]
        self.tlb_penalty = [t.penalty for t in uarch.tlbs] + [uarch.page_walk]
        self.misses = [0] * len(self.levels)      # accesses that missed each level
        self.tlb_misses = [0] * len(self.tlbs)

    def line_level(self, line):
        """Index of the level that holds `line` (len(levels): memory); fills the levels above."""
        for i, level in enumerate(self.levels):
            if level.touch(line):
                return i
            self.misses[i] += 1
        return len(self.levels)

    def tlb(self, page):
        """Extra cycles of translating `page`."""
        for i, t in enumerate(self.tlbs):
            if t.touch(page):
                return self.tlb_penalty[i]
            self.tlb_misses[i] += 1
        return self.tlb_penalty[-1]
