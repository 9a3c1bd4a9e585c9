"""`first_header` answers what Starlette's `Headers.get` answers, which the stock pipeline and handlers used."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import Headers

from mockserver.http.headers import (
    first_header,
    first_headers,
    header_key,
    lowercase_media_type,
    usable_host,
    with_lowercase_media_types,
)

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


def test_first_headers_keeps_the_first_of_each_name() -> None:
    assert first_headers([(b"x-api-key", b"one"), (b"x-api-key", b"two"), (b"hl", b"de")]) == {
        b"x-api-key": b"one",
        b"hl": b"de",
    }


def test_media_types_are_lowercased_and_their_parameters_kept() -> None:
    assert lowercase_media_type(b"Application/JSON") == b"application/json"
    assert lowercase_media_type(b"APPLICATION/X-WWW-FORM-URLENCODED ; Charset=UTF-8") == (
        b"application/x-www-form-urlencoded; Charset=UTF-8"
    )
    assert lowercase_media_type(b'Text/Plain; boundary="AbC"') == b'text/plain; boundary="AbC"'


def test_headers_are_copied_only_when_a_media_type_changes() -> None:
    usual = [(b"content-type", b"application/json; charset=utf-8"), (b"x-client", b"Web")]
    assert with_lowercase_media_types(usual) is None
    mixed = [(b"x-client", b"Web"), (b"content-type", b"Application/Json"), (b"content-type", b"TEXT/plain")]
    assert with_lowercase_media_types(mixed) == [
        (b"x-client", b"Web"),
        (b"content-type", b"application/json"),
        (b"content-type", b"text/plain"),
    ]
    assert mixed[1] == (b"content-type", b"Application/Json")  # the client's list stays as it was sent


def test_a_host_is_usable_when_a_url_can_carry_it() -> None:
    for usable in ("127.0.0.1", "127.0.0.1:8080", "mock.example.com", "[::1]", "[::1]:443", "a-b.c_d~e:65535"):
        assert usable_host(usable) == usable
    for broken in (None, "", "127.0.0.1:99999", "127.0.0.1:abc", "[::1", "[::1]x", "[nope]", "a b", "u@h", ":80"):
        assert usable_host(broken) is None
    assert usable_host("127.0.0.1:") is None  # an empty port makes links like http://127.0.0.1:/path
