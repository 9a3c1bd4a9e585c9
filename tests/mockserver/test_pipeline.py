"""The compiled pipeline decides as Connexion's stock middleware chain, with Connexion's own validators, does.

Two mocks with the same seed and a frozen clock, one on each pipeline, receive the same generated requests
(valid and invalid, for every operation of every contract); both start each request from the same state. Every
answer must be the same (status, body and the headers a client reads), or differ in one of the named, deliberate
ways listed in `DIFFERENCES`: where the mock's own validators (`mockserver.http.validation`) decide or word
something otherwise than Connexion's defaults, on purpose.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode

from mockserver.contracts import contract_path
from mockserver.runtime import Settings
from mockserver.testing import RunningMock, start_mock

START = datetime(2030, 6, 1, 9, 0, tzinfo=UTC)
AUTH = {
    "magicline": {"X-API-KEY": "demo-magicline-mission"},
    "seam": {"Authorization": "Bearer demo-seam-alice"},
    "vms": {"Authorization": "Bearer demo-vms-alice"},
}
COMPARED_HEADERS = ("content-type", "allow", "retry-after", "location", "date")


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[RunningMock, RunningMock]]:
    limits = Settings(magicline_rate_limit_per_minute=10**6, vms_wsurl_limit_per_5_minutes=10**6)
    with (
        start_mock(seed=5, start=START, settings=limits, pipeline="compiled") as compiled,
        start_mock(seed=5, start=START, settings=Settings(**limits.to_dict()), pipeline="connexion") as stock,
    ):
        yield compiled, stock


Answer = tuple[int, object, dict[str, str]]

#: the deliberate differences between the mock's validators and Connexion's defaults, and why each is wanted
DIFFERENCES = {
    "field-less refusal": "Connexion's validators stop at the first problem and raise a BadRequestProblem with text "
    "only, so the vendor's error body cannot name the field (Magicline's `reference`, Laravel's field list) or answer "
    "as the vendor does for that field (VMS's 404 for an {intercom} out of range, Seam's INVALID_REDIRECT_URI); the "
    "mock's validators name every field and rule",
    "uuid format": "JSON Schema draft 4, Connexion's format checker, has no `uuid`: a Seam id that is not a UUID "
    "reaches the handler (404 or 403) instead of the vendor's 400 for a malformed id",
    "stock 500": "Connexion's JSON validator decodes the body with the declared charset and lets lone surrogates "
    "through, then `get_body` parses the bytes as UTF-8 for the handler: a body it accepted can break the handler "
    "(500), or an unknown charset raises; the mock's validator parses exactly what the handler gets",
    "JSON as bytes": "the mock's validator reads the body's bytes as json.loads does (RFC 8259: UTF-16 and UTF-32 "
    "recognised, a byte order mark skipped, no charset), as Connexion's `get_body` hands it to the handler; "
    "Connexion's validator decodes UTF-8 text first and refuses those bodies",
}


def _field_less(api: str, answer: Answer) -> bool:
    """Whether ``answer`` is the vendor's rendering of a validation error that names no field."""
    status, body = answer[0], answer[1]
    if not isinstance(body, dict):
        return False
    if api == "magicline":
        return status == 400 and body.get("errorCode") == "VALIDATION_ERROR" and "reference" not in body
    if api == "seam":
        return status == 400 and body.get("error_id") == "INVALID_INPUT" and body["error_message"].startswith("body: ")
    # Laravel reads a body it cannot take as no input: every required field (or the body) is missing.
    errors = body.get("errors")
    messages = [m for ms in errors.values() for m in ms] if isinstance(errors, dict) else []
    return status == 422 and bool(messages) and all(m.endswith(" field is required.") for m in messages)


def _json_only_as_bytes(content: bytes | None) -> bool:
    """Whether json.loads reads ``content`` as bytes but not as UTF-8 text."""
    try:
        json.loads(content or b"")
    except ValueError:
        return False
    try:
        json.loads((content or b"").decode("utf-8"))
    except ValueError:
        return True
    return False


def difference(api: str, compiled: Answer, stock: Answer, content: bytes | None = None) -> str | None:
    """The named difference (a key of `DIFFERENCES`) between two answers to the request that sent ``content``, or
    None when none explains it. The compiled pipeline never answers 500, so a difference never excuses one."""
    if compiled[0] >= 500:
        return None
    if stock[0] == 500:
        return "stock 500"
    if compiled[0] >= 400 and _field_less(api, stock):
        return "field-less refusal"
    if compiled[0] < 300 and _field_less(api, stock) and _json_only_as_bytes(content):
        return "JSON as bytes"
    message = compiled[1].get("error_message", "") if isinstance(compiled[1], dict) else ""
    if api == "seam" and compiled[0] == 400 and "is not a 'uuid'" in message and stock[0] in (403, 404):
        return "uuid format"
    return None


#: whether the two mocks' states may have parted (a named difference made a code on one side only, say)
_parted = [False]


def _same_start(pair: tuple[RunningMock, RunningMock]) -> None:
    """Both mocks back to the fixtures with the same random sequence once a difference may have parted their
    states, so that a deliberate difference in one request does not become a difference in the next."""
    if _parted[0]:
        for mock in pair:
            mock.runtime.reset()
            mock.runtime.building._unit.rng.seed(5)  # the seed both were started with
        _parted[0] = False


def _compare(api: str, answers: list[Answer], content: bytes | None) -> str | None:
    """None when the answers are the same, else the named difference between them (or None, failing)."""
    if answers[0] == answers[1]:
        return None
    _parted[0] = True
    named = difference(api, answers[0], answers[1], content)
    assert named is not None, f"compiled {answers[0]!r} != stock {answers[1]!r}"
    return named


def _answer(response: httpx.Response, base_url: str) -> Answer:
    # Paginator links carry each mock's own address; everything else must match byte for byte.
    netloc = base_url.split("://", 1)[1]
    text = response.text.replace(netloc, "HOST")
    try:
        body: object = json.loads(text)
    except ValueError:
        body = text
    if isinstance(body, dict) and body.get("port") == int(netloc.rsplit(":", 1)[1]):
        body["port"] = "PORT"
    if isinstance(body, dict) and "traceId" in body:
        body["traceId"] = "TRACE"  # Magicline's counter of errors answered, which a named difference moves on one side
    headers = {name: response.headers[name] for name in COMPARED_HEADERS if name in response.headers}
    return response.status_code, body, headers


def _operations(api: str) -> list[tuple[str, object]]:
    schema = schemathesis.openapi.from_path(str(contract_path(api)))
    return [(f"{api}:{result.ok().label}", result.ok()) for result in schema.get_all_operations()]


def _has_inputs(operation: object) -> bool:
    return bool(list(operation.iter_parameters())) or bool(operation.body)  # type: ignore[attr-defined]


CASES = [
    pytest.param(label, operation, mode, id=f"{label}-{mode.value}")
    for api in ("magicline", "seam", "vms")
    for label, operation in _operations(api)
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    # an operation without parameters or body has no invalid request to generate
    if mode is GenerationMode.POSITIVE or _has_inputs(operation)
]


@pytest.mark.parametrize(("label", "operation", "mode"), CASES)
def test_both_pipelines_answer_alike(
    pair: tuple[RunningMock, RunningMock], label: str, operation: object, mode: GenerationMode
) -> None:
    compiled, stock = pair
    api = label.split(":", 1)[0]

    @given(case=operation.as_strategy(generation_mode=mode))  # type: ignore[attr-defined]
    @settings(max_examples=5, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    def check(case: object) -> None:
        _same_start(pair)
        answers = []
        for mock in (compiled, stock):
            kwargs = case.as_transport_kwargs(base_url=mock.urls[api], headers=AUTH[api])  # type: ignore[attr-defined]
            with httpx.Client(timeout=10) as client:
                request = client.build_request(
                    kwargs["method"],
                    kwargs["url"],
                    params=kwargs.get("params"),
                    headers=kwargs.get("headers"),
                    cookies=kwargs.get("cookies"),
                    content=_content(kwargs),
                )
                answers.append(_answer(client.send(request), mock.base_url))
        _compare(api, answers, request.content)

    check()


def _content(kwargs: dict) -> bytes | None:
    if "json" in kwargs:
        return json.dumps(kwargs["json"]).encode()
    data = kwargs.get("data")
    if isinstance(data, dict):
        from urllib.parse import urlencode

        return urlencode(data, doseq=True).encode()
    return data


# The compiled pipeline hands the handler the body its validator parsed instead of parsing the bytes again; these
# bodies are where the two parses could part: charsets, byte order marks, escapes that are not text. (Connexion
# reads a charset only when no space precedes it; the JSON validator ignores it either way, as get_body does.)
TITLE = "Gäste 🚪"
BODY_VARIANTS = [
    ("utf-8", "application/json", json.dumps({"title": TITLE, "expired_at": "2030-07-01 10:00"}).encode()),
    (
        "utf-8-raw",
        "application/json",
        json.dumps({"title": TITLE, "expired_at": "2030-07-01 10:00"}, ensure_ascii=False).encode(),
    ),
    (
        "charset-utf8",
        "application/json;charset=UTF8",
        json.dumps({"title": TITLE, "expired_at": "2030-07-01 10:00"}, ensure_ascii=False).encode(),
    ),
    (
        "charset-latin-1",
        "application/json;charset=latin-1",
        json.dumps({"title": "Gäste", "expired_at": "2030-07-01 10:00"}, ensure_ascii=False).encode("latin-1"),
    ),
    (
        "charset-latin-1-after-space",
        "application/json; charset=latin-1",
        json.dumps({"title": "Gäste", "expired_at": "2030-07-01 10:00"}, ensure_ascii=False).encode("latin-1"),
    ),
    (
        "latin-1-bytes-as-utf-8",
        "application/json",
        json.dumps({"title": "Gäste", "expired_at": "2030-07-01 10:00"}, ensure_ascii=False).encode("latin-1"),
    ),
    (
        "charset-utf-16",
        "application/json;charset=utf-16",
        json.dumps({"title": TITLE, "expired_at": "2030-07-01 10:00"}).encode("utf-16"),
    ),
    (
        "utf-16-unlabelled",
        "application/json",
        json.dumps({"title": "x", "expired_at": "2030-07-01 10:00"}).encode("utf-16-le"),
    ),
    ("charset-unknown", "application/json;charset=klingon", b'{"title": "x", "expired_at": "2030-07-01 10:00"}'),
    ("bom", "application/json", b'\xef\xbb\xbf{"title": "x", "expired_at": "2030-07-01 10:00"}'),
    ("lone-surrogate", "application/json", b'{"title": "x\\ud800", "expired_at": "2030-07-01 10:00"}'),
    ("surrogate-pair", "application/json", b'{"title": "door \\ud83d\\udeaa", "expired_at": "2030-07-01 10:00"}'),
    ("huge-integer", "application/json", b'{"title": "x", "expired_at": "2030-07-01 10:00", "n": 1' + b"0" * 40 + b"}"),
    ("nan", "application/json", b'{"title": "x", "expired_at": NaN}'),
    ("empty-content-type", "", b'{"title": "x", "expired_at": "2030-07-01 10:00"}'),
    ("content-type-params", "application/json;charset=utf-8;q=1", b'{"title": "x", "expired_at": "2030-07-01 10:00"}'),
    ("problem-json", "application/problem+json", b'{"title": "x", "expired_at": "2030-07-01 10:00"}'),
]


#: the bodies on which Connexion's defaults differ from the mock's validators, and how (see `DIFFERENCES`)
BODY_DIFFERENCES = {
    "charset-latin-1": "stock 500",
    "charset-latin-1-after-space": "stock 500",
    "latin-1-bytes-as-utf-8": "stock 500",
    "charset-unknown": "stock 500",
    "lone-surrogate": "stock 500",
    "utf-16-unlabelled": "JSON as bytes",
    "bom": "JSON as bytes",
    "nan": "field-less refusal",
}


@pytest.mark.parametrize(("name", "content_type", "content"), BODY_VARIANTS, ids=[v[0] for v in BODY_VARIANTS])
def test_both_pipelines_read_bodies_alike(
    pair: tuple[RunningMock, RunningMock], name: str, content_type: str, content: bytes
) -> None:
    _same_start(pair)
    answers = []
    for mock in pair:
        response = httpx.post(
            f"{mock.urls['vms']}/api/v1/intercom/180/codes",
            content=content,
            headers={**AUTH["vms"], "X-Client": "web", "X-UUID": "bodies", "Content-Type": content_type},
        )
        answers.append(_answer(response, mock.base_url))
    assert answers[0][0] < 500, answers[0]  # a body the validator let through must not break the handler
    assert _compare("vms", answers, content) == BODY_DIFFERENCES.get(name), answers


# Header parameters and credentials are read straight from the scope on the compiled pipeline: a repeated header
# must count as Starlette's Headers.get counts it (the first one).
REPEATED_HEADERS = [
    ("client-valid-then-invalid", [("X-Client", "web"), ("X-Client", "toaster")]),
    ("client-invalid-then-valid", [("X-Client", "toaster"), ("X-Client", "web")]),
    ("token-wrong-then-right", [("Authorization", "Bearer nope"), ("Authorization", "Bearer demo-vms-alice")]),
    ("token-right-then-wrong", [("Authorization", "Bearer demo-vms-alice"), ("Authorization", "Bearer nope")]),
]


@pytest.mark.parametrize("headers", [h for _, h in REPEATED_HEADERS], ids=[name for name, _ in REPEATED_HEADERS])
def test_both_pipelines_read_repeated_headers_alike(
    pair: tuple[RunningMock, RunningMock], headers: list[tuple[str, str]]
) -> None:
    _same_start(pair)
    base = [("Authorization", "Bearer demo-vms-alice"), ("X-Client", "web"), ("X-UUID", "repeated")]
    names = {name for name, _ in headers}
    sent = [(name, value) for name, value in base if name not in names] + headers
    answers = [
        _answer(httpx.get(f"{mock.urls['vms']}/api/v1/intercom/codes", headers=sent), mock.base_url) for mock in pair
    ]
    # Connexion's validator names no field, so the vendor cannot say which header it refused.
    assert _compare("vms", answers, None) in (None, "field-less refusal")
    # the first of the repeated headers decides
    assert (answers[0][0] == 200) == (headers[0][1] in ("web", "Bearer demo-vms-alice"))
