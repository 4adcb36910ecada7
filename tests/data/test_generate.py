"""The committed reference data is what Go 1.27.3's own tests dump (tests/data/generate.py)."""

import pytest

from tests.conftest import DATA, goroot
from tests.data import generate


def test_patches_apply_to_the_installed_runtime_tests(go):
    # Every anchor occurs as often as PATCHES says, so the generator would run as written.
    for name, edits in generate.PATCHES.items():
        text = (goroot() / "src/runtime" / name).read_text()
        patched = generate.patch(text, edits, name)
        for kind, func, anchor, new, count in edits:
            assert patched.count(new) >= count, (name, func, new)


def test_a_changed_upstream_test_stops_the_generator():
    text = "func TestGcPacer(t *testing.T) {\n\tc := NewGCController(e.gcPercent, e.memoryLimit)\n}\n"
    edits = generate.PATCHES["mgcpacer_test.go"][:2]
    with pytest.raises(generate.GeneratorError, match=r"'c.StartCycle\(.*' occurs 0 times, expected 1"):
        generate.patch(text, edits, "mgcpacer_test.go")


@pytest.mark.slow
def test_a_fresh_dump_equals_the_committed_files(go, go_env):
    files = generate.generate(gocache=go_env["GOCACHE"])
    assert len([p for p in files if p.endswith(".input.json")]) == 19
    assert len([p for p in files if p.startswith("pagealloc/")]) == 153
    committed = generate.committed(DATA)
    assert sorted(files) == sorted(committed)
    assert [p for p in files if files[p] != committed[p]] == []
