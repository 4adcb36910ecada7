"""`gomemu step`: watch one allocation instruction by instruction."""

import json

from emu.errors import BadInput
from emu.machine import Machine, check_small_noscan_size


def register(sub):
    p = sub.add_parser("step", help="step through one allocation, one instruction per record")
    p.add_argument("path", choices=["small", "stack"],
                   help="which path (small: mallocgcSmallNoscan; stack: a stack growth, see --depth)")
    p.add_argument("--size", type=int, default=16, help="object size in bytes (default 16)")
    p.add_argument("--warm", type=int, default=1,
                   help="allocations of the same size made first, unrecorded (default 1; 0 shows "
                        "the first allocation: refill and heap growth)")
    p.add_argument("--json", action="store_true", help="one JSON object per instruction")
    p.add_argument("--depth", type=int, default=20,
                   help="stack: recursion depth of gomemu.rec (default 20: the 2 KiB stack grows once)")
    p.set_defaults(handler=run)


def run(args):
    if args.path == "stack":
        from emu.cmd_stack import step
        return step(args)
    check_small_noscan_size(args.size)
    if args.warm < 0:
        raise BadInput(f"--warm must be >= 0, not {args.warm}")
    m = Machine()
    if args.warm:
        m.malloc_batch([args.size] * args.warm)
    n = 0
    for rec in m.begin("runtime.mallocgcSmallNoscan", args.size, 0, 1):
        print(json.dumps(rec.as_dict()) if args.json else rec.format())
        n += 1
    if not args.json:
        print(f"-- {n} instructions; returned {m.regs.read(_RAX):#x}")
    return 0


from unicorn.x86_const import UC_X86_REG_RAX as _RAX  # noqa: E402
