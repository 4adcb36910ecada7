"""Reading the compiler's -S listing (emu/gobuild.py: parse_listing): symbol names as Go 1.27
prints them, with spaces, quotes, brackets and go.shape instantiations."""

from emu import gobuild
from emu.machine import Machine

# Excerpts of `go build -gcflags=-S` output of go1.27.3 (cmd/internal/obj/objfile.go prints
# a relocation as "\trel OFF+SIZ t=TYPE NAME+ADD" whatever characters NAME holds).
CLOSURE_LISTING = """\
# gomemubuild
main.mk STEXT size=108 align=0x0 args=0x8 locals=0x28 funcid=0x0
\t0x0000 00000 (/tmp/w (1)/main.go:8)\tTEXT\tmain.mk(SB), ABIInternal, $40-8
\t0x0018 00024 (/tmp/w (1)/main.go:9)\tLEAQ\ttype:noalg.struct { F uintptr; X0 *main.T }(SB), BX
\t0x0000 49 3b 66 10 76 54 55 48 89 e5 48 83 ec 20 48 89  I;f.vTUH..H.. H.
\t0x0010 44 24 30 b8                                      D$0.
\trel 27+4 t=R_PCREL type:noalg.struct { F uintptr; X0 *main.T }+0
\trel 53+4 t=R_PCREL runtime.writeBarrier+-1
\trel 100+4 t=R_PCREL go:string."hello world \\"quoted\\" (paren) [x]"+0
\trel 102+0 t=R_CALLIND +0
main.Gen[go.shape.struct { main.a *int; main.b *int }] STEXT dupok size=114 align=0x0 args=0x20 locals=0x8 funcid=0x0
\t0x0000 00000 (/tmp/w/main.go:15)\tTEXT\tmain.Gen[go.shape.struct { main.a *int; main.b *int }](SB), DUPOK, ABIInternal, $8-32
\t0x0000 49 3b 66                                         I;f
\trel 34+4 t=R_CALL main.Gen[go.shape.struct { main.a *int; main.b *int }]+0
type:noalg.struct { F uintptr; X0 *main.T } SRODATA dupok size=80
\t0x0000 10 00 00 00 00 00 00 00 10 00 00 00 00 00 00 00  ................
\trel 0+8 t=R_ADDR runtime.memequal64+0
"""


def test_relocation_names_keep_their_spaces_quotes_and_brackets():
    fns = gobuild.parse_listing(CLOSURE_LISTING)
    _, _, rels = fns["main.mk"]
    assert [(r.offset, r.size, r.kind, r.symbol, r.addend) for r in rels] == [
        (27, 4, "R_PCREL", "type:noalg.struct { F uintptr; X0 *main.T }", 0),
        (53, 4, "R_PCREL", "runtime.writeBarrier", -1),
        (100, 4, "R_PCREL", 'go:string."hello world \\"quoted\\" (paren) [x]"', 0),
        (102, 0, "R_CALLIND", "", 0),
    ]


def test_instruction_positions_may_hold_parentheses():
    lines, dump, _ = gobuild.parse_listing(CLOSURE_LISTING)["main.mk"]
    assert lines[1] == (24, "/tmp/w (1)/main.go:9", "LEAQ\ttype:noalg.struct { F uintptr; X0 *main.T }(SB), BX")
    assert len(dump) == 20


def test_a_go_shape_instantiation_is_a_function_and_data_symbols_are_not():
    fns = gobuild.parse_listing(CLOSURE_LISTING)
    assert set(fns) == {"main.mk", "main.Gen[go.shape.struct { main.a *int; main.b *int }]"}
    _, dump, rels = fns["main.Gen[go.shape.struct { main.a *int; main.b *int }]"]
    assert bytes(dump) == bytes.fromhex("493b66") and rels[0].symbol.startswith("main.Gen[go.shape.struct {")


def test_functions_past_64_kib_keep_their_listing():
    text = ("main.big STEXT size=65552 align=0x0 args=0x0 locals=0x0 funcid=0x0\n"
            "\t0x10000 65536 (/tmp/w/main.go:3)\tRET\n"
            "\t0x10000 c3                                               .\n")
    lines, dump, _ = gobuild.parse_listing(text)["main.big"]
    assert lines == [(65536, "/tmp/w/main.go:3", "RET")] and bytes(dump) == b"\xc3"


def test_pre_go120_local_package_prefix_reads_as_main():
    text = ('"".put STEXT size=1 align=0x0 args=0x8 locals=0x0 funcid=0x0\n'
            '\t0x0000 c3                                               .\n'
            '\trel 3+4 t=R_PCREL "".sink+0\n')
    _, _, rels = gobuild.parse_listing(text)["main.put"]
    assert rels[0].symbol == "main.sink"


CLOSURE_GO = """package main

type T struct{ p *int }

func mk(x *T) func() *T {
\treturn func() *T { return x }
}
"""


def test_a_closure_whose_context_type_has_spaces_loads_and_runs(go, go_env, tmp_path):
    """mk allocates its closure context (type:noalg.struct { F uintptr; X0 *main.T }) and
    stores x into it with the write barrier."""
    fn = gobuild.build_functions(CLOSURE_GO, ["mk"], go=go, env=go_env, workdir=tmp_path)["mk"]
    ctx = "type:noalg.struct { F uintptr; X0 *main.T }"
    assert fn.types[ctx].size == 16 and fn.types[ctx].pointer_words == (1,)
    m = Machine(size_specialized=True)
    gobuild.load(m, fn)
    x = m.mallocgc(8, m.runtime.new_type(8, (0,)))
    closure = m.call(fn.name, x)
    # funcval{fn: the closure's code (a stub here: it is not loaded), x}
    assert (m.mem.u64(closure), m.mem.u64(closure + 8)) == (m.symbol("main.mk.func1"), x)
