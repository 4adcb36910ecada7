"""RDTSC and RDTSCP inside the emulator return a value from Python.

unicorn 2.1.4's core can hook both instructions (UC_HOOK_INSN with
UC_X86_INS_RDTSC / UC_X86_INS_RDTSCP; the callback returns 1 to skip the
instruction's own work and sets EDX:EAX itself), but the Python binding
refuses that hook type, so this goes through the core API with ctypes. With
`ModelClock` as the source, code that times itself sees modelled cycles.
Like every hook, it fires only in code translated after it was added: add it
before the code first runs (or flush the translation cache).
"""

import ctypes

from unicorn import UC_HOOK_INSN
from unicorn.x86_const import UC_X86_INS_RDTSC, UC_X86_INS_RDTSCP, UC_X86_REG_RAX, UC_X86_REG_RDX

from emu.uc_raw import Regs, hook_add, hook_del

INSN_INT_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


class TscHook:
    """Make RDTSC/RDTSCP on `uc` return source() (a 64-bit count); close() removes it.

    RDTSCP's ECX (IA32_TSC_AUX) is left as it was. An exception in source stops the
    emulation (unicorn cannot carry it) and is re-raised by the next check()."""

    def __init__(self, uc, source):
        self.uc, self.source = uc, source
        self.error = None
        self._regs = Regs(uc)
        self._cb = INSN_INT_CB(self._on_rdtsc)
        self._handles = [hook_add(uc, UC_HOOK_INSN, self._cb, 1, 0, ins)
                         for ins in (UC_X86_INS_RDTSC, UC_X86_INS_RDTSCP)]
        uc.ctl_flush_tb()

    def _on_rdtsc(self, _uc, _ud):
        try:
            v = int(self.source()) & (1 << 64) - 1
        except BaseException as e:       # ctypes would swallow it
            self.error = e
            self.uc.emu_stop()
            return 1
        self._regs.write(UC_X86_REG_RAX, v & 0xFFFFFFFF)
        self._regs.write(UC_X86_REG_RDX, v >> 32)
        return 1

    def check(self):
        if self.error is not None:
            e, self.error = self.error, None
            raise e

    def close(self):
        for h in self._handles:
            hook_del(self.uc, h)
        self._handles = []
        self.uc.ctl_flush_tb()


class ModelClock:
    """A TscHook source: the modelled cycle count of what ran so far.

    At each RDTSC it models the blocks recorded since the previous call; the block
    running the RDTSC is modelled up to the RDTSC (the rest, with the RDTSC, next
    time), so the value is the cycle at which everything before it retired.
    `base` is added (a TSC value to start from)."""

    def __init__(self, recorder, model, pc_reader, base=0):
        self.rec, self.model, self.pc, self.base = recorder, model, pc_reader, base
        self._mark = 0
        self._pending = None          # (address, size) of the rest of a block split at an RDTSC
        self.cycles = 0

    def __call__(self):
        from emu.timing.recorder import Stream
        words = self.rec.words()
        s = Stream.from_words(words[self._mark:], lead_block=self._pending)
        self._mark, self._pending = len(words), None
        pc = self.pc()
        if s.block_addr and s.block_addr[-1] <= pc < s.block_addr[-1] + s.block_size[-1]:
            a, size = s.block_addr[-1], s.block_size[-1]
            self._pending = (pc, a + size - pc)        # with the RDTSC: modelled next time
            if pc == a:
                s.block_addr.pop()
                s.block_size.pop()
                s.rec_start.pop()
            else:
                s.block_size[-1] = pc - a
        self.cycles += self.model.run(s).cycles
        return self.base + self.cycles
