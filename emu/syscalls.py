"""The Linux system calls a Go heap makes, as the emulated kernel answers them.

Guest code executes a real `SYSCALL`; the machine's instruction hook calls
`Kernel.syscall`. Supported: mmap, munmap and madvise on anonymous memory in
the heap reservation, which is how Go's sysReserve/sysMap/sysUnused/sysFree
(mem_linux.go) reach the OS. Every call is logged; unknown numbers return
-ENOSYS and are logged too.

Semantics kept from Linux: fresh anonymous mappings read as zero; a MAP_FIXED
mapping over existing memory replaces it (zero again); munmap and
MADV_DONTNEED zero the pages and drop them from the resident set; accesses to
reserved (PROT_NONE) or unmapped memory fault. Simplified: mappings exist only
inside the heap reservation (Go's off-heap metadata lives in a pre-mapped
region managed by Python), and a non-fixed hint that is already taken fails
with -ENOMEM instead of moving elsewhere (Go then tries its next hint).
"""

from dataclasses import dataclass

# asm/unistd_64.h
SYS_MMAP, SYS_MUNMAP, SYS_MADVISE, SYS_FCNTL, SYS_PRLIMIT64 = 9, 11, 28, 72, 302
SYSCALL_NAMES = {SYS_MMAP: "mmap", SYS_MUNMAP: "munmap", SYS_MADVISE: "madvise", SYS_FCNTL: "fcntl",
                 SYS_PRLIMIT64: "prlimit64"}
F_GETFL, O_RDWR = 3, 2             # fcntl.h
RLIMIT_NOFILE = 7
NOFILE_LIMITS = (1024, 524288)     # the soft and hard RLIMIT_NOFILE a process typically starts with
# asm-generic/mman*.h
PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS, MAP_NORESERVE = 0x02, 0x10, 0x20, 0x4000
MADV_DONTNEED, MADV_FREE, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_COLLAPSE = 4, 8, 14, 15, 25
MADV_NAMES = {0: "MADV_NORMAL", 1: "MADV_RANDOM", 2: "MADV_SEQUENTIAL", 3: "MADV_WILLNEED",
              MADV_DONTNEED: "MADV_DONTNEED", MADV_FREE: "MADV_FREE", 9: "MADV_REMOVE",
              10: "MADV_DONTFORK", 11: "MADV_DOFORK", MADV_HUGEPAGE: "MADV_HUGEPAGE",
              MADV_NOHUGEPAGE: "MADV_NOHUGEPAGE", MADV_COLLAPSE: "MADV_COLLAPSE"}
EINVAL, ENOMEM, ENOSYS, EBADF = 22, 12, 38, 9
PAGE = 4096


@dataclass(frozen=True)
class SyscallRecord:
    nr: int
    name: str
    args: tuple
    result: int      # as the kernel returns it: negative errno on failure
    note: str = ""

    def __str__(self):
        res = f"-{_errname(-self.result)}" if -4096 < self.result < 0 else f"{self.result:#x}"
        a = ", ".join(f"{x:#x}" for x in self.args)
        return f"{self.name}({a}) = {res}" + (f"  [{self.note}]" if self.note else "")


def _errname(e):
    return {EINVAL: "EINVAL", ENOMEM: "ENOMEM", ENOSYS: "ENOSYS", EBADF: "EBADF"}.get(e, str(e))


def _prot_str(prot):
    return ("r" if prot & PROT_READ else "") + ("w" if prot & PROT_WRITE else "") + ("x" if prot & PROT_EXEC else "")


class _Mappings:
    """Non-overlapping [start, end) -> prot intervals, sorted by start."""

    def __init__(self):
        self.iv = []

    def overlaps(self, lo, hi):
        return any(s < hi and lo < e for s, e, _ in self.iv)

    def covers(self, lo, hi):
        at = lo
        for s, e, _ in self.iv:
            if s <= at < e:
                at = e
        return at >= hi

    def remove(self, lo, hi):
        out = []
        for s, e, p in self.iv:
            if e <= lo or hi <= s:
                out.append((s, e, p))
                continue
            if s < lo:
                out.append((s, lo, p))
            if hi < e:
                out.append((hi, e, p))
        self.iv = out

    def set(self, lo, hi, prot):
        self.remove(lo, hi)
        self.iv.append((lo, hi, prot))
        self.iv.sort()
        merged = []
        for s, e, p in self.iv:     # coalesce neighbours with the same protection
            if merged and merged[-1][1] == s and merged[-1][2] == p:
                merged[-1] = (merged[-1][0], e, p)
            else:
                merged.append((s, e, p))
        self.iv = merged


class Kernel:
    """Anonymous-memory syscalls over one reserved heap range of guest memory."""

    def __init__(self, memory, base, size):
        self.mem = memory
        self.base, self.size = base, size
        self.maps = _Mappings()
        self.log = []
        self.advice = []          # (addr, length, advice name) of every madvise
        self.nofile = NOFILE_LIMITS

    def _in_range(self, addr, length):
        return self.base <= addr and addr + length <= self.base + self.size and addr % PAGE == 0

    def handles(self, nr):
        """Whether this kernel emulates system call nr (others fail with ENOSYS)."""
        return nr in SYSCALL_NAMES

    def syscall(self, nr, args):
        """Run one system call; returns what the kernel puts in RAX."""
        handler = {SYS_MMAP: self._mmap, SYS_MUNMAP: self._munmap, SYS_MADVISE: self._madvise,
                   SYS_FCNTL: self._fcntl, SYS_PRLIMIT64: self._prlimit64}.get(nr)
        if handler is None:
            rec = SyscallRecord(nr, f"syscall_{nr}", tuple(args[:6]), -ENOSYS, "not emulated")
        else:
            result, note, nargs = handler(*args)
            rec = SyscallRecord(nr, SYSCALL_NAMES[nr], tuple(args[:nargs]), result, note)
        self.log.append(rec)
        return rec.result & 0xFFFFFFFFFFFFFFFF

    def _fcntl(self, fd, cmd, arg, *_):
        """Only what os.NewFile asks of the standard descriptors (F_GETFL: blocking, read-write)."""
        if fd > 2:
            return -EBADF, "only descriptors 0-2 exist", 3
        if cmd != F_GETFL:
            return -EINVAL, "only F_GETFL is emulated", 3
        return O_RDWR, "", 3

    def _prlimit64(self, pid, resource, new, old, *_):
        """getrlimit/setrlimit of this process's RLIMIT_NOFILE (syscall's init raises the soft limit)."""
        if pid != 0 or resource != RLIMIT_NOFILE:
            return -EINVAL, "only RLIMIT_NOFILE of this process is emulated", 4
        if old:
            self.mem.w64(old, self.nofile[0])
            self.mem.w64(old + 8, self.nofile[1])
        if new:
            self.nofile = (self.mem.u64(new), self.mem.u64(new + 8))
        return 0, "", 4

    def _mmap(self, addr, length, prot, flags, fd, off):
        fd = fd - (1 << 32) if fd >= 1 << 31 else fd     # int32 in the kernel ABI
        length = -(-length // PAGE) * PAGE
        if not flags & MAP_ANONYMOUS or fd != -1:
            return -EBADF, "only anonymous mappings are emulated", 6
        if length == 0 or not self._in_range(addr, length):
            return -ENOMEM, "outside the heap reservation", 6
        taken = self.maps.overlaps(addr, addr + length)
        if taken and not flags & MAP_FIXED:
            return -ENOMEM, "hint already mapped", 6
        if taken:
            self.mem.discard(addr, length)   # a new anonymous mapping reads as zero
        prot_s = _prot_str(prot)
        self.mem.ensure_mapped(addr, length)
        self.mem.protect(addr, length, prot_s)
        self.maps.set(addr, addr + length, prot_s)
        return addr, ("replaced" if taken else ""), 6

    def _munmap(self, addr, length, *_):
        length = -(-length // PAGE) * PAGE
        if length == 0 or not self._in_range(addr, length):
            return -EINVAL, "", 2
        self.mem.discard(addr, length)
        self.mem.protect(addr, length, "")
        self.maps.remove(addr, addr + length)
        return 0, "", 2

    def _madvise(self, addr, length, advice, *_):
        name = MADV_NAMES.get(advice)
        length = -(-length // PAGE) * PAGE
        if name is None or not self._in_range(addr, length):
            return -EINVAL, name or "unknown advice", 3
        if not self.maps.covers(addr, addr + length):
            return -ENOMEM, name + " on unmapped memory", 3
        if advice == MADV_DONTNEED:
            self.mem.discard(addr, length)
        self.advice.append((addr, length, name))
        return 0, name, 3

    def mapped_ranges(self):
        """Mappings as (start, end, prot); prot "" is a PROT_NONE reservation."""
        return list(self.maps.iv)

    def rss_bytes(self):
        """Resident bytes of the mapped heap: pages touched and not released."""
        return sum(self.mem.resident_bytes(s, e - s) for s, e, prot in self.maps.iv if prot)
