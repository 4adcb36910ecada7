"""Guest memory: a few large regions, each backed by a host mapping.

Every region is a host `mmap(MAP_NORESERVE)` handed to unicorn with
`mem_map_ptr`, so Python reads and writes guest memory without copies, and a
host `madvise(MADV_DONTNEED)` on the backing really zeroes guest pages and
drops them from the resident set, as the kernel does for a Go process.
"""

import ctypes
import mmap
import struct

from unicorn import UC_PROT_ALL, UC_PROT_EXEC, UC_PROT_NONE, UC_PROT_READ, UC_PROT_WRITE

from emu import args as A
from emu.errors import EmulationFault

_PROT = {"": UC_PROT_NONE, "r": UC_PROT_READ, "rw": UC_PROT_READ | UC_PROT_WRITE,
         "rx": UC_PROT_READ | UC_PROT_EXEC, "rwx": UC_PROT_ALL}
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
HOST_PAGE = mmap.PAGESIZE
_RESIDENT_BIT = bytes(v & 1 for v in range(256))     # mincore: bit 0 of a page's byte; the rest reserved

_GRANULE_BITS = 20       # _backing remembers a backing per MiB of guest addresses
_U8, _U16, _U32, _U64 = (struct.Struct(f) for f in ("<B", "<H", "<I", "<Q"))


class _Backing:
    def __init__(self, region):
        self.region = region
        self.base, self.end = region.base, region.end
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0x4000)
        self.buf = mmap.mmap(-1, region.size, flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self.host = ctypes.addressof(ctypes.c_char.from_buffer(self.buf))
        # typed views of the whole backing: an aligned field is one index, no struct call
        mv = memoryview(self.buf)
        self.b, self.h, self.i, self.q = mv, mv.cast("H"), mv.cast("I"), mv.cast("Q")


class Memory:
    """Typed access to guest addresses through the host backings."""

    def __init__(self, uc):
        self.uc = uc
        self._backings = []
        self._last = None      # the backing of the previous access: most accesses repeat it
        self._by_granule = {}  # addr >> _GRANULE_BITS -> the backing last found there
        self._views = {}       # (region base, dtype) -> numpy view of its backing (array())

    def add_region(self, region):
        b = _Backing(region)
        self.uc.mem_map_ptr(region.base, region.size, _PROT[region.prot], b.host)
        self._backings.append(b)
        return b

    def add_lazy_region(self, region, granule):
        """Host backing for the whole region now; unicorn mappings per `granule` on demand.

        unicorn's mem_protect on part of a region costs time proportional to the region,
        so a huge reservation is mapped in pieces (layout.HEAP_MAP_GRANULE).
        """
        b = _Backing(region)
        b.granule, b.mapped = granule, set()
        self._backings.append(b)
        return b

    def ensure_mapped(self, addr, size):
        """Map (PROT_NONE) every granule of a lazy region that [addr, addr+size) touches."""
        buf, off = self._find(addr, size)
        b = next(x for x in self._backings if x.buf is buf)
        g = b.granule
        for k in range(off // g, -(-(off + size) // g)):
            if k not in b.mapped:
                self.uc.mem_map_ptr(b.region.base + k * g, g, UC_PROT_NONE, b.host + k * g)
                b.mapped.add(k)

    def _backing(self, addr, n):
        b = self._last
        try:
            if b is not None and b.base <= addr and addr + n <= b.end:
                return b
            b = self._by_granule.get(addr >> _GRANULE_BITS)
            if b is not None and b.base <= addr and addr + n <= b.end:
                self._last = b
                return b
            for b in self._backings:
                if b.base <= addr and addr + n <= b.end:
                    self._last = self._by_granule[addr >> _GRANULE_BITS] = b
                    return b
        except TypeError:               # addr is not a number: BadInput naming it (free when it is)
            A.integer("addr", addr)
            raise
        A.integer("addr", addr)
        raise EmulationFault(f"address {addr:#x} (+{n}) is outside every emulated region", pc=None)

    def _find(self, addr, n):
        b = self._backing(addr, n)
        return b.buf, addr - b.base

    # The public entries check addr's type (one comparison): a float inside a region
    # would pass the bounds and fail as a slice index.
    def read(self, addr, n):
        if type(addr) is not int:
            addr = A.integer("addr", addr)
        if type(n) is not int or n < 0:
            n = A.integer("n", n)
        buf, off = self._find(addr, n)
        return bytes(buf[off:off + n])

    def write(self, addr, data):
        if type(addr) is not int:
            addr = A.integer("addr", addr)
        data = A.data("data", data)
        buf, off = self._find(addr, len(data))
        buf[off:off + len(data)] = data

    def fill(self, addr, n, byte=0):
        if type(addr) is not int:
            addr = A.integer("addr", addr)
        n = A.integer("n", n)
        byte = A.integer("byte", byte, 0, 0xFF)
        buf, off = self._find(addr, n)
        buf[off:off + n] = bytes([byte]) * n

    # Typed access: aligned fields through the backing's typed views (one index each),
    # unaligned ones through struct.
    def u8(self, a):
        b = self._backing(a, 1)
        return b.b[a - b.base]

    def u16(self, a):
        b = self._backing(a, 2)
        off = a - b.base
        return b.h[off >> 1] if not off & 1 else _U16.unpack_from(b.buf, off)[0]

    def u32(self, a):
        b = self._backing(a, 4)
        off = a - b.base
        return b.i[off >> 2] if not off & 3 else _U32.unpack_from(b.buf, off)[0]

    def u64(self, a):
        b = self._backing(a, 8)
        off = a - b.base
        return b.q[off >> 3] if not off & 7 else _U64.unpack_from(b.buf, off)[0]

    def w8(self, a, v):
        b = self._backing(a, 1)
        b.b[a - b.base] = v & 0xFF

    def w16(self, a, v):
        b = self._backing(a, 2)
        off = a - b.base
        if off & 1:
            _U16.pack_into(b.buf, off, v & 0xFFFF)
        else:
            b.h[off >> 1] = v & 0xFFFF

    def w32(self, a, v):
        b = self._backing(a, 4)
        off = a - b.base
        if off & 3:
            _U32.pack_into(b.buf, off, v & 0xFFFFFFFF)
        else:
            b.i[off >> 2] = v & 0xFFFFFFFF

    def w64(self, a, v):
        b = self._backing(a, 8)
        off = a - b.base
        if off & 7:
            _U64.pack_into(b.buf, off, v & 0xFFFFFFFFFFFFFFFF)
        else:
            b.q[off >> 3] = v & 0xFFFFFFFFFFFFFFFF

    def protect(self, addr, size, prot):
        self.uc.mem_protect(addr, size, _PROT[prot])

    def discard(self, addr, size):
        """MADV_DONTNEED on the host backing: the guest pages read as zero again."""
        buf, off = self._find(addr, size)
        lo = off // HOST_PAGE * HOST_PAGE
        hi = -(-(off + size) // HOST_PAGE) * HOST_PAGE
        buf.madvise(mmap.MADV_DONTNEED, lo, hi - lo)

    def resident_bytes(self, addr, size):
        """Host pages of [addr, addr+size) that are resident (touched, not discarded)."""
        buf, off = self._find(addr, size)
        b = next(x for x in self._backings if x.buf is buf)
        lo = off // HOST_PAGE * HOST_PAGE
        n = -(-(off + size - lo) // HOST_PAGE)
        vec = (ctypes.c_ubyte * n)()
        if _libc.mincore(ctypes.c_void_p(b.host + lo), n * HOST_PAGE, vec) != 0:
            raise OSError(ctypes.get_errno(), "mincore failed")
        return bytes(vec).translate(_RESIDENT_BIT).count(1) * HOST_PAGE

    def array(self, addr, dtype="u1"):
        """(base, view): a numpy array over the whole host backing that holds addr, without a
        copy, and the guest address of its first element. Python's bulk work on guest memory
        (marking, sweeping) reads and writes through it; element i is at base + i * itemsize."""
        import numpy as np
        for b in self._backings:
            r = b.region
            if r.base <= addr < r.end:
                key = (r.base, np.dtype(dtype).str)
                view = self._views.get(key)
                if view is None:
                    view = self._views[key] = np.frombuffer(b.buf, dtype=dtype)
                return r.base, view
        raise EmulationFault(f"address {addr:#x} is outside every emulated region", pc=None)

    def gather64(self, addrs):
        """The 8-byte words at an array of 8-aligned guest addresses, in any regions."""
        import numpy as np
        addrs = np.asarray(addrs, dtype=np.uint64)
        out = np.zeros(len(addrs), dtype=np.uint64)
        if not len(addrs):
            return out
        for b in self._backings:
            r = b.region
            sel = np.flatnonzero((addrs >= np.uint64(r.base)) & (addrs < np.uint64(r.end)))
            if len(sel):
                base, view = self.array(r.base, "<u8")
                out[sel] = view[((addrs[sel] - np.uint64(base)) >> np.uint64(3)).astype(np.int64)]
        return out
