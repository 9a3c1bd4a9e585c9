"""The control API (openapi/control.yaml): credentials, state, clock, faults, journal, devices, webhooks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connexion import NoContent

from .choices import CHOICES, Choices
from .contracts import load_contract
from .domain.errors import Invalid
from .domain.model import Intercom
from .runtime import Runtime
from .vendors import _context

#: the control API declares problem documents too, so each answer names its media type
JSON = {"Content-Type": "application/json"}


def _runtime() -> Runtime:
    return _context.runtime()


def _iso(epoch_ms: int | None) -> str | None:
    return None if epoch_ms is None else datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat()


def base_urls(runtime: Runtime) -> dict[str, str]:
    base = _context.base_url()
    return runtime.urls(base)


#: the other headers every VMS request carries; any client name of the four and any device id will do
VMS_CLIENT_HEADERS = {"X-Client": "web", "X-UUID": "doorcodes-demo"}


def magicline_headers(api_key: str) -> dict[str, str]:
    return {"X-API-KEY": api_key}


def seam_headers(access_token: str) -> dict[str, str]:
    # Seam's token endpoint answers the bare token; the header adds the scheme.
    return {"Authorization": f"Bearer {access_token}"}


def vms_headers(access_token: str) -> dict[str, str]:
    # VMS's login answers the whole header value, scheme included.
    return {"Authorization": access_token, **VMS_CLIENT_HEADERS}


def credentials_json(runtime: Runtime, urls: dict[str, str]) -> dict[str, Any]:
    """The demo credentials, as GET /_mock/credentials answers them (also used by the embedding API)."""
    from .vendors.seam import CLIENT_ID, CLIENT_SECRET

    data = runtime.building.credentials()
    owners = data["owners"]
    return {
        "base_urls": urls,
        "magicline": [
            {
                "api_key": k["api_key"],
                "studio_id": k["studio_id"],
                "scopes": k["scopes"],
                "headers": magicline_headers(k["api_key"]),
            }
            for k in data["api_keys"]
        ],
        "seam": {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "owners": [
                {
                    "owner_id": o["owner"].uuid,
                    "email": o["owner"].login,
                    "password": o["owner"].password,
                    "access_token": o["tokens"].get("seam", ""),
                    "headers": seam_headers(o["tokens"].get("seam", "")),
                }
                for o in owners
            ],
        },
        "vms": [
            {
                "user_id": o["owner"].id,
                "login": o["owner"].login,
                "password": o["owner"].password,
                "access_token": f"Bearer {o['tokens'].get('vms', '')}",
                "headers": vms_headers(f"Bearer {o['tokens'].get('vms', '')}"),
                "intercom_ids": o["intercom_ids"],
            }
            for o in owners
        ],
    }


def device_json(runtime: Runtime, intercom: Intercom) -> dict[str, Any]:
    building = runtime.building
    owner = next((o for o in building.owners() if o.id == intercom.owner_id), None)
    return {
        "id": intercom.id,
        "uuid": intercom.uuid,
        "name": intercom.title,
        "model": intercom.model,
        "address": intercom.address,
        "owner_id": owner.uuid if owner else "",
        "owner_user_id": intercom.owner_id,
        "online": intercom.online,
        "admits_studios": intercom.admits_studios,
        "door": {
            "locked": intercom.unlocked_until_ms is None,
            "unlocked_until": _iso(intercom.unlocked_until_ms),
        },
        "pending_sync": building.pending_sync(intercom.id),
        "keypad_codes": building.keypad_size(intercom.id),
    }


def clock_json(runtime: Runtime) -> dict[str, Any]:
    return {"now": runtime.clock.now().isoformat(), "frozen": runtime.clock.frozen}


# ---------------------------------------------------------------------------------------------- credentials


async def getCredentials() -> tuple[dict[str, Any], int, dict[str, str]]:
    runtime = _runtime()
    return credentials_json(runtime, base_urls(runtime)), 200, JSON


async def mintMagiclineKey(body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    key = _runtime().building.mint_api_key(body["studio_id"], body.get("scopes"))
    return {**key, "headers": magicline_headers(key["api_key"])}, 201, JSON


async def mintSeamToken(body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    building = _runtime().building
    owner = next((o for o in building.owners() if o.uuid == body["owner_id"]), None)
    if owner is None:
        raise Invalid(f"no owner {body['owner_id']}", field="owner_id")
    token = building.mint_token("seam", owner.id)
    return {"access_token": token, "owner_id": owner.uuid, "headers": seam_headers(token)}, 201, JSON


async def mintVmsToken(body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    building = _runtime().building
    token = f"Bearer {building.mint_token('vms', body['user_id'])}"
    return {"access_token": token, "user_id": body["user_id"], "headers": vms_headers(token)}, 201, JSON


async def revokeSeamToken(body: dict[str, Any]) -> tuple[Any, int]:
    _runtime().building.revoke_token("seam", body["access_token"])
    return NoContent, 204


# ---------------------------------------------------------------------------------------------- state


async def resetState() -> tuple[Any, int]:
    _runtime().reset()
    return NoContent, 204


async def takeSnapshot() -> tuple[dict[str, Any], int, dict[str, str]]:
    return _runtime().snapshot(), 200, JSON


async def restoreSnapshot(body: dict[str, Any]) -> tuple[Any, int]:
    _runtime().restore(body)
    return NoContent, 204


async def getBuilding() -> tuple[dict[str, Any], int, dict[str, str]]:
    runtime = _runtime()
    building = runtime.building
    return (
        {
            "owners": [
                {"user_id": o.id, "owner_id": o.uuid, "login": o.login, "name": o.name} for o in building.owners()
            ],
            "studios": [{"studio_id": s.id, "name": s.name, "customers": n} for s, n in building.studios()],
            "intercoms": [device_json(runtime, i) for i in building.intercoms()],
        },
        200,
        JSON,
    )


async def getSettings() -> tuple[dict[str, Any], int, dict[str, str]]:
    return _runtime().settings.to_dict(), 200, JSON


async def updateSettings(body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    runtime = _runtime()
    for name, value in body.items():
        if hasattr(runtime.settings, name):
            setattr(runtime.settings, name, value)
    runtime.journal.resize(runtime.settings.journal_size)
    return runtime.settings.to_dict(), 200, JSON


# ---------------------------------------------------------------------------------------------- choices


def choices_json(choices: Choices) -> dict[str, Any]:
    return {"choices": [{**item.as_json(), "value": choices.value(item.name)} for item in CHOICES]}


async def getChoices() -> tuple[dict[str, Any], int, dict[str, str]]:
    return choices_json(_runtime().choices), 200, JSON


async def setChoices(body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    runtime = _runtime()
    values = {str(name): value for name, value in (body.get("values") or {}).items()}
    # ChoiceError is a ValueError: the control API answers it as a 400 problem, and nothing has changed.
    choices = Choices.from_arguments(preset=body.get("preset") or "default").changed(values)
    runtime.set_choices(choices)
    return choices_json(choices), 200, JSON


# ---------------------------------------------------------------------------------------------- clock


async def getClock() -> tuple[dict[str, Any], int, dict[str, str]]:
    return clock_json(_runtime()), 200, JSON


async def setClock(body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    runtime = _runtime()
    frozen = body.get("frozen")
    if "now" in body:
        # In one move: a clock frozen at a moment shows that moment, not the moment plus the time to freeze it.
        runtime.clock.set(datetime.fromisoformat(body["now"].replace("Z", "+00:00")), frozen=frozen)
    elif frozen is True:
        runtime.clock.freeze()
    elif frozen is False:
        runtime.clock.unfreeze()
    return clock_json(runtime), 200, JSON


async def advanceClock(body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    runtime = _runtime()
    runtime.clock.advance(seconds=float(body["seconds"]))
    return clock_json(runtime), 200, JSON


# ---------------------------------------------------------------------------------------------- faults


async def listFaults() -> tuple[dict[str, Any], int, dict[str, str]]:
    return {"faults": [f.to_dict() for f in _runtime().faults.all()]}, 200, JSON


async def addFault(body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    runtime = _runtime()
    api = body["api"]
    if api not in runtime.vendors:
        raise Invalid(f"the mock does not serve the {api} API", field="api")
    operation_id = body.get("operation_id")
    status = body.get("status")
    operations = load_contract(api).operations
    if operation_id is not None:
        if operation_id not in operations:
            raise Invalid(f"{api} has no operation {operation_id}", field="operation_id")
        if status is not None and status not in operations[operation_id].statuses:
            raise Invalid(f"{operation_id} does not declare status {status}", field="status")
    elif status is not None and not any(status in operation.statuses for operation in operations.values()):
        raise Invalid(f"no {api} operation declares status {status}", field="status")
    fault = runtime.faults.add(
        api=api,
        operation_id=operation_id,
        tenant=body.get("tenant"),
        status=status,
        latency_ms=body.get("latency_ms", 0),
        probability=body.get("probability", 1.0),
        count=body.get("count"),
    )
    return fault.to_dict(), 201, JSON


async def clearFaults() -> tuple[Any, int]:
    _runtime().faults.clear()
    return NoContent, 204


async def deleteFault(fault_id: str) -> tuple[Any, int]:
    if not _runtime().faults.remove(fault_id):
        from .domain.errors import NotFound

        raise NotFound("Fault", fault_id)
    return NoContent, 204


# ---------------------------------------------------------------------------------------------- journal


async def getJournal(
    api: str | None = None,
    operation_id: str | None = None,
    method: str | None = None,
    path: str | None = None,
    status: int | None = None,
    limit: int = 100,
) -> tuple[dict[str, Any], int, dict[str, str]]:
    entries = _runtime().journal.query(
        api=api, operation_id=operation_id, method=method, path=path, status=status, limit=limit
    )
    return {"entries": [e.to_dict() for e in entries]}, 200, JSON


async def clearJournal() -> tuple[Any, int]:
    _runtime().journal.clear()
    return NoContent, 204


# ---------------------------------------------------------------------------------------------- devices


async def getDevice(intercom: str) -> tuple[dict[str, Any], int, dict[str, str]]:
    runtime = _runtime()
    return device_json(runtime, runtime.building.intercom(intercom)), 200, JSON


async def setDeviceOnline(intercom: str, body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    runtime = _runtime()
    return device_json(runtime, runtime.building.set_online(intercom, body["online"])), 200, JSON


async def presentCredential(intercom: str, body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    runtime = _runtime()
    decision = runtime.building.present(intercom, body["kind"], body["value"])
    device = runtime.building.intercom(intercom)
    return (
        {
            "granted": decision.granted,
            "reason": decision.reason,
            "detail": decision.detail,
            "door": {
                "locked": device.unlocked_until_ms is None,
                "unlocked_until": _iso(device.unlocked_until_ms),
            },
        },
        200,
        JSON,
    )


async def programCode(intercom: str, body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    runtime = _runtime()
    building = runtime.building
    device = building.intercom(intercom)
    expires = (
        datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
        if body.get("expires_at")
        else datetime.fromtimestamp(runtime.clock.now().timestamp() + 365 * 86400, UTC)
    )
    code = building.create_code(
        intercom=device,
        title=body["name"],
        expired_at=expires,
        created_by=None,
        owner_uuid=body.get("owner_id"),
        digits=body.get("code"),
    )
    return (
        {
            "id": code.id,
            "access_code_id": code.uuid,
            "intercom_id": device.uuid,
            "owner_id": code.owner_uuid,
            "code": code.digits,
            "name": code.title,
            "expires_at": datetime.fromtimestamp(code.expired_at, UTC).isoformat(),
        },
        201,
        JSON,
    )


async def getDeviceEvents(intercom: str, limit: int = 100) -> tuple[dict[str, Any], int, dict[str, str]]:
    return {"events": _runtime().building.device_log(intercom, limit)}, 200, JSON


# ---------------------------------------------------------------------------------------------- webhooks


async def listWebhooks() -> tuple[dict[str, Any], int, dict[str, str]]:
    return {"webhooks": [vars(h).copy() for h in _runtime().webhooks.all()]}, 200, JSON


async def registerWebhook(body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    runtime = _runtime()
    if all(studio.id != body["studio_id"] for studio, _ in runtime.building.studios()):
        raise Invalid(f"no studio {body['studio_id']}", field="studio_id")
    hook = runtime.webhooks.register(body["url"], body["studio_id"], body.get("api_key"))
    return vars(hook).copy(), 201, JSON


async def deleteWebhook(webhook_id: str) -> tuple[Any, int]:
    if not _runtime().webhooks.remove(webhook_id):
        from .domain.errors import NotFound

        raise NotFound("Webhook", webhook_id)
    return NoContent, 204


async def listWebhookDeliveries() -> tuple[dict[str, Any], int, dict[str, str]]:
    return {"deliveries": _runtime().webhooks.deliveries()}, 200, JSON
