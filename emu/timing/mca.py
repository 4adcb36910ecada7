"""llvm-mca's estimate of the executed instructions, beside the model's.

llvm-mca reads assembly, not a trace: it is given every executed instruction in
order (capstone's Intel syntax, one region) and reports the cycles per pass its
scheduling model needs in a steady state of repeated passes, as users run it. It models no branch prediction and no
caches (every load hits L1), which is the point of showing it next to gomemu.
Debian's llvm-19 and llvm-22 packages ship llvm-mca-19/-22, which know znver4;
older ones stop at znver3. Nothing here runs when no llvm-mca is installed.
"""

import json
import shutil
import subprocess

import capstone

MCPU = {"zen4": "znver4", "zen3": "znver3", "sunny_cove": "icelake-server", "golden_cove": "sapphirerapids"}
_VERSIONS = [f"llvm-mca-{v}" for v in range(30, 13, -1)] + ["llvm-mca"]
_found = {}
MAX_INSTRUCTIONS = 50_000


def available(cpu="znver4"):
    """The newest llvm-mca on PATH that knows `cpu`, or None."""
    if cpu not in _found:
        _found[cpu] = None
        for name in _VERSIONS:
            path = shutil.which(name)
            if path and _knows(path, cpu):
                _found[cpu] = path
                break
    return _found[cpu]


def _knows(path, cpu):
    try:
        r = subprocess.run([path, f"-mcpu={cpu}", "-json"], input=".intel_syntax noprefix\nnop\n",
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0 and "not a recognized processor" not in r.stderr


_cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)


def assembly(stream, read_code, limit=MAX_INSTRUCTIONS):
    """The executed instructions as llvm-mca input (REP prefixes and string operands dropped)."""
    lines = [".intel_syntax noprefix"]
    cache = {}
    for a, s in zip(stream.block_addr, stream.block_size):
        key = (a, s)
        if key not in cache:
            cache[key] = [_line(mn, ops) for _, _, mn, ops in _cs.disasm_lite(read_code(a, s), a)]
        lines.extend(cache[key])
        if len(lines) > limit:
            break
    return "\n".join(lines) + "\ngomemu_target:\n"


def _line(mn, ops):
    if mn.startswith(("rep ", "repne ", "repe ")):
        return mn.split()[-1]
    if mn.startswith(("j", "call", "loop")) and ops.startswith("0x"):
        ops = "gomemu_target"        # a numeric target does not assemble; llvm-mca ignores where it goes
    return f"{mn} {ops}".strip()


def estimate(stream, read_code, uarch, iterations=100, timeout=120):
    """llvm-mca's cycles per pass over the stream's instructions on uarch (its steady state:
    TotalCycles of `iterations` passes / iterations), or None if unavailable."""
    cpu = MCPU.get(uarch.name)
    path = available(cpu) if cpu else None
    if path is None:
        return None
    r = subprocess.run([path, f"-mcpu={cpu}", f"-iterations={iterations}", "-json"],
                       input=assembly(stream, read_code),
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        return None
    data = json.loads(r.stdout)
    return sum(reg["SummaryView"]["TotalCycles"] for reg in data["CodeRegions"]) / iterations
