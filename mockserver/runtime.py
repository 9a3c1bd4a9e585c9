"""One running mock: the building plus everything the HTTP side keeps (settings, journal, faults, limits)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .choices import ChoiceBoard, Choices
from .domain.building import Building
from .domain.clock import ManualClock
from .http.faults import Faults
from .http.journal import Journal
from .http.ratelimit import Limiter
from .panel_feed import PanelFeed
from .store.base import StoreUnavailable

if TYPE_CHECKING:
    from .fanout import RedisFanout
    from .http.vendor import Vendor
    from .push import PusherHub, Pushes
    from .webhooks import Webhooks

SNAPSHOT_FORMAT = "doorcodes-snapshot/1"


@dataclass
class Settings:
    """Knobs a user may change at start or through the control API."""

    magicline_rate_limit_per_minute: int = 1000
    vms_wsurl_limit_per_5_minutes: int = 20
    journal_size: int = 1000
    seam_allowed_redirect_hosts: list[str] = field(default_factory=list)
    max_body_bytes: int = 1_048_576

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Runtime:
    """Everything one mock instance holds, built last by `mockserver.app.create_app` from parts built before it.
    Its parts keep their own state (the building, the journal, the settings the control API changes); which parts
    a mock has does not change while it runs."""

    building: Building
    clock: ManualClock
    fixtures: dict[str, Any]
    settings: Settings
    vendors: Mapping[str, Vendor]
    journal: Journal
    faults: Faults
    limiter: Limiter
    hub: PusherHub
    webhooks: Webhooks
    #: wakes the open panel pages (`mockserver.panel`)
    panel: PanelFeed
    #: the choices in force, and the ones a reset goes back to
    choice_board: ChoiceBoard
    pusher_app_key: str
    pusher_app_secret: str
    #: the base URL clients reach the mock by, when a proxy stands in front of it
    public_url: str | None = None
    #: None: the control API is open (loopback); else the token it requires
    control_token: str | None = None
    #: the pushes' way to the other replicas when several share one store (`mockserver.fanout`); else None
    fanout: RedisFanout | None = None
    #: the version of each shared document (clock, faults, choices) this replica last wrote or read
    seen: dict[str, int] = field(default_factory=dict, repr=False)
    #: tasks the serving event loop runs beside the requests (a replica's keep-up), cancelled before it ends
    loop_tasks: set[asyncio.Task[None]] = field(default_factory=set, repr=False)

    @property
    def shared(self) -> bool:
        """Whether several replicas use this mock's store."""
        return self.fanout is not None

    @property
    def choices(self) -> Choices:
        return self.choice_board.current

    # --- where clients reach it

    def base_url(self, headers: Any, scheme: str = "http") -> str:
        """The absolute base the clients see: ``--public-url``, else the request's own host."""
        if self.public_url:
            return self.public_url
        host = headers.get("host") or "127.0.0.1"
        return f"{scheme}://{host}"

    def urls(self, base: str) -> dict[str, str]:
        """Each served API's base URL under ``base``, and the control API's as "control"."""
        urls = {name: f"{base}{vendor.prefix}" for name, vendor in self.vendors.items()}
        urls["control"] = f"{base}/_mock"
        return urls

    # --- whole state

    def save_clock(self) -> None:
        self.seen["clock"] = self.building.save_meta("clock", self.clock.to_dict())

    def save_faults(self, faults: Faults) -> None:
        """Keep the faults with the state, for the other replicas (`Faults.on_change` when the store is shared)."""
        self.seen["faults"] = self.building.save_meta("faults", faults.to_data())

    def set_choices(self, choices: Choices) -> None:
        """Put ``choices`` in force; they are saved with the state (and reach the other replicas)."""
        self.choice_board.current = choices
        self.seen["choices"] = self.building.save_meta("choices", choices.to_dict())

    def restore_choices(self, data: dict[str, Any]) -> None:
        self.choice_board.current = Choices(data)

    # --- several replicas on one shared store

    def sync_shared(self) -> None:
        """Before a request: take the clock and faults another replica changed since this one last looked.
        When the shared state cannot be reached, the request goes on with what this replica last saw: one that
        needs the building then gets its operation's answer for an unavailable building."""
        shared = {"clock": self.clock.restore, "faults": self.faults.load, "choices": self.restore_choices}
        try:
            changed = self.building.meta_changes(list(shared), self.seen)
        except StoreUnavailable:
            return
        for name, version, data in changed:
            self.seen[name] = version
            shared[name](data)

    async def close_loop_clients(self) -> None:
        """Close the connections the serving event loop's requests awaited Redis through (a client belongs to the
        loop it was made in, so this runs on that loop, before it ends); the rest stays open. The loop's own
        tasks beside the requests end first."""
        loop = asyncio.get_running_loop()
        tasks = [task for task in self.loop_tasks if task.get_loop() is loop]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.loop_tasks.difference_update(tasks)
        turns = getattr(self.building.store, "turns", None)
        if turns is not None:
            await turns.aclose()

    async def aclose(self) -> None:
        """At shutdown, on the serving loop: close everything the mock holds open (the loop's Redis clients, the
        journal's and the pushes' connections, which send what they still hold first; then the store)."""
        await self.close_loop_clients()
        self.journal.close()
        if self.fanout is not None:
            self.fanout.close()
        self.building.store.close()

    @property
    def pushes(self) -> Pushes:
        """Where pushes go: the Redis fan-out when replicas share a store, else this mock's own hub."""
        return self.fanout if self.fanout is not None else self.hub

    def reset(self) -> None:
        """Back to the fixtures: state, clock, choices, faults, journal and limits."""
        self.building.clear()
        self.faults.clear()
        self.journal.clear()
        self.limiter.clear()
        self.webhooks.clear()
        self._load_fixtures()

    def _load_fixtures(self) -> None:
        secret = self.pusher_app_secret if self.shared else None
        self.seen.update(_load_fixtures(self.building, self.clock, self.fixtures, self.choice_board, secret))

    def snapshot(self) -> dict[str, Any]:
        return {
            "format": SNAPSHOT_FORMAT,
            "clock": self.clock.to_dict(),
            "choices": self.choices.to_dict(),
            "state": self.building.snapshot_records(),
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        if snapshot.get("format") != SNAPSHOT_FORMAT or "state" not in snapshot:
            raise ValueError(f"not a snapshot of format {SNAPSHOT_FORMAT}")
        if snapshot.get("clock"):
            ManualClock.check(snapshot["clock"])  # before any record is replaced: a refused snapshot changes nothing
        self.building.restore_records(snapshot["state"])
        if snapshot.get("clock"):
            self.clock.restore(snapshot["clock"])
        if isinstance(snapshot.get("choices"), dict):
            self.set_choices(Choices(snapshot["choices"]))
        self.save_clock()
        self.limiter.clear()


def open_state(
    building: Building,
    clock: ManualClock,
    fixtures: dict[str, Any],
    choices: ChoiceBoard,
    given: Mapping[str, str],
    *,
    pusher_secret: str,
    shared: bool,
) -> tuple[str, dict[str, int]]:
    """A mock's state at start: an empty store is filled from ``fixtures``; a state that exists keeps its clock and
    the choices it saved, except those ``given`` names. Replicas sharing a store agree on the Pusher secret (channel
    auth signed by one is checked by another): the first one's. Answers the Pusher secret and the versions of the
    shared documents written."""

    def fill() -> tuple[str, dict[str, int]]:
        secret = pusher_secret
        if building.is_empty():
            seen = _load_fixtures(building, clock, fixtures, choices, secret if shared else None)
        else:
            saved = building.meta("clock")
            if saved:
                clock.restore(saved)
            choices.current = Choices({**(building.meta("choices") or {}), **given})
            seen = {"choices": building.save_meta("choices", choices.current.to_dict())}
        if shared:
            pusher = building.meta("pusher")
            if pusher is None:
                building.save_meta("pusher", {"secret": secret})
            else:
                secret = pusher["secret"]
        return secret, seen

    # One operation: with a shared store, two replicas starting at once fill it once (run again if one lost).
    return building.atomically(fill)


def _load_fixtures(
    building: Building, clock: ManualClock, fixtures: dict[str, Any], choices: ChoiceBoard, pusher_secret: str | None
) -> dict[str, int]:
    """The building, the clock and the choices as the fixtures start them (the building empty before); answers the
    versions of the shared documents written."""
    # The clock goes back to where this mock started it: the fixtures' time, else its own start.
    start = fixtures.get("clock")
    clock.restart(datetime.fromisoformat(str(start).replace("Z", "+00:00")) if start else None)
    building.load_fixtures({k: v for k, v in fixtures.items() if k not in ("clock", "choices")})
    if pusher_secret is not None:
        building.save_meta("pusher", {"secret": pusher_secret})
    choices.current = choices.start
    return {
        "clock": building.save_meta("clock", clock.to_dict()),
        "choices": building.save_meta("choices", choices.current.to_dict()),
    }
