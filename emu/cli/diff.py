"""`gomemu diff A.json B.json`: two `gomemu report --json` documents compared path by
path, as cg_diff compares two callgrind profiles: for each machine and each path, the
allocations that took it, its instructions, memory reads and writes, and (where both
reports were made with --cycles) its modelled cycles, L1D misses and mispredicts, with
B - A. Paths only one report has are listed as such. --json: docs/json.md, gomemu.diff.
"""

import json

from emu.cli import inputs
from emu.cli.jsonout import document, dumps
from emu.errors import BadInput
from emu.textfile import read_text

REPORT_SCHEMA = "gomemu.report/v2"
COUNTS = ("count", "instructions", "reads", "writes")          # a path row's figures
CYCLES = ("cycles", "instructions", "l1d_misses", "l2_misses", "mispredicts")


def register(sub):
    p = sub.add_parser("diff", help="compare two `gomemu report --json` documents path by path (like cg_diff)")
    p.add_argument("a", type=inputs.path, metavar="A.json", help="the first report (the baseline)")
    p.add_argument("b", type=inputs.path, metavar="B.json", help="the second report; differences are B - A")
    p.add_argument("--all", action="store_true", help="also list the paths whose figures are equal")
    p.add_argument("--json", action="store_true", help="one JSON document (docs/json.md: gomemu.diff)")
    p.set_defaults(handler=run)


class _Doc:
    """A report document read for comparison; BadInput names the file and the field."""

    def __init__(self, path):
        self.path = path
        text = read_text(path, "a gomemu report")
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise BadInput(f"{path}: not JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
        except RecursionError:
            raise BadInput(f"{path}: not JSON: nested too deeply") from None
        schema = doc.get("schema") if isinstance(doc, dict) else None
        if schema != REPORT_SCHEMA:
            raise BadInput(f"{path}: not a `gomemu report --json` document ({REPORT_SCHEMA}): "
                           f"its schema is {schema!r}")
        self.machines = {}
        for i, m in enumerate(self._list(doc, "machines", "machines")):
            where = f"machines[{i}]"
            key = (self._str(m, "code", where), bool(self._field(m, "size_specialized", where, bool)))
            self.machines[key] = {self._path_key(r, f"{where}.paths[{j}]"): self._figures(r, f"{where}.paths[{j}]")
                                  for j, r in enumerate(self._list(m, "paths", where))}
        cyc = doc.get("cycles")
        self.uarch, self.cycles = None, {}
        if cyc is not None:
            self.uarch = self._str(self._dict(cyc, "cycles"), "uarch", "cycles")
            for j, r in enumerate(self._list(cyc, "paths", "cycles")):
                where = f"cycles.paths[{j}]"
                self.cycles[(self._int(r, "size", where), self._str(r, "path", where))] = \
                    {k: self._int(r, k, where) for k in CYCLES}

    def _fail(self, where, what):
        raise BadInput(f"{self.path}: {where}: {what}")

    def _field(self, obj, key, where, types):
        if not isinstance(obj, dict) or key not in obj:
            self._fail(where, f"no field {key!r}")
        v = obj[key]
        if not isinstance(v, types) or (types is int and isinstance(v, bool)):
            self._fail(f"{where}.{key}", f"expected {getattr(types, '__name__', types)}, found {type(v).__name__}")
        return v

    def _dict(self, v, where):
        if not isinstance(v, dict):
            self._fail(where, f"expected an object, found {type(v).__name__}")
        return v

    def _list(self, obj, key, where):
        return self._field(obj, key, where, list)

    def _str(self, obj, key, where):
        return self._field(obj, key, where, str)

    def _int(self, obj, key, where):
        return self._field(obj, key, where, int)

    def _path_key(self, r, where):
        words = self._field(r, "pointer_words", where, list)
        if not all(isinstance(w, int) and not isinstance(w, bool) for w in words):
            self._fail(f"{where}.pointer_words", "expected a list of integers")
        return self._int(r, "size", where), tuple(words), self._str(r, "path", where)

    def _figures(self, r, where):
        out = {"count": self._int(r, "count", where)}
        for k in COUNTS[1:]:
            span = self._field(r, k, where, dict)
            out[k] = (self._int(span, "min", f"{where}.{k}"), self._int(span, "max", f"{where}.{k}"))
        return out


def _pair(rows_a, rows_b):
    """(key, a or None, b or None) in A's order, then the keys only B has."""
    out = [(k, v, rows_b.get(k)) for k, v in rows_a.items()]
    return out + [(k, None, v) for k, v in rows_b.items() if k not in rows_a]


def compare(a, b):
    """The comparison as data (the --json document's fields)."""
    machines = []
    for mkey, ra, rb in _pair(a.machines, b.machines):
        paths = []
        for (size, words, path), fa, fb in _pair(ra or {}, rb or {}):
            paths.append({"size": size, "pointer_words": list(words), "path": path,
                          "a": _span_json(fa), "b": _span_json(fb),
                          "delta": None if fa is None or fb is None else
                          {k: _delta(fa[k], fb[k]) for k in COUNTS}})
        machines.append({"code": mkey[0], "size_specialized": mkey[1], "in": _which(ra, rb), "paths": paths})
    cycles = None
    if a.uarch is not None and b.uarch is not None:
        cycles = {"uarch_a": a.uarch, "uarch_b": b.uarch, "paths": [
            {"size": size, "path": path, "a": fa, "b": fb,
             "delta": None if fa is None or fb is None else {k: fb[k] - fa[k] for k in CYCLES}}
            for (size, path), fa, fb in _pair(a.cycles, b.cycles)]}
    return {"a": str(a.path), "b": str(b.path), "machines": machines, "cycles": cycles}


def _which(a, b):
    return "both" if a is not None and b is not None else ("a" if a is not None else "b")


def _span_json(f):
    if f is None:
        return None
    return {k: (v if k == "count" else {"min": v[0], "max": v[1]}) for k, v in f.items()}


def _delta(x, y):
    if isinstance(x, tuple):
        return {"min": y[0] - x[0], "max": y[1] - x[1]}
    return y - x


def _changed(delta):
    return delta is None or any((v["min"] or v["max"]) if isinstance(v, dict) else v for v in delta.values())


def _span(v):
    lo, hi = v["min"], v["max"]
    return f"{lo}" if lo == hi else f"{lo}..{hi}"


def _signed(v):
    if isinstance(v, dict):
        lo, hi = v["min"], v["max"]
        return f"{lo:+d}" if lo == hi else f"{lo:+d}..{hi:+d}"
    return f"{v:+d}"


def _pct(a, b):
    return f"{100.0 * (b - a) / a:+.1f}%" if a else ("" if a == b else "new")


def format_text(cmp, show_all):
    lines = [f"A: {cmp['a']}", f"B: {cmp['b']}", "differences are B - A"]
    for m in cmp["machines"]:
        kind = f"{m['code']}, {'size-specialised' if m['size_specialized'] else 'generic'}"
        lines += ["", f"machine: {kind}" + ("" if m["in"] == "both" else f"  (only in {m['in'].upper()})")]
        lines.append(f"  {'size':>6}  {'path':58} {'count':>11} {'instructions':>18} {'Δ':>10} {'%':>7}"
                     f" {'reads Δ':>8} {'writes Δ':>8}")
        same = 0
        for p in m["paths"]:
            if not show_all and not _changed(p["delta"]):
                same += 1
                continue
            head = f"  {p['size']:>6}  {p['path'][:58]:58}"
            if p["delta"] is None:
                side, f = ("A", p["a"]) if p["a"] else ("B", p["b"])
                lines.append(f"{head} {f['count']:>11} {_span(f['instructions']):>18}   only in {side}")
                continue
            a, b, d = p["a"], p["b"], p["delta"]
            count = str(a["count"]) if a["count"] == b["count"] else f"{a['count']}->{b['count']}"
            insn = _span(a["instructions"]) if not d["instructions"]["min"] and not d["instructions"]["max"] \
                else f"{_span(a['instructions'])}->{_span(b['instructions'])}"
            lines.append(f"{head} {count:>11} {insn:>18} {_signed(d['instructions']):>10} "
                         f"{_pct(a['instructions']['min'], b['instructions']['min']):>7} "
                         f"{_signed(d['reads']):>8} {_signed(d['writes']):>8}")
        if same:
            lines.append(f"  ({same} path{'s' if same != 1 else ''} with equal figures; --all lists them)")
    c = cmp["cycles"]
    if c is not None:
        u = c["uarch_a"] if c["uarch_a"] == c["uarch_b"] else f"{c['uarch_a']} (A), {c['uarch_b']} (B)"
        lines += ["", f"modelled cycles per hit path ({u}):",
                  f"  {'size':>6}  {'path':58} {'cycles':>10} {'Δ':>6} {'%':>7} {'L1D miss Δ':>10} {'mispred Δ':>9}"]
        for p in c["paths"]:
            head = f"  {p['size']:>6}  {p['path'][:58]:58}"
            if p["delta"] is None:
                side, f = ("A", p["a"]) if p["a"] else ("B", p["b"])
                lines.append(f"{head} {f['cycles']:>10}   only in {side}")
                continue
            if not show_all and not any(p["delta"].values()):
                continue
            a, b, d = p["a"], p["b"], p["delta"]
            cyc = str(a["cycles"]) if not d["cycles"] else f"{a['cycles']}->{b['cycles']}"
            lines.append(f"{head} {cyc:>10} {d['cycles']:>+6d} {_pct(a['cycles'], b['cycles']):>7} "
                         f"{d['l1d_misses']:>+10d} {d['mispredicts']:>+9d}")
    elif cmp["machines"]:
        lines += ["", "cycles: not in both reports (make them with `gomemu report --cycles --json`)"]
    return "\n".join(lines)


def run(args):
    a, b = _Doc(args.a), _Doc(args.b)
    cmp = compare(a, b)
    if args.json:
        print(dumps(document("diff", **cmp)))
    else:
        print(format_text(cmp, args.all))
    return 0
