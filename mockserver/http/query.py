"""Query strings resolved as Connexion resolves them, without its per-request generic steps.

Connexion gets an operation's query parameters by parsing the query string into Starlette's `QueryParams`,
grouping the values of each name, expanding deepObject keys, and then, per name, taking the last value (or
joining and splitting an array) and coercing it to the parameter's type. For an operation whose query
parameters are all typed scalars and none is a deepObject, the expansion changes nothing and no array rule
applies; `QueryResolver` does the rest with the same lookups and Connexion's own `coerce_type`.
tests/mockserver/test_query.py compares the two on generated query strings.

A resolution depends on the query string alone, and clients of a mock ask the same few again and again (a list's
pages, one intercom's codes): each resolver keeps the answers to the first few it meets (`remember`).
"""

from __future__ import annotations

import typing as t
from urllib.parse import parse_qsl

from connexion.exceptions import TypeValidationError
from connexion.uri_parsing import AbstractURIParser
from connexion.utils import coerce_type

from .remember import remember


def query_lists(query_string: bytes) -> dict[str, list[str]]:
    """Each name's values in order, names in order of first appearance (Starlette's `QueryParams` then
    ``{k: params.getlist(k) for k in params}``)."""
    text = query_string.decode("latin-1")
    lists: dict[str, list[str]] = {}
    if not text:
        return lists
    if "%" in text or "+" in text:
        pairs: t.Iterable[tuple[str, str]] = parse_qsl(text, keep_blank_values=True)
    else:
        # Nothing to unquote: what parse_qsl does comes down to splitting (empty parts are skipped, a part without
        # "=" is a name with an empty value).
        pairs = (part.partition("=")[::2] for part in text.split("&") if part)
    for name, value in pairs:
        values = lists.get(name)
        if values is None:
            lists[name] = [value]
        else:
            values.append(value)
    return lists


class QueryResolver:
    """Resolves one operation's query string; `for_operation` answers None where Connexion's rules must run."""

    def __init__(self, uri_parser: AbstractURIParser) -> None:
        self.definitions: dict[str, dict[str, t.Any]] = dict(uri_parser.param_defns)
        self._kept: dict[bytes, dict[str, t.Any]] = {}

    @classmethod
    def for_operation(cls, uri_parser: AbstractURIParser) -> QueryResolver | None:
        # The parser's definitions hold path and query parameters by name: a query key may meet either.
        for definition in uri_parser.param_defns.values():
            schema = definition.get("schema")
            if not isinstance(schema, dict) or schema.get("type") in (None, "array", "object"):
                return None
            if definition.get("style", "form") == "deepObject":
                return None
        return cls(uri_parser)

    def resolve(self, query_string: bytes) -> dict[str, t.Any]:
        """Each name's value as Connexion resolves it: a new dict, which the caller may change."""
        kept = self._kept.get(query_string)
        if kept is not None:
            return dict(kept)
        resolved = self._resolve(query_string)
        # Only answers of plain values are kept: a list (an unknown name's values) could be changed by the caller.
        if not any(isinstance(value, list) for value in resolved.values()):
            remember(self._kept, query_string, dict(resolved))
        return resolved

    def _resolve(self, query_string: bytes) -> dict[str, t.Any]:
        resolved: dict[str, t.Any] = {}
        definitions = self.definitions
        for name, values in query_lists(query_string).items():
            definition = definitions.get(name)
            if definition is None:
                resolved[name] = values  # unknown names keep their list; validation decides about them
                continue
            value = values[-1]
            try:
                resolved[name] = coerce_type(definition, value, "parameter", name)
            except TypeValidationError:
                resolved[name] = value
        return resolved
