"""Reading a request header straight from the ASGI scope.

Starlette's `Headers.get` answers the first header of that name, but reaches it through `Mapping.get`, a
lowercase-and-encode of the name and, for an absent header, a raised and caught KeyError; a request meets a dozen
such lookups. `first_header` answers exactly what `Headers.get` answers, from a name already in the form the
ASGI server sends (lowercase bytes).

Two headers are read with more care: a Content-Type's media type is compared in one letter case (RFC 9110 says it
has none), and a Host header is used for links only when a URL can carry it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from starlette.types import Scope


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


#: a host as a URL may carry it: a name or IPv4 address of unreserved characters, or an IPv6 literal in brackets;
#: then an optional port of one to five digits (RFC 3986 §3.2.2-3.2.3)
_AUTHORITY = re.compile(r"(?P<host>[A-Za-z0-9._~-]+|\[(?P<ipv6>[0-9A-Fa-f:.]+)\])(?::(?P<port>[0-9]{1,5}))?")


def usable_host(value: str | None) -> str | None:
    """``value`` when a URL can be built on it (a host and an optional port up to 65535), else None."""
    if not value:
        return None
    found = _AUTHORITY.fullmatch(value)
    if found is None:
        return None
    if found["port"] is not None and int(found["port"]) > 65535:
        return None
    if found["ipv6"] is not None:
        try:
            ipaddress.IPv6Address(found["ipv6"])
        except ValueError:
            return None
    return value


def request_host(scope: Scope) -> str:
    """The host and port clients reached the mock by: the Host header, or, when it names nothing a URL can carry,
    the address the connection came in on. Links built on a broken Host would break the answer (a port of 99999,
    an unclosed IPv6 bracket), so the socket speaks for it."""
    host = usable_host(first_header(scope["headers"], b"host"))
    if host is not None:
        return host
    server = scope.get("server")
    if not server:
        return "127.0.0.1"
    address, port = server[0], server[1]
    if ":" in address:
        address = f"[{address}]"
    return address if port is None else f"{address}:{port}"
