"""Random sequences of calls across the three APIs, compared with a small model of the building.

The model is written here from the vendors' documented rules and imports nothing from the mock's domain, so a
mock that forgets, duplicates, resurrects or leaks data makes this test fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mockserver.testing import RunningMock, start_mock

START = datetime(2034, 2, 1, 6, 0, tzinfo=UTC)
GRACE = timedelta(hours=24)
USERS = {13: "Bearer demo-vms-alice", 14: "Bearer demo-vms-bob"}
OWNER_TOKENS = {13: "Bearer demo-seam-alice", 14: "Bearer demo-seam-bob"}
INTERCOMS = {180: 13, 181: 13, 190: 14}  # intercom -> owner, as the demo building has them
STUDIO_KEYS = {"mission": "demo-magicline-mission", "harbour": "demo-magicline-harbour"}
CUSTOMERS = {"mission": [1001, 1002, 1003, 1004], "harbour": [2001]}


@dataclass
class Code:
    id: int
    intercom: int
    creator: int | None
    expires: datetime
    digits: str


@pytest.fixture(scope="module")
def mock() -> Iterator[RunningMock]:
    with start_mock(seed=21, start=START) as running:
        yield running


def _vms(user: int) -> dict[str, str]:
    return {"Authorization": USERS[user], "X-Client": "web", "X-UUID": f"machine-{user}"}


class BuildingMachine(RuleBasedStateMachine):
    mock: RunningMock
    #: the mock's in-process client (`RunningMock.client`): the machine's many calls need no socket
    http: httpx.Client

    @initialize()
    def reset(self) -> None:
        self.http.post(self.mock.urls["control"] + "/reset").raise_for_status()
        self.mock.clock.set(START)
        self.now = START
        self.online = dict.fromkeys(INTERCOMS, True)
        self.uuids = self._intercom_uuids()
        self.codes: dict[int, Code] = {}
        for user in USERS:
            for listed in self._vms_list(user):
                code = Code(
                    listed["id"], listed["intercom"]["id"], user, self._parse(listed["expired_at"]), listed["code"]
                )
                self.codes[code.id] = code
        self.seam_only: dict[str, int] = {}  # codes no VMS user created: Seam id -> intercom
        for intercom, uuid in self.uuids.items():
            vms_digits = {c.digits for c in self.codes.values() if c.intercom == intercom}
            for listed in self._seam_list(INTERCOMS[intercom], uuid):
                if listed["code"] not in vms_digits:
                    self.seam_only[listed["access_code_id"]] = intercom
        self.mediums: dict[tuple[str, int], dict[int, str]] = {}

    # --- helpers

    @staticmethod
    def _parse(text: str) -> datetime:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)

    def _intercom_uuids(self) -> dict[int, str]:
        uuids = {}
        for owner, token in OWNER_TOKENS.items():
            for item in self.http.get(self.mock.urls["seam"] + "/door_locks", headers={"Authorization": token}).json()[
                "intercoms"
            ]:
                device = self.http.get(f"{self.mock.urls['control']}/intercoms/{item['intercom_id']}").json()
                assert INTERCOMS[device["id"]] == owner
                uuids[device["id"]] = item["intercom_id"]
        return uuids

    def _vms_list(self, user: int) -> list[dict]:
        found, page = [], 1
        while True:
            body = self.http.get(
                self.mock.urls["vms"] + "/api/v1/intercom/codes",
                headers=_vms(user),
                params={"page": page, "per_page": 100},
            ).json()
            found += body["data"]
            if body["links"]["next"] is None:
                return found
            page += 1

    def _seam_list(self, owner: int, uuid: str) -> list[dict]:
        response = self.http.get(
            self.mock.urls["seam"] + "/access_codes",
            params={"intercom_id": uuid},
            headers={"Authorization": OWNER_TOKENS[owner]},
        )
        assert response.status_code == 200
        return response.json()["access_codes"]

    def _live(self) -> dict[int, Code]:
        return {i: c for i, c in self.codes.items() if self.now <= c.expires + GRACE}

    # --- rules

    @rule(user=st.sampled_from(list(USERS)), intercom=st.sampled_from(list(INTERCOMS)), minutes=st.integers(1, 60 * 48))
    def create_code(self, user: int, intercom: int, minutes: int) -> None:
        expires = (self.now + timedelta(minutes=minutes)).replace(second=0, microsecond=0)
        if expires <= self.now:
            expires += timedelta(minutes=1)
        response = self.http.post(
            f"{self.mock.urls['vms']}/api/v1/intercom/{intercom}/codes",
            headers=_vms(user),
            json={"title": "machine", "expired_at": expires.strftime("%Y-%m-%d %H:%M")},
        )
        if INTERCOMS[intercom] != user:
            assert response.status_code == 404, response.text
            return
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["id"] not in self.codes and body["code"].isdigit()
        self.codes[body["id"]] = Code(body["id"], intercom, user, expires, body["code"])

    @rule(user=st.sampled_from(list(USERS)), data=st.data())
    def vms_delete(self, user: int, data: st.DataObject) -> None:
        known = sorted(self._live())
        ids = data.draw(
            st.lists(st.sampled_from([*known, 999_999]) if known else st.just(999_999), min_size=1, max_size=4)
        )
        response = self.http.request(
            "DELETE", self.mock.urls["vms"] + "/api/v1/intercom/codes", headers=_vms(user), json={"ids": ids}
        )
        live = self._live()
        if all(i in live and live[i].creator == user for i in ids):
            assert response.status_code == 204, response.text
            for i in ids:
                self.codes.pop(i, None)
        else:
            assert response.status_code == 422, response.text

    @rule(owner=st.sampled_from(list(OWNER_TOKENS)), data=st.data())
    def seam_delete(self, owner: int, data: st.DataObject) -> None:
        intercom = data.draw(st.sampled_from(list(INTERCOMS)))
        listed = self._seam_list(INTERCOMS[intercom], self.uuids[intercom])
        if not listed:
            return
        target = data.draw(st.sampled_from(listed))
        response = self.http.delete(
            f"{self.mock.urls['seam']}/access_codes/{target['access_code_id']}",
            headers={"Authorization": OWNER_TOKENS[owner]},
        )
        if INTERCOMS[intercom] != owner:
            assert response.status_code == 404
        elif not self.online[intercom]:
            assert response.status_code == 500 and response.json()["error_id"] == "ACCESS_CODE_REMOVAL_FAILED"
        else:
            assert response.json() == {"ok": True}
            self.seam_only.pop(target["access_code_id"], None)
            for code_id, code in list(self.codes.items()):
                if code.intercom == intercom and code.digits == target["code"]:  # digits are unique per intercom
                    del self.codes[code_id]

    @rule(hours=st.integers(1, 30))
    def advance(self, hours: int) -> None:
        self.mock.clock.advance(hours=hours)
        self.now += timedelta(hours=hours)

    @rule(intercom=st.sampled_from(list(INTERCOMS)), online=st.booleans())
    def connectivity(self, intercom: int, online: bool) -> None:
        response = self.http.put(f"{self.mock.urls['control']}/intercoms/{intercom}/online", json={"online": online})
        assert response.json()["online"] is online
        self.online[intercom] = online

    @rule(studio=st.sampled_from(list(STUDIO_KEYS)), data=st.data(), value=st.sampled_from(["A1", "A2", "B7"]))
    def add_medium(self, studio: str, data: st.DataObject, value: str) -> None:
        customer = data.draw(st.sampled_from(CUSTOMERS[studio]))
        response = self.http.post(
            f"{self.mock.urls['magicline']}/v1/customers/{customer}/access-mediums",
            headers={"X-API-KEY": STUDIO_KEYS[studio]},
            json={"type": "BARCODE", "value": value},
        )
        taken = any(value in mediums.values() for (s, _), mediums in self.mediums.items() if s == studio)
        if taken:
            assert response.status_code == 400 and response.json()["reference"] == "value"
        else:
            assert response.status_code == 200, response.text
            self.mediums.setdefault((studio, customer), {})[response.json()["id"]] = value

    @precondition(lambda self: any(self.mediums.values()))
    @rule(data=st.data())
    def delete_medium(self, data: st.DataObject) -> None:
        (studio, customer), mediums = data.draw(st.sampled_from([kv for kv in self.mediums.items() if kv[1]]))
        medium = data.draw(st.sampled_from(sorted(mediums)))
        other = "harbour" if studio == "mission" else "mission"
        foreign = self.http.delete(
            f"{self.mock.urls['magicline']}/v1/customers/{customer}/access-mediums/{medium}",
            headers={"X-API-KEY": STUDIO_KEYS[other]},
        )
        assert foreign.status_code == 404  # another studio's customer does not exist for this key
        response = self.http.delete(
            f"{self.mock.urls['magicline']}/v1/customers/{customer}/access-mediums/{medium}",
            headers={"X-API-KEY": STUDIO_KEYS[studio]},
        )
        assert response.status_code == 200
        del mediums[medium]

    # --- what every view must agree on

    @invariant()
    def vms_lists_each_users_own_live_codes(self) -> None:
        live = self._live()
        for user in USERS:
            listed = {c["id"]: c for c in self._vms_list(user)}
            expected = {i for i, c in live.items() if c.creator == user}
            assert set(listed) == expected
            for code_id, item in listed.items():
                assert item["is_expired"] is (self.now > live[code_id].expires)
                assert item["intercom"]["is_online"] is self.online[item["intercom"]["id"]]

    @invariant()
    def seam_lists_every_code_on_the_owners_intercoms(self) -> None:
        live = self._live()
        for intercom, uuid in self.uuids.items():
            listed = self._seam_list(INTERCOMS[intercom], uuid)
            vms_codes = [c for c in live.values() if c.intercom == intercom]
            others = [i for i, where in self.seam_only.items() if where == intercom]
            assert len(listed) == len(vms_codes) + len(others)
            assert {c["access_code_id"] for c in listed} >= set(others)
            assert {c["code"] for c in listed if c["access_code_id"] not in others} == {c.digits for c in vms_codes}

    @invariant()
    def customers_show_their_mediums(self) -> None:
        for (studio, customer), mediums in self.mediums.items():
            shown = self.http.get(
                f"{self.mock.urls['magicline']}/v1/customers/{customer}", headers={"X-API-KEY": STUDIO_KEYS[studio]}
            ).json()["accessMediums"]
            barcodes = {m["id"]: m["value"] for m in shown if m["type"] == "BARCODE"}
            assert barcodes == mediums


@pytest.mark.slow
def test_the_mock_keeps_to_the_model(mock: RunningMock) -> None:
    BuildingMachine.mock = mock
    machine = BuildingMachine.TestCase
    # No shrinking: each replay is real HTTP against a stateful server; the failing steps are printed as found.
    machine.settings = settings(
        max_examples=8,
        stateful_step_count=12,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    with mock.client() as http:
        BuildingMachine.http = http
        machine().runTest()
