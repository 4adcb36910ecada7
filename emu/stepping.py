"""Instruction-by-instruction execution with a full record of each step.

Stepping runs one instruction per emu_start (count=1) and is the only mode
with per-instruction Python hooks: a memory-write hook collects the stores
of each step. Entering and leaving stepping flushes unicorn's translation
cache, because hooks only fire in code translated after they were added.
"""

from dataclasses import dataclass, field

from unicorn import UC_HOOK_MEM_WRITE
from unicorn.x86_const import UC_X86_REG_RIP

from emu import layout as L
from emu.machine import REG_NAMES
from emu.uc_raw import BatchRegs

_STEP_REGS = [r for r in REG_NAMES if r != UC_X86_REG_RIP]


@dataclass
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
        self._hook = machine.uc.hook_add(UC_HOOK_MEM_WRITE, self._on_write)
        machine.on_callout = lambda co: self._callouts.append(f"{co.symbol} ({co.models})")
        machine.uc.ctl_flush_tb()
        self.done = False

    def _on_write(self, uc, access, addr, size, value, ud):
        self._writes.append((addr, size, value & ((1 << (8 * size)) - 1)))

    def close(self):
        if self._hook is not None:
            self.m.uc.hook_del(self._hook)
            self._hook = None
            self.m.on_callout = None
            self.m.uc.ctl_flush_tb()
        self.done = True

    def step(self):
        if self.done:
            return None
        m, pc = self.m, self.pc
        if pc in (m.exit_addr, m.goexit_pc):
            self.close()
            return None
        entry = m.text.entry_at(pc)
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
        regs = {REG_NAMES[r]: (a, b) for r, a, b in zip(_STEP_REGS, before, after) if a != b}
        if entry is not None:
            code, dis, src, models = entry.code, entry.disasm, f"{entry.path}:{entry.lineno}: {entry.source}", entry.models
        else:
            code = m.mem.read(pc, 1)
            dis, src, models = m.disasm_at(pc), "", ""
        rec = StepRecord(self.index, pc, m.where(pc), code, dis, regs, self._writes, src, models,
                         self._callouts, [str(s) for s in m.kernel.log[nsys:]])
        self.index += 1
        return rec

    def __iter__(self):
        while (rec := self.step()) is not None:
            yield rec
