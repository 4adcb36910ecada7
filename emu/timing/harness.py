"""The native measurement, modelled: the trampoline's timed loop around the routine's stream.

A native figure is (ticks of `inner` calls through the trampoline - ticks of as
many calls of a bare RET) / inner. Part of the routine overlaps the loop's own
work (its POPs, the CALL and RET, the fences), so that difference is not the
routine's latency from an empty pipeline. To compare like with like, the
model runs the same loop: the trampoline's instructions (assembled from the
same source as emu/timing/native.py, with their memory records) around the
recorded stream, and around a bare RET, and takes the same difference.
"""

import capstone
import keystone

from emu.timing import native as N
from emu.timing.model import Model
from emu.timing.recorder import Stream

BASE = N.TRAMP_CANDIDATES[0]
EMPTY = BASE + 0x5F8
RESUME = BASE + 0x5E0          # native.py's resume stub: lea rsp, [rsp + 8]; jmp qword ptr [resume slot]


class Harness:
    """The trampoline's inner loop as blocks the model can run."""

    def __init__(self, serialize=True, exits=()):
        src, self.slots = N.tramp_source(BASE, False, False, serialize)
        self.code = bytes(keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64).asm(src, BASE)[0])
        cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        insns = list(cs.disasm_lite(self.code, BASE))
        call = next(i for i, x in enumerate(insns) if x[2] == "call")
        jnz = next(i for i, x in enumerate(insns) if i > call and x[2] == "jne")
        self.loop = int(insns[jnz][3], 16)                   # inner_loop
        self.call_end = insns[call][0] + insns[call][1]
        self.loop_end = insns[jnz][0] + insns[jnz][1]
        slot0 = self.slots["rax"]
        self.entry_slot = self.slots["entry"]
        self.pop_reads = [(slot0 + 8 * i, 8 << 1) for i in range(16)]
        self.left = self.slots["left"]
        self.stubs = {RESUME: bytes.fromhex("488d642408ff2425") + self.slots["resume"].to_bytes(4, "little")}
        # each exit's stub at the exit itself, as run_native patches it: movabs r11, back; jmp r11 (a RET
        # to the exit is then predicted as natively wherever the return stack holds the exit)
        self.exits = tuple(exits)
        self.exit_stub = b"\x49\xbb" + self.call_end.to_bytes(8, "little") + b"\x41\xff\xe3"

    def read_code(self, fallback):
        code = self.code

        def read(addr, size):
            if addr in self.exits:
                return self.exit_stub[:size]
            if BASE <= addr < BASE + 0x800:
                if addr == EMPTY:
                    return b"\xc3"[:size]
                if addr in self.stubs:
                    return self.stubs[addr][:size]
                return code[addr - BASE:addr - BASE + size]
            return fallback(addr, size)
        return read

    def stream(self, routine, entry_rsp, calls, exit=None, resume=False):
        """`calls` iterations of the loop with `routine` (a Stream; None: the bare RET); exit: the
        exit (one of `exits`) whose stub the routine ends at, or None; resume: it starts through
        the resume stub (run_native's)."""
        ba, bs, rs, ra, rm = [], [], [0], [], []

        def block(addr, size, recs):
            ba.append(addr)
            bs.append(size)
            for a, meta in recs:
                ra.append(a)
                rm.append(meta)
            rs.append(len(ra))
        if routine is None:
            routine = Stream([EMPTY], [1], [0, 1], [entry_rsp], [8 << 1])
        inner = list(zip(routine.block_addr, routine.block_size,
                         [list(zip(routine.rec_addr[a:b], routine.rec_meta[a:b]))
                          for a, b in zip(routine.rec_start, routine.rec_start[1:])]))
        for _ in range(calls):
            block(self.loop, self.call_end - self.loop,
                  self.pop_reads + [(self.entry_slot, 8 << 1), (entry_rsp, 8 << 1 | 1)])
            if resume:
                block(RESUME, len(self.stubs[RESUME]), [(self.slots["resume"], 8 << 1)])
            for a, s, recs in inner:
                block(a, s, recs)
            if exit is not None:
                block(exit, len(self.exit_stub), [])
            block(self.call_end, self.loop_end - self.call_end, [(self.left, 8 << 1), (self.left, 8 << 1 | 1)])
        return Stream(ba, bs, rs, ra, rm)


def modelled_per_call(uarch, read_code, routine, entry_rsp, calls=20, warm=3, serialize=True, exits=(),
                      resume=False):
    """Cycles per call the model predicts for run_native(..., inner=calls, serialize=..., exits=...,
    resume=...): the loop with the routine less the loop with a bare RET, each after `warm` loops
    that warm the caches and the predictor (as the native repetitions do). With exits the
    routine is taken to end at the first (a segment that stops at a call-out or at the exit address)."""
    h = Harness(serialize, exits)
    per = []
    for r in (routine, None):
        m = Model(uarch, h.read_code(read_code))
        ends = r is not None and _reaches_exit(r, entry_rsp, exits)
        s = h.stream(r, entry_rsp, calls, exits[0] if ends else None, resume and r is not None)
        for _ in range(warm):
            m.run(s)
        per.append(m.run(s).cycles / calls)
    return per[0] - per[1]


def _reaches_exit(routine, entry_rsp, exits):
    """Whether the routine ends at one of `exits` rather than by its RET to the trampoline (whose
    return address the CALL put at the entry RSP: the stream's last record reads it)."""
    if not exits:
        return False
    return not (routine.rec_addr and routine.rec_addr[-1] == entry_rsp and not routine.rec_meta[-1] & 1)
