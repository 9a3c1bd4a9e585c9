"""The building's rules, without HTTP: codes, expiry, isolation, devices offline, customers and credentials."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from mockserver.app import DEMO_FIXTURES
from mockserver.domain.building import Building, Rules
from mockserver.domain.clock import ManualClock
from mockserver.domain.errors import Conflict, DeviceOffline, Invalid, NotAllowed, NotFound, TooManySessions
from mockserver.domain.events import CodeCreated, CodesDeleted, MediumChanged
from mockserver.store import MemoryStore

START = datetime(2031, 1, 1, 12, 0, tzinfo=UTC)
ALICE, BOB = 13, 14
MISSION, HARBOUR = 1238735970, 1238735971


@pytest.fixture
def building() -> Building:
    result = Building(MemoryStore(), ManualClock(START, frozen=True), seed=1)
    result.load_fixtures(yaml.safe_load(DEMO_FIXTURES.read_text()))
    return result


def _code(building: Building, intercom: int = 180, user: int = ALICE, hours: float = 2, **kwargs):  # type: ignore[no-untyped-def]
    target = building.owner_intercom(user, intercom_id=intercom)
    return building.create_code(
        intercom=target, title="guest", expired_at=building.now() + timedelta(hours=hours), created_by=user, **kwargs
    )


def test_generated_codes_are_digits_unique_per_intercom(building: Building) -> None:
    digits = [_code(building).digits for _ in range(300)]
    assert all(d.isdigit() and len(d) == 5 for d in digits)
    assert len(set(digits)) == len(digits)


def test_a_crowded_keypad_gets_longer_codes() -> None:
    building = Building(
        MemoryStore(), ManualClock(START, frozen=True), seed=3, rules=Rules(code_length=1, keypad_min_digits=1)
    )
    building.load_fixtures(yaml.safe_load(DEMO_FIXTURES.read_text()))
    digits = [_code(building, intercom=181).digits for _ in range(40)]
    assert len(set(digits)) == 40 and max(map(len, digits)) >= 2


def test_codes_refuse_a_past_expiry_and_a_taken_code(building: Building) -> None:
    with pytest.raises(Invalid) as past:
        _code(building, hours=-1)
    assert past.value.field == "expired_at"
    _code(building, intercom=181, digits="5555")
    with pytest.raises(Invalid):
        _code(building, intercom=181, digits="5555")
    with pytest.raises(Invalid):
        _code(building, intercom=181, digits="12a4")
    _code(building, intercom=180, digits="5555")  # another intercom may use the same digits


def test_expiry_then_the_24_hour_grace(building: Building) -> None:
    code = _code(building, hours=1)
    building.clock.advance(hours=1, seconds=1)
    listed = {c.id: c for c, _ in building.user_codes(ALICE, page=1, per_page=100)[0]}
    assert listed[code.id].is_expired(building.now().timestamp())
    assert building.present(180, "keypad", code.digits).reason == "expired"
    building.clock.advance(hours=24)
    building.tick()
    assert code.id not in {c.id for c, _ in building.user_codes(ALICE, page=1, per_page=100)[0]}
    assert building.present(180, "keypad", code.digits).reason == "unknown"


def test_a_bulk_delete_is_all_or_nothing_and_only_the_users(building: Building) -> None:
    mine = _code(building)
    bobs = _code(building, intercom=190, user=BOB)
    with pytest.raises(Invalid) as refused:
        building.delete_user_codes(ALICE, [mine.id, bobs.id])
    assert refused.value.field == "ids.1"
    assert mine.id in {c.id for c, _ in building.user_codes(ALICE, page=1, per_page=100)[0]}
    assert building.delete_user_codes(ALICE, [mine.id, mine.id]) == [mine.id]
    assert building.user_codes(ALICE, page=1, per_page=100)[1] == 2  # the fixture's two codes remain


def test_another_owners_intercom_is_unknown(building: Building) -> None:
    with pytest.raises(NotFound):
        building.owner_intercom(BOB, intercom_id=180)
    code = _code(building)
    with pytest.raises(NotFound):
        building.owner_code(BOB, code.uuid)
    assert building.owner_code(ALICE, code.uuid).id == code.id


def test_offline_devices_queue_changes_and_refuse_seam(building: Building) -> None:
    kept = _code(building)
    building.set_online(180, False)
    with pytest.raises(DeviceOffline):
        building.remove_owner_code(ALICE, kept.uuid)
    assert building.owner_code(ALICE, kept.uuid)  # it stays
    with pytest.raises(DeviceOffline):
        building.unlock(building.intercom(180), by="seam")

    created = _code(building)  # reaches the keypad only when the device is back
    assert building.present(180, "keypad", created.digits).reason == "unknown"
    building.delete_user_codes(ALICE, [kept.id])  # gone from the views at once ...
    assert kept.id not in {c.id for c, _ in building.user_codes(ALICE, page=1, per_page=100)[0]}
    assert building.present(180, "keypad", kept.digits).granted  # ... but the keypad still opens with it
    assert building.pending_sync(180) == 2

    building.set_online(180, True)
    assert building.pending_sync(180) == 0
    assert building.present(180, "keypad", created.digits).granted
    assert building.present(180, "keypad", kept.digits).reason == "revoked"
    assert any(e["type"] == "device.online" and e["detail"]["synced"] == 2 for e in building.device_log(180))


def test_customer_credentials_at_the_door(building: Building) -> None:
    customer = building.customer_access_code(MISSION, 1001)
    assert building.present(180, "qr", customer.qr_content).granted
    assert building.present(190, "qr", customer.qr_content).reason == "studio_not_admitted"
    assert building.present(180, "card", "9900112233").reason == "revoked"  # a former member
    building.set_online(181, False)
    assert building.present(181, "card", "1290158199").reason == "device_offline"
    building.clock.advance(seconds=building.rules.qr_validity_seconds)
    assert building.present(180, "qr", customer.qr_content).reason == "expired"
    fresh = building.customer_access_code(MISSION, 1001)
    assert fresh.qr_content != customer.qr_content
    assert building.present(180, "qr", customer.qr_content).reason == "unknown"


def test_mediums_rules(building: Building) -> None:
    added = building.add_medium(MISSION, 1003, "BARCODE", "abc-1")
    with pytest.raises(Invalid):
        building.add_medium(MISSION, 1001, "BARCODE", "abc-1")  # one studio, one owner per value
    building.add_medium(HARBOUR, 2001, "BARCODE", "abc-1")  # another studio may
    assert building.update_medium(MISSION, 1003, added.id, "abc-2").value == "abc-2"
    with pytest.raises(NotAllowed):
        building.delete_medium(MISSION, 1001, 1101)  # entered at the studio's desk
    with pytest.raises(NotFound):
        building.delete_medium(HARBOUR, 1003, added.id)  # another studio's customer
    building.delete_medium(MISSION, 1003, added.id)
    assert building.customer(MISSION, 1003).mediums == []


def test_a_stale_write_is_a_conflict_and_changes_nothing(building: Building) -> None:
    store = building.store
    original_get = store.get

    def get_then_someone_else_writes(kind: str, key: str):  # type: ignore[no-untyped-def]
        record = original_get(kind, key)
        if kind == "customer" and key == "1003":
            store.get = original_get  # type: ignore[method-assign]
            store.put(kind, key, dict(record.data, first_name="Concurrent"), index=record.index)
        return record

    store.get = get_then_someone_else_writes  # type: ignore[method-assign]
    with pytest.raises(Conflict):
        building.add_medium(MISSION, 1003, "PIN", "9876")
    # (The simulated other writer shares this store's transaction here, so its write is undone too.)
    assert building.customer(MISSION, 1003).mediums == []


def test_events_follow_commits_only(building: Building) -> None:
    seen = []
    building.subscribe(seen.append)
    code = _code(building)
    with pytest.raises(Invalid):
        _code(building, hours=-1)
    building.delete_user_codes(ALICE, [code.id], origin="123.456")
    building.add_medium(MISSION, 1003, "PIN", "2468")
    kinds = [type(event) for event in seen]
    assert kinds == [CodeCreated, CodesDeleted, MediumChanged]
    assert seen[1].by_user == {ALICE: [code.id]} and seen[1].origin == "123.456"


def test_vms_sessions_are_limited(building: Building) -> None:
    building.rules.vms_max_sessions = 2
    first = building.vms_login("alice@demo.test", "alice-password")
    building.vms_login("alice@demo.test", "alice-password")
    with pytest.raises(TooManySessions) as full:
        building.vms_login("alice@demo.test", "alice-password")
    assert full.value.session_id == first[2]
    _, token, _ = building.vms_login("alice@demo.test", "alice-password", session_id=first[2])
    assert building.user_for_token("vms", first[1]) is None
    assert building.user_for_token("vms", token).id == ALICE
    with pytest.raises(Invalid):
        building.vms_login("alice@demo.test", "wrong")
