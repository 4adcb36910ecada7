"""The size classes come from Go's algorithm and equal Go 1.27's generated table."""

import json
import re

from runtime_model import sizeclasses as sc
from tests.conftest import SHARED, goroot


def _go_array(text, name):
    m = re.search(rf"^var {name} = \[[^\]]*\]\w+ ?\{{([^}}]*)\}}", text, re.M)
    out = []
    for item in m.group(1).split(","):
        item = item.replace(" ", "")
        if not item:
            continue
        mm = re.fullmatch(r"\^uint32\(0\)/(\d+)\+1", item)
        out.append((0xFFFFFFFF // int(mm.group(1)) + 1) if mm else int(item))
    return out


def test_tables_equal_go_1_27_sizeclasses_go(go):
    text = (goroot() / "src/internal/runtime/gc/sizeclasses.go").read_text()
    assert sc.CLASS_TO_SIZE == _go_array(text, "SizeClassToSize")
    assert sc.CLASS_TO_NPAGES == _go_array(text, "SizeClassToNPages")
    assert sc.CLASS_TO_DIVMAGIC == _go_array(text, "SizeClassToDivMagic")
    assert sc.SIZE_TO_CLASS8 == _go_array(text, "SizeToSizeClass8")
    assert sc.SIZE_TO_CLASS128 == _go_array(text, "SizeToSizeClass128")
    assert len(sc.CLASSES) == 68


def test_tables_equal_the_shared_reference_dump():
    ref = json.loads((SHARED / "reference/sizeclasses.json").read_text())
    assert ref["class_to_size"] == sc.CLASS_TO_SIZE
    assert ref["class_to_npages"] == sc.CLASS_TO_NPAGES
    assert ref["class_to_divmagic"] == sc.CLASS_TO_DIVMAGIC
    assert ref["size_to_class8"] == sc.SIZE_TO_CLASS8
    assert ref["size_to_class128"] == sc.SIZE_TO_CLASS128
    assert ref["constants"]["TinySizeClass"] == sc.TINY_SIZE_CLASS


def test_divmagic_divides_every_offset_in_a_span():
    for c in sc.CLASSES[1:]:
        for n in range(0, c.npages * sc.PAGE_SIZE + 1, 7):
            assert (n * c.divmagic) >> 32 == n // c.size
