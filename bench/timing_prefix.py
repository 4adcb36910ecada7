"""Prefixes of a `gomemu calibrate` path, run natively and modelled, to find where its cycles go.

    python bench/timing_prefix.py PATH [--segment N] [--runs R] [--uarch U] [--cuts C,C,...]

PATH is a substring of a fast path's name (emu/timing/paths.py). A cut B ends the prefix
before the segment's block B (the whole segment when B is its block count), B.K before the
K-th instruction of block B: the cut's address becomes the exit (natively patched to the exit
stub, as a call-out's stub is), and the prefix's stream is modelled by the same harness
(`harness.modelled_per_call(..., exits=...)`). A block cut is skipped when its exit would
overwrite code the prefix runs. Each line: the cut, the prefix's instructions, the model's
figure, and the best and median of R native runs of 300 repetitions (docs/timing.md).
"""

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emu.timing import uarch  # noqa: E402
from emu.timing.calibrate import written_ranges  # noqa: E402
from emu.timing.decode import decode_block  # noqa: E402
from emu.timing.harness import modelled_per_call  # noqa: E402
from emu.timing.native import run_native  # noqa: E402
from emu.timing.paths import fast_paths  # noqa: E402
from emu.timing.recorder import Stream  # noqa: E402

EXIT_STUB = 13                   # bytes of movabs r11, back; jmp r11


def prefix(s, b, k=None, read=None):
    """(stream, exit address) of the first b blocks of s, plus k instructions of block b."""
    r0 = s.rec_start[b]
    if k is None:
        return Stream(s.block_addr[:b], s.block_size[:b], s.rec_start[:b + 1], s.rec_addr[:r0], s.rec_meta[:r0]), \
            s.block_addr[b]
    ins = decode_block(read(s.block_addr[b], s.block_size[b]), s.block_addr[b])
    ex = ins[k].address
    n = r0 + sum(d.records for d in ins[:k])
    return Stream(s.block_addr[:b + 1], s.block_size[:b] + [ex - s.block_addr[b]], s.rec_start[:b + 1] + [n],
                  s.rec_addr[:n], s.rec_meta[:n]), ex


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("--segment", type=int, default=0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--uarch", default="golden_cove")
    ap.add_argument("--cuts", default="")
    a = ap.parse_args(argv)
    u = uarch(a.uarch)
    rec = next((r for r in fast_paths() if a.path in r.name), None)
    if rec is None:
        sys.exit(f"timing_prefix: no fast path named like {a.path!r}")
    seg, read = rec.segments[a.segment], rec.machine.mem.read
    s = seg.stream
    n = len(s.block_addr)
    print(f"{rec.name}, segment {a.segment}: {n} blocks")
    for b in range(n):
        print(f"  [{b}] {s.block_addr[b]:#x}: " +
              "; ".join(d.text for d in decode_block(read(s.block_addr[b], s.block_size[b]), s.block_addr[b])))
    for cut in a.cuts.split(",") if a.cuts else [str(b) for b in range(1, n + 1)]:
        b, _, k = cut.partition(".")
        b = int(b)
        if b >= n:
            p, exits = s, seg.exits
        else:
            p, ex = prefix(s, b, int(k) if k else None, read)
            ran = zip(s.block_addr[:b], s.block_size[:b])
            if not k and any(x <= ex < x + z or ex <= x < ex + EXIT_STUB for x, z in ran):
                print(f"cut {cut:>6}: its exit overlaps the prefix, skipped")
                continue
            exits = (ex,)
        modelled = modelled_per_call(u, read, p, seg.regs["rsp"], calls=1, warm=3, exits=exits, resume=seg.resume)
        native = [run_native(seg.regions, seg.entry, seg.regs, reps=300, inner=1, restore=written_ranges(p),
                             exits=exits, resume=seg.resume).cycles_per_call for _ in range(a.runs)]
        insns = sum(len(decode_block(read(x, z), x)) for x, z in zip(p.block_addr, p.block_size))
        print(f"cut {cut:>6} insns {insns:4d} model {modelled:6.1f} native best {min(native):6.1f} "
              f"median {statistics.median(native):6.1f}", flush=True)


if __name__ == "__main__":
    main()
