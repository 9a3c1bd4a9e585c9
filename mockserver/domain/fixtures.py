"""Turning fixture data (already parsed from YAML) into a building."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .errors import Invalid
from .model import AccessMedium, Customer

if TYPE_CHECKING:
    from .building import Building


#: the fields each kind of fixture entry may have
FIELDS = {
    "owner": {"id", "uuid", "login", "password", "name", "vms_token", "seam_token"},
    "studio": {"id", "name", "api_keys"},
    "api key": {"key", "scopes"},
    "intercom": {
        "id",
        "uuid",
        "owner",
        "title",
        "model",
        "address",
        "department",
        "online",
        "created_at",
        "admits_studios",
        "unlock_ms",
    },
    "customer": {
        "id",
        "studio",
        "first_name",
        "last_name",
        "email",
        "customer_number",
        "status",
        "date_of_birth",
        "gender",
        "access_refusal",
        "mediums",
    },
    "medium": {"id", "type", "value", "via_api"},
    "code": {"id", "uuid", "intercom", "title", "digits", "created_by", "expires_in_days", "expired_at"},
    "bulk_codes": {"intercom", "count", "title", "created_by", "expires_in_days"},
}


def _require(entry: dict[str, Any], name: str, where: str) -> Any:
    if name not in entry:
        raise Invalid(f"{where}: '{name}' is required", field=name)
    return entry[name]


def _entries(data: dict[str, Any], section: str, kind: str, where: str = "fixtures") -> list[dict[str, Any]]:
    """The entries of a list section, each a mapping of known fields (a misspelt field is named, not dropped)."""
    entries = data.get(section) or []
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise Invalid(f"{where}: '{section}' must be a list of mappings", field=section)
    for entry in entries:
        unknown = sorted(set(entry) - FIELDS[kind])
        if unknown:
            name = f"{kind} {entry['id']}" if "id" in entry else kind
            raise Invalid(
                f"{where}: {name}: unknown field {', '.join(map(repr, unknown))} "
                f"(known: {', '.join(sorted(FIELDS[kind]))})",
                field=unknown[0],
            )
        if "uuid" in entry and not _is_uuid(entry["uuid"]):
            raise Invalid(f"{where}: {kind} {entry.get('id', '')}: uuid {entry['uuid']!r} is not a UUID", field="uuid")
    return entries


def _is_uuid(value: Any) -> bool:
    try:
        return str(uuid.UUID(str(value))) == str(value).lower()
    except ValueError:
        return False


def apply_fixtures(building: Building, data: dict[str, Any]) -> None:
    """Create owners, studios, API keys, intercoms, customers and codes. Unknown keys are refused, so a
    misspelt fixture file fails loudly instead of loading half a building. Runs inside `Building.load_fixtures`,
    one operation: the rule modules are used directly."""
    credentials, devices, codes, customers = building.parts
    # `clock` and `choices` are the runtime's (the simulated clock's start, the mock's choices), not the building's.
    known = {"owners", "studios", "intercoms", "customers", "codes", "bulk_codes", "clock", "choices"}
    unknown = set(data) - known
    if unknown:
        raise Invalid(f"fixtures: unknown sections {sorted(unknown)}")

    for entry in _entries(data, "owners", "owner"):
        owner = credentials.add_owner(
            id=int(_require(entry, "id", "owner")),
            login=str(_require(entry, "login", "owner")),
            password=str(_require(entry, "password", "owner")),
            name=str(entry.get("name", entry["login"])),
            uuid_=entry.get("uuid"),
        )
        for api in ("vms", "seam"):
            # Every owner gets a pinned token per API, so the credentials endpoint always has one to show.
            token = credentials.add_token(api=api, user_id=owner.id, token=entry.get(f"{api}_token"), pinned=True)
            credentials.pin_token(api, owner.id, token)

    for entry in _entries(data, "studios", "studio"):
        studio = credentials.add_studio(id=int(_require(entry, "id", "studio")), name=str(entry.get("name", "")))
        for key in _entries(entry, "api_keys", "api key", f"fixtures: studio {studio.id}"):
            credentials.add_api_key(
                key=str(_require(key, "key", "api key")),
                studio_id=studio.id,
                scopes=key.get("scopes", ["CUSTOMER_READ", "CUSTOMER_ACCESS_MEDIUM_WRITE"]),
            )

    for entry in _entries(data, "intercoms", "intercom"):
        for name in ("id", "owner", "title"):
            _require(entry, name, "intercom")
        fields = dict(entry)
        fields["owner_id"] = int(fields.pop("owner"))
        fields["admits_studios"] = [int(s) for s in fields.get("admits_studios", [])]
        if "created_at" in fields and fields["created_at"] is not None:
            fields["created_at"] = int(datetime.fromisoformat(str(fields["created_at"])).timestamp())
        devices.add_intercom(**fields)

    next_medium = 1_000
    for entry in _entries(data, "customers", "customer"):
        mediums = []
        for medium in _entries(entry, "mediums", "medium", f"fixtures: customer {entry.get('id', '')}"):
            next_medium += 1
            mediums.append(
                AccessMedium(
                    id=int(medium.get("id", next_medium)),
                    type=str(_require(medium, "type", "medium")),
                    value=str(_require(medium, "value", "medium")),
                    via_api=bool(medium.get("via_api", False)),
                )
            )
        customers.add(
            Customer(
                id=int(_require(entry, "id", "customer")),
                studio_id=int(_require(entry, "studio", "customer")),
                first_name=str(entry.get("first_name", "")),
                last_name=str(entry.get("last_name", "")),
                status=str(entry.get("status", "MEMBER")),
                email=entry.get("email"),
                customer_number=entry.get("customer_number"),
                date_of_birth=entry.get("date_of_birth"),
                gender=entry.get("gender"),
                access_refusal=bool(entry.get("access_refusal", False)),
                created_at=int(building.now().timestamp()),
                mediums=mediums,
            )
        )

    for entry in _entries(data, "codes", "code"):
        intercom = devices.intercom(int(_require(entry, "intercom", "code")))
        if entry.get("expired_at") is not None:
            expires = datetime.fromisoformat(str(entry["expired_at"]).replace("Z", "+00:00"))
            expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
        else:
            expires = building.now() + timedelta(days=float(entry.get("expires_in_days", 365)))
        created_by = entry.get("created_by")
        codes.create(
            intercom=intercom,
            title=str(entry.get("title", "Code")),
            expired_at=expires,
            created_by=int(created_by) if created_by is not None else None,
            digits=str(entry["digits"]) if "digits" in entry else None,
            allow_past=True,  # a recorded building may hold codes already expired, still listed for a day
            code_id=int(entry["id"]) if entry.get("id") is not None else None,
            code_uuid=str(entry["uuid"]) if entry.get("uuid") else None,
        )

    for entry in _entries(data, "bulk_codes", "bulk_codes"):
        _bulk_codes(building, entry)


def _bulk_codes(building: Building, entry: dict[str, Any]) -> None:
    """``count`` generated codes on one intercom, for load tests and benchmarks (a big building in one line)."""
    _, devices, codes, _ = building.parts
    intercom = devices.intercom(int(_require(entry, "intercom", "bulk_codes")))
    count = int(_require(entry, "count", "bulk_codes"))
    created_by = entry.get("created_by", intercom.owner_id)
    expires = building.now() + timedelta(days=float(entry.get("expires_in_days", 365)))
    title = str(entry.get("title", "Load code"))
    for done in range(1, count + 1):
        codes.create(
            intercom=intercom,
            title=f"{title} {done}",
            expired_at=expires,
            created_by=int(created_by) if created_by is not None else None,
        )
