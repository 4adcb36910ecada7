"""Allocation profiles in pprof's profile.proto, written the way Go's runtime/pprof writes them.

`write_alloc_profile` turns allocation records (a call stack, an object size, a count) into the
gzipped protobuf that `go test -memprofile` writes and `go tool pprof` reads. What the profile
holds follows `runtime/pprof/protomem.go: writeHeapProto`: period type space/bytes with period =
MemProfileRate; sample types alloc_objects/count, alloc_space/bytes, inuse_objects/count,
inuse_space/bytes in that order; a default sample type (alloc_space for the allocs profile that
`-memprofile` writes); one sample per bucket of (stack, object size), as the runtime's
`mprof.go: stkbucket` keys them, with a `bytes` label carrying the object size; leading runtime
frames hidden. How it is laid out follows `proto.go: profileBuilder`: a string table with "" first,
one Location per call-site address (inlined calls at one address share it, one Line each),
one Function per name, a mapping every location points into.

The wire format is `protobuf.go`'s: varints, length-delimited strings and messages, repeated
integers packed when there are more than two. There is no protobuf library here (no maintained
Python writer of profile.proto exists); `read_profile` is the matching reader, for tests and
for looking at profiles Go writes.

Simplified against Go: the time stamp is the caller's (0, left out, by default) so that the same
records give the same bytes; the mapping is one range given by the caller, or Go's own fallback
(`proto_other.go: readMapping`'s fake entry that every location belongs to) when there is none;
all locations, then all functions, then the samples, where Go writes each sample's new locations
and functions just before it (readers do not depend on the order of fields). docs/pprof.md.
"""

import gzip
import math
import zlib
from dataclasses import dataclass, field
from typing import NamedTuple

from emu.errors import BadInput

_U64 = 1 << 64


# ---------------------------------------------------------------------------------------------
# profile.proto's messages, with string-table indices resolved to strings (as pprof's own
# `profile.postDecode` resolves them). Field names are profile.proto's.

@dataclass
class ValueType:
    type: str = ""
    unit: str = ""


@dataclass
class Label:
    key: str = ""
    str: str = ""
    num: int = 0
    num_unit: str = ""


@dataclass
class Sample:
    location_id: list = field(default_factory=list)   # innermost first
    value: list = field(default_factory=list)         # one per Profile.sample_type
    label: list = field(default_factory=list)


@dataclass
class Mapping:
    id: int = 0
    memory_start: int = 0
    memory_limit: int = 0
    file_offset: int = 0
    filename: str = ""
    build_id: str = ""
    has_functions: bool = False
    has_filenames: bool = False
    has_line_numbers: bool = False
    has_inline_frames: bool = False


@dataclass
class Line:
    function_id: int = 0
    line: int = 0
    column: int = 0


@dataclass
class Location:
    id: int = 0
    mapping_id: int = 0
    address: int = 0
    line: list = field(default_factory=list)   # inlined callee first, the real caller last
    is_folded: bool = False


@dataclass
class Function:
    id: int = 0
    name: str = ""
    system_name: str = ""
    filename: str = ""
    start_line: int = 0


@dataclass
class Profile:
    sample_type: list = field(default_factory=list)
    sample: list = field(default_factory=list)
    mapping: list = field(default_factory=list)
    location: list = field(default_factory=list)
    function: list = field(default_factory=list)
    drop_frames: str = ""
    keep_frames: str = ""
    time_nanos: int = 0
    duration_nanos: int = 0
    period_type: ValueType | None = None
    period: int = 0
    comment: list = field(default_factory=list)
    default_sample_type: str = ""
    doc_url: str = ""
    # The table as read (decoding only); encoding builds its own, so it takes no part in ==.
    string_table: list = field(default_factory=list, compare=False)



# Each message's fields as (field number, attribute, kind), in the order they are written
# (writeHeapProto's order; the string table last). Kinds: "u" uint64, "i" int64, "b" bool,
# "s" string-table index ("s!" written even when 0, as proto.go: pbValueType does), "U"/"I"/"S"
# repeated of those, a class: one message, [class]: repeated messages, "T": the string table.
_SPEC = {
    ValueType: ((1, "type", "s!"), (2, "unit", "s!")),
    Label: ((1, "key", "s"), (2, "str", "s"), (3, "num", "i"), (4, "num_unit", "s")),
    Sample: ((2, "value", "I"), (1, "location_id", "U"), (3, "label", [Label])),
    Mapping: ((1, "id", "u"), (2, "memory_start", "u"), (3, "memory_limit", "u"),
              (4, "file_offset", "u"), (5, "filename", "s"), (6, "build_id", "s"),
              (7, "has_functions", "b"), (8, "has_filenames", "b"), (9, "has_line_numbers", "b"),
              (10, "has_inline_frames", "b")),
    Line: ((1, "function_id", "u"), (2, "line", "i"), (3, "column", "i")),
    Location: ((1, "id", "u"), (3, "address", "u"), (4, "line", [Line]), (2, "mapping_id", "u"),
               (5, "is_folded", "b")),
    Function: ((1, "id", "u"), (2, "name", "s"), (3, "system_name", "s"), (4, "filename", "s"),
               (5, "start_line", "i")),
    Profile: ((11, "period_type", ValueType), (12, "period", "i"), (1, "sample_type", [ValueType]),
              (14, "default_sample_type", "s"), (4, "location", [Location]),
              (5, "function", [Function]), (2, "sample", [Sample]), (9, "time_nanos", "i"),
              (10, "duration_nanos", "i"), (3, "mapping", [Mapping]), (7, "drop_frames", "s"),
              (8, "keep_frames", "s"), (13, "comment", "S"), (15, "doc_url", "s"),
              (6, "string_table", "T")),
}
_BY_TAG = {cls: {tag: (name, kind) for tag, name, kind in spec} for cls, spec in _SPEC.items()}


# ---------------------------------------------------------------------------------------------
# Writing (protobuf.go). Integers go out as Go's uint64(x) does: an int64 below zero takes ten
# bytes of two's complement.

def _varint(out, x):
    x %= _U64
    while x >= 0x80:
        out.append(x & 0x7F | 0x80)
        x >>= 7
    out.append(x)


class _Strings:
    """proto.go: profileBuilder.stringIndex: each string once, in order of first use, "" at 0."""

    def __init__(self):
        self.table = [""]
        self.index = {"": 0}

    def __call__(self, s):
        i = self.index.get(s)
        if i is None:
            i = self.index[s] = len(self.table)
            self.table.append(s)
        return i


def _encode(msg, strings):
    out = bytearray()

    def key(tag, wire):
        _varint(out, tag << 3 | wire)

    def length_delimited(tag, data):
        key(tag, 2)
        _varint(out, len(data))
        out.extend(data)

    for tag, name, kind in _SPEC[type(msg)]:
        v = getattr(msg, name)
        if kind == "T":
            for text in strings.table:
                length_delimited(tag, text.encode())
        elif isinstance(kind, list):
            for sub in v:
                length_delimited(tag, _encode(sub, strings))
        elif isinstance(kind, type):
            if v is not None:
                length_delimited(tag, _encode(v, strings))
        elif kind in ("U", "I", "S"):
            xs = [strings(x) for x in v] if kind == "S" else v
            if len(xs) > 2:         # packed past two values, as protobuf.go: int64s/uint64s
                packed = bytearray()
                for x in xs:
                    _varint(packed, x)
                length_delimited(tag, packed)
            else:
                for x in xs:
                    key(tag, 0)
                    _varint(out, x)
        else:
            x = strings(v) if kind in ("s", "s!") else int(v)
            if x or kind == "s!":
                key(tag, 0)
                _varint(out, x)
    return bytes(out)


def encode_profile(profile):
    """The uncompressed profile.proto bytes of `profile`; the same Profile gives the same bytes."""
    return _encode(profile, _Strings())


def gzip_profile(raw):
    """gzip as proto.go's profileBuilder does (gzip.BestSpeed), with mtime 0 in the header so
    the same profile gives the same file."""
    return gzip.compress(raw, compresslevel=1, mtime=0)


# ---------------------------------------------------------------------------------------------
# Reading: varint, 64-bit, length-delimited and 32-bit fields; unknown fields are skipped, as
# protobuf readers do.

def _read_varint(data, i, what):
    x = shift = 0
    while True:
        if i >= len(data):
            raise BadInput(f"profile.proto: {what}: truncated varint at byte {i}")
        c = data[i]
        i += 1
        x |= (c & 0x7F) << shift
        if not c & 0x80:
            return x % _U64, i
        shift += 7
        if shift >= 70:
            raise BadInput(f"profile.proto: {what}: varint longer than ten bytes at byte {i}")


def _fields(data, what):
    """(field number, wire type, value) of each field: an int for varint and fixed fields,
    bytes for length-delimited ones."""
    i, n = 0, len(data)
    while i < n:
        k, i = _read_varint(data, i, what)
        tag, wire = k >> 3, k & 7
        if wire == 0:
            value, i = _read_varint(data, i, what)
        elif wire in (1, 2, 5):
            size = {1: 8, 5: 4}.get(wire)
            if size is None:
                size, i = _read_varint(data, i, what)
            if i + size > n:
                raise BadInput(f"profile.proto: {what}: field {tag} runs {i + size - n} bytes past the end")
            value = data[i:i + size]
            i += size
            if wire != 2:
                value = int.from_bytes(value, "little")
        else:
            raise BadInput(f"profile.proto: {what}: field {tag} has wire type {wire}, which profile.proto never uses")
        yield tag, wire, value


def _decode(cls, data, strings, what):
    msg, spec = cls(), _BY_TAG[cls]

    def string(x, where):
        if x >= len(strings):
            raise BadInput(f"profile.proto: {where}: string index {x} past the string table's {len(strings)} entries")
        return strings[x]

    def scalar(kind, x, where):
        if kind in ("s", "s!", "S"):
            return string(x, where)
        if kind == "b":
            return bool(x)
        return _signed(x) if kind in ("i", "I") else x

    for tag, wire, value in _fields(data, what):
        if tag not in spec or spec[tag][1] == "T":
            continue
        name, kind = spec[tag]
        where = f"{what}.{name}"
        if isinstance(kind, (list, type)):
            if wire != 2:
                raise BadInput(f"profile.proto: {where}: a message with wire type {wire}")
            sub = _decode(kind[0] if isinstance(kind, list) else kind, value, strings, where)
            if isinstance(kind, list):
                getattr(msg, name).append(sub)
            else:
                setattr(msg, name, sub)
        elif kind in ("U", "I", "S"):
            if wire == 2:           # packed
                xs, i = [], 0
                while i < len(value):
                    x, i = _read_varint(value, i, where)
                    xs.append(x)
            elif wire == 0:
                xs = [value]
            else:
                raise BadInput(f"profile.proto: {where}: repeated integers with wire type {wire}")
            getattr(msg, name).extend(scalar(kind, x, where) for x in xs)
        elif wire == 0:
            setattr(msg, name, scalar(kind, value, where))
        else:
            raise BadInput(f"profile.proto: {where}: an integer with wire type {wire}")
    return msg


def _signed(x):
    return x - _U64 if x >= 1 << 63 else x


def read_profile(src):
    """A Profile from profile.proto bytes, gzipped or not: a path, a binary file or bytes."""
    if isinstance(src, (bytes, bytearray)):
        data, name = bytes(src), "<bytes>"
    elif hasattr(src, "read"):
        data, name = src.read(), getattr(src, "name", "<file>")
    else:
        name = str(src)
        try:
            with open(src, "rb") as f:
                data = f.read()
        except OSError as e:
            raise BadInput(f"{name}: cannot read the profile: {e.strerror}") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise BadInput(f"{name}: not a whole gzip stream: {e}") from None
    strings = [_text(v, name) for tag, wire, v in _fields(data, name) if tag == 6 and wire == 2]
    if not strings or strings[0] != "":
        raise BadInput(f"{name}: profile.proto's string table must start with \"\"")
    p = _decode(Profile, data, strings, name)
    p.string_table = strings
    return p


def _text(b, where):
    try:
        return b.decode()
    except UnicodeDecodeError:
        raise BadInput(f"profile.proto: {where}: a string that is not UTF-8") from None


# ---------------------------------------------------------------------------------------------
# Allocation profiles (protomem.go: writeHeapProto).

class Frame(NamedTuple):
    """One frame of an allocation's call stack.

    pc is the address Go writes as Location.address (runtime.Frame.PC: the return address less
    one, inside the CALL). Consecutive frames with one pc are one call site's inlined calls,
    innermost first, as runtime.CallersFrames expands them; they share one Location."""
    function: str       # package-qualified, as Go prints it: "main.(*T).grow"
    file: str
    line: int
    pc: int
    start_line: int = 0  # line of the func keyword (runtime.Frame's startLine); 0: unknown


class AllocRecord(NamedTuple):
    """Allocations of one object size from one call stack (mprof.go's bucket: stack and size)."""
    stack: tuple        # Frames, innermost (the allocating function) first
    size: int           # bytes per object
    count: int          # objects allocated
    inuse: int | None = None   # objects still live; None: all of them


SAMPLE_TYPES = (("alloc_objects", "count"), ("alloc_space", "bytes"),
                ("inuse_objects", "count"), ("inuse_space", "bytes"))


def scale_heap_sample(count, avg_size, rate):
    """protomem.go: scaleHeapSample: (objects, bytes) estimated from sampled ones. A bucket of
    size S appears in a profile sampled at MemProfileRate R with probability 1-exp(-S/R); at
    rate 1 every allocation was recorded and nothing is scaled. (Python's exp and Go's math.Exp
    may differ in the last bit, so a scaled value can differ from Go's by one.)"""
    if count == 0 or avg_size == 0:
        return 0, 0
    if rate <= 1:
        return count, count * avg_size
    scale = 1 / (1 - math.exp(-float(avg_size) / float(rate)))
    return int(float(count) * scale), int(float(count * avg_size) * scale)


def _is_runtime(function):
    return function.startswith(("runtime.", "internal/runtime/"))


def _sites(stack):
    """The stack cut into call sites: runs of frames at one pc, each function at most once (an
    inlined function cannot call itself, so a repeat is recursion through a new site)."""
    sites = []
    for f in stack:
        if sites and sites[-1][0].pc == f.pc and all(g.function != f.function for g in sites[-1]):
            sites[-1].append(f)
        else:
            sites.append([f])
    return [tuple(s) for s in sites]


def _int(x, lo, what, bits=63):
    """x, an integer >= lo that fits an int64 (bits=63) or a uint64 (bits=64)."""
    if isinstance(x, bool) or not isinstance(x, int) or x < lo:
        raise BadInput(f"{what} must be an integer >= {lo}, not {x!r}")
    if x >> bits:
        raise BadInput(f"{what} {x:#x} does not fit in {'an int64' if bits == 63 else 'a uint64'}")
    return x


def _record(i, r):
    where = f"allocation record {i}"
    try:
        stack, size, count, *rest = r
    except (TypeError, ValueError):
        raise BadInput(f"{where}: not (stack, size, count[, inuse]): {r!r}") from None
    if len(rest) > 1:
        raise BadInput(f"{where}: not (stack, size, count[, inuse]): {r!r}")
    # mallocgc returns zerobase for size 0 without profiling it.
    size = _int(size, 1, f"{where}: size (bytes per object)")
    count = _int(count, 0, f"{where}: count")
    inuse = rest[0] if rest and rest[0] is not None else count
    inuse = _int(inuse, 0, f"{where}: inuse")
    if inuse > count:
        raise BadInput(f"{where}: inuse {inuse} exceeds count {count} (objects still live among those allocated)")
    if isinstance(stack, (str, bytes)) or not hasattr(stack, "__iter__"):
        raise BadInput(f"{where}: stack must be a sequence of frames, not {stack!r}")
    frames = []
    for j, f in enumerate(stack):
        fw = f"{where}, frame {j}"
        try:
            if isinstance(f, (str, bytes)):
                raise TypeError
            f = Frame(*f)
        except TypeError:
            raise BadInput(f"{fw}: not (function, file, line, pc[, start_line]): {f!r}") from None
        if not isinstance(f.function, str) or not f.function:
            raise BadInput(f"{fw}: function must be a non-empty name, not {f.function!r}")
        if not isinstance(f.file, str):
            raise BadInput(f"{fw} ({f.function}): file must be a string, not {f.file!r}")
        _int(f.line, 0, f"{fw} ({f.function}): line")
        _int(f.start_line, 0, f"{fw} ({f.function}): start_line")
        _int(f.pc, 1, f"{fw} ({f.function}): pc", bits=64)
        frames.append(f)
    if not frames:
        raise BadInput(f"{where}: empty stack (every allocation has at least the allocating function)")
    return tuple(frames), size, count, inuse


def build_alloc_profile(records, *, period, default_sample_type="alloc_space", mapping=None,
                        time_nanos=0, duration_nanos=0, hide_runtime=True):
    """The Profile writeHeapProto would build from these allocation records.

    records: AllocRecords or (stack, size, count[, inuse]) tuples, stacks of Frames or
      (function, file, line, pc[, start_line]) tuples. Records of one stack and one size are one
      bucket, as in mprof.go (summed; one sample each, in order of first appearance).
    period: the MemProfileRate the records were taken at: 1 when they are every allocation
      (nothing is scaled), else the mean sampling distance in bytes, and values are scaled
      with scale_heap_sample as Go scales them.
    default_sample_type: "alloc_space" for the allocs profile (`go test -memprofile`); "" for
      the heap profile, where pprof then shows inuse_space.
    mapping: a Mapping (start, limit, file, build ID) every pc must lie in; None: Go's fallback,
      one empty mapping that every location belongs to.
    hide_runtime: leave out the runtime's own frames at the top of each stack (functions
      runtime.* and internal/runtime/*), unless the stack has nothing else, as Go does.
    """
    period = _int(period, 1, "period (MemProfileRate)")
    if default_sample_type not in ("",) + tuple(t for t, _ in SAMPLE_TYPES):
        raise BadInput(f"default_sample_type {default_sample_type!r} is none of "
                       f"{', '.join(t for t, _ in SAMPLE_TYPES)} (or \"\")")
    _int(time_nanos, 0, "time_nanos")
    _int(duration_nanos, 0, "duration_nanos")
    if mapping is None:
        m = Mapping(id=1)           # proto_other.go's fake entry: every address belongs to it
    elif isinstance(mapping, Mapping) and 0 <= mapping.memory_start < mapping.memory_limit <= _U64:
        m = Mapping(id=1, memory_start=mapping.memory_start, memory_limit=mapping.memory_limit,
                    file_offset=mapping.file_offset, filename=mapping.filename, build_id=mapping.build_id)
    else:
        raise BadInput(f"mapping must be a Mapping with memory_start < memory_limit, not {mapping!r}")

    if not hasattr(records, "__iter__"):
        raise BadInput(f"records must be a sequence of allocation records, not {records!r}")
    buckets = {}
    for i, r in enumerate(records):
        stack, size, count, inuse = _record(i, r)
        b = buckets.setdefault((stack, size), [i, 0, 0])
        b[1] += count
        b[2] += inuse

    p = Profile(period_type=ValueType("space", "bytes"), period=period,
                sample_type=[ValueType(t, u) for t, u in SAMPLE_TYPES],
                default_sample_type=default_sample_type, time_nanos=time_nanos,
                duration_nanos=duration_nanos, mapping=[m])
    locations, functions = {}, {}
    symbolized = True
    for (stack, size), (first, count, inuse) in buckets.items():
        sites = _sites(stack)
        if hide_runtime:
            # protomem.go tests FuncForPC's name: the innermost function at the address.
            keep = next((k for k, s in enumerate(sites) if not _is_runtime(s[0].function)), 0)
            sites = sites[keep:]
        ids = []
        for site in sites:
            loc = locations.get(site)
            if loc is None:
                if mapping is not None and not m.memory_start <= site[0].pc < m.memory_limit:
                    raise BadInput(f"allocation record {first}: pc {site[0].pc:#x} ({site[0].function}) "
                                   f"lies outside the mapping [{m.memory_start:#x}, {m.memory_limit:#x})")
                loc = locations[site] = Location(id=len(locations) + 1, mapping_id=1, address=site[0].pc)
                for f in site:
                    fn = functions.get(f.function)
                    if fn is None:
                        fn = functions[f.function] = Function(
                            id=len(functions) + 1, name=f.function, system_name=f.function,
                            filename=f.file, start_line=f.start_line)
                    elif (fn.filename, fn.start_line) != (f.file, f.start_line):
                        raise BadInput(f"allocation record {first}: function {f.function} is in "
                                       f"{f.file}:{f.start_line} here but in {fn.filename}:{fn.start_line} before")
                    loc.line.append(Line(function_id=fn.id, line=f.line))
                    # proto.go: allFrames counts a frame without function, file or line as unsymbolized.
                    symbolized &= bool(f.file) and f.line > 0
            ids.append(loc.id)
        values = [*scale_heap_sample(count, size, period), *scale_heap_sample(inuse, size, period)]
        _int(values[1], 0, f"allocation record {first}: alloc_space of its bucket (bytes)")
        p.sample.append(Sample(location_id=ids, value=values, label=[Label(key="bytes", num=size)]))
    p.location = list(locations.values())
    p.function = list(functions.values())
    m.has_functions = symbolized
    return p


def write_alloc_profile(dest, records, *, period, **options):
    """Write the gzipped allocation profile of `records` (see build_alloc_profile) to `dest`, a
    path or a binary file, and return its bytes: the same records give the same bytes."""
    data = gzip_profile(encode_profile(build_alloc_profile(records, period=period, **options)))
    if hasattr(dest, "write"):
        dest.write(data)
    else:
        try:
            with open(dest, "wb") as f:
                f.write(data)
        except OSError as e:
            raise BadInput(f"{dest}: cannot write the profile: {e.strerror}") from None
    return data
