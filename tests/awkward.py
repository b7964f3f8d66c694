"""Awkward JSON values for fuzzing the loaders: nested past the depth limit, numbers no float holds (NaN, the
infinities, 10**400), and text of every Unicode category, lone surrogates and line breaks included.

`unfit` says, independently of the code under test, whether a value must be refused for its depth, its numbers or
its text (a lone surrogate, in a key or a value).
"""

from __future__ import annotations

import copy
import math
from typing import Any

from hypothesis import strategies as st

from mn_deploy_core.limits import MAX_DEPTH


def nested(levels: int, leaf: Any = "leaf") -> Any:
    """`leaf` inside `levels` arrays and objects, alternating, the outermost an object."""
    value = leaf
    for level in range(levels, 0, -1):
        value = {"k": value} if level % 2 else [value]
    return value


def depth(value: Any) -> int:
    """Arrays and objects nested in `value` (a scalar is 0, `[]` is 1)."""
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def _no_float(value: Any) -> bool:
    """Whether `value` holds a number that is NaN, an infinity, or an integer too large for a float."""
    if isinstance(value, dict):
        return any(map(_no_float, value.values()))
    if isinstance(value, list):
        return any(map(_no_float, value))
    if not isinstance(value, int | float):
        return False
    try:
        return not math.isfinite(float(value))
    except OverflowError:
        return True


def _no_text(value: Any) -> bool:
    """Whether a string in `value`, as a key or a value, holds a lone surrogate (no UTF-8 encodes it)."""
    if isinstance(value, dict):
        return any(_no_text(k) or _no_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(map(_no_text, value))
    return isinstance(value, str) and any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)


def unfit(value: Any) -> bool:
    """Nested deeper than MAX_DEPTH, holding a number that is no finite float, or text with a lone surrogate."""
    return depth(value) > MAX_DEPTH or _no_float(value) or _no_text(value)


odd_text = st.text(st.characters(exclude_categories=()), max_size=12)
numbers = st.integers() | st.floats() | st.sampled_from([10**400, -(10**400), 2**1024, 2**1024 - 1, 10**308, 2**53 + 1])
leaves = st.none() | st.booleans() | numbers | odd_text
awkward_values = st.builds(
    nested,
    st.integers(min_value=0, max_value=2 * MAX_DEPTH),
    st.recursive(leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(odd_text, inner, max_size=3)),
)
"""A small JSON value of awkward leaves, wrapped in up to twice MAX_DEPTH levels."""


def subtree_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every subtree of a JSON value, itself first (`()`), as keys and list indexes."""
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found.extend(subtree_paths(inner, (*prefix, key)))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            found.extend(subtree_paths(inner, (*prefix, i)))
    return found


def replaced(document: Any, path: tuple[Any, ...], value: Any, *, beside: bool = False) -> Any:
    """A copy of `document` with the subtree at `path` replaced by `value`, or with `beside`, `value` added next
    to it under the key `<key>_extra` (where the parent is an object)."""
    changed = copy.deepcopy(document)
    *parents, last = path
    target: Any = changed
    for part in parents:
        target = target[part]
    if beside and isinstance(target, dict):
        target[f"{last}_extra"] = value
    else:
        target[last] = value
    return changed


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
"""Any small JSON value, NaN and the infinities included, to put where a reader expects something else."""
