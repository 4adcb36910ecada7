"""The page allocator's C core: CPageAlloc, the running implementation (issue 13).

Two implementations of Go's pageAlloc exist, with one API and one state():
* runtime_model/pagealloc.py's PyPageAlloc is the reference model: readable Python,
  checked against every one of Go's page-allocator test vectors.
* CPageAlloc, here, is what the emulated heap runs on: Go's own code (mpagealloc.go,
  mpallocbits.go, mgcscavenge.go, mpagecache.go, mranges.go) transcribed into C in this
  directory, built by build.py and called through ctypes. It exists for speed: the model
  does 40-50 k mixed alloc/free ops per second, the target is 200 k.
tests/test_cpagealloc.py drives both with Go's vectors and random operation sequences
and requires the same results, the same state and the same typed errors.

The core is loaded when this module is imported (built first if the cache has none);
core_unavailable() says why not when it could not be, and runtime_model/pagealloc.py
then runs the model instead. This module imports nothing from runtime_model.pagealloc at
import time (pagealloc imports it); the shared checks and error messages it takes from
there when a call needs them.

ctypes: the library is loaded with PyDLL (calls keep the GIL: each is far shorter than
releasing and taking it back), and values cross as uint64: a Python int outside
0..2**64-1 would be cut to 64 bits, so the methods below check counts before calling.
"""

import ctypes
from array import array
from itertools import chain

from emu.errors import BadInput, InvariantError
from runtime_model.cpagealloc import build
from runtime_model.pagecache import PageCache
from runtime_model.pallocbits import PallocData

_U64 = 1 << 64
# Error codes of mpagealloc.h's enum.
(PA_OK, PA_NOT_GROWN, PA_BELOW_ZERO, PA_TOO_MANY, PA_BAD_SUMMARY, PA_NPAGES, PA_NOMEM, PA_BAD_MIN,
 PA_BAD_RANGE, PA_OVERLAP) = range(10)
_SCAV_BATCH = 64          # released runs pa_scavenge hands back per call
_Words = ctypes.c_uint64 * 8
_chunk_words = (ctypes.c_uint64 * 16)()   # pa_chunk's output (a chunk's two bitmaps)
_u64, _ptr, _size = ctypes.c_uint64, ctypes.c_void_p, ctypes.c_size_t
_SIGNATURES = {           # name: (restype, argtypes)
    "pa_new": (_ptr, ()), "pa_destroy": (None, (_ptr,)), "pa_clone": (_ptr, (_ptr,)), "pa_out": (_ptr, (_ptr,)),
    "pa_grow_conflict": (_u64, (_ptr, _u64, _u64)), "pa_grow": (ctypes.c_int, (_ptr, _u64, _u64)),
    "pa_alloc": (_u64, (_ptr, _u64)), "pa_free": (ctypes.c_int, (_ptr, _u64, _u64)),
    "pa_free_many": (ctypes.c_int, (_ptr, _ptr, _ptr, _size)), "pa_alloc_to_cache": (ctypes.c_int, (_ptr,)),
    "pa_flush_cache": (ctypes.c_int, (_ptr, _u64, _u64, _u64)),
    "pa_scavenge": (_size, (_ptr, _u64, ctypes.c_int, _ptr, _size)), "pa_next_gen": (None, (_ptr,)),
    "pa_test_init_chunk": (ctypes.c_int, (_ptr, _u64, _ptr, _ptr, _size)),
    "pa_scalars": (None, (_ptr, _ptr)), "pa_in_use": (_size, (_ptr, _ptr, _size)),
    "pa_chunk": (ctypes.c_int, (_ptr, _u64, _ptr)), "pa_scav_chunk": (ctypes.c_int, (_ptr, _u64, _ptr)),
    "pa_summary_at": (_u64, (_ptr, _u64, _u64)), "pa_summary_pages": (_size, (_ptr, _u64, _ptr, _size)),
    "pa_summary_nonzero": (_size, (_ptr, _u64, _ptr, _size)), "pa_chunks_l1": (_size, (_ptr, _ptr, _size)),
    "pa_find_scavenge_candidate": (ctypes.c_int, (_ptr, _ptr, _u64, _u64, _u64, _ptr)),
    "pa_summarize": (_u64, (_ptr,)), "pa_palloc_find": (None, (_ptr, _u64, _u64, _ptr)),
    "pa_merge_summaries": (_u64, (_ptr, _size, _u64)), "pa_find_bit_range64": (_u64, (_u64, _u64)),
    "pa_constants": (None, (_ptr,)),
}


def _load():
    """The loaded library, or the reason there is none."""
    try:
        path = build.build()
    except build.Unavailable as e:
        return None, str(e)
    try:
        lib = ctypes.PyDLL(str(path))
    except OSError as e:
        return None, f"cannot load {path}: {e}"
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, list(argtypes)
    return lib, None


_lib, _why = _load()


def core_unavailable():
    """None if the C core is loaded, else why it is not."""
    return _why


def _model():
    """runtime_model.pagealloc (the shared checks and messages), which imports this module."""
    from runtime_model import pagealloc
    return pagealloc


def _words(x):
    return _Words.from_buffer_copy((x & ((1 << 512) - 1)).to_bytes(64, "little"))


def _int(words):
    return int.from_bytes(bytes(words), "little")


class CPageAlloc:
    """pageAlloc, the running implementation: one C pageAlloc (mpagealloc.h) per object.

    The API, results and state() of PyPageAlloc, the reference model, and its typed
    errors for bad input; chunk_of returns a copy of the chunk's bitmaps. on_grow(base,
    size) is called before grow maps, as in the model; on_release(addr, nbytes) after the
    scavenger's C loop (for each run it released, in order) instead of inside it.
    """

    __slots__ = ("_p", "_out", "on_grow", "on_release", "_sys_stat")

    def __init__(self, on_grow=None, on_release=None):
        if _lib is None:
            raise BadInput(f"the page allocator's C core is unavailable: {_why}")
        self._own(_lib.pa_new())
        self.on_grow = on_grow
        self.on_release = on_release

    def _own(self, p):
        if not p:
            raise MemoryError("pageAlloc: out of memory")
        self._p = p
        self._out = (ctypes.c_uint64 * 8).from_address(_lib.pa_out(p))
        self._sys_stat = None     # sysStat as last read: only pa_grow changes it (sysGrow)

    def __del__(self):
        p = getattr(self, "_p", None)
        if p and _lib is not None:
            _lib.pa_destroy(p)
            self._p = None

    def __deepcopy__(self, memo):
        new = CPageAlloc.__new__(CPageAlloc)
        new._own(_lib.pa_clone(self._p))
        new.on_grow, new.on_release = self.on_grow, self.on_release
        return new

    def _error(self, code):
        """The exception for a C error code, worded as the model words it (out[4..6]: details)."""
        o, m = self._out, _model()
        if code == PA_BELOW_ZERO:
            return m.below_zero(o[4], o[5], o[6])
        if code == PA_TOO_MANY:
            return m.too_many(o[4], o[5], o[6])
        if code == PA_BAD_SUMMARY:
            return InvariantError(f"bad summary data: summary[{o[4]}][{o[5]:#x}], npages={o[6]}")
        if code == PA_OVERLAP:
            return InvariantError(f"range partially overlaps: {o[4]:#x} against firstFree [{o[5]:#x}, {o[6]:#x}]")
        if code == PA_NOMEM:
            return MemoryError("pageAlloc: out of memory")
        return InvariantError(f"pageAlloc: C core error {code}")

    # ---- the running allocator's calls (mheap, pagecache) ------------------------------------

    def grow(self, base, size):
        """grow: add [base, base+size) (rounded out to chunks) as free, scavenged memory."""
        m = _model()
        b, limit = m.grow_extent(base, size)
        conflict = _lib.pa_grow_conflict(self._p, b, limit)
        if conflict:
            raise m.grown_twice(conflict - 1)
        if self.on_grow is not None:
            self.on_grow(m.from_off(b), limit - b)
        self._sys_stat = None
        code = _lib.pa_grow(self._p, b, limit)
        if code:
            raise self._error(code)

    def alloc(self, npages):
        """alloc: first fit of npages pages -> (addr, scavenged bytes in it); (0, 0) on failure."""
        if 0 < npages < _U64:
            addr = _lib.pa_alloc(self._p, npages)
            if addr != 1:
                return addr, self._out[0]
            raise self._error(self._out[3])
        if npages <= 0:
            raise _model().npages_not_positive("alloc", npages)
        return self.alloc(_U64 - 1)  # no heap has that many pages: the same failed search

    def free(self, base, npages):
        """free: return npages pages at base; scavenged bits are untouched."""
        if 0 < npages < _U64:
            code = _lib.pa_free(self._p, base, npages)
            if code:
                raise _model().not_grown(base, npages) if code == PA_NOT_GROWN else self._error(code)
        elif npages <= 0:
            raise _model().npages_not_positive("free", npages)
        else:
            raise _model().not_grown(base, npages)

    def free_many(self, ranges):
        """Free every (base, npages) of `ranges`, leaving the state free() on each in turn
        leaves; the batch is checked first, and a refused batch changes nothing."""
        if not isinstance(ranges, (list, tuple)):
            ranges = list(ranges)
        try:
            bases, counts = array("Q", [b for b, _ in ranges]), array("Q", [n for _, n in ranges])
        except OverflowError:
            # Values outside uint64: each as the model treats it (0 pages: the C side refuses it).
            bases = array("Q", [b % _U64 for b, _ in ranges])
            counts = array("Q", [n if 0 < n < _U64 else 0 if n <= 0 else _U64 - 1 for _, n in ranges])
        code = _lib.pa_free_many(self._p, bases.buffer_info()[0], counts.buffer_info()[0], len(ranges))
        if code:
            base, npages = ranges[self._out[4]] if code in (PA_NPAGES, PA_NOT_GROWN) else (0, 0)
            if code == PA_NPAGES:
                raise _model().npages_not_positive("free", npages)
            raise _model().not_grown(base, npages) if code == PA_NOT_GROWN else self._error(code)

    def alloc_to_cache(self):
        """allocToCache: take the 64-page aligned block holding the first free page -> PageCache."""
        code = _lib.pa_alloc_to_cache(self._p)
        if code:
            raise self._error(code)
        o = self._out
        return PageCache(o[0], o[1], o[2])

    def free_page_cache(self, base, cache, scav):
        """pageCache.flush's work on the allocator (a cache that is not empty)."""
        if cache % _U64 == 0:
            return
        code = _lib.pa_flush_cache(self._p, base % _U64, cache % _U64, scav % _U64)
        if code in (PA_NOT_GROWN, PA_BAD_RANGE):
            raise _model().cache_not_in_heap(base)
        if code:
            raise self._error(code)

    def scavenge(self, nbytes, force=True):
        """scavenge (shouldStop=nil): release free, unscavenged pages, highest first -> bytes released."""
        nbytes = min(nbytes, _U64 - 1)
        released = 0
        runs = (ctypes.c_uint64 * (2 * _SCAV_BATCH))()
        while released < nbytes:
            n = _lib.pa_scavenge(self._p, nbytes - released, 1 if force else 0, runs, _SCAV_BATCH)
            released += self._out[0]
            if self.on_release is not None:
                for k in range(n):
                    self.on_release(runs[2 * k], runs[2 * k + 1])
            if not self._out[1]:
                break
        return released

    def next_gen(self):
        """scavengeIndex.nextGen: start a new GC generation for background scavenging."""
        _lib.pa_next_gen(self._p)

    # ---- introspection (the model's, read from C) ------------------------------------------

    def _scalars(self):
        out = (ctypes.c_uint64 * 12)()
        _lib.pa_scalars(self._p, out)
        return list(out)

    @property
    def search_addr(self):
        """searchAddr as an offAddr offset."""
        return self._scalars()[0]

    @property
    def sys_stat(self):
        """p.sysStat's share from this allocator (bytes of its metadata mapped). Read at every
        gcTrigger.test (mappedReady), kept until the next grow."""
        if self._sys_stat is None:
            self._sys_stat = self._scalars()[3]
        return self._sys_stat

    def bounds(self):
        """(start, end) chunk indices known to the allocator (PageAlloc.Bounds)."""
        return tuple(self._scalars()[1:3])

    def _in_use(self):
        n = self._scalars()[11]
        out = (ctypes.c_uint64 * (2 * n))()
        _lib.pa_in_use(self._p, out, n)
        return [(out[2 * k], out[2 * k + 1]) for k in range(n)]

    def in_use_ranges(self):
        """inUse as a list of (base, limit) virtual addresses (PageAlloc.InUse)."""
        m = _model()
        return [(m.from_off(b), m.from_off(lim)) for b, lim in self._in_use()]

    def grown_chunks(self):
        return [c for b, lim in self._in_use() for c in range(b >> 22, lim >> 22)]

    def chunk_of(self, ci):
        """tryChunkOf: a copy of chunk ci's PallocData, or None if never grown."""
        out = _chunk_words
        if not 0 <= ci < _U64 or not _lib.pa_chunk(self._p, ci, out):
            return None
        raw = bytes(out)
        return PallocData(int.from_bytes(raw[:64], "little"), int.from_bytes(raw[64:], "little"))

    def summary_at(self, level, idx):
        """Packed summary p.summary[level][idx]; 0 where nothing was grown."""
        return _lib.pa_summary_at(self._p, level, idx) if 0 <= level < 5 and 0 <= idx < _U64 else 0

    def state(self):
        """Everything of Go's pageAlloc, as plain values: PyPageAlloc.state()'s format."""
        s = self._scalars()
        grown = self.grown_chunks()
        chunks, scav_chunks = {}, {}
        words, entry = _chunk_words, (ctypes.c_uint64 * 4)()
        for ci in grown:
            _lib.pa_chunk(self._p, ci, words)
            raw = bytes(words)
            chunks[ci] = (int.from_bytes(raw[:64], "little"), int.from_bytes(raw[64:], "little"))
            _lib.pa_scav_chunk(self._p, ci, entry)
            scav_chunks[ci] = (entry[0], entry[1], entry[2], bool(entry[3]))
        summary, summary_pages = [], []
        for lvl in range(5):
            n = _lib.pa_summary_nonzero(self._p, lvl, None, 0)
            out = (ctypes.c_uint64 * (2 * n))()
            _lib.pa_summary_nonzero(self._p, lvl, out, n)
            summary.append(dict(zip(out[::2], out[1::2])))
            n = _lib.pa_summary_pages(self._p, lvl, None, 0)
            out = (ctypes.c_uint64 * n)()
            _lib.pa_summary_pages(self._p, lvl, out, n)
            summary_pages.append(list(out))
        l1 = (ctypes.c_uint64 * 8192)()
        n = _lib.pa_chunks_l1(self._p, l1, 8192)
        return {
            "search_addr": s[0],
            "bounds": (s[1], s[2]),
            "in_use": self._in_use(),
            "chunks": chunks,
            "summary": summary,
            "scav_chunks": scav_chunks,
            "scav_index": (s[4], s[5], s[6], s[7], s[8], (s[9], s[10])),
            "sys_stat": s[3],
            "summary_pages": summary_pages,
            "chunks_l1": list(l1[:n]),
        }

    # ---- tests' doors (export_test.go) ------------------------------------------------------

    def set_test_chunk(self, ci, alloc, scav):
        """export_test.go NewPageAlloc's setup of chunk ci, just grown (PyPageAlloc.set_test_chunk)."""
        scav_bits = 0
        for s, n in scav:
            if n:
                scav_bits |= ((1 << n) - 1) << s
        flat = array("Q", chain.from_iterable(alloc))
        self._sys_stat = None
        code = _lib.pa_test_init_chunk(self._p, ci, _words(scav_bits), flat.buffer_info()[0], len(flat) // 2)
        if code == PA_BAD_RANGE:
            raise BadInput(f"NewPageAlloc: a range of chunk {ci:#x} is not inside the chunk: {list(alloc)}")
        if code:
            raise self._error(code)

    @staticmethod
    def find_scavenge_candidate(bits, scavenged, search_idx, minimum, max_):
        """pallocData.findScavengeCandidate on a chunk given as its two bitmaps."""
        out = (ctypes.c_uint64 * 2)()
        code = _lib.pa_find_scavenge_candidate(_words(bits), _words(scavenged), min(search_idx, 511),
                                               minimum % _U64, min(max_, _U64 - 1), out)
        if code:
            PallocData().find_scavenge_candidate(search_idx, minimum, max_)  # the model words the BadInput
            raise BadInput(f"findScavengeCandidate: bad min {minimum}")
        return out[0], out[1]


# ---- Go's bit-level functions in C, for the tests -------------------------------------------

def summarize(bits):
    """pallocBits.summarize."""
    return _lib.pa_summarize(_words(bits))


def palloc_find(bits, npages, search_idx):
    """pallocBits.find -> (index, new searchIdx), None for none (pallocbits.palloc_find's form)."""
    out = (ctypes.c_uint64 * 2)()
    _lib.pa_palloc_find(_words(bits), npages, search_idx, out)
    none = 2**32 - 1
    return (None, None) if out[0] == none else (out[0], out[1])


def merge_summaries(sums, log_max_pages_per_sum):
    return _lib.pa_merge_summaries((ctypes.c_uint64 * len(sums))(*sums), len(sums), log_max_pages_per_sum)


def find_bit_range64(c, n):
    return _lib.pa_find_bit_range64(c, n)


def constants():
    """heapAddrBits, arenaBaseOffset, pageShift, logPallocChunkPages, summaryLevels,
    summaryLevelBits, logMaxPackedValue, pallocChunksL1Bits, physPageSize,
    physHugePageSize, scavChunkHiOccPages, pageCachePages, inUse's initial bytes,
    sizeof(pallocData), as the C core has them."""
    out = (ctypes.c_uint64 * 14)()
    _lib.pa_constants(out)
    return list(out)

