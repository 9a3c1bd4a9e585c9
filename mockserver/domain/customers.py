"""Magicline's customers: their records, slices of a studio's customers, the QR access code that renews on the
clock, and access mediums (card, PIN, barcode, wallet pass), whose values a device looks up. Record kinds:
customer, medium_value, qr."""

from __future__ import annotations

from ..store.base import VersionConflict
from .credentials import Credentials
from .errors import Conflict, Invalid, NotAllowed, NotFound
from .events import MediumChanged
from .kinds import K
from .model import MEDIUM_TYPES, AccessMedium, Customer
from .unit import UnitOfWork

__all__ = ["Customers"]

#: which medium types a credential presented at a door may be, by how it was presented
PRESENTED_AS = {
    "qr": ("BARCODE", "WALLET_PASS"),
    "barcode": ("BARCODE",),
    "card": ("CARD_NUMBER",),
    "pin": ("PIN",),
    "wallet_pass": ("WALLET_PASS",),
}


class Customers:
    def __init__(self, unit: UnitOfWork, credentials: Credentials) -> None:
        self.unit = unit
        self.store = unit.store
        self.credentials = credentials

    # ------------------------------------------------------------------ records

    def add(self, customer: Customer) -> Customer:
        self.credentials.studio(customer.studio_id)
        customer.uuid = customer.uuid or self.unit.uuid()
        for medium in customer.mediums:
            self._check_value_free(customer.studio_id, medium.value)
            self._file_medium(customer.studio_id, customer.id, medium)
        self._save(customer, expected_version=0)
        return customer

    def _record(self, customer_id: int) -> Customer | None:
        record = self.store.get(K.CUSTOMER, str(customer_id))
        return Customer.from_data(record.data) if record else None

    def studio_customer(self, studio_id: int, customer_id: int) -> tuple[Customer, int]:
        """A studio's customer and its record's version; another studio's is as unknown as a missing one."""
        record = self.store.get(K.CUSTOMER, str(customer_id))
        if record is None or record.data["studio_id"] != studio_id:
            raise NotFound("Customer", customer_id, field="customerId")
        return Customer.from_data(record.data), record.version

    def _save(self, customer: Customer, *, expected_version: int | None) -> None:
        index = {
            K.CUSTOMERS_BY_STUDIO: (str(customer.studio_id), customer.id),
            f"{K.CUSTOMERS_BY_STUDIO}_status": (f"{customer.studio_id}:{customer.status}", customer.id),
        }
        try:
            self.store.put(
                K.CUSTOMER,
                str(customer.id),
                customer.to_data(),
                index=index,
                expected_version=expected_version,
            )
        except VersionConflict as exc:
            raise Conflict("The entity was modified by another request.") from exc

    def slice(
        self, studio_id: int, *, after: int | None, limit: int, status: str | None = None
    ) -> tuple[list[Customer], bool]:
        """A slice of a studio's customers ordered by id, after a cursor; and whether more follow."""
        if status is None:
            index, partition = K.CUSTOMERS_BY_STUDIO, str(studio_id)
        else:
            index, partition = f"{K.CUSTOMERS_BY_STUDIO}_status", f"{studio_id}:{status}"
        page = self.store.page(index, partition, limit=limit + 1, after=after)
        customers = [Customer.from_data(r.data) for r in page.records[:limit]]
        return customers, len(page.records) > limit

    def access_code(self, studio_id: int, customer_id: int) -> Customer:
        """The customer with a current QR access code; an expired one is replaced by a fresh one."""
        customer, version = self.studio_customer(studio_id, customer_id)
        now = self.unit.now_s()
        if customer.qr_content is None or customer.qr_expires_at is None or now >= customer.qr_expires_at:
            if customer.qr_content is not None:
                self.store.delete(K.QR, customer.qr_content)
            content = f"{self.unit.rng.randrange(10**17):019d}"
            while self.store.exists(K.QR, content):
                content = f"{self.unit.rng.randrange(10**17):019d}"
            customer.qr_content = content
            customer.qr_expires_at = int(now) + self.unit.rules.qr_validity_seconds
            self.store.put(K.QR, content, {"customer_id": customer.id, "studio_id": studio_id})
            self._save(customer, expected_version=version)
        return customer

    # ------------------------------------------------------------------ access mediums

    @staticmethod
    def _medium_key(studio_id: int, medium_type: str, value: str) -> str:
        return f"{studio_id}:{medium_type}:{value}"

    def _check_value_free(self, studio_id: int, value: str, except_medium: int | None = None) -> None:
        """The vendor calls `value` the medium's unique identifier: within a studio, one value is one medium,
        whatever its type (a PIN may not repeat a card number). Other studios' mediums are not looked at: a
        tenant never learns of another's data."""
        for medium_type in MEDIUM_TYPES:
            alias = self.store.get(K.MEDIUM_VALUE, self._medium_key(studio_id, medium_type, value))
            if alias is not None and alias.data["medium_id"] != except_medium:
                raise Invalid("The value is already used by another access medium of this studio", field="value")

    def add_medium(self, studio_id: int, customer_id: int, medium_type: str, value: str) -> AccessMedium:
        if medium_type not in MEDIUM_TYPES:
            raise Invalid(f"Unknown access medium type {medium_type}", field="type")
        customer, version = self.studio_customer(studio_id, customer_id)
        self._check_value_free(studio_id, value)
        medium = AccessMedium(id=self.store.next_id("medium", start=1_000_001), type=medium_type, value=value)
        customer.mediums.append(medium)
        self._save(customer, expected_version=version)
        self._file_medium(studio_id, customer.id, medium)
        self._changed(studio_id, customer.id, "CREATED", medium)
        return medium

    def _api_medium(self, customer: Customer, medium_id: int) -> AccessMedium:
        medium = customer.medium(medium_id)
        if medium is None:
            raise NotFound("Access medium", medium_id, field="accessMediumId")
        if not medium.via_api:
            raise NotAllowed(
                "Only access mediums created through the API may be changed or removed",
                field="accessMediumId",
            )
        return medium

    def update_medium(self, studio_id: int, customer_id: int, medium_id: int, value: str) -> AccessMedium:
        customer, version = self.studio_customer(studio_id, customer_id)
        medium = self._api_medium(customer, medium_id)
        self._check_value_free(studio_id, value, except_medium=medium.id)
        self.store.delete(K.MEDIUM_VALUE, self._medium_key(studio_id, medium.type, medium.value))
        medium.value = value
        self._save(customer, expected_version=version)
        self._file_medium(studio_id, customer.id, medium)
        self._changed(studio_id, customer.id, "UPDATED", medium)
        return medium

    def delete_medium(self, studio_id: int, customer_id: int, medium_id: int) -> AccessMedium:
        customer, version = self.studio_customer(studio_id, customer_id)
        medium = self._api_medium(customer, medium_id)
        customer.mediums = [m for m in customer.mediums if m.id != medium_id]
        self._save(customer, expected_version=version)
        self.store.delete(K.MEDIUM_VALUE, self._medium_key(studio_id, medium.type, medium.value))
        self._changed(studio_id, customer.id, "DELETED", medium)
        return medium

    def _file_medium(self, studio_id: int, customer_id: int, medium: AccessMedium) -> None:
        """Index a medium's value, so the device can find whose card or PIN it is."""
        self.store.put(
            K.MEDIUM_VALUE,
            self._medium_key(studio_id, medium.type, medium.value),
            {"customer_id": customer_id, "medium_id": medium.id},
        )

    def _changed(self, studio_id: int, customer_id: int, change: str, medium: AccessMedium) -> None:
        self.unit.emit(
            MediumChanged(
                at=self.unit.now(), studio_id=studio_id, customer_id=customer_id, change=change, medium=medium.public()
            )
        )

    # ------------------------------------------------------------------ at the door

    def find_credential(self, kind: str, value: str) -> tuple[Customer, str, bool] | None:
        """The customer a credential presented at a door belongs to: (customer, what matched, expired)."""
        if kind in ("qr", "barcode"):
            alias = self.store.get(K.QR, value)
            if alias is not None:
                customer = self._record(alias.data["customer_id"])
                if customer is not None and customer.qr_content == value:
                    expired = customer.qr_expires_at is None or self.unit.now_s() >= customer.qr_expires_at
                    return customer, "access code", expired
        for studio in self.store.scan(K.STUDIO):
            for medium_type in PRESENTED_AS[kind]:
                alias = self.store.get(K.MEDIUM_VALUE, self._medium_key(int(studio.key), medium_type, value))
                if alias is not None:
                    customer = self._record(alias.data["customer_id"])
                    if customer is not None:
                        return customer, medium_type, False
        return None
