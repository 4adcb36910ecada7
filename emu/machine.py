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
from emu import args as A
from emu import interrupts
from emu import layout as L
from emu.boot import Runtime
from emu.callouts import THROW_CONSTANTS, GoTo, StackResults, callouts_for
from emu.errors import BadInput, EmulationFault, GomemuError, InvariantError
from emu.memory import Memory
from emu.syscalls import Kernel
from emu.unicorn_core import status as unicorn_core_status
from emu.uc_raw import CODE_CB, INSN_CB, UC_EMU_STOP, BatchRegs, BlockCounter, Regs, hook_add, hook_del
from runtime_model import mwbbuf
from runtime_model import sizeclasses as sc
from runtime_model.mem_linux import RuntimeThrow

# Go's ABIInternal integer argument and result registers, in order.
ABI_INT_REGS = [UC_X86_REG_RAX, UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDI, UC_X86_REG_RSI,
                UC_X86_REG_R8, UC_X86_REG_R9, UC_X86_REG_R10, UC_X86_REG_R11]
REG_NAMES = {UC_X86_REG_RAX: "rax", UC_X86_REG_RBX: "rbx", UC_X86_REG_RCX: "rcx", UC_X86_REG_RDX: "rdx",
             UC_X86_REG_RSI: "rsi", UC_X86_REG_RDI: "rdi", UC_X86_REG_RBP: "rbp", UC_X86_REG_RSP: "rsp",
             UC_X86_REG_R8: "r8", UC_X86_REG_R9: "r9", UC_X86_REG_R10: "r10", UC_X86_REG_R11: "r11",
             UC_X86_REG_R12: "r12", UC_X86_REG_R13: "r13", UC_X86_REG_R14: "r14", UC_X86_REG_R15: "r15",
             UC_X86_REG_RIP: "rip", UC_X86_REG_RFLAGS: "rflags"}
STACK_TOP = L.STACK.end - 0x100
MIN_LEGAL_POINTER = 4096             # malloc.go: minLegalPointer
_OFFHEAP_SIZE, _OFFHEAP_END = L.OFFHEAP.size, L.OFFHEAP.end
_ALIGNS = frozenset(1 << k for k in range(L.PAGE.bit_length()))   # persistentalloc's valid aligns
SPILL_AREA = 8 * 9                   # spill slots of ABIInternal's 9 integer argument registers
# Routines of asm/ that only the image machine loads (adapters to the real runtime's ABI0
# code), and those it loads beside the program's own runtime (not Go code, or not in Go 1.27).
IMAGE_ONLY_SOURCES = ("os_adapters",)
IMAGE_SOURCES = ("driver", "store_pointer", "gc_write_barrier_legacy", "os_adapters")
# The system-call routines the Python slow paths name (mem_linux.OSCall), as the image
# machine finds them in the program's runtime: mmap is Go code (mem_linux.go's wrapper of
# the ABI0 sysMmap), madvise an adapter to the ABI0 assembly.
IMAGE_OS_ROUTINES = {"runtime.sysMmap": "runtime.mmap", "runtime.madvise": "gomemu.madvise"}
ROUTINE_NAMES = tuple(p.rsplit("/", 1)[-1][:-2] for p, _ in routine_sources())
DEFAULT_BLOCK_BUDGET = 50_000_000    # blocks per emu_start before a run counts as runaway
MAX_BLOCK_BUDGET = 1 << 62           # the counter counts down in a uint64
# The heap reservation: whole 64 MiB arenas, below the off-heap region.
MAX_HEAP_RESERVE = (L.OFFHEAP.base - L.HEAP_BASE) // L.HEAP_ARENA_BYTES * L.HEAP_ARENA_BYTES
# Write-barrier dialects: the call site Machine.store_pointer runs for `*slot = ptr`.
# Both barriers are always in the text segment and share p.wbBuf and wbBufFlush.
WB_DIALECTS = {
    "go1.21": "gomemu.storePointer",        # CMPL writeBarrier; CALL gcWriteBarrier2; fill R11 slots (Go 1.21+)
    "go1.20": "gomemu.storePointerGo120",   # MOVL writeBarrier; TESTL; CALL gcWriteBarrier (DI, AX) (Go <= 1.20)
}

_cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
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
            k, r = self.program.block_info(addr, size)
            yield addr, n, k, r

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
    """One emulated Go process: CPU, memory, kernel, and the runtime's slow paths.

    checked: validate what the machine code relies on where it meets Python (the
    call-outs, mallocgc's results, spans leaving the mcache, after a fault), as Go's
    doubleCheckMalloc and debug.invalidptr do; see docs/machine.md. On by default;
    the benchmarks turn it off. The fast paths run no Python either way."""

    unicorn_core = unicorn_core_status()   # patched or stock libunicorn (emu/unicorn_core.py)

    def __init__(self, *, image=None, handwritten=False, heap_reserve=L.DEFAULT_HEAP_RESERVE,
                 mem_profile_rate=L.MEM_PROFILE_RATE, block_budget=DEFAULT_BLOCK_BUDGET, wb_dialect="go1.21",
                 size_specialized=True, checked=True, gogc="off"):
        if wb_dialect not in WB_DIALECTS:
            raise BadInput(f"wb_dialect must be one of {', '.join(WB_DIALECTS)}, not {wb_dialect!r}")
        A.integer("heap_reserve", heap_reserve, L.HEAP_ARENA_BYTES, MAX_HEAP_RESERVE)
        if heap_reserve % L.HEAP_ARENA_BYTES:
            raise BadInput(f"heap_reserve = {heap_reserve} is not a whole number of "
                           f"{L.HEAP_ARENA_BYTES >> 20} MiB heap arenas")
        A.integer("mem_profile_rate", mem_profile_rate, 0, A.GO_INT_MAX)
        self.block_budget = block_budget
        self.checked = A.flag("checked", checked)
        self.wb_dialect = wb_dialect       # which compiled form store_pointer runs (WB_DIALECTS)
        self.wb_flushes = []               # pointers shaded by each wbBufFlush, in order
        # GOEXPERIMENT sizespecializedmalloc (Go 1.27's default): sizes below 81 bytes take the
        # generated size-specialised copies. Off: the generic paths only.
        self.size_specialized = A.flag("size_specialized", size_specialized)
        # The code that runs: a linked Go program's own runtime (emu/goimage.py), by default
        # the runtime program gomemu builds once (emu/runtime_image); or, handwritten=True,
        # gomemu's commented routines of asm/ on its own memory map (the teaching version).
        if A.flag("handwritten", handwritten):
            if image is not None:
                raise BadInput("a machine runs either a program's image or the handwritten routines, not both")
            self.image = None
        else:
            if image is None:
                from emu.gobuild import runtime_image_path
                image = runtime_image_path(self.size_specialized)
            self.image = self._image(image)
            self.size_specialized = self.image.has("runtime.mallocgcTinySC2")
        self._asm_consts = L.asm_constants({**THROW_CONSTANTS,
                                            "const_sizeSpecializedMalloc": int(self.size_specialized)})
        self.uc = Uc(UC_ARCH_X86, UC_MODE_64)   # default CPU model: Haswell-class (TZCNT, BMI, no AVX)
        self.regs = Regs(self.uc)
        self.mem = Memory(self.uc)
        # gomemu's own text: its routines, the call-out page (stubs that hand control to
        # Python) and the exit page (the return address of top-level calls). Only code
        # outside the two pages is counted.
        self.gomemu_text = L.GOMEMU_TEXT if self.image else L.TEXT
        if self.image:
            self.callout_page, self.exit_addr = self.gomemu_text.base, self.gomemu_text.base + L.PAGE
            self._routines_at = self.gomemu_text.base + 2 * L.PAGE
            self._text_limit = self.gomemu_text.end
        else:
            self.callout_page, self.exit_addr = L.CALLOUT_PAGE, L.EXIT_ADDR
            self._routines_at = L.TEXT_START
            self._text_limit = self.callout_page
        regions = [self.gomemu_text, L.OFFHEAP, L.STACK]
        if self.image:
            regions += [L.Region(f"image:{s.prot}@{s.vaddr:#x}", s.vaddr // L.PAGE * L.PAGE,
                                 -(-(s.end - s.vaddr // L.PAGE * L.PAGE) // L.PAGE) * L.PAGE, s.prot)
                        for s in self.image.segments]
        else:
            regions.append(L.DATA)
        for region in regions:
            self.mem.add_region(region)
        for seg in self.image.segments if self.image else ():
            self.mem.write(seg.vaddr, seg.data)         # bss stays zero
        self.heap_region = L.Region("heap", L.HEAP_BASE, heap_reserve, "")
        try:
            self.mem.add_lazy_region(self.heap_region, L.HEAP_MAP_GRANULE)
        except OSError as e:
            raise BadInput(f"heap_reserve = {heap_reserve}: the host cannot reserve that much "
                           f"address space ({e.strerror or e})") from None
        self.kernel = Kernel(self.mem, self.heap_region.base, heap_reserve)
        self._offheap_next = L.OFFHEAP.base
        self._load_program()
        self._install_hooks()
        self._mark_instructions()
        self.callout_counts = {c.symbol: 0 for c in self.callouts}
        from emu.clock import CLOCK_GHZ, Clock
        from emu.timing.tsc import TscHook
        self.clock = Clock(self)
        # RDTSC/RDTSCP (runtime.cputicks) read the modelled clock in cycles at the stated
        # clock rate, never the host's TSC: runs stay deterministic.
        self.tsc = TscHook(self.uc, lambda: int(self.clock.ns() * CLOCK_GHZ))
        self._gen = None
        self._error = None
        self.runtime = Runtime(self, mem_profile_rate)
        # GOGC: objects allocated from Python are referenced from Python, where the collector
        # cannot see them, so a bare machine collects only when asked (runtime.GC,
        # finish_cycle) unless given a GOGC; programs run by gomemu get Go's default, 100.
        from runtime_model.gcsettings import set_gc_percent
        set_gc_percent(self.runtime, parse_gogc(gogc))
        interrupts.install()                   # Ctrl-C waits for a running slow path (emu/interrupts.py)
        # Once: writing a segment base flushes unicorn's TLB.
        self.regs.write(UC_X86_REG_FS_BASE, self.symbol("runtime.m0") + L.M.tls + 8)

    def _image(self, image):
        from emu.goimage import GoImage, load_image
        if image is None or isinstance(image, GoImage):
            return image
        return load_image(image)

    # ---- program --------------------------------------------------------------------------
    def _load_program(self):
        self.callouts = callouts_for(self.image)
        self._os_routines = IMAGE_OS_ROUTINES if self.image else {}
        self._callout_addr = {c.symbol: self.callout_page + i * L.CALLOUT_STRIDE
                              for i, c in enumerate(self.callouts)}
        self._resume_addr = self.callout_page + len(self.callouts) * L.CALLOUT_STRIDE
        if self.image:
            symbols = self._image_symbols()
            sources = routine_sources(IMAGE_SOURCES)
        else:
            symbols = dict(L.DATA_ADDR)
            sources = routine_sources([s for s in ROUTINE_NAMES if s not in IMAGE_ONLY_SOURCES])
        symbols.update(self._callout_addr)
        self.program = assemble(sources, self._routines_at, symbols, self._asm_consts)
        if self.program.end > self._text_limit:
            raise GomemuError("the routines do not fit in the text segment")
        self.mem.fill(self.gomemu_text.base, self.gomemu_text.size, 0xCC)
        self.mem.write(self.program.base, self.program.code)
        for a in list(self._callout_addr.values()) + [self._resume_addr]:
            self.mem.w8(a, 0xC3)                       # ret
        self.symbols = dict(symbols)
        self.symbols.update(self.program.symbols)
        self.symbols["gomemu.exit"] = self.exit_addr
        # Where a goroutine's first function returns to: proc.go's newproc1 sets
        # abi.FuncPCABI0(goexit) + sys.PCQuantum, so tracebacks end at goexit.
        self.goexit_pc = self.symbol("runtime.goexit") + 1 if self.image else self.exit_addr
        programs = [self.program]
        if self.image:
            from emu.goimage import ImageText
            self._patch_image()
            programs.append(ImageText(self.image, self.mem.read))
        self.text = Text(programs)
        self._callout_by_addr = {a: c for c, a in zip(self.callouts, self._callout_addr.values())}

    def _image_symbols(self):
        """The program's symbols by the names the routines use: ABI0 functions under their
        plain name too (`runtime.madvise` for `runtime.madvise.abi0`)."""
        out = {}
        for name, s in self.image.symbols.items():
            out[name] = s.addr
            if name.endswith(".abi0"):
                out.setdefault(name[:-5], s.addr)
        return out

    def _mark_instructions(self):
        """Where instructions start, for the block counter's running total: the assembled
        routines' listings, the program's functions as linked, and each call-out's patched
        entry (one JMP where the function's first instructions were)."""
        groups = [([e.address for e in prog.listing], None, None)
                  for prog in self.text.programs if hasattr(prog, "listing")]
        if self.image:
            groups.append((self.image.instruction_starts(), None, None))
            for c in self.callouts:
                if self.image.has(c.symbol):
                    entry = self.image.address(c.symbol)
                    groups.append(([entry], entry, entry + 5))
        self.counter.mark_instruction_groups(groups)

    def _patch_image(self):
        """Send the program's calls into the runtime's slow paths to the call-outs: each
        function gomemu runs in Python starts with a JMP to its stub on the call-out page
        (the JMP is counted under the function's name)."""
        for c in self.callouts:
            if not self.image.has(c.symbol):
                continue
            entry = self.image.address(c.symbol)
            rel = self._callout_addr[c.symbol] - (entry + 5)
            self.mem.write(entry, b"\xe9" + (rel & 0xFFFFFFFF).to_bytes(4, "little"))

    def load(self, sources):
        """Assemble more routines [(path, text), ...] into free text after what is loaded;
        they can call everything already there. Returns their Program."""
        prog = assemble(tuple(sources), self.next_text_base(), dict(self.symbols), self._asm_consts)
        return self.add_program(prog)

    def os_routine(self, name):
        """The routine an OSCall named `name` runs on this machine (see IMAGE_OS_ROUTINES)."""
        return self._os_routines.get(name, name)

    def symbol(self, name):
        try:
            return self.symbols[name]
        except KeyError:
            raise BadInput(f"unknown symbol {name!r}") from None

    def where(self, addr):
        """symbol+offset for any address the machine knows."""
        A.integer("addr", addr)
        if self.callout_page <= addr < self.callout_page + L.PAGE:
            c = self._callout_by_addr.get(addr)
            return f"callout:{c.symbol}" if c else "callout:resume"
        if addr == self.exit_addr:
            return "gomemu.exit"
        return self.text.where(addr)

    def persistent_bytes(self):
        """Off-heap bytes persistentalloc has handed out (memstats' metadata *_sys)."""
        return self._offheap_next - L.OFFHEAP.base

    def persistentalloc(self, size, align=8):
        """malloc.go: persistentalloc: off-heap memory that is never freed (zeroed)."""
        if (type(size) is not int or not 0 <= size <= _OFFHEAP_SIZE
                or type(align) is not int or align not in _ALIGNS):
            A.integer("size", size, 0, L.OFFHEAP.size)     # the checks, named, only off the common case
            if A.integer("align", align, 1, L.PAGE) & (align - 1):
                raise BadInput(f"align = {align} is not a power of 2")
        a = (self._offheap_next + align - 1) & -align       # align is a power of 2
        end = a + size
        if end > _OFFHEAP_END:
            raise GomemuError("off-heap (persistentalloc) region exhausted")
        self._offheap_next = end
        return a

    @property
    def block_budget(self):
        """Blocks one emu_start may run before the run counts as a runaway loop."""
        return self._block_budget

    @block_budget.setter
    def block_budget(self, n):
        self._block_budget = A.integer("block_budget", n, 1, MAX_BLOCK_BUDGET)

    # ---- hooks ----------------------------------------------------------------------------
    def _install_hooks(self):
        lo = self._routines_at
        hi = self.image.text[1] if self.image else self._text_limit
        self.counter = BlockCounter(self.uc, lo, hi - lo, budget_stop=UC_EMU_STOP)
        self._code_cb = CODE_CB(self._on_callout_page)
        self._add_callout_hook()
        self._sys_cb = INSN_CB(self._on_syscall)
        hook_add(self.uc, UC_HOOK_INSN, self._sys_cb, 1, 0, UC_X86_INS_SYSCALL)
        self._bad_access = None
        # One batched read per call-out for its argument registers.
        self._arg_readers = [BatchRegs(self.uc, ABI_INT_REGS[:n]) for n in range(len(ABI_INT_REGS) + 1)]

        def on_invalid(uc, access, addr, size, value, ud):
            self._bad_access = (access, addr, size)
            return False
        self.uc.hook_add(UC_HOOK_MEM_INVALID, on_invalid)

    def _add_callout_hook(self):
        self._callout_hook = hook_add(self.uc, UC_HOOK_CODE, self._code_cb, self.callout_page,
                                      self.callout_page + L.PAGE - 1)

    def callout_hook_last(self):
        """Re-add the call-out page's hook, so that code hooks added before now fire before
        it at a stub (unicorn calls hooks in the order they were added): recorded stepping
        sees the registers a call-out's handler is entered with."""
        hook_del(self.uc, self._callout_hook)
        self._add_callout_hook()

    def _stop_with(self, exc):
        if self._error is None:
            self._error = exc
        uclib.uc_emu_stop(self.uc._uch)

    def _on_callout_page(self, _uc, addr, _size, _ud):
        state = interrupts.state
        state.in_callback = True                 # the Ctrl-C watcher leaves a running slow path alone
        try:
            co = self._callout_by_addr.get(addr)
            if co is None:
                if addr != self._resume_addr or self._gen is None:
                    raise EmulationFault(f"jump into the call-out page at {addr:#x}", pc=addr)
                # back from the routine: drop the spill area _advance reserved below the stub's
                # own return address
                self.regs.write(UC_X86_REG_RSP, self.regs.read(UC_X86_REG_RSP) + SPILL_AREA)
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
            self._stop_with(e)           # (run_from closes the slow path it was in)
        finally:
            state.in_callback = False
            if state.interrupted and self._gen is None:     # _stop_if_interrupted, inline (hot)
                uclib.uc_emu_stop(self.uc._uch)

    def _stop_if_interrupted(self):
        """After a callback: on Ctrl-C, stop once no slow path is in flight (emu/interrupts.py)."""
        if interrupts.state.interrupted and self._gen is None:
            uclib.uc_emu_stop(self.uc._uch)

    def slow_path_in_flight(self):
        """A call-out's Python slow path runs, or has started and waits for an OS call."""
        return interrupts.state.in_callback or self._gen is not None

    on_callout = None      # stepping sets these to record call-outs and system calls
    on_syscall = None
    stepping = None        # "step" or "record" while a Stepper runs the CPU
    step_hooks = None      # the hooks of stepped runs (emu/stepping.py: StepHooks), once made
    _translated_for = None  # the mode unicorn's translated code was made in

    def _advance(self, value):
        try:
            req = self._gen.send(value)
        except StopIteration as stop:
            self._gen = None
            self._set_results(stop.value)
            return                          # the stub's `ret` returns to the caller
        entry = self.symbol(self.os_routine(req.routine))
        # ABIInternal: the caller reserves the spill slots of the register arguments above the
        # return address; compiled Go code writes them (its stack maps even say so)
        sp = self.regs.read(UC_X86_REG_RSP) - SPILL_AREA - 8
        self.mem.w64(sp, self._resume_addr)
        self.regs.write(UC_X86_REG_RSP, sp)
        for reg, v in zip(ABI_INT_REGS, req.args):
            self.regs.write(reg, v)
        self.regs.write(UC_X86_REG_RIP, entry)

    def _set_results(self, result):
        if result is None:
            return
        if isinstance(result, StackResults):
            sp = self.regs.read(UC_X86_REG_RSP)
            for i, v in enumerate(result.words):
                self.mem.w64(sp + 8 * (result.at + i + 1), v)
            return
        if isinstance(result, GoTo):        # continue elsewhere instead of returning
            for i, v in enumerate(result.stack_args):
                self.mem.w64(self.regs.read(UC_X86_REG_RSP) + 8 * (i + 1), v)
            self.regs.write(UC_X86_REG_RIP, self.symbol(result.routine))
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
            pc = r(UC_X86_REG_RIP)
            if self.image and self.image.text[0] <= pc < self.image.text[1] and not self.kernel.handles(nr):
                from emu.callouts import unsupported_error
                # the program's code asked the OS for something gomemu's kernel does not do
                raise unsupported_error(self, f"makes system call {nr}", r(UC_X86_REG_RSP) - 8)
            self.regs.write(UC_X86_REG_RAX, self.kernel.syscall(nr, args))
            if self.on_syscall is not None:
                self.on_syscall(self.kernel.log[-1])
        except BaseException as e:
            self._stop_with(e)
        self._stop_if_interrupted()

    # ---- running --------------------------------------------------------------------------
    def prepare_call(self, routine, args):
        """Registers and stack for calling `routine` from nothing: returns its entry."""
        entry = self.symbol(routine)
        args = check_call_args(routine, args, len(ABI_INT_REGS))
        if self._stepper is not None:
            self._finish_stepped_call()
        self._enter(STACK_TOP - 8, self.symbol("runtime.g0"), args)
        return entry

    def _enter(self, sp, g, args, ret=None):
        """Go's ABI on entry: the exit address (or `ret`) as return address at sp, the
        arguments in their registers, R14 = g, X15 = 0 (ABIInternal's zero register), no
        frame pointer."""
        self.mem.w64(sp, self.exit_addr if ret is None else ret)
        self.regs.write(UC_X86_REG_RSP, sp)
        self.regs.write(UC_X86_REG_RBP, 0)
        for reg, v in zip(ABI_INT_REGS, args):
            self.regs.write(reg, v)
        self.regs.write(UC_X86_REG_R14, g)
        self.regs.clear128(UC_X86_REG_XMM15)

    def call(self, routine, *args):
        """Run `routine(args...)` to its return; returns AX."""
        entry = self.prepare_call(routine, args)
        self.run_from(entry)
        return self.regs.read(UC_X86_REG_RAX)

    def run_from(self, pc, count=0, until=None):
        """emu_start from pc until the exit address (or `until`), turning every failure
        into a GomemuError. A failed run ends its call: what the call leaves behind is
        undone (_recover), and in checked mode a fault is first explained by the invariant
        it breaks, if any."""
        try:
            self._run(pc, count, until)
        except BaseException as e:
            try:
                broken = self._invariant_after(e)
            finally:
                self._recover()
            if broken is not None:
                raise broken from e
            raise

    def _invariant_after(self, err):
        """In checked mode, after a fault or a fatal error: an InvariantError naming what
        in the runtime's state is broken, or None."""
        if not self.checked or not isinstance(err, (EmulationFault, RuntimeThrow)):
            return None
        try:
            self.runtime.check_state()
        except InvariantError as e:
            return InvariantError(f"{e}; found after: {err}")
        return None

    def _recover(self):
        """Undo what a failed call leaves behind, so the next call starts from a machine
        between calls: the slow path it was in is closed now (its cleanup runs), no call
        is being stepped, m0 is not mallocing and holds no locks, g0 is current (call_on
        also buries its goroutine), and p.wbBuf's pointers are inside the buffer."""
        gens = [g for g in (self._gen, self._pending) if g is not None]
        self._gen = self._pending = None
        stepper, self._stepper = self._stepper, None
        if stepper is not None:
            stepper.close()
        mem, m0, g0 = self.mem, self.symbol("runtime.m0"), self.symbol("runtime.g0")
        mem.w32(m0 + L.M.mallocing, 0)
        mem.w32(m0 + L.M.locks, 0)
        mem.w64(m0 + L.M.curg, g0)
        mem.w64(m0 + L.M.tls, g0)
        mem.fill(m0 + L.M.morebuf, L.Gobuf.SIZE)
        self._alloc_stop = None
        p0 = self.symbol("runtime.p0")
        if mwbbuf.problem(mem, p0):
            mwbbuf.reset(mem, p0)         # a flush died half-way: what it had not shaded is lost
        for gen in gens:
            gen.close()

    def _run(self, pc, count, until):
        """While allocations are tracked (track_allocations), each outermost allocation
        runs on its own, measured, and the run goes on after it."""
        until = self.exit_addr if until is None else until
        while True:
            self._run_once(pc, count, until)
            entry, self._alloc_stop = self._alloc_stop, None
            if entry is None:
                return
            pc = self._measure_allocation(entry)

    def _run_once(self, pc, count, until):
        self._error = None
        self._bad_access = None
        self.counter.set_budget(self.block_budget)
        self.counter.clear_stop()                    # (a request that came as the last run ended)
        mode = self.stepping or "plain"
        if mode != self._translated_for:
            # hooks fire only in code translated after they were added, and stepping's hooks
            # slow plain runs down: each mode gets its hooks and translations of its own
            if self.step_hooks is not None:
                self.step_hooks.set_mode(mode)
            self.uc.ctl_flush_tb()
            self._translated_for = mode
        intr = interrupts.state                      # Ctrl-C: see emu/interrupts.py
        intr.interrupted = False
        intr.run = (self, count)
        err = uclib.uc_emu_start(self.uc._uch, pc, until, 0, count)
        # The watcher stopped the run at a block start, that block counted but not run. Go on
        # where it stopped when the SIGINT already was a KeyboardInterrupt elsewhere, or when a
        # slow path started after all (its callback's end stops the run: _stop_if_interrupted).
        while (self.counter.stopped_as_requested() and not (err or self._error is not None)
               and (not intr.interrupted or self._gen is not None)):
            self.counter.clear_stop()
            self.counter.uncount(self.pc)
            err = uclib.uc_emu_start(self.uc._uch, self.pc, until, 0, 0)
        self.counter.clear_stop()
        intr.run = None
        if intr.interrupted:
            intr.interrupted = False
            self._error = None
            raise KeyboardInterrupt
        if err and self._error is None:
            raise self.fault(UcError(err)) from None
        if self._error is not None:
            err, self._error = self._error, None
            if isinstance(err, (GomemuError, KeyboardInterrupt)):
                raise err
            raise EmulationFault(f"internal error in a Python slow path at {self.where(self.pc)}: "
                                 f"{type(err).__name__}: {err}", pc=self.pc) from err
        if self.counter.budget_exhausted():
            raise self.fault(None, "instruction budget exhausted (a runaway loop?)")

    @property
    def pc(self):
        return self.regs.read(UC_X86_REG_RIP)

    # ---- allocations, one by one (emu/paths.py) ----------------------------------------------
    _alloc_stop = None          # the allocation routine whose entry stopped the run
    _alloc_tracker = None       # callback(PathSample) while tracking
    _alloc_hooks = ()

    def track_allocations(self, callback):
        """From now on (until stop_tracking_allocations), every outermost call of an
        allocation routine (mallocgc and the size-specialised copies the compiler calls
        directly) is run on its own and measured: callback(emu.paths.PathSample)."""
        from emu.paths import allocation_entries
        if not self._alloc_hooks:
            self._alloc_cb = CODE_CB(self._on_alloc_entry)
            entries = [self.symbol(s) for s in allocation_entries(self)]
            self._alloc_hooks = [hook_add(self.uc, UC_HOOK_CODE, self._alloc_cb, a, a) for a in entries]
            for a in entries:
                self.uc.ctl_remove_cache(a, a + 1)      # hooks fire only in code translated after them
        self._alloc_tracker = callback
        self._alloc_depth = 0

    def stop_tracking_allocations(self):
        self._alloc_tracker = None

    def _on_alloc_entry(self, _uc, addr, _size, _ud):
        if self._alloc_tracker is None or self._alloc_depth:
            return
        self._alloc_stop = addr
        self.counter.uncount(addr)         # the block stops before its first instruction: it reruns
        uclib.uc_emu_stop(self.uc._uch)

    def _measure_allocation(self, entry):
        """Run the allocation call stopped at `entry` to its return, measured; returns the
        pc to go on from (its return address)."""
        from emu.paths import measure_call
        ret = self.mem.u64(self.regs.read(UC_X86_REG_RSP))
        # unicorn checks `until` only where it translates a block: a block at ret cached from
        # an earlier run would run through it
        self.uc.ctl_remove_cache(ret, ret + 1)
        self._alloc_depth += 1                 # nested entries run through
        try:
            sample = measure_call(self, lambda: self.run_from(entry, until=ret))
        finally:
            self._alloc_depth -= 1
        if self._alloc_tracker is not None:
            self._alloc_tracker(sample)
        return ret


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
        if (self.image and self._bad_access and message is None and self._bad_access[1] < MIN_LEGAL_POINTER
                and self.image.text[0] <= pc < self.image.text[1]):
            # Go's sigpanic: a fault below minLegalPointer in Go code is a nil dereference panic.
            from emu.errors import GoPanic
            from runtime_model.traceback import NIL_DEREFERENCE, goroutine_frames
            addr = self._bad_access[1]
            frames = goroutine_frames(self, pc, self.regs.read(UC_X86_REG_RSP))
            return GoPanic(f"{NIL_DEREFERENCE}\n[signal SIGSEGV: segmentation violation code=0x1 "
                           f"addr={addr:#x} pc={pc:#x}]", frames)
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
        self._stepper = Stepper(self, routine, args)     # (prepare_call finishes a stepped call)
        return self._stepper

    def _finish_stepped_call(self):
        """A call begun with begin() and not stepped to its end runs to its end, unrecorded,
        before another call starts: stopped between two instructions it may hold a torn
        update (a span's allocCache moved, its freeindex not yet). If it fails, that
        failure is what the new call reports."""
        st, self._stepper = self._stepper, None
        if st is None or st.done:
            return
        st.close()
        if st.pc != self.exit_addr:
            self.run_from(st.pc)

    def step(self):
        """Run one instruction of the call begun with begin(); its StepRecord, or None when done."""
        if self._stepper is None:
            raise BadInput("step() needs a call started with begin(routine, ...)")
        rec = self._stepper.step()
        if rec is None:
            self._stepper = None
        return rec

    def trace(self, routine, *args, limit=1_000_000):
        """Every step of one call of `routine`, as a list of StepRecords. A call still
        running after `limit` instructions is finished unrecorded, then reported."""
        A.integer("limit", limit, 1)
        stepper = self.begin(routine, *args)
        out, _ = stepper.record(limit)          # one emu_start for the whole call
        if len(out) >= limit:
            err = EmulationFault(f"{routine} did not return within {limit} instructions", pc=out[-1].address)
            try:
                self._finish_stepped_call()
            except GomemuError as e:
                raise err from e
            raise err
        self._stepper = None
        return out

    # ---- counting -------------------------------------------------------------------------
    def snapshot(self):
        """Counter state now, for counts_since (the call-out page's stubs are not counted)."""
        return (self.counter.snapshot(), dict(self.callout_counts))


    def total_instructions(self):
        """Every instruction counted since the machine started (the block counter's running
        total: the clock reads it at every slow path)."""
        return self.counter.instructions()

    def counts_since(self, snap):
        if not (isinstance(snap, tuple) and len(snap) == 2 and isinstance(snap[1], dict)):
            raise BadInput("snap must be what snapshot() returned")
        before, callouts_before = snap
        blocks = {self.counter.base + off: (d, int(self.counter.sizes[off]))
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
        self._check_type("typ", typ)
        x = self.call("runtime.mallocgc", size, typ, int(A.flag("needzero", needzero)))
        if self.checked:
            self.runtime.check_allocation(x, size)
        return x

    def _check_type(self, name, typ):
        """typ is 0 (no pointers) or a type descriptor made by runtime.new_type."""
        if typ != 0 and typ not in self.runtime.type_names:
            raise BadInput(f"{name} {typ!r} is not a type descriptor made by runtime.new_type")

    def set_alloc_trace(self, on):
        """GODEBUG=allocfreetrace=1: log every allocation (runtime.alloc_trace)."""
        self.mem.w8(self.symbol("runtime.debug.malloc"), int(A.flag("on", on)))

    def malloc_small_noscan(self, size, needzero=True):
        """mallocgcSmallNoscan(size, nil, needzero): returns (address, slot size)."""
        check_small_noscan_size(size)
        x = self.call("runtime.mallocgcSmallNoscan", size, 0, int(A.flag("needzero", needzero)))
        elemsize = self.regs.read(UC_X86_REG_RBX)
        if self.checked:
            self.runtime.check_allocation(x, size)
        return x, elemsize

    def malloc_batch(self, sizes, types=None, needzero=True):
        """Many allocations in one run of a driver loop; returns their addresses as a numpy
        array. Without types: small noscan sizes, each through mallocgcSmallNoscan (as a
        call site whose size the compiler knows calls it). With types (one type descriptor
        from `runtime.new_type` for all, or one per size; 0 for no pointers): each through
        runtime.mallocgc(size, type, needzero), any size and path (tiny, scan, the
        size-specialised routines, large)."""
        arr, zero = _int_vector(sizes), int(A.flag("needzero", needzero))
        if arr is None:
            raise BadInput("sizes must be a one-dimensional sequence of integers")
        n = len(arr)
        if types is None:
            if n and not (sc.TINY_SIZE <= arr.min() and arr.max() <= sc.MAX_SMALL_NOSCAN):
                bad = next(int(v) for v in arr if not sc.TINY_SIZE <= v <= sc.MAX_SMALL_NOSCAN)
                check_small_noscan_size(bad)
            typ = np.zeros(n, dtype=np.uint64)
            fn, blocks = self.symbol("runtime.mallocgcSmallNoscan"), 64 * n
        else:
            if n and not (arr.min() >= 0 and arr.max() < 1 << 40):
                bad = next(int(v) for v in arr if not 0 <= v < 1 << 40)
                raise BadInput(f"sizes must be integers in 0..2^40, not {bad}")
            typ = np.full(n, types) if np.ndim(types) == 0 else _int_vector(types)
            if typ is None or len(typ) != n or typ.dtype.kind not in "iu":
                raise BadInput(f"types must be one type descriptor or one per size ({n}), not {types!r}")
            for t in set(typ.tolist()):
                self._check_type("types:", t)
            fn = self.symbol("runtime.mallocgc")
            blocks = 64 * n + int(arr.sum()) // 64          # clearing a big object runs a block per 64-256 bytes
        return self._run_batch(fn, arr, typ, zero, blocks)

    def store_pointers(self, slots, ptrs):
        """`*slots[i] = ptrs[i]` in order, as compiled code does each (store_pointer), in one
        run of a driver loop."""
        sl, pt = _int_vector(slots), _int_vector(ptrs)
        if sl is None or pt is None or len(sl) != len(pt):
            raise BadInput("slots and ptrs must be one-dimensional sequences of integers of one length")
        n = len(sl)
        if n and np.count_nonzero(sl.astype(np.uint64) % 8):
            bad = next(int(v) for v in sl if v % 8)
            raise BadInput(f"slot = {bad:#x} is not 8-byte aligned (a pointer slot is)")
        self._run_batch(self.symbol(WB_DIALECTS[self.wb_dialect]), sl, pt, 0, 16 * n)

    def _run_batch(self, fn, a, b, c, blocks):
        """results[i] = fn(a[i], b[i], c) by the driver loop (asm/driver.s) with a block budget
        for its work, then (checked) the whole state: the loop ran no Python but its slow
        paths. Returns the results; an empty batch runs nothing."""
        n = len(a)
        if not n:
            return np.zeros(0, dtype="<u8")
        buf = self._batch_buffer(24 * n)
        self.mem.write(buf, a.astype("<u8").tobytes() + b.astype("<u8").tobytes())
        saved = self.block_budget
        self.block_budget = min(MAX_BLOCK_BUDGET, max(saved, blocks + 1000))
        try:
            self.call("gomemu.batchloop", buf, buf + 8 * n, c, n, fn, buf + 16 * n)
        finally:
            self.block_budget = saved
        if self.checked:
            self.runtime.check_state()
        return np.frombuffer(self.mem.read(buf + 16 * n, 8 * n), dtype="<u8")

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
        if not hasattr(gen, "send") or not hasattr(gen, "close"):
            raise BadInput(f"gen must be a generator (a slow path), not {gen!r}")
        self._finish_stepped_call()
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

    def prepare_call_on(self, g, routine, args, sp=None, entry=None):
        """Registers and stack for calling `routine` on goroutine g: g becomes the current
        g (m.curg, TLS, R14) and SP is at the top of its stack (or at `sp`), holding the
        return address goexit (the program's runtime.goexit+1 as newproc1 sets it, or
        gomemu.exit standing for it in the handwritten machine). Returns the entry."""
        entry = self.symbol(routine) if entry is None else entry
        args = check_call_args(routine, args, len(ABI_INT_REGS))
        stacks = self.runtime.stacks
        stacks.check_runnable(g)
        if sp is None:
            # gostartcall: push goexit; newproc1 leaves 4 words above it, the spill slots of
            # up to 4 register arguments: more arguments get more room
            sp = self.mem.u64(g + L.G.sched + L.Gobuf.sp) - 8 - 8 * max(0, len(args) - 4)
        A.integer("sp", sp)                   # anywhere: tests put SP off the stack on purpose
        self._finish_stepped_call()
        stacks.execute(g)
        self._enter(sp, g, args, self.goexit_pc)
        return entry

    def call_on(self, g, routine, *args, sp=None, entry=None):
        """Run `routine(args...)` on goroutine g (see prepare_call_on); returns AX. The
        stack grows through morestack/newstack as needed. If the call fails (a fault, a
        fatal error such as a stack overflow), g is dead and the machine stays usable."""
        entry = self.prepare_call_on(g, routine, args, sp, entry)
        try:
            self.run_from(entry, until=self.goexit_pc)
        except BaseException:
            self.runtime.stacks.died(g)
            raise
        self.runtime.stacks.park(g)
        return self.regs.read(UC_X86_REG_RAX)

    def goexit(self, g):
        """proc.go: goexit0: g is done; its g (and a starting-size stack) go on the free list."""
        self.runtime.stacks.check_runnable(g)
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

    def _free_text(self):
        """The first byte of gomemu's text region after everything loaded into it."""
        return max(p.end for p in self.text.programs if self.gomemu_text.base <= p.base < self.gomemu_text.end)

    def next_text_base(self):
        """Where the next routines loaded into the text segment start (page aligned)."""
        return (self._free_text() + L.PAGE - 1) // L.PAGE * L.PAGE

    def add_program(self, prog):
        """Place a Program built elsewhere (e.g. a compiled Go function, emu/gobuild.py) at
        its base, which must be next_text_base() or later."""
        if prog.base < self._free_text() or prog.end > self._text_limit:
            raise GomemuError("the code does not fit in the free text segment")
        clash = set(prog.symbols) & set(self.symbols)
        if clash:
            raise BadInput(f"routine names already defined: {', '.join(sorted(clash))}")
        self.mem.write(prog.base, prog.code)
        self.uc.ctl_remove_cache(prog.base, prog.end)
        self.symbols.update(prog.symbols)
        self.text.add(prog)
        self.counter.mark_instructions([e.address for e in prog.listing], prog.base, prog.end)
        return prog

    # ---- the write barrier (asm/gc_write_barrier*.s, runtime_model/mwbbuf.py) ---------------
    _gcwork = None

    @property
    def gcwork(self):
        """The GC's mark state the barrier shades into (runtime_model/mgcmark.py: GcWork)."""
        if self._gcwork is None:
            from runtime_model.mgcmark import GcWork
            self._gcwork = GcWork(self.runtime.mheap)
            self._gcwork.collector = self.runtime.gc
        return self._gcwork

    def set_write_barrier(self, on):
        """mgc.go: setGCPhase: writeBarrier.enabled is set while the GC marks."""
        self.mem.w8(self.symbol("runtime.writeBarrier"), int(A.flag("on", on)))

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
        if A.integer("slot", slot) % 8:
            raise BadInput(f"slot = {slot:#x} is not 8-byte aligned (a pointer slot is)")
        self.call(WB_DIALECTS[self.wb_dialect], slot, A.integer("ptr", ptr))

    def load_rodata(self, name, data):
        """Read-only data placed in free text (as Go's linker puts rodata near text), within
        rel32 reach of code loaded with load_code. Returns its address."""
        from asm.assembler import Program
        data = A.data("data", data)
        if not isinstance(name, str) or name in self.symbols:
            raise BadInput(f"name must be a new symbol name, not {name!r}")
        base = (self._free_text() + 63) // 64 * 64
        if base + len(data) > self._text_limit:
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
        if not isinstance(name, str) or name in self.symbols:
            raise BadInput(f"name must be a new routine name, not {name!r}")
        A.data("code", code)
        known = dict(self.symbols)
        known.update(symbols or {})
        known.update(self.stub_missing_calls(name, relocations, known))
        base = self.next_text_base()
        if base + len(code) > self._text_limit:
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
        self.counter.mark_instructions([e.address for e in prog.listing], prog.base, prog.end)
        return prog


def _int_vector(values):
    """values as a one-dimensional numpy array of integers (an empty sequence too), or None."""
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError, OverflowError):
        return None
    if arr.ndim != 1:
        return None
    if not len(arr):
        return arr.astype(np.int64)
    return arr if arr.dtype.kind in "iu" else None


def check_call_args(routine, args, most):
    """The register arguments of a call as ints: at most `most`, each a 64-bit integer
    (negative ones as two's complement; numpy's integers too)."""
    if len(args) > most:
        raise BadInput(f"{routine}: at most {most} register arguments")
    if any(type(a) is not int or not -(1 << 63) <= a <= A.U64_MAX for a in args):
        args = tuple(A.integer(f"{routine}: argument {i}", a, -(1 << 63), A.U64_MAX) for i, a in enumerate(args))
    return args


def parse_gogc(v):
    """The gogc argument: an integer percentage (negative: off) or "off" (the GOGC
    environment variable's own rules are runtime_model/gcsettings.py: read_gogc)."""
    if v == "off":
        return -1
    if isinstance(v, bool) or not isinstance(v, int):
        raise BadInput(f"gogc must be an integer percentage or 'off', not {v!r}")
    return max(v, -1)


def check_small_noscan_size(size):
    if not isinstance(size, int) or isinstance(size, bool):
        raise BadInput(f"size must be an integer, not {size!r}")
    if not sc.TINY_SIZE <= size <= sc.MAX_SMALL_NOSCAN:
        raise BadInput(f"size {size} is outside the small noscan path "
                       f"({sc.TINY_SIZE}..{sc.MAX_SMALL_NOSCAN} bytes; smaller objects take the tiny "
                       f"allocator and larger ones the large-object path)")
