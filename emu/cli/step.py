"""`gomemu step`: watch one allocation (or one stack growth) instruction by instruction."""

import json

from unicorn.x86_const import UC_X86_REG_RAX

from emu.errors import BadInput
from emu.machine import Machine, check_small_noscan_size


def register(sub):
    p = sub.add_parser("step", help="step through one allocation, one instruction per record")
    p.add_argument("path", choices=["malloc", "small", "stack"],
                   help="malloc: runtime.mallocgc for any --size (and --scan); small: the same, "
                        "restricted to the small noscan path; stack: a stack growth, see --depth")
    p.add_argument("--size", type=int, default=16, help="object size in bytes (default 16)")
    p.add_argument("--scan", action="store_true", help="malloc: an object whose first word is a pointer")
    p.add_argument("--warm", type=int, default=1,
                   help="allocations of the same kind made first, unrecorded (default 1; 0 shows "
                        "the first allocation: refill and heap growth)")
    p.add_argument("--size-specialized", action="store_true",
                   help="malloc: Go 1.27's default GOEXPERIMENT sizespecializedmalloc (sizes under 81 B "
                        "run mallocgcTinySC2, mallocgcSmallNoScanSC*, mallocgcSmallScanNoHeaderSC*)")
    p.add_argument("--json", action="store_true", help="one JSON object per instruction")
    p.add_argument("--depth", type=int, default=20,
                   help="stack: recursion depth of gomemu.rec (default 20: the 2 KiB stack grows once)")
    p.set_defaults(handler=run)


def run(args):
    if args.path == "stack":
        from emu.cli.stack import step
        return step(args)
    if args.path == "small":
        check_small_noscan_size(args.size)
    if args.warm < 0:
        raise BadInput(f"--warm must be >= 0, not {args.warm}")
    if not 0 <= args.size < 1 << 32 or (args.scan and args.size < 8):
        raise BadInput(f"size {args.size} is outside 0..4 GiB (8 or more with --scan)")
    m = Machine(size_specialized=args.size_specialized)
    typ = m.runtime.new_type(args.size, (0,)) if args.scan and args.path == "malloc" else 0
    for _ in range(args.warm):
        m.mallocgc(args.size, typ)
    n = 0
    for rec in m.begin("runtime.mallocgc", args.size, typ, 1):
        print(json.dumps(rec.as_dict()) if args.json else rec.format())
        n += 1
    if not args.json:
        print(f"-- {n} instructions; returned {m.regs.read(UC_X86_REG_RAX):#x}")
    return 0
