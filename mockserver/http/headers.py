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
