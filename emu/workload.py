"""Workloads: the shape of a program's allocation, as a TOML file (docs/gc.md, "Workloads").

A workload says what a Go program allocates and keeps, not how: a live set allocated
first and kept reachable from a global, garbage allocated until a total is reached
(each object unreachable at once, or after a lifetime), pointer-typed globals, and
optionally phases (a spike, a leak, an idle time). emu/mutator.py
turns it into machine code's operations; `gomemu run` runs it.

Every field is checked here; a bad one is a BadInput naming the file and the field
(`churn.toml: garbage[0].object_size: ...`). Sizes are bytes or strings in GOMEMLIMIT's
syntax (`"64MiB"`, parsed as Go's parseByteCount); durations are Go duration strings
("10ms", "2s").
"""

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from emu.errors import BadInput
from emu.textfile import read_text
from runtime_model.gcsettings import parse_byte_count

BUILTINS = ("churn", "spiky", "leak", "big-live-heap")
MAX_OBJECT = 1 << 30                # one object at most 1 GiB
MAX_TOTAL = 1 << 40
MAX_PROCS = 256
MAX_STACK = 512 << 20               # below Go's 1 GB maxstacksize, with the guard kept free
MAX_GOROUTINES = 1 << 16


@dataclass(frozen=True)
class SizeDist:
    """Object sizes: one size; uniform or log-uniform in [min, max]; or choices with weights."""
    kind: str                       # "fixed", "uniform", "log", "choice"
    sizes: tuple                    # fixed: (s,); uniform/log: (min, max); choice: the sizes
    weights: tuple = ()             # choice only, summing to 1

    def mean(self):
        import math
        if self.kind == "fixed":
            return float(self.sizes[0])
        if self.kind == "uniform":
            return (self.sizes[0] + self.sizes[1]) / 2
        if self.kind == "log":
            lo, hi = self.sizes
            return (hi - lo) / math.log(hi / lo) if hi > lo else float(lo)
        return sum(s * w for s, w in zip(self.sizes, self.weights))


@dataclass(frozen=True)
class Garbage:
    """A kind of garbage: allocated until the phase's total, dead at once or after `lifetime`
    further allocations of its kind; `pointer_writes` stores of each new object into random
    pointer fields of the live set (the live set must have pointers)."""
    object_size: SizeDist
    pointers: bool = False
    weight: float = 1.0
    lifetime: int = 0
    pointer_writes: int = 0


@dataclass(frozen=True)
class Live:
    bytes: int = 0
    object_size: int = 64 << 10
    pointers: bool = False          # each object's words but the last are pointers


@dataclass(frozen=True)
class Goroutines:
    """`count` parked goroutines, each with `stack` bytes of its stack in use (frames
    without pointers, as a blocked recursion of byte arrays holds), on a stack of the next
    power of two that keeps the guard free (what copystack's doubling leaves)."""
    stack: int
    count: int = 1


@dataclass(frozen=True)
class Phase:
    """One stretch of the run: the live set resized to `live` bytes (grown by new objects or
    dropped from its end), then `allocate` bytes of garbage (`garbage`, else the workload's),
    `retain` of which (a fraction) leaks: kept reachable to the end; then `idle` ns with
    nothing allocated (the scavenger and the GC's workers run)."""
    name: str
    allocate: int
    live: int
    garbage: tuple
    retain: float = 0.0
    idle_ns: int = 0


@dataclass(frozen=True)
class Workload:
    name: str
    source: str                     # the file (or built-in) it came from, for messages
    gogc: int = 100                 # -1: off
    memory_limit: int | None = None
    gomaxprocs: int = 2
    seed: int = 1
    live: Live = field(default_factory=Live)
    globals_bytes: int = 0
    phases: tuple = ()
    goroutines: tuple = ()          # Goroutines

    @property
    def total_allocated(self):
        return self.live_max + sum(p.allocate for p in self.phases)

    @property
    def live_max(self):
        return max([p.live for p in self.phases] + [self.live.bytes])


# ---- reading --------------------------------------------------------------------------------
def load(name_or_path):
    """A workload by built-in name or TOML path."""
    if name_or_path in BUILTINS:
        ref = resources.files("emu").joinpath("examples", f"{name_or_path}.toml")
        return parse(ref.read_text(), f"{name_or_path}.toml")
    p = Path(name_or_path)
    if not p.suffix and not p.exists():
        raise BadInput(f"{name_or_path}: not a built-in workload ({', '.join(BUILTINS)}) nor a file")
    return parse(read_text(name_or_path, "a workload"), str(name_or_path))


class _Fields:
    """One TOML table being read: every key must be taken, so an unknown one is an error."""

    def __init__(self, src, where, table):
        if not isinstance(table, dict):
            raise BadInput(f"{src}: {where}: must be a table, not {_show(table)}")
        self.src, self.where, self.t = src, where, dict(table)

    def name(self, key):
        return f"{self.where}.{key}" if self.where else key

    def err(self, key, msg):
        return BadInput(f"{self.src}: {self.name(key)}: {msg}")

    def take(self, key, default=None):
        return self.t.pop(key, default)

    def done(self):
        if self.t:
            key = sorted(self.t)[0]
            raise self.err(key, "unknown field")

    def size(self, key, default=None, lo=0, hi=MAX_TOTAL):
        v = self.take(key, default)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, str)):
            raise self.err(key, f"must be a byte count (an integer or a string such as \"64MiB\"), not {_show(v)}")
        if isinstance(v, str):
            n, ok = parse_byte_count(v)
            if not ok:
                raise self.err(key, f"{v!r} is not a byte count (digits with B, KiB, MiB, GiB or TiB)")
            v = n
        if not lo <= v <= hi:
            raise self.err(key, f"{v} is out of range [{lo}, {hi}]")
        return v

    def integer(self, key, default, lo, hi):
        v = self.take(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self.err(key, f"must be an integer in [{lo}, {hi}], not {_show(v)}")
        return v

    def number(self, key, default, lo, hi, lo_open=False):
        v = self.take(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi or (lo_open and v == lo):
            raise self.err(key, f"must be a number in {'(' if lo_open else '['}{lo}, {hi}], not {_show(v)}")
        return float(v)

    def flag(self, key, default):
        v = self.take(key, default)
        if not isinstance(v, bool):
            raise self.err(key, f"must be true or false, not {_show(v)}")
        return v

    def string(self, key, default):
        v = self.take(key, default)
        if not isinstance(v, str) or not v:
            raise self.err(key, f"must be a non-empty string, not {_show(v)}")
        return v

    def duration(self, key):
        v = self.take(key, "0s")
        ns = parse_duration(v) if isinstance(v, str) else None
        if ns is None:
            raise self.err(key, f"must be a duration such as \"10ms\" or \"2s\", not {_show(v)}")
        return ns

    def tables(self, key):
        v = self.take(key, [])
        if not isinstance(v, list):
            raise self.err(key, f"must be an array of tables ([[{key}]]), not {_show(v)}")
        return [_Fields(self.src, f"{self.name(key)}[{i}]", t) for i, t in enumerate(v)]

    def table(self, key):
        v = self.take(key)
        return None if v is None else _Fields(self.src, self.name(key), v)


def _show(v):
    s = repr(v)
    return s if len(s) <= 40 else s[:37] + "..."


_DURATION = re.compile(r"^(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)$")
_UNIT_NS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def parse_duration(s):
    """A single-unit Go duration ("10ms", "1.5s") in ns, or None."""
    m = _DURATION.match(s)
    if not m:
        return None
    return int(float(m.group(1)) * _UNIT_NS[m.group(2)])


def _size_dist(f, key, default=None, pointers=False):
    v = f.t.get(key, default)
    if v is None:
        raise f.err(key, "missing")
    if isinstance(v, dict):
        d = _Fields(f.src, f.name(key), f.take(key))
        if "choices" in d.t:
            choices = d.take("choices")
            weights = d.take("weights", None)
            if not isinstance(choices, list) or not choices:
                raise d.err("choices", f"must be a non-empty array of sizes, not {_show(choices)}")
            sizes = tuple(_Fields(f.src, d.name("choices"), {str(i): c}).size(str(i), lo=1, hi=MAX_OBJECT)
                          for i, c in enumerate(choices))
            if weights is None:
                weights = [1.0] * len(sizes)
            if (not isinstance(weights, list) or len(weights) != len(sizes)
                    or any(isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0 for w in weights)
                    or sum(weights) <= 0):
                raise d.err("weights", f"must be {len(sizes)} non-negative numbers, not all 0, not {_show(weights)}")
            d.done()
            total = float(sum(weights))
            return SizeDist("choice", sizes, tuple(w / total for w in weights))
        lo, hi = d.size("min", lo=1, hi=MAX_OBJECT), d.size("max", lo=1, hi=MAX_OBJECT)
        if lo is None or hi is None:
            raise d.err("min" if lo is None else "max", "missing (a size range has min and max)")
        if hi < lo:
            raise d.err("max", f"{hi} is below min ({lo})")
        kind = d.string("dist", "uniform")
        if kind not in ("uniform", "log"):
            raise d.err("dist", f"must be \"uniform\" or \"log\", not {kind!r}")
        d.done()
        return SizeDist(kind, (lo, hi))
    n = f.size(key, default, lo=1, hi=MAX_OBJECT)
    if pointers and n < 16:
        raise f.err(key, f"{n}: an object with pointers has at least 16 bytes here (pointer words and a last scalar word)")
    return SizeDist("fixed", (n,))


def _garbage(f):
    pointers = f.flag("pointers", False)
    size = _size_dist(f, "object_size", pointers=pointers)
    if pointers and size.kind != "fixed" and size.sizes[0] < 16:
        raise f.err("object_size", "an object with pointers has at least 16 bytes")
    g = Garbage(size, pointers, f.number("weight", 1.0, 0.0, 1e9, lo_open=True),
                f.integer("lifetime", 0, 0, 1 << 20), f.integer("pointer_writes", 0, 0, 64))
    f.done()
    return g


def parse(text, src):
    """A Workload from TOML text; src names it in messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"{src}: not valid TOML: {e}") from None
    f = _Fields(src, "", doc)
    name = f.string("name", Path(src).stem)
    gogc = f.take("gogc", 100)
    if gogc == "off":
        gogc = -1
    elif isinstance(gogc, bool) or not isinstance(gogc, int) or not -1 <= gogc <= 2**31 - 1:
        raise f.err("gogc", f"must be \"off\" or an integer percentage, not {_show(gogc)}")
    limit = f.size("memory_limit", None, lo=0, hi=2**63 - 1)
    procs = f.integer("gomaxprocs", 2, 1, MAX_PROCS)
    seed = f.integer("seed", 1, 0, 2**63 - 1)
    total = f.size("total_allocated", None, lo=1)

    live = Live()
    lt = f.table("live")
    if lt is not None:
        lptr = lt.flag("pointers", False)
        live = Live(lt.size("bytes", 0), lt.size("object_size", 64 << 10, lo=16 if lptr else 1, hi=MAX_OBJECT),
                    lptr)
        lt.done()
    glb = 0
    gt = f.table("globals")
    if gt is not None:
        glb = gt.size("bytes", 0, hi=1 << 30)
        if glb % 8:
            raise gt.err("bytes", f"{glb} is not a whole number of pointer words (8 bytes)")
        gt.done()
    garbage = tuple(_garbage(g) for g in f.tables("garbage"))
    goroutines = []
    for g in f.tables("goroutines"):
        stack = g.size("stack", None, lo=1, hi=MAX_STACK)
        if stack is None:
            raise g.err("stack", "missing (the bytes of stack each goroutine holds, such as \"4MiB\")")
        goroutines.append(Goroutines(stack, g.integer("count", 1, 1, MAX_GOROUTINES)))
        g.done()

    phases = []
    for i, p in enumerate(f.tables("phases")):
        pg = tuple(_garbage(g) for g in p.tables("garbage")) or garbage
        ph = Phase(p.string("name", f"phase {i}"), p.size("allocate", 0), p.size("live", live.bytes),
                   pg, p.number("retain", 0.0, 0.0, 1.0), p.duration("idle"))
        if ph.allocate and not pg:
            raise p.err("garbage", "missing: the phase allocates, but neither it nor the workload has [[garbage]]")
        p.done()
        phases.append(ph)
    if phases and total is not None:
        raise f.err("total_allocated", "not with [[phases]] (each phase says what it allocates)")
    if not phases:
        if total is None:
            raise f.err("total_allocated", "missing (or give [[phases]])")
        if total < live.bytes:
            raise f.err("total_allocated", f"{total} is less than live.bytes ({live.bytes})")
        if total > live.bytes and not garbage:
            raise f.err("garbage", "missing: total_allocated exceeds the live set, so there must be [[garbage]]")
        phases = [Phase("main", total - live.bytes, live.bytes, garbage)]
    if live.bytes and live.bytes < live.object_size:
        raise BadInput(f"{src}: live.bytes: {live.bytes} is less than one object of live.object_size")
    writes = [g for ph in phases for g in ph.garbage if g.pointer_writes]
    if writes and not live.pointers:
        raise f.err("live.pointers", "must be true: some [[garbage]] has pointer_writes, stores into the live set")
    f.done()
    return Workload(name, src, gogc, limit, procs, seed, live, glb, tuple(phases), tuple(goroutines))
