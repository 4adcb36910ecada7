"""Go's assembler syntax assembles, and capstone reads back what was meant."""

import re
import subprocess

import capstone
import pytest

from asm.assembler import assemble
from emu.errors import AssemblyError

BASE = 0x401000
SYMS = {"runtime.writeBarrier": 0x600000, "runtime.gcWriteBarrier": 0x402000,
        "runtime.gcWriteBarrier2": 0x402040, "runtime.morestack_noctxt": 0x402080}
_cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)


def asm(text):
    return assemble((("test.s", "TEXT main·f(SB), 0, $0-0\n" + text),), BASE, SYMS)


def insns(code, base=BASE):
    return [(i.mnemonic, i.op_str) for i in _cs.disasm(code, base)]


def test_legacy_write_barrier_sequence_assembles_and_reads_back():
    p = asm("""
        MOVQ runtime.writeBarrier(SB), AX
        TESTL AX, AX
        JZ skip
        CALL runtime.gcWriteBarrier(SB)
    skip:
        MOVQ BX, 16(DI)
        RET
    """)
    got = insns(p.code)
    skip = p.listing[4].address
    next_ip = BASE + len(p.listing[0].code)
    assert got == [("mov", f"rax, qword ptr [rip + {0x600000 - next_ip:#x}]"),
                   ("test", "eax, eax"),
                   ("je", f"{skip:#x}"),
                   ("call", "0x402000"),
                   ("mov", "qword ptr [rdi + 0x10], rbx"),
                   ("ret", "")]


def test_every_listed_instruction_round_trips_through_capstone():
    p = asm("""
        CMPL runtime.writeBarrier(SB), $0
        JEQ done
        CALL runtime.gcWriteBarrier2(SB)
        MOVQ BX, (R11)
        MOVQ CX, 8(R11)
    done:
        MOVQ BX, 8(AX)(CX*8)
        LEAQ -40(SP), R12
        CMPQ R12, 16(R14)
        TZCNTQ AX, BX
        MOVWLZX 48(AX), CX
        SHRQ CX, R9
        MOVOU X15, -16(DI)(BX*1)
        RET
    """)
    assert [e.disasm for e in p.listing][:6] == [
        f"cmp dword ptr [rip + {0x600000 - (BASE + 7):#x}], 0", f"je {p.listing[5].address:#x}",
        "call 0x402040", "mov qword ptr [r11], rbx", "mov qword ptr [r11 + 8], rcx",
        "mov qword ptr [rax + rcx*8 + 8], rbx"]
    assert b"".join(e.code for e in p.listing) == p.code


def _listing(go, go_env, tmp_path, src, func):
    """The -S listing lines of `func` and the compiler's bytes for it (from the hex dump)."""
    (tmp_path / "go.mod").write_text("module wb\n\ngo 1.27\n")
    (tmp_path / "main.go").write_text(src)
    out = subprocess.run([go, "build", "-gcflags=-S", "-o", str(tmp_path / "bin"), "."], cwd=tmp_path,
                         env=go_env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"{func} STEXT"))
    body, dump = [], bytearray()
    for ln in lines[start + 1:]:
        if not ln.startswith("\t"):
            break
        m = re.match(r"\t0x[0-9a-f]{4} ((?:[0-9a-f]{2} ){1,16})", ln)
        if m and "(" not in ln.split("  ")[0]:
            dump += bytes.fromhex(m.group(1).replace(" ", ""))
        else:
            body.append(ln)
    return "\n".join(body), bytes(dump)


def _shape(insns_):
    """Instructions with relocated operands (calls, RIP-relative symbols) blanked."""
    out = []
    for mn, ops in insns_:
        if mn == "call" or "rip" in ops:
            ops = "<reloc>"
        out.append((mn, ops))
    return out


def test_compiler_listing_assembles_to_the_compilers_instructions(go, go_env, tmp_path):
    """Lines of a real `go build -gcflags=-S` listing, pc-offset branch targets included,
    assemble as they are, to what the compiler emitted."""
    src = ("package main\n\ntype T struct{ a, b *int }\n\n//go:noinline\n"
           "func store(t *T, p *int) { t.b = p }\n\nfunc main() { store(new(T), new(int)) }\n")
    text, compiled = _listing(go, go_env, tmp_path, src, "main.store")
    assert "CMPL\truntime.writeBarrier(SB), $0" in text and "JMP\t0" in text
    p = assemble((("listing.s", text),), BASE, SYMS)
    # Both decoded at the same base, so pc-relative branches must agree exactly.
    assert _shape(insns(p.code)) == _shape(insns(compiled))
    assert len(p.code) == len(compiled)


@pytest.mark.parametrize("line, why", [
    ("MOVQ AX", "unsupported instruction"),
    ("FROBQ AX, BX", "unsupported instruction"),
    ("MOVQ 8(QQ), AX", "bad base register"),
    ("MOVQ nosuch(SB), AX", "undefined symbol"),
    ("JMP nowhere", "undefined symbol"),
    ("MOVB AX, X3", "keystone cannot assemble"),
    ("MOVB $300, AX", "does not fit"),                  # keystone would keep 0x2c
    ("PUSHQ $0x123456789", "does not fit"),             # keystone would push 0x6789
    ("ADDQ $0x80000000, AX", "does not fit"),           # would sign-extend to a negative
    ("MOVQ $0x123456789, 8(AX)", "does not fit"),
])
def test_bad_assembly_is_a_clear_error_naming_file_and_line(line, why):
    with pytest.raises(AssemblyError) as e:
        asm("    " + line + "\n")
    msg = str(e.value)
    assert "test.s:2" in msg and why in msg


def test_constants_by_name_as_in_go_asm_h():
    p = assemble((("c.s", "TEXT x(SB), 0, $0-0\n MOVQ mspan_allocCache(R8), R9\n MOVL $(const_a-8), AX\n"),),
                 BASE, {}, {"mspan_allocCache": 56, "const_a": 1024})
    assert [e.disasm for e in p.listing] == ["mov r9, qword ptr [r8 + 0x38]", "mov eax, 0x3f8"]


def test_a_symbol_offset_may_be_a_constant_by_name():
    """`runtime·mheap_+mheap_arenas(SB)`: a field of a global, by its go_asm.h name."""
    p = assemble((("c.s", "TEXT x(SB), 0, $0-0\n MOVQ runtime·mheap_+mheap_arenas(SB), DX\n"
                   " MOVQ runtime·mheap_-8(SB), DX\n"),),
                 BASE, {"runtime.mheap_": 0x600000}, {"mheap_arenas": 66008})
    first, second = p.listing
    assert first.disasm == f"mov rdx, qword ptr [rip + {0x600000 + 66008 - (BASE + 7):#x}]"
    assert second.disasm == f"mov rdx, qword ptr [rip + {0x600000 - 8 - (BASE + 14):#x}]"
    with pytest.raises(AssemblyError, match="unknown constant"):
        assemble((("c.s", "TEXT x(SB), 0, $0-0\n MOVQ runtime·mheap_+nosuch(SB), DX\n"),),
                 BASE, {"runtime.mheap_": 0x600000}, {})


def test_a_64_bit_immediate_is_allowed_only_into_a_register():
    p = asm("MOVQ $0x123456789, AX\n MOVQ $-1, BX\n CMPQ AX, $-4095\n")
    assert [e.disasm for e in p.listing] == ["movabs rax, 0x123456789", "mov rbx, 0xffffffffffffffff",
                                             "cmp rax, -0xfff"]


_COND_SRC = """TEXT x(SB), 0, $0-0
#define HAVE_B
#ifdef const_on
 MOVL $1, AX
#ifndef HAVE_B
 MOVL $2, AX
#else
 MOVL $3, AX
#endif
#else
 MOVL $4, AX
#ifdef HAVE_B
 MOVL $5, AX
#endif
#endif
#ifndef const_on
#define LATE() MOVL $6, AX
#else
#define LATE() MOVL $7, AX
#endif
 LATE()
 RET
"""


@pytest.mark.parametrize("on, want", [
    (1, ["mov eax, 1", "mov eax, 3", "mov eax, 7", "ret"]),
    (0, ["mov eax, 4", "mov eax, 5", "mov eax, 6", "ret"]),     # present with value 0: not defined
    (None, ["mov eax, 4", "mov eax, 5", "mov eax, 6", "ret"]),  # absent: not defined
])
def test_ifdef_ifndef_else_endif_select_lines_by_define_or_nonzero_constant(on, want):
    consts = {} if on is None else {"const_on": on}
    p = assemble((("c.s", _COND_SRC),), BASE, {}, consts)
    assert [e.disasm for e in p.listing] == want


def test_ifdef_keeps_line_numbers_of_the_lines_it_keeps():
    src = "TEXT x(SB), 0, $0-0\n#ifdef const_off\n MOVL $1, AX\n#endif\n MOVL $300, AL\n"
    with pytest.raises(AssemblyError, match=r"c\.s:5:"):
        assemble((("c.s", src),), BASE, {}, {"const_off": 0})


@pytest.mark.parametrize("src, why", [
    ("#ifdef A\n RET\n", "without #endif"),
    ("#endif\n", "without #ifdef"),
    ("#else\n", "without #ifdef"),
    ("#ifdef A\n#else\n#else\n#endif\n", "a second #else"),
    ("#ifdef\n#endif\n", "needs one name"),
    ("#ifdef A\n#endif B\n", "takes no argument"),
])
def test_unbalanced_conditionals_are_clear_errors(src, why):
    with pytest.raises(AssemblyError, match=why):
        assemble((("c.s", "TEXT x(SB), 0, $0-0\n" + src + " RET\n"),), BASE, {}, {})
