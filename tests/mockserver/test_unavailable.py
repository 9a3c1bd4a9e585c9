"""A shared building that cannot be reached, or stays contended past the deadline, gets each operation's declared
answer in the vendor's body (`mockserver.http.errors.unavailable`), never an undeclared status, and changes nothing."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

import mockserver.domain.unit
from mockserver.contracts import load_contract
from mockserver.store.base import StoreUnavailable
from mockserver.store.redis_store import RedisStore
from mockserver.testing import RunningMock, start_mock
from tests.mockserver.contract_audit import assert_conforms
from tests.mockserver.store.test_store_contract import REDIS_URL, needs_redis
from tests.mockserver.test_documented_errors import START, VALID

pytestmark = needs_redis

#: what each vendor answers an unavailable building (see the module docstring of `mockserver.http.errors.unavailable`)
EXPECTED = {"magicline": 503, "vms": 429}


@pytest.fixture(scope="module")
def mock() -> Iterator[RunningMock]:
    namespace = f"test-unavailable-{uuid.uuid4().hex}"
    with start_mock(seed=9, start=START, state_path=f"{REDIS_URL}?namespace={namespace}") as running:
        yield running
    store = RedisStore(REDIS_URL, namespace=namespace)
    store.clear()
    store.close()


@pytest.fixture
def client(mock: RunningMock) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock.base_url, timeout=30) as client:
        yield client


def _store(mock: RunningMock) -> RedisStore:
    store = mock.runtime.building.store
    assert isinstance(store, RedisStore)
    return store


#: operations that read nothing of the building answer as usual
STATELESS = {("seam", "authorizePage"), ("vms", "getWsUrl")}


def _expected(api: str, operation: str) -> int:
    if (api, operation) in STATELESS:
        return 200
    if api == "seam":
        declared = load_contract("seam").operation(operation).statuses
        return next(status for status in (503, 500, 400) if status in declared)
    return EXPECTED[api]


def _request(client: httpx.Client, api: str, operation: str, code: str) -> httpx.Response:
    method, path, kwargs = VALID[(api, operation)]
    return client.request(method, path.format(code=code), **kwargs)


def _a_code(client: httpx.Client) -> str:
    answer = client.get(
        "/seam/access_codes",
        headers={"Authorization": "Bearer demo-seam-alice"},
        params={"intercom_id": "3043fde0-3c6d-4913-981f-2607f05fe74e"},
    )
    return answer.json()["access_codes"][0]["access_code_id"]


@contextlib.contextmanager
def _redis_out_of_reach(mock: RunningMock, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every call the mock's Redis store makes, blocking or not, fails as with Redis out of reach."""

    def out_of_reach(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("Redis at redis://nowhere: Connection refused")

    async def fetch_out_of_reach(*args: Any, **kwargs: Any) -> Any:
        raise redis.ConnectionError("Connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(_store(mock), "_call", out_of_reach)
        patch.setattr(_store(mock), "_fetch", fetch_out_of_reach)
        yield


WITH_BODY = [(api, op) for (api, op), (method, _, _) in VALID.items() if method != "HEAD" and op != "health"]


@pytest.mark.parametrize(("api", "operation"), WITH_BODY, ids=[f"{a}-{o}" for a, o in WITH_BODY])
def test_redis_out_of_reach_answers_a_declared_status_in_the_vendors_body(
    api: str, operation: str, mock: RunningMock, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = _a_code(client)
    before = client.get("/_mock/snapshot").json()["state"]

    with _redis_out_of_reach(mock, monkeypatch):
        answer = _request(client, api, operation, code)
        # Reading no state, the health check still answers.
        assert client.get("/seam/health").status_code == 200
    assert answer.status_code == _expected(api, operation), answer.text[:300]
    assert answer.status_code in load_contract(api).operation(operation).statuses
    assert_conforms(answer)
    if answer.status_code == 429:
        assert answer.headers["retry-after"] == "1"
    assert client.get("/_mock/snapshot").json()["state"] == before


@pytest.mark.parametrize(
    ("api", "operation"),
    [
        ("magicline", "addAccessMediums"),
        ("seam", "unlockIntercom"),
        ("seam", "deleteAccessCode"),
        ("vms", "createCode"),
    ],
)
def test_a_write_contended_past_the_deadline_answers_a_declared_status_and_keeps_nothing(
    api: str, operation: str, mock: RunningMock, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = _a_code(client)
    before = client.get("/_mock/snapshot").json()["state"]
    store = _store(mock)

    def always_first(self: RedisStore) -> list[Any] | None:
        # Another replica "committed first" every time: the commit is refused with nothing new to catch up on.
        return [self._rev] if self._dirty or self._dirty_seqs or self._replaced else None

    with monkeypatch.context() as patch:
        patch.setattr(mockserver.domain.unit, "COMMIT_DEADLINE_S", 0.05)
        patch.setattr(RedisStore, "_commit", always_first)
        answer = _request(client, api, operation, code)
    assert answer.status_code == _expected(api, operation), answer.text[:300]
    assert_conforms(answer)
    assert client.get("/_mock/snapshot").json()["state"] == before
    assert store.revision is not None


KEY = {"X-API-KEY": "demo-magicline-mission"}


def test_a_magicline_head_key_check_out_of_reach_answers_unavailable_not_500(
    mock: RunningMock, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # HEAD only checks the key, before any routing: the key cannot be looked up, so the answer is Magicline's
    # "unavailable" (an empty body, as every HEAD answer), never a 500 and never a false 401.
    with _redis_out_of_reach(mock, monkeypatch):
        answer = client.head("/magicline/v1/customers/1001", headers=KEY)
    assert answer.status_code == 503 and answer.content == b""
    assert client.head("/magicline/v1/customers/1001", headers=KEY).status_code == 200
