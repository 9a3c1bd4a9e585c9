"""A mock that serves kept answers to reads answers exactly as one that computes every answer.

Two mocks with the same seed and a frozen clock, one with the read cache and one without, receive the same
generated sequences of reads, writes and clock moves; every answer must be the same, byte for byte. The cases
that follow pin down when a kept answer is served and when it must not be.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.responses import Response

from mockserver.app import create_app
from mockserver.domain.building import Building
from mockserver.domain.clock import ManualClock
from mockserver.http.read_cache import MAX_BODY_BYTES, ReadCache
from mockserver.runtime import Settings
from mockserver.store import MemoryStore, SqliteStore
from mockserver.testing import RunningMock, start_mock

START = datetime(2030, 6, 1, 9, 0, tzinfo=UTC)
ML = {"X-API-KEY": "demo-magicline-mission"}
VMS = {"Authorization": "Bearer demo-vms-alice", "X-Client": "web", "X-UUID": "tests"}
SEAM = {"Authorization": "Bearer demo-seam-alice"}
HOUSE = "3043fde0-3c6d-4913-981f-2607f05fe74e"
BACK_DOOR = "1c33d4cf-e178-4c06-8a9a-aadd6dc5a804"
HARBOUR = "7d9e2b41-6a3c-4f58-9e21-4c8b0a7f5d90"
ALICE = "5f0c6f5e-3d59-4e7a-9b61-0f2e8f1a2b13"
MISSION = 1238735970
COMPARED_HEADERS = ("content-type", "content-length", "date", "retry-after")


class PassingTime:
    """Real time as the test lets it pass: both mocks' clocks run on it, and nothing is written when it does."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


@pytest.fixture(scope="module")
def passing() -> PassingTime:
    return PassingTime()


@pytest.fixture(scope="module")
def pair(passing: PassingTime) -> Iterator[tuple[RunningMock, RunningMock]]:
    limits = Settings(magicline_rate_limit_per_minute=10**6)
    with (
        start_mock(seed=3, settings=limits, clock=ManualClock(START, monotonic=passing)) as cached,
        start_mock(
            seed=3,
            settings=Settings(**limits.to_dict()),
            clock=ManualClock(START, monotonic=passing),
            read_cache=False,
        ) as computed,
    ):
        assert cached.app.read_cache is not None and computed.app.read_cache is None
        yield cached, computed


def _send(mock: RunningMock, client: httpx.Client, action: tuple[Any, ...]) -> httpx.Response:
    kind, *args = action
    urls = mock.urls
    if kind == "ml_code":
        return client.get(f"{urls['magicline']}/v1/customers/{args[0]}/access-code", headers=ML)
    if kind == "ml_customer":
        return client.get(f"{urls['magicline']}/v1/customers/{args[0]}", headers=ML)
    if kind == "ml_customers":
        return client.get(f"{urls['magicline']}/v1/customers", params={"sliceSize": args[0]}, headers=ML)
    if kind == "ml_medium":
        body = {"type": "PIN", "value": args[1]}
        return client.post(f"{urls['magicline']}/v1/customers/{args[0]}/access-mediums", json=body, headers=ML)
    if kind == "vms_list":
        page, per_page, host = args
        headers = VMS | ({"Host": host} if host else {})
        return client.get(
            f"{urls['vms']}/api/v1/intercom/codes", params={"page": page, "per_page": per_page}, headers=headers
        )
    if kind == "vms_create":
        intercom, minutes = args
        expiry = (mock.clock.now() + timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M")
        body = {"title": f"Guest {minutes}", "expired_at": expiry}
        return client.post(f"{urls['vms']}/api/v1/intercom/{intercom}/codes", json=body, headers=VMS)
    if kind == "vms_delete":
        return client.request("DELETE", f"{urls['vms']}/api/v1/intercom/codes", json={"ids": [args[0]]}, headers=VMS)
    if kind == "seam_codes":
        return client.get(f"{urls['seam']}/access_codes", params={"intercom_id": args[0]}, headers=SEAM)
    if kind == "seam_intercoms":
        return client.get(f"{urls['seam']}/door_locks", headers=SEAM)
    if kind == "seam_unlock":
        body = {"unlock_time": args[1]}
        return client.post(f"{urls['seam']}/intercoms/{args[0]}/unlock", json=body, headers=SEAM)
    if kind == "advance":
        return client.post(f"{urls['control']}/clock/advance", json={"seconds": args[0]})
    raise AssertionError(kind)


def _answer(mock: RunningMock, response: httpx.Response) -> tuple[int, str, dict[str, str]]:
    netloc = mock.base_url.split("://", 1)[1]
    headers = {name: response.headers[name] for name in COMPARED_HEADERS if name in response.headers}
    return response.status_code, response.text.replace(netloc, "HOST"), headers


# Few values per parameter, so that the same read comes back after the state or the time has moved on.
READS = st.one_of(
    st.tuples(st.just("ml_code"), st.sampled_from([1001, 9999])),
    st.tuples(st.just("ml_customer"), st.just(1002)),
    st.tuples(st.just("ml_customers"), st.just(50)),
    st.tuples(st.just("vms_list"), st.sampled_from([1, 2]), st.just(2), st.sampled_from([None, "other.test:81"])),
    st.tuples(st.just("seam_codes"), st.sampled_from([HOUSE, BACK_DOOR])),
    st.tuples(st.just("seam_intercoms")),
)
WRITES = st.one_of(
    st.tuples(st.just("ml_medium"), st.just(1002), st.from_regex(r"[0-9]{4,6}", fullmatch=True)),
    st.tuples(st.just("vms_create"), st.sampled_from([180, 181]), st.sampled_from([-3, 1, 2, 5, 90])),
    st.tuples(st.just("vms_delete"), st.integers(1000, 1006)),
    st.tuples(st.just("seam_unlock"), st.just(HOUSE), st.sampled_from([1, 5])),
)
TIME = st.one_of(
    st.tuples(st.just("advance"), st.sampled_from([60, 301, 86400 * 2])),
    st.tuples(st.just("pass"), st.sampled_from([0.5, 30, 61, 120, 301, 86400 + 300])),
)
ACTIONS = st.one_of(READS, READS, WRITES, TIME, TIME)

#: sequences that must always run: each one meets a rule that ends a kept answer without any write
EXPIRING = [
    [("ml_code", 1001), ("pass", 301), ("ml_code", 1001)],
    [("vms_create", 181, 1), ("vms_list", 1, 2, None), ("pass", 120), ("vms_list", 1, 2, None)],
    [("vms_create", 181, 1), ("pass", 120), ("vms_list", 1, 2, None), ("pass", 86400 + 300), ("vms_list", 1, 2, None)],
    [("vms_create", 180, 1), ("seam_codes", HOUSE), ("pass", 86400 + 300), ("seam_codes", HOUSE)],
]


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=st.lists(ACTIONS, min_size=1, max_size=25))
@example(actions=EXPIRING[0])
@example(actions=EXPIRING[1])
@example(actions=EXPIRING[2])
@example(actions=EXPIRING[3])
def test_kept_answers_are_the_computed_answers(
    pair: tuple[RunningMock, RunningMock], passing: PassingTime, actions: list[tuple]
) -> None:
    cached, computed = pair
    # In-process clients (`RunningMock.client`): both mocks get the same requests without a socket or TLS set-up.
    with cached.client(timeout=10) as to_cached, computed.client(timeout=10) as to_computed:
        for mock, client in ((cached, to_cached), (computed, to_computed)):
            assert client.post(f"{mock.urls['control']}/reset").status_code == 204
        assert cached.clock.now() == computed.clock.now()
        for action in actions:
            if action[0] == "pass":
                passing.seconds += action[1]  # time passes for both mocks, with nothing written
                continue
            # Every read is asked twice in a row, so that the second one can be a kept answer.
            for _ in range(2 if action[0] in ("ml_code", "vms_list", "seam_codes") else 1):
                expected = _answer(computed, _send(computed, to_computed, action))
                assert _answer(cached, _send(cached, to_cached, action)) == expected, action


# -- when a kept answer is served, and when not --------------------------------------------------------------


@pytest.fixture
def time_passing() -> PassingTime:
    return PassingTime()


@pytest.fixture
def mock(time_passing: PassingTime) -> Iterator[RunningMock]:
    clock = ManualClock(START, monotonic=time_passing)
    with start_mock(seed=0, clock=clock, validate_responses=True) as running:
        yield running


def _access_code(mock: RunningMock, client: httpx.Client, key: str = ML["X-API-KEY"]) -> httpx.Response:
    return client.get(f"{mock.urls['magicline']}/v1/customers/1001/access-code", headers={"X-API-KEY": key})


def test_a_repeated_read_is_served_kept_until_the_qr_code_expires(mock: RunningMock, time_passing: PassingTime) -> None:
    cache = mock.app.read_cache
    assert cache is not None
    with httpx.Client() as client:
        first = _access_code(mock, client)  # draws the QR code: a write, so this answer is not kept
        assert (_access_code(mock, client).json(), cache.hits, len(cache)) == (first.json(), 0, 1)
        assert (_access_code(mock, client).json(), cache.hits) == (first.json(), 1)
        time_passing.seconds += 299
        assert (_access_code(mock, client).json(), cache.hits) == (first.json(), 2)
        time_passing.seconds += 1  # the code's validity is over: a new one, not the kept one
        fresh = _access_code(mock, client).json()
    assert fresh["content"] != first.json()["content"]
    assert fresh["expiresAt"] > first.json()["expiresAt"]


def test_a_write_ends_every_kept_answer(mock: RunningMock) -> None:
    cache = mock.app.read_cache
    assert cache is not None
    list_url = f"{mock.urls['vms']}/api/v1/intercom/codes"
    with httpx.Client() as client:
        before = client.get(list_url, headers=VMS).json()
        assert client.get(list_url, headers=VMS).json() == before and cache.hits == 1
        expiry = (mock.clock.now() + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")
        created = client.post(
            f"{mock.urls['vms']}/api/v1/intercom/180/codes",
            json={"title": "Courier", "expired_at": expiry},
            headers=VMS,
        ).json()
        after = client.get(list_url, headers=VMS).json()
    assert after["data"][0]["id"] == created["id"]
    assert after["meta"]["total"] == before["meta"]["total"] + 1


def test_a_listed_code_shows_expired_once_its_time_has_passed(mock: RunningMock, time_passing: PassingTime) -> None:
    list_url = f"{mock.urls['vms']}/api/v1/intercom/codes"
    with httpx.Client() as client:
        expiry = (mock.clock.now() + timedelta(minutes=2)).strftime("%Y-%m-%d %H:%M")
        client.post(
            f"{mock.urls['vms']}/api/v1/intercom/181/codes", json={"title": "Soon", "expired_at": expiry}, headers=VMS
        )
        assert client.get(list_url, headers=VMS).json()["data"][0]["is_expired"] is False
        assert client.get(list_url, headers=VMS).json()["data"][0]["is_expired"] is False
        time_passing.seconds += 180
        assert client.get(list_url, headers=VMS).json()["data"][0]["is_expired"] is True
        time_passing.seconds += 24 * 3600  # a day after its expiry the code is deleted
        assert client.get(list_url, headers=VMS).json()["data"][0]["title"] != "Soon"


def test_auth_limits_and_faults_run_before_a_kept_answer(mock: RunningMock) -> None:
    cache = mock.app.read_cache
    assert cache is not None
    with httpx.Client() as client:
        assert _access_code(mock, client).status_code == 200  # draws the QR code
        assert (_access_code(mock, client).status_code, len(cache)) == (200, 1)  # kept from here on
        assert _access_code(mock, client, key="not-a-key").status_code == 401
        fault = {"api": "magicline", "operation_id": "getCustomerAccessCode", "status": 503, "count": 1}
        assert client.post(f"{mock.urls['control']}/faults", json=fault).status_code == 201
        assert _access_code(mock, client).status_code == 503
        assert (_access_code(mock, client).status_code, cache.hits) == (200, 1)
        limited = client.patch(f"{mock.urls['control']}/settings", json={"magicline_rate_limit_per_minute": 5})
        assert limited.status_code == 200
        assert (_access_code(mock, client).status_code, cache.hits) == (200, 2)
        assert _access_code(mock, client).status_code == 429


@pytest.mark.parametrize("validate_responses", [False, True])
def test_a_kept_answer_carries_no_headers_another_request_was_given(validate_responses: bool) -> None:
    # A browser's request takes the full chain, whose CORS middleware adds its headers to the answer it sends.
    with start_mock(seed=0, validate_responses=validate_responses) as mock, httpx.Client() as client:
        url = f"{mock.urls['seam']}/access_codes"
        browser = client.get(url, params={"intercom_id": HOUSE}, headers=SEAM | {"Origin": "https://app.example"})
        assert browser.headers["access-control-allow-origin"] == "*"
        for _ in range(3):
            browser = client.get(url, params={"intercom_id": HOUSE}, headers=SEAM | {"Origin": "https://app.example"})
            plain = client.get(url, params={"intercom_id": HOUSE}, headers=SEAM)
            assert "access-control-allow-origin" not in plain.headers
            assert browser.headers.get_list("access-control-allow-origin") == ["*"]
        assert mock.app.read_cache is not None and mock.app.read_cache.hits >= 4


def test_nothing_is_kept_without_a_revision_or_when_switched_off() -> None:
    class UnseenWrites(MemoryStore):
        revision = None  # type: ignore[assignment]

    assert create_app(store=UnseenWrites(), seed=0).read_cache is None
    assert create_app(seed=0, read_cache=False).read_cache is None
    assert create_app(seed=0, pipeline="connexion").read_cache is None


# -- the store's revision ------------------------------------------------------------------------------------


def test_a_kept_credential_verdict_ends_with_the_credential(mock: RunningMock) -> None:
    control = mock.urls["control"]
    with httpx.Client() as client:
        seam = client.post(f"{control}/credentials/seam-tokens", json={"owner_id": ALICE}).json()["access_token"]
        key = client.post(f"{control}/credentials/magicline-keys", json={"studio_id": MISSION}).json()["api_key"]
        seam_list = f"{mock.urls['seam']}/access_codes"
        customer = f"{mock.urls['magicline']}/v1/customers/1001"
        for _ in range(2):  # the second is answered from the kept verdict
            assert client.get(seam_list, params={"intercom_id": HOUSE}, headers=_bearer(seam)).status_code == 200
            assert client.get(customer, headers={"X-API-KEY": key}).status_code == 200
        assert client.post(f"{control}/reset").status_code == 204  # minted credentials are gone
        refused = client.get(seam_list, params={"intercom_id": HOUSE}, headers=_bearer(seam))
        assert (refused.status_code, refused.json()["error_id"]) == (401, "UNAUTHORIZED")
        assert client.get(customer, headers={"X-API-KEY": key}).status_code == 401


@pytest.mark.parametrize("read_cache", [True, False])
def test_credentials_are_looked_up_again_only_after_a_write(read_cache: bool) -> None:
    with start_mock(seed=0, read_cache=read_cache) as running, httpx.Client() as client:
        building = running.runtime.building
        lookups: list[str] = []
        look_up = building.user_for_token

        def counted(api: str, token: str) -> Any:
            lookups.append(token)
            return look_up(api, token)

        building.user_for_token = counted  # type: ignore[method-assign]
        seam_list = f"{running.urls['seam']}/access_codes"
        for _ in range(3):
            assert client.get(seam_list, params={"intercom_id": HOUSE}, headers=SEAM).status_code == 200
        assert len(lookups) == (1 if read_cache else 3)
        expiry = (running.clock.now() + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")
        created = client.post(
            f"{running.urls['vms']}/api/v1/intercom/180/codes",
            json={"title": "Courier", "expired_at": expiry},
            headers=VMS,
        )
        assert created.status_code == 200
        assert client.get(seam_list, params={"intercom_id": HOUSE}, headers=SEAM).status_code == 200
        # The write is VMS's (its own token was looked up); Seam's token is looked up again after it.
        assert lookups.count("demo-seam-alice") == (2 if read_cache else 4)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    opened = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "state.db")
    yield opened
    opened.close()


def test_every_change_of_content_changes_the_revision(store: Any) -> None:
    seen = [store.revision]

    def changed() -> bool:
        seen.append(store.revision)
        return seen[-1] != seen[-2]

    store.put("code", "1", {"n": 1}, index={"by_intercom": ("180", 1)})
    assert changed()
    store.get("code", "1")
    store.page("by_intercom", "180", limit=10)
    store.count("by_intercom", "180")
    assert not changed()
    store.next_id("codes")
    assert changed()
    with pytest.raises(RuntimeError), store.transaction():
        store.put("code", "2", {"n": 2})
        raise RuntimeError
    assert changed() and store.get("code", "2") is None
    state = store.dump()
    store.delete("code", "1")
    assert changed()
    store.load(state)
    assert changed()
    store.clear()
    assert changed()


def test_another_connections_commit_changes_the_sqlite_revision(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    store.put("code", "1", {"n": 1})
    before = store.revision
    other = sqlite3.connect(tmp_path / "state.db")
    other.execute("UPDATE records SET data = '{\"n\": 2}' WHERE kind = 'code'")
    other.commit()
    other.close()
    assert store.revision != before
    store.close()


# -- the cache on its own ------------------------------------------------------------------------------------


@pytest.fixture
def parts() -> tuple[MemoryStore, ManualClock, ReadCache]:
    store, clock = MemoryStore(), ManualClock(START, frozen=True)
    return store, clock, ReadCache(store, clock, Building(store, clock), size=2)


def test_an_answer_made_while_the_store_changed_is_not_kept(parts: tuple[MemoryStore, ManualClock, ReadCache]) -> None:
    store, _, cache = parts
    started = cache.moment()
    store.put("code", "1", {"n": 1})  # another thread's write while the handler ran
    cache.put("key", Response(b"old"), math.inf, started)
    assert cache.get("key") is None
    started = cache.moment()
    cache.put("key", Response(b"new"), math.inf, started)
    assert cache.get("key").body == b"new"  # type: ignore[union-attr]


def test_kept_answers_are_bounded_in_number_and_size(parts: tuple[MemoryStore, ManualClock, ReadCache]) -> None:
    _, _, cache = parts
    for key in ("a", "b", "c"):
        cache.put(key, Response(key.encode()), math.inf, cache.moment())
    assert (cache.get("a"), len(cache)) == (None, 2)  # the least recently used went first
    cache.put("big", Response(b"x" * (MAX_BODY_BYTES + 1)), math.inf, cache.moment())
    assert cache.get("big") is None


def test_an_answer_is_kept_only_inside_its_time(parts: tuple[MemoryStore, ManualClock, ReadCache]) -> None:
    _, clock, cache = parts
    cache.put("past", Response(b"p"), clock.timestamp(), cache.moment())
    assert cache.get("past") is None
    cache.put("minute", Response(b"m"), clock.timestamp() + 60, cache.moment())
    clock.advance(59)
    assert cache.get("minute") is not None  # a frozen clock moved by hand writes nothing to this bare store
    clock.advance(1)
    assert cache.get("minute") is None


def test_what_a_middleware_adds_to_a_sent_answer_stays_out_of_the_kept_one(
    parts: tuple[MemoryStore, ManualClock, ReadCache],
) -> None:
    _, _, cache = parts
    cache.put("key", Response(b"{}", media_type="application/json"), math.inf, cache.moment())
    first = cache.get("key")
    assert first is not None
    first.raw_headers.append((b"access-control-allow-origin", b"*"))
    second = cache.get("key")
    assert second is not None and (b"access-control-allow-origin", b"*") not in second.raw_headers
    assert (second.body, second.status_code, second.media_type) == (b"{}", 200, "application/json")
