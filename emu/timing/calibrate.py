"""One path, three ways: modelled, measured on the host, and llvm-mca's estimate.

`compare_path` takes what the emulator knows about one call (its memory before
the call as Regions, the entry and registers, the recorded stream of the call,
and the memory after it) and returns every figure with how it was obtained.
The native run repeats the call from the same state: the bytes the call wrote
(the stream's write records) are put back before each repetition, outside the
timed part, so every repetition takes the same path over warm caches, as the
model's warm runs do. After the first call the native memory of those bytes
is compared with the emulator's: a differential test of the emulator itself.
"""

from dataclasses import dataclass, field

from emu.timing import mca
from emu.timing.harness import modelled_per_call
from emu.timing.model import Model
from emu.timing.native import NativeFault, NativeUnavailable, run_native


# Below this many cycles a path is hidden in the harness's own work (its few instructions overlap
# the trampoline's POPs, CALL and RET): model and measurement both give about 0 and a percentage
# error means nothing (the write barrier off: 4 instructions; the stack check: 4 and a 2-line body).
RESOLUTION = 2.0


@dataclass
class PathFigures:
    uarch: str
    modelled: float                  # cycles the model predicts for the native measurement
    alone: int                       # cycles of one warm call from an empty pipeline (the model)
    counts: dict                     # the warm call's Timing.as_dict()
    measured: float = None           # cycles per call on the host (fastest repetition), or None
    llvm_mca: float = None           # llvm-mca's estimate of the executed instructions, or None
    memory_equal: bool = None        # the native call left the emulator's memory (None: not run)
    differences: list = field(default_factory=list)   # (address, emulated, native) of 8-byte words
    native_refused: str = ""         # why there is no measurement (or the native fault)
    ticks_per_cycle: float = None    # the dependent-ADD reference of the measurement
    segments: int = 1                # pieces measured apart (a call-out splits a call)

    @property
    def error(self):
        """(modelled - measured) / measured, or None (no measurement, or below RESOLUTION)."""
        if self.measured is None or self.measured < RESOLUTION:
            return None
        return (self.modelled - self.measured) / self.measured

    def as_dict(self):
        d = dict(self.__dict__)
        d["how"] = {"modelled": "modelled", "alone": "modelled", "measured": "measured (native, TSC ticks "
                    "converted with a dependent-ADD chain)", "llvm_mca": "llvm-mca"}
        d["error"] = self.error
        return d


def written_ranges(stream, granule=8):
    """[(address, size)] covering every byte the stream wrote, merged, granule-aligned."""
    words = sorted({a // granule for a, m in zip(stream.rec_addr, stream.rec_meta) if m & 1
                    for a in range(a, a + (m >> 1), granule)} |
                   {(a + (m >> 1) - 1) // granule for a, m in zip(stream.rec_addr, stream.rec_meta) if m & 1})
    out = []
    for w in words:
        if out and out[-1][0] + out[-1][1] == w * granule:
            out[-1] = (out[-1][0], out[-1][1] + granule)
        else:
            out.append((w * granule, granule))
    return out


def compare_path(u, regions, entry, regs, stream, read_code, read_after, *, native=True, reps=200,
                 runs=3, warm=3, with_mca=True, exits=(), resume=False):
    """Every figure for one call (or one segment of a call: `exits` where it ends); see the
    module comment. read_code(a, n): code bytes; read_after(a, n): the emulator's memory after
    the call. The measurement is the fastest of `runs` native runs (each the median of its
    rounds): on a shared host a run can only be slowed down by what else runs."""
    model = Model(u, read_code)
    for _ in range(warm):
        model.run(stream)
        model.drain()
    t = model.run(stream)
    fig = PathFigures(u.name, modelled_per_call(u, read_code, stream, regs["rsp"], calls=1, warm=warm,
                                                     exits=exits, resume=resume),
                      t.cycles, t.as_dict())
    if with_mca and mca.available(mca.MCPU.get(u.name, "")):
        fig.llvm_mca = mca.estimate(stream, read_code, u)
    if not native:
        return fig
    ranges = written_ranges(stream)
    try:
        results = [run_native(regions, entry, regs, reps=reps, inner=1, restore=ranges, read_back=ranges,
                              exits=exits, resume=resume) for _ in range(runs)]
    except NativeUnavailable as e:
        fig.native_refused = str(e)
        return fig
    except NativeFault as e:                 # the native run crashed where the emulator did not
        fig.native_refused = f"native fault: {e}"
        fig.memory_equal = False
        return fig
    r = min(results, key=lambda x: x.cycles_per_call)
    fig.measured = r.cycles_per_call
    fig.ticks_per_cycle = r.ticks_per_cycle
    for a, n in ranges:
        emu, nat = read_after(a, n), r.memory[a]
        for off in range(0, n, 8):
            if emu[off:off + 8] != nat[off:off + 8]:
                fig.differences.append((a + off, emu[off:off + 8].hex(), nat[off:off + 8].hex()))
    fig.memory_equal = not fig.differences
    return fig


def compare_recorded(u, rec, **kw):
    """PathFigures of a recorded fast path (emu/timing/paths.py): its segments' figures
    summed (a call-out splits a call; the call-out's Python work is in neither figure)."""
    m = rec.machine
    figs = [compare_path(u, s.regions, s.entry, s.regs, s.stream, m.mem.read, s.read_after(m), exits=s.exits,
                         resume=s.resume, **kw)
            for s in rec.segments]
    if len(figs) == 1:
        return figs[0]
    total = PathFigures(u.name, sum(f.modelled for f in figs), sum(f.alone for f in figs),
                        {k: sum(f.counts[k] for f in figs) for k, v in figs[0].counts.items()
                         if isinstance(v, int) and not isinstance(v, bool)})
    total.counts.update(how="modelled", uarch=u.name)
    total.segments = len(figs)
    if all(f.llvm_mca is not None for f in figs):
        total.llvm_mca = sum(f.llvm_mca for f in figs)
    refused = [f.native_refused for f in figs if f.native_refused]
    if refused:
        total.native_refused = refused[0]
    elif all(f.measured is not None for f in figs):
        total.measured = sum(f.measured for f in figs)
        total.ticks_per_cycle = min(f.ticks_per_cycle for f in figs)
    total.differences = [d for f in figs for d in f.differences]
    mem = [f.memory_equal for f in figs]
    total.memory_equal = None if None in mem else all(mem)
    return total


@dataclass
class Calibration:
    uarch: object
    uarch_chosen: str                # how the µarch was chosen
    rows: list                       # (path name, PathFigures)
    mca_path: str = None             # the llvm-mca binary, or None

    def mape(self, which="modelled"):
        """Mean absolute percentage error against the measurement over the paths measured at
        RESOLUTION cycles or more."""
        errs = [abs(getattr(f, which) - f.measured) / f.measured for _, f in self.rows
                if f.measured is not None and f.measured >= RESOLUTION and getattr(f, which) is not None]
        return 100 * sum(errs) / len(errs) if errs else None


def calibrate(u, uarch_chosen, *, native=True, with_mca=False, reps=200, runs=3, paths=None):
    """Every fast path (emu/timing/paths.py) modelled on u, measured natively, and by llvm-mca."""
    from emu.timing.paths import fast_paths
    rows = [(rec.name, compare_recorded(u, rec, native=native, with_mca=with_mca, reps=reps, runs=runs))
            for rec in (paths if paths is not None else fast_paths())]
    return Calibration(u, uarch_chosen, rows, mca.available(mca.MCPU.get(u.name, "")) if with_mca else None)
