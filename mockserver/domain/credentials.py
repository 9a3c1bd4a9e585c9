"""Who may do what: owners (VMS users who also connect to Seam), studios, Magicline API keys with scopes, bearer
tokens and their sessions, Seam's OAuth codes. Record kinds: owner, owner_login, owner_uuid, studio, api_key,
token, session, oauth_code, and the pinned demo tokens in meta."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from .errors import Invalid, NotFound, TooManySessions, Unauthenticated
from .kinds import K
from .model import MAGICLINE_SCOPES, Owner, Studio
from .unit import UnitOfWork

__all__ = ["Credentials"]


class Credentials:
    def __init__(self, unit: UnitOfWork) -> None:
        self.unit = unit
        self.store = unit.store

    # ------------------------------------------------------------------ owners and studios

    def add_owner(self, *, id: int, login: str, password: str, name: str, uuid_: str | None = None) -> Owner:
        now = int(self.unit.now_s())
        owner = Owner(
            id=id,
            uuid=uuid_ or self.unit.uuid(),
            login=login,
            password=password,
            name=name,
            created_at=now,
            updated_at=now,
        )
        self.store.put(K.OWNER, str(id), owner.to_data(), expected_version=0)
        self.store.put(K.OWNER_BY_LOGIN, login.lower(), {"id": id}, expected_version=0)
        self.store.put(K.OWNER_BY_UUID, owner.uuid, {"id": id}, expected_version=0)
        return owner

    def owner(self, user_id: int) -> Owner:
        record = self.store.get(K.OWNER, str(user_id))
        if record is None:
            raise NotFound("User", user_id)
        return Owner.from_data(record.data)

    def owner_by_login(self, login: str) -> Owner | None:
        alias = self.store.get(K.OWNER_BY_LOGIN, login.lower())
        return self.owner(alias.data["id"]) if alias else None

    def owners(self) -> list[Owner]:
        return [Owner.from_data(r.data) for r in self.store.scan(K.OWNER)]

    def add_studio(self, *, id: int, name: str) -> Studio:
        studio = Studio(id=id, name=name)
        self.store.put(K.STUDIO, str(id), studio.to_data(), expected_version=0)
        return studio

    def studio(self, studio_id: int) -> Studio:
        record = self.store.get(K.STUDIO, str(studio_id))
        if record is None:
            raise NotFound("Studio", studio_id, field="studio_id")
        return Studio.from_data(record.data)

    def studios(self) -> list[tuple[Studio, int]]:
        """Every studio with its number of customers."""
        return [
            (Studio.from_data(r.data), self.store.count(K.CUSTOMERS_BY_STUDIO, r.key))
            for r in self.store.scan(K.STUDIO)
        ]

    # ------------------------------------------------------------------ Magicline keys

    def add_api_key(self, *, key: str, studio_id: int, scopes: Iterable[str]) -> dict[str, Any]:
        self.studio(studio_id)
        scopes = sorted(set(scopes))
        unknown = set(scopes) - set(MAGICLINE_SCOPES)
        if unknown:
            raise Invalid(f"unknown scopes {sorted(unknown)}", field="scopes")
        data = {"studio_id": studio_id, "scopes": scopes}
        self.store.put(K.API_KEY, key, data, expected_version=0)
        return {"api_key": key, **data}

    def api_key(self, key: str) -> dict[str, Any] | None:
        """The studio and scopes of a Magicline API key, or None."""
        record = self.store.get(K.API_KEY, key)
        return record.data if record else None

    def mint_api_key(self, studio_id: int, scopes: Iterable[str] | None = None) -> dict[str, Any]:
        return self.add_api_key(
            key="ml_" + self.unit.secret(16),
            studio_id=studio_id,
            scopes=MAGICLINE_SCOPES if scopes is None else scopes,
        )

    # ------------------------------------------------------------------ bearer tokens

    def add_token(self, *, api: str, user_id: int, token: str | None = None, pinned: bool = False) -> str:
        """A bearer token for a VMS user or a Seam owner. Pinned tokens (the demo's) never count as sessions."""
        self.owner(user_id)
        token = token or self.unit.secret()
        session_id = hashlib.sha256(token.encode()).hexdigest() + self.unit.secret(8)
        seq = self.store.next_id("session")
        index = {} if pinned else {K.SESSIONS_BY_USER: (f"{api}:{user_id}", seq)}
        self.store.put(
            K.TOKEN,
            token,
            {"api": api, "user_id": user_id, "session_id": session_id, "pinned": pinned, "seq": seq},
            expected_version=0,
            index=index,
        )
        self.store.put(K.SESSION, session_id, {"token": token})
        return token

    def vms_login(self, login: str, password: str, *, session_id: str | None = None) -> tuple[Owner, str, str]:
        """Log a VMS user in; answers the owner, a new bearer token and its session id."""
        owner = self.owner_by_login(login)
        if owner is None or owner.password != password:
            raise Invalid("These credentials do not match our records.", field="login")
        if session_id:
            ended = self.store.get(K.SESSION, session_id)
            if ended is not None:
                held = self.store.get(K.TOKEN, ended.data["token"])
                if held and held.data["user_id"] == owner.id and not held.data["pinned"]:
                    self.store.delete(K.TOKEN, ended.data["token"])
                    self.store.delete(K.SESSION, session_id)
        sessions = self.store.page(K.SESSIONS_BY_USER, f"vms:{owner.id}", limit=1)
        if sessions.total >= self.unit.rules.vms_max_sessions:
            raise TooManySessions("Too many sessions.", session_id=sessions.records[0].data["session_id"])
        token = self.add_token(api="vms", user_id=owner.id)
        record = self.store.get(K.TOKEN, token)
        assert record is not None
        return owner, token, record.data["session_id"]

    def user_for_token(self, api: str, token: str) -> Owner | None:
        """The owner a VMS or Seam bearer token belongs to, or None."""
        record = self.store.get(K.TOKEN, token)
        if record is None or record.data["api"] != api:
            return None
        return self.owner(record.data["user_id"])

    def revoke_token(self, api: str, token: str) -> None:
        """End a VMS or Seam bearer token at once (tokens never expire by themselves). A pinned demo token is
        no longer offered either; a reset brings it back."""
        record = self.store.get(K.TOKEN, token)
        if record is None or record.data["api"] != api:
            raise NotFound("Access token", "given", field="access_token")
        self.store.delete(K.TOKEN, token)
        self.store.delete(K.SESSION, record.data["session_id"])
        user_id = record.data["user_id"]
        pinned = self.pinned_tokens(user_id)
        if pinned.get(api) == token:
            del pinned[api]
            self.store.put(K.META, f"pinned_tokens:{user_id}", pinned)

    def owner_by_credentials(self, login: str, password: str) -> Owner:
        owner = self.owner_by_login(login)
        if owner is None or owner.password != password:
            raise Unauthenticated("Wrong login or password")
        return owner

    def pinned_tokens(self, user_id: int) -> dict[str, str]:
        tokens = self.store.get(K.META, f"pinned_tokens:{user_id}")
        return dict(tokens.data) if tokens else {}

    def pin_token(self, api: str, user_id: int, token: str) -> None:
        data = self.pinned_tokens(user_id)
        data[api] = token
        self.store.put(K.META, f"pinned_tokens:{user_id}", data)

    # ------------------------------------------------------------------ Seam OAuth

    def create_oauth_code(self, owner_id: int, redirect_uri: str) -> str:
        code = self.unit.secret(16)
        expires_at = self.unit.now_s() + self.unit.rules.oauth_code_ttl_seconds
        self.store.put(
            K.OAUTH_CODE, code, {"user_id": owner_id, "redirect_uri": redirect_uri, "expires_at": expires_at}
        )
        return code

    def exchange_oauth_code(self, code: str) -> str:
        """Trade a one-time authorization code for a Seam bearer token."""
        record = self.store.get(K.OAUTH_CODE, code)
        if record is None:
            raise Invalid("The authorization code is invalid or was already used", field="code")
        self.store.delete(K.OAUTH_CODE, code)
        if record.data["expires_at"] < self.unit.now_s():
            raise Invalid("The authorization code has expired", field="code")
        return self.add_token(api="seam", user_id=record.data["user_id"])
