"""A run is safe against a real server: read through the mock's journal and state, it changes only what it
created and removes it, sends no successful write under --read-only, opens no door without --allow-door-unlock,
and refuses to start (exit 2, naming the option) when a test id cannot be used."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import mockserver.testing as mock_testing
from conformance import Options, Summary, run
from mockserver.runtime import Settings
from tests.conformance.support import disposable_code, mock_target

FAST = Options(seed=0, max_examples=3, max_steps=4)
WRITES = ("POST", "PUT", "DELETE", "PATCH")
#: the writes a run needs and that change nothing in the building
HARMLESS = {"login", "authorizeChannel", "exchangeToken"}
DOORS = {"openDoor", "unlockIntercom"}


@pytest.fixture
def mock() -> Iterator[mock_testing.RunningMock]:
    with mock_testing.start_mock(seed=0, settings=Settings(journal_size=200_000)) as running:
        yield running


def journal(mock: mock_testing.RunningMock, methods: tuple[str, ...] = (*WRITES, "GET")) -> list[dict[str, Any]]:
    """The journal's entries of these methods (at most 10,000 each, which a small run stays under)."""
    entries = []
    for method in methods:
        with mock.client("control") as control:
            answer = control.get("/journal", params={"limit": 10_000, "method": method})
        assert answer.status_code == 200, answer.text
        entries += answer.json()["entries"]
    return entries


def state(mock: mock_testing.RunningMock) -> dict[str, dict[str, Any]]:
    """What a run could change: codes, keypads, customers and their mediums, by kind and key."""
    with mock.client("control") as control:
        records = control.get("/snapshot").json()["state"]["records"]
    kinds = ("code", "code_digits", "keypad", "medium_value")
    found: dict[str, dict[str, Any]] = {kind: {} for kind in (*kinds, "customer")}
    for record in records:
        if record["kind"] in kinds and not record["data"].get("revoked"):
            # (a revoked keypad entry is the device's own memory of a deleted code, until it would have expired)
            found[record["kind"]][record["key"]] = record["data"]
        elif record["kind"] == "customer":
            found["customer"][record["key"]] = record["data"].get("mediums")
    return found


def successful_writes(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e["method"] in WRITES and 200 <= e["status"] < 300 and e.get("api") != "control"]


@pytest.mark.slow
@pytest.mark.parametrize("api", ["vms", "seam", "magicline"])
def test_a_default_run_changes_only_what_it_created_and_removes_it(mock: mock_testing.RunningMock, api: str) -> None:
    extra = {"disposable_code_id": disposable_code(mock)} if api == "seam" else {}
    before = state(mock)
    summary = Summary().consume(run(mock_target(mock, api, **extra), FAST))
    assert summary.exit_code == 0, summary.render()
    after = state(mock)
    disposable = extra.get("disposable_code_id")
    for kind in before:
        if api == "seam" and kind in ("code", "code_digits", "keypad"):
            continue  # the disposable code is the one thing a Seam run may delete; checked below
        assert after[kind] == before[kind], kind
    writes = successful_writes(journal(mock))
    assert writes, "the run wrote nothing, so this test proves nothing"
    creates = ("createCode", "addAccessMediums", "addAccessMedium")
    created = {json.loads(e["response_body"])["id"] for e in writes if e["operation_id"] in creates}
    for entry in writes:
        operation = entry["operation_id"]
        assert operation not in DOORS, entry
        if operation in ("deleteCodes",):
            assert set(_ids(entry)) <= created, entry
        if operation in ("updateAccessMediums", "deleteAccessMediums"):
            assert int(entry["path"].rsplit("/", 1)[-1]) in created, entry
        if operation == "deleteAccessCode":
            assert entry["path"].endswith(str(disposable)), entry


def _ids(entry: dict[str, Any]) -> list[Any]:
    body = json.loads(entry["request_body"] or "{}")
    return body.get("ids", []) if isinstance(body, dict) else []


@pytest.mark.slow
@pytest.mark.parametrize("api", ["vms", "seam", "magicline"])
def test_read_only_runs_and_sends_no_successful_write(mock: mock_testing.RunningMock, api: str) -> None:
    summary = Summary().consume(run(mock_target(mock, api), FAST.replace(read_only=True)))
    assert summary.exit_code == 0, summary.render()
    writes = [e for e in successful_writes(journal(mock)) if e["operation_id"] not in HARMLESS]
    assert writes == []
    assert [e for e in journal(mock) if e["method"] in ("GET", "HEAD")]


@pytest.mark.slow
@pytest.mark.parametrize("api", ["vms", "seam"])
def test_doors_open_only_with_allow_door_unlock(mock: mock_testing.RunningMock, api: str) -> None:
    Summary().consume(run(mock_target(mock, api), FAST))
    assert not [e for e in journal(mock) if e["operation_id"] in DOORS]
    with mock.client("control") as control:
        control.delete("/journal").raise_for_status()
    summary = Summary().consume(run(mock_target(mock, api), FAST.replace(allow_door_unlock=True)))
    assert summary.exit_code == 0, summary.render()
    opened = [e for e in journal(mock) if e["operation_id"] in DOORS and e["status"] in (200, 204)]
    assert opened


@pytest.mark.parametrize(
    ("api", "change", "flag"),
    [
        ("vms", {"intercom_id": 190}, "--intercom-id"),
        ("magicline", {"customer_id": 2001}, "--customer-id"),
        ("seam", {"disposable_code_id": "00000000-0000-4000-8000-000000000000"}, "--disposable-code-id"),
    ],
)
def test_a_test_id_that_cannot_be_used_stops_the_run_naming_the_option(
    mock: mock_testing.RunningMock, api: str, change: dict[str, Any], flag: str
) -> None:
    summary = Summary().consume(run(mock_target(mock, api, **change), FAST))
    assert summary.exit_code == 2
    result = summary.targets[api]
    assert flag in (result.error or "") and not result.findings


@pytest.mark.parametrize(("api", "other"), [("vms", "seam"), ("seam", "magicline"), ("magicline", "vms")])
def test_a_base_url_of_another_api_stops_the_run_saying_so(
    mock: mock_testing.RunningMock, api: str, other: str
) -> None:
    target = mock_target(mock, api)
    summary = Summary().consume(run(target.__class__(**{**target.__dict__, "base_url": mock.urls[other]}), FAST))
    assert summary.exit_code == 2
    assert "does not look like" in (summary.targets[api].error or "")
