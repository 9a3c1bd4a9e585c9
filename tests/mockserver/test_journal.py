"""The journal keeps no credential: whatever a request or an answer carries, at any size, in memory or in Redis.

Each test sends a secret the way a client might (a password in a padded or cut-off body, a field spelt with
escapes, an OAuth code in a redirect, the control API's own credential documents) and then looks for it in
everything the journal holds: the stored entries themselves, not only what `GET /_mock/journal` shows.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.http.journal import Journal, JournalEntry, redact_body, redact_query
from mockserver.http.middleware import JOURNAL_BODY_LIMIT
from mockserver.shared_state import RedisJournal
from mockserver.testing import RunningMock, start_mock

PASSWORD = "alice-password"
LOGIN = {"X-Client": "web", "X-UUID": "journal-test"}
VMS = {"Authorization": "Bearer demo-vms-alice", **LOGIN}
REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(scope="module")
def mock() -> Iterator[RunningMock]:
    with start_mock(seed=8) as running:
        yield running


@pytest.fixture
def journal(mock: RunningMock) -> Iterator[Journal]:
    mock.runtime.journal.clear()
    yield mock.runtime.journal


def _kept(mock: RunningMock) -> str:
    """Everything the journal holds, as stored (not as the control API shows it)."""
    # An exchange is journaled once its answer is out, maybe after the client read it; a request answered on the
    # same event loop comes after that. (Through `mock.client` the app has finished before the answer comes back,
    # so this only matters to an exchange made some other way.)
    with mock.client("seam") as seam:
        seam.get("/health").raise_for_status()
    return repr(mock.runtime.journal._all())


def _login(mock: RunningMock, body: bytes, content_type: str = "application/json") -> httpx.Response:
    with mock.client("vms") as vms:
        return vms.post("/api/v1/token", headers={**LOGIN, "content-type": content_type}, content=body)


@pytest.mark.parametrize("padding", [0, 17_000, 40_000, 70_000, 200_000])
def test_a_password_is_never_kept_at_any_body_size(mock: RunningMock, journal: Journal, padding: int) -> None:
    body = json.dumps({"login": "alice@demo.test", "pad": "p" * padding, "password": PASSWORD}).encode()
    answer = _login(mock, body)
    assert answer.status_code in (200, 422)
    assert PASSWORD not in _kept(mock)
    assert "Bearer " not in _kept(mock)  # nor the token the answer carried


def test_a_password_cut_off_at_the_kept_size_is_not_kept_either(mock: RunningMock, journal: Journal) -> None:
    # The journal keeps a body's pieces while they fit in 64 KiB. A body that arrives in pieces (as a socket
    # delivers a big one) can have its kept part end inside the password: none of the password may be kept.
    start = json.dumps({"login": "alice@demo.test", "pad": ""})[:-2]
    for cut in range(1, len(PASSWORD)):
        pad = JOURNAL_BODY_LIMIT - len(start) - len('", "password": "') - cut
        body = (start + "p" * pad + '", "password": "' + PASSWORD + '"}').encode()
        pieces = [body[:JOURNAL_BODY_LIMIT], body[JOURNAL_BODY_LIMIT:]]
        assert pieces[0].endswith(PASSWORD[:cut].encode())
        with mock.client("vms") as vms:
            answer = vms.post(
                "/api/v1/token", headers={**LOGIN, "content-type": "application/json"}, content=iter(pieces)
            )
        assert answer.status_code in (200, 422)
    kept = _kept(mock)
    assert "ppp" in kept  # the first pieces were kept
    assert not [cut for cut in range(2, len(PASSWORD)) if '"password": "' + PASSWORD[:cut] in kept]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"login": "alice@demo.test", "p\\u0061ssword": "alice-password"}', "application/json"),
        (b'{"login": "alice@demo.test", "Password": "alice-password"}', "application/json"),
        (b"login=alice%40demo.test&p%61ssword=alice-password", "application/x-www-form-urlencoded"),
        (b"login=alice%40demo.test&password=alice%2Dpassword", "application/x-www-form-urlencoded"),
        (b'{"login": "alice@demo.test", "password": "alice-password", ', "application/json"),
        (b'{"login": "a=b&c", "password": "alice-password"', "application/json"),
        (b'{"login": "x", "p\\u0061ssword": "alice-password", ', "application/json"),
    ],
)
def test_a_password_spelt_another_way_is_not_kept(
    mock: RunningMock, journal: Journal, body: bytes, content_type: str
) -> None:
    _login(mock, body, content_type)
    assert "alice-password" not in _kept(mock) and "alice%2Dpassword" not in _kept(mock)


def test_the_oauth_code_in_a_redirect_is_not_kept(mock: RunningMock, journal: Journal) -> None:
    redirect = "https://journal.integrations.getseam.com/cb"
    seam = mock.client("seam")
    answer = seam.post(
        "/authorize",
        data={"email": "alice@demo.test", "password": PASSWORD, "redirect_uri": redirect, "state": "s1"},
    )
    assert answer.status_code == 302
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    assert code not in _kept(mock) and PASSWORD not in _kept(mock)
    entry = journal.query(operation_id="authorizeLogin")[-1].to_dict()
    assert entry["response_headers"]["location"] == f"{redirect}?code=***&state=s1"
    # The code still works for the client that received it.
    token = seam.post("/oauth/token", json={"code": code, "client_id": "seam", "client_secret": "seamsecret"})
    assert token.status_code == 200
    assert token.json()["access_token"] not in _kept(mock) and "seamsecret" not in _kept(mock)


def test_the_control_apis_credentials_and_state_are_not_kept(mock: RunningMock, journal: Journal) -> None:
    control = mock.client("control")
    credentials = control.get("/credentials").json()
    snapshot = control.get("/snapshot").json()
    assert control.put("/snapshot", json=snapshot).status_code == 204
    key = control.post("/credentials/magicline-keys", json={"studio_id": 1238735970}).json()["api_key"]
    owner = credentials["seam"]["owners"][0]["owner_id"]
    seam = control.post("/credentials/seam-tokens", json={"owner_id": owner}).json()["access_token"]
    vms = control.post("/credentials/vms-tokens", json={"user_id": 13}).json()["access_token"]
    kept = _kept(mock)
    secrets = [key, seam, vms, credentials["seam"]["client_secret"]]
    for owner in credentials["seam"]["owners"]:
        secrets += [owner["password"], owner["access_token"]]
    for user in credentials["vms"]:
        secrets += [user["password"], user["access_token"]]
    secrets += [k["api_key"] for k in credentials["magicline"]]
    assert [secret for secret in secrets if secret in kept] == []
    shown = {e.operation_id: e.to_dict() for e in journal.query(api="control")}
    assert shown["getCredentials"]["response_body"] == "***"
    assert shown["restoreSnapshot"]["request_body"] == "***"


def test_what_the_vendor_documents_in_an_answer_stays(mock: RunningMock, journal: Journal) -> None:
    answer = _login(mock, json.dumps({"login": "alice@demo.test", "password": PASSWORD}).encode()).json()
    assert PASSWORD not in _kept(mock)
    entry = journal.query(operation_id="login")[-1].to_dict()
    shown = json.loads(entry["response_body"])
    assert shown["user"]["access_token_id"] == answer["user"]["access_token_id"]
    assert shown["access_token"] == "***" and shown["user"]["login"] == "alice@demo.test"
    assert entry["request_headers"]["x-uuid"] == "journal-test"


def test_escapes_that_spell_no_text_are_kept_without_failing() -> None:
    # Lone surrogates, escaped: JSON the json module reads, text UTF-8 cannot write.
    for body in (rb'{"password": "x", "a": "\ud800"}', rb'{"password": "x", "a": "\udfff', rb'{"code": ["\ud83d"]}'):
        kept = redact_body(body)
        assert b'"x"' not in kept and b"***" in kept


def test_a_body_without_secrets_is_kept_as_sent() -> None:
    body = b'{"title": "Guest", "expired_at": "2030-02-01 10:00"}'
    assert redact_body(body) == body
    assert redact_body(b"") == b""
    assert redact_body(b"x" * 20_000) == b"x" * 16_384  # a long body is kept up to 16 KiB


def _entry(body: bytes) -> JournalEntry:
    return JournalEntry(
        id=0,
        at=datetime(2030, 1, 1, tzinfo=UTC),
        method="POST",
        path="/vms/api/v1/token",
        query=b"",
        status=200,
        duration_ms=1.0,
        operation_id="login",
        request_headers=[(b"authorization", b"Bearer demo-vms-alice"), (b"content-type", b"application/json")],
        request_body=body,
    )


def test_redis_keeps_entries_redacted() -> None:
    """Replicas share the journal in Redis, which anyone with access to the Redis reads raw."""
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    namespace = f"journal-test-{uuid.uuid4().hex}"
    journal = RedisJournal(REDIS_URL, namespace)
    try:
        journal.add(_entry(json.dumps({"login": "a", "pad": "p" * 30_000, "password": PASSWORD}).encode()))
        journal.add(_entry(json.dumps({"login": "a", "password": PASSWORD}).encode()))
        raw = b"".join(redis.Redis.from_url(REDIS_URL).lrange(f"{namespace}:journal", 0, -1))
        assert PASSWORD.encode() not in raw and b"demo-vms-alice" not in raw
        padded, small = (entry.to_dict() for entry in journal.query())
        assert small["request_headers"]["authorization"] == "***"
        assert json.loads(small["request_body"]) == {"login": "a", "password": "***"}
        assert len(padded["request_body"]) == 16_384  # redacted first, then cut to the kept size
    finally:
        journal.clear()
        journal.close()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2_000))
def test_any_bytes_are_kept_without_failing(body: bytes) -> None:
    assert len(redact_body(body)) <= 16_384
    assert redact_query(body) is not None


#: letters none of the field names, keys or other values use, so that any four of them in a row are the secret's
SECRET_TEXT = st.text(alphabet="BFGHJLMQUVXYZ", min_size=8, max_size=40)
OTHER = st.dictionaries(st.text("abcdefgh_", min_size=1, max_size=8), st.text("abc xyz=&", max_size=20), max_size=5)


@settings(max_examples=200, deadline=None)
@given(
    secret=SECRET_TEXT,
    name=st.sampled_from(["password", "Password", "client_secret", "ACCESS_TOKEN", "code", "api_key", "session_id"]),
    other=OTHER,
    depth=st.integers(0, 3),
    form=st.booleans(),
    cut=st.integers(0, 60),
)
def test_a_secret_value_never_survives(secret: str, name: str, other: dict, depth: int, form: bool, cut: int) -> None:
    """Anywhere in a JSON document, in a form, and in either cut off anywhere past the field's name."""
    if form:
        body = urlencode({**other, name: secret}).encode()
    else:
        document: object = {**other, name: secret}
        for _ in range(depth):
            document = {"wrapper": [document]}
        body = json.dumps(document).encode()
    name_ends = body.index(name.encode()) + len(name)
    for sent in (body, body[: name_ends + cut]):
        assert secret[:4].encode() not in redact_body(sent)  # nor any part of it left by the cut
