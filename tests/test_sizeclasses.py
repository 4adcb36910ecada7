"""The size classes come from Go's algorithm and equal Go 1.27's generated table."""

import re

from runtime_model import sizeclasses as sc
from tests.conftest import goroot


def _sizeclasses_go():
    return (goroot() / "src/internal/runtime/gc/sizeclasses.go").read_text()


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
    text = _sizeclasses_go()
    assert sc.CLASS_TO_SIZE == _go_array(text, "SizeClassToSize")
    assert sc.CLASS_TO_NPAGES == _go_array(text, "SizeClassToNPages")
    assert sc.CLASS_TO_DIVMAGIC == _go_array(text, "SizeClassToDivMagic")
    assert sc.SIZE_TO_CLASS8 == _go_array(text, "SizeToSizeClass8")
    assert sc.SIZE_TO_CLASS128 == _go_array(text, "SizeToSizeClass128")
    assert len(sc.CLASSES) == 68


def test_constants_equal_go_1_27_sizeclasses_go(go):
    block = re.search(r"^const \((.*?)^\)", _sizeclasses_go(), re.M | re.S).group(1)
    go_consts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s*(\w+)\s*=\s*(\d+)\s*$", block, re.M)}
    assert go_consts == {
        "MinHeapAlign": sc.MIN_HEAP_ALIGN,
        "MaxSmallSize": sc.MAX_SMALL_SIZE,
        "SmallSizeDiv": sc.SMALL_SIZE_DIV,
        "SmallSizeMax": sc.SMALL_SIZE_MAX,
        "LargeSizeDiv": sc.LARGE_SIZE_DIV,
        "NumSizeClasses": sc.NUM_SIZE_CLASSES,
        "PageShift": sc.PAGE_SHIFT,
        "MaxObjsPerSpan": max(c.npages * sc.PAGE_SIZE // c.size for c in sc.CLASSES[1:]),
        "MaxSizeClassNPages": max(sc.CLASS_TO_NPAGES),
        "TinySize": sc.TINY_SIZE,
        "TinySizeClass": sc.TINY_SIZE_CLASS,
    }


def test_divmagic_divides_every_offset_in_a_span():
    for c in sc.CLASSES[1:]:
        for n in range(0, c.npages * sc.PAGE_SIZE + 1, 7):
            assert (n * c.divmagic) >> 32 == n // c.size
