"""A building fixture from a recorded session with a vendor (HAR 1.2, as `conformance proxy --record` writes it,
or a browser's network panel exports): the owners, intercoms, codes, customers and access mediums its answers
showed, so the mock can start from what the vendor's sandbox held.

What a recording cannot show is made up and said so in the fixture's comments: passwords (recordings are
redacted), tokens (the mock pins `har-<api>-<owner id>`), the Magicline key (`har-magicline`). Ids, digits,
titles and expiries are kept.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from .contracts import load_contract

__all__ = ["fixtures_from_har"]

APIS = ("vms", "seam", "magicline")
#: owner id of intercoms and codes whose owner the recording does not show
UNKNOWN_OWNER = 1
PASSWORD = "changeme"


def fixtures_from_har(har: dict[str, Any]) -> dict[str, Any]:
    """The fixture (the demo file's shape) that the recording's successful answers describe."""
    building = _Building()
    answers = []
    for entry in har.get("log", {}).get("entries", []):
        response = entry.get("response", {})
        if not 200 <= int(response.get("status", 0)) < 300:
            continue
        api, operation = _operation(entry)
        body = _json(response.get("content", {}).get("text"))
        if api is not None and operation is not None and body is not None:
            answers.append((f"{api}_{operation}", body, entry))
    # Logins first, wherever they were: they say whose codes and intercoms the other answers show.
    answers.sort(key=lambda answer: answer[0] != "vms_login")
    for name, body, entry in answers:
        handler = getattr(building, name, None)
        if handler is not None:
            handler(body, entry)
    return building.fixture()


def _operation(entry: dict[str, Any]) -> tuple[str | None, str | None]:
    """The API and operation an entry went to: as the proxy named them, else found by the URL's path."""
    if entry.get("_api") in APIS and entry.get("_operation"):
        return entry["_api"], entry["_operation"]
    request = entry.get("request", {})
    path, method = urlsplit(request.get("url", "")).path, request.get("method", "GET")
    parts = [part for part in path.split("/") if part]
    for start in range(len(parts)):  # the longest path first: a base URL is a prefix of it
        candidate = "/" + "/".join(parts[start:])
        for api in APIS:
            found = load_contract(api).find(method, candidate)
            if found is not None:
                return api, found.operation_id
    return None, None


def _json(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) and text else None
    except ValueError:
        return None


def _seconds(text: Any) -> str | None:
    """A VMS `Y-m-d H:i:s` time as ISO 8601 UTC."""
    try:
        return datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S").strftime("%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None


class _Building:
    def __init__(self) -> None:
        self.owners: dict[int, dict[str, Any]] = {}
        self.intercoms: dict[str, dict[str, Any]] = {}  # by VMS id or Seam uuid, whichever came first
        self.codes: dict[str, dict[str, Any]] = {}
        self.customers: dict[int, dict[str, Any]] = {}
        self.studios: set[int] = set()

    # -------------------------------------------------------------- VMS

    def vms_login(self, body: Any, entry: dict[str, Any]) -> None:
        user = body.get("user") if isinstance(body, dict) else None
        if isinstance(user, dict) and isinstance(user.get("id"), int):
            self._owner(user["id"], login=str(user.get("login") or f"user{user['id']}"), name=user.get("name"))

    def vms_listCodes(self, body: Any, entry: dict[str, Any]) -> None:
        for code in body.get("data", []) if isinstance(body, dict) else []:
            self.vms_createCode(code, entry)

    def vms_createCode(self, code: Any, entry: dict[str, Any]) -> None:
        if not isinstance(code, dict) or not isinstance(code.get("intercom"), dict):
            return
        owner = next(iter(self.owners), UNKNOWN_OWNER)
        intercom = self._vms_intercom(code["intercom"], owner)
        key = f"id:{code.get('id')}"
        self.codes[key] = {
            "id": code.get("id"),
            "intercom": intercom["id"],
            "title": code.get("title"),
            "digits": code.get("code"),
            "expired_at": _seconds(code.get("expired_at")),
            "created_by": owner,
        }

    def _vms_intercom(self, data: dict[str, Any], owner: int) -> dict[str, Any]:
        intercom = self.intercoms.setdefault(
            f"id:{data['id']}", {"id": data["id"], "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"vms:{data['id']}"))}
        )
        intercom.update(
            owner=owner,
            title=data.get("title"),
            address=data.get("address"),
            department=data.get("department"),
            online=bool(data.get("is_online", True)),
        )
        return intercom

    # -------------------------------------------------------------- Seam

    def seam_listIntercoms(self, body: Any, entry: dict[str, Any]) -> None:
        for item in body.get("intercoms", []) if isinstance(body, dict) else []:
            self.seam_getIntercom(item, entry)

    def seam_getIntercom(self, item: Any, entry: dict[str, Any]) -> None:
        if not isinstance(item, dict) or not item.get("intercom_id"):
            return
        intercom = self._seam_intercom(str(item["intercom_id"]))
        intercom.update(title=item.get("name"), address=item.get("address"), model=item.get("model"))

    def seam_listAccessCodes(self, body: Any, entry: dict[str, Any]) -> None:
        for item in body.get("access_codes", []) if isinstance(body, dict) else []:
            self.seam_getAccessCode(item, entry)

    def seam_getAccessCode(self, item: Any, entry: dict[str, Any]) -> None:
        if not isinstance(item, dict) or not item.get("access_code_id") or not item.get("intercom_id"):
            return
        intercom = self._seam_intercom(str(item["intercom_id"]))
        self.codes.setdefault(
            f"uuid:{item['access_code_id']}",
            {
                "uuid": item["access_code_id"],
                "intercom": intercom["id"],
                "title": item.get("name"),
                "digits": item.get("code"),
            },
        )

    def _seam_intercom(self, intercom_uuid: str) -> dict[str, Any]:
        for intercom in self.intercoms.values():
            if intercom.get("uuid") == intercom_uuid:
                return intercom
        ident = 9000 + len(self.intercoms)
        owner = next(iter(self.owners), UNKNOWN_OWNER)
        return self.intercoms.setdefault(f"uuid:{intercom_uuid}", {"id": ident, "uuid": intercom_uuid, "owner": owner})

    # -------------------------------------------------------------- Magicline

    def magicline_getCustomers(self, body: Any, entry: dict[str, Any]) -> None:
        for item in body.get("result", []) if isinstance(body, dict) else []:
            self.magicline_getCustomerById(item, entry)

    def magicline_getCustomerById(self, item: Any, entry: dict[str, Any]) -> None:
        if not isinstance(item, dict) or not isinstance(item.get("id"), int):
            return
        studio = int(item["studioId"]) if isinstance(item.get("studioId"), int) else 1
        self.studios.add(studio)
        mediums = [
            {"id": m["id"], "type": m["type"], "value": str(m.get("value", ""))}
            for m in item.get("accessMediums") or []
            if isinstance(m, dict) and isinstance(m.get("id"), int) and m.get("type")
        ]
        self.customers[item["id"]] = {
            "id": item["id"],
            "studio": studio,
            "first_name": item.get("firstName", ""),
            "last_name": item.get("lastName", ""),
            "status": item.get("status") or item.get("customerStatus") or "MEMBER",
            "mediums": mediums,
        }

    def magicline_addAccessMediums(self, body: Any, entry: dict[str, Any]) -> None:
        path = urlsplit(entry.get("request", {}).get("url", "")).path.split("/")
        customer_id = next((int(part) for part in reversed(path) if part.isdigit()), None)
        customer = self.customers.get(customer_id) if customer_id is not None else None
        if customer is not None and isinstance(body, dict) and isinstance(body.get("id"), int):
            customer["mediums"] = [m for m in customer["mediums"] if m["id"] != body["id"]]
            customer["mediums"].append(
                {"id": body["id"], "type": body.get("type"), "value": str(body.get("value", "")), "via_api": True}
            )

    magicline_addAccessMedium = magicline_addAccessMediums
    magicline_updateAccessMediums = magicline_addAccessMediums

    # -------------------------------------------------------------- the fixture

    def _owner(self, ident: int, *, login: str, name: Any = None) -> dict[str, Any]:
        return self.owners.setdefault(
            ident,
            {
                "id": ident,
                "login": login,
                "password": PASSWORD,
                "name": name or login,
                "vms_token": f"har-vms-{ident}",
                "seam_token": f"har-seam-{ident}",
            },
        )

    def fixture(self) -> dict[str, Any]:
        owners = set(self.owners)
        for intercom in self.intercoms.values():
            intercom.setdefault("owner", UNKNOWN_OWNER)
            owners.add(intercom["owner"])
        for ident in owners - set(self.owners):
            self._owner(ident, login=f"owner{ident}@recorded.test")
        data: dict[str, Any] = {"owners": list(self.owners.values())}
        if self.studios:
            data["studios"] = [
                {"id": studio, "name": f"Studio {studio}", "api_keys": [{"key": f"har-magicline-{studio}"}]}
                for studio in sorted(self.studios)
            ]
        data["intercoms"] = [
            {key: value for key, value in intercom.items() if value is not None} for intercom in self.intercoms.values()
        ]
        data["customers"] = list(self.customers.values())
        data["codes"] = [
            {key: value for key, value in code.items() if value is not None}
            for code in self.codes.values()
            if code.get("digits")
        ]
        return data
