"""`CompiledJSONBodyValidator.wrap_receive` decides as Connexion's own `wrap_receive` does.

Except on purpose for a body sent in chunks (`Transfer-Encoding: chunked`, no Content-Length): Connexion reads no
body then; the mock reads it as the vendors' servers do, and decides as Connexion does on the same body sent with
its length.

Both run on the same validator, so parsing and schema checks are shared; what differs is how the body is read
from the `receive` channel and handed on. Generated channels (bodies in one or several chunks, a disconnect,
any Content-Length) must give the same outcome through both: the same error, or the same body parsed and the
same messages replayed to the handler.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from connexion.validators.abstract import AbstractRequestBodyValidator
from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.http.validation import PARSED_BODY, CompiledJSONBodyValidator
from mockserver.testing import start_mock

SCHEMA = {
    "type": "object",
    "required": ["title"],
    "properties": {"title": {"type": "string", "maxLength": 10}, "n": {"type": "integer"}},
}

BODIES = st.one_of(
    st.builds(
        lambda title, n: json.dumps({"title": title, "n": n}).encode(),
        st.text(max_size=12),
        st.integers(-5, 5),
    ),
    st.sampled_from([b"", b"{", b"null", b"[]", b'{"n": 1}', b'"x"', b"\xff", b'{"title": "\\ud800"}']),
    st.binary(max_size=20),
)


def _channel(messages: list[dict[str, Any]]) -> Any:
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    return receive


@st.composite
def requests(draw: st.DrawFn) -> tuple[list[tuple[bytes, bytes]], list[dict[str, Any]]]:
    body = draw(BODIES)
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=3)))
    chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1} for i, chunk in enumerate(chunks)
    ]
    if draw(st.booleans()) and messages:
        messages[-1] = {"type": "http.disconnect"}  # the client went away before the last chunk
    length = draw(st.sampled_from([None, "0", str(len(body)), "7"]))
    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", length.encode()))
    return headers, messages


async def _outcome(validator: CompiledJSONBodyValidator, wrap: Any, headers: list, messages: list) -> tuple:
    scope = {"type": "http", "headers": list(headers)}
    try:
        receive, new_scope = await wrap(validator, _channel(messages), scope=scope)
    except Exception as exc:  # the outcome is the error itself
        return ("raised", type(exc).__name__, str(exc))
    replayed = []
    while (message := await receive())["type"] != "http.disconnect":
        replayed.append(message)
    return ("passed", new_scope.get(PARSED_BODY), new_scope["headers"], replayed)


@settings(max_examples=300, deadline=None)
@given(request=requests(), required=st.booleans(), nullable=st.booleans())
def test_same_outcome_as_connexions_wrap_receive(request: tuple, required: bool, nullable: bool) -> None:
    headers, messages = request
    validator = CompiledJSONBodyValidator(
        schema=SCHEMA, required=required, nullable=nullable, encoding="utf-8", strict_validation=False
    )
    ours = asyncio.run(_outcome(validator, CompiledJSONBodyValidator.wrap_receive, headers, messages))
    theirs = asyncio.run(_outcome(validator, AbstractRequestBodyValidator.wrap_receive, headers, messages))
    assert ours == theirs


@settings(max_examples=200, deadline=None)
@given(request=requests(), required=st.booleans(), nullable=st.booleans())
def test_a_chunked_body_is_read_as_if_its_length_were_announced(request: tuple, required: bool, nullable: bool) -> None:
    _, messages = request
    sent = [message for message in messages if message["type"] == "http.request"]
    length = sum(len(message["body"]) for message in sent)
    chunked = [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")]
    announced = [(b"content-type", b"application/json"), (b"content-length", str(length).encode())]
    validator = CompiledJSONBodyValidator(
        schema=SCHEMA, required=required, nullable=nullable, encoding="utf-8", strict_validation=False
    )
    ours = asyncio.run(_outcome(validator, CompiledJSONBodyValidator.wrap_receive, chunked, messages))
    theirs = asyncio.run(_outcome(validator, AbstractRequestBodyValidator.wrap_receive, announced, messages))
    # (the headers as the handler sees them differ: the chunked request has no Content-Length of its own)
    if theirs[0] == "passed":
        assert ours[0] == "passed" and (ours[1], ours[3]) == (theirs[1], theirs[3])
    else:
        assert ours == theirs


LOGIN_HEADERS = {"X-Client": "web", "X-UUID": "chunked"}


@pytest.mark.parametrize(
    ("api", "path", "headers", "body"),
    [
        ("vms", "/api/v1/token", {"content-type": "application/json"}, b'{"login": "alice@demo.test", '
         b'"password": "alice-password"}'),
        ("vms", "/api/v1/token", {"content-type": "application/x-www-form-urlencoded"},
         b"login=alice%40demo.test&password=alice-password"),
        ("magicline", "/v1/customers/1003/access-mediums",
         {"content-type": "application/json", "X-API-KEY": "demo-magicline-mission"}, b'{"type": "PIN", '
         b'"value": "90817"}'),
    ],
)  # fmt: skip
def test_a_body_sent_in_chunks_gets_the_answer_it_gets_in_one_piece(
    api: str, path: str, headers: dict[str, str], body: bytes
) -> None:
    # Over a socket: uvicorn hands on the chunks as they were sent, with the Transfer-Encoding header.
    headers = {**LOGIN_HEADERS, **headers}
    answers = []
    for content in (body, iter([body[:9], body[9:20], body[20:]])):
        with start_mock(seed=0) as mock, httpx.Client() as client:
            answer = client.post(mock.urls[api] + path, headers=headers, content=content)
        answers.append((answer.status_code, sorted(answer.json())))  # (a login's token differs each time)
    assert answers[0][0] in (200, 201)
    assert answers[1] == answers[0]
