"""Instruction-by-instruction execution with a full record of each step.

Two ways, with the same records:
  - `Stepper.step()` runs one instruction per emu_start (count=1), for a caller that
    looks at the machine between instructions (`gomemu step` streaming, `Machine.step`);
  - `Stepper.record(limit)` (`Machine.trace`) runs the whole call in one emu_start with a
    code hook on every instruction, in host machine code (emu/uc_raw.py: StepRecorder):
    it stores each instruction's address and the registers as it starts (the previous
    one's results), so a step costs no Python until the records are built, in one pass.
Both collect each step's stores with a memory-write hook. Hooks only fire in code
translated after they were added, so the machine flushes unicorn's translations when a
run's mode (plain, step, record) differs from the last one's, and puts in or takes out
the hooks that mode runs with (StepHooks, one set per machine): consecutive recorded runs
(the chunks of one call, the next call's trace) share hooks and translations (deleting a
code hook invalidates every translation made while it existed). Under `step()` the block
counter sees each step as a block starting at that instruction; `record` leaves counting
as in an unstepped run.
"""

import ctypes
import gc
import weakref
from dataclasses import dataclass, field

import numpy as np

from unicorn import UC_HOOK_MEM_WRITE
from unicorn.x86_const import UC_X86_REG_RIP

from emu.machine import REG_NAMES
from emu.uc_raw import BatchRegs, StepRecorder, hook_add, hook_del

_STEP_REGS = [r for r in REG_NAMES if r != UC_X86_REG_RIP]
_STEP_NAMES = [REG_NAMES[r] for r in _STEP_REGS]
_STEP_NAME_ARRAY = np.array(_STEP_NAMES, dtype=object)
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


class StepHooks:
    """The hooks of one machine's stepped runs: a memory-write hook (step and record
    modes) and the StepRecorder (record mode). The machine calls set_mode when a run's
    mode differs from the last one's, before it flushes the translations; `sink` is the
    running Stepper's store callback. (Also the steppers' register reader: making one
    costs a tenth of a short trace.)"""

    def __init__(self, machine):
        self.m = machine
        self.sink = None
        self.recorder = StepRecorder(machine.uc, _STEP_REGS)
        self.batch = BatchRegs(machine.uc, _STEP_REGS)
        self._write_cb = MEM_CB(self._on_write)
        self._write_hook = None

    @classmethod
    def of(cls, machine):
        if machine.step_hooks is None:
            machine.step_hooks = cls(machine)
        return machine.step_hooks

    def _on_write(self, uc, access, addr, size, value, ud):
        self.sink(addr, size, value)

    def set_mode(self, mode):
        m = self.m
        if mode == "plain" and self._write_hook is not None:
            hook_del(m.uc, self._write_hook)
            self._write_hook = None
        elif mode != "plain" and self._write_hook is None:
            self._write_hook = hook_add(m.uc, UC_HOOK_MEM_WRITE, self._write_cb, 1, 0)
        if mode != "record" and self.recorder.handle is not None:
            self.recorder.remove()
        elif mode == "record" and self.recorder.handle is None:
            self.recorder.install()
            m.callout_hook_last()           # so a call-out's step has its entry registers


class Stepper:
    """Steps one call of a routine; `step()` returns a StepRecord, or None once it returned."""

    def __init__(self, machine, routine, args):
        self.m = machine
        self.pc = machine.prepare_call(routine, args)
        self.index = 0
        self._regs = None            # registers after the previous step
        self._writes = []
        self._callouts = []
        self._entries = _ENTRIES.setdefault(machine, {})
        self._hooks = StepHooks.of(machine)
        self._batch = self._hooks.batch
        self._recorder = None        # the StepRecorder while record() runs
        self._stop_after_callout = False
        machine.on_callout = self._on_callout
        machine.on_syscall = self._on_syscall
        self.done = False

    def _run(self, mode, pc, count=0):
        m = self.m
        m.stepping = mode                   # (the machine translates anew when the mode changes)
        self._hooks.sink = self._on_write
        try:
            m.run_from(pc, count=count)
        except BaseException:
            self.close()
            raise
        finally:
            m.stepping = None

    # Under record() a store, call-out or system call belongs to the last step recorded.
    def _on_write(self, addr, size, value):
        w = (addr, size, value & ((1 << (8 * size)) - 1))
        if self._recorder is None:
            self._writes.append(w)
        else:
            self._writes.append((self._recorder.steps - 1, w))

    def _on_callout(self, co):
        text = f"{co.symbol} ({co.models})"
        if self._recorder is None:
            self._callouts.append(text)
        else:
            self._callouts.append((self._recorder.steps - 1, text))
            if self._stop_after_callout:
                self._recorder.stop_next()

    def _on_syscall(self, rec):
        if self._recorder is not None:
            self._syscalls.append((self._recorder.steps - 1, str(rec)))

    def close(self):
        if not self.done:
            self._recorder = self._hooks.sink = None
            self.m.on_callout = self.m.on_syscall = None
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
        self._run("step", pc, count=1)
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
        m = self.m
        stops = (m.exit_addr, m.goexit_pc)
        rec = self._recorder = self._hooks.recorder
        rec.start(limit, stops)
        self._stop_after_callout = stop_after_callout
        self._writes, self._callouts, self._syscalls = [], [], []
        if self.pc not in stops:
            self._run("record", self.pc)
        self.pc = m.pc
        n = rec.steps
        rec.rows[n] = self._batch.read()
        self._recorder = None
        out = self._records(rec.pcs[:n].tolist(), rec.rows[:n + 1])
        self.index += len(out)
        self._regs = rec.rows[n].tolist()
        rec.release()
        finished = self.pc in stops
        if finished:
            self.close()
        return out, finished

    def _records(self, pcs, regs):
        """StepRecords from record()'s steps: the registers each step changed come from
        comparing all rows at once; stores, call-outs and system calls go to their step.
        The collector waits meanwhile: the records and their fields are some five
        containers a step, which made it run several full collections per long trace."""
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._build(pcs, regs)
        finally:
            if enabled:
                gc.enable()

    def _build(self, pcs, regs):
        n = len(pcs)
        rows, cols = np.nonzero(regs[1:] != regs[:-1])
        changed = [{} for _ in range(n)]
        for i, name, a, b in zip(rows.tolist(), _STEP_NAME_ARRAY[cols].tolist(), regs[rows, cols].tolist(),
                                 regs[rows + 1, cols].tolist()):
            changed[i][name] = (a, b)
        stores, calls, sys = ([[] for _ in range(n)] for _ in range(3))
        for per_step, events in ((stores, self._writes), (calls, self._callouts), (sys, self._syscalls)):
            for i, e in events:
                per_step[i].append(e)
        entries, entry, out, index = self._entries, self._entry, [], self.index
        for i, pc in enumerate(pcs):
            code, dis, src, models, where = entries.get(pc) or entry(pc)
            out.append(StepRecord(index + i, pc, where, code, dis, changed[i], stores[i], src, models,
                                  calls[i], sys[i]))
        return out
