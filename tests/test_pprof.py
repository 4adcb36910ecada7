"""Allocation profiles in profile.proto: what `go tool pprof` reads from ours, and how ours
compare with the one `go test -memprofile` writes."""

import gzip
import io
import os
import re
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emu.errors import BadInput
from emu.pprof import (AllocRecord, Frame, Function, Label, Line, Location, Mapping, Profile, Sample,
                       ValueType, build_alloc_profile, encode_profile, gzip_profile, read_profile,
                       write_alloc_profile)

MAIN = "/src/app/main.go"

# main.main calls main.fill (16-byte objects) and main.grow, into which main.leaf is inlined
# (one pc, two lines); main.fill's allocation is reached through runtime.mallocgc.
FILL = [("runtime.mallocgc", "/go/src/runtime/malloc.go", 1040, 0x40A010, 1010),
        ("main.fill", MAIN, 12, 0x4011A0, 10), ("main.main", MAIN, 30, 0x401500, 28)]
GROW = [("main.leaf", MAIN, 41, 0x401230, 40), ("main.grow", MAIN, 22, 0x401230, 20),
        ("main.main", MAIN, 31, 0x401520, 28)]
RECORDS = [(FILL, 16, 40),           # 640 B
           (GROW, 1024, 2, 1),       # 2048 B, one still live
           (FILL, 16, 24),           # the same bucket: 64 objects, 1024 B in all
           (GROW, 48, 10, 0)]        # 480 B, none live


@pytest.fixture(scope="module")
def pprof_env(go_env, tmp_path_factory, pytestconfig):
    """go_env with a private HOME; the build cache is kept in pytest's cache when there is one,
    since `go tool pprof` builds cmd/pprof first (about a minute from an empty cache)."""
    env = dict(go_env, HOME=str(tmp_path_factory.mktemp("home")))
    if getattr(pytestconfig, "cache", None) is not None:
        env["GOCACHE"] = str(pytestconfig.cache.mkdir("go-build-pprof"))
    return env


@pytest.fixture(scope="module")
def pprof(go, pprof_env):
    """Run `go tool pprof ARGS`; its output, having checked it printed no warning."""
    def run(*args):
        out = subprocess.run([go, "tool", "pprof", *map(str, args)], env=pprof_env,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0 and not out.stderr.strip(), out.stderr
        return out.stdout
    return run


@pytest.fixture
def profile_file(tmp_path):
    path = tmp_path / "alloc.pb.gz"
    write_alloc_profile(path, RECORDS, period=1)
    return path


def top_rows(text):
    """pprof -top's table: name -> (flat, flat%, sum%, cum, cum%)."""
    rows = {}
    for ln in text.splitlines():
        m = re.match(r"\s*(\S+)\s+(\S+%)\s+(\S+%)\s+(\S+)\s+(\S+%)\s+(.+)$", ln)
        if m and m.group(1) != "flat":
            rows[m.group(6)] = m.groups()[:5]
    return rows


def test_pprof_top_gives_each_function_its_flat_and_cumulative_bytes(pprof, profile_file):
    out = pprof("-top", "-unit=B", "-sample_index=alloc_space", profile_file)
    assert "Type: alloc_space" in out
    assert "Showing nodes accounting for 3552B, 100% of 3552B total" in out
    assert top_rows(out) == {
        # 2048 + 480 B at the inlined main.leaf, 1024 B in main.fill; runtime.mallocgc is hidden.
        "main.leaf (inline)": ("2528B", "71.17%", "71.17%", "2528B", "71.17%"),
        "main.fill": ("1024B", "28.83%", "100%", "1024B", "28.83%"),
        "main.grow": ("0", "0%", "100%", "2528B", "71.17%"),
        "main.main": ("0", "0%", "100%", "3552B", "100%"),
    }


@pytest.mark.parametrize("index, total, leaf, fill", [
    ("alloc_objects", "76", "12", "64"),
    ("inuse_objects", "65", "1", "64"),
    ("inuse_space", "2048B", "1024B", "1024B"),
])
def test_pprof_reads_every_sample_type_of_a_heap_profile(pprof, profile_file, index, total, leaf, fill):
    unit = ["-unit=B"] if index.endswith("space") else []     # -unit=B would print counts as bytes too
    rows = top_rows(out := pprof("-top", *unit, f"-sample_index={index}", profile_file))
    assert f"Type: {index}" in out and f"of {total} total" in out
    assert rows["main.leaf (inline)"][0] == leaf and rows["main.fill"][0] == fill


def test_pprof_defaults_to_alloc_space_as_for_go_test_memprofile(pprof, profile_file):
    assert "Type: alloc_space" in pprof("-top", profile_file)


def test_pprof_traces_show_each_bucket_with_its_object_size_and_lines(pprof, profile_file):
    rule = "-----------+-------------------------------------------------------"
    assert pprof("-traces", "-lines", "-unit=B", profile_file) == f"""Type: alloc_space
{rule}
     bytes:  16B
     1024B   main.fill {MAIN}:12
             main.main {MAIN}:30
{rule}
     bytes:  1kB
     2048B   main.leaf {MAIN}:41 (inline)
             main.grow {MAIN}:22
             main.main {MAIN}:31
{rule}
     bytes:  48B
      480B   main.leaf {MAIN}:41 (inline)
             main.grow {MAIN}:22
             main.main {MAIN}:31
{rule}
"""


def test_pprof_names_the_mapped_binary(pprof, tmp_path):
    path = tmp_path / "m.pb.gz"
    write_alloc_profile(path, RECORDS, period=1, mapping=Mapping(memory_start=0x400000, memory_limit=0x500000,
                                                                 filename="bench.test", build_id="abc123"))
    out = pprof("-top", path)
    assert "File: bench.test" in out and "Build ID: abc123" in out


def test_written_profile_reads_back_as_built():
    built = build_alloc_profile(RECORDS, period=1, time_nanos=1_700_000_000_000_000_000, duration_nanos=5)
    back = read_profile(gzip_profile(encode_profile(built)))
    assert back == built
    assert back.string_table[0] == "" and back.time_nanos == 1_700_000_000_000_000_000


def test_one_bucket_per_stack_and_object_size_with_the_size_as_bytes_label():
    p = read_profile(write_alloc_profile(io.BytesIO(), RECORDS, period=1))
    names = {f.id: f.name for f in p.function}
    locs = {loc.id: loc for loc in p.location}
    got = {(tuple(names[ln.function_id] for i in s.location_id for ln in locs[i].line), s.label[0].num):
           s.value for s in p.sample}
    assert got == {(("main.fill", "main.main"), 16): [64, 1024, 64, 1024],
                   (("main.leaf", "main.grow", "main.main"), 1024): [2, 2048, 1, 1024],
                   (("main.leaf", "main.grow", "main.main"), 48): [10, 480, 0, 0]}
    assert all(s.label == [Label(key="bytes", num=s.label[0].num)] for s in p.sample)


def test_inlined_calls_at_one_pc_share_one_location_innermost_first():
    p = build_alloc_profile(RECORDS, period=1)
    (inl,) = [loc for loc in p.location if loc.address == 0x401230]
    names = {f.id: f.name for f in p.function}
    assert [(names[ln.function_id], ln.line) for ln in inl.line] == [("main.leaf", 41), ("main.grow", 22)]
    assert {f.name: (f.system_name, f.filename, f.start_line) for f in p.function}["main.leaf"] == \
        ("main.leaf", MAIN, 40)


def test_recursion_through_one_call_site_repeats_its_location():
    rec = [("main.walk", MAIN, 5, 0x401010), ("main.walk", MAIN, 7, 0x401040),
           ("main.walk", MAIN, 7, 0x401040), ("main.main", MAIN, 9, 0x401100)]
    p = build_alloc_profile([(rec, 8, 1)], period=1)
    assert p.sample[0].location_id == [1, 2, 2, 3] and len(p.location) == 3


def test_runtime_frames_above_the_first_user_frame_are_hidden_unless_there_is_nothing_else():
    only_runtime = [("runtime.malg", "/go/src/runtime/proc.go", 5000, 0x40B000),
                    ("internal/runtime/maps.newarray", "/go/src/internal/runtime/maps/map.go", 10, 0x40C000)]
    inlined_runtime = [("runtime.makeslice", "/go/src/runtime/slice.go", 110, 0x401300),
                       ("main.f", MAIN, 3, 0x401300), ("main.main", MAIN, 9, 0x401400, 28)]
    p = build_alloc_profile([(only_runtime, 64, 1), (FILL, 16, 1), (inlined_runtime, 32, 1)], period=1)
    names = {f.id: f.name for f in p.function}
    stacks = [[names[ln.function_id] for i in s.location_id for ln in p.location[i - 1].line] for s in p.sample]
    # The third: FuncForPC names the innermost function at 0x401300, a runtime one, so Go drops it.
    assert stacks == [["runtime.malg", "internal/runtime/maps.newarray"], ["main.fill", "main.main"], ["main.main"]]
    kept = build_alloc_profile([(FILL, 16, 1)], period=1, hide_runtime=False)
    assert kept.function[0].name == "runtime.mallocgc"


def test_sampled_records_are_scaled_as_go_scales_heap_samples():
    # protomem.go: scaleHeapSample at MemProfileRate 512 KiB: x / (1 - exp(-size/rate)); with
    # 50-digit arithmetic 3 x 1024 B -> 1537.50 objects, 1574400.49 B; 7 x 100000 B -> 40.31, 4031135.46.
    p = build_alloc_profile([(FILL, 1024, 3), (GROW, 100000, 7, 0)], period=512 * 1024)
    assert p.period == 524288 and p.period_type == ValueType("space", "bytes")
    assert [s.value for s in p.sample] == [[1537, 1574400, 1537, 1574400], [40, 4031135, 0, 0]]


def test_every_allocation_recorded_means_period_one_and_no_scaling():
    p = build_alloc_profile([(FILL, 1024, 3)], period=1)
    assert p.period == 1 and p.sample[0].value == [3, 3072, 3, 3072]


def test_same_records_give_the_same_bytes_in_any_process(tmp_path):
    first = write_alloc_profile(tmp_path / "a.pb.gz", RECORDS, period=1)
    assert write_alloc_profile(io.BytesIO(), [AllocRecord(*r) for r in RECORDS], period=1) == first
    assert first[4:8] == b"\0\0\0\0"        # gzip's mtime
    code = ("import io, sys; from emu.pprof import write_alloc_profile;"
            f"sys.stdout.buffer.write(write_alloc_profile(io.BytesIO(), {RECORDS!r}, period=1))")
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True,
                             cwd=os.path.dirname(os.path.dirname(__file__)), env=dict(os.environ, PYTHONHASHSEED=seed))
        assert out.stdout == first


@pytest.mark.parametrize("records, options, needle", [
    ([(FILL, -16, 1)], {}, "allocation record 0: size (bytes per object) must be an integer >= 1, not -16"),
    ([(FILL, 0, 1)], {}, "size (bytes per object) must be an integer >= 1, not 0"),
    ([(FILL, 16, 1), ([], 16, 1)], {}, "allocation record 1: empty stack"),
    ([(FILL, 16, -1)], {}, "count must be an integer >= 0, not -1"),
    ([(FILL, 16, True)], {}, "count must be an integer >= 0, not True"),
    ([(FILL, 16, 2, 3)], {}, "inuse 3 exceeds count 2"),
    ([(FILL, 16)], {}, "not (stack, size, count[, inuse])"),
    ([([("main.f", MAIN, 3, 0)], 16, 1)], {}, "frame 0 (main.f): pc must be an integer >= 1, not 0"),
    ([([("main.f", MAIN, 3, 1 << 64)], 16, 1)], {}, "frame 0 (main.f): pc 0x10000000000000000 does not fit in a uint64"),
    ([(FILL, 1 << 40, 1 << 23)], {}, "allocation record 0: alloc_space of its bucket (bytes) 0x8000000000000000 does "
                                     "not fit in an int64"),
    (None, {}, "records must be a sequence of allocation records, not None"),
    ([([("main.f", MAIN, "3", 0x401000)], 16, 1)], {}, "frame 0 (main.f): line must be an integer >= 0"),
    ([([("", MAIN, 3, 0x401000)], 16, 1)], {}, "function must be a non-empty name"),
    ([([("main.f", MAIN)], 16, 1)], {}, "frame 0: not (function, file, line, pc[, start_line])"),
    ([("main.f", 16, 1)], {}, "allocation record 0: stack must be a sequence of frames, not 'main.f'"),
    ([([("main.f", MAIN, 3, 0x401000, 1)], 16, 1), ([("main.f", "/other.go", 3, 0x401000, 1)], 16, 1)], {},
     "function main.f is in /other.go:1 here but in /src/app/main.go:1 before"),
    ([(FILL, 16, 1)], {"period": 0}, "period (MemProfileRate) must be an integer >= 1, not 0"),
    ([(FILL, 16, 1)], {"default_sample_type": "heap"}, "default_sample_type 'heap' is none of"),
    ([(FILL, 16, 1)], {"mapping": Mapping(memory_start=0x401000, memory_limit=0x402000)},
     "allocation record 0: pc 0x40a010 (runtime.mallocgc) lies outside the mapping [0x401000, 0x402000)"),
])
def test_bad_records_are_refused_with_what_and_where(records, options, needle):
    kw = {"period": 1, "hide_runtime": False, **options}
    with pytest.raises(BadInput) as e:
        build_alloc_profile(records, **kw)
    assert needle in str(e.value)


def test_a_refused_profile_leaves_no_file(tmp_path):
    path = tmp_path / "x.pb.gz"
    with pytest.raises(BadInput):
        write_alloc_profile(path, [([], 16, 1)], period=1)
    assert not path.exists()
    with pytest.raises(BadInput, match="cannot write the profile"):
        write_alloc_profile(tmp_path / "no" / "such" / "dir.pb.gz", RECORDS, period=1)


@pytest.mark.parametrize("data, needle", [
    (b"\x1f\x8b\x08\x00" + b"\0" * 6, "not a whole gzip stream"),
    (b"\x0a\x05\x08", "field 1 runs 4 bytes past the end"),
    (b"\x60\xff", "truncated varint"),
    (b"\x63", "wire type 3"),
    (b"\x32\x01x", "string table must start with \"\""),
    (b"\x32\x00\x70\x09", "default_sample_type: string index 9 past the string table's 1 entries"),
    (b"\x32\x00\x12\x05\x0d\x01\x00\x00\x00", "sample.location_id: repeated integers with wire type 5"),
])
def test_a_damaged_profile_is_refused_as_bad_input(data, needle):
    with pytest.raises(BadInput) as e:
        read_profile(data)
    assert needle in str(e.value)


_text = st.text(max_size=8)
_u64 = st.integers(0, (1 << 64) - 1)
_i64 = st.integers(-(1 << 63), (1 << 63) - 1)
_profiles = st.builds(
    Profile,
    sample_type=st.lists(st.builds(ValueType, _text, _text), max_size=3),
    sample=st.lists(st.builds(Sample, st.lists(_u64, max_size=4), st.lists(_i64, max_size=4),
                              st.lists(st.builds(Label, _text, _text, _i64, _text), max_size=2)), max_size=3),
    mapping=st.lists(st.builds(Mapping, _u64, _u64, _u64, _u64, _text, _text, st.booleans(), st.booleans(),
                               st.booleans(), st.booleans()), max_size=2),
    location=st.lists(st.builds(Location, _u64, _u64, _u64, st.lists(st.builds(Line, _u64, _i64, _i64), max_size=3),
                                st.booleans()), max_size=3),
    function=st.lists(st.builds(Function, _u64, _text, _text, _text, _i64), max_size=3),
    drop_frames=_text, keep_frames=_text, time_nanos=_i64, duration_nanos=_i64,
    period_type=st.none() | st.builds(ValueType, _text, _text), period=_i64,
    comment=st.lists(_text, max_size=3), default_sample_type=_text, doc_url=_text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_profiles)
def test_any_profile_round_trips_through_the_wire_format(p):
    raw = encode_profile(p)
    assert read_profile(raw) == p
    assert read_profile(gzip_profile(raw)) == p and encode_profile(read_profile(raw)) == raw


_frames = st.lists(st.tuples(st.sampled_from(["main.a", "main.b", "runtime.c", "pkg.(*T).d"]),
                             st.integers(0, 200), st.integers(1, 6)).map(
                       lambda t: Frame(t[0], f"/src/{t[0].split('.')[0]}.go", t[1], 0x401000 + 16 * t[2])),
                   min_size=1, max_size=5)
_records = st.lists(st.tuples(_frames, st.sampled_from([8, 16, 4096]), st.integers(0, 50)), max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_records)
def test_records_come_back_as_their_per_bucket_sums(records):
    # A frame's function decides its file; start lines are left 0, so no name has two homes.
    expected = Counter()
    for stack, size, count in records:
        expected[tuple((f.function, f.line) for f in stack), size] += count
    p = read_profile(write_alloc_profile(io.BytesIO(), records, period=1, hide_runtime=False))
    got = Counter()
    names = {f.id: f.name for f in p.function}
    for s in p.sample:
        stack = tuple((names[ln.function_id], ln.line) for i in s.location_id for ln in p.location[i - 1].line)
        assert s.value == [s.value[0], s.value[0] * s.label[0].num] * 2
        got[stack, s.label[0].num] += s.value[0]
    assert +got == +expected
    assert len(p.sample) == len({(tuple(st_), size) for st_, size, _ in records})


# --- against the profile Go itself writes ------------------------------------------------------

BENCH = """package realbench

import "testing"

type node struct {
	next *node
	v    [6]int
}

var sink any

//go:noinline
func newNode() *node { return &node{} }

func grow(n int) []int { return make([]int, n) }

func BenchmarkAlloc(b *testing.B) {
	for b.Loop() {
		sink = newNode()
		sink = grow(32)
	}
}
"""


@pytest.fixture(scope="module")
def real_profile(go, pprof_env, tmp_path_factory):
    """The allocs profile of a tiny benchmark: `go test -bench . -benchmem -memprofile
    real.pb.gz -memprofilerate 1`."""
    d = tmp_path_factory.mktemp("realbench")
    (d / "go.mod").write_text("module realbench\n\ngo 1.27\n")
    (d / "bench_test.go").write_text(BENCH)
    out = subprocess.run([go, "test", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", "100x",
                          "-memprofile", "real.pb.gz", "-memprofilerate", "1", "."],
                         cwd=d, env=pprof_env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    return d / "real.pb.gz"


def as_records(p):
    """A decoded allocs profile's samples as AllocRecords (every allocation, so unscaled)."""
    funcs = {f.id: f for f in p.function}
    locs = {loc.id: loc for loc in p.location}
    records = []
    for s in p.sample:
        stack = [Frame(funcs[ln.function_id].name, funcs[ln.function_id].filename, ln.line, locs[i].address,
                       funcs[ln.function_id].start_line) for i in s.location_id for ln in locs[i].line]
        (size,) = [lb.num for lb in s.label if lb.key == "bytes"]
        records.append(AllocRecord(stack, size, s.value[0], s.value[2]))
    return records


def test_go_writes_the_heap_profile_layout_we_write(real_profile):
    real = read_profile(real_profile)
    ours = build_alloc_profile(as_records(real), period=1)
    for p in (real, ours):
        assert p.period_type == ValueType("space", "bytes") and p.period == 1
        assert p.sample_type == [ValueType("alloc_objects", "count"), ValueType("alloc_space", "bytes"),
                                 ValueType("inuse_objects", "count"), ValueType("inuse_space", "bytes")]
        assert p.default_sample_type == "alloc_space"
        assert p.mapping[0].has_functions and all(loc.mapping_id == 1 for loc in p.location)
        assert all(f.system_name == f.name for f in p.function)
        assert all(s.label == [Label(key="bytes", num=s.label[0].num)] and
                   s.value[1] == s.value[0] * s.label[0].num for s in p.sample)
    assert real.time_nanos > 0 and real.duration_nanos == 0
    # The same string table start and the same header bytes, up to the default sample type.
    assert read_profile(gzip.compress(encode_profile(ours))).string_table[:8] == real.string_table[:8]
    raw = gzip.decompress(real_profile.read_bytes())
    assert encode_profile(ours)[:34] == raw[:34]


def test_go_profile_of_a_benchmark_names_the_allocating_functions(real_profile):
    real = read_profile(real_profile)
    funcs = {f.id: f for f in real.function}
    lines = {}
    for s in real.sample:
        leaf = real.location[[loc.id for loc in real.location].index(s.location_id[0])]
        lines.setdefault(tuple(funcs[ln.function_id].name for ln in leaf.line), Counter())[s.label[0].num] += s.value[0]
    # newNode's 64-byte node, grow's 32 ints inlined into the benchmark: at rate 1 every one of
    # the 100 iterations' allocations is there.
    assert lines[("realbench.newNode",)][64] == 100
    assert lines[("realbench.grow", "realbench.BenchmarkAlloc")][256] == 100


def test_pprof_prints_our_rewrite_of_a_go_profile_as_it_prints_go_own(pprof, real_profile, tmp_path):
    real = read_profile(real_profile)
    records = as_records(real)
    # Go's buckets differ in their full stacks; two that differed only in hidden runtime frames
    # would read back as one of our buckets (and one trace fewer). This benchmark has none.
    assert len({(tuple(r.stack), r.size) for r in records}) == len(records)
    m = real.mapping[0]
    ours = tmp_path / "ours.pb.gz"
    write_alloc_profile(ours, records, period=1, time_nanos=real.time_nanos,
                        mapping=Mapping(memory_start=m.memory_start, memory_limit=m.memory_limit,
                                        file_offset=m.file_offset, filename=m.filename, build_id=m.build_id))
    for args in (("-top", "-lines", "-unit=B", "-nodecount=1000", "-sample_index=alloc_space"),
                 ("-top", "-sample_index=alloc_objects"), ("-top", "-sample_index=inuse_space"),
                 ("-traces", "-lines")):
        assert pprof(*args, ours) == pprof(*args, real_profile)
