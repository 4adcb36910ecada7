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
import re
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
from emu.unicorn_core import status as unicorn_core_status
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
# Write-barrier dialects: the call site Machine.store_pointer runs for `*slot = ptr`.
# Both barriers are always in the text segment and share p.wbBuf and wbBufFlush.
WB_DIALECTS = {
    "go1.21": "gomemu.storePointer",        # CMPL writeBarrier; CALL gcWriteBarrier2; fill R11 slots (Go 1.21+)
    "go1.20": "gomemu.storePointerGo120",   # MOVL writeBarrier; TESTL; CALL gcWriteBarrier (DI, AX) (Go <= 1.20)
}

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



class Machine:
    """One emulated Go process: CPU, memory, kernel, and the runtime's slow paths."""

    unicorn_core = unicorn_core_status()   # patched or stock libunicorn (emu/unicorn_core.py)

    def __init__(self, *, heap_reserve=L.DEFAULT_HEAP_RESERVE, mem_profile_rate=L.MEM_PROFILE_RATE,
                 block_budget=DEFAULT_BLOCK_BUDGET, wb_dialect="go1.21", size_specialized=False):
        if wb_dialect not in WB_DIALECTS:
            raise BadInput(f"wb_dialect must be one of {', '.join(WB_DIALECTS)}, not {wb_dialect!r}")
        self.wb_dialect = wb_dialect       # which compiled form store_pointer runs (WB_DIALECTS)
        self.wb_flushes = []               # pointers shaded by each wbBufFlush, in order
        # GOEXPERIMENT sizespecializedmalloc (Go 1.27's default): sizes below 81 bytes take the
        # generated size-specialised copies (asm/malloc_generated.s). Off: the generic paths only.
        self.size_specialized = bool(size_specialized)
        self._asm_consts = L.asm_constants({**THROW_CONSTANTS,
                                            "const_sizeSpecializedMalloc": int(self.size_specialized)})
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
        self.program = assemble(routine_sources(), L.TEXT_START, symbols, self._asm_consts)
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
        prog = assemble(tuple(sources), self.next_text_base(), dict(self.symbols), self._asm_consts)
        return self.add_program(prog)

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
        self._enter(STACK_TOP - 8, self.symbol("runtime.g0"), args)
        return entry

    def _enter(self, sp, g, args):
        """Go's ABI on entry: the exit address as return address at sp, the arguments in
        their registers, R14 = g, X15 = 0 (ABIInternal's zero register), no frame pointer."""
        self.mem.w64(sp, L.EXIT_ADDR)
        self.regs.write(UC_X86_REG_RSP, sp)
        self.regs.write(UC_X86_REG_RBP, 0)
        for reg, v in zip(ABI_INT_REGS, args):
            self.regs.write(reg, v)
        self.regs.write(UC_X86_REG_R14, g)
        self.uc.reg_write(UC_X86_REG_XMM15, 0)

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
        """Counter state now, for counts_since (the call-out page's stubs are not counted)."""
        return (self.counter.snapshot(self.text.end - L.TEXT.base), dict(self.callout_counts))

    def counts_since(self, snap):
        before, callouts_before = snap
        blocks = {L.TEXT.base + off: (d, int(self.counter.sizes[off]))
                  for off, d in self.counter.since(before).items()}
        callouts = {k: v - callouts_before.get(k, 0) for k, v in self.callout_counts.items()
                    if v - callouts_before.get(k, 0)}
        return Counts(self.text, blocks, callouts)

    # ---- the allocator --------------------------------------------------------------------
    def mallocgc(self, size, typ=0, needzero=True):
        """mallocgc(size, typ, needzero): the address of a new object (typ 0: no pointers).
        Make types with `self.runtime.new_type`."""
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size < 1 << 40:
            raise BadInput(f"size must be an integer in 0..2^40, not {size!r}")
        if typ and typ not in self.runtime.type_names:
            raise BadInput(f"{typ:#x} is not a type descriptor made by runtime.new_type")
        return self.call("runtime.mallocgc", size, typ, int(needzero))

    def set_alloc_trace(self, on):
        """GODEBUG=allocfreetrace=1: log every allocation (runtime.alloc_trace)."""
        self.mem.w8(self.symbol("runtime.debug.malloc"), int(bool(on)))

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


    # ---- goroutines and their stacks (runtime_model/stack.py, asm/morestack.s) -------------
    _pending = None

    def run_slow_path(self, gen):
        """Run a Python slow path (a generator, see mem_linux.OSCall) started from Python
        rather than from machine code: through a call-out, so its system calls are real
        SYSCALL instructions. Returns the generator's result."""
        self._pending = gen
        self._slow_path_result = None
        self.call("gomemu.slowpath")
        return self._slow_path_result

    def take_pending_slow_path(self):
        gen, self._pending = self._pending, None
        if gen is None:
            raise EmulationFault("gomemu.slowpath called with no slow path pending")
        result = yield from gen
        self._slow_path_result = result

    def new_goroutine(self):
        """proc.go: newproc1's g: a goroutine with a 2 KiB stack from the stack allocator,
        waiting at the top of its stack. Returns the address of its g."""
        return self.run_slow_path(self.runtime.stacks.newproc())

    def prepare_call_on(self, g, routine, args, sp=None):
        """Registers and stack for calling `routine` on goroutine g: g becomes the current
        g (m.curg, TLS, R14) and SP is at the top of its stack (or at `sp`), holding the
        return address gomemu.exit, which stands for goexit. Returns the entry."""
        entry = self.symbol(routine)
        if len(args) > 4:
            raise BadInput(f"{routine}: at most 4 arguments on a goroutine (newproc1 reserves "
                           "4 words above the first frame for their spill slots)")
        if sp is None:
            sp = self.mem.u64(g + L.G.sched + L.Gobuf.sp) - 8      # gostartcall: push goexit
        self.runtime.stacks.execute(g)
        self._enter(sp, g, args)
        return entry

    def call_on(self, g, routine, *args, sp=None):
        """Run `routine(args...)` on goroutine g (see prepare_call_on); returns AX. The
        stack grows through morestack/newstack as needed. If the call fails (a fault, a
        fatal error such as a stack overflow), g is dead and the machine stays usable."""
        entry = self.prepare_call_on(g, routine, args, sp)
        try:
            self.run_from(entry)
        except BaseException:
            self.runtime.stacks.died(g)
            raise
        self.runtime.stacks.park(g)
        return self.regs.read(UC_X86_REG_RAX)

    def goexit(self, g):
        """proc.go: goexit0: g is done; its g (and a starting-size stack) go on the free list."""
        self.runtime.stacks.gfput(g)

    def set_max_stack(self, n):
        """runtime/debug.SetMaxStack(n): returns the previous limit."""
        return self.runtime.stacks.set_max_stack(n)

    def gc_shrink_stacks(self):
        """The stack work of a GC cycle: shrinkstack on every waiting goroutine, then
        freeStackSpans. Returns the copies made (runtime_model.stack.Copy)."""
        return self.run_slow_path(self.runtime.stacks.gc_shrink_stacks())

    def free_os_memory(self):
        """runtime/debug.FreeOSMemory's scavenging half: every free page goes back to the
        OS (madvise MADV_DONTNEED). Returns the bytes released."""
        return self.run_slow_path(self.runtime.mheap.scavenge((1 << 64) - 1))

    def next_text_base(self):
        """Where the next routines loaded into the text segment start (page aligned)."""
        return (self.text.end + L.PAGE - 1) // L.PAGE * L.PAGE

    def add_program(self, prog):
        """Place a Program built elsewhere (e.g. a compiled Go function, emu/gobuild.py) at
        its base, which must be next_text_base() or later."""
        if prog.base < self.text.end or prog.end > L.CALLOUT_PAGE:
            raise GomemuError("the code does not fit in the free text segment")
        clash = set(prog.symbols) & set(self.symbols)
        if clash:
            raise BadInput(f"routine names already defined: {', '.join(sorted(clash))}")
        self.mem.write(prog.base, prog.code)
        self.uc.ctl_remove_cache(prog.base, prog.end)
        self.symbols.update(prog.symbols)
        self.text.add(prog)
        return prog

    # ---- the write barrier (asm/gc_write_barrier*.s, runtime_model/mwbbuf.py) ---------------
    _gcwork = None

    @property
    def gcwork(self):
        """The GC's mark state the barrier shades into (runtime_model/mgcmark.py: GcWork)."""
        if self._gcwork is None:
            from runtime_model.mgcmark import GcWork
            self._gcwork = GcWork(self.runtime.mheap)
        return self._gcwork

    def set_write_barrier(self, on):
        """mgc.go: setGCPhase: writeBarrier.enabled is set while the GC marks."""
        self.mem.w8(self.symbol("runtime.writeBarrier"), int(bool(on)))

    @property
    def write_barrier_enabled(self):
        return bool(self.mem.u8(self.symbol("runtime.writeBarrier")))

    def wbbuf(self):
        """The pointers in p0's wbBuf, oldest first."""
        from runtime_model import mwbbuf
        return mwbbuf.buffered(self.mem, self.symbol("runtime.p0"))

    def wbbuf_reset(self):
        """(*wbBuf).reset on p0: drop what is buffered (nothing is shaded)."""
        from runtime_model import mwbbuf
        mwbbuf.reset(self.mem, self.symbol("runtime.p0"))

    def store_pointer(self, slot, ptr):
        """`*slot = ptr` as compiled code does it, with this machine's barrier dialect."""
        self.call(WB_DIALECTS[self.wb_dialect], slot, ptr)

    def load_rodata(self, name, data):
        """Read-only data placed in free text (as Go's linker puts rodata near text), within
        rel32 reach of code loaded with load_code. Returns its address."""
        from asm.assembler import Program
        base = (self.text.end + 63) // 64 * 64
        if base + len(data) > L.CALLOUT_PAGE:
            raise GomemuError("the data does not fit in the text segment")
        self.mem.write(base, bytes(data))
        self.text.add(Program(base, bytes(data), {}, [], []))
        self.symbols[name] = base
        return base

    def stub_missing_calls(self, name, relocations, known):
        """Give every callee of `name` that is not in `known` a UD2 stub under its own name,
        so reaching it is a fault naming it; data the machine lacks is an error. Returns
        the stubs' {symbol: address}."""
        missing = sorted({r.symbol for r in relocations if r.size and r.symbol not in known})
        calls = {r.symbol for r in relocations if r.kind == "R_CALL"}
        data = [s for s in missing if s not in calls]
        if data:
            raise BadInput(f"{name} refers to data the emulator does not have: {', '.join(data)}")
        if not missing:
            return {}
        return self.load([("<unresolved calls>", "".join(
            f"TEXT {s}(SB), NOSPLIT, $0\n\t// reaching this is a fault: not modelled\n\tUD2\n"
            for s in missing))]).symbols

    def load_code(self, name, code, relocations=(), *, symbols=None, lines=None, path="<compiled>"):
        """Place machine code taken from a compiled binary (emu/gobuild.py) in free text,
        patch its pc-relative relocations onto this machine's symbols, and list it, so
        that counting, stepping and where() cover it like the assembled routines.

        relocations: objects with offset, size, kind ("R_PCREL", "R_CALL"), symbol, addend
        (field = symbol + addend - (field address + 4), Go's R_PCREL/R_CALL).
        symbols: extra {name: address} (type descriptors made for the code).
        lines: {byte offset: (position, text)} of each instruction (from the -S listing).
        A called symbol the machine does not have gets a UD2 stub under its own name,
        so reaching it is a fault naming it. Returns the Program."""
        from asm.assembler import ListingEntry, Program, memory_accesses
        known = dict(self.symbols)
        known.update(symbols or {})
        known.update(self.stub_missing_calls(name, relocations, known))
        base = (self.text.end + L.PAGE - 1) // L.PAGE * L.PAGE
        if name in self.symbols:
            raise BadInput(f"routine name already defined: {name}")
        if base + len(code) > L.CALLOUT_PAGE:
            raise GomemuError("the code does not fit in the text segment")
        buf = bytearray(code)
        for r in relocations:
            if r.size == 0:
                continue                    # markers (R_USETYPE, R_CALLIND): no bytes
            if r.kind not in ("R_PCREL", "R_CALL") or r.size != 4:
                raise BadInput(f"{name}: relocation {r.kind} of {r.size} bytes at +{r.offset:#x} is not supported")
            v = known[r.symbol] + r.addend - (base + r.offset + 4)
            if not -2**31 <= v < 2**31:
                raise GomemuError(f"{name}: {r.symbol} is out of rel32 range")
            buf[r.offset:r.offset + 4] = (v & 0xFFFFFFFF).to_bytes(4, "little")
        code = bytes(buf)
        listing = []
        for a, size, mn, ops in _cs.disasm_lite(code, base):
            off = a - base
            pos, text = (lines or {}).get(off, ("", ""))
            m = re.match(r"^[^:]*:(\d+)", pos)
            lineno = int(m.group(1)) if m else 0
            reads, writes = memory_accesses(code[off:off + size], a)
            listing.append(ListingEntry(a, code[off:off + size], name, path, lineno, text or f"{mn} {ops}".strip(),
                                        pos, f"{mn} {ops}".strip(), reads, writes))
        if not listing or listing[-1].end != base + len(code):
            raise BadInput(f"{name}: the code does not decode as whole instructions")
        prog = Program(base, code, {name: base}, listing, [(base, base + len(code), name)])
        self.mem.write(base, code)
        self.uc.ctl_remove_cache(base, base + len(code))
        self.symbols[name] = base
        self.text.add(prog)
        return prog


def check_small_noscan_size(size):
    if not isinstance(size, int) or isinstance(size, bool):
        raise BadInput(f"size must be an integer, not {size!r}")
    if not sc.TINY_SIZE <= size <= sc.MAX_SMALL_NOSCAN:
        raise BadInput(f"size {size} is outside the small noscan path "
                       f"({sc.TINY_SIZE}..{sc.MAX_SMALL_NOSCAN} bytes; smaller objects take the tiny "
                       f"allocator and larger ones the large-object path)")
