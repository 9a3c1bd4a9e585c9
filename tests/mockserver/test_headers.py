"""`first_header` answers what Starlette's `Headers.get` answers, which the stock pipeline and handlers used."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import Headers

from mockserver.http.headers import first_header, header_key

# Names as a server sends them (lowercase) and as one might not; values with every latin-1 byte.
NAMES = st.sampled_from([b"authorization", b"x-client", b"x-uuid", b"X-Client", b"content-type", b"hl", b"x-api-key"])
HEADERS = st.lists(st.tuples(NAMES, st.binary(max_size=8)), max_size=8)
ASKED = st.sampled_from(
    ["Authorization", "authorization", "X-Client", "x-uuid", "X-UUID", "Content-Type", "hl", "X-API-KEY", "absent"]
)


@given(headers=HEADERS, name=ASKED)
def test_first_header_answers_as_starlette(headers: list[tuple[bytes, bytes]], name: str) -> None:
    assert first_header(headers, header_key(name)) == Headers(raw=headers).get(name)


def test_the_first_of_repeated_headers_wins() -> None:
    headers = [(b"x-client", b"web"), (b"x-client", b"ios")]
    assert first_header(headers, header_key("X-Client")) == "web"
    assert first_header(headers, header_key("X-UUID")) is None
