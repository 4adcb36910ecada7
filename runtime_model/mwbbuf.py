"""runtime/mwbbuf.go and the bulk barriers of mbarrier.go/mbitmap.go, in Python.

The write barrier's fast path is machine code (asm/gc_write_barrier.s, and
Go 1.20's asm/gc_write_barrier_legacy.s): it only appends pointers to the
current P's wbBuf, a 512-word buffer inside `p` (emu/layout.py: P.wbBuf,
WBBuf). When a reservation does not fit, the machine code calls the
`runtime.wbBufFlush` call-out, which lands here:

    wbBufFlush1: take the n buffered pointers, shade each one (greying its
    object in the mark bits of its span), and reset next/end.

wbBufFlush is Go code, so it may use every register the Go ABI lets a callee
use. `wb_buf_flush` therefore writes junk into all of them (all GPRs but RSP,
RBP and R14 = g) before returning, so that a barrier that forgets to save a
register is caught instead of passing by luck.

`wbMove` and `typedmemmove` are what the compiler calls for stores of whole
values containing several pointers (`*dst = *src` of a struct or array).
They are Go code in the runtime and are modelled here: bulkBarrierPreWrite
walks the type's pointer bitmap and buffers (old value, new value) for each
pointer word through the same wbBuf, flushing when full (wbBuf.get2).
Simplified: dst must be in a heap span (the data/bss bitmaps of
bulkBarrierPreWrite are not modelled: a dst outside the heap gets no barrier,
as Go gives a stack destination); GCMaskOnDemand types are not handled.
"""

from emu.errors import InvariantError
from emu.layout import G, M, P, Type, WBBuf
from runtime_model.mem_linux import throw

# Registers a call to Go code may clobber: every GPR except RSP, RBP (frame
# pointer, preserved by every Go function) and R14 (g). unicorn's x86 ids.
from unicorn.x86_const import (UC_X86_REG_R8, UC_X86_REG_R9, UC_X86_REG_R10, UC_X86_REG_R11,
                               UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R15, UC_X86_REG_R14,
                               UC_X86_REG_RAX, UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDI,
                               UC_X86_REG_RDX, UC_X86_REG_RSI)

CLOBBERED_BY_GO_CALL = (UC_X86_REG_RAX, UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RSI,
                        UC_X86_REG_RDI, UC_X86_REG_R8, UC_X86_REG_R9, UC_X86_REG_R10, UC_X86_REG_R11,
                        UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R15)
CLOBBER_PATTERN = 0xDEAD_0000_0000_0000


def wbbuf_addr(pp):
    return pp + P.wbBuf


def current_p(machine):
    """getg().m.p.ptr(), through the g in R14."""
    mem = machine.mem
    g = machine.regs.read(UC_X86_REG_R14)
    return mem.u64(mem.u64(g + G.m) + M.p)


def reset(mem, pp):
    """(*wbBuf).reset: next = &buf[0], end = &buf[len(buf)]."""
    b = wbbuf_addr(pp)
    start = b + WBBuf.buf
    mem.w64(b + WBBuf.next, start)
    mem.w64(b + WBBuf.end, start + 8 * WBBuf.ENTRIES)


def buffered(mem, pp):
    """The pointers in pp.wbBuf, oldest first."""
    b = wbbuf_addr(pp)
    start = b + WBBuf.buf
    check(mem, pp)
    n = (mem.u64(b + WBBuf.next) - start) // 8
    return memoryview(mem.read(start, 8 * n)).cast("Q").tolist()     # one read of the entries


def problem(mem, pp):
    """What is wrong with pp.wbBuf's next and end, or None: next within the buffer on
    a pointer boundary, end just past its last entry."""
    b = wbbuf_addr(pp)
    start, nxt, end = b + WBBuf.buf, mem.u64(b + WBBuf.next), mem.u64(b + WBBuf.end)
    if end != start + 8 * WBBuf.ENTRIES:
        return f"p.wbBuf.end = {end:#x}, not &buf[{WBBuf.ENTRIES}] = {start + 8 * WBBuf.ENTRIES:#x}"
    if not start <= nxt <= end or (nxt - start) % 8:
        return f"p.wbBuf.next = {nxt:#x} is not an entry of the buffer [{start:#x}, {end:#x}]"
    return None


def check(mem, pp):
    """Raise InvariantError if pp.wbBuf's pointers are broken."""
    bad = problem(mem, pp)
    if bad:
        raise InvariantError(bad)


def wb_buf_flush1(mem, gcw, pp):
    """mwbbuf.go: wbBufFlush1: shade every buffered pointer, then reset the buffer.
    Returns the pointers flushed."""
    ptrs = buffered(mem, pp)
    mem.w64(wbbuf_addr(pp) + WBBuf.next, 0)     # Go zeroes next while it works
    collector = getattr(gcw, "collector", None)
    if collector is not None and collector.marker is not None:
        collector.shade(ptrs)                   # a cycle is marking: its marker shades them
    else:
        for ptr in ptrs:
            gcw.shade(ptr)
    reset(mem, pp)
    return ptrs


def wb_buf_flush(machine):
    """mwbbuf.go: wbBufFlush, the call-out the barrier's machine code makes when the
    buffer is full. Leaves junk in every register Go code may clobber."""
    ptrs = wb_buf_flush1(machine.mem, machine.gcwork, current_p(machine))
    machine.wb_flushes.append(ptrs)
    for i, reg in enumerate(CLOBBERED_BY_GO_CALL):
        machine.regs.write(reg, CLOBBER_PATTERN | (len(machine.wb_flushes) << 8) | i)


def _get(machine, pp, n):
    """wbBuf.get1/get2: n slots of the buffer, flushing first when they do not fit."""
    mem = machine.mem
    b = wbbuf_addr(pp)
    if mem.u64(b + WBBuf.next) + 8 * n > mem.u64(b + WBBuf.end):
        machine.wb_flushes.append(wb_buf_flush1(mem, machine.gcwork, pp))
    p = mem.u64(b + WBBuf.next)
    mem.w64(b + WBBuf.next, p + 8 * n)
    return p


def pointer_words(mem, typ):
    """Word indexes of the pointers in a value of type typ (its GCData bitmap)."""
    nwords = mem.u64(typ + Type.PtrBytes) // 8
    mask = mem.u64(typ + Type.GCData)
    return [w for w in range(nwords) if mem.u8(mask + w // 8) >> (w % 8) & 1]


def bulk_barrier_pre_write(machine, dst, src, size, typ):
    """mbitmap.go: bulkBarrierPreWrite: buffer (*dst word, *src word) for every pointer
    word of typ in [dst, dst+size), before the caller copies. src 0: old values only."""
    if (dst | src | size) & 7:
        throw("bulkBarrierPreWrite: unaligned arguments")
    mem = machine.mem
    if not mem.u8(machine.symbol("runtime.writeBarrier")):
        return
    s = machine.runtime.mheap.span_of(dst)
    if s is None or s.state != 1 or not s.base() <= dst < s.limit:
        return                       # not a heap object: data/bss bitmaps not modelled, stacks need none
    pp = current_p(machine)
    for w in pointer_words(mem, typ):
        if 8 * w >= size:
            break
        addr = dst + 8 * w
        if src == 0:
            mem.w64(_get(machine, pp, 1), mem.u64(addr))
        else:
            p = _get(machine, pp, 2)
            mem.w64(p, mem.u64(addr))
            mem.w64(p + 8, mem.u64(src + 8 * w))


def wb_move(machine, typ, dst, src):
    """mbarrier.go: wbMove: the barrier half of a typed copy; the caller copies."""
    bulk_barrier_pre_write(machine, dst, src, machine.mem.u64(typ + Type.PtrBytes), typ)


def typedmemmove(machine, typ, dst, src):
    """mbarrier.go: typedmemmove: barrier for every pointer word, then memmove."""
    if dst == src:
        return
    mem = machine.mem
    if mem.u8(machine.symbol("runtime.writeBarrier")) and mem.u64(typ + Type.PtrBytes):
        bulk_barrier_pre_write(machine, dst, src, mem.u64(typ + Type.PtrBytes), typ)
    size = mem.u64(typ + Type.Size_)
    mem.write(dst, mem.read(src, size))
