"""The fast paths `gomemu calibrate` checks, each recorded as one call on a warm Machine.

A `Recorded` call is what both the model and the native run need: the call's
segments. A segment is a piece of the call that runs natively from one
state: its entry, its 16 registers (rsp pointing at the slot where the
trampoline's CALL puts its return address), the emulated process's memory at
its start as native Regions, its recorded Stream, and the exits where it
ends (an address the native run turns into a return to the trampoline). A
path without a call-out is one segment ending at the machine's exit address;
a call-out (Python standing for Go code, emu/callouts.py) splits the call
into a segment up to the call-out's stub and one from the instruction after
it, so the native figures are the machine code's alone, as the model's are.
"""

from dataclasses import dataclass

import unicorn.x86_const as X
from unicorn import UC_HOOK_BLOCK, UC_HOOK_CODE

from emu import layout as L
from emu.timing.native import Region
from emu.timing.recorder import Recorder, Stream

GO_REGS = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi"] + [f"r{i}" for i in range(8, 16)]
LARGE = 100_000                      # a large object: no size class (maxSmallSize 32 KiB)
PROBE_FRAME = 0x40                   # the stack check of a small frame (cli/stack.py's first probe)


@dataclass
class Segment:
    entry: int
    regs: dict
    regions: list
    stream: Stream
    exits: tuple
    after: list = None               # the emulator's memory at its end as Regions (None: the machine's now)
    resume: bool = False             # entry is the return address of a call-out (run_native's resume)

    def read_after(self, machine):
        """read(address, size) of the emulator's memory when this segment ended."""
        if self.after is None:
            return machine.mem.read
        return lambda a, n: read_regions(self.after, a, n)


@dataclass
class Recorded:
    name: str
    machine: object
    segments: list
    callouts: list                   # call-out symbols the call ran (not in the figures)


def machine_regions(m):
    """The emulated process's memory now, as native Regions (the Machine's layout)."""
    regions = []
    for b in m.mem._backings:
        r = b.region
        if hasattr(b, "mapped"):                 # the heap: only the granules in use
            for k in sorted(b.mapped):
                a = r.base + k * b.granule
                data = bytes(b.buf[k * b.granule:(k + 1) * b.granule])
                regions.append(Region(a, b.granule, data[:len(data.rstrip(b"\0"))], "rw"))
            continue
        base, size = r.base, r.size
        if base == L.OFFHEAP.base:               # only what persistentalloc handed out
            size = (m._offheap_next - base + 0xFFF) & ~0xFFF
        elif base == L.STACK.base:               # the top 64 KiB of g0's stack
            base, size = r.end - 0x10000, 0x10000
        off = base - r.base
        data = bytes(b.buf[off:off + size])
        regions.append(Region(base, size, data[:len(data.rstrip(b"\0"))], r.prot or "r"))   # the rest is zero
    return regions


def read_regions(regions, a, n):
    """Bytes [a, a+n) of a Region list (all within one region)."""
    for r in regions:
        if r.address <= a and a + n <= r.address + r.size:
            return bytes(r.data[a - r.address:a - r.address + n]).ljust(n, b"\0")
    raise KeyError(f"{a:#x}+{n:#x} is in no region")


def _regs(m):
    return {n: m.regs.read(getattr(X, f"UC_X86_REG_{n.upper()}")) for n in GO_REGS}


def record(m, name, entry, stop):
    """Run the call prepared at `entry` (registers and stack set) to `stop`, recording it,
    split at every call-out into Segments (module comment)."""
    page = m.callout_page
    starts = [(entry, _regs(m), machine_regions(m))]
    callouts = []
    ends = []

    def on_stub_block(uc, addr, _size, _u):
        # a block hook fires before the code hooks of the block's instruction, so before the
        # machine's call-out hook: the memory as the machine code left it
        ends.append(machine_regions(m))

    def on_stub(uc, addr, _size, _u):
        # runs after the machine's own call-out hook (added first): the Python work is done,
        # the stub's RET has not run; the next segment starts at its return address
        rsp = m.regs.read(X.UC_X86_REG_RSP)
        regs = _regs(m)
        regs["rsp"] = rsp                        # the slot the RET pops, where the CALL will push
        starts.append((m.mem.u64(rsp), regs, machine_regions(m)))
        callouts.append(m.where(addr))

    hooks = [m.uc.hook_add(UC_HOOK_BLOCK, on_stub_block, begin=page, end=page + L.PAGE - 1),
             m.uc.hook_add(UC_HOOK_CODE, on_stub, begin=page, end=page + L.PAGE - 1)]
    try:
        with Recorder(m.uc) as rec:
            m.run_from(entry, until=stop)
    finally:
        for h in hooks:
            m.uc.hook_del(h)
    s = rec.stream()
    cuts = [b for b, a in enumerate(s.block_addr) if page <= a < page + L.PAGE]
    bounds = [0] + cuts + [len(s.block_addr)]
    segs = []
    for k, (e, regs, regions) in enumerate(starts):
        lo = bounds[k] + (1 if k else 0)         # a later segment starts after the stub's block
        hi = bounds[k + 1]
        sub = Stream(s.block_addr[lo:hi], s.block_size[lo:hi],
                     [x - s.rec_start[lo] for x in s.rec_start[lo:hi + 1]],
                     s.rec_addr[s.rec_start[lo]:s.rec_start[hi]], s.rec_meta[s.rec_start[lo]:s.rec_start[hi]])
        last = k == len(cuts)
        segs.append(Segment(e, regs, regions, sub, (stop if last else s.block_addr[cuts[k]],),
                            None if last else ends[k], k > 0))
    return Recorded(name, m, segs, callouts)


def _call(name, m, routine, *args):
    return record(m, name, m.prepare_call(routine, args), m.exit_addr)


def fast_paths():
    """[Recorded] of each fast path of Go 1.27's mallocgc, write barrier and stack check, on
    the default Machine (the real go1.27.3 runtime), each after warming the path."""
    from emu.cli.stack import probe_source
    from emu.machine import WB_DIALECTS, Machine
    from runtime_model.stack import FrameMap
    out = []
    m = Machine()
    m.mallocgc(4)
    out.append(_call("tiny into the current block", m, "runtime.mallocgc", 4, 0, 1))
    m = Machine()
    m.mallocgc(12)
    m.mallocgc(12)
    out.append(_call("tiny new block", m, "runtime.mallocgc", 8, 0, 1))
    m = Machine()
    for _ in range(8):
        m.mallocgc(16)
    out.append(_call("small noscan hit (16 B)", m, "runtime.mallocgc", 16, 0, 1))
    m = Machine()
    T = m.runtime.new_type(24, pointer_words=(0, 2))
    for _ in range(8):
        m.mallocgc(24, T)
    out.append(_call("small scan hit (24 B, heap bits)", m, "runtime.mallocgc", 24, T, 1))
    m = Machine()
    for _ in range(3):
        m.mallocgc(LARGE)
    out.append(_call(f"large ({LARGE} B) without the call-out", m, "runtime.mallocgc", LARGE, 0, 1))
    m = Machine()
    slot, p = m.mallocgc(8, m.runtime.new_type(8, (0,))), m.mallocgc(16)
    m.store_pointer(slot, p)
    out.append(_call("write barrier off", m, WB_DIALECTS["go1.21"], slot, p))
    m = Machine()
    slot, p = m.mallocgc(8, m.runtime.new_type(8, (0,))), m.mallocgc(16)
    m.set_write_barrier(True)
    m.store_pointer(slot, p)
    out.append(_call("write barrier on, room in wbBuf", m, WB_DIALECTS["go1.21"], slot, p))
    m = Machine()
    probe = "gomemu.calibrate_probe"
    m.load([("calibrate_probe.s", probe_source(probe, PROBE_FRAME))])
    m.runtime.stacks.set_frame_map(probe, FrameMap(PROBE_FRAME))
    g = m.new_goroutine()
    m.call_on(g, probe)
    entry = m.prepare_call_on(g, probe, ())
    rec = record(m, f"stack check passing ({PROBE_FRAME}-byte frame, with its 2-instruction body)", entry,
                 m.goexit_pc)
    m.runtime.stacks.park(g)
    out.append(rec)
    return out
