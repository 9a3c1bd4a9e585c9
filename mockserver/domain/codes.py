"""Access codes: created on an intercom (by a VMS user, a fixture or the device's control), listed per user and per
intercom, deleted in bulk or one by one, expiring on the clock and gone 24 hours later. Every code is programmed
on its intercom's keypad (`Devices.program`). Record kinds: code, code_uuid, code_digits."""

from __future__ import annotations

from datetime import UTC, datetime

from .credentials import Credentials
from .devices import Devices
from .errors import Conflict, DeviceOffline, Invalid, NotFound
from .events import CodeCreated, CodesDeleted
from .kinds import K
from .model import GRACE_SECONDS, AccessCode, Intercom
from .unit import UnitOfWork

__all__ = ["LAST_EXPIRY", "LAST_EXPIRY_TEXT", "Codes"]

#: the latest expiry a code may have: its `will_deleted_at` is then the last second with a four-digit year
LAST_EXPIRY = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()) - GRACE_SECONDS
LAST_EXPIRY_TEXT = datetime.fromtimestamp(LAST_EXPIRY + 1, UTC).strftime("%Y-%m-%d %H:%M")


class Codes:
    def __init__(self, unit: UnitOfWork, credentials: Credentials, devices: Devices) -> None:
        self.unit = unit
        self.store = unit.store
        self.credentials = credentials
        self.devices = devices

    # ------------------------------------------------------------------ digits

    def _digits_taken(self, intercom_id: int, digits: str) -> bool:
        return self.store.exists(K.CODE_BY_DIGITS, f"{intercom_id}:{digits}")

    def _generate_digits(self, intercom_id: int) -> str:
        # As VMS does: random digits of the configured length; a crowded keypad gets longer codes.
        rules = self.unit.rules
        for length in range(rules.code_length, rules.keypad_max_digits + 1):
            for _ in range(20):
                digits = str(self.unit.rng.randint(10 ** (length - 1), 10**length - 1))
                if not self._digits_taken(intercom_id, digits):
                    return digits
        raise Invalid("No free code is left on this intercom", field="code")

    def _check_digits(self, digits: str) -> None:
        low, high = self.unit.rules.keypad_min_digits, self.unit.rules.keypad_max_digits
        if not (digits.isascii() and digits.isdigit()) or not low <= len(digits) <= high:
            raise Invalid(f"A code has {low} to {high} digits", field="code")

    # ------------------------------------------------------------------ one code

    def create(
        self,
        *,
        intercom: Intercom,
        title: str,
        expired_at: datetime,
        created_by: int | None,
        owner_uuid: str | None = None,
        digits: str | None = None,
        origin: str | None = None,
        allow_past: bool = False,
        code_id: int | None = None,
        code_uuid: str | None = None,
    ) -> AccessCode:
        """Create a code on an intercom. It works on the keypad until `expired_at` and is gone 24 h later; an
        `expired_at` that has passed is refused unless ``allow_past`` (then the code is born expired). A fixture
        may give the code's id and uuid (a building made from a recording keeps them)."""
        now = self.unit.now_s()
        expires = int(expired_at.timestamp())
        if expires <= now and not allow_past:
            raise Invalid("The expired at must be a date after now.", field="expired_at")
        if expires > LAST_EXPIRY:
            # Its `will_deleted_at` would fall in year 10000, which no vendor's date format can write.
            raise Invalid(f"The expired at must be a date before {LAST_EXPIRY_TEXT}.", field="expired_at")
        if digits is None:
            digits = self._generate_digits(intercom.id)
        else:
            self._check_digits(digits)
            if self._digits_taken(intercom.id, digits):
                raise Invalid("This code is already programmed on the intercom", field="code")
        if owner_uuid is None:
            owner_uuid = self.credentials.owner(created_by if created_by is not None else intercom.owner_id).uuid
        if code_id is None:
            code_id = self.store.unique_id("code", start=1000)
            while self.store.exists(K.CODE, str(code_id)):  # past ids a fixture gave
                code_id = self.store.unique_id("code", start=1000)
        elif self.store.exists(K.CODE, str(code_id)):
            raise Conflict(f"code {code_id} exists already")
        code = AccessCode(
            id=code_id,
            uuid=code_uuid or self.unit.uuid(),
            intercom_id=intercom.id,
            created_by=created_by,
            owner_uuid=owner_uuid,
            title=title,
            digits=digits,
            expired_at=expires,
            created_at=int(now),
        )
        index = {
            K.CODES_BY_INTERCOM: (str(intercom.id), code.id),
            K.CODES_BY_DEADLINE: ("all", code.will_deleted_at),
        }
        if created_by is not None:
            index[K.CODES_BY_USER] = (str(created_by), code.id)
        data = code.to_data()
        self.store.put(K.CODE, str(code.id), data, index=index, expected_version=0)
        self.store.put(K.CODE_BY_UUID, code.uuid, {"id": code.id}, expected_version=0)
        self.store.put(K.CODE_BY_DIGITS, f"{intercom.id}:{digits}", {"id": code.id}, expected_version=0)
        self.devices.program(intercom, "add", data)
        self.unit.emit(
            CodeCreated(at=self.unit.now(), code_id=code.id, intercom_id=intercom.id, user_id=created_by, origin=origin)
        )
        return code

    def code(self, code_id: int) -> AccessCode | None:
        record = self.store.get(K.CODE, str(code_id))
        return AccessCode.from_data(record.data) if record else None

    def remove(self, code: AccessCode, *, revoked: bool) -> None:
        self.store.delete(K.CODE, str(code.id))
        self.store.delete(K.CODE_BY_UUID, code.uuid)
        self.store.delete(K.CODE_BY_DIGITS, f"{code.intercom_id}:{code.digits}")
        if revoked:
            self.devices.program(self.devices.intercom(code.intercom_id), "remove", code.to_data())
        else:
            self.devices.forget(code.intercom_id, code.digits)

    def expire_due(self, now: float) -> None:
        """Remove codes past their `will_deleted_at`, and keypad entries of revoked codes that would have gone."""
        for partition in ("all", "keypad"):
            # Only the earliest deadline is looked at first: on most calls nothing is due and no record is read.
            while (due := self.store.lowest(K.CODES_BY_DEADLINE, partition)) is not None and due < now:
                for record in self.store.page(K.CODES_BY_DEADLINE, partition, limit=100).records:
                    if record.index[K.CODES_BY_DEADLINE][1] < now:
                        if partition == "all":
                            self.remove(AccessCode.from_data(record.data), revoked=False)
                        else:
                            self.store.delete(K.KEYPAD, record.key)

    # ------------------------------------------------------------------ a VMS user's codes

    def user_codes(
        self, user_id: int, *, page: int, per_page: int, newest_first: bool = True
    ) -> tuple[list[tuple[AccessCode, Intercom]], int]:
        """One page of the codes a VMS user created (newest or oldest first), with their intercoms; and the total."""
        result = self.store.page(
            K.CODES_BY_USER, str(user_id), limit=per_page, offset=(page - 1) * per_page, reverse=newest_first
        )
        intercoms: dict[int, Intercom] = {}
        items = []
        for record in result.records:
            code = AccessCode.from_data(record.data)
            if code.intercom_id not in intercoms:
                intercoms[code.intercom_id] = self.devices.intercom(code.intercom_id)
            items.append((code, intercoms[code.intercom_id]))
        return items, result.total

    def create_user_code(
        self,
        user_id: int,
        intercom_id: int,
        *,
        title: str,
        expired_at: datetime,
        origin: str | None = None,
        allow_past: bool = False,
    ) -> tuple[AccessCode, Intercom]:
        """A VMS user's new code on one of their intercoms, with the intercom (which a new code leaves as it was)."""
        intercom = self.devices.owner_intercom(user_id, intercom_id=intercom_id)
        code = self.create(
            intercom=intercom,
            title=title,
            expired_at=expired_at,
            created_by=user_id,
            origin=origin,
            allow_past=allow_past,
        )
        return code, intercom

    def code_with_intercom(self, code_id: int) -> tuple[AccessCode, Intercom]:
        code = self.code(code_id)
        if code is None:
            raise NotFound("Code", code_id)
        return code, self.devices.intercom(code.intercom_id)

    def delete_user_codes(
        self, user_id: int, ids: list[int], *, origin: str | None = None, ignore_foreign: bool = False
    ) -> list[int]:
        """Delete codes a VMS user created; answers the ids deleted. An id that is not one of them refuses the
        whole request, or with ``ignore_foreign`` is skipped."""
        deleted: list[int] = []
        for position, code_id in enumerate(ids):
            code = self.code(code_id)
            if code is None or code.created_by != user_id:
                if ignore_foreign:
                    continue
                raise Invalid(f"The selected ids.{position} is invalid.", field=f"ids.{position}")
            if code_id not in deleted:
                deleted.append(code_id)
        for code_id in deleted:
            code = self.code(code_id)
            assert code is not None
            self.remove(code, revoked=True)
        if deleted:
            self.unit.emit(CodesDeleted(at=self.unit.now(), by_user={user_id: deleted}, via="vms", origin=origin))
        return deleted

    # ------------------------------------------------------------------ an intercom's codes (Seam)

    def intercom_codes(self, intercom: Intercom) -> list[AccessCode]:
        page = self.store.page(K.CODES_BY_INTERCOM, str(intercom.id), limit=1_000_000)
        return [AccessCode.from_data(r.data) for r in page.records]

    def newest_codes(self, intercom_id: int, limit: int) -> tuple[list[AccessCode], int]:
        """The intercom's ``limit`` newest codes, newest first, and how many it has in all (reading no more)."""
        page = self.store.page(K.CODES_BY_INTERCOM, str(intercom_id), limit=limit, reverse=True)
        return [AccessCode.from_data(r.data) for r in page.records], page.total

    def owner_code(self, user_id: int, code_uuid: str) -> AccessCode:
        """A code on one of the owner's intercoms (whoever created it)."""
        alias = self.store.get(K.CODE_BY_UUID, code_uuid)
        code = self.code(alias.data["id"]) if alias else None
        if code is None or self.devices.intercom(code.intercom_id).owner_id != user_id:
            raise NotFound("Access code", code_uuid, field="access_code_id")
        return code

    def remove_owner_code(self, user_id: int, code_uuid: str, *, via: str = "seam") -> AccessCode:
        """Remove a code from the owner's intercom; the device must be reachable."""
        code = self.owner_code(user_id, code_uuid)
        intercom = self.devices.intercom(code.intercom_id)
        if not intercom.online:
            raise DeviceOffline("The intercom is offline; the code could not be removed")
        self.remove(code, revoked=True)
        self.unit.emit(CodesDeleted(at=self.unit.now(), by_user={code.created_by: [code.id]}, via=via))
        return code
