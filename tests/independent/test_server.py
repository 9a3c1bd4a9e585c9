"""The independent server keeps the documents' promises: one building behind three APIs, paging, push."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import websockets
from starlette.testclient import TestClient

from tests.independent import Served, create_app, serve
from tests.independent.world import Customer

CODES = "/vms/api/v1/intercom/codes"


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    with serve() as served:
        yield served


def later(hours: int) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M")


def vms_headers(client: httpx.Client, server: Served, user: int = 0) -> dict[str, str]:
    answer = client.post("/vms/api/v1/token", json=server.credentials["vms"]["users"][user])
    assert answer.status_code == 200
    return {"Authorization": answer.json()["access_token"], "Accept": "application/json"}


def seam_headers(server: Served, owner: int = 0) -> dict[str, str]:
    return {"Authorization": "Bearer " + server.credentials["seam"]["tokens"][owner]}


def test_a_code_created_through_vms_is_listed_by_vms_and_by_seam(server: Served) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        headers = vms_headers(client, server)
        intercom = server.credentials["vms"]["intercom_id"]
        expires = later(24)
        body = {"title": "Plumber", "expired_at": expires}
        created = client.post(f"/vms/api/v1/intercom/{intercom}/codes", json=body, headers=headers)
        assert created.status_code == 200
        code = created.json()
        assert code["code"].isdigit() and code["is_expired"] is False and code["intercom"]["id"] == intercom
        day_after = datetime.strptime(expires, "%Y-%m-%d %H:%M") + timedelta(days=1)
        assert code["will_deleted_at"] == day_after.strftime("%Y-%m-%d %H:%M:%S")

        listed = client.get(CODES, params={"per_page": 100}, headers=headers).json()
        assert code in listed["data"] and listed["meta"]["total"] == len(listed["data"])

        seam_intercom = server.credentials["seam"]["intercom_id"]
        seen = client.get("/seam/access_codes", params={"intercom_id": seam_intercom}, headers=seam_headers(server))
        named = [c for c in seen.json()["access_codes"] if c["name"] == "Plumber"]
        assert [c["code"] for c in named] == [code["code"]] and named[0]["intercom_id"] == seam_intercom
        other = client.get("/seam/access_codes", headers=seam_headers(server, 1)).json()["access_codes"]
        assert all(c["name"] != "Plumber" for c in other)


def test_bulk_delete_removes_own_codes_and_ignores_foreign_and_unknown_ids(server: Served) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        anna, boris = vms_headers(client, server, 0), vms_headers(client, server, 1)
        body = {"title": "Mine", "expired_at": later(48)}
        mine = client.post("/vms/api/v1/intercom/180/codes", json=body, headers=anna).json()
        theirs = client.post("/vms/api/v1/intercom/183/codes", json=body, headers=boris).json()

        ids = [mine["id"], theirs["id"], 999999]
        assert client.request("DELETE", CODES, json={"ids": ids}, headers=anna).status_code == 204

        def listed(headers: dict[str, str]) -> set[int]:
            return {c["id"] for c in client.get(CODES, params={"per_page": 500}, headers=headers).json()["data"]}

        assert mine["id"] not in listed(anna)
        assert theirs["id"] in listed(boris)
        too_many = client.request("DELETE", CODES, json={"ids": list(range(201))}, headers=anna)
        assert too_many.status_code == 422 and "ids" in too_many.json()["errors"]


def test_vms_pages_follow_the_laravel_paginator(server: Served) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        headers = vms_headers(client, server)
        total = client.get(CODES, headers=headers).json()["meta"]["total"]
        seen: list[int] = []
        url = f"{server.base_url}{CODES}?page=1"
        while url and len(seen) <= total:
            page = client.get(url + "&per_page=1", headers=headers).json()  # the links carry only `page`
            assert [page["meta"]["links"][i]["label"] for i in (0, -1)] == ["pagination.previous", "pagination.next"]
            seen += [c["id"] for c in page["data"]]
            url = page["links"]["next"]
        assert seen == sorted(seen) and len(seen) == total
        assert client.get(CODES, params={"page": "abc"}, headers=headers).json()["meta"]["current_page"] == 1
        assert client.get(CODES, params={"per_page": 0}, headers=headers).status_code == 422


def walk_customers(client: httpx.Client | TestClient, **params: Any) -> list[int]:
    seen: list[int] = []
    while True:
        page = client.get("/magicline/v1/customers", params=params).json()
        assert len(page["result"]) <= params.get("sliceSize", 100)
        seen += [c["id"] for c in page["result"]]
        if not page["hasNext"]:
            return seen
        params["offset"] = page["offset"]


def test_magicline_cursor_paging_returns_every_customer_exactly_once(server: Served) -> None:
    keys = server.credentials["magicline"]
    with httpx.Client(base_url=server.base_url, headers={"X-API-KEY": keys["api_key"]}) as client:
        seen = walk_customers(client, sliceSize=50)
        assert sorted(seen) == sorted(c.id for c in server.world.customers.values() if c.studio == 1)
        members = walk_customers(client, sliceSize=50, customerStatus="MEMBER")
        assert {server.world.customers[i].status for i in members} == {"MEMBER"}
        assert client.get("/magicline/v1/customers", params={"sliceSize": 49}).status_code == 400
        assert client.get("/magicline/v1/customers", params={"offset": "not a cursor"}).json()["reference"] == "offset"


def test_magicline_cursor_walks_a_big_studio_in_slices() -> None:
    app = create_app()
    world = app.state.world
    for n in range(130):  # names repeat, so the order falls back on ids
        world.customers[10**11 + n] = Customer(10**11 + n, 2, f"F{n % 7}", f"L{n % 5}", "MEMBER", datetime.now(UTC))
    key = next(k for k, v in world.api_keys.items() if v.studio == 2)
    with TestClient(app, headers={"X-API-KEY": key}) as client:
        seen = walk_customers(client, sliceSize=50)
    assert len(seen) == len(set(seen)) and set(seen) == {c.id for c in world.customers.values() if c.studio == 2}


def test_magicline_scopes_studios_and_head(server: Served) -> None:
    keys = server.credentials["magicline"]
    full, read_only = {"X-API-KEY": keys["api_key"]}, {"X-API-KEY": keys["read_only_api_key"]}
    customer = f"/magicline/v1/customers/{keys['customer_id']}"
    with httpx.Client(base_url=server.base_url) as client:
        card = {"type": "CARD_NUMBER", "value": "77"}
        refused = client.post(f"{customer}/access-mediums", json=card, headers=read_only)
        assert refused.status_code == 403 and refused.json()["errorMessage"]
        other_studio = client.get(f"{customer}/access-code", headers={"X-API-KEY": keys["other_studio_api_key"]})
        assert other_studio.status_code == 404
        added = client.post(f"{customer}/access-mediums", json=card, headers=full).json()
        mediums = client.get(customer, headers=read_only).json()["accessMediums"]
        assert added in mediums
        seeded = next(m for m in mediums if m["id"] != added["id"])
        assert client.delete(f"{customer}/access-mediums/{seeded['id']}", headers=full).status_code == 403
        assert client.delete(f"{customer}/access-mediums/{added['id']}", headers=full).status_code == 200
        assert client.head("/magicline/no/such/thing", headers=read_only).status_code == 200
        assert client.head("/magicline/no/such/thing").status_code == 401


def test_seam_oauth_flow_hands_out_a_working_token(server: Served) -> None:
    user = server.credentials["vms"]["users"][1]
    with httpx.Client(base_url=server.base_url + "/seam") as client:
        assert client.get("/authorize", params={"redirect_uri": "https://evil.example.com/cb"}).status_code == 400
        redirect = "https://acme.integrations.getseam.com/callback?x=1"
        assert "<form" in client.get("/authorize", params={"redirect_uri": redirect}).text
        login = {"username": user["login"], "password": user["password"], "redirect_uri": redirect}
        back = client.post("/authorize", data=login)
        assert back.status_code == 302 and back.headers["location"].startswith(redirect + "&code=")
        grant = {"code": parse_qs(urlsplit(back.headers["location"]).query)["code"][0], "client_id": "seam"}
        wrong = client.post("/oauth/token", json={**grant, "client_secret": "nope"})
        assert wrong.status_code == 401 and wrong.json()["error_id"]
        token = client.post("/oauth/token", json={**grant, "client_secret": "seamsecret"}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert {i["name"] for i in client.get("/door_locks", headers=headers).json()["intercoms"]} == {
            "Front door",
            "Yard",
        }
        offline = next(i.uuid for i in server.world.intercoms.values() if not i.is_online)  # Anna's garage
        assert client.post(f"/intercoms/{offline}/unlock", json={}, headers=headers).status_code == 404
        unlock = client.post(f"/intercoms/{offline}/unlock", json={"unlock_time": 3000}, headers=seam_headers(server))
        assert unlock.status_code == 500 and unlock.json()["error_id"] == "INTERCOM_DISCONNECTED"


async def next_event(socket: Any, event: str) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), 5))
        if message["event"] == event:
            return message


async def subscribed_socket(client: httpx.AsyncClient, headers: dict[str, str], user_id: int) -> tuple[Any, str]:
    ws_url = (await client.get("/vms/api/v1/wsurl", headers=headers)).json()["ws_url"]
    socket = await websockets.connect(ws_url)
    socket_id = json.loads((await next_event(socket, "pusher:connection_established"))["data"])["socket_id"]
    channel = f"private-user.{user_id}"
    form = {"socket_id": socket_id, "channel_name": channel}
    auth = (await client.post("/vms/api/v1/broadcasting/auth", data=form, headers=headers)).json()
    await socket.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel, **auth}}))
    await next_event(socket, "pusher_internal:subscription_succeeded")
    return socket, socket_id


def test_pusher_push_reaches_other_devices_but_not_the_sender(server: Served) -> None:
    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            login = (await client.post("/vms/api/v1/token", json=server.credentials["vms"]["users"][0])).json()
            headers = {"Authorization": login["access_token"]}
            listener, _ = await subscribed_socket(client, headers, login["user"]["id"])
            sender, sender_id = await subscribed_socket(client, headers, login["user"]["id"])

            body = {"title": "Pushed", "expired_at": later(5)}
            from_sender = {**headers, "X-Socket-ID": sender_id}
            created = await client.post("/vms/api/v1/intercom/180/codes", json=body, headers=from_sender)
            pushed = json.loads((await next_event(listener, "App\\Events\\UserPush"))["data"])
            assert pushed == {"type": "intercom.code.store", "intercom_code": created.json()}

            await client.request("DELETE", CODES, json={"ids": [created.json()["id"]]}, headers=headers)
            for socket in (listener, sender):  # the sender's first push is this delete, not its own store
                pushed = json.loads((await next_event(socket, "App\\Events\\UserPush"))["data"])
                assert pushed == {"type": "intercom.code.delete", "deleted_ids": [created.json()["id"]]}
            await sender.send(json.dumps({"event": "pusher:ping", "data": {}}))
            await next_event(sender, "pusher:pong")
            await listener.close()
            await sender.close()

    asyncio.run(scenario())


def test_an_expired_code_stays_a_day_then_is_gone() -> None:
    now = [datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC)]
    app = create_app(clock=lambda: now[0])
    world = app.state.world
    code = world.create_code(world.intercoms[180], "Short", datetime(2030, 1, 1, 13, 0, tzinfo=UTC))
    with TestClient(app, base_url="http://test/vms") as client:
        login = client.post("/api/v1/token", json={"login": "anna.resident", "password": "secret-anna.resident"})
        headers = {"Authorization": login.json()["access_token"]}

        def listed() -> dict[int, bool]:
            return {
                c["id"]: c["is_expired"] for c in client.get("/api/v1/intercom/codes", headers=headers).json()["data"]
            }

        assert listed()[code.id] is False
        now[0] = datetime(2030, 1, 2, 12, 59, tzinfo=UTC)
        assert listed()[code.id] is True
        now[0] = datetime(2030, 1, 2, 13, 0, tzinfo=UTC)
        assert code.id not in listed()
