"""The collector's settings: GOGC, GOMEMLIMIT and GODEBUG at startup, runtime/debug's
SetGCPercent and SetMemoryLimit while the program runs.

The environment is parsed with Go 1.27's own rules:

  GOGC        mgcpacer.go: readGOGC: "off" is -1; otherwise internal/strconv.ParseInt(s,
              10, 32), and anything it refuses (empty, "+", "1e3", "0x10", out of int32
              range) gives the default 100. Negative numbers mean off as well
              (setGCPercent clamps them to -1).
  GOMEMLIMIT  mgcpacer.go: readGOMEMLIMIT: unset, "" or "off" is math.MaxInt64; otherwise
              string.go: parseByteCount: decimal digits, optionally followed by "B" or by
              "KiB", "MiB", "GiB", "TiB" (powers of 1024; no "KB", no spaces, no sign
              other than ParseInt's "+"), at most MaxInt64. Go throws on a malformed value;
              here it is a BadInput.
  GODEBUG     runtime1.go: parsegodebug at startup: comma-separated key=value, later
              settings win, a value that is not an int32 is ignored; gomemu acts on
              scavtrace (the collector keeps its gctrace lines always).

`gcinit(runtime, env)` applies them to a machine's runtime as mgc.go: gcinit does
(gcController.init(readGOGC(), readGOMEMLIMIT())) before the program allocates.
"""

from emu.errors import BadInput

MAX_INT64 = (1 << 63) - 1
MAX_UINT64 = (1 << 64) - 1


def parse_uint(s, bit_size):
    """internal/strconv.ParseUint(s, 10, bitSize) -> (value, error) with error None,
    "syntax" or "range" (base 10: no prefixes, no underscores)."""
    if s == "":
        return 0, "syntax"
    max_val = (1 << bit_size) - 1
    cutoff = MAX_UINT64 // 10 + 1
    n = 0
    for ch in s:
        if not "0" <= ch <= "9":
            return 0, "syntax"
        if n >= cutoff:
            return max_val, "range"
        n = n * 10 + ord(ch) - 48
        if n > max_val:
            return max_val, "range"
    return n, None


def parse_int(s, bit_size):
    """internal/strconv.ParseInt(s, 10, bitSize) -> (value, error) as parse_uint."""
    if s == "":
        return 0, "syntax"
    neg = s[0] == "-"
    if s[0] in "+-":
        s = s[1:]
    un, err = parse_uint(s, bit_size)
    if err is not None and err != "range":
        return 0, err
    cutoff = 1 << (bit_size - 1)
    if not neg and un >= cutoff:
        return cutoff - 1, "range"
    if neg and un > cutoff:
        return -cutoff, "range"
    return (-un if neg else un), None


def read_gogc(value):
    """mgcpacer.go: readGOGC; value None stands for an unset variable (as "")."""
    if value == "off":
        return -1
    n, err = parse_int(value or "", 32)
    return n if err is None else 100


def parse_byte_count(s):
    """string.go: parseByteCount -> (bytes, ok)."""
    if s == "":
        return 0, False
    last = s[-1]
    if "0" <= last <= "9":
        n, err = parse_int(s, 64)
        return (n, True) if err is None and n >= 0 else (0, False)
    if last != "B" or len(s) < 2:
        return 0, False
    c = s[-2]
    if "0" <= c <= "9":
        n, err = parse_int(s[:-1], 64)
        return (n, True) if err is None and n >= 0 else (0, False)
    if c != "i" or len(s) < 4:
        return 0, False
    power = {"K": 1, "M": 2, "G": 3, "T": 4}.get(s[-3])
    if power is None:
        return 0, False
    m = 1024 ** power
    n, err = parse_int(s[:-3], 64)
    if err is not None or n < 0:
        return 0, False
    if n > MAX_UINT64 // m or n * m > MAX_INT64:
        return 0, False
    return n * m, True


def read_gomemlimit(value):
    """mgcpacer.go: readGOMEMLIMIT."""
    if value is None or value in ("", "off"):
        return MAX_INT64
    n, ok = parse_byte_count(value)
    if not ok:
        raise BadInput(f"GOMEMLIMIT={value}: malformed GOMEMLIMIT; see `go doc runtime/debug.SetMemoryLimit`")
    return n


def parse_godebug(value):
    """runtime1.go: parsegodebug at startup -> {key: int} for the int32 settings given."""
    out = {}
    for field in (value or "").split(","):
        key, eq, val = field.partition("=")
        if not eq:
            continue
        n, err = parse_int(val, 32)
        if err is None:
            out[key] = n
    return out


def gcinit(runtime, env):
    """mgc.go: gcinit's reading of the environment (a mapping like os.environ): the pacer's
    GOGC and memory limit, and GODEBUG's scavtrace (runtime.scavenger collects its lines;
    the collector always keeps its gctrace lines). Call before the program allocates.
    Returns the GODEBUG settings read, for the caller's own use (gctrace)."""
    runtime.gc_controller.init(read_gogc(env.get("GOGC")), read_gomemlimit(env.get("GOMEMLIMIT")))
    debug = parse_godebug(env.get("GODEBUG"))
    runtime.scavenger.scavtrace = debug.get("scavtrace", 0)
    return debug


# ---- runtime/debug's setters (mgcpacer.go) -------------------------------------------------

def gc_controller_commit(runtime):
    """mgcpacer.go: gcControllerCommit: commit, revise while marking, the sweeper's pacing
    and the scavenger's goals."""
    from runtime_model.mgc import GC_OFF
    c = runtime.gc_controller
    c.commit(runtime.sweeper.is_done())
    if runtime.gc.phase != GC_OFF:
        c.revise()
    runtime.sweeper.pace(c.trigger()[0])
    runtime.scavenger.controller_commit()


def set_gc_percent(runtime, percent):
    """mgcpacer.go: setGCPercent (debug.SetGCPercent): returns the previous value. Turning
    the collector off waits for a cycle in progress to finish (gcWaitOnMark)."""
    out = runtime.gc_controller.set_gc_percent(percent)
    gc_controller_commit(runtime)
    if percent < 0 and runtime.gc.phase:
        runtime.gc._work(float("inf"))
        runtime.gc.mark_done()
    return out


def set_memory_limit(runtime, limit):
    """mgcpacer.go: setMemoryLimit (debug.SetMemoryLimit): a negative limit only reads it."""
    out = runtime.gc_controller.set_memory_limit(limit)
    if limit >= 0 and out != limit:
        gc_controller_commit(runtime)
    return out
