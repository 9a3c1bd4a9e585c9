"""The intercoms as devices: their records, doors that unlock and relock, keypads that hold codes (and work
offline), changes queued for an offline device, credentials presented at the door, and each device's event log.
Record kinds: intercom, intercom_uuid, keypad, sync, device_log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .credentials import Credentials
from .errors import DeviceOffline, NotFound
from .events import AccessDecided, ConnectivityChanged, DoorLocked, DoorUnlocked
from .kinds import K
from .model import GRACE_SECONDS, Customer, Decision, Intercom
from .unit import UnitOfWork

__all__ = ["Devices"]

#: a customer credential presented at a door: (customer, what matched, whether it has expired), or None
CustomerFinder = Callable[[str, str], "tuple[Customer, str, bool] | None"]


class Devices:
    def __init__(self, unit: UnitOfWork, credentials: Credentials, find_customer: CustomerFinder) -> None:
        self.unit = unit
        self.store = unit.store
        self.credentials = credentials
        self.find_customer = find_customer

    # ------------------------------------------------------------------ intercoms

    def add_intercom(self, **fields: Any) -> Intercom:
        fields.setdefault("uuid", self.unit.uuid())
        fields.setdefault("updated_at", int(self.unit.now_s() * 1_000_000))
        intercom = Intercom(**fields)
        self.credentials.owner(intercom.owner_id)
        for studio_id in intercom.admits_studios:
            self.credentials.studio(studio_id)
        self.store.put(
            K.INTERCOM,
            str(intercom.id),
            intercom.to_data(),
            expected_version=0,
            index={K.INTERCOMS_BY_OWNER: (str(intercom.owner_id), intercom.id)},
        )
        self.store.put(K.INTERCOM_BY_UUID, intercom.uuid, {"id": intercom.id}, expected_version=0)
        return intercom

    def intercom(self, intercom_id: int) -> Intercom:
        record = self.store.get(K.INTERCOM, str(intercom_id))
        if record is None:
            raise NotFound("Intercom", intercom_id, field="intercom")
        return Intercom.from_data(record.data)

    def intercom_by_uuid(self, intercom_uuid: str) -> Intercom | None:
        alias = self.store.get(K.INTERCOM_BY_UUID, intercom_uuid)
        return self.intercom(alias.data["id"]) if alias else None

    def intercom_ref(self, ref: str | int) -> Intercom:
        """An intercom by its VMS id or its Seam UUID (for the control API and the device)."""
        text = str(ref)
        if text.isdigit():
            return self.intercom(int(text))
        intercom = self.intercom_by_uuid(text)
        if intercom is None:
            raise NotFound("Intercom", ref, field="intercom")
        return intercom

    def intercoms(self) -> list[Intercom]:
        return sorted((Intercom.from_data(r.data) for r in self.store.scan(K.INTERCOM)), key=lambda i: i.id)

    def owner_intercoms(self, user_id: int) -> list[Intercom]:
        page = self.store.page(K.INTERCOMS_BY_OWNER, str(user_id), limit=10_000)
        return [Intercom.from_data(r.data) for r in page.records]

    def owner_intercom(
        self, user_id: int, *, intercom_id: int | None = None, intercom_uuid: str | None = None
    ) -> Intercom:
        """One of the owner's intercoms; another owner's intercom is as unknown as a missing one."""
        intercom: Intercom | None
        if intercom_uuid is not None:
            intercom = self.intercom_by_uuid(intercom_uuid)
            ident: object = intercom_uuid
        else:
            record = self.store.get(K.INTERCOM, str(intercom_id))
            intercom = Intercom.from_data(record.data) if record else None
            ident = intercom_id
        if intercom is None or intercom.owner_id != user_id:
            raise NotFound("Intercom", ident, field="intercom")
        return intercom

    def save(self, intercom: Intercom) -> None:
        index = {K.INTERCOMS_BY_OWNER: (str(intercom.owner_id), intercom.id)}
        if intercom.unlocked_until_ms is not None:
            index[K.UNLOCKED_DOORS] = ("all", intercom.unlocked_until_ms)
        self.store.put(K.INTERCOM, str(intercom.id), intercom.to_data(), index=index)

    # ------------------------------------------------------------------ keypads and queued changes

    def program(self, intercom: Intercom, op: str, code: dict[str, Any]) -> None:
        """Program a code change ("add" or "remove", with the code's data) on the device now, or queue it until
        the device is back online."""
        if intercom.online:
            self._apply(intercom.id, op, code)
        else:
            seq = self.store.next_id("sync")
            self.store.put(
                K.SYNC,
                str(seq),
                {"op": op, "code": code},
                index={K.SYNC_BY_INTERCOM: (str(intercom.id), seq)},
            )

    def _apply(self, intercom_id: int, op: str, code: dict[str, Any]) -> None:
        key = f"{intercom_id}:{code['digits']}"
        deadline = code["expired_at"] + GRACE_SECONDS
        if op == "add":
            if deadline < self.unit.now_s():
                return  # came back online after the code was gone anyway
            self.store.put(
                K.KEYPAD,
                key,
                {"code_id": code["id"], "expired_at": code["expired_at"], "revoked": False},
                index={K.KEYPAD_BY_INTERCOM: (str(intercom_id), code["id"])},
            )
        else:
            # Remembered as revoked until it would have gone anyway, so the device can say why it refuses.
            self.store.put(
                K.KEYPAD,
                key,
                {"code_id": code["id"], "expired_at": code["expired_at"], "revoked": True},
                index={K.CODES_BY_DEADLINE: ("keypad", deadline)},
            )

    def forget(self, intercom_id: int, digits: str) -> None:
        """The device drops an expired code itself, online or not."""
        self.store.delete(K.KEYPAD, f"{intercom_id}:{digits}")

    def set_online(self, ref: str | int, online: bool) -> Intercom:
        """Take a device offline or bring it back; coming back applies the changes queued for it."""
        intercom = self.intercom_ref(ref)
        if intercom.online == online:
            return intercom
        intercom.online = online
        intercom.updated_at = int(self.unit.now_s() * 1_000_000)
        self.save(intercom)
        synced = 0
        if online:
            while True:
                page = self.store.page(K.SYNC_BY_INTERCOM, str(intercom.id), limit=100)
                for record in page.records:
                    self._apply(intercom.id, record.data["op"], record.data["code"])
                    self.store.delete(K.SYNC, record.key)
                    synced += 1
                if len(page.records) < 100:
                    break
        self.log(intercom.id, "device.online" if online else "device.offline", {"synced": synced})
        self.unit.emit(ConnectivityChanged(at=self.unit.now(), intercom_id=intercom.id, online=online, synced=synced))
        return intercom

    def pending_sync(self, intercom_id: int) -> int:
        return self.store.count(K.SYNC_BY_INTERCOM, str(intercom_id))

    def keypad_size(self, intercom_id: int) -> int:
        """How many working codes the device's keypad holds."""
        return self.store.count(K.KEYPAD_BY_INTERCOM, str(intercom_id))

    # ------------------------------------------------------------------ doors

    def unlock(self, intercom: Intercom, unlock_ms: int | None, by: str, detail: dict[str, Any]) -> datetime:
        """Unlock the door for a while; answers when it relocks. An offline device cannot be reached."""
        intercom = self.intercom(intercom.id)
        if not intercom.online:
            raise DeviceOffline("Intercom is disconnected")
        return self._unlock(intercom, intercom.unlock_ms if unlock_ms is None else unlock_ms, by, detail)

    def _unlock(self, intercom: Intercom, unlock_ms: int, by: str, detail: dict[str, Any]) -> datetime:
        now_ms = self.unit.now_ms()
        until = max(now_ms + unlock_ms, intercom.unlocked_until_ms or 0)
        intercom.unlocked_until_ms = until
        self.save(intercom)
        until_dt = datetime.fromtimestamp(until / 1000, UTC)
        self.log(intercom.id, "door.unlocked", {"by": by, "until": until_dt.isoformat(), **detail})
        self.unit.emit(DoorUnlocked(at=self.unit.now(), intercom_id=intercom.id, until=until_dt, by=by, detail=detail))
        return until_dt

    def relock_due(self, now: float) -> None:
        """Relock every door whose unlock time is over."""
        now_ms = now * 1000
        while (until := self.store.lowest(K.UNLOCKED_DOORS, "all")) is not None and until <= now_ms:
            for record in self.store.page(K.UNLOCKED_DOORS, "all", limit=100).records:
                intercom = Intercom.from_data(record.data)
                if intercom.unlocked_until_ms is not None and intercom.unlocked_until_ms <= now_ms:
                    at = intercom.unlocked_until_ms / 1000
                    intercom.unlocked_until_ms = None
                    self.save(intercom)
                    self.log(intercom.id, "door.locked", {}, at=at)
                    self.unit.emit(DoorLocked(at=datetime.fromtimestamp(at, UTC), intercom_id=intercom.id))

    # ------------------------------------------------------------------ credentials at the door

    def present(self, ref: str | int, kind: str, value: str) -> Decision:
        """A credential presented at a device: keypad digits, a scanned QR or barcode, a card, PIN or wallet
        pass. Keypad codes are checked by the device itself (they work offline); everything else needs the
        cloud."""
        intercom = self.intercom_ref(ref)
        if kind == "keypad":
            decision = self._decide_keypad(intercom, value)
        elif not intercom.online:
            decision = Decision(False, "device_offline", "The device cannot reach the cloud to check this")
        else:
            decision = self._decide_customer(intercom, kind, value)
        self.log(
            intercom.id,
            "access.granted" if decision.granted else "access.denied",
            {"kind": kind, "reason": decision.reason, "detail": decision.detail},
        )
        self.unit.emit(
            AccessDecided(
                at=self.unit.now(),
                intercom_id=intercom.id,
                kind=kind,
                granted=decision.granted,
                reason=decision.reason,
            )
        )
        if decision.granted:
            until = self._unlock(intercom, intercom.unlock_ms, "credential", {"kind": kind})
            decision.unlocked_until_ms = int(until.timestamp() * 1000)
        return decision

    def _decide_keypad(self, intercom: Intercom, digits: str) -> Decision:
        low, high = self.unit.rules.keypad_min_digits, self.unit.rules.keypad_max_digits
        if not (digits.isascii() and digits.isdigit()) or not low <= len(digits) <= high:
            return Decision(False, "invalid_format", f"A code has {low} to {high} digits")
        entry = self.store.get(K.KEYPAD, f"{intercom.id}:{digits}")
        if entry is None:
            for other in self.owner_intercoms(intercom.owner_id):
                if other.id != intercom.id and self.store.get(K.KEYPAD, f"{other.id}:{digits}"):
                    return Decision(False, "wrong_intercom", f"The code belongs to intercom {other.id}")
            return Decision(False, "unknown", "No such code on this keypad")
        if entry.data["revoked"]:
            return Decision(False, "revoked", "The code was deleted")
        if self.unit.now_s() > entry.data["expired_at"]:
            return Decision(False, "expired", "The code has expired")
        return Decision(True, "granted", f"code {entry.data['code_id']}")

    def _decide_customer(self, intercom: Intercom, kind: str, value: str) -> Decision:
        found = self.find_customer(kind, value)
        if found is None:
            return Decision(False, "unknown", "No customer has this credential")
        customer, what, expired = found
        if customer.studio_id not in intercom.admits_studios:
            return Decision(False, "studio_not_admitted", f"Studio {customer.studio_id} is not admitted here")
        if customer.status == "FORMER_MEMBER" or customer.access_refusal:
            return Decision(False, "revoked", f"Customer {customer.id} may not enter")
        if expired:
            return Decision(False, "expired", "The access code has expired")
        return Decision(True, "granted", f"customer {customer.id} ({what})")

    # ------------------------------------------------------------------ the device's log

    def log(self, intercom_id: int, kind: str, detail: dict[str, Any], *, at: float | None = None) -> None:
        seq = self.store.next_id("device_log")
        moment = datetime.fromtimestamp(self.unit.now_s() if at is None else at, UTC)
        self.store.put(
            K.DEVICE_LOG,
            str(seq),
            {"at": moment.isoformat(), "type": kind, "detail": detail},
            index={K.LOG_BY_INTERCOM: (str(intercom_id), seq)},
        )
        excess = self.store.count(K.LOG_BY_INTERCOM, str(intercom_id)) - self.unit.rules.device_log_limit
        if excess > 0:
            for record in self.store.page(K.LOG_BY_INTERCOM, str(intercom_id), limit=excess).records:
                self.store.delete(K.DEVICE_LOG, record.key)

    def device_log(self, ref: str | int, limit: int = 100) -> list[dict[str, Any]]:
        intercom = self.intercom_ref(ref)
        page = self.store.page(K.LOG_BY_INTERCOM, str(intercom.id), limit=limit, reverse=True)
        return [r.data for r in reversed(page.records)]
