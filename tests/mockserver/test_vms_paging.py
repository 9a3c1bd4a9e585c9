"""VMS pages codes as Laravel's LengthAwarePaginator does: every `links`/`meta` field on every page, the link
window with its `...` gaps on long lists, and pages past the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mockserver.testing import RunningMock, start_mock
from mockserver.vendors.vms import paginator

VMS = {"Authorization": "Bearer demo-vms-alice", "X-Client": "web", "X-UUID": "paging"}
PATH = "https://vms.local/api/v1/intercom/codes"


def _labels(page: dict) -> list[str]:
    return [link["label"] for link in page["meta"]["links"]]


def test_the_seed_page_exactly() -> None:
    page = paginator([{"id": 1388}], total=1, page=1, per_page=25, path=PATH)
    assert page["links"] == {"first": f"{PATH}?page=1", "last": f"{PATH}?page=1", "prev": None, "next": None}
    assert page["meta"] == {
        "current_page": 1,
        "from": 1,
        "last_page": 1,
        "path": PATH,
        "per_page": 25,
        "to": 1,
        "total": 1,
        "links": [
            {"url": None, "label": "pagination.previous", "active": False},
            {"url": f"{PATH}?page=1", "label": "1", "active": True},
            {"url": None, "label": "pagination.next", "active": False},
        ],
    }


@pytest.mark.parametrize(
    ("page", "last", "labels"),
    [
        (1, 13, [str(n) for n in range(1, 14)]),  # short lists show every page
        (1, 20, [*map(str, range(1, 11)), "...", "19", "20"]),  # near the start
        (7, 20, [*map(str, range(1, 11)), "...", "19", "20"]),
        (10, 20, ["1", "2", "...", "7", "8", "9", "10", "11", "12", "13", "...", "19", "20"]),  # a full slider
        (14, 20, ["1", "2", "...", *map(str, range(11, 21))]),  # near the end
        (20, 20, ["1", "2", "...", *map(str, range(11, 21))]),
    ],
)
def test_the_link_window(page: int, last: int, labels: list[str]) -> None:
    items = [{}] * 10
    result = paginator(items, total=last * 10, page=page, per_page=10, path=PATH)
    assert _labels(result) == ["pagination.previous", *labels, "pagination.next"]
    gaps = [link for link in result["meta"]["links"] if link["label"] == "..."]
    assert all(link == {"url": None, "label": "...", "active": False} for link in gaps)
    active = [link["label"] for link in result["meta"]["links"] if link["active"]]
    assert active == [str(page)]


def test_a_page_past_the_end_is_empty_but_well_formed() -> None:
    page = paginator([], total=30, page=5, per_page=25, path=PATH)
    assert page["data"] == [] and page["meta"]["from"] is None and page["meta"]["to"] is None
    assert page["meta"]["current_page"] == 5 and page["meta"]["last_page"] == 2
    assert page["links"]["prev"] == f"{PATH}?page=4" and page["links"]["next"] is None
    assert not any(link["active"] for link in page["meta"]["links"])


@pytest.fixture(scope="module")
def mock() -> Iterator[RunningMock]:
    with start_mock(seed=2) as running:
        with running.client("vms", headers=VMS) as client:
            for number in range(58):  # with the fixture's own two codes: 60 codes, three pages of 25
                response = client.post(
                    "/api/v1/intercom/181/codes", json={"title": f"guest {number}", "expired_at": "2099-01-01 00:00"}
                )
                assert response.status_code == 200
        yield running


def test_walking_every_page_sees_every_code_once(mock: RunningMock) -> None:
    vms = mock.client("vms")
    seen: list[int] = []
    url: str | None = mock.urls["vms"] + "/api/v1/intercom/codes"
    pages = 0
    while url:
        page = vms.get(url, headers=VMS).json()
        meta = page["meta"]
        assert meta["total"] == 60 and meta["last_page"] == 3 and meta["per_page"] == 25
        assert meta["from"] == (meta["current_page"] - 1) * 25 + 1
        assert meta["to"] == meta["from"] + len(page["data"]) - 1
        assert page["links"]["last"].endswith("?page=3")
        seen += [code["id"] for code in page["data"]]
        url = page["links"]["next"]
        pages += 1
    assert pages == 3 and len(seen) == len(set(seen)) == 60
    assert seen == sorted(seen, reverse=True)  # newest first


def test_per_page_and_its_limits(mock: RunningMock) -> None:
    url = mock.urls["vms"] + "/api/v1/intercom/codes"
    vms = mock.client("vms")
    assert len(vms.get(url, headers=VMS, params={"per_page": 100}).json()["data"]) == 60
    too_many = vms.get(url, headers=VMS, params={"per_page": 101})
    assert too_many.status_code == 422 and set(too_many.json()["errors"]) == {"per_page"}
    assert vms.get(url, headers=VMS, params={"page": 0}).json()["errors"]["page"]
