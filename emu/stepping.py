"""Instruction-by-instruction execution with a full record of each step.

Two ways, with the same records:
  - `Stepper.step()` runs one instruction per emu_start (count=1), for a caller that
    looks at the machine between instructions (`gomemu step` streaming, `Machine.step`);
  - `Stepper.record(limit)` (`Machine.trace`) runs the whole call in one emu_start with a
    code hook on every instruction: the hook reads the registers as each instruction
    starts (the previous one's results), so a step costs a callback and a register read
    instead of an emu_start.
Both collect each step's stores with a memory-write hook. Entering and leaving stepping
flushes unicorn's translation cache, because hooks only fire in code translated after
they were added. Under `step()` the block counter sees each step as a block starting at
that instruction; `record` leaves counting as in an unstepped run.
"""

import ctypes
import weakref
from dataclasses import dataclass, field

import numpy as np

from unicorn import UC_HOOK_CODE, UC_HOOK_MEM_WRITE
from unicorn.unicorn_py3.unicorn import uclib
from unicorn.x86_const import UC_X86_REG_RIP

from emu.machine import REG_NAMES
from emu.uc_raw import CODE_CB, BatchRegs, hook_add, hook_del

_STEP_REGS = [r for r in REG_NAMES if r != UC_X86_REG_RIP]
_STEP_NAMES = [REG_NAMES[r] for r in _STEP_REGS]
# Host callback of UC_HOOK_MEM_WRITE: (uc, access, address, size, value, user_data).
MEM_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64, ctypes.c_int, ctypes.c_int64,
                          ctypes.c_void_p)
# Per machine: pc -> (bytes, disassembly, source, models, where) of listed instructions,
# which never change once loaded (records of repeated paths look each pc up once).
_ENTRIES = weakref.WeakKeyDictionary()


@dataclass(slots=True)
class StepRecord:
    index: int
    address: int
    where: str                      # symbol+offset
    code: bytes
    disasm: str
    regs: dict                      # register -> (before, after), changed ones only
    mem_writes: list                # (address, size, value) in program order
    source: str                     # file:line and the line of our .s file
    models: str                     # the Go code the instruction stands for
    callouts: list = field(default_factory=list)   # Python slow paths entered by this step
    syscalls: list = field(default_factory=list)   # system calls made by this step

    def format(self):
        head = f"{self.index:5d}  {self.address:#x}  {self.where:<42} {self.code.hex():<22} {self.disasm}"
        lines = [head]
        if self.models:
            lines.append(f"{'':7}go: {self.models}")
        changes = [f"{name}={new:#x}" for name, (_, new) in self.regs.items()]
        if changes:
            lines.append(f"{'':7}regs: " + " ".join(changes))
        for addr, size, value in self.mem_writes:
            lines.append(f"{'':7}mem: [{addr:#x}] <- {value:#0{2 + 2 * size}x} ({size} bytes)")
        for c in self.callouts:
            lines.append(f"{'':7}call-out into Python: {c}")
        for sc in self.syscalls:
            lines.append(f"{'':7}syscall: {sc}")
        return "\n".join(lines)

    def as_dict(self):
        return {"index": self.index, "address": self.address, "where": self.where, "bytes": self.code.hex(),
                "disasm": self.disasm, "regs": {k: [a, b] for k, (a, b) in self.regs.items()},
                "mem_writes": [list(w) for w in self.mem_writes], "source": self.source,
                "models": self.models, "callouts": self.callouts, "syscalls": self.syscalls}


class Stepper:
    """Steps one call of a routine; `step()` returns a StepRecord, or None once it returned."""

    def __init__(self, machine, routine, args):
        self.m = machine
        self.pc = machine.prepare_call(routine, args)
        self.index = 0
        self._batch = BatchRegs(machine.uc, _STEP_REGS)
        self._regs = None            # registers after the previous step
        self._writes = []
        self._callouts = []
        self._entries = _ENTRIES.setdefault(machine, {})
        self._write_cb = MEM_CB(self._on_write)
        self._hook = hook_add(machine.uc, UC_HOOK_MEM_WRITE, self._write_cb, 1, 0)
        self._code_hook = None
        machine.on_callout = lambda co: self._callouts.append(f"{co.symbol} ({co.models})")
        machine.uc.ctl_flush_tb()
        self.done = False

    def _on_write(self, uc, access, addr, size, value, ud):
        self._writes.append((addr, size, value & ((1 << (8 * size)) - 1)))

    def close(self):
        if self._hook is not None:
            hook_del(self.m.uc, self._hook)
            if self._code_hook is not None:
                hook_del(self.m.uc, self._code_hook)
                self._code_hook = None
            self._hook = None
            self.m.on_callout = None
            self.m.uc.ctl_flush_tb()
        self.done = True

    def _entry(self, pc):
        """(bytes, disassembly, source, models, where) of the instruction at pc."""
        e = self._entries.get(pc)
        if e is not None:
            return e
        m = self.m
        entry = m.text.entry_at(pc)
        if entry is None:                   # not in a listing (the call-out page): read it now
            return m.mem.read(pc, 1), m.disasm_at(pc), "", "", m.where(pc)
        e = self._entries[pc] = (entry.code, entry.disasm, f"{entry.path}:{entry.lineno}: {entry.source}",
                                 entry.models, m.where(pc))
        return e

    def _record(self, index, pc, before, after, writes, callouts, syscalls):
        code, dis, src, models, where = self._entry(pc)
        regs = {name: (a, b) for name, a, b in zip(_STEP_NAMES, before, after) if a != b}
        return StepRecord(index, pc, where, code, dis, regs, writes, src, models, callouts,
                          [str(s) for s in syscalls])

    def step(self):
        if self.done:
            return None
        m, pc = self.m, self.pc
        if pc in (m.exit_addr, m.goexit_pc):
            self.close()
            return None
        before = self._regs or self._batch.read()
        nsys = len(m.kernel.log)
        self._writes, self._callouts = [], []
        try:
            m.run_from(pc, count=1)
        except BaseException:
            self.close()
            raise
        after = self._regs = self._batch.read()
        self.pc = m.pc
        rec = self._record(self.index, pc, before, after, self._writes, self._callouts, m.kernel.log[nsys:])
        self.index += 1
        return rec

    CHUNK = 4096          # steps __iter__ records per emu_start

    def __iter__(self):
        """Every remaining step, recorded CHUNK at a time (record): the machine runs ahead
        of the consumer by at most a chunk, and never past a step that entered a call-out,
        so a record with call-outs is seen with the slow path's effects just made."""
        while not self.done:
            out, _ = self.record(self.CHUNK, stop_after_callout=True)
            yield from out

    def record(self, limit, stop_after_callout=False):
        """Run the rest of the call in one emu_start, recording every step: (records,
        finished). After `limit` records (or, with stop_after_callout, after a step that
        entered a call-out) the call is stopped before its next instruction (finished is
        False; the caller decides how it goes on)."""
        m, read, log = self.m, self._batch.read_bytes, self.m.kernel.log
        stops = (m.exit_addr, m.goexit_pc)
        uch = m.uc._uch
        # per step: its address, the registers as it starts (the previous step's results),
        # its stores, its call-outs, the length of the syscall log as it starts
        pcs, snaps, stores, calls, nlog = [], [], [], [], []

        def on_code(_uc, addr, _size, _ud):
            if addr in stops or len(pcs) == limit or stop_after_callout and calls and calls[-1]:
                uclib.uc_emu_stop(uch)        # leaves RIP here, the instruction not run
                return
            snaps.append(read())
            pcs.append(addr)
            self._writes = w = []
            stores.append(w)
            self._callouts = c = []
            calls.append(c)
            nlog.append(len(log))

        cb = CODE_CB(on_code)
        self._code_hook = hook_add(m.uc, UC_HOOK_CODE, cb, 1, 0)
        m.callout_hook_last()               # so on_code sees a call-out's entry registers
        m.uc.ctl_flush_tb()
        if self.pc not in stops:
            try:
                m.run_from(self.pc)
            except BaseException:
                self.close()
                raise
        self.pc = m.pc
        snaps.append(read())
        nlog.append(len(log))
        hook_del(m.uc, self._code_hook)
        self._code_hook = None
        out = self._records(pcs, snaps, stores, calls, nlog)
        self.index += len(out)
        self._regs = np.frombuffer(snaps[-1], dtype="<u8").tolist()
        finished = self.pc in stops
        if finished:
            self.close()
        return out, finished

    def _records(self, pcs, snaps, stores, calls, nlog):
        """StepRecords from record()'s raw steps: the registers each step changed come
        from comparing all snapshots at once."""
        regs = np.frombuffer(b"".join(snaps), dtype="<u8").reshape(len(snaps), len(_STEP_REGS))
        rows, cols = np.nonzero(regs[1:] != regs[:-1])
        vals = regs.tolist()
        changed = [{} for _ in pcs]
        for i, c in zip(rows.tolist(), cols.tolist()):
            changed[i][_STEP_NAMES[c]] = (vals[i][c], vals[i + 1][c])
        log, entry, out = self.m.kernel.log, self._entry, []
        for i, pc in enumerate(pcs):
            code, dis, src, models, where = entry(pc)
            n0, n1 = nlog[i], nlog[i + 1]
            out.append(StepRecord(self.index + i, pc, where, code, dis, changed[i], stores[i], src, models,
                                  calls[i], [str(s) for s in log[n0:n1]] if n1 > n0 else []))
        return out
