"""Hypothesis strategies for hostile input: values at and past every bound gomemu
states, and JSON documents (replay files) edited at random places.

A document is mutated, not generated from nothing: starting from Go's own
reference files (tests/data), most edits keep it close enough to valid to get
past the first check, so the model behind the validation is exercised too.
"""

import copy
import math

from hypothesis import strategies as st

# Integers where gomemu's bounds and Go's types end: int8..uint64, the page allocator's
# 512-page chunk, the 8 KiB page, and beyond 64 bits.
EDGE_INTS = sorted({0, 1, 2, 3, 7, 8, 15, 16, 63, 64, 255, 256, 511, 512, 513, 4095, 4096, 8191, 8192,
                    32768, 65535, 65536, (1 << 20), (1 << 31) - 1, 1 << 31, (1 << 32) - 1, 1 << 32,
                    (1 << 40), (1 << 47), (1 << 62), (1 << 63) - 1, 1 << 63, (1 << 64) - 1, 1 << 64, 1 << 100})
EDGE_INTS += [-v for v in EDGE_INTS if v]

edge_ints = st.sampled_from(EDGE_INTS)
any_int = st.one_of(edge_ints, st.integers(-1000, 1000), st.integers(-(1 << 70), 1 << 70))
any_float = st.one_of(st.sampled_from([0.0, -0.0, 0.5, 1.5, -1.0, 1e-300, 5e-324, 1e300, 2.0 ** 63, 2.0 ** 64,
                                       math.inf, -math.inf, math.nan]),
                      st.floats(allow_nan=True, allow_infinity=True))
any_text = st.one_of(st.sampled_from(["", "0", "one", "1.5", "0x10", "-1", "nan", "alloc", "free", "\x00",
                                      "é", "\ud7ff", "a" * 300]),
                     st.text(max_size=12))
scalars = st.one_of(st.none(), st.booleans(), any_int, any_float, any_text)
# JSON values: scalars, and small lists and objects of them (nested once more at most).
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(any_text, inner, max_size=3)),
                           max_leaves=8)


def _near(value):
    """Values next to an existing one: the likeliest to pass a check and break what follows."""
    if isinstance(value, bool):
        return st.sampled_from([not value, int(value), None])
    if isinstance(value, int):
        return st.one_of(st.integers(value - 3, value + 3), st.sampled_from([value * 2, -value, value << 20]),
                         st.just(float(value)), st.just(value + 0.5))
    if isinstance(value, float):
        return st.one_of(st.sampled_from([value * 2, value / 2, -value, value * 1e30, value * 1e-30]),
                         st.floats(min_value=0.0, max_value=2.0), st.just(int(value) if math.isfinite(value) else 0))
    if isinstance(value, list) and value:
        return st.one_of(st.just(value[:-1]), st.just(value + value[-1:]), st.just(value[::-1]),
                         st.just(value * 2), st.just([]))
    return None


@st.composite
def place(draw, doc):
    """A path into doc, drawn by a walk from the root (each step goes one level down
    with odds 3 in 4): as cheap for a vector of 20,000 values as for a small one."""
    path, node = [], doc
    while isinstance(node, (dict, list)) and node and draw(st.integers(0, 3)):
        keys = list(node) if isinstance(node, dict) else range(len(node))
        key = keys[draw(st.integers(0, len(keys) - 1))]
        path.append(key)
        node = node[key]
    return tuple(path), node


def _with(doc, path, change):
    """doc with change(container, key) applied at path; the containers on the path are
    copied (the rest is shared), so doc itself is left as it was."""
    if not path:
        return change(None, None)
    top = copy.copy(doc)
    node = top
    for k in path[:-1]:
        node[k] = copy.copy(node[k])
        node = node[k]
    change(node, path[-1])
    return top


@st.composite
def mutated(draw, doc, max_edits=3):
    """doc (left unchanged) with 1..max_edits edits: a value replaced by a hostile or a
    nearby one, a key or list element dropped, an element duplicated."""
    for _ in range(draw(st.integers(1, max_edits))):
        path, value = draw(place(doc))
        near = _near(value)
        actions = ["replace"] + (["near", "near"] if near is not None else [])
        if path:
            actions += ["drop"] + (["duplicate"] if isinstance(path[-1], int) else [])
        action = draw(st.sampled_from(actions))
        if action == "drop":
            def change(parent, key):
                del parent[key]
        elif action == "duplicate":
            def change(parent, key):
                parent.insert(key, value)
        else:
            new = draw(near if action == "near" else json_values)

            def change(parent, key):
                if parent is None:
                    return new
                parent[key] = new
        doc = _with(doc, path, change)
    return doc
