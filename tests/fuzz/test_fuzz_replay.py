"""Fuzz: replay files. Go's page-allocator vectors and pacer scenarios (tests/data),
edited at random, through `gomemu pagealloc replay` and `gomemu pacer replay`:
every file either replays (passing, or differing from what it records) or is
refused in one line that names it."""

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import DATA
from tests.fuzz.harness import cli, examples
from tests.fuzz.strategies import mutated

VECTORS = {p.stem: json.loads(p.read_text()) for p in sorted((DATA / "pagealloc").glob("*.json"))}
SCENARIOS = {p.name[: -len(".input.json")]: (json.loads(p.read_text()),
                                             json.loads(p.with_name(p.name.replace(".input", ".expected")).read_text()))
             for p in sorted((DATA / "pacer").glob("*.input.json"))}


def _write(path, doc, raw):
    if raw is not None:
        path.write_bytes(raw)
    else:
        path.write_text(json.dumps(doc))


# Bytes that are not a JSON object, whatever the parser makes of them.
raw_files = st.one_of(st.none(), st.none(), st.none(), st.sampled_from(
    [b"", b"{", b"[]", b"null", b"17", b"\xff\xfe{}", b'{"test": "\xe9"}', b"{" * 100_000, b"[" * 100_000,
     b"NaN", b'"x"']))


@examples(350)
@given(name=st.sampled_from(sorted(VECTORS)), data=st.data(), raw=raw_files, as_json=st.booleans())
def test_a_mutated_pagealloc_vector_replays_or_is_refused_naming_its_file(tmp_path_factory, capsys, name, data,
                                                                          raw, as_json):
    path = tmp_path_factory.getbasetemp() / "fuzz-vector.json"
    _write(path, data.draw(mutated(VECTORS[name])), raw)
    argv = ["pagealloc", "replay", str(path)] + (["--json"] if as_json else [])
    code, out, err = cli(capsys, argv, names=[path], may_differ=True)
    if code == 1 and not err:
        doc = json.loads(out) if as_json else None
        assert (doc["failed"] == 1) if as_json else out.startswith("FAIL "), out


@examples(150)
@given(name=st.sampled_from(sorted(SCENARIOS)), data=st.data(), raw=raw_files, with_reference=st.booleans(),
       as_json=st.booleans())
def test_a_mutated_pacer_scenario_replays_or_is_refused_naming_its_file(tmp_path_factory, capsys, name, data, raw,
                                                                        with_reference, as_json):
    scenario, expected = SCENARIOS[name]
    folder = Path(tmp_path_factory.getbasetemp())
    path, ref = folder / "Fuzz.input.json", folder / "Fuzz.expected.json"
    scenario = data.draw(mutated(scenario))
    _write(path, scenario, raw)
    if with_reference:
        _write(ref, data.draw(st.one_of(st.just(expected), mutated(expected))), None)
    else:
        ref.unlink(missing_ok=True)
    argv = ["pacer", "replay", str(path)] + (["--json"] if as_json else [])
    code, out, err = cli(capsys, argv, names=[path, ref], may_differ=with_reference)
    if code == 1 and not err:
        doc = json.loads(out) if as_json else None
        assert doc["differing_values"] > 0 if as_json else "differ from the reference" in out, out
