"""`encode_data` writes with orjson where that is safe and lets the json module decide everything else: the store
keeps what the json module writes and can be read back, refuses the rest with the same kind of error, and what it
keeps reads back as the json module's text does."""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from mockserver.store.memory import decode_data, encode_data

_reference = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode

_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()  # NaN and infinities included
    | st.text()  # lone surrogates included
)
_KEYS = st.text(max_size=5) | st.integers(-3, 3) | st.booleans() | st.none()
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)


def _outcome(encode: Any, data: dict) -> tuple[str, Any]:
    """What the store makes of ``data``: refused (with which error), or what reading it back gives."""
    try:
        text = encode(data)
        return "written", decode_data(text)
    except (TypeError, ValueError) as exc:
        # the json module writes lone surrogates that no reading takes back: the store refuses them at once
        return "refused", TypeError if isinstance(exc, TypeError) else ValueError


def _same(a: Any, b: Any) -> bool:
    # NaN never equals itself; the readings must still hold NaN in the same places
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@given(st.dictionaries(_KEYS, _VALUES, max_size=6))
@example({"nan": float("nan")})
@example({"inf": [1, {"x": float("-inf")}]})
@example({"surrogate": "\ud800"})
@example({"big": 2**64})
@example({1: "non-str key"})
@example({"tuple": (1, 2)})
def test_encode_data_decides_as_the_json_module(data: dict) -> None:
    ours, reference = _outcome(encode_data, data), _outcome(_reference, data)
    assert ours[0] == reference[0]
    if ours[0] == "refused":
        assert ours[1] is reference[1]
    else:
        assert _same(ours[1], reference[1])


def test_objects_are_refused_and_only_uuids_and_enums_are_widened() -> None:
    for refused in (object(), {1, 2}, b"bytes"):
        assert _outcome(encode_data, {"x": refused})[0] == "refused"
    value = uuid.UUID(int=7)
    assert decode_data(encode_data({"id": value})) == {"id": str(value)}
