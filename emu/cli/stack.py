"""`gomemu stack`: what the stack check and stack growth cost; `gomemu step stack`
(dispatched from emu/cli/step.py): one growth, instruction by instruction.

Counts are exact machine instructions (the block counter); newstack/copystack
run in Python, and what they did is reported beside them: bytes copied,
frames walked, pointer slots checked and pointers adjusted.
"""

import json

from emu import layout as L
from emu.errors import BadInput
from emu.machine import Machine
from runtime_model import stack as S

FRAMES = (0x40, 0x200, 0x2000)        # one frame size per prologue form: small, large, huge
REC_FRAME = 0x30


def register(sub):
    p = sub.add_parser("stack", help="instructions for the stack check, morestack and a stack growth")
    p.add_argument("--depth", type=int, default=1000,
                   help="recursion depth of the growth measurement (default 1000, 56-byte frames)")
    p.set_defaults(handler=run)


def probe_source(name, framesize):
    """A function with the compiler's prologue for `framesize` whose body only returns 1."""
    check = "\n".join(f"\t{mn}\t{ops}" for mn, ops in S.prologue(framesize))
    return (f"// {name}: the {S.prologue_form(framesize)} stack check of a {framesize}-byte frame\n"
            f"TEXT {name}(SB), 0, ${framesize - 8}-0\n{check}\n"
            "\t// return 1 (the frame is not built: only the check is measured)\n"
            "\tMOVQ\t$1, AX\n\tRET\nmorestack:\n"
            f"\tCALL\truntime·morestack_noctxt(SB)\n\tJMP\t{name}(SB)\n")


def setup(m):
    m.load([(f"probe{n}.s", probe_source(f"gomemu.probe{n}", n)) for n in FRAMES])
    m.load([("rec.s", S.recursion_source("gomemu.rec", REC_FRAME))])
    m.runtime.stacks.set_frame_map("gomemu.rec", S.recursion_frame_map(REC_FRAME))
    for n in FRAMES:
        m.runtime.stacks.set_frame_map(f"gomemu.probe{n}", S.FrameMap(n))


def measure(m, depth=1000):
    """[(label, instructions, by routine, detail)] for the check passing, failing, and growth."""
    out = []
    for n in FRAMES:
        name = f"gomemu.probe{n}"
        g = m.new_goroutine()
        m.call_on(g, name)                               # first call: grows the stack if the frame needs it
        snap = m.snapshot()
        m.call_on(g, name)
        passed = m.counts_since(snap)
        sp = m.mem.u64(g + L.G.sched + L.Gobuf.sp) - 8
        m.mem.w64(g + L.G.stackguard0, sp)               # this check fails once
        snap = m.snapshot()
        m.call_on(g, name)
        failed = m.counts_since(snap)
        c = m.runtime.stacks.copies[-1]
        body = 2                                          # MOVQ $1, AX; RET
        form = S.prologue_form(n)
        out.append((f"{form} frame ({n} bytes): check passes", passed.instructions - body, {}, ""))
        out.append((f"{form} frame ({n} bytes): check fails, morestack, newstack, gogo, check again",
                    failed.instructions - body, failed.by_routine(),
                    f"newstack (Python): {c.old_size} -> {c.new_size} bytes, copied {c.used}, "
                    f"{c.frames} frame(s), {c.words_checked} words checked, {c.adjusted} pointers adjusted"))
        m.goexit(g)
    g = m.new_goroutine()
    v = m.persistentalloc(8)
    before = len(m.runtime.stacks.copies)
    snap = m.snapshot()
    m.call_on(g, "gomemu.rec", depth, v)
    counts = m.counts_since(snap)
    copies = m.runtime.stacks.copies[before:]
    routines = counts.by_routine()
    growth_insns = sum(k for r, k in routines.items() if r != "gomemu.rec")
    for c in copies:
        out.append((f"growth {c.old_size} -> {c.new_size}", None, {},
                    f"copied {c.used} bytes, {c.frames} frames, {c.words_checked} words checked, "
                    f"{c.adjusted} pointers adjusted"))
    out.append((f"recursion depth {depth} ({REC_FRAME}-byte frames): {len(copies)} growths", counts.instructions,
                routines, f"{growth_insns} of them in morestack_noctxt/morestack/gogo "
                          f"({growth_insns // max(len(copies), 1)} per growth)"))
    m.goexit(g)
    return out


def report_lines(m=None, depth=1000):
    m = m or Machine()
    setup(m)
    out = ["goroutine stacks (prologue check, morestack -> newstack -> copystack -> gogo):"]
    for label, n, routines, detail in measure(m, depth):
        out.append(f"  {label:<86} {'' if n is None else n:>8}")
        if routines:
            out.append("      " + ", ".join(f"{r} {k}" for r, k in routines.items()))
        if detail:
            out.append(f"      {detail}")
    return out


def run(args):
    if not 1 <= args.depth <= 100_000:
        raise BadInput(f"--depth must be in 1..100000, not {args.depth}")
    print("\n".join(report_lines(depth=args.depth)))
    return 0


# ---- gomemu step stack ------------------------------------------------------------------------

def step(args):
    """One stack growth, instruction by instruction: gomemu.rec(depth) on a fresh
    goroutine; the default depth grows the 2 KiB stack once."""
    from emu.stepping import Stepper
    depth = getattr(args, "depth", None) or 20
    if not 1 <= depth <= 1000:
        raise BadInput(f"--depth must be in 1..1000 for stepping, not {depth}")
    m = Machine()
    setup(m)
    g = m.new_goroutine()
    v = m.persistentalloc(8)
    stepper = Stepper(m, "gomemu.rec", (depth, v))
    stepper.pc = m.prepare_call_on(g, "gomemu.rec", (depth, v))
    copies = m.runtime.stacks.copies
    n = 0
    try:
        for rec in stepper:
            print(json.dumps(rec.as_dict()) if args.json else rec.format())
            if rec.callouts and not args.json:
                for c in copies[-1:]:
                    print(f"{'':7}newstack/copystack (Python): stack {c.old[0]:#x}..{c.old[1]:#x} -> "
                          f"{c.new[0]:#x}..{c.new[1]:#x} ({c.old_size} -> {c.new_size} bytes); copied {c.used} "
                          f"bytes, {c.frames} frames, {c.words_checked} words checked, {c.adjusted} pointers adjusted")
            n += 1
    except BaseException:
        m.runtime.stacks.died(g)
        raise
    m.runtime.stacks.park(g)
    if not args.json:
        print(f"-- {n} instructions; {len(copies)} stack growth(s); returned "
              f"{m.regs.read(_RAX)} (rec({depth}, &0) = {S.recursion_result(depth, 0)})")
    return 0


from unicorn.x86_const import UC_X86_REG_RAX as _RAX  # noqa: E402
