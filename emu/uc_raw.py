"""Direct ctypes access to libunicorn for the paths that run per call-out.

The Python binding costs ~1.9 us per register access and ~0.5 us per hook
call; raw `uc_reg_read` and raw ctypes callbacks cost a quarter of that
(emulator-facts.md). Everything here works on the binding's own engine
handle, so the binding stays usable for everything that is not hot.

`BlockCounter` is a block hook whose callback is a few bytes of host x86-64
machine code (assembled by keystone into an executable page): it counts how
often each block starts and records its size, at a few nanoseconds per block,
so exact instruction counts cost almost nothing. Python later turns
(start, size, count) into instructions with the assembler's listing.
"""

import ctypes
import mmap
import platform

import keystone
import numpy as np
from unicorn import UC_HOOK_BLOCK, UC_HOOK_CODE
from unicorn.unicorn_py3.unicorn import uclib

CODE_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32, ctypes.c_void_p)
INSN_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)

uclib.uc_hook_add.restype = ctypes.c_int
# uc_reg_read_batch with every pointer passed as an address: the binding's prototype
# (POINTER(c_int), POINTER(c_void_p)) checks the arrays' types on every call (~0.35 us)
REG_READ_BATCH = ctypes.cast(uclib.uc_reg_read_batch, ctypes.c_void_p).value
UC_EMU_STOP = ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p).value    # (for native callbacks)
_reg_read_batch = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                   ctypes.c_int)(REG_READ_BATCH)


class Regs:
    """Fast register access for one engine."""

    def __init__(self, uc):
        self._h = uc._uch
        self._v = ctypes.c_uint64()
        self._p = ctypes.byref(self._v)
        self._read = uclib.uc_reg_read
        self._write = uclib.uc_reg_write
        self._zero128 = (ctypes.c_uint8 * 16)()

    def read(self, reg):
        self._read(self._h, reg, self._p)
        return self._v.value

    def write(self, reg, value):
        self._v.value = value & 0xFFFFFFFFFFFFFFFF
        self._write(self._h, reg, self._p)

    def clear128(self, reg):
        """Zero a 128-bit register (XMM): the binding's reg_write takes ~10x longer."""
        self._write(self._h, reg, self._zero128)


class BatchRegs:
    """Reads a fixed list of registers in one call (for stepping)."""

    def __init__(self, uc, reg_ids):
        self._h = uc._uch.value
        n = max(len(reg_ids), 1)
        self._n = n
        self._ids = (ctypes.c_int * n)(*reg_ids)
        self._vals = (ctypes.c_uint64 * n)()
        base = ctypes.addressof(self._vals)
        self._ptrs = (ctypes.c_void_p * n)(*[base + 8 * i for i in range(n)])
        self._ids_at, self._ptrs_at = ctypes.addressof(self._ids), ctypes.addressof(self._ptrs)
        self._len = len(reg_ids)

    def read(self):
        if self._len:
            _reg_read_batch(self._h, self._ids_at, self._ptrs_at, self._n)
        return self._vals[:self._len]


def hook_add(uc, htype, cfunc, begin, end, extra=None):
    """uc_hook_add with a ready ctypes callback; returns the hook handle."""
    h = ctypes.c_size_t()
    if extra is None:
        err = uclib.uc_hook_add(uc._uch, ctypes.byref(h), htype, ctypes.cast(cfunc, ctypes.c_void_p),
                                None, ctypes.c_uint64(begin), ctypes.c_uint64(end))
    else:
        err = uclib.uc_hook_add(uc._uch, ctypes.byref(h), htype, ctypes.cast(cfunc, ctypes.c_void_p),
                                None, ctypes.c_uint64(begin), ctypes.c_uint64(end), ctypes.c_int(extra))
    if err:
        raise RuntimeError(f"uc_hook_add failed with unicorn error {err}")
    return h.value


def hook_del(uc, handle):
    uclib.uc_hook_del(uc._uch, ctypes.c_size_t(handle))


# Host callback: (uc, address, size, user_data), System V ABI.
# user_data -> {base, span, counts*, sizes*, budget, uc_emu_stop, touched*, ntouched,
# prefix*, instructions, stop}. A block that runs for the first time appends its offset to
# `touched`, so snapshots cost the number of distinct blocks, not the size of the text;
# prefix[i] counts the instruction starts below base+i, so each block adds its
# instructions to a running total (the modeled clock reads it in O(1)).
# When the block budget runs out, or `stop` is set (1), it tail-calls uc_emu_stop(uc) (uc
# is in rdi), in the second case after setting `stop` to 2: stopped as asked. Another
# thread (emu/interrupts.py) sets 1 only while it is 0 and the callback writes it only
# after reading 1, so unlike a store into the budget, which the callback's decrement can
# overwrite, a request cannot be lost.
_COUNTER_SRC = """
    mov rax, rsi
    sub rax, qword ptr [rcx]
    cmp rax, qword ptr [rcx + 0x8]
    jae done
    mov r8, qword ptr [rcx + 0x10]
    inc qword ptr [r8 + rax*0x8]
    cmp qword ptr [r8 + rax*0x8], 0x1
    jne sized
    mov r8, qword ptr [rcx + 0x30]
    mov r9, qword ptr [rcx + 0x38]
    mov qword ptr [r8 + r9*0x8], rax
    inc qword ptr [rcx + 0x38]
sized:
    mov r8, qword ptr [rcx + 0x18]
    mov dword ptr [r8 + rax*0x4], edx
    mov r8, qword ptr [rcx + 0x40]
    lea r9, [rax + rdx]
    mov r10d, dword ptr [r8 + r9*0x4]
    sub r10d, dword ptr [r8 + rax*0x4]
    add qword ptr [rcx + 0x48], r10
    dec qword ptr [rcx + 0x20]
    jz stop
    cmp qword ptr [rcx + 0x50], 0
    jne requested
done:
    ret
requested:
    mov qword ptr [rcx + 0x50], 0x2
stop:
    mov rax, qword ptr [rcx + 0x28]
    jmp rax
"""


class BlockCounter:
    """Counts block executions in [base, base+span) with a native callback.

    counts[off] is how many times a block starting at base+off ran, sizes[off]
    its byte length; touched[:ntouched] lists the offsets of every block that
    ever ran, in first-run order. On hosts that are not x86-64 a raw ctypes
    callback does the same work, slower.
    """

    def __init__(self, uc, base, span, budget_stop):
        self.base, self.span = base, span
        self.counts = np.zeros(span, dtype=np.uint64)
        self.sizes = np.zeros(span, dtype=np.uint32)
        self.touched = np.zeros(span, dtype=np.int64)      # calloc'd: pages appear as blocks run
        self.starts = np.zeros(span, dtype=np.uint8)       # 1 where an instruction starts
        self.prefix = np.zeros(span + 1, dtype=np.uint32)  # instruction starts below each offset
        self._ud = (ctypes.c_uint64 * 11)(base, span, self.counts.ctypes.data, self.sizes.ctypes.data,
                                          0, budget_stop, self.touched.ctypes.data, 0,
                                          self.prefix.ctypes.data, 0, 0)
        if platform.machine() in ("x86_64", "AMD64"):
            code = bytes(keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64).asm(_COUNTER_SRC, 0)[0])
            self._page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
            self._page.write(code)
            fn = ctypes.c_void_p(ctypes.addressof(ctypes.c_char.from_buffer(self._page)))
        else:
            counts, sizes, touched, ud, prefix = self.counts, self.sizes, self.touched, self._ud, self.prefix

            def py_cb(uc_h, addr, size, _ud):
                off = addr - base
                if 0 <= off < span:
                    counts[off] += 1
                    if counts[off] == 1:
                        touched[ud[7]] = off
                        ud[7] += 1
                    sizes[off] = size
                    ud[9] += int(prefix[off + size]) - int(prefix[off])
                    ud[4] -= 1
                    if ud[4] == 0:
                        uclib.uc_emu_stop(uc_h)
                    elif ud[10]:
                        ud[10] = 2
                        uclib.uc_emu_stop(uc_h)
            self._pycb = CODE_CB(py_cb)
            fn = self._pycb
        h = ctypes.c_size_t()
        err = uclib.uc_hook_add(uc._uch, ctypes.byref(h), UC_HOOK_BLOCK, fn, ctypes.addressof(self._ud),
                                ctypes.c_uint64(base), ctypes.c_uint64(base + span - 1))
        if err:
            raise RuntimeError(f"uc_hook_add(block counter) failed with unicorn error {err}")
        self.handle = h.value

    def set_budget(self, blocks):
        self._ud[4] = blocks

    def request_stop(self):
        """Stop the CPU at the next counted block start, that block counted (safe from another
        thread; emu/interrupts.py), unless its budget stops it there first."""
        if self._ud[10] == 0:
            self._ud[10] = 1

    def stopped_as_requested(self):
        """The last run stopped at a request_stop (and not at the end of its budget)."""
        return self._ud[10] == 2

    def clear_stop(self):
        self._ud[10] = 0

    def budget_exhausted(self):
        return self._ud[4] == 0

    def uncount(self, addr):
        """Take back the execution of the block at addr that was just counted (it stopped
        before its first instruction ran, and will run again)."""
        off = addr - self.base
        if self.counts[off] == 1:          # its first run: it is the last block touched
            self._ud[7] -= 1
        self.counts[off] -= 1
        self._ud[4] += 1
        self._ud[9] -= int(self.prefix[off + int(self.sizes[off])]) - int(self.prefix[off])

    def mark_instructions(self, addrs, lo=None, hi=None):
        """Instructions start at these addresses (and nowhere else in [lo, hi), when given):
        the running total counts them from now on."""
        self.mark_instruction_groups([(addrs, lo, hi)])

    def mark_instruction_groups(self, groups):
        """mark_instructions for each (addrs, lo, hi) in turn, the running total's prefix
        sums computed once at the end (a pass over the whole counted span)."""
        for addrs, lo, hi in groups:
            if lo is not None:
                self.starts[lo - self.base:hi - self.base] = 0
            offs = np.asarray(addrs, dtype=np.int64) - self.base
            self.starts[offs[(offs >= 0) & (offs < self.span)]] = 1
        np.cumsum(self.starts, out=self.prefix[1:], dtype=np.uint32)

    def instructions(self):
        """Instructions of every counted block run so far."""
        return int(self._ud[9])

    def snapshot(self):
        """The counts of every block that has run so far (cheap: distinct blocks only)."""
        return self.counts[self.touched[:self._ud[7]]]

    def since(self, snap):
        """{offset: executions} of the blocks that ran since `snap`."""
        offs = self.touched[:self._ud[7]]
        d = self.counts[offs].copy()
        d[:len(snap)] -= snap
        nz = np.flatnonzero(d)
        return dict(zip(offs[nz].tolist(), d[nz].tolist()))


# Host callback of UC_HOOK_CODE for recorded stepping, (uc, address, size, user_data):
# user_data -> {steps, limit, stop_next, stop_a, stop_b, pcs*, rows*, nregs, ids*,
# ptrs* (into scratch), scratch*, uc_reg_read_batch, uc_emu_stop}. At an instruction's
# start it stops the CPU (tail-calling uc_emu_stop, RIP left there) at stop_a or stop_b,
# after `limit` steps, or when stop_next is set; otherwise it appends the address to pcs
# and the registers to rows (row `steps`: the state this instruction starts from).
_RECORDER_SRC = """
    push rbx
    push r12
    push r13
    mov rbx, rcx
    mov r12, rdi
    cmp rsi, qword ptr [rbx + 0x18]
    je stop
    cmp rsi, qword ptr [rbx + 0x20]
    je stop
    cmp qword ptr [rbx + 0x10], 0
    jne stop
    mov r13, qword ptr [rbx]
    cmp r13, qword ptr [rbx + 0x8]
    jae stop
    mov rax, qword ptr [rbx + 0x28]
    mov qword ptr [rax + r13*8], rsi
    mov rdi, r12
    mov rsi, qword ptr [rbx + 0x40]
    mov rdx, qword ptr [rbx + 0x48]
    mov rcx, qword ptr [rbx + 0x38]
    call qword ptr [rbx + 0x58]
    mov rcx, qword ptr [rbx + 0x38]
    mov rax, r13
    imul rax, rcx
    mov rdi, qword ptr [rbx + 0x30]
    lea rdi, [rdi + rax*8]
    mov rsi, qword ptr [rbx + 0x50]
    rep movsq
    inc qword ptr [rbx]
    pop r13
    pop r12
    pop rbx
    ret
stop:
    mov rax, qword ptr [rbx + 0x60]
    mov rdi, r12
    pop r13
    pop r12
    pop rbx
    jmp rax
"""
_recorder_code = None


class StepRecorder:
    """A code hook on every instruction that records, in host machine code, each step's
    address and the registers it starts from (emu/stepping.py: Stepper.record), so a step
    costs no Python; rows[steps] is filled by the caller once the CPU stopped. It stays
    installed (install/remove) across recorded runs, each begun with start(): deleting a
    code hook invalidates every translation made while it existed. On hosts that are not
    x86-64 a ctypes callback does the same, slower."""

    KEEP_ROWS = 1 << 16     # buffers that recorded more are given back to the host (release)

    def __init__(self, uc, reg_ids):
        global _recorder_code
        n = len(reg_ids)
        self.uc, self.n, self.handle = uc, n, None
        self.pcs = self.rows = None
        self._ids = (ctypes.c_int * n)(*reg_ids)
        self._scratch = (ctypes.c_uint64 * n)()
        base = ctypes.addressof(self._scratch)
        self._ptrs = (ctypes.c_void_p * n)(*[base + 8 * i for i in range(n)])
        self._ud = (ctypes.c_uint64 * 13)(0, 0, 0, 0, 0, 0, 0, n, ctypes.addressof(self._ids),
                                          ctypes.addressof(self._ptrs), base, REG_READ_BATCH, UC_EMU_STOP)
        if platform.machine() in ("x86_64", "AMD64"):
            if _recorder_code is None:
                code = bytes(keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64).asm(_RECORDER_SRC, 0)[0])
                page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
                page.write(code)
                _recorder_code = (page, ctypes.addressof(ctypes.c_char.from_buffer(page)))
            self._fn = ctypes.c_void_p(_recorder_code[1])
        else:
            ud, batch = self._ud, BatchRegs(uc, reg_ids)

            def py_cb(uc_h, addr, _size, _ud):
                i = ud[0]
                if addr in (ud[3], ud[4]) or ud[2] or i >= ud[1]:
                    uclib.uc_emu_stop(uc_h)
                    return
                self.pcs[i] = addr
                self.rows[i] = batch.read()
                ud[0] = i + 1
            self._fn = CODE_CB(py_cb)

    def start(self, limit, stops):
        """Record from the next instruction on: at most `limit` steps, stopping before
        either address of `stops`."""
        if self.pcs is None or len(self.pcs) < limit:
            self.pcs = self.rows = None                         # (the old ones freed first)
            self.pcs = np.empty(limit, dtype=np.uint64)         # (only the rows written are read)
            self.rows = np.empty((limit + 1, self.n), dtype=np.uint64)
            self._ud[5], self._ud[6] = self.pcs.ctypes.data, self.rows.ctypes.data
        self._ud[0:5] = (0, limit, 0, stops[0], stops[1])

    def release(self):
        """Once the records are built: the buffers go back to the host if the run filled
        many of their pages (the next start makes new ones)."""
        if self._ud[0] > self.KEEP_ROWS:
            self.pcs = self.rows = None

    def install(self):
        h = ctypes.c_size_t()
        err = uclib.uc_hook_add(self.uc._uch, ctypes.byref(h), UC_HOOK_CODE, self._fn, ctypes.addressof(self._ud),
                                ctypes.c_uint64(1), ctypes.c_uint64(0))
        if err:
            raise RuntimeError(f"uc_hook_add(step recorder) failed with unicorn error {err}")
        self.handle = h.value

    def remove(self):
        hook_del(self.uc, self.handle)
        self.handle = None

    @property
    def steps(self):
        return self._ud[0]

    def stop_next(self):
        """Stop before the next instruction starts."""
        self._ud[2] = 1
