"""Running the same bytes natively on the host, and timing them.

`run_native` starts a child interpreter without address-space randomisation
(a crash there cannot take the caller down, and nothing of the caller's address
space, such as a Machine's host mappings, is in the way), maps each region at its own address with MAP_FIXED_NOREPLACE, and
calls the entry through a small trampoline in a page below 2 GiB, `reps`
times per round for the routine and as many for a bare RET, alternating:

    restore the chosen ranges; MFENCE (not timed)
    LFENCE; RDTSC; LFENCE
    inner times: the 16 registers by POP (RSP last); LFENCE;
                 CALL [entry slot]; LFENCE      (serialize=True, the default)
    RDTSCP; LFENCE

The bare RET's ticks are the measurement's own overhead. A chain of
dependent register-register ADDs (one cycle each on every x86 core; not ADDs of
an immediate, which Golden Cove's renamer folds: 0.18 cycles each on the Raptor
Cove host, docs/timing.md) timed before and after each
round converts TSC ticks to core cycles, because the TSC runs at a constant
rate and the core clock does not. A round's estimate is (the routine's
undisturbed repetitions' mean - the empty ones', see clean_mean) / inner /
fastest chain; the result is the median of the rounds. The child also reads back chosen memory ranges after
the first routine call, so a caller can compare them with the emulator's
memory after the same call (the word at the entry RSP, where the CALL put its
return address, is put back first).

Refusals are one line (NativeUnavailable): not an x86-64 Linux host, a
range already taken in the host process, an instruction the host CPU lacks
(from /proc/cpuinfo's flags), no FSGSBASE for a routine that needs FS.
"""

import ctypes
import errno
import mmap
import os
import pickle
import platform
import signal
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import capstone
import keystone

from emu.errors import GomemuError

PAGE = 4096
MAP_FIXED_NOREPLACE = 0x100000
CHAIN_ADDS = 100            # dependent ADD rax, rsi per chain iteration
GPRS = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]
# mnemonic -> the /proc/cpuinfo flag the host needs for it
FEATURES = {**{m: "bmi1" for m in ("tzcnt", "andn", "blsr", "blsi", "blsmsk", "bextr")},
            **{m: "bmi2" for m in ("shlx", "shrx", "sarx", "rorx", "bzhi", "pdep", "pext", "mulx")},
            "lzcnt": "abm", "popcnt": "popcnt", "movbe": "movbe", "rdtscp": "rdtscp",
            "crc32": "sse4_2", "ptest": "sse4_1", "pinsrq": "sse4_1", "pextrq": "sse4_1"}
_ROOT = Path(__file__).resolve().parents[2]     # the directory holding the emu package
_PROT = {"r": mmap.PROT_READ, "w": mmap.PROT_WRITE, "x": mmap.PROT_EXEC}


class NativeUnavailable(GomemuError):
    """The host cannot run this code natively (one line says why)."""


class NativeFault(GomemuError):
    """The code crashed or hung when run natively."""


@dataclass
class Region:
    address: int
    size: int
    data: bytes = b""            # the first len(data) bytes; the rest is zero
    prot: str = "rw"             # any of r, w, x


@dataclass
class NativeResult:
    reps: int
    inner: int
    ticks: list                  # TSC ticks of each repetition (inner calls)
    empty_ticks: list            # the same for a bare RET
    chain_ticks_per_cycle: list  # TSC ticks per dependent ADD, before and after each round
    rounds: list                 # cycles per call estimated in each round
    memory: dict = field(default_factory=dict)   # address -> bytes read back after the first call

    # The host is shared and its core clock moves: a repetition that was preempted or ran at
    # a lower clock only ever takes longer, so each round takes the undisturbed repetitions
    # (clean_mean) of the routine and of the empty routine, and the fastest chain; the result
    # is the median of the rounds.
    @property
    def ticks_per_cycle(self):
        return min(self.chain_ticks_per_cycle)

    @property
    def cycles_per_call(self):
        return statistics.median(self.rounds)

    @property
    def median_cycles_per_call(self):
        return (statistics.median(self.ticks) - statistics.median(self.empty_ticks)) / self.inner / \
            statistics.median(self.chain_ticks_per_cycle)

    def as_dict(self):
        return {"how": "measured", "reps": self.reps, "inner": self.inner, "rounds": self.rounds,
                "cycles_per_call": self.cycles_per_call, "median_cycles_per_call": self.median_cycles_per_call,
                "ticks_per_cycle": self.ticks_per_cycle}


def clean_mean(ticks):
    """The mean of the repetitions that nothing else disturbed: those within three TSC steps
    of the fastest. The TSC advances in steps (about 24 ticks, 30 cycles, on this VM), so the
    fastest repetition alone is off by up to a step; the repetitions start at random phases of
    the step, so the mean of the undisturbed ones is not (preemption and interrupts only ever
    add far more than three steps, and are left out)."""
    distinct = sorted(set(ticks))
    gaps = [b - a for a, b in zip(distinct, distinct[1:]) if b - a > 2]
    step = min(gaps) if gaps else 1
    kept = [x for x in ticks if x <= distinct[0] + 3 * step]
    return sum(kept) / len(kept)


def host_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def needed_features(code, address):
    """/proc/cpuinfo flags the instructions in `code` need (linear decode; junk is skipped)."""
    cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    cs.skipdata = True
    need = set()
    for _, _, mn, ops in cs.disasm_lite(code, address):
        m = mn.split()[-1]
        if m in FEATURES:
            need.add(FEATURES[m])
        elif m.startswith("v") and "mm" in ops:
            need.add("avx2" if "ymm" in ops else "avx")
    return need


_needs_cache = {}


def check_host(regions=(), needs=None):
    """Raise NativeUnavailable if this host cannot run the code at all."""
    if platform.machine() not in ("x86_64", "AMD64") or not hasattr(os, "fork"):
        raise NativeUnavailable(f"native execution needs an x86-64 Linux host; this is "
                                f"{platform.system()} {platform.machine()}")
    if needs is None:
        needs = set()
        for r in regions:
            if "x" in r.prot:
                key = (r.address, len(r.data), hash(r.data))      # one decode per code image
                if key not in _needs_cache:
                    _needs_cache[key] = needed_features(r.data, r.address)
                needs |= _needs_cache[key]
    missing = sorted(set(needs) - host_flags())
    if missing:
        raise NativeUnavailable(f"the host CPU lacks {', '.join(missing)}, which the code needs")


def run_native(regions, entry, regs, *, reps=200, inner=1, restore=(), restore_each=False, serialize=True,
               read_back=(), fs_base=0, needs=None, chain_iterations=2000, rounds=9, timeout=60, exits=(),
               resume=False):
    """Run `entry` natively; see the module comment. regs: {name: value} (rsp: the entry
    RSP, pointing at the return address slot as the Go ABI has it). restore: [(address,
    size)] put back to the regions' data before each repetition (restore_each: before each
    call, inside the timed loop, followed by MFENCE; LFENCE, so the empty routine's run
    pays the same). serialize: an LFENCE before and after each call, so calls do not
    overlap and a call's ticks are its latency; without it, back-to-back throughput.
    read_back: [(address, size)] returned in .memory. exits: addresses where the run ends
    (instead of the routine's RET): each becomes a jump back into the trampoline (R11 is
    clobbered), for a piece of a routine that stops at a call-out or returns to the
    emulator's exit address. resume: `entry` is a return address (the instruction after a
    call-out): the run pops the CALL's return address before jumping there, so the code finds
    RSP = regs["rsp"] + 8 as after its RET. Returns a NativeResult."""
    check_host(regions, needs)
    regions = list(regions)
    for r in regions:
        if r.address % PAGE or r.size % PAGE or r.size <= 0 or len(r.data) > r.size:
            raise NativeUnavailable(f"region {r.address:#x}+{r.size:#x} is not whole pages holding its data")
    if "rsp" not in regs:
        raise NativeUnavailable("the entry needs an RSP")
    if fs_base and "fsgsbase" not in host_flags():
        raise NativeUnavailable("the code reads FS-relative memory and the host lacks FSGSBASE")
    args = (regions, entry, regs, reps, inner, restore, restore_each, serialize, read_back, fs_base,
            chain_iterations, rounds, tuple(exits), resume)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONFAULTHANDLER"}
    env["PYTHONPATH"] = os.pathsep.join([str(_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    try:
        child = subprocess.run([sys.executable, "-c", "from emu.timing.native import _spawned; _spawned()"],
                               input=pickle.dumps(args), capture_output=True, timeout=timeout, env=env,
                               preexec_fn=_no_aslr)
    except subprocess.TimeoutExpired:
        raise NativeFault(f"the native run of {entry:#x} did not finish within {timeout} s") from None
    if child.returncode < 0:
        sig = signal.Signals(-child.returncode).name
        raise NativeFault(f"the native run of {entry:#x} died with {sig}")
    try:
        kind, payload = pickle.loads(child.stdout)
    except Exception:                              # noqa: BLE001 - no result: say what the child said
        last = (child.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise NativeFault(f"the native run of {entry:#x} ended without a result "
                          f"(status {child.returncode}: {last})") from None
    if kind == "unavailable":
        raise NativeUnavailable(payload)
    if kind == "error":
        raise NativeFault(f"the native run of {entry:#x} failed: {payload}")
    return payload


def _no_aslr():
    """In the child before exec: no address-space randomisation (personality ADDR_NO_RANDOMIZE),
    so its libraries and mappings sit just below the stack near 0x7ffff7ff0000 and its heap near
    0x555555554000, away from the emulated process's layout (with ASLR they may land anywhere)."""
    ctypes.CDLL(None).personality(0x0040000)


def _spawned():
    """The child's main: its arguments pickled on stdin; ("ok" | "unavailable" | "error",
    payload) pickled on stdout. A crash kills it with its signal, which the parent reports."""
    args = pickle.loads(sys.stdin.buffer.read())
    try:
        out = ("ok", _child(*args))
    except NativeUnavailable as e:
        out = ("unavailable", str(e))
    except BaseException as e:                     # noqa: BLE001 - reported to the parent
        out = ("error", f"{type(e).__name__}: {e}")
    sys.stdout.buffer.write(pickle.dumps(out))
    sys.stdout.flush()


# ---- the child ------------------------------------------------------------------------------
_libc = None


def _mmap_fixed(addr, size, prot):
    libc = _libc
    p = libc.mmap(ctypes.c_void_p(addr), ctypes.c_size_t(size), ctypes.c_int(prot),
                  ctypes.c_int(mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | MAP_FIXED_NOREPLACE),
                  ctypes.c_int(-1), ctypes.c_long(0))
    if p in (None, ctypes.c_void_p(-1).value) or p == (1 << 64) - 1:
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise NativeUnavailable(f"address range {addr:#x}+{size:#x} is taken in the host process")
        raise NativeUnavailable(f"cannot map {addr:#x}+{size:#x} in the host process: {os.strerror(err)}")
    if p != addr:
        libc.munmap(ctypes.c_void_p(p), ctypes.c_size_t(size))
        raise NativeUnavailable(f"address range {addr:#x}+{size:#x} is taken in the host process")
    return p


# Trampoline layout: code at +0, the chain at +0x600, data slots at +0x800 (the page sits below
# 2 GiB, so its address is an immediate). Every slot is read through a base register (keystone
# mis-encodes absolute memory operands). Slots: the 16 GPRs in POP order (RSP last), then the rest.
_SLOTS = ["rax", "rcx", "rdx", "rbx", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
          "r14", "r15", "rsp", "reps", "results", "host_rsp", "inner", "restore", "nrestore",
          "t0", "rep", "left", "fs", "host_fs", "entry", "entries", "resume"]
_POP_ORDER = _SLOTS[:15]
TRAMP_CANDIDATES = [0x20000000, 0x30000000, 0x48000000, 0x58000000, 0x68000000]


def tramp_source(base, use_fs, restore_each, serialize):
    slot_base = base + 0x800
    o = {n: 8 * i for i, n in enumerate(_SLOTS)}

    def restore(base_reg, label):
        return f"""mov r12, qword ptr [{base_reg} + {o['restore']:#x}]
 mov r13, qword ptr [{base_reg} + {o['nrestore']:#x}]
{label}_loop:
 test r13, r13
 jz {label}_done
 mov rdi, qword ptr [r12]
 mov rsi, qword ptr [r12 + 0x8]
 mov rcx, qword ptr [r12 + 0x10]
 rep movsb
 add r12, 0x18
 dec r13
 jmp {label}_loop
{label}_done:
 mfence"""
    restore_outer = "" if restore_each else restore("r11", "rst_outer")
    restore_inner = (restore("rsp", "rst_inner") + "\n lfence\n mov rsp, " + f"{slot_base:#x}") if restore_each \
        else f"mov rsp, {slot_base:#x}"
    fence = "lfence" if serialize else ""
    fs_in = (f"rdfsbase rax\n mov qword ptr [r11 + {o['host_fs']:#x}], rax\n"
             f" mov rax, qword ptr [r11 + {o['fs']:#x}]\n wrfsbase rax") if use_fs else ""
    fs_out = (f"mov rax, qword ptr [r11 + {o['host_fs']:#x}]\n wrfsbase rax") if use_fs else ""
    pops = "\n".join(f" pop {r}" for r in _POP_ORDER)
    # call qword ptr [entry slot], absolute disp32 (FF /2, SIB without base or index), written as
    # bytes: every register holds the routine's value by then, and nothing on its stack moves
    call_entry = ".byte 0xff, 0x14, 0x25, " + ", ".join(f"{b:#x}" for b in (slot_base + o["entry"]).to_bytes(4, "little"))
    return f"""
 push rbx
 push rbp
 push r12
 push r13
 push r14
 push r15
 mov r11, {slot_base:#x}
 mov qword ptr [r11 + {o['host_rsp']:#x}], rsp
 mov qword ptr [r11 + {o['rep']:#x}], 0x0
 cld
rep_loop:
 mov r11, {slot_base:#x}
 mov rax, qword ptr [r11 + {o['rep']:#x}]
 and eax, 0x1
 mov rcx, qword ptr [r11 + {o['entries']:#x}]
 mov rax, qword ptr [rcx + rax*0x8]
 mov qword ptr [r11 + {o['entry']:#x}], rax
 {restore_outer}
 pxor xmm15, xmm15
 mov rax, qword ptr [r11 + {o['inner']:#x}]
 mov qword ptr [r11 + {o['left']:#x}], rax
 {fs_in}
 mov rsp, {slot_base:#x}
 lfence
 rdtsc
 lfence
 shl rdx, 0x20
 or rax, rdx
 mov qword ptr [rsp + {o['t0']:#x}], rax
inner_loop:
 {restore_inner}
 {fence}
{pops}
 pop rsp
 {fence}
 {call_entry}
 {fence}
 mov rsp, {slot_base:#x}
 dec qword ptr [rsp + {o['left']:#x}]
 jnz inner_loop
 rdtscp
 lfence
 shl rdx, 0x20
 or rax, rdx
 mov r11, {slot_base:#x}
 sub rax, qword ptr [r11 + {o['t0']:#x}]
 mov rcx, qword ptr [r11 + {o['results']:#x}]
 mov rdx, qword ptr [r11 + {o['rep']:#x}]
 mov qword ptr [rcx + rdx*0x8], rax
 {fs_out}
 inc rdx
 mov qword ptr [r11 + {o['rep']:#x}], rdx
 cmp rdx, qword ptr [r11 + {o['reps']:#x}]
 jb rep_loop
 mov rsp, qword ptr [r11 + {o['host_rsp']:#x}]
 pop r15
 pop r14
 pop r13
 pop r12
 pop rbp
 pop rbx
 ret
""", {n: slot_base + off for n, off in o.items()}


_CHAIN_SRC = """
 mov rcx, rdi
 xor eax, eax
 lfence
 rdtsc
 lfence
 shl rdx, 0x20
 or rax, rdx
 mov r8, rax
 xor eax, eax
 mov esi, 0x1
chain:
""" + " add rax, rsi\n" * CHAIN_ADDS + """
 dec rcx
 jnz chain
 rdtscp
 lfence
 shl rdx, 0x20
 or rax, rdx
 sub rax, r8
 ret
"""


def _child(regions, entry, regs, reps, inner, restore, restore_each, serialize, read_back, fs_base,
           chain_iterations, rounds, exits, resume):
    global _libc
    _libc = ctypes.CDLL(None, use_errno=True)
    _libc.mmap.restype = ctypes.c_void_p
    _libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    taken = [(r.address, r.address + r.size) for r in regions]
    for r in regions:
        _mmap_fixed(r.address, r.size, mmap.PROT_READ | mmap.PROT_WRITE)
        ctypes.memmove(r.address, r.data, len(r.data))
    base = next((c for c in TRAMP_CANDIDATES if all(c + 2 * PAGE <= a or c >= b for a, b in taken)), None)
    tramp = None
    for cand in ([base] if base else []) + TRAMP_CANDIDATES:
        try:
            tramp = _mmap_fixed(cand, 2 * PAGE, mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
            break
        except NativeUnavailable:
            continue
    if tramp is None:
        raise NativeUnavailable("no free page below 2 GiB for the trampoline")
    ks = keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64)
    src, slots = tramp_source(tramp, bool(fs_base), restore_each, serialize)
    code = bytes(ks.asm(src, tramp)[0])
    chain = bytes(ks.asm(_CHAIN_SRC, tramp + 0x600)[0])
    if len(code) > 0x5E0 or len(chain) > 0x200:
        raise NativeFault("trampoline does not fit its page")
    ctypes.memmove(tramp, code, len(code))
    back = tramp + code.index(bytes.fromhex("ff1425")) + 7          # the instruction after the CALL
    for x in exits:                                                  # movabs r11, back; jmp r11
        if not any(r.address <= x and x + 13 <= r.address + r.size for r in regions):
            raise NativeUnavailable(f"exit {x:#x} is outside the regions")
        ctypes.memmove(x, b"\x49\xbb" + back.to_bytes(8, "little") + b"\x41\xff\xe3", 13)
    ctypes.memmove(tramp + 0x5F8, b"\xc3", 1)            # the empty routine
    ctypes.memmove(tramp + 0x600, chain, len(chain))
    rlist = (ctypes.c_uint64 * (3 * max(1, len(restore))))()
    saved = []
    for i, (a, n) in enumerate(restore):
        r = next((r for r in regions if r.address <= a and a + n <= r.address + r.size), None)
        if r is None:
            raise NativeUnavailable(f"restore range {a:#x}+{n:#x} is outside the regions")
        src_buf = ctypes.create_string_buffer(bytes(r.data[a - r.address:a - r.address + n]).ljust(n, b"\0"), n)
        saved.append(src_buf)
        rlist[3 * i:3 * i + 3] = [a, ctypes.addressof(src_buf), n]
    slot = {n: (ctypes.c_uint64).from_address(a) for n, a in slots.items()}
    for name in GPRS:
        slot[name].value = regs.get(name, 0) & (1 << 64) - 1
    slot["rsp"].value = regs["rsp"] + 8                     # CALL pushes the return address there
    slot["inner"].value = inner
    slot["restore"].value, slot["nrestore"].value = ctypes.addressof(rlist), len(restore)
    slot["fs"].value = fs_base
    # the trampoline's CALL writes its return address at the entry RSP
    ret_slot = regs["rsp"]
    ret_orig = next((bytes(r.data[ret_slot - r.address:ret_slot - r.address + 8]).ljust(8, b"\0")
                     for r in regions if r.address <= ret_slot and ret_slot + 8 <= r.address + r.size), None)
    for r in regions:
        prot = 0
        for ch in r.prot:
            prot |= _PROT[ch]
        _libc.mprotect(r.address, r.size, prot)
    tramp_fn = ctypes.CFUNCTYPE(None)(tramp)
    chain_fn = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64)(tramp + 0x600)

    def per_add():
        return chain_fn(chain_iterations) / (chain_iterations * CHAIN_ADDS)

    per_add()                                        # warm: page faults, clock ramp
    ticks, empty, chain_ticks, estimates = [], [], [], []
    memory = {}
    # even repetitions: a bare RET; odd ones the routine, so the last leaves the routine's memory
    entries = (ctypes.c_uint64 * 2)(tramp + 0x5F8, tramp + 0x5E0 if resume else entry)
    if resume:                            # lea rsp, [rsp + 8]; jmp qword ptr [resume slot]
        slot["resume"].value = entry
        ctypes.memmove(tramp + 0x5E0, bytes.fromhex("488d642408ff2425") + slots["resume"].to_bytes(4, "little"), 13)
    slot["entries"].value = ctypes.addressof(entries)
    slot["reps"].value = 2 * reps
    results = (ctypes.c_uint64 * (2 * reps))()
    slot["results"].value = ctypes.addressof(results)
    for rnd in range(rounds):
        # a round: the routine and the empty routine alternate, so both meet the same host
        c0 = per_add()
        tramp_fn()
        c1 = per_add()
        if rnd == 0:
            if ret_orig is not None and not resume:     # resume: the slot is dead, the code may reuse it
                for r in regions:
                    if r.address <= ret_slot < r.address + r.size and "w" in r.prot:
                        ctypes.memmove(ret_slot, ret_orig, 8)
            for a, n in read_back:
                memory[a] = ctypes.string_at(a, n)
        e, t = list(results)[0::2], list(results)[1::2]
        ticks += t
        empty += e
        chain_ticks += [c0, c1]
        estimates.append((clean_mean(t) - clean_mean(e)) / inner / min(c0, c1))
    return NativeResult(reps, inner, ticks, empty, chain_ticks, estimates, memory)
