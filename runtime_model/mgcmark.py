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
    caller interleaves mutator steps and scan steps explicitly.
"""

from runtime_model.mspan import MSPAN_IN_USE

MIN_LEGAL_POINTER = 4096        # malloc.go: minLegalPointer, below it nothing is a heap pointer


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
            raise ValueError(f"{p:#x} is not inside a heap object")
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
