"""The timing model against the host: modelled and measured cycles, and the model's speed.

Reports, measured in one run on this machine:
  - for small loops and for allocator fast paths of the current Machine: the cycles
    the model predicts for the native measurement (emu/timing/harness.py), the
    model's latency of one call from an empty pipeline, llvm-mca's estimate where
    llvm-mca is installed, and the cycles measured natively (emu/timing/native.py,
    the fastest of three runs, each the median of its rounds; the host is shared, so
    figures move between runs);
  - whether the native run of each allocator path left the same memory as the emulator;
  - the model's speed in modelled instructions per second (target: >= 200,000).
`--smoke` runs one loop and a short model-speed run in a few seconds (CI runs it).
`--uarch NAME` picks the description compared with the host (default: the host's own
when it has one, else zen4).
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keystone  # noqa: E402
from unicorn import UC_ARCH_X86, UC_MODE_64, Uc  # noqa: E402
from unicorn.x86_const import UC_X86_REG_RSP  # noqa: E402

from emu.timing import host_uarch, uarch  # noqa: E402
from emu.timing import mca  # noqa: E402
from emu.timing.harness import modelled_per_call  # noqa: E402
from emu.timing.model import Model  # noqa: E402
from emu.timing.native import NativeFault, NativeUnavailable, Region, run_native  # noqa: E402
from emu.timing.recorder import Recorder  # noqa: E402

CODE, STACK, RSP, RET = 0x400000, 0x7FFF0000, 0x7FFF8000, 0xDEAD000
LOOPS = [
    ("100 dependent IMULs", "imul rax, rax\n" * 100 + "ret"),
    ("100 dependent ADDs", "add rax, 0x1\n" * 100 + "ret"),
    ("chain of 100 loads", "mov rax, qword ptr [rsp - 0x8]\n" + "mov rax, qword ptr [rsp + rax - 0x8]\n" * 100
     + "ret"),
    ("loop: 6 independent ADDs x100", "mov rcx, 0x64\nl: add rax, 0x1\n add rbx, 0x1\n add rdx, 0x1\n"
     " add rsi, 0x1\n add rdi, 0x1\n add r8, 0x1\n dec rcx\n jnz l\n ret"),
    ("loop: store, reload x100", "mov rcx, 0x64\nl: mov qword ptr [rsp - 0x8], rax\n"
     " mov rax, qword ptr [rsp - 0x8]\n dec rcx\n jnz l\n ret"),
    ("50 taken JMPs", "".join(f"jmp lj{i}\n nop\nlj{i}:\n" for i in range(50)) + "ret"),
    ("50 x (4 ADDs, taken JMP)", "".join(f"add rax, 0x1\n add rbx, 0x1\n add rdx, 0x1\n add rsi, 0x1\n"
                                        f" jmp lk{i}\n nop\nlk{i}:\n" for i in range(50)) + "ret"),
    ("allocator-like block x100", "mov rcx, 0x64\nl: mov rdx, qword ptr [rsp - 0x40]\n tzcnt r8, rdx\n"
     " cmp r8, 0x40\n je l2\n mov r9, qword ptr [rsp - 0x38]\n lea r10, [r8 + r9]\n"
     " shrx rdx, rdx, r8\n mov qword ptr [rsp - 0x40], rdx\n imul r10, r10, 0x10\n"
     " add r10, qword ptr [rsp - 0x30]\nl2: dec rcx\n jnz l\n ret"),
]


def _emulate(code):
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(CODE, 0x2000)
    uc.mem_map(STACK, 0x10000)
    uc.mem_map(RET & ~0xFFF, 0x1000)
    uc.mem_write(CODE, code)
    uc.mem_write(STACK + 0x7FC0, (0x5555).to_bytes(8, "little"))
    uc.mem_write(RSP, RET.to_bytes(8, "little"))
    uc.reg_write(UC_X86_REG_RSP, RSP)
    with Recorder(uc) as rec:
        uc.emu_start(CODE, RET)
    return uc, rec.stream()


def loops(u, names=None, reps=100, calls=20):
    ks = keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64)
    rows = []
    for name, src in LOOPS:
        if names and name not in names:
            continue
        code = bytes(ks.asm(src, CODE)[0])
        uc, stream = _emulate(code)

        def read(a, n, uc=uc):
            return bytes(uc.mem_read(a, n))
        model = modelled_per_call(u, read, stream, RSP, calls=calls)
        m = Model(u, read)
        m.run(stream)
        m.drain()
        alone = m.run(stream).cycles          # warm, from an empty pipeline
        mca_cycles = mca.estimate(stream, read, u) if mca.available() else None
        try:
            stack = bytearray(0x10000)
            stack[0x7FC0:0x7FC8] = (0x5555).to_bytes(8, "little")
            native = min(run_native([Region(CODE, 0x2000, code, "rx"), Region(STACK, 0x10000, bytes(stack), "rw")],
                                    CODE, {"rsp": RSP}, reps=reps, inner=calls).cycles_per_call
                         for _ in range(1 if names else 3))       # the fastest of 3 runs
        except (NativeUnavailable, NativeFault) as e:
            native = None
            print(f"   native: {e}")
        rows.append((name, model, alone, mca_cycles, native))
    return rows


def paths(u, reps):
    """(name, PathFigures) of every fast path `gomemu calibrate` checks (emu/timing/paths.py)."""
    from emu.timing.calibrate import calibrate
    return calibrate(u, "bench", with_mca=mca.available(mca.MCPU.get(u.name, "")) is not None, reps=reps).rows


def model_speed(u, allocations):
    """Modelled instructions per second over a recorded run of many allocations."""
    from emu.machine import Machine
    m = Machine()
    m.malloc_batch([16] * 100)
    with Recorder(m.uc) as rec:
        m.malloc_batch([16, 32, 48, 64] * (allocations // 4))
    stream = rec.stream()
    model = Model(u, m.mem.read)
    t0 = time.process_time()              # CPU time: the host is shared
    t = model.run(stream)
    dt = time.process_time() - t0
    return t.instructions, dt, t


def python_speed(n=2_000_000):
    """Iterations per second of a bare Python loop now: how loaded the host is."""
    t0 = time.process_time()
    x = 0
    for i in range(n):
        x += i & 7
    return n / (time.process_time() - t0)


def _fmt(x):
    return "-" if x is None else f"{x:8.1f}"


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--uarch", default=None)
    a = p.parse_args(argv)
    u = uarch(a.uarch) if a.uarch else (host_uarch() or uarch())
    print(f"µarch: {u.name} ({u.vendor_name}); llvm-mca: {mca.available() or 'not installed'}")
    rows = loops(u, names=[LOOPS[0][0]] if a.smoke else None, reps=20 if a.smoke else 100,
                 calls=5 if a.smoke else 20)
    print(f"   {'routine':34} {'model':>8} {'alone':>8} {'llvm-mca':>8} {'native':>8}  (cycles per call)")
    for name, model, alone, m, native in rows:
        print(f"   {name:34} {_fmt(model)} {_fmt(alone)} {_fmt(m)} {_fmt(native)}")
    if not a.smoke:
        from emu.timing.calibrate import Calibration
        rows = paths(u, reps=300)
        print(f"   {'fast path (gomemu calibrate)':34} {'model':>8} {'alone':>8} {'llvm-mca':>8} {'native':>8}"
              f" {'error':>7}  L1 misses, mispredicts (warm), memory")
        for name, f in rows:
            err = f"{100 * f.error:+6.1f}%" if f.error is not None else "      -"
            mem = {True: "same", False: f"DIFFERS at {len(f.differences)} words", None: f.native_refused}[f.memory_equal]
            print(f"   {name[:34]:34} {_fmt(f.modelled)} {_fmt(f.alone)} {_fmt(f.llvm_mca)} {_fmt(f.measured)} {err}"
                  f"  {f.counts['l1d_misses']}, {f.counts['mispredicts']}, {mem}")
        c = Calibration(u, "bench", rows, True)
        if c.mape() is not None:
            print(f"   mean absolute percentage error: model {c.mape():.1f}%"
                  + (f", llvm-mca {c.mape('llvm_mca'):.1f}%" if c.mape("llvm_mca") is not None else ""))
    n, dt, t = model_speed(u, 200 if a.smoke else 20000)
    ref = python_speed()
    print(f"   model speed: {n} instructions in {dt:.2f} s of CPU = {n / dt:,.0f} instructions/s "
          f"({t.cycles / max(1, n):.2f} cycles per instruction modelled); a bare Python `for` loop "
          f"runs {ref / 1e6:.1f} M iterations/s now, {ref / (n / dt):.0f} per modelled instruction")
    return 0


if __name__ == "__main__":
    sys.exit(main())
