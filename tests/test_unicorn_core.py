"""What gomemu relies on from the unicorn core it runs on, patched or stock (emu/unicorn_core.py).

The patched core lets guest stores to writable, non-executable pages take the
inline fast path, and runs no exit check after each guest load and store
(patch in emu/patches/). These tests pin the behaviour that
must not change with it: self-modifying code is still seen (guest stores over
translated code, host writes after ctl_remove_cache, code made executable by
mem_protect: unicorn PR #2414's case), protections still fault, write hooks
still see stores, context snapshots still undo them, a hook or fault at an\naccess still stops the CPU there. They run on whichever
core this process loaded; the last ones choose cores in subprocesses and
compare them.
"""

import ctypes
import mmap
import os
import subprocess
import sys

import keystone
import pytest
from unicorn import (UC_ARCH_X86, UC_CTL_CONTEXT_CPU, UC_CTL_CONTEXT_MEMORY, UC_CTL_CONTEXT_MODE,
                     UC_CTL_IO_WRITE, UC_ERR_READ_UNMAPPED, UC_ERR_WRITE_PROT, UC_ERR_WRITE_UNMAPPED, UC_HOOK_MEM_INVALID, UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE, UC_MODE_64, UC_PROT_ALL,
                     UC_PROT_EXEC, UC_PROT_NONE, UC_PROT_READ, UC_PROT_WRITE, Uc, UcError)
from unicorn.x86_const import UC_X86_REG_RAX, UC_X86_REG_RCX, UC_X86_REG_RIP, UC_X86_REG_RSP

from emu import unicorn_core
from tests.conftest import ROOT

# Pages whose TLB entries do not collide (the TLB starts with 256 entries, indexed by page number).
CODE, DATA, STACK = 0x400000, 0x610000, 0x820000
RW = UC_PROT_READ | UC_PROT_WRITE
_ks = keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64)


def asm(text, at):
    return bytes(_ks.asm(text, at)[0])


def engine(data_prot=RW, host_backed=True):
    """A CPU with code at CODE (rx), a stack, and one data page at DATA. As in gomemu's
    Machine, the data page is backed by host memory through mem_map_ptr, and a hook
    watches every invalid access (with one, unicorn stops re-arming its self-modifying
    code check when it translates code: the TLB flags alone must be right)."""
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.hook_add(UC_HOOK_MEM_INVALID, lambda *_: False)
    uc.mem_map(CODE, 0x1000, UC_PROT_READ | UC_PROT_EXEC)
    uc.mem_map(STACK, 0x1000, RW)
    if host_backed:
        uc._backing = mmap.mmap(-1, 0x1000)
        uc.mem_map_ptr(DATA, 0x1000, data_prot, ctypes.addressof(ctypes.c_char.from_buffer(uc._backing)))
    else:
        uc.mem_map(DATA, 0x1000, data_prot)
    return uc


def load(uc, text, at=CODE):
    """Assemble `text` at `at` into guest memory; returns its end. (A host write to the
    read-only code region flushes unicorn's TLB: load every fragment a test needs first.)"""
    code = asm(text, at)
    uc.mem_write(at, code)
    return at + len(code)


def start(uc, at, end):
    """Run guest code from `at` to `end`; returns RAX."""
    uc.reg_write(UC_X86_REG_RSP, STACK + 0x800)
    uc.emu_start(at, end)
    return uc.reg_read(UC_X86_REG_RAX)


def run(uc, text, at=CODE):
    return start(uc, at, load(uc, text, at))


def returns(value):
    """Bytes of `mov eax, value; ret`, as an immediate a store can write."""
    return int.from_bytes(asm(f"mov eax, {value:#x}; ret", 0).ljust(8, b"\x90"), "little")


def call_rewrite_call():
    """Guest code that calls the routine at DATA, overwrites it with `return 2` by a
    store, and calls it again: rax = second result << 8 | first result."""
    return f"""
        mov rdi, {DATA:#x}
        call rdi
        mov r8, rax
        mov rax, {returns(2):#x}
        mov qword ptr [rdi], rax
        call rdi
        shl rax, 8
        or rax, r8
    """


def test_guest_store_over_code_that_already_ran_runs_the_new_code():
    uc = engine(data_prot=UC_PROT_ALL)
    uc.mem_write(DATA, returns(1).to_bytes(8, "little"))
    rax = run(uc, call_rewrite_call())
    assert rax == 0x201


def test_host_write_over_code_runs_after_ctl_remove_cache():
    uc = engine()
    assert run(uc, "mov eax, 1") == 1
    uc.mem_write(CODE, asm("mov eax, 2", CODE))
    uc.ctl_remove_cache(CODE, CODE + 0x1000)
    uc.emu_start(CODE, CODE + 5)
    assert uc.reg_read(UC_X86_REG_RAX) == 2


def test_code_made_executable_by_mem_protect_sees_later_guest_stores():
    # unicorn PR #2414: the page's TLB entry is filled by a store while it is not
    # executable; once it is, a later store through that entry must still drop
    # the code translated from it.
    uc = engine()
    first = load(uc, f"mov rdi, {DATA:#x}; mov rax, {returns(1):#x}; mov qword ptr [rdi], rax")
    second_at = CODE + 0x100
    second = load(uc, call_rewrite_call(), at=second_at)
    start(uc, CODE, first)
    uc.mem_protect(DATA, 0x1000, UC_PROT_ALL)
    assert start(uc, second_at, second) == 0x201


@pytest.mark.parametrize("host_backed", [True, False], ids=["mem_map_ptr", "mem_map"])
def test_store_to_a_page_made_read_only_faults(host_backed):
    uc = engine(host_backed=host_backed)
    end = load(uc, f"mov rdi, {DATA:#x}; mov qword ptr [rdi], rdi")
    start(uc, CODE, end)                           # the page's TLB entry now allows stores
    uc.mem_protect(DATA, 0x1000, UC_PROT_READ)
    with pytest.raises(UcError) as e:
        start(uc, CODE, end)
    assert e.value.errno == UC_ERR_WRITE_PROT


def test_store_after_a_load_on_a_read_only_page_faults():
    uc = engine(data_prot=UC_PROT_READ)
    with pytest.raises(UcError) as e:
        run(uc, f"mov rdi, {DATA:#x}; mov rax, qword ptr [rdi]; mov qword ptr [rdi + 8], rax")
    assert e.value.errno == UC_ERR_WRITE_PROT


def test_reserved_page_made_writable_takes_stores():
    # gomemu's heap: reserved PROT_NONE, then mmap'ed read-write by the emulated kernel.
    uc = engine(data_prot=UC_PROT_NONE)
    end = load(uc, f"mov rdi, {DATA:#x}; mov rax, 0x1234; mov qword ptr [rdi], rax")
    with pytest.raises(UcError):
        start(uc, CODE, end)
    uc.mem_protect(DATA, 0x1000, RW)
    start(uc, CODE, end)
    assert uc.mem_read(DATA, 8) == (0x1234).to_bytes(8, "little")


def test_write_hook_added_after_code_ran_sees_its_stores():
    uc = engine()
    # Two stores to one page (the second one finds the page's TLB entry), in a block
    # of their own: unicorn translates the block that ends at `until` again on every run.
    end = load(uc, f"""
        mov rdi, {DATA:#x}
        mov qword ptr [rdi], rdi
        mov qword ptr [rdi + 8], rdi
        jmp done
    done:
        nop
    """)
    start(uc, CODE, end)
    seen = []
    uc.hook_add(UC_HOOK_MEM_WRITE, lambda _uc, _acc, addr, size, value, _ud: seen.append((addr, size, value)))
    start(uc, CODE, end)
    assert seen == [(DATA, 8, DATA), (DATA + 8, 8, DATA)]


def test_context_restore_undoes_stores_made_after_the_save():
    uc = engine(host_backed=False)
    uc.ctl(UC_CTL_CONTEXT_MODE, UC_CTL_IO_WRITE, ctypes.c_int(UC_CTL_CONTEXT_CPU | UC_CTL_CONTEXT_MEMORY))
    # the second run loads before it stores: the page's TLB entry exists before the
    # store that needs unicorn's copy-on-write
    first = load(uc, f"mov rdi, {DATA:#x}; mov qword ptr [rdi], rax")
    later = load(uc, f"mov rdi, {DATA:#x}; mov rbx, qword ptr [rdi]; mov qword ptr [rdi], rax", CODE + 0x100)
    uc.reg_write(UC_X86_REG_RAX, 1)
    start(uc, CODE, first)
    saved = uc.context_save()
    uc.reg_write(UC_X86_REG_RAX, 2)
    start(uc, CODE + 0x100, later)
    assert uc.mem_read(DATA, 8)[0] == 2
    uc.context_restore(saved)
    assert uc.mem_read(DATA, 8)[0] == 1


# Part 2 of the patch: no exit check after each load and store, the slow path's helpers check.
# `mov rcx, 5` is 7 bytes: a stop at the access leaves RIP at CODE + 7 and rcx 5.
STOP_AT_ACCESS = {
    "write hook": f"mov qword ptr [{DATA:#x}], 1",
    "read hook": f"mov rax, qword ptr [{DATA + 16:#x}]",
    "unmapped write": "mov qword ptr [0x900000], 1",
    "unmapped read": "mov rax, qword ptr [0x900000]",
}


def stop_at_access(kind):
    """Run `mov rcx, 5; ACCESS; mov rcx, 6; store to DATA + 8` where ACCESS stops the CPU
    (a hook calling emu_stop, or a fault): (error, RIP offset, rcx, rax, DATA's 16 bytes, hook calls)."""
    uc = engine()
    end = load(uc, f"mov rcx, 5; {STOP_AT_ACCESS[kind]}; mov rcx, 6; mov qword ptr [{DATA + 8:#x}], 2")
    uc.mem_write(DATA + 16, (0x1234).to_bytes(8, "little"))
    calls = []

    def stop(u, _acc, addr, _size, _value, _ud):
        calls.append(addr)
        u.emu_stop()
    if kind.endswith("hook"):
        uc.hook_add(UC_HOOK_MEM_WRITE if kind == "write hook" else UC_HOOK_MEM_READ, stop, begin=DATA, end=DATA + 0xfff)
    uc.reg_write(UC_X86_REG_RSP, STACK + 0x800)
    err = None
    try:
        uc.emu_start(CODE, end)
    except UcError as e:
        err = e.errno
    return (err, uc.reg_read(UC_X86_REG_RIP) - CODE, uc.reg_read(UC_X86_REG_RCX), uc.reg_read(UC_X86_REG_RAX),
            bytes(uc.mem_read(DATA, 16)), calls)


@pytest.mark.parametrize("kind", STOP_AT_ACCESS)
def test_a_hook_or_fault_at_an_access_stops_the_cpu_at_that_instruction(kind):
    err, rip, rcx, rax, data, calls = stop_at_access(kind)
    assert (rip, rcx, rax) == (7, 5, 0)               # nothing after the access ran, the load's value not taken
    assert data == (b"\x01" if kind == "write hook" else b"\x00").ljust(16, b"\x00")   # the store that stopped is done
    want = {"write hook": (None, [DATA]), "read hook": (None, [DATA + 16]),
            "unmapped write": (UC_ERR_WRITE_UNMAPPED, []), "unmapped read": (UC_ERR_READ_UNMAPPED, [])}
    assert (err, calls) == want[kind]


# ---- choosing and building the core ------------------------------------------------------------

def gomemu(*args, **env):
    """stdout of `gomemu ARGS` in a fresh process, with `env` on top of this one's (minus core choices)."""
    e = {k: v for k, v in os.environ.items() if k not in ("GOMEMU_UNICORN", "LIBUNICORN_PATH")}
    e.update(env)
    r = subprocess.run([sys.executable, "-m", "emu.cli", *args], cwd=ROOT, env=e, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_without_a_built_core_gomemu_runs_on_stock_unicorn_and_says_why(tmp_path):
    out = gomemu("--version", XDG_CACHE_HOME=str(tmp_path))
    assert "stock core (guest stores on the slow path): not built yet" in out


def test_GOMEMU_UNICORN_stock_selects_stock_unicorn():
    assert "stock core (guest stores on the slow path): GOMEMU_UNICORN=stock" in gomemu("--version", GOMEMU_UNICORN="stock")


def test_a_build_that_cannot_run_leaves_a_note_the_stock_fallback_shows(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "PATH": str(empty)}      # no cmake to be found
    env.pop("GOMEMU_UNICORN", None)
    r = subprocess.run([sys.executable, str(ROOT / "emu" / "unicorn_core.py"), "build"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "cmake is not installed" in r.stderr
    assert "its build failed: cmake is not installed" in gomemu("--version", XDG_CACHE_HOME=str(tmp_path))


def test_apply_patch_applies_hunks_that_match_and_refuses_one_that_does_not(tmp_path):
    (tmp_path / "f.c").write_text("a\nb\nc\nd\n")
    diff = "diff --git a/f.c b/f.c\n--- a/f.c\n+++ b/f.c\n@@ -2,2 +2,3 @@\n b\n-c\n+C\n+c2\n d\n"
    unicorn_core.apply_patch(diff, tmp_path)
    assert (tmp_path / "f.c").read_text() == "a\nb\nC\nc2\nd\n"
    with pytest.raises(unicorn_core.BuildFailed, match="does not match f.c at line 2"):
        unicorn_core.apply_patch(diff, tmp_path)



@pytest.mark.parametrize("before,after", [("a\nb\n}", "a\nB\n}"),          # the last line has no newline
                                          ("a\nb\n}", "a\nb\n}\n"),        # ... and gets one
                                          ("a\nb\n}\n", "a\nb\n}")])       # ... and loses it
def test_apply_patch_takes_diffs_last_line_without_a_newline(tmp_path, before, after):
    # the diff as diffutils writes it (the patch file's tcg-runtime.c hunk ends so)
    (tmp_path / "old").write_text(before)
    (tmp_path / "new").write_text(after)
    out = subprocess.run(["diff", "-u", "--label", "a/f.c", "--label", "b/f.c", "old", "new"], cwd=tmp_path,
                         capture_output=True, text=True).stdout
    assert out.count("@@") == 2
    (tmp_path / "f.c").write_text(before)
    unicorn_core.apply_patch("diff --git a/f.c b/f.c\n" + out, tmp_path)
    assert (tmp_path / "f.c").read_text() == after

@pytest.fixture
def both_cores():
    """Skips unless the patched core is built (subprocesses then get it unless GOMEMU_UNICORN=stock)."""
    if not unicorn_core.status().patched:
        pytest.skip(f"this process runs on stock unicorn: {unicorn_core.status().why_stock}")


# Allocations through the machine code's fast paths (no hooks on stores), then a digest of the
# results and of all memory they wrote: the program's data and bss, off-heap metadata, the first arena.
ALLOCATE_AND_DIGEST = """
import hashlib
from emu import layout as L
from emu.machine import Machine
m = Machine()
addrs = m.malloc_batch([16, 24, 48, 512, 1024, 8192, 32, 16] * 500)
T = m.runtime.new_type(24, pointer_words=(0, 2))
objs = [m.mallocgc(24, T) for _ in range(300)] + [m.mallocgc(40000, T)]
h = hashlib.sha256(addrs.tobytes() + repr(objs).encode())
data = [(seg.vaddr, seg.memsz) for seg in m.image.segments if seg.prot == "rw"]
for base, size in data + [(L.OFFHEAP.base, m.persistentalloc(8) - L.OFFHEAP.base), (L.HEAP_BASE, L.HEAP_ARENA_BYTES)]:
    h.update(m.mem.read(base, size))
print(m.unicorn_core.patched, h.hexdigest(), len(m.runtime.refills))
"""


def test_patched_and_stock_cores_leave_the_same_memory_after_allocating(both_cores):
    def digest(**env):
        e = {k: v for k, v in os.environ.items() if k not in ("GOMEMU_UNICORN", "LIBUNICORN_PATH")}
        r = subprocess.run([sys.executable, "-c", ALLOCATE_AND_DIGEST], cwd=ROOT, env={**e, **env},
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout.split(" ", 1)
    (patched, on_patched), (stock, on_stock) = digest(), digest(GOMEMU_UNICORN="stock")
    assert (patched, stock) == ("True", "False")
    assert on_patched == on_stock


def test_patched_and_stock_cores_step_through_the_same_instructions_and_stores(both_cores):
    # the first allocation: refill, heap growth by mmap (mem_protect), every store recorded
    args = ("step", "small", "--warm", "0")
    assert gomemu(*args) == gomemu(*args, GOMEMU_UNICORN="stock")


def test_patched_and_stock_cores_stop_alike_at_an_access(both_cores):
    script = ("from emu import unicorn_core\n"            # first: it chooses the core unicorn loads
              "from tests.test_unicorn_core import STOP_AT_ACCESS, stop_at_access\n"
              "print(unicorn_core.status().patched, [stop_at_access(k) for k in STOP_AT_ACCESS])")

    def run_on(**env):
        e = {k: v for k, v in os.environ.items() if k not in ("GOMEMU_UNICORN", "LIBUNICORN_PATH")}
        r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={**e, **env}, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout.split(" ", 1)
    (patched, on_patched), (stock, on_stock) = run_on(), run_on(GOMEMU_UNICORN="stock")
    assert (patched, stock) == ("True", "False")
    assert on_patched == on_stock


@pytest.mark.slow
def test_patched_and_stock_cores_give_the_same_report(both_cores):
    assert gomemu("report") == gomemu("report", GOMEMU_UNICORN="stock")
