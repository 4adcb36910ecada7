"""`gomemu stack`: what the stack check and stack growth cost; `gomemu step stack`
(dispatched from emu/cli/step.py): one growth, instruction by instruction.

Counts are exact machine instructions (the block counter); newstack/copystack
run in Python, and what they did is reported beside them: bytes copied,
frames walked, pointer slots checked and pointers adjusted. --json:
docs/json.md, gomemu.stack.
"""

from unicorn.x86_const import UC_X86_REG_RAX as _RAX

from emu import layout as L
from emu.cli import inputs
from emu.cli.jsonout import document, dumps
from emu.cli.output import status
from emu.machine import Machine
from runtime_model import stack as S

FRAMES = (0x40, 0x200, 0x2000)        # one frame size per prologue form: small, large, huge
REC_FRAME = 0x30
MAX_DEPTH = 100_000                   # 5.6 MB of stack, 2 M instructions: seconds


def register(sub):
    p = sub.add_parser("stack", help="instructions for the stack check, morestack and a stack growth")
    p.add_argument("--depth", type=inputs.bounded(1, MAX_DEPTH), default=1000,
                   help=f"recursion depth of the growth measurement (1..{MAX_DEPTH}; default 1000; "
                        f"{REC_FRAME}-byte frames, {REC_FRAME + 8} bytes of stack a call)")
    p.add_argument("--json", action="store_true", help="one JSON document (docs/json.md: gomemu.stack)")
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


def copy_json(c):
    """What one copystack did (runtime_model.stack.Copy), as data."""
    return {"old": {"lo": c.old[0], "hi": c.old[1]}, "new": {"lo": c.new[0], "hi": c.new[1]},
            "old_size": c.old_size, "new_size": c.new_size, "copied": c.used, "frames": c.frames,
            "words_checked": c.words_checked, "pointers_adjusted": c.adjusted}


def measure(m, depth=1000):
    """The stack check passing and failing for each prologue form, and a recursion of
    `depth` calls with its growths, as data (the --json document's fields)."""
    checks = []
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
        body = 2                                          # MOVQ $1, AX; RET
        checks.append({"frame_bytes": n, "prologue": S.prologue_form(n),
                       "passes": {"instructions": passed.instructions - body},
                       "fails": {"instructions": failed.instructions - body, "by_routine": failed.by_routine(),
                                 "newstack": copy_json(m.runtime.stacks.copies[-1])}})
        m.goexit(g)
    g = m.new_goroutine()
    v = m.persistentalloc(8)
    before = len(m.runtime.stacks.copies)
    snap = m.snapshot()
    m.call_on(g, "gomemu.rec", depth, v)
    counts = m.counts_since(snap)
    routines = counts.by_routine()
    m.goexit(g)
    return {"checks": checks,
            "recursion": {"function": "gomemu.rec", "depth": depth, "frame_bytes": REC_FRAME,
                          "instructions": counts.instructions, "by_routine": routines,
                          "growths": [copy_json(c) for c in m.runtime.stacks.copies[before:]]}}


def text_lines(data):
    out = ["goroutine stacks (prologue check, morestack -> newstack -> copystack -> gogo):"]

    def row(label, n=None, routines=None, detail=""):
        out.append(f"  {label:<86} {'' if n is None else n:>8}")
        if routines:
            out.append("      " + ", ".join(f"{r} {k}" for r, k in routines.items()))
        if detail:
            out.append(f"      {detail}")

    def copied(c):
        return (f"copied {c['copied']} bytes, {c['frames']} frame{'s' if c['frames'] != 1 else ''}, "
                f"{c['words_checked']} words checked, {c['pointers_adjusted']} pointers adjusted")

    for c in data["checks"]:
        what = f"{c['prologue']} frame ({c['frame_bytes']} bytes)"
        ns = c["fails"]["newstack"]
        row(f"{what}: check passes", c["passes"]["instructions"])
        row(f"{what}: check fails, morestack, newstack, gogo, check again", c["fails"]["instructions"],
            c["fails"]["by_routine"], f"newstack (Python): {ns['old_size']} -> {ns['new_size']} bytes, {copied(ns)}")
    rec = data["recursion"]
    for c in rec["growths"]:
        row(f"growth {c['old_size']} -> {c['new_size']}", detail=copied(c))
    outside = {r: k for r, k in rec["by_routine"].items() if r != rec["function"]}
    k = len(rec["growths"])
    row(f"recursion depth {rec['depth']} ({rec['frame_bytes']}-byte frames): {k} growths", rec["instructions"],
        rec["by_routine"], f"{sum(outside.values())} of them in {', '.join(outside) or 'no other routine'}"
                           f" ({sum(outside.values()) // max(k, 1)} per growth)")
    return out


def report_data(depth=1000):
    m = Machine()
    setup(m)
    return measure(m, depth)


def run(args):
    with status(f"measuring (rec({args.depth}) on a goroutine)"):
        data = report_data(args.depth)
    print(dumps(document("stack", **data)) if args.json else "\n".join(text_lines(data)))
    return 0


# ---- gomemu step stack ------------------------------------------------------------------------

def step(depth, as_json):
    """One stack growth, instruction by instruction: gomemu.rec(depth) on a fresh
    goroutine; the default depth grows the 2 KiB stack once."""
    from emu.cli.step import stream
    from emu.stepping import Stepper
    m = Machine()
    setup(m)
    g = m.new_goroutine()
    v = m.persistentalloc(8)
    stepper = Stepper(m, "gomemu.rec", (depth, v))
    stepper.pc = m.prepare_call_on(g, "gomemu.rec", (depth, v))
    copies = m.runtime.stacks.copies

    def grown(rec):
        if not rec.callouts:
            return {}
        c = copies[-1]
        return {"stack_copy": (copy_json(c), (
            f"{'':7}newstack/copystack (Python): stack {c.old[0]:#x}..{c.old[1]:#x} -> {c.new[0]:#x}..{c.new[1]:#x} "
            f"({c.old_size} -> {c.new_size} bytes); copied {c.used} bytes, {c.frames} frames, "
            f"{c.words_checked} words checked, {c.adjusted} pointers adjusted"))}
    header = document("step", path="stack", routine="gomemu.rec", args=[depth, v], depth=depth, goroutine=g)
    try:
        n = stream(stepper, header, as_json, grown)
    except BaseException:
        m.runtime.stacks.died(g)
        raise
    m.runtime.stacks.park(g)
    result, expected = m.regs.read(_RAX), S.recursion_result(depth, 0)
    print(dumps({"instructions": n, "stack_growths": len(copies), "returned": result, "expected": expected})
          if as_json else f"-- {n} instructions; {len(copies)} stack growth(s); returned {result} "
                          f"(rec({depth}, &0) = {expected})")
    return 0

