"""runtime/mgcmark.go: shading and greying, the part of marking the write barrier drives.

During the mark phase an object is white (mark bit clear), grey (marked and
queued to be scanned) or black (marked and scanned). The write barrier's job
is to shade pointers the mutator moves around, so that a pointer hidden in an
already-black object cannot leave its target white. `GcWork.shade` is that
operation: it sets the object's mark bit in its span, exactly where Go 1.27
keeps it (the span's inline mark bits for small objects under GreenTeaGC,
gcmarkBits otherwise; `runtime_model/mspan.py`), marks the span's page in
heapArena.pageMarks, and queues objects with pointers on a grey list.

`Marker` is a deliberately tiny mark phase for tests and demonstrations.
Simplified, compared with Go's gcDrain:
  - roots are given by the caller (no stacks, globals or finalizers);
  - an object is scanned through a pointer map the caller keeps
    ({object: [word index, ...]}), not through heap bitmaps or type headers;
  - the grey list is one Python list (Go: per-P gcWork buffers, and for small
    objects GreenTeaGC's span queue, which scans whole spans at a time);
  - no assists, no background workers, no mark termination races: the
    caller interleaves mutator steps and scan steps explicitly;
  - a pointer into a free slot of an in-use span is not an object (Go's
    findObject does not ask): the live sets the model is given need not be
    closed under pointers, so the barrier can meet pointers to objects already
    freed, and marking their slots would hand the sweep a zombie.
"""

from collections import deque

import numpy as np

from emu.errors import BadInput
from emu.layout import HEAP_ARENA_BYTES, PAGE_SIZE, HeapArena, Type

from emu.layout import MSpan as _S
from runtime_model import sizeclasses as sc
from runtime_model.heapview import (ARENA_INDEX_BIAS, HEAP_BITS_BYTES, INLINE_BITS, INLINE_SCANS, PAGES_PER_ARENA,
                                    HeapView, inline_mark_bits)
from runtime_model.mspan import INLINE_MARKS, MSPAN_IN_USE
from runtime_model.sizeclasses import PAGE_SHIFT

S_FREEINDEX, S_ALLOCBITS, S_STARTADDR, S_LIMIT = _S.freeindex, _S.allocBits, _S.startAddr, _S.limit
S_STATE, S_ELEMSIZE, S_DIVMUL, S_SPANCLASS = _S.state, _S.elemsize, _S.divMul, _S.spanclass
S_GCMARKBITS, S_LARGETYPE = _S.gcmarkBits, _S.largeType

MIN_LEGAL_POINTER = 4096        # malloc.go: minLegalPointer, below it nothing is a heap pointer
MASK64 = (1 << 64) - 1
# HeapMarker's batches at or below these sizes take the pure-Python paths (_scan_few,
# _shade_few): numpy's fixed cost per call (tens of microseconds a batch) is more than
# Python's per object there (the small workload's grey batches of 9-16 objects: ~110 us
# in Python, ~260 us through numpy; from about 24 on the two are even)
FEW_SCAN, FEW_SHADE = 16, 32
U1, U3, U7, U16, U32, U64 = (np.uint64(k) for k in (1, 3, 7, 16, 32, 64))
U_ALL, U_PAGE_SHIFT = np.uint64(MASK64), np.uint64(PAGE_SHIFT)
U_NO_HEADER_MAX = np.uint64(sc.MIN_SIZE_FOR_MALLOC_HEADER)
FIELD_SHIFT = {8: 3, 4: 2, 2: 1}
KEY_SORT = 4096                 # _shade_heap: batches of new objects this big sort by packed keys
SPLIT_ROWS, SHORT_ROW = 256, 16  # _heap_bits_words: batches this big read short objects' words apart
U_SHORT_ROW = np.uint64(SHORT_ROW)
HEADER_IN_PAGE = PAGE_SIZE - INLINE_BITS    # a small span's inline mark bits in its first page


class GcWork:
    """The GC's mark state as shading sees it: p.gcw's grey queue and bytesMarked;
    the mark bits themselves live in the spans, in emulated memory."""

    def __init__(self, mheap):
        self.mheap = mheap
        self.mem = mheap.mem
        self.grey = []              # objects marked but not yet scanned (p.gcw)
        self.bytes_marked = 0       # gcw.bytesMarked: noscan objects go straight to black
        self.shaded = []            # every pointer shade() was asked about, in order (for traces)

    def find_object(self, p):
        """mbitmap.go: findObject: (object base, span, index) of the heap object containing p,
        or None when p is not inside an allocated object of an in-use span."""
        s = self.mheap.span_of(p)
        if s is None or s.state != MSPAN_IN_USE or not s.base() <= p < s.limit:
            return None
        idx = s.obj_index(p)
        if idx >= s.freeindex and not s.is_allocated(idx):
            return None                 # a free slot (see the module doc)
        return s.base() + idx * s.elemsize, s, idx

    def greyobject(self, obj, span, idx):
        """mgcmark.go: greyobject: mark obj; queue it unless its span holds no pointers."""
        if span.is_marked(idx):
            return
        span.set_bit(span.mark_bit(idx))
        self.mheap.set_page_marked(span.base())
        if span.noscan():
            self.bytes_marked += span.elemsize      # fast-tracked to black
            return
        self.grey.append(obj)

    def shade(self, p):
        """mgcmark.go: shade (and wbBufFlush1's loop body): grey the object p points into.
        GreenTeaGC's tryDeferToSpanScan sets the same inline mark bit and queues the
        span instead of the object; here the object is queued (see module doc)."""
        self.shaded.append(p)
        if p < MIN_LEGAL_POINTER:
            return
        found = self.find_object(p)
        if found is not None:
            self.greyobject(*found)

    def is_marked(self, p):
        found = self.find_object(p)
        if found is None:
            raise BadInput(f"p = {p:#x} is not inside an allocated heap object")
        _, s, idx = found
        return s.is_marked(idx)


class Marker:
    """A small mark phase over objects whose pointer words the caller lists (see module doc)."""

    def __init__(self, gcw, pointer_words):
        self.gcw = gcw
        self.pointer_words = pointer_words      # {object address: [word index, ...]}
        self.scanned = []                       # objects blackened, in order

    def mark_roots(self, roots):
        """markroot: shade what the roots point to."""
        for r in roots:
            self.gcw.shade(r)

    def scan(self, obj):
        """scanobject: blacken one grey object by shading every pointer it holds now."""
        self.gcw.grey.remove(obj)
        for w in self.pointer_words.get(obj, ()):
            self.gcw.shade(self.gcw.mem.u64(obj + 8 * w))
        self.scanned.append(obj)

    def drain(self):
        """gcDrain: scan until no grey object is left."""
        while self.gcw.grey:
            self.scan(self.gcw.grey[0])


# ---- the mark phase over the whole heap (vectorised) ----------------------------------------

class GreyQueue:
    """The grey objects in arrival order (p.gcw's buffers): arrays appended and taken from
    the front without copying the rest (one array of the whole queue would be copied at
    every push and every take)."""

    def __init__(self):
        self._parts = deque()
        self._head = 0              # objects of _parts[0] already taken
        self._len = 0

    def __len__(self):
        return self._len

    def push(self, objs):
        if len(objs):
            self._parts.append(objs)
            self._len += len(objs)

    def take(self, n):
        """The first n objects (all when fewer are queued), removed from the queue."""
        out = []
        while n > 0 and self._parts:
            a = self._parts[0]
            k = min(n, len(a) - self._head)
            out.append(a[self._head:self._head + k])
            self._head += k
            n -= k
            if self._head == len(a):
                self._parts.popleft()
                self._head = 0
        taken = out[0] if len(out) == 1 else np.concatenate(out) if out else np.zeros(0, dtype=np.uint64)
        self._len -= len(taken)
        return taken


class HeapMarker:
    """mgcmark.go's greyobject/scanobject and gcDrain over the emulated heap, on whole
    arrays of pointers at a time (runtime_model/heapview.py): `shade` resolves pointers to
    objects (spanOf, objIndex), sets their mark bits where Go 1.27 keeps them (a small
    span's inline mark bits, gcmarkBits otherwise) and queues the ones with pointers;
    `drain` scans queued objects through the heap bits in their span, their malloc header's
    type, or the large span's type, and shades what they point to.

    Simplified against Go 1.27: objects are scanned one by one in arrival order, not
    Green Tea's span-at-a-time scans (the mark bits, scanned bits and totals are the
    same); large objects are scanned whole, not in 128 KiB oblets; a pointer into a free
    slot is not an object (Go's findObject does not ask; a correct program has none).

    How it stays fast (each batch costs a fixed ~100 numpy calls, so big arrays, few
    passes): every index is int64 (numpy converts uint64 indexes first); spanOf and
    pageMarks go through per-page tables over the mapped arenas (_refresh_arenas); an
    object's heap bits are read as one 64-bit word and its words as one row of a
    sliding window over the heap; selections use .compress, not boolean indexing. Batches
    of a few objects or values take pure-Python twins (_scan_few, _shade_few) reading the
    same memory through memoryviews; tests/test_mark_paths.py holds the two to each other.
    What it keeps between calls (the tables, the type descriptors' pointer words) is
    derived from state that does not change while a cycle marks; everything else is
    read from emulated memory each time."""

    def __init__(self, runtime):
        self.rt = runtime
        self.mem = runtime.mem
        self.view = HeapView(runtime.mheap)
        self.grey = GreyQueue()
        self.bytes_marked = 0        # gcw.bytesMarked: every object marked by the collector
        self.scan_work = 0           # gcw.heapScanWork: bytes of heap objects scanned
        self.objects_marked = 0
        self.large_marked = 0        # of them, objects of large spans (one object a span)
        self._type_words = {}        # (type descriptor, bytes) -> pointer word indexes
        self._windows = {}           # words per row -> sliding windows over heap64 (_scan)
        self._field_views = {}       # an mspan field's offset -> the off-heap view from it (_f)
        self._l2_word = (runtime.mheap.arenas_l2 - self.view.off_base) >> 3
        # values worth resolving: [_lo, _lo + _heap_span), the mapped arenas' range
        self._n_arenas, self._lo, self._heap_span = -1, np.uint64(1), np.uint64(0)
        v = self.view
        self._heap_base_u, self._off_base_u = np.uint64(v.heap_base), np.uint64(v.off_base)
        self._heap_bits = len(v.heap8).bit_length()     # bits of an offset into the heap region
        # the same memory as Python ints, for the few-object paths
        self._m8, self._mh8 = memoryview(v.off8), memoryview(v.heap8)
        self._m16, self._m32, self._m64 = (memoryview(v.off8).cast(c) for c in "HIQ")
        self._mh64 = memoryview(v.heap8).cast("Q")
        self._refresh_arenas()

    # ---- spanOf and the span fields, with int64 indexes (numpy converts uint64 ones first) ----
    def _refresh_arenas(self):
        """Per-page tables over the mapped arenas (mheap_.arenas, heapArena.spans and
        pageMarks): each page's entry of its arena's spans array, and its pageMarks byte, as
        indexes into the off-heap views; where no arena is mapped the spans entry is that
        arena's nil mheap_.arenas slot. Rebuilt when an arena is added (they are never
        removed); the spans entries themselves are read from emulated memory each time."""
        arenas = self.rt.mheap.heap_arenas
        if len(arenas) == self._n_arenas:
            return
        v = self.view
        self._n_arenas = len(arenas)
        lo_ai, hi_ai = min(arenas), max(arenas)
        self._arena_lo = (lo_ai * HEAP_ARENA_BYTES - ARENA_INDEX_BIAS) % (1 << 64)
        arena_hi = self._arena_lo + (hi_ai - lo_ai + 1) * HEAP_ARENA_BYTES
        lo, hi = max(MIN_LEGAL_POINTER, v.heap_base, self._arena_lo), min(v.heap_end, arena_hi)
        self._lo, self._heap_span = np.uint64(lo), np.uint64(max(0, hi - lo))
        l2 = self._l2_word + np.arange(lo_ai, hi_ai + 1, dtype=np.int64)
        ha = v.off64[l2].view(np.int64) - v.off_base
        page = np.arange(PAGES_PER_ARENA, dtype=np.int64)[None, :]
        mapped = (ha != -v.off_base)[:, None]
        self._span_word = np.where(mapped, (ha[:, None] + HeapArena.spans) // 8 + page, l2[:, None]).ravel()
        self._page_mark = np.where(mapped, ha[:, None] + HeapArena.pageMarks + page // 8, 0).ravel()
        self._span_word_l, self._page_mark_l = (memoryview(t.view(np.uint8)).cast("q")
                                                for t in (self._span_word, self._page_mark))
        self._lo_i, self._span_i = int(self._lo), int(self._heap_span)
        self._arena_lo_u = np.uint64(self._arena_lo)

    def _pages(self, p):
        """Page index of each address in the tables of _refresh_arenas."""
        return ((p - self._arena_lo_u) >> U_PAGE_SHIFT).view(np.int64)

    def _spans_of(self, p):
        """mheap.go: spanOf for addresses in the mapped arenas' range: (the addresses that
        have a span, their spans as offsets into the off-heap views)."""
        spans = self.view.off64[self._span_word[self._pages(p)]]
        if np.count_nonzero(spans) < len(spans):
            p, spans = p[spans != 0], spans[spans != 0]
        return p, (spans - self._off_base_u).view(np.int64)

    def _f(self, spans, off, width):
        """A field of the mspans at these offsets (_spans_of): an mspan is 8-byte aligned and
        its fields aligned to their width, so a field of every span is one gather from a view
        that starts at the field's offset."""
        at = self._field_views.get(off)
        if at is None:
            v = self.view
            at = self._field_views[off] = {8: v.off64[off // 8:], 4: v.off32[off // 4:], 2: v.off16[off // 2:],
                                           1: v.off8[off:]}[width]
        return at[spans >> FIELD_SHIFT[width]] if width > 1 else at[spans]

    # ---- greyobject --------------------------------------------------------------------
    def shade(self, ptrs):
        """Mark the objects these values point into; returns how many were newly marked."""
        self._refresh_arenas()
        if len(ptrs) <= FEW_SHADE:
            lo, span = self._lo_i, self._span_i
            return self._shade_few([v for v in map(int, ptrs) if (v - lo) & MASK64 < span])
        p = np.asarray(ptrs, dtype=np.uint64)
        # outside the heap arenas (nil, below minLegalPointer, globals...) nothing is an object
        return self._shade_heap(p.compress((p - self._lo) < self._heap_span))

    def _shade_few(self, ptrs):
        """_shade_heap for a few values (Python ints in the mapped arenas' range), one at a
        time in Python; the same effects."""
        m8, m16, m32, m64, mh8 = self._m8, self._m16, self._m32, self._m64, self._mh8
        span_word, off_base, heap_base = self._span_word_l, self.view.off_base, self.view.heap_base
        arena_lo = self._arena_lo
        new = {}                        # object -> (span, base, elemsize, index, mark byte)
        for p in ptrs:
            sp = m64[span_word[(p - arena_lo) >> PAGE_SHIFT]]
            if not sp:
                continue
            sp -= off_base
            base = m64[(sp + S_STARTADDR) >> 3]
            if m8[sp + S_STATE] != MSPAN_IN_USE or (p - base) & MASK64 >= (m64[(sp + S_LIMIT) >> 3] - base) & MASK64:
                continue
            elemsize = m64[(sp + S_ELEMSIZE) >> 3]
            idx = (((p - base) * m32[(sp + S_DIVMUL) >> 2]) & MASK64) >> 32
            if 16 <= elemsize <= sc.MIN_SIZE_FOR_MALLOC_HEADER:       # inline mark bits
                mb, mv = base - heap_base + HEADER_IN_PAGE + INLINE_MARKS + (idx >> 3), mh8
            else:
                mb, mv = m64[(sp + S_GCMARKBITS) >> 3] - off_base + (idx >> 3), m8
            if mv[mb] >> (idx & 7) & 1:
                continue
            obj = (base + idx * elemsize) & MASK64
            if obj in new:
                continue
            # a free slot is not an object: at or past freeindex, its alloc bit is clear
            if idx >= m16[(sp + S_FREEINDEX) >> 1] and \
                    not m8[m64[(sp + S_ALLOCBITS) >> 3] - off_base + (idx >> 3)] >> (idx & 7) & 1:
                continue
            new[obj] = (sp, base, elemsize, idx, mb, mv)
        if not new:
            return 0
        page_mark, grey = self._page_mark_l, []
        for obj in sorted(new):
            sp, base, elemsize, idx, mb, mv = new[obj]
            mv[mb] |= 1 << (idx & 7)
            q = (base - arena_lo) >> PAGE_SHIFT
            m8[page_mark[q]] |= 1 << (q & 7)
            spc = m8[sp + S_SPANCLASS]
            self.bytes_marked += elemsize
            self.large_marked += spc < 2
            if not spc & 1:
                grey.append(obj)
        self.objects_marked += len(new)
        self.grey.push(np.array(grey, dtype=np.uint64))
        return len(new)

    def _shade_heap(self, p):
        """shade for values in the mapped arenas' range."""
        v, f = self.view, self._f
        if not len(p):
            return 0
        p, spans = self._spans_of(p)
        base, limit = f(spans, S_STARTADDR, 8), f(spans, S_LIMIT, 8)
        ok = (f(spans, S_STATE, 1) == MSPAN_IN_USE) & ((p - base) < (limit - base))
        if not ok.all():
            p, spans, base = p[ok], spans[ok], base[ok]
            if not len(p):
                return 0
        elemsize = f(spans, S_ELEMSIZE, 8)
        idx = ((p - base) * f(spans, S_DIVMUL, 4).astype(np.uint64)) >> U32
        # objects whose mark bit is clear; most values point to objects already marked, so
        # the rest of the work is on fewer
        mask, groups = self._mark_bytes(spans, base, elemsize, idx)
        if len(groups) == 1:
            cur = groups[0][0][groups[0][2]]
        else:
            (h8, inline, h_at), (o8, _, o_at) = groups
            cur = np.where(inline, h8[h_at], o8[o_at])
        clear = ((cur & mask) == 0).nonzero()[0]
        if not len(clear):
            return 0
        # one of each object, in address order (np.unique's order; it costs more)
        obj = base[clear] + idx[clear] * elemsize[clear]
        k = (len(obj) - 1).bit_length()
        if len(obj) >= KEY_SORT and self._heap_bits + k <= 64:
            # a big batch: sorting (heap offset, position) keys by value is about twice as
            # fast as argsort; equal objects are one object, whichever position is kept
            key = ((obj - self._heap_base_u) << np.uint64(k)) | np.arange(len(obj), dtype=np.uint64)
            key.sort()
            c = clear[(key & np.uint64((1 << k) - 1)).view(np.int64)]
            obj = (key >> np.uint64(k)) + self._heap_base_u
        else:
            order = obj.argsort()
            obj = obj[order]
            c = clear[order]
        if len(obj) > 1:
            first = (obj[1:] != obj[:-1]).nonzero()[0] + 1
            if len(first) < len(obj) - 1:
                first = np.concatenate(([0], first))
                obj, c = obj[first], c[first]
        spans, idx = spans[c], idx[c]
        # a free slot is not an object: at or past freeindex, its alloc bit is clear
        late = (idx >= f(spans, S_FREEINDEX, 2)).nonzero()[0]
        if len(late):
            il = idx[late]
            ab = (f(spans[late], S_ALLOCBITS, 8) - self._off_base_u).view(np.int64) + (il >> U3).view(np.int64)
            free = late[((v.off8[ab] >> (il & U7).astype(np.uint8)) & 1) == 0]
            if len(free):
                good = np.ones(len(obj), dtype=bool)
                good[free] = False
                obj, spans, c = obj[good], spans[good], c[good]
                if not len(obj):
                    return 0
        for arr, sel, at in groups:
            cc = c if sel is None else c[sel[c]]
            np.bitwise_or.at(arr, at[cc], mask[cc])
        base, elemsize = base[c], elemsize[c]
        self._mark_pages(base)
        spc = f(spans, S_SPANCLASS, 1)
        self.bytes_marked += int(elemsize.sum())
        self.objects_marked += len(obj)
        self.large_marked += int(np.count_nonzero(spc < 2))
        self.grey.push(obj[(spc & 1) == 0])
        return len(obj)

    def _mark_bytes(self, spans, base, elemsize, idx):
        """The objects' mark bits: (bit masks, [(view, which objects or None for all, index of
        each object's byte in the view)]): a small span's inline mark bits (GreenTeaGC) in
        heap8, gcmarkBits in off8 otherwise (mspan.py: mark_bit). With both views,
        each index array is full length, valid where unused."""
        v = self.view
        mask = np.uint8(1) << (idx & U7).astype(np.uint8)
        byte = (idx >> U3).view(np.int64)
        inline = inline_mark_bits(elemsize)
        n_inline = np.count_nonzero(inline)
        groups = []
        if n_inline:
            at = (base - self._heap_base_u).view(np.int64) + (PAGE_SIZE - INLINE_BITS + INLINE_MARKS) + byte
            groups.append((v.heap8, None, at))
        if n_inline < len(idx):
            at = (self._f(spans, S_GCMARKBITS, 8) - self._off_base_u).view(np.int64) + byte
            groups.append((v.off8, None, at))
        if len(groups) == 2:
            (h8, _, h_at), (o8, _, o_at) = groups
            groups = [(h8, inline, np.where(inline, h_at, 0)), (o8, ~inline, np.where(inline, 0, o_at))]
        return mask, groups

    def _mark_pages(self, span_bases):
        """heapArena.pageMarks: the first page of every span with a marked object."""
        q = self._pages(span_bases)
        np.bitwise_or.at(self.view.off8, self._page_mark[q], np.uint8(1) << (q & 7).astype(np.uint8))

    # ---- scanobject ---------------------------------------------------------------------
    def drain(self, budget=None):
        """gcDrain: scan grey objects (all, or about `budget` bytes of scan work) and shade
        what they hold. Returns the bytes of scan work done."""
        done = 0
        while len(self.grey) and (budget is None or done < budget):
            take = len(self.grey) if budget is None else max(1, min(len(self.grey), (budget - done) // 64 + 1))
            objs = self.grey.take(take)
            work, values = self._scan_few(objs.tolist()) if len(objs) <= FEW_SCAN else self._scan(objs)
            done += work
            self.scan_work += work
            if len(values) <= FEW_SHADE:
                self._shade_few(values if isinstance(values, list) else values.tolist())
            else:
                self._shade_heap(np.asarray(values, dtype=np.uint64))
        return done

    def _scan_few(self, objs):
        """_scan for a few objects (Python ints), one at a time in Python, when they all
        keep heap bits (the others go to _scan); the same results and scanned bits."""
        m8, m32, m64, mh8, mh64 = self._m8, self._m32, self._m64, self._mh8, self._mh64
        span_word, off_base, heap_base = self._span_word_l, self.view.off_base, self.view.heap_base
        arena_lo, lo, span = self._arena_lo, self._lo_i, self._span_i
        found = []
        for o in objs:
            sp = m64[span_word[(o - arena_lo) >> PAGE_SHIFT]] - off_base
            elemsize = m64[(sp + S_ELEMSIZE) >> 3]
            if m8[sp + S_SPANCLASS] < 2 or elemsize > sc.MIN_SIZE_FOR_MALLOC_HEADER:
                return self._scan(np.asarray(objs, dtype=np.uint64))    # a typed object
            found.append((o, sp, elemsize))
        work, out = 0, []
        for o, sp, elemsize in found:
            base = m64[(sp + S_STARTADDR) >> 3]
            # _heap_bits_words for one object
            bm = ((base - heap_base) >> 3) + (PAGE_SIZE - HEAP_BITS_BYTES) // 8 \
                - (INLINE_BITS // 8 if elemsize >= 16 else 0)
            w0, nw = (o - base) >> 3, elemsize >> 3
            q, r = bm + (w0 >> 6), w0 & 63
            bits = mh64[q] >> r
            if r + nw > 64:
                bits |= (mh64[q + 1] << (64 - r)) & MASK64
            bits &= (1 << nw) - 1
            work += 8 * bits.bit_length()
            first = (o - heap_base) >> 3
            while bits:
                low = bits & -bits
                v = mh64[first + low.bit_length() - 1]
                if (v - lo) & MASK64 < span:
                    out.append(v)
                bits ^= low
            if 16 <= elemsize:                  # _set_scanned: inline mark bits
                idx = (((o - base) * m32[(sp + S_DIVMUL) >> 2]) & MASK64) >> 32
                mh8[base - heap_base + HEADER_IN_PAGE + INLINE_SCANS + (idx >> 3)] |= 1 << (idx & 7)
        return work, out

    def _scan(self, objs):
        """(scan work, pointer values) of a batch of grey objects; only values in the mapped
        arenas' range are kept (nothing else can be an object: shade drops the rest too)."""
        work, parts, (base, elemsize, divmul) = self._pointer_words(objs)
        self._set_scanned(objs, base, elemsize, divmul)
        heap64, out = self.view.heap64, []
        for first, width, isptr in parts:
            if isptr is None:
                vals = heap64[first]
            elif int(first.max(initial=0)) + width <= len(heap64):
                vals = self._window(width)[first]        # one row of `width` words an object
            else:                                        # the heap's last words: not pointer words
                vals = heap64[np.minimum(first[:, None] + np.arange(width), len(heap64) - 1)]
            # in the range, in one compare on the values shifted in place (vals is a copy),
            # shifted back once selected
            vals -= self._lo
            keep = vals < self._heap_span
            if isptr is not None:
                keep &= isptr
            # (.compress: boolean indexing is several times slower on arrays this size)
            out.append(vals.ravel().compress(keep.ravel()) + self._lo)
        return work, out[0] if len(out) == 1 else np.concatenate(out) if out else np.zeros(0, dtype=np.uint64)

    def _window(self, width):
        """heap64 as overlapping rows of `width` words, row i starting at word i (a view)."""
        w = self._windows.get(width)
        if w is None:
            w = self._windows[width] = np.lib.stride_tricks.sliding_window_view(self.view.heap64, width)
        return w

    def pointer_slots(self, objs):
        """scanobject's reading, without its effects: (scan work, the addresses of the
        objects' pointer words, (span base, elemsize, divMul) per object)."""
        work, parts, fields = self._pointer_words(objs)
        words = [first if isptr is None else (first[:, None] + np.arange(width))[isptr]
                 for first, width, isptr in parts]
        slots = [w.astype(np.uint64) * np.uint64(8) + self._heap_base_u for w in words]
        return work, np.concatenate(slots) if slots else np.zeros(0, dtype=np.uint64), fields

    def _pointer_words(self, objs):
        """(scan work, parts, (span base, elemsize, divMul) per object) of a batch of objects;
        each part is (heap64 index of each pointer word, 0, None), or for objects read through
        heap bits (heap64 index of each object's first word, words read an object, which of
        them hold pointers)."""
        v, f = self.view, self._f
        self._refresh_arenas()
        _, spans = self._spans_of(objs)
        base, elemsize, spc = f(spans, S_STARTADDR, 8), f(spans, S_ELEMSIZE, 8), f(spans, S_SPANCLASS, 1)
        parts, work = [], 0
        small = spc >= 2
        hb = small & (elemsize <= U_NO_HEADER_MAX)
        if hb.all():
            work = self._heap_bits_words(objs, base, elemsize, parts)
        else:
            if hb.any():
                work = self._heap_bits_words(objs[hb], base[hb], elemsize[hb], parts)
            typed = (~hb).nonzero()[0]
            o, es = objs[typed], elemsize[typed]
            hdr = small[typed]
            # a malloc header: the type, then the data; a large object: the span keeps the type
            typ = np.where(hdr, v.h64(np.where(hdr, o, self._heap_base_u)), f(spans[typed], S_LARGETYPE, 8))
            data = ((np.where(hdr, o + np.uint64(sc.MALLOC_HEADER_SIZE), o) - self._heap_base_u) >> U3).astype(np.int64)
            size = np.where(hdr, es - np.uint64(sc.MALLOC_HEADER_SIZE), es)
            keys = np.stack([typ, size, hdr], axis=1)
            groups, ginv = np.unique(keys, axis=0, return_inverse=True)
            for gi, (t, sz, h) in enumerate(groups.tolist()):
                if t == 0:
                    continue
                w = self._words_of(t, sz)
                if not len(w):
                    continue
                d = data[ginv.ravel() == gi]
                parts.append(((d[:, None] + w[None, :]).ravel(), 0, None))
                # scanobject's scanSize runs from the object's start: the header word counts
                work += (int(w[-1] + 1) * 8 + (sc.MALLOC_HEADER_SIZE if h else 0)) * len(d)
        return work, parts, (base, elemsize, f(spans, S_DIVMUL, 4))

    def _heap_bits_words(self, objs, base, elemsize, parts):
        """Scan work of objects of one-page spans that keep heap bits (mbitmap.go:
        heapBitsSmallForAddr, one bit per word at the end of the page, before the inline mark
        bits), their part appended to parts: each object's bits (at most 64) are read as one
        64-bit word."""
        v = self.view
        # the bitmap's first 64-bit word in heap64 (before the inline mark bits of objects of
        # 16 bytes and more), and the object's first word in the bitmap
        bm = ((base - self._heap_base_u) >> U3).view(np.int64) + (PAGE_SIZE - HEAP_BITS_BYTES) // 8 \
            - np.where(elemsize >= U16, INLINE_BITS // 8, 0)
        w0 = ((objs - base) >> U3).view(np.int64)
        q = bm + (w0 >> 6)
        r = (w0 & 63).view(np.uint64)
        nw = elemsize >> U3
        bits = v.heap64[q] >> r
        spill = (r + nw > U64).nonzero()[0]          # the rest in the bitmap's next word
        if len(spill):
            bits[spill] |= v.heap64[q[spill] + 1] << (U64 - r[spill])
        bits &= U_ALL >> (U64 - nw)
        # scan work: up to the last pointer word of each object (scanobject's scanSize): the
        # position of the highest bit, the exponent of the bits as a float; with only the top
        # bit of each run of ones kept no run of 53 ones can round up to the next power of two,
        # so one conversion is exact
        width = int(nw.max()) if len(nw) else 0
        last = np.frexp((bits & ~(bits >> U1)).astype(np.float64))[1]
        # bit k of an object's word is its word k: little-endian bytes, little bit order
        isptr = np.unpackbits(bits.view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")[:, :width].view(bool)
        first = ((objs - self._heap_base_u) >> U3).view(np.int64)
        if width > SHORT_ROW and len(objs) >= SPLIT_ROWS:
            # a big batch's rows are as wide as its biggest object: objects of at most
            # SHORT_ROW words get rows of their own (the values' order does not matter to shade)
            short = nw <= U_SHORT_ROW
            if 0 < np.count_nonzero(short) < len(objs):
                s, lng = short.nonzero()[0], (~short).nonzero()[0]
                parts.append((first[s], SHORT_ROW, isptr[s, :SHORT_ROW]))
                parts.append((first[lng], width, isptr[lng]))
                return int(last.sum()) * 8
        parts.append((first, width, isptr))
        return int(last.sum()) * 8

    def _words_of(self, typ, size):
        """Pointer word indexes of `size` bytes holding values of typ back to back, a last
        partial copy's words below `size` included (mbitmap.go: typePointers.next runs on to
        its limit, the object's end, trimming only the last mask)."""
        from runtime_model.gcmask import pointer_words
        key = (typ, size)
        out = self._type_words.get(key)
        if out is None:
            words, tsize = pointer_words(self.mem, typ), self.mem.u64(typ + Type.Size_)
            if len(words) and tsize:
                reps = max(1, -(-size // tsize))
                out = (np.arange(reps, dtype=np.int64)[:, None] * (tsize // 8) + words[None, :]).ravel()
                out = out[out < size // 8]
            else:
                out = words
            self._type_words[key] = out
        return out

    def _set_scanned(self, objs, base, elemsize, divmul):
        """Green Tea's scanned bits (spanInlineMarkBits.scans) of the objects scanned."""
        inl = inline_mark_bits(elemsize)
        if not inl.all():
            if not inl.any():
                return
            objs, base, divmul = objs[inl], base[inl], divmul[inl]
        idx = ((objs - base) * divmul.astype(np.uint64)) >> U32
        a = (base - self._heap_base_u).view(np.int64) + (PAGE_SIZE - INLINE_BITS + INLINE_SCANS) \
            + (idx >> U3).view(np.int64)
        np.bitwise_or.at(self.view.heap8, a, np.uint8(1) << (idx & U7).astype(np.uint8))
