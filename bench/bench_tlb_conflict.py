"""What a softmmu TLB conflict costs on gomemu's unicorn core (issue 13, allocate-black).

QEMU's data TLB is direct-mapped: a page's entry is chosen by its virtual address
bits 12 and up (256 entries at first; a flush may resize it, to no fewer than 64),
with an 8-entry victim TLB behind it. On the default machine the black hit's
two hottest pages, the span's page (inline mark bits, 0xc000001000) and p0's gcw page
(bytesMarked at p0 + 0x1a98, p0 = 0x7f0002000000 from persistentalloc), share index 1
at every TLB size up to 2^13 entries. This loop stores to two such pages in turns,
each pair of addresses measured after a flush that lets the TLB resize, as the
machine's does (its FS_BASE write), and prints ns per iteration (best of 3).

Run: PYTHONPATH=. python bench/bench_tlb_conflict.py
"""

import argparse
import ctypes
import mmap
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import emu  # noqa: E402,F401  (selects the patched core before unicorn is imported)
from keystone import KS_ARCH_X86, KS_MODE_64, Ks  # noqa: E402
from unicorn import UC_ARCH_X86, UC_MODE_64, UC_PROT_EXEC, UC_PROT_READ, UC_PROT_WRITE, Uc  # noqa: E402
from unicorn.x86_const import UC_X86_REG_FS_BASE  # noqa: E402

N = 200_000
CODE = 0x400000
SPAN_PAGE = 0xC000001000
CASES = [("gcw page as on the default machine (index 1: conflict)", 0x7F0002001A98),
         ("gcw page 64 pages on (index 65: a conflict only in a 64-entry TLB)", 0x7F0002041A98),
         ("gcw page 256 pages on (index 257: conflict up to 256 entries)", 0x7F0002101A98),
         ("gcw page 5 pages on (index 6: no conflict)", 0x7F0002006A98)]


def per_iteration(a, b):
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    bufs = []
    for base, size, prot in ((CODE, 0x10000, UC_PROT_READ | UC_PROT_EXEC),
                             (0xC000000000, 0x4000000, UC_PROT_READ | UC_PROT_WRITE),
                             (0x7F0000000000, 0x4000000, UC_PROT_READ | UC_PROT_WRITE)):
        buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        bufs.append(buf)
        uc.mem_map_ptr(base, size, prot, ctypes.addressof(ctypes.c_char.from_buffer(buf)))
    code, _ = Ks(KS_ARCH_X86, KS_MODE_64).asm(
        f"mov rsi, {a:#x}; mov rdi, {b:#x}; mov rcx, {N:#x}; "
        "l: mov qword ptr [rsi], rcx; add qword ptr [rdi], rcx; dec rcx; jnz l; hlt")
    uc.mem_write(CODE, bytes(code))
    end = CODE + len(code) - 1
    uc.emu_start(CODE, end)
    time.sleep(0.15)                                   # past the resize window (100 ms)
    uc.reg_write(UC_X86_REG_FS_BASE, 0x1000)           # a segment base write flushes the TLB
    uc.emu_start(CODE, end)
    t = time.perf_counter()
    uc.emu_start(CODE, end)
    return (time.perf_counter() - t) / N * 1e9


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="one run per case (CI)")
    args = ap.parse_args(argv)
    for name, b in CASES:
        ns = min(per_iteration(SPAN_PAGE, b) for _ in range(1 if args.smoke else 3))
        print(f"{name:<64} {ns:7.1f} ns/iteration")


if __name__ == "__main__":
    main()
