"""The emulated machine: an x86-64 CPU (unicorn) running Go's allocator.

A `Machine` maps the memory of a linux/amd64 Go process (emu/layout.py),
assembles the routines in asm/ into its text segment, boots the runtime's
data (emu/boot.py) and runs routines with Go's register ABI: arguments in
AX, BX, CX, DI, SI, R8..R11, the current g in R14 and at -8(FS), X15 zero.

Python is entered only at three kinds of places, all hooked before the first
instruction runs (unicorn ignores hooks added to code it already translated):
  - the call-out page (emu/callouts.py), a code hook limited to that page;
  - the SYSCALL instruction (emu/syscalls.py);
  - faults (unmapped or protected memory, invalid instructions).
Instruction counting is a block hook whose callback is native code
(emu/uc_raw.py), so it is always on and exact.
"""

import ctypes
from dataclasses import dataclass, field

import capstone
import numpy as np
from unicorn import (UC_ARCH_X86, UC_ERR_FETCH_PROT, UC_ERR_FETCH_UNMAPPED, UC_ERR_INSN_INVALID,
                     UC_ERR_READ_PROT, UC_ERR_READ_UNMAPPED, UC_ERR_WRITE_PROT, UC_ERR_WRITE_UNMAPPED,
                     UC_HOOK_CODE, UC_HOOK_INSN, UC_HOOK_MEM_INVALID, UC_MODE_64, Uc, UcError)
from unicorn.x86_const import (UC_X86_INS_SYSCALL, UC_X86_REG_FS_BASE, UC_X86_REG_R8, UC_X86_REG_R9,
                               UC_X86_REG_R10, UC_X86_REG_R11, UC_X86_REG_R12, UC_X86_REG_R13,
                               UC_X86_REG_R14, UC_X86_REG_R15, UC_X86_REG_RAX, UC_X86_REG_RBP,
                               UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDI, UC_X86_REG_RDX,
                               UC_X86_REG_RFLAGS, UC_X86_REG_RIP, UC_X86_REG_RSI, UC_X86_REG_RSP,
                               UC_X86_REG_XMM15)
from unicorn.unicorn_py3.unicorn import uclib

from asm.assembler import Text, assemble, routine_sources
from emu import layout as L
from emu.boot import Runtime
from emu.callouts import CALLOUTS, THROW_CONSTANTS
from emu.errors import BadInput, EmulationFault, GomemuError
from emu.memory import Memory
from emu.syscalls import Kernel
from emu.uc_raw import CODE_CB, INSN_CB, BatchRegs, BlockCounter, Regs, hook_add
from runtime_model import sizeclasses as sc

# Go's ABIInternal integer argument and result registers, in order.
ABI_INT_REGS = [UC_X86_REG_RAX, UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDI, UC_X86_REG_RSI,
                UC_X86_REG_R8, UC_X86_REG_R9, UC_X86_REG_R10, UC_X86_REG_R11]
REG_NAMES = {UC_X86_REG_RAX: "rax", UC_X86_REG_RBX: "rbx", UC_X86_REG_RCX: "rcx", UC_X86_REG_RDX: "rdx",
             UC_X86_REG_RSI: "rsi", UC_X86_REG_RDI: "rdi", UC_X86_REG_RBP: "rbp", UC_X86_REG_RSP: "rsp",
             UC_X86_REG_R8: "r8", UC_X86_REG_R9: "r9", UC_X86_REG_R10: "r10", UC_X86_REG_R11: "r11",
             UC_X86_REG_R12: "r12", UC_X86_REG_R13: "r13", UC_X86_REG_R14: "r14", UC_X86_REG_R15: "r15",
             UC_X86_REG_RIP: "rip", UC_X86_REG_RFLAGS: "rflags"}
STACK_TOP = L.STACK.end - 0x100
RESUME_SLOT = len(CALLOUTS)          # the stub OS calls return to
DEFAULT_BLOCK_BUDGET = 50_000_000    # blocks per emu_start before a run counts as runaway

_cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
_uc_emu_stop = ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p).value
_FAULT_KIND = {UC_ERR_READ_UNMAPPED: "read of unmapped memory", UC_ERR_WRITE_UNMAPPED: "write to unmapped memory",
               UC_ERR_FETCH_UNMAPPED: "jump to unmapped memory", UC_ERR_READ_PROT: "read of protected memory",
               UC_ERR_WRITE_PROT: "write to protected memory", UC_ERR_FETCH_PROT: "execution of non-code memory",
               UC_ERR_INSN_INVALID: "invalid instruction"}


@dataclass
class Counts:
    """Executions of each block between two snapshots, and what they add up to."""
    program: object
    blocks: dict                 # block start address -> (times run, size in bytes)
    callouts: dict = field(default_factory=dict)   # call-out symbol -> times entered

    def _iter(self):
        for addr, (n, size) in self.blocks.items():
            yield addr, n, self.program.instructions_in(addr, addr + size), self.program.routine_at(addr)

    @property
    def instructions(self):
        return sum(n * k for _, n, k, _ in self._iter())

    def by_routine(self):
        out = {}
        for _, n, k, r in self._iter():
            out[r] = out.get(r, 0) + n * k
        return dict(sorted(out.items()))

    def memory_accesses(self):
        """(reads, writes) executed, from each instruction's operands (precomputed per block)."""
        reads = writes = 0
        for addr, (n, size) in self.blocks.items():
            r, w = self.program.block_accesses(addr, addr + size)
            reads += n * r
            writes += n * w
        return reads, writes

    def excluding(self, *routines):
        keep = {a: v for a, v in self.blocks.items() if self.program.routine_at(a) not in routines}
        return Counts(self.program, keep, self.callouts)


class Machine:
    """One emulated Go process: CPU, memory, kernel, and the runtime's slow paths."""

    def __init__(self, *, heap_reserve=L.DEFAULT_HEAP_RESERVE, mem_profile_rate=L.MEM_PROFILE_RATE,
                 block_budget=DEFAULT_BLOCK_BUDGET):
        self.uc = Uc(UC_ARCH_X86, UC_MODE_64)   # default CPU model: Haswell-class (TZCNT, BMI, no AVX)
        self.regs = Regs(self.uc)
        self.mem = Memory(self.uc)
        for region in (L.TEXT, L.DATA, L.OFFHEAP, L.STACK):
            self.mem.add_region(region)
        self.heap_region = L.Region("heap", L.HEAP_BASE, heap_reserve, "")
        self.mem.add_lazy_region(self.heap_region, L.HEAP_ARENA_BYTES)
        self.kernel = Kernel(self.mem, self.heap_region.base, heap_reserve)
        self._offheap_next = L.OFFHEAP.base
        self.block_budget = block_budget
        self._load_program()
        self._install_hooks()
        self.callout_counts = {c.symbol: 0 for c in CALLOUTS}
        self._gen = None
        self._error = None
        self.runtime = Runtime(self, mem_profile_rate)
        # Once: writing a segment base flushes unicorn's TLB.
        self.regs.write(UC_X86_REG_FS_BASE, L.tls_fs_base())

    # ---- program --------------------------------------------------------------------------
    def _load_program(self):
        self._callout_addr = {c.symbol: L.CALLOUT_PAGE + i * L.CALLOUT_STRIDE for i, c in enumerate(CALLOUTS)}
        self._resume_addr = L.CALLOUT_PAGE + RESUME_SLOT * L.CALLOUT_STRIDE
        symbols = dict(L.DATA_ADDR)
        symbols.update(self._callout_addr)
        self.program = assemble(routine_sources(), L.TEXT_START, symbols, L.asm_constants(THROW_CONSTANTS))
        if self.program.end > L.CALLOUT_PAGE:
            raise GomemuError("the routines do not fit in the text segment")
        self.mem.fill(L.TEXT.base, L.TEXT.size, 0xCC)
        self.mem.write(self.program.base, self.program.code)
        for a in list(self._callout_addr.values()) + [self._resume_addr]:
            self.mem.w8(a, 0xC3)                       # ret
        self.symbols = dict(symbols)
        self.symbols.update(self.program.symbols)
        self.symbols["gomemu.exit"] = L.EXIT_ADDR
        self.text = Text([self.program])
        self._callout_by_addr = {a: c for c, a in zip(CALLOUTS, self._callout_addr.values())}

    def load(self, sources):
        """Assemble more routines [(path, text), ...] into free text after what is loaded;
        they can call everything already there. Returns their Program."""
        base = (self.text.end + L.PAGE - 1) // L.PAGE * L.PAGE
        prog = assemble(tuple(sources), base, dict(self.symbols), L.asm_constants(THROW_CONSTANTS))
        if prog.end > L.CALLOUT_PAGE:
            raise GomemuError("the routines do not fit in the text segment")
        clash = set(prog.symbols) & set(self.symbols)
        if clash:
            raise BadInput(f"routine names already defined: {', '.join(sorted(clash))}")
        self.mem.write(prog.base, prog.code)
        self.uc.ctl_remove_cache(prog.base, prog.end)
        self.symbols.update(prog.symbols)
        self.text.add(prog)
        return prog

    def symbol(self, name):
        try:
            return self.symbols[name]
        except KeyError:
            raise BadInput(f"unknown symbol {name!r}") from None

    def where(self, addr):
        """symbol+offset for any address the machine knows."""
        if L.CALLOUT_PAGE <= addr < L.CALLOUT_PAGE + L.PAGE:
            c = self._callout_by_addr.get(addr)
            return f"callout:{c.symbol}" if c else "callout:resume"
        if addr == L.EXIT_ADDR:
            return "gomemu.exit"
        return self.text.where(addr)

    def persistentalloc(self, size, align=8):
        """malloc.go: persistentalloc: off-heap memory that is never freed (zeroed)."""
        a = (self._offheap_next + align - 1) // align * align
        if a + size > L.OFFHEAP.end:
            raise GomemuError("off-heap (persistentalloc) region exhausted")
        self._offheap_next = a + size
        return a

    # ---- hooks ----------------------------------------------------------------------------
    def _install_hooks(self):
        self.counter = BlockCounter(self.uc, L.TEXT.base, L.TEXT.size, budget_stop=_uc_emu_stop)
        self._code_cb = CODE_CB(self._on_callout_page)
        hook_add(self.uc, UC_HOOK_CODE, self._code_cb, L.CALLOUT_PAGE, L.CALLOUT_PAGE + L.PAGE - 1)
        self._sys_cb = INSN_CB(self._on_syscall)
        hook_add(self.uc, UC_HOOK_INSN, self._sys_cb, 1, 0, UC_X86_INS_SYSCALL)
        self._bad_access = None
        # One batched read per call-out for its argument registers.
        self._arg_readers = [BatchRegs(self.uc, ABI_INT_REGS[:n]) for n in range(len(ABI_INT_REGS) + 1)]

        def on_invalid(uc, access, addr, size, value, ud):
            self._bad_access = (access, addr, size)
            return False
        self.uc.hook_add(UC_HOOK_MEM_INVALID, on_invalid)

    def _stop_with(self, exc):
        if self._error is None:
            self._error = exc
        uclib.uc_emu_stop(self.uc._uch)

    def _on_callout_page(self, _uc, addr, _size, _ud):
        try:
            co = self._callout_by_addr.get(addr)
            if co is None:
                if addr != self._resume_addr or self._gen is None:
                    raise EmulationFault(f"jump into the call-out page at {addr:#x}", pc=addr)
                self._advance((self.regs.read(UC_X86_REG_RAX), self.regs.read(UC_X86_REG_RBX)))
                return
            self.callout_counts[co.symbol] += 1
            if self.on_callout is not None:
                self.on_callout(co)
            result = co.handler(self, *self._arg_readers[co.nargs].read())
            if result is None:
                return
            if isinstance(result, int):
                self.regs.write(UC_X86_REG_RAX, result)
            elif hasattr(result, "send"):
                self._gen = result
                self._advance(None)
            else:
                self._set_results(result)
        except BaseException as e:       # ctypes would swallow it: stop and re-raise outside
            self._gen = None
            self._stop_with(e)

    on_callout = None      # stepping sets this to record call-outs

    def _advance(self, value):
        try:
            req = self._gen.send(value)
        except StopIteration as stop:
            self._gen = None
            self._set_results(stop.value)
            return                          # the stub's `ret` returns to the caller
        entry = self.symbol(req.routine)
        sp = self.regs.read(UC_X86_REG_RSP) - 8
        self.mem.w64(sp, self._resume_addr)
        self.regs.write(UC_X86_REG_RSP, sp)
        for reg, v in zip(ABI_INT_REGS, req.args):
            self.regs.write(reg, v)
        self.regs.write(UC_X86_REG_RIP, entry)

    def _set_results(self, result):
        if result is None:
            return
        if isinstance(result, int):
            result = (result,)
        for reg, v in zip(ABI_INT_REGS, result):
            self.regs.write(reg, v)

    def _on_syscall(self, _uc, _ud):
        try:
            r = self.regs.read
            nr = r(UC_X86_REG_RAX)
            args = [r(UC_X86_REG_RDI), r(UC_X86_REG_RSI), r(UC_X86_REG_RDX), r(UC_X86_REG_R10),
                    r(UC_X86_REG_R8), r(UC_X86_REG_R9)]
            self.regs.write(UC_X86_REG_RAX, self.kernel.syscall(nr, args))
        except BaseException as e:
            self._stop_with(e)

    # ---- running --------------------------------------------------------------------------
    def prepare_call(self, routine, args):
        """Registers and stack for calling `routine` from nothing: returns its entry."""
        entry = self.symbol(routine)
        if len(args) > len(ABI_INT_REGS):
            raise BadInput(f"{routine}: at most {len(ABI_INT_REGS)} register arguments")
        sp = STACK_TOP - 8
        self.mem.w64(sp, L.EXIT_ADDR)
        self.regs.write(UC_X86_REG_RSP, sp)
        self.regs.write(UC_X86_REG_RBP, 0)
        for reg, v in zip(ABI_INT_REGS, args):
            self.regs.write(reg, v)
        self.regs.write(UC_X86_REG_R14, self.symbol("runtime.g0"))
        self.uc.reg_write(UC_X86_REG_XMM15, 0)     # ABIInternal's zero register
        return entry

    def call(self, routine, *args):
        """Run `routine(args...)` to its return; returns AX."""
        entry = self.prepare_call(routine, args)
        self.run_from(entry)
        return self.regs.read(UC_X86_REG_RAX)

    def run_from(self, pc, count=0):
        """emu_start from pc until the exit address, turning every failure into a GomemuError."""
        self._error = None
        self._bad_access = None
        self.counter.set_budget(self.block_budget)
        err = uclib.uc_emu_start(self.uc._uch, pc, L.EXIT_ADDR, 0, count)
        if err and self._error is None:
            raise self.fault(UcError(err)) from None
        if self._error is not None:
            err, self._error = self._error, None
            if isinstance(err, GomemuError):
                raise err
            raise EmulationFault(f"internal error in a Python slow path at {self.where(self.pc)}: "
                                 f"{type(err).__name__}: {err}", pc=self.pc) from err
        if self.counter.budget_exhausted():
            raise self.fault(None, "instruction budget exhausted (a runaway loop?)")

    @property
    def pc(self):
        return self.regs.read(UC_X86_REG_RIP)

    def return_address(self):
        return self.mem.u64(self.regs.read(UC_X86_REG_RSP))

    def disasm_at(self, pc):
        try:
            code = self.mem.read(pc, 16)
        except GomemuError:
            return "(unreadable)"
        for _, _, mn, ops in _cs.disasm_lite(code, pc, 1):
            return f"{mn} {ops}".strip()
        return f"(undecodable bytes {code[:8].hex()})"

    def register_dump(self):
        return {name: self.regs.read(reg) for reg, name in REG_NAMES.items()}

    def fault(self, uc_error, message=None):
        pc = self.pc
        insn = self.disasm_at(pc)
        kind = message or _FAULT_KIND.get(getattr(uc_error, "errno", None), str(uc_error))
        if self._bad_access and message is None:
            _, addr, size = self._bad_access
            kind += f" at {addr:#x} ({size} bytes)"
        regs = self.register_dump()
        brief = " ".join(f"{k}={regs[k]:#x}" for k in ("rax", "rbx", "rcx", "rdi", "rsi", "rsp"))
        return EmulationFault(f"{kind} at pc {pc:#x} ({self.where(pc)}: {insn}); {brief}",
                              pc=pc, where=self.where(pc), insn=insn, regs=regs)

    # ---- stepping -------------------------------------------------------------------------
    _stepper = None

    def begin(self, routine, *args):
        """Start stepping a call of `routine`; then call step() until it returns None."""
        from emu.stepping import Stepper
        if self._stepper is not None:
            self._stepper.close()
        self._stepper = Stepper(self, routine, args)
        return self._stepper

    def step(self):
        """Run one instruction of the call begun with begin(); its StepRecord, or None when done."""
        if self._stepper is None:
            raise BadInput("step() needs a call started with begin(routine, ...)")
        rec = self._stepper.step()
        if rec is None:
            self._stepper = None
        return rec

    def trace(self, routine, *args, limit=1_000_000):
        """Every step of one call of `routine`, as a list of StepRecords."""
        stepper = self.begin(routine, *args)
        out = []
        for rec in stepper:
            out.append(rec)
            if len(out) >= limit:
                stepper.close()
                self._stepper = None
                raise EmulationFault(f"{routine} did not return within {limit} instructions", pc=rec.address)
        self._stepper = None
        return out

    # ---- counting -------------------------------------------------------------------------
    def snapshot(self):
        return (self.counter.snapshot(), dict(self.callout_counts))

    def counts_since(self, snap):
        before, callouts_before = snap
        now = self.counter.snapshot()
        blocks = {}
        for off, n in now.items():
            d = n - before.get(off, 0)
            if d:
                addr = L.TEXT.base + off
                if not L.CALLOUT_PAGE <= addr < L.EXIT_ADDR + L.PAGE:
                    blocks[addr] = (d, int(self.counter.sizes[off]))
        callouts = {k: v - callouts_before.get(k, 0) for k, v in self.callout_counts.items()
                    if v - callouts_before.get(k, 0)}
        return Counts(self.text, blocks, callouts)

    # ---- the allocator --------------------------------------------------------------------
    def malloc_small_noscan(self, size, needzero=True):
        """mallocgcSmallNoscan(size, nil, needzero): returns (address, slot size)."""
        check_small_noscan_size(size)
        x = self.call("runtime.mallocgcSmallNoscan", size, 0, int(needzero))
        return x, self.regs.read(UC_X86_REG_RBX)

    def malloc_batch(self, sizes):
        """Many small noscan allocations in one run of the driver loop; returns their
        addresses as a numpy array."""
        arr = np.asarray(sizes)
        if arr.ndim != 1 or arr.dtype.kind not in "iu":
            raise BadInput("sizes must be a one-dimensional sequence of integers")
        if len(arr) and not (sc.TINY_SIZE <= arr.min() and arr.max() <= sc.MAX_SMALL_NOSCAN):
            bad = next(int(v) for v in arr if not sc.TINY_SIZE <= v <= sc.MAX_SMALL_NOSCAN)
            check_small_noscan_size(bad)
        n = len(arr)
        buf = self._batch_buffer(16 * n)
        self.mem.write(buf, arr.astype("<u8").tobytes())
        out = buf + 8 * n
        saved = self.block_budget
        self.block_budget = max(saved, 64 * n + 1000)
        try:
            self.call("gomemu.mallocloop", buf, n, out)
        finally:
            self.block_budget = saved
        return np.frombuffer(self.mem.read(out, 8 * n), dtype="<u8")

    _batch = (0, 0)      # (address, size) of the reusable request/result buffer

    def _batch_buffer(self, nbytes):
        addr, size = self._batch
        if nbytes > size:
            size = max(nbytes, 2 * size, 1 << 16)
            addr = self.persistentalloc(size, 64)
            self._batch = (addr, size)
        return addr


def check_small_noscan_size(size):
    if not isinstance(size, int) or isinstance(size, bool):
        raise BadInput(f"size must be an integer, not {size!r}")
    if not sc.TINY_SIZE <= size <= sc.MAX_SMALL_NOSCAN:
        raise BadInput(f"size {size} is outside the small noscan path "
                       f"({sc.TINY_SIZE}..{sc.MAX_SMALL_NOSCAN} bytes; smaller objects take the tiny "
                       f"allocator and larger ones the large-object path)")
