"""Reading a request header straight from the ASGI scope.

Starlette's `Headers.get` answers the first header of that name, but reaches it through `Mapping.get`, a
lowercase-and-encode of the name and, for an absent header, a raised and caught KeyError; a request meets a dozen
such lookups. `first_header` answers exactly what `Headers.get` answers, from a name already in the form the
ASGI server sends (lowercase bytes).
"""

from __future__ import annotations

from collections.abc import Iterable


def header_key(name: str) -> bytes:
    """A header name as Starlette compares it."""
    return name.lower().encode("latin-1")


def first_header(headers: Iterable[tuple[bytes, bytes]], key: bytes) -> str | None:
    """The value of the first header named ``key`` (see `header_key`), as Starlette decodes it; None if absent."""
    for name, value in headers:
        if name == key:
            return value.decode("latin-1")
    return None


def first_headers(headers: Iterable[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """Every header by name, the first of a name winning as in `first_header`."""
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        found.setdefault(name, value)
    return found


def lowercase_media_type(value: bytes) -> bytes:
    """A Content-Type value with its media type (``type/subtype``) trimmed and in lowercase; its parameters as sent.

    Type and subtype are case-insensitive (RFC 9110 §8.3.1), but Connexion and Starlette compare them as written:
    ``Application/JSON`` would find no body schema, skip validation and hand the handler raw bytes."""
    media_type, separator, parameters = value.partition(b";")
    return media_type.strip().lower() + separator + parameters


def with_lowercase_media_types(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]] | None:
    """The headers with every Content-Type's media type as `lowercase_media_type` writes it, or None when each
    already is (the usual case: then nothing is copied)."""
    rewritten = None
    for index, (name, value) in enumerate(headers):
        if name == b"content-type":
            lowered = lowercase_media_type(value)
            if lowered != value:
                if rewritten is None:
                    rewritten = list(headers)
                rewritten[index] = (name, lowered)
    return rewritten
