"""The mock's choices: behaviours the vendors' documents leave open, each switchable.

Where a seed or the vendor facts are silent (how a list is ordered, whether a header nobody documents a refusal
for is refused, what a cursor holds), the mock still has to answer something. Each such answer is a `Choice` with
the values a real server may legitimately pick; the contracts mark the places a choice governs with
``x-mock-choice: {choice: NAME, ...}``. Users switch choices to test their clients against every behaviour a
vendor may show (``mockserver run --choice NAME=VALUE``, the fixtures' ``choices:``, ``PUT /_mock/choices``), and
the conformance suite is tested to pass the mock at every value.

A value object (`Choices`) holds the current values; the running mock's `ChoiceBoard` swaps it whole, so a request
sees one consistent set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["CHOICES", "PRESETS", "Choice", "ChoiceBoard", "ChoiceError", "Choices"]


class ChoiceError(ValueError):
    """An unknown choice or value."""


@dataclass(frozen=True)
class Choice:
    """One open behaviour: its values (the default first), the most permissive one, and why it is open."""

    name: str
    #: the API it concerns, or None for all three
    api: str | None
    #: value -> what the mock then does
    values: Mapping[str, str]
    lenient: str
    reason: str

    @property
    def default(self) -> str:
        return next(iter(self.values))

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "api": self.api,
            "values": list(self.values),
            "default": self.default,
            "lenient": self.lenient,
            "reason": self.reason,
            "meanings": dict(self.values),
        }


CHOICES: tuple[Choice, ...] = (
    Choice(
        "limits",
        None,
        {
            "enforce": "lengths, ranges and alphabets the documents do not give are refused",
            "ignore": "such values are accepted",
        },
        "ignore",
        "No document gives most lengths and ranges (hl, Accept-Language, titles, values, page sizes).",
    ),
    Choice(
        "unsupported_method",
        None,
        {
            "method_not_allowed": "a method a path lacks answers 405 with Allow",
            "not_found": "a method a path lacks answers 404",
        },
        "not_found",
        "No document says how a method the API lacks is answered.",
    ),
    Choice(
        "vms.client_headers",
        "vms",
        {
            "reject": "a request without X-Client or X-UUID, or with an unknown X-Client, answers 422",
            "accept": "those headers are not checked",
        },
        "accept",
        "Clients must send X-Client and X-UUID; no document says a server refuses a request without them.",
    ),
    Choice(
        "vms.invalid_page",
        "vms",
        {
            "reject": "page or per_page that is not a positive integer answers 422",
            "first_page": "such a page reads as page 1, such a per_page as 25 (Laravel's paginator)",
        },
        "first_page",
        "The documents say clients send integers, not what a server does with anything else.",
    ),
    Choice(
        "vms.list_order",
        "vms",
        {"newest_first": "the code list is newest first", "oldest_first": "the code list is oldest first"},
        "oldest_first",
        "The documents give no order for the code list.",
    ),
    Choice(
        "vms.intercom_created_at",
        "vms",
        {
            "ymd_his": "an intercom's created_at is `Y-m-d H:i:s`",
            "iso_micro": "it is ISO 8601 with microseconds, like updated_at",
            "null": "it is null, as in the seed",
        },
        "iso_micro",
        "The seed shows only null; its sibling updated_at is ISO 8601 with microseconds.",
    ),
    Choice(
        "vms.bulk_delete_foreign",
        "vms",
        {
            "reject": "ids that are not the user's codes answer 422 and nothing is deleted",
            "ignore": "such ids are skipped; the user's own are deleted and the answer is 204",
        },
        "ignore",
        "The documents do not say what a bulk delete does with ids that are not the user's or are gone.",
    ),
    Choice(
        "vms.past_expiry",
        "vms",
        {
            "reject": "an expired_at in the past answers 422",
            "accept": "it makes a code that is already expired",
        },
        "accept",
        "The documents do not say whether an expiry in the past is refused.",
    ),
    Choice(
        "vms.wsurl_auth",
        "vms",
        {"public": "wsurl answers without a bearer token", "bearer": "wsurl needs the bearer token (401)"},
        "public",
        "Every request carries the bearer token; the documents do not say whether wsurl checks it.",
    ),
    Choice(
        "seam.health_auth",
        "seam",
        {"public": "health answers without a bearer token", "bearer": "health needs the bearer token (401)"},
        "public",
        "Every call but OAuth carries the bearer token; the documents do not say whether health checks it.",
    ),
    Choice(
        "seam.unlock_time",
        "seam",
        {
            "bounded": "unlock_time 0 to 9,999,999 ms",
            "positive": "unlock_time of at least 1 ms, no upper bound (0 answers 400)",
            "unbounded": "any unlock_time of 0 ms or more",
        },
        "unbounded",
        "The documents give the unit of unlock_time (milliseconds), not its range.",
    ),
    Choice(
        "seam.foreign_status",
        "seam",
        {
            "not_found": "another owner's (or an unknown) intercom or code answers 404",
            "forbidden": "it answers 403",
        },
        "forbidden",
        "The documents give no status for an intercom or code that is not the owner's.",
    ),
    Choice(
        "magicline.offset",
        "magicline",
        {
            "last_id": "the customers cursor is the last customer id of the slice",
            "opaque": "the cursor is an opaque token (an unreadable one answers 400)",
        },
        "opaque",
        "The documents make offset a string cursor without saying what it holds.",
    ),
)

_BY_NAME = {choice.name: choice for choice in CHOICES}

#: named sets of values: `default` is today's mock, `lenient` the most permissive value of each choice
PRESETS: dict[str, dict[str, str]] = {
    "default": {choice.name: choice.default for choice in CHOICES},
    "lenient": {choice.name: choice.lenient for choice in CHOICES},
}


class Choices:
    """The value of every choice (defaults where none was given). Immutable: changes make a new one."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        merged = dict(PRESETS["default"])
        for name, value in (values or {}).items():
            merged[name] = _checked(name, value)
        self._values = merged

    @classmethod
    def from_arguments(cls, assignments: Iterable[str] = (), preset: str | None = None) -> Choices:
        """From a preset name and `NAME=VALUE` texts (the command line's spelling); later ones win."""
        values: dict[str, str] = {}
        if preset is not None:
            if preset not in PRESETS:
                raise ChoiceError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
            values.update(PRESETS[preset])
        for text in assignments:
            name, sep, value = text.partition("=")
            if not sep:
                raise ChoiceError(f"{text!r} is not NAME=VALUE")
            values[name.strip()] = value.strip()
        return cls(values)

    def value(self, name: str) -> str:
        return self._values[name]

    def enforces(self, name: str) -> bool:
        """Whether the places this choice governs keep the contract's own rule (the default value does)."""
        return self._values[name] == _BY_NAME[name].default

    def changed(self, changes: Mapping[str, Any]) -> Choices:
        """These values, with ``changes`` applied (each checked)."""
        return Choices({**self._values, **{name: str(value) for name, value in changes.items()}})

    def non_default(self) -> dict[str, str]:
        return {name: value for name, value in self._values.items() if value != _BY_NAME[name].default}

    def to_dict(self) -> dict[str, str]:
        return dict(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Choices) and other._values == self._values

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._values.items())))

    def __repr__(self) -> str:
        return f"Choices({self.non_default()})"


class ChoiceBoard:
    """The choices in force in one running mock, shared by its vendors and its runtime: the control API, a reset
    or another replica switch them while the mock runs. ``start`` is what a reset goes back to."""

    __slots__ = ("current", "start")

    def __init__(self, start: Choices) -> None:
        self.start = start
        self.current = start

    def value(self, name: str) -> str:
        return self.current.value(name)


def _checked(name: str, value: Any) -> str:
    choice = _BY_NAME.get(name)
    if choice is None:
        raise ChoiceError(f"unknown choice {name!r}; known: {', '.join(_BY_NAME)}")
    if not isinstance(value, str) or value not in choice.values:
        raise ChoiceError(f"{name} cannot be {value!r}; its values: {', '.join(choice.values)}")
    return value


def choice(name: str) -> Choice:
    """The choice of that name."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ChoiceError(f"unknown choice {name!r}; known: {', '.join(_BY_NAME)}") from None
