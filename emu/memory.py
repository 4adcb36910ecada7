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

from emu.errors import EmulationFault

_PROT = {"": UC_PROT_NONE, "r": UC_PROT_READ, "rw": UC_PROT_READ | UC_PROT_WRITE,
         "rx": UC_PROT_READ | UC_PROT_EXEC, "rwx": UC_PROT_ALL}
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
HOST_PAGE = mmap.PAGESIZE

_U8, _U16, _U32, _U64 = (struct.Struct(f) for f in ("<B", "<H", "<I", "<Q"))


class _Backing:
    def __init__(self, region):
        self.region = region
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0x4000)
        self.buf = mmap.mmap(-1, region.size, flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self.host = ctypes.addressof(ctypes.c_char.from_buffer(self.buf))


class Memory:
    """Typed access to guest addresses through the host backings."""

    def __init__(self, uc):
        self.uc = uc
        self._backings = []
        self._last = None      # the backing of the previous access: most accesses repeat it
        self._views = {}       # (region base, dtype) -> numpy view of its backing (array())

    def add_region(self, region):
        b = _Backing(region)
        self.uc.mem_map_ptr(region.base, region.size, _PROT[region.prot], b.host)
        self._backings.append(b)
        return b

    def add_lazy_region(self, region, granule):
        """Host backing for the whole region now; unicorn mappings per `granule` on demand.

        unicorn's mem_protect on part of a region costs time proportional to the
        region (about 1 s for 64 GiB), so a huge reservation is mapped in arena-sized pieces.
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

    def _find(self, addr, n):
        b = self._last
        if b is not None and b.region.base <= addr and addr + n <= b.region.end:
            return b.buf, addr - b.region.base
        for b in self._backings:
            r = b.region
            if r.base <= addr and addr + n <= r.end:
                self._last = b
                return b.buf, addr - r.base
        raise EmulationFault(f"address {addr:#x} (+{n}) is outside every emulated region", pc=None)


    def read(self, addr, n):
        buf, off = self._find(addr, n)
        return bytes(buf[off:off + n])

    def write(self, addr, data):
        buf, off = self._find(addr, len(data))
        buf[off:off + len(data)] = data

    def fill(self, addr, n, byte=0):
        buf, off = self._find(addr, n)
        buf[off:off + n] = bytes([byte]) * n

    def _get(self, st, addr):
        buf, off = self._find(addr, st.size)
        return st.unpack_from(buf, off)[0]

    def _put(self, st, addr, v):
        buf, off = self._find(addr, st.size)
        st.pack_into(buf, off, v)

    def u8(self, a):
        return self._get(_U8, a)

    def u16(self, a):
        return self._get(_U16, a)

    def u32(self, a):
        return self._get(_U32, a)

    def u64(self, a):
        return self._get(_U64, a)

    def w8(self, a, v):
        self._put(_U8, a, v & 0xFF)

    def w16(self, a, v):
        self._put(_U16, a, v & 0xFFFF)

    def w32(self, a, v):
        self._put(_U32, a, v & 0xFFFFFFFF)

    def w64(self, a, v):
        self._put(_U64, a, v & 0xFFFFFFFFFFFFFFFF)

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
        return sum(v & 1 for v in vec) * HOST_PAGE

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
