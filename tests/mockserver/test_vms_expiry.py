"""VMS reads `expired_at` as PHP's "Y-m-d H:i"; the mock's quick reading must decide as `strptime` does."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mockserver.http.errors import ApiError
from mockserver.vendors.vms import _parse_expiry

# Arabic-Indic digits too: both readings take any Unicode digit
_DIGITS = st.text("0123456789", min_size=1, max_size=5) | st.text("0123\u0660\u0663\u0669", min_size=1, max_size=4)
_TEXTS = st.tuples(
    _DIGITS,
    st.sampled_from(["-", "/"]),
    _DIGITS,
    st.just("-"),
    _DIGITS,
    st.sampled_from([" ", "  ", "T", "\t"]),
    _DIGITS,
    st.sampled_from([":", "."]),
    _DIGITS,
    st.sampled_from(["", "\n", ":00"]),
).map("".join)


def _reference(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    except ValueError:
        return None


def _ours(text: str) -> datetime | None:
    try:
        return _parse_expiry(text)
    except ApiError:  # the vendor's 422
        return None


@settings(max_examples=2000, deadline=None)  # an equivalence, not a timing: a loaded CI machine must not fail it
@given(_TEXTS)
@example("2030-06-01 10:00")
@example("2030-02-30 10:00")
@example("2030-12-31 24:00")
@example("0000-01-01 00:00")
def test_the_quick_reading_decides_as_strptime(text: str) -> None:
    assert _ours(text) == _reference(text)
