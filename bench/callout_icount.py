"""Host instructions per call-out: what one refill, allocLarge or gcTrigger.test costs the
Python process, counted by callgrind instead of timed (no noise from the other jobs).

Runs this file's child under
`valgrind --tool=callgrind --collect-atstart=no`, so nothing is counted until the child
turns collection on: it wraps the call-out's handler (as bench_machine.py's timing does)
so that collection is on from the handler's entry to its end, including the machine code
of the OS calls a handler's generator waits for (heap growth). Collection is toggled by
callgrind's client request CALLGRIND_TOGGLE_COLLECT, issued from a few bytes of host
machine code (assembled by keystone, called through ctypes; outside valgrind the same
bytes do nothing and return 0). The instructions counted (callgrind's Ir total), over
the number of call-outs, are reported per call-out:

  refill          4 KiB objects, two per span: every refill takes a fresh span from
                  mheap (heap growth included), GOGC off
  refill-gogc100  the same with GOGC=100: collections, and the sweeping refills do
  allocLarge      40,000-byte objects, GOGC off
  gcTrigger.test  mallocgc's trigger test after each refill of the first case

    python bench/callout_icount.py                     # this tree
    python bench/callout_icount.py --against DIR       # and DIR's, side by side
    python bench/callout_icount.py --smoke             # fewer call-outs

Without valgrind it prints one line saying so and exits 0. The counts of a run repeat
closely (the same Python work on the same emulated heap), so before/after comparisons
need no repetition. Each count includes the few hundred instructions of the toggle
requests themselves. Under valgrind the machine reserves 1 GiB of heap address space
(HEAP_RESERVE), not the default 64 GiB, which valgrind cannot map.

This file is deliberately not named bench_*.py, so `bench/run_all.py` (and CI) do not
run it: under valgrind a machine takes about 20 s to build and a case 30-60 s, even
with --smoke. Figures: docs/machine.md, Speed ("A fifth pass").
"""

import argparse
import ctypes
import json
import mmap
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

# valgrind.h: VALGRIND_DO_CLIENT_REQUEST on amd64. RAX points at the request's six words
# (request, arg1..arg5), RDX holds the default result and receives the result; the four
# rotations of RDI add up to 128 bits (RDI is unchanged), and `xchg rbx, rbx` is the request.
_CLIENT_REQUEST = """
    mov rax, rdi
    xor edx, edx
    rol rdi, 0x3
    rol rdi, 0xd
    rol rdi, 0x3d
    rol rdi, 0x33
    xchg rbx, rbx
    mov rax, rdx
    ret
"""
RUNNING_ON_VALGRIND = 0x1001
CALLGRIND_TOGGLE_COLLECT = 0x43540002     # VG_USERREQ_TOOL_BASE('C', 'T') + 2

HEAP_RESERVE = 1 << 30
CASES = {  # name: (call-out symbol, allocation size, GOGC)
    "refill": ("runtime.(*mcache).refill", 4096, "off"),
    "refill-gogc100": ("runtime.(*mcache).refill", 4096, 100),
    "allocLarge": ("runtime.(*mcache).allocLarge", 40_000, "off"),
    "gcTrigger.test": ("runtime.gcTrigger.test", 4096, "off"),
}


class ClientRequests:
    """valgrind client requests from Python, through an executable page holding the stub."""

    def __init__(self):
        import keystone
        code = bytes(keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64).asm(_CLIENT_REQUEST, 0)[0])
        self._page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        self._page.write(code)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(self._page))
        self._call = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p)(addr)
        # the toggle's words made once: while collection is on, the fewer Python steps
        # around the request, the fewer of them count
        self._toggle_words = (ctypes.c_uint64 * 6)(CALLGRIND_TOGGLE_COLLECT)
        self._toggle = ctypes.addressof(self._toggle_words)

    def request(self, code, *args):
        words = (ctypes.c_uint64 * 6)(code, *args)
        return self._call(ctypes.addressof(words))

    def toggle_collect(self):
        self._call(self._toggle)


def child(case, n):
    """Under callgrind: n call-outs of `case` with collection on only inside the handler.
    Prints {"callouts": ...} as the last line."""
    sys.path.insert(0, str(Path(os.environ.get("GOMEMU_BENCH_TREE", HERE))))
    from emu.machine import Machine
    vg = ClientRequests()
    if not vg.request(RUNNING_ON_VALGRIND):
        raise SystemExit("callout_icount --child runs under valgrind (run it without --child)")
    symbol, size, gogc = CASES[case]
    # valgrind cannot reserve the default 64 GiB of address space; 1 GiB holds every case
    m = Machine(checked=False, gogc=gogc, heap_reserve=HEAP_RESERVE)
    large = size > 32768

    def allocate(k):
        if large:                                    # malloc_batch runs the small paths only
            for _ in range(k):
                m.mallocgc(size)
        else:
            m.malloc_batch([size] * k)
    allocate(200)                                    # warm: translation, first arenas
    co = next(c for c in m.callouts if c.symbol == symbol)
    f, calls = co.handler, [0]

    def counted(*a):
        calls[0] += 1
        vg.toggle_collect()
        r = f(*a)
        if hasattr(r, "send"):                       # a generator: to its end
            r = yield from r
        vg.toggle_collect()
        return r

    def counted_plain(*a):
        calls[0] += 1
        vg.toggle_collect()
        r = f(*a)
        vg.toggle_collect()
        return r
    # The call-out table is shared by the machines of the process; this one is its last.
    object.__setattr__(co, "handler", counted if case != "gcTrigger.test" else counted_plain)
    allocate(n if large else 2 * n)                  # 4 KiB objects: a refill every second one
    print(json.dumps({"callouts": calls[0]}))


def _summary(out_file):
    """Callgrind's Ir total from its output file."""
    text = Path(out_file).read_text()
    m = re.search(r"^summary:\s+(\d+)", text, re.M) or re.search(r"^totals:\s+(\d+)", text, re.M)
    if m is None:
        raise RuntimeError(f"no summary line in {out_file}")
    return int(m.group(1))


def measure(tree, case, n, valgrind):
    """Host instructions per call-out of `case` with `tree`'s code."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        env = dict(os.environ, GOMEMU_BENCH_TREE=str(tree), PYTHONPATH=str(tree))
        cmd = [valgrind, "--tool=callgrind", "--collect-atstart=no", f"--callgrind-out-file={out}",
               sys.executable, str(Path(__file__).resolve()), "--child", case, str(n)]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tree)
        if r.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
        calls = json.loads(r.stdout.splitlines()[-1])["callouts"]
        return _summary(out) / calls


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", metavar="DIR", help="also count with the gomemu checkout in DIR (before/after)")
    ap.add_argument("--n", type=int, default=2000, help="call-outs counted per case (default 2000)")
    ap.add_argument("--smoke", action="store_true", help="200 call-outs per case")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    ap.add_argument("--child", nargs=2, metavar=("CASE", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child[0], int(args.child[1]))
        return 0
    cases = args.cases.split(",")
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case {unknown[0]!r} (cases: {', '.join(CASES)})")
    if args.n < 1:
        ap.error(f"--n {args.n}: at least one call-out is counted")
    if args.against and not (Path(args.against) / "emu" / "machine.py").is_file():
        ap.error(f"--against {args.against}: not a gomemu checkout (no emu/machine.py)")
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("skipped: valgrind not found")
        return 0
    n = 200 if args.smoke else args.n
    trees = [("after", HERE)]
    if args.against:
        trees.insert(0, ("before", Path(args.against).resolve()))
    print(f"{'host instructions per call-out':<32}" + "".join(f"{name:>14}" for name, _ in trees)
          + (f"{'after/before':>14}" if args.against else "") + f"   ({n} call-outs each)")
    for case in cases:
        ir = [measure(tree, case, n, valgrind) for _, tree in trees]
        ratio = f"{ir[1] / ir[0]:14.2f}" if args.against else ""
        print(f"{case:<32}" + "".join(f"{v:14,.0f}" for v in ir) + ratio, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
