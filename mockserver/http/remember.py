"""A bounded memory for what requests decide by a value the client chose (a media type, a query string)."""

from __future__ import annotations

import typing as t

#: such values come from clients: a fuzzer may send thousands, while the contract names a few
REMEMBERED = 64

V = t.TypeVar("V")


def remember(cache: dict, key: t.Hashable, value: V) -> V:
    """Keep ``value`` while the cache is small; past that, work it out again on each request instead."""
    if len(cache) < REMEMBERED:
        cache[key] = value
    return value
