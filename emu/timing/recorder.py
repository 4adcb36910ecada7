"""Recording what ran: the executed blocks and every data access, in order.

Two hooks share one buffer of 64-bit word pairs, in the order unicorn calls
them:
  block   (address, size | 1<<63)            a UC_HOOK_BLOCK, at each block start
  access  (address, size << 1 | is_write)    a UC_HOOK_MEM_READ|WRITE, per access
Both callbacks are a few bytes of host machine code (assembled by keystone,
as emu/uc_raw.py's BlockCounter), so recording costs nanoseconds per event;
when the buffer fills, the callback calls a Python function that moves it
aside. Unicorn reports an access of more than 8 bytes (an XMM load) as 8-byte
pieces; every branch ends a block, and a REP string instruction ends its
block after its first iteration and then runs as a one-instruction block per
further iteration (and once more with RCX = 0); the model and
`Stream.instructions` merge those again.

Hooks only fire in code translated after they were added, so entering and
leaving a Recorder flushes unicorn's translation cache.
"""

import ctypes
import mmap
import platform

import capstone
import keystone
import numpy as np
from unicorn import UC_HOOK_BLOCK, UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE
from unicorn.unicorn_py3.unicorn import uclib

from emu.errors import BadInput
from emu.uc_raw import CODE_CB

BLOCK_TAG = 1 << 63
MEM_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64, ctypes.c_int, ctypes.c_int64,
                          ctypes.c_void_p)
FLUSH_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p)

# user data: [buffer, index in words, capacity in words, flush function]
_BLOCK_SRC = """
    mov rax, qword ptr [rcx + 0x8]
    cmp rax, qword ptr [rcx + 0x10]
    jae full
put:
    mov r8, qword ptr [rcx]
    mov qword ptr [r8 + rax*0x8], rsi
    mov edx, edx
    bts rdx, 0x3f
    mov qword ptr [r8 + rax*0x8 + 0x8], rdx
    add rax, 0x2
    mov qword ptr [rcx + 0x8], rax
    ret
full:
    push rsi
    push rdx
    push rcx
    mov rdi, rcx
    call qword ptr [rcx + 0x18]
    pop rcx
    pop rdx
    pop rsi
    mov rax, qword ptr [rcx + 0x8]
    jmp put
"""
# (uc, type, address, size, value, user data); UC_MEM_READ = 16, UC_MEM_WRITE = 17
_MEM_SRC = """
    mov rax, qword ptr [r9 + 0x8]
    cmp rax, qword ptr [r9 + 0x10]
    jae full
put:
    mov r10, qword ptr [r9]
    mov qword ptr [r10 + rax*0x8], rdx
    mov ecx, ecx
    and esi, 0x1
    lea rcx, [rsi + rcx*0x2]
    mov qword ptr [r10 + rax*0x8 + 0x8], rcx
    add rax, 0x2
    mov qword ptr [r9 + 0x8], rax
    ret
full:
    push rdx
    push rcx
    push rsi
    push r9
    sub rsp, 0x8
    mov rdi, r9
    call qword ptr [r9 + 0x18]
    add rsp, 0x8
    pop r9
    pop rsi
    pop rcx
    pop rdx
    mov rax, qword ptr [r9 + 0x8]
    jmp put
"""
_native = None


def _native_page():
    """The two callbacks in one executable page (x86-64 hosts only); (page, block fn, mem fn)."""
    global _native
    if _native is None:
        ks = keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64)
        page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        page.write(bytes(ks.asm(_BLOCK_SRC, 0)[0]))
        page.seek(0x200)
        page.write(bytes(ks.asm(_MEM_SRC, 0)[0]))
        base = ctypes.addressof(ctypes.c_char.from_buffer(page))
        _native = (page, base, base + 0x200)
    return _native


class Stream:
    """What ran: blocks in execution order and the access records of each.

    Lists of ints (the model indexes them one by one):
      block_addr[b], block_size[b]   the b-th block executed
      rec_start[b]..rec_start[b+1]   its access records (len(rec_start) == blocks + 1)
      rec_addr[r], rec_meta[r]       address; size << 1 | is_write
    """

    def __init__(self, block_addr, block_size, rec_start, rec_addr, rec_meta):
        self.block_addr, self.block_size, self.rec_start = block_addr, block_size, rec_start
        self.rec_addr, self.rec_meta = rec_addr, rec_meta

    @classmethod
    def from_words(cls, words, keep=None, lead_block=None):
        """From the recorder's word pairs; keep(address) -> bool drops the other blocks and
        their records. lead_block (address, size): a block that was running when the words
        began; the records before the first block event are its."""
        w = np.asarray(words, dtype=np.uint64).reshape(-1, 2)
        if lead_block is not None:
            head = np.array([[lead_block[0], lead_block[1] | BLOCK_TAG]], dtype=np.uint64)
            w = np.concatenate([head, w])
        isb = (w[:, 1] >> np.uint64(63)).astype(bool)
        pos = np.flatnonzero(isb)
        nrec_before = pos - np.arange(len(pos))
        recs = w[~isb]
        addr = w[isb, 0]
        size = w[isb, 1] & np.uint64(0xFFFFFFFF)
        start = np.append(nrec_before, len(recs)).astype(np.int64)
        if len(start) and start[0]:
            recs = recs[start[0]:]          # accesses before the first block (none when flushed)
            start = start - start[0]
        if keep is not None and len(addr):
            k = np.array([keep(int(a)) for a in addr], dtype=bool)
            if not k.all():
                lens = np.diff(start)
                rec_keep = np.repeat(k, lens)
                recs = recs[rec_keep]
                addr, size, lens = addr[k], size[k], lens[k]
                start = np.append(0, np.cumsum(lens))
        return cls(addr.tolist(), size.tolist(), start.tolist(), recs[:, 0].tolist(), recs[:, 1].tolist())

    def __len__(self):
        return len(self.block_addr)

    def repeat(self, n):
        """The same execution n times in a row."""
        nb, nr = len(self.block_addr), len(self.rec_addr)
        starts = [s + k * nr for k in range(n) for s in self.rec_start[:nb]] + [n * nr]
        return Stream(self.block_addr * n, self.block_size * n, starts, self.rec_addr * n, self.rec_meta * n)

    def accesses(self):
        """[(address, size, is_write)] of every record, in order."""
        return [(a, m >> 1, bool(m & 1)) for a, m in zip(self.rec_addr, self.rec_meta)]

    def instructions(self, read_code):
        """Address of every instruction executed, in order (REP iterations merged into one)."""
        out = []
        for a, s in zip(self.block_addr, self.block_size):
            addrs = _block_addresses(read_code, a, s)
            if out and len(addrs) == 1 and out[-1] == a and _is_rep(read_code, a):
                continue
            out.extend(addrs)
        return out


_cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
_lite = {}


def _block_addresses(read_code, a, s):
    key = (a, s)
    if key not in _lite:
        _lite[key] = [i[0] for i in _cs.disasm_lite(read_code(a, s), a)]
    return _lite[key]


def _is_rep(read_code, a):
    for _, _, mn, _ in _cs.disasm_lite(read_code(a, 16), a, 1):
        return mn.startswith("rep")
    return False


class Recorder:
    """Records blocks and accesses of everything that runs on `uc` while active.

        with Recorder(uc) as rec:
            ...run...
        stream = rec.stream()

    keep, if given, keeps only some blocks (with their accesses), e.g. the
    allocator's code and not a driver loop around it: a function of the block's
    address, or a list of (start, end) address ranges.
    """

    def __init__(self, uc, keep=None, capacity_words=1 << 20):
        if capacity_words < 4 or capacity_words % 2:
            raise BadInput("the recording buffer needs an even number of words, at least 4")
        if keep is not None and not callable(keep):
            ranges = [(int(a), int(b)) for a, b in keep]
            keep = lambda addr: any(a <= addr < b for a, b in ranges)   # noqa: E731
        self.uc = uc
        self.keep = keep
        self._buf = np.zeros(capacity_words, dtype=np.uint64)
        self._ud = (ctypes.c_uint64 * 4)(self._buf.ctypes.data, 0, capacity_words, 0)
        self._chunks = []
        self._flush_cb = FLUSH_CB(self._flush)
        self._ud[3] = ctypes.cast(self._flush_cb, ctypes.c_void_p).value
        self._hooks = []

    def _flush(self, _ud):
        self._chunks.append(self._buf[:self._ud[1]].copy())
        self._ud[1] = 0

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        if self._hooks:
            return
        if platform.machine() in ("x86_64", "AMD64"):
            _, block_fn, mem_fn = _native_page()
            block_fn, mem_fn = ctypes.c_void_p(block_fn), ctypes.c_void_p(mem_fn)
        else:                                   # slower, same records
            buf, ud, flush = self._buf, self._ud, self._flush

            def on_block(_uc, addr, size, _u):
                if ud[1] >= ud[2]:
                    flush(None)
                i = ud[1]
                buf[i], buf[i + 1] = addr, size | BLOCK_TAG
                ud[1] = i + 2

            def on_mem(_uc, kind, addr, size, _v, _u):
                if ud[1] >= ud[2]:
                    flush(None)
                i = ud[1]
                buf[i], buf[i + 1] = addr, (size << 1) | (kind & 1)
                ud[1] = i + 2
            self._py = (CODE_CB(on_block), MEM_CB(on_mem))
            block_fn, mem_fn = self._py
        ud = ctypes.addressof(self._ud)
        for htype, fn in ((UC_HOOK_BLOCK, block_fn), (UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, mem_fn)):
            h = ctypes.c_size_t()
            err = uclib.uc_hook_add(self.uc._uch, ctypes.byref(h), htype, fn, ctypes.c_void_p(ud),
                                    ctypes.c_uint64(1), ctypes.c_uint64(0))
            if err:
                raise RuntimeError(f"uc_hook_add (recorder) failed with unicorn error {err}")
            self._hooks.append(h.value)
        self.uc.ctl_flush_tb()

    def stop(self):
        for h in self._hooks:
            uclib.uc_hook_del(self.uc._uch, ctypes.c_size_t(h))
        if self._hooks:
            self._hooks = []
            self.uc.ctl_flush_tb()

    def words(self):
        return np.concatenate(self._chunks + [self._buf[:self._ud[1]]])

    def mark(self):
        """A position in the recording, for stream(since=...)."""
        return sum(len(c) for c in self._chunks) + self._ud[1]

    def stream(self, since=0):
        return Stream.from_words(self.words()[since:], self.keep)

    def clear(self):
        self._chunks = []
        self._ud[1] = 0
