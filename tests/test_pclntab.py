"""The runtime symbol table read out of a linked binary (emu/pclntab.py) says what Go 1.27's own
tools and runtime say about the same binary.

One program is built once with `go build -gcflags='-live -S'`: the compiler's listing (frame
sizes, the SP offsets of named variables) and its liveness report (`live at call to X: a b`,
`stack object v T`) come with it. `go tool nm` and `go tool objdump` read the binary; the
program itself prints runtime.Callers/CallersFrames and, asked to, panics with a traceback.
"""

import os
import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from emu.errors import BadInput, InvariantError
from emu.pclntab import LAYOUTS, ArgSlot, Pclntab, StackMap, func_name_for_print, run_gc_prog

SRC = """package main

import (
	"fmt"
	"os"
	"runtime"
)

var P *int
var N int
var S []*int
var A [3]*int
var DP = &N
var G struct {
	n int
	p *int
	s string
}
var Big [100]*int

type T struct {
	a, b *int
	c    int
}

//go:noinline
func sink(x any) {}

//go:noinline
func work(p *int, q []byte, t *T) *int {
	var local T
	local.a = p
	sink(&local)
	x := new(int)
	sink(q)
	*x = *p + len(q)
	sink(t)
	y := new(string)
	sink(x)
	*y = "s"
	sink(y)
	return x
}

//go:noinline
func leaf() []uintptr {
	pcs := make([]uintptr, 32)
	return pcs[:runtime.Callers(1, pcs)]
}

func mid() []uintptr { return leaf() }

func top() []uintptr { return mid() }

//go:noinline
func frameless(a, b int) int { return a*b + 1 }

//go:noinline
func crash(p *int, s []int, n int) int {
	if n > 2 {
		panic("crash")
	}
	return *p + s[0] + n
}

func main() {
	n := 3
	P, S = &n, []*int{&n}
	A[1], G.p, Big[7] = DP, DP, DP
	work(P, []byte("hi"), &T{})
	if len(os.Args) > 1 {
		crash(P, []int{1, 2}, frameless(1, len(os.Args)+2))
	}
	pcs := top()
	for _, pc := range pcs {
		fmt.Printf("pc %#x\\n", pc)
	}
	fr := runtime.CallersFrames(pcs)
	for {
		f, more := fr.Next()
		fmt.Printf("frame %#x %s %s:%d\\n", f.PC, f.Function, f.File, f.Line)
		if !more {
			break
		}
	}
}
"""

# Go's layout of the types of the stack objects in `work`: size, offsets of pointer words.
GO_TYPES = {"T": (24, [0, 8]), "[]byte": (24, [0]), "string": (16, [0])}

_LISTING = re.compile(r"^\t0x([0-9a-f]{4}) \d{5} \(([^)]*):(\d+)\)\t(.*)$")
_OBJDUMP = re.compile(r"^  (\S+):(\d+)\t+0x([0-9a-f]+)\t+([0-9a-f]+)\t+(.*?)\s*$")


@dataclass
class Built:
    dir: Path
    prog: Path
    stderr: str         # the -S listing and the -live report
    nm: list            # (address, size, kind, name)
    go: str
    env: dict

    def run(self, *args):
        return subprocess.run([str(self.prog), *args], capture_output=True, text=True, timeout=60)

    def listing(self, func):
        """[(pc offset, line, text)] of func's -S instructions."""
        text = self.stderr[self.stderr.index(f"\n{func} STEXT"):]
        out = []
        for ln in text.splitlines()[2:]:
            if re.match(r"^\S+ STEXT", ln):
                break
            m = _LISTING.match(ln)
            if m:
                out.append((int(m.group(1), 16), int(m.group(3)), m.group(4)))
        return out

    def objdump(self, pattern):
        """[(pc, file base name, line, instruction bytes, text)] of `go tool objdump -s pattern`."""
        out = subprocess.run([self.go, "tool", "objdump", "-s", pattern, str(self.prog)],
                             capture_output=True, text=True, env=self.env, timeout=120, check=True).stdout
        return [(int(m.group(3), 16), m.group(1), int(m.group(2)), m.group(4), m.group(5))
                for m in map(_OBJDUMP.match, out.splitlines()) if m]

    def symbol(self, name):
        return next((a, s) for a, s, _, n in self.nm if n == name)


@pytest.fixture(scope="module")
def built(go, go_env, tmp_path_factory):
    d = tmp_path_factory.mktemp("pclntab")
    (d / "go.mod").write_text("module pcln\n\ngo 1.27\n")
    (d / "main.go").write_text(SRC)
    out = subprocess.run([go, "build", "-gcflags=-live -S", "-o", "prog", "."], cwd=d, env=go_env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    nm = subprocess.run([go, "tool", "nm", "-size", "-sort", "address", str(d / "prog")],
                        capture_output=True, text=True, env=go_env, timeout=120, check=True).stdout
    syms = []
    for ln in nm.splitlines():
        parts = ln.split(None, 3)
        if len(parts) == 4:
            syms.append((int(parts[0], 16), int(parts[1]), parts[2], parts[3]))
    return Built(d, d / "prog", out.stderr, syms, go, go_env)


@pytest.fixture(scope="module")
def tab(built):
    return Pclntab.open(built.prog)


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda c: c.NAME)
def test_struct_offsets_equal_go_asm_h(go_asm_h, layout):
    fields = {k: v for k, v in vars(layout).items() if not k.startswith("_") and isinstance(v, int)}
    assert go_asm_h[f"{layout.NAME}__size"] == fields.pop("SIZE")
    for field, off in fields.items():
        assert go_asm_h[f"{layout.NAME}_{field}"] == off, field


def test_every_function_has_the_name_entry_and_size_go_tool_nm_gives(built, tab):
    text = {}
    for addr, size, kind, name in built.nm:
        if kind in "Tt":
            text.setdefault(addr, []).append((name.removesuffix(".abi0"), size))   # nm names ABI0 code
    funcs = tab.funcs()
    assert len(funcs) > 1000
    for f in funcs:
        if f.pcsp:
            assert (f.name, f.size) in text[f.entry], f
        else:       # linker markers have no pc tables, so no size: they end where the next begins
            assert f.name.startswith("go:") and f.name in [n for n, _ in text[f.entry]], f
    sized = {a for a, syms in text.items() if any(s for _, s in syms)}
    assert sized <= {f.entry for f in funcs}


@pytest.mark.parametrize("func", ["main.work", "main.main", "runtime.mallocgc", "runtime.morestack.abi0",
                                  "runtime.memmove"])
def test_file_line_of_every_instruction_equals_go_tool_objdump(built, tab, func):
    insns = built.objdump(f"^{re.escape(func)}$")
    assert len(insns) > 10
    for pc, file, line, _, text in insns:
        got_file, got_line = tab.findfunc(pc).file_line(pc)
        assert (os.path.basename(got_file), got_line) == (file, line), f"{pc:#x} {text}"


@pytest.mark.parametrize("func", ["main.work", "main.leaf", "main.crash", "main.main", "main.frameless"])
def test_pcsp_is_the_frame_the_prologue_builds_and_the_listing_declares(built, tab, func):
    m = re.search(rf"TEXT\t{re.escape(func)}\(SB\), \S+, \$(\d+)-(\d+)", built.stderr)
    frame, args = int(m.group(1)), int(m.group(2))
    f = tab.func_named(func)
    assert f.args == args
    assert f.max_sp_delta() == frame
    insns = built.objdump(f"^{re.escape(func)}$")
    ends = [pc + len(code) // 2 for pc, _, _, code, _ in insns]
    assert ends[-1] == f.end
    assert f.sp_delta(f.entry) == 0
    for (pc, _, _, _, text), after in zip(insns, ends):
        if text == "RET":
            assert f.sp_delta(pc) == 0
        if frame == 0:
            assert f.sp_delta(pc) == 0, text
        elif text == "PUSHQ BP" and f.sp_delta(pc) == 0:
            assert f.sp_delta(after) == 8
        elif m := re.fullmatch(r"SUBQ \$(0x[0-9a-f]+), SP", text):
            assert f.sp_delta(after) == f.sp_delta(pc) + int(m.group(1), 16) == frame


def _sp_offsets(built, func):
    """{variable: lowest SP offset the listing names it at} ("main.q+128(SP)")."""
    offs = {}
    for _, _, text in built.listing(func):
        for name, off in re.findall(r"main\.([.~\w]+?)\+(\d+)\(SP\)", text):
            offs[name] = min(offs.get(name, 1 << 30), int(off))
    return offs


def test_stack_maps_at_each_call_mark_exactly_the_slots_the_compiler_reports_live(built, tab):
    """`live at call to sink: p q t` names the variables; the listing's SP offsets place them.
    Every live variable of `work` is a pointer or a slice, whose first word is its pointer."""
    f = tab.func_named("main.work")
    offs = _sp_offsets(built, "main.work")
    live = {(int(m.group(1)), m.group(2)): m.group(3).split()
            for m in re.finditer(r"^\./main\.go:(\d+):\d+: live at call to (\S+): (.*)$", built.stderr, re.M)}
    calls = [(pc, line, text) for pc, line, text in built.listing("main.work") if text.startswith("CALL")]
    checked = 0
    for pc, line, text in calls:
        callee = re.search(r"CALL\t\S+?\.(\S+)\(SB\)", text).group(1)
        if callee == "morestack_noctxt":
            continue
        ret = f.entry + pc + 5                       # CALL rel32 is 5 bytes
        fr = tab.frame(ret, sp=0)                    # sp 0: addresses are SP offsets
        want = sorted(offs[name] for name in live.get((line, callee), []))
        assert fr.pointer_slots() == want, f"call to {callee} at line {line}"
        checked += bool(want)
    assert checked >= 5


def test_frame_pointers_follow_the_amd64_frame_layout(built, tab):
    """fp is the caller's SP (the return PC at fp-8, the saved BP below it); argp is fp."""
    f = tab.func_named("main.work")
    frame = int(re.search(r"TEXT\tmain\.work\(SB\), \S+, \$(\d+)", built.stderr).group(1))
    call = next(pc for pc, _, text in built.listing("main.work") if text.startswith("CALL"))
    fr = tab.frame(f.entry + call + 5, sp=0x7000)
    assert fr.fp == 0x7000 + frame + 8 == fr.argp
    assert fr.return_pc_slot == fr.fp - 8 and fr.saved_bp_slot == fr.varp == fr.fp - 16
    assert fr.locals_base == fr.varp - 8 * fr.locals.n
    g = tab.func_named("main.frameless")
    leaf = tab.frame(g.entry, sp=0x7000)
    assert (leaf.fp, leaf.varp, leaf.saved_bp_slot, leaf.locals.n) == (0x7008, 0x7000, None, 0)
    dead = tab.frame(f.entry + call + 5, sp=0x7000, continpc=0)
    assert dead.pointer_slots() == [] and dead.objects == ()


def test_unwind_climbs_from_work_to_goexit_by_the_listings_frame_sizes(built, tab):
    """A stack laid out as Go lays it: each return PC at the callee's fp-8, each caller's SP
    at the callee's fp. The return PCs into runtime.main and goexit come from a real run."""
    frame = {fn: int(re.search(rf"TEXT\t{fn}\(SB\), \S+, \$(\d+)", built.stderr).group(1))
             for fn in ("main.work", "main.main")}
    in_work = next(pc for pc, _, t in built.listing("main.work") if t.startswith("CALL"))
    in_main = next(pc for pc, _, t in built.listing("main.main") if t == "CALL\tmain.work(SB)")
    pcs = [int(x, 16) for x in re.findall(r"^pc (0x[0-9a-f]+)$", built.run().stdout, re.M)]
    into_runtime_main, into_goexit = pcs[-2:]
    sp0 = 0xC000100000
    work_fp = sp0 + frame["main.work"] + 8
    main_fp = work_fp + frame["main.main"] + 8
    rm = tab.func_named("runtime.main")
    rm_fp = main_fp + rm.sp_delta(into_runtime_main) + 8
    stack = {work_fp - 8: tab.func_named("main.main").entry + in_main + 5,
             main_fp - 8: into_runtime_main, rm_fp - 8: into_goexit}
    frames = tab.unwind(tab.func_named("main.work").entry + in_work + 5, sp0, stack.__getitem__)
    assert [(fr.func.name, fr.sp) for fr in frames] == [
        ("main.work", sp0), ("main.main", work_fp), ("runtime.main", main_fp), ("runtime.goexit", rm_fp)]
    assert "live at call to work:" not in built.stderr and frames[1].pointer_slots() == []
    with pytest.raises(InvariantError, match="unexpected return pc for main.work called from 0x10"):
        tab.unwind(frames[0].pc, sp0, lambda addr: 0x10)


def test_stack_objects_are_the_address_taken_locals_the_compiler_reports(built, tab):
    f = tab.func_named("main.work")
    offs = _sp_offsets(built, "main.work")
    lines = {line for _, line, _ in built.listing("main.work")}
    reported = re.finditer(r"^\./main\.go:(\d+):\d+: stack object (\S+) (.*)$", built.stderr, re.M)
    want = sorted((offs[m.group(2)], *GO_TYPES[m.group(3)])
                  for m in reported if int(m.group(1)) in lines and m.group(2) in offs)
    assert len(want) == 3
    call = next(pc for pc, _, text in built.listing("main.work") if text.startswith("CALL"))
    fr = tab.frame(f.entry + call + 5, sp=0)
    got = sorted((fr.object_addr(o), o.size, o.pointer_offsets()) for o in fr.objects)
    assert got == want
    assert all(o.ptr_bytes == 8 * len(o.mask) for o in fr.objects)


def test_callers_frames_equal_the_real_runtime_callers_frames(built, tab):
    out = built.run().stdout
    pcs = [int(x, 16) for x in re.findall(r"^pc (0x[0-9a-f]+)$", out, re.M)]
    want = [(int(pc, 16), fn, file, int(line))
            for pc, fn, file, line in re.findall(r"^frame (0x[0-9a-f]+) (\S+) (\S+):(\d+)$", out, re.M)]
    assert [w[1] for w in want][:4] == ["main.leaf", "main.mid", "main.top", "main.main"]
    got = tab.callers_frames(pcs)
    assert [(g.pc, g.function, g.file, g.line) for g in got] == want
    assert [g.func is None for g in got[:4]] == [False, True, True, False]
    # Only the physical PCs, as a printed traceback has them: the inlined frames come back.
    physical = [pc for i, pc in enumerate(pcs) if tab.findfunc(pc) not in [tab.findfunc(p) for p in pcs[:i]]]
    assert len(physical) < len(pcs)
    assert [(g.pc, g.function, g.file, g.line) for g in tab.callers_frames(physical)] == want


def test_inline_frames_at_the_call_list_the_inlined_callers_innermost_first(built, tab):
    out = built.run().stdout
    pcs = [int(x, 16) for x in re.findall(r"^pc (0x[0-9a-f]+)$", out, re.M)]
    want = re.findall(r"^frame 0x[0-9a-f]+ (main\.(?:mid|top|main)) \S+:(\d+)$", out, re.M)
    frames = tab.inline_frames(pcs[1] - 1)           # the physical CALL main.leaf in main.main
    assert [(s.function, str(s.line)) for s in frames] == want
    assert [s.inlined for s in frames] == [True, True, False]
    src = SRC.splitlines()
    assert all(src[s.start_line - 1].startswith(f"func {s.name.removeprefix('main.')}(") for s in frames)


def test_traceback_args_mark_what_the_real_traceback_marks_unknown(built, tab):
    tb = built.run("panic").stderr
    m = re.search(r"^main\.crash\((.*)\)\n\t\S+ \+(0x[0-9a-f]+)$", tb, re.M)
    assert m, tb
    f = tab.func_named("main.crash")
    printed, start = [], True
    for item in f.traceback_args(f.entry + int(m.group(2), 16) - 1):   # printArgs uses the call PC
        if item != "}" and not start:
            printed.append(", ")
        if isinstance(item, ArgSlot):
            printed.append("X" if item.live else "X?")
        else:
            printed.append(item)
        start = item == "{"
    assert "".join(printed) == re.sub(r"0x[0-9a-f]+", "X", m.group(1))
    assert tab.func_named("main.main").traceback_args(f.entry) == ()


def test_data_and_bss_masks_mark_exactly_the_pointer_words_of_globals(built, tab):
    md = tab.module
    data, bss = tab.gcdata_mask(), tab.gcbss_mask()
    assert (data.n, bss.n) == ((md.edata - md.data) // 8, (md.ebss - md.bss) // 8)
    want = {"main.P": [1], "main.S": [1, 0, 0], "main.A": [1, 1, 1], "main.DP": [1],
            "main.G": [0, 1, 1, 0], "main.Big": [1] * 100}
    for name, bits in want.items():
        addr, size = built.symbol(name)
        assert size == 8 * len(bits)
        lo, mask = (md.data, data) if md.data <= addr < md.edata else (md.bss, bss)
        assert md.bss <= addr < md.ebss or lo == md.data, name
        assert [int(mask[(addr - lo) // 8 + i]) for i in range(len(bits))] == bits, name
    n_addr, _ = built.symbol("main.N")          # no pointers: in .noptrbss, outside both masks
    assert md.noptrbss <= n_addr < md.enoptrbss


def test_gc_programs_literal_bits_and_repeats_as_runGCProg_reads_them():
    # 3 literal bits 1,0,1; repeat the last 3 bits twice; 1 literal 0; repeat 1 bit (n as varint) 9 times.
    prog = bytes([0x03, 0b101, 0x83, 0x02, 0x01, 0x00, 0x80, 0x01, 0x09, 0x00])
    assert list(run_gc_prog(prog)) == [1, 0, 1] * 3 + [0] + [0] * 9
    with pytest.raises(BadInput, match="past its end"):
        run_gc_prog(bytes([0x03]))
    with pytest.raises(BadInput, match="repeats 3 bits with only 0 written"):
        run_gc_prog(bytes([0x83, 0x02, 0x00]))


def test_itabs_are_the_linkers_itabs_with_their_methods(built, tab):
    itabs = tab.itabs()
    assert sum(i.size for i in itabs) == tab.module.itabsize
    entries = {f.entry for f in tab.funcs()}
    assert all(fn in entries for i in itabs for fn in i.fun)
    write, _ = built.symbol("os.(*File).Write")      # fmt.Printf's io.Writer is os.Stdout
    assert any(i.fun == (write,) for i in itabs)


def test_typelinks_walk_the_linkers_descriptors_up_to_typedesclen(built, tab):
    """The walk ends exactly at types+typedesclen (Pclntab.typelinks checks it); the pointer
    and slice types `work` loads (LEAQ type:*main.T(SB) in the listing, the address in
    objdump) are among them with Go's sizes."""
    types = {t.addr: t for t in tab.typelinks()}
    assert len(types) > 100
    f = tab.func_named("main.work")
    code = {pc - f.entry: (pc + len(b) // 2, text) for pc, _, _, b, text in built.objdump("^main.work$")}
    checked = 0
    for pc, _, text in built.listing("main.work"):
        m = re.fullmatch(r"LEAQ\ttype:(\*|\[\])\S+\(SB\), AX", text)
        if m:
            nxt, disasm = code[pc]
            t = types[nxt + int(re.search(r"LEAQ (0x[0-9a-f]+)\(IP\)", disasm).group(1), 16)]
            assert (t.kind, t.size, t.ptr_bytes) == (("ptr", 8, 8) if m.group(1) == "*" else ("slice", 24, 8))
            checked += 1
    assert checked >= 4
    assert all(t.size == 8 for t in types.values() if t.kind in ("ptr", "map", "chan", "func"))


def test_findfunc_covers_the_padding_after_a_function_as_the_runtime_does(tab):
    f = next(f for f in tab.funcs() if f.pcsp and f.end < tab.func(f.index + 1).entry)
    assert tab.findfunc(f.end) is f
    with pytest.raises(BadInput, match=f"pc {f.end:#x} is in no Go function"):
        tab.findfunc(f.end, strict=True)


def test_stack_map_index_selects_the_bitmap_the_runtime_would(tab):
    f = tab.func_named("main.work")
    locals_ = f.locals_pointer_maps()
    assert isinstance(locals_, StackMap) and locals_.n >= 3
    assert [f.stack_map_index(f.entry)] == [-1]      # the prologue has none: getStackMap uses 0
    assert tab.frame(f.entry, sp=0).stack_map_index == 0


def test_generic_shape_names_print_as_the_runtime_prints_them():
    assert func_name_for_print("main.F[go.shape.int]") == "main.F[...]"
    assert func_name_for_print("main.(*T[go.shape.int]).M[go.shape.string]") == "main.(*T[...]).M[...]"
    assert func_name_for_print("main.plain") == "main.plain"


# ---- bad input ------------------------------------------------------------------------

def _elf_header(e_type):
    """A bare 64-bit little-endian x86-64 ELF header, with no segments or sections."""
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    return ident + struct.pack("<HHIQQQIHHHHHH", e_type, 62, 1, 0x401000, 0, 0, 0, 64, 56, 0, 64, 0, 0)


def test_a_file_that_is_not_elf_is_refused_by_name(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    with pytest.raises(BadInput, match=f"{re.escape(str(p))}: not a readable ELF file"):
        Pclntab.open(p)


def test_an_elf_without_go_metadata_is_refused(tmp_path):
    p = tmp_path / "c.out"
    p.write_bytes(_elf_header(2))
    with pytest.raises(BadInput, match="not a Go binary: no runtime.firstmoduledata"):
        Pclntab.open(p)


def test_a_position_independent_executable_is_refused(tmp_path):
    p = tmp_path / "pie"
    p.write_bytes(_elf_header(3))
    with pytest.raises(BadInput, match="ET_DYN: only non-PIE"):
        Pclntab.open(p)


def test_a_truncated_binary_is_refused(built, tmp_path):
    data = built.prog.read_bytes()
    half = tmp_path / "half"
    half.write_bytes(data[:len(data) // 2])
    with pytest.raises(BadInput, match=f"{re.escape(str(half))}: truncated: a PT_LOAD segment"):
        Pclntab.open(half)
    stub = tmp_path / "stub"
    stub.write_bytes(data[:40])
    with pytest.raises(BadInput, match="not a readable ELF file"):
        Pclntab.open(stub)


def test_a_pclntab_of_another_go_version_is_refused(built, tmp_path):
    from elftools.elf.elffile import ELFFile
    data = bytearray(built.prog.read_bytes())
    with open(built.prog, "rb") as fh:
        off = ELFFile(fh).get_section_by_name(".gopclntab")["sh_offset"]
    data[off:off + 4] = (0xFFFFFFFA).to_bytes(4, "little")
    p = tmp_path / "old"
    p.write_bytes(data)
    with pytest.raises(BadInput, match=r"pcHeader.magic is 0xfffffffa \(Go 1.16-1.17\)"):
        Pclntab.open(p)


def test_a_pc_outside_every_function_is_refused(built, tab):
    with pytest.raises(BadInput, match=f"{re.escape(str(built.prog))}: pc 0x10 is in no Go function"):
        tab.findfunc(0x10)
    with pytest.raises(BadInput, match="in no Go function"):
        tab.frame(tab.module.maxpc, sp=0)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(BadInput, match="cannot read"):
        Pclntab.open(tmp_path / "absent")


def test_a_bitvector_lists_its_set_bits_in_order_and_only_below_n():
    from emu.pclntab import BitVector
    v = BitVector(10, bytes([0b10000101, 0b11111110]))
    assert v.bits() == [0, 2, 7, 9] == [i for i in range(len(v)) if v[i]]
    assert BitVector(9, v.data).bits() == [0, 2, 7]
    assert BitVector(0, b"").bits() == []
