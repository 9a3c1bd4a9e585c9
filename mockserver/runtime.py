"""One running mock: the building plus everything the HTTP side keeps (settings, journal, faults, limits)."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .choices import Choices
from .domain.building import Building
from .domain.clock import ManualClock
from .http.faults import Faults
from .http.journal import Journal
from .http.ratelimit import FixedWindowLimiter
from .panel_feed import PanelFeed
from .store.base import StoreUnavailable

if TYPE_CHECKING:
    from .http.read_cache import ReadCache
    from .http.vendor import Vendor
    from .push import PusherHub

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


class Runtime:
    """Everything one mock instance holds; created by `mockserver.app.create_app`."""

    def __init__(
        self,
        building: Building,
        clock: ManualClock,
        *,
        fixtures: dict[str, Any],
        settings: Settings | None = None,
        public_url: str | None = None,
        control_token: str | None = None,
        seed: int | None = None,
        choices: Choices | None = None,
    ) -> None:
        self.building = building
        self.clock = clock
        self.fixtures = fixtures
        self.settings = settings or Settings()
        self.public_url = public_url.rstrip("/") if public_url else None
        #: None: the control API is open (loopback); else the token it requires
        self.control_token = control_token
        self.journal = Journal(self.settings.journal_size)
        self.faults = Faults(seed)
        self.limiter = FixedWindowLimiter()
        #: the choices given at start (a reset goes back to them) and the ones in force now
        self.start_choices = choices or Choices()
        self.choices = self.start_choices
        self.vendors: dict[str, Vendor] = {}
        #: set by create_app when operations may be reached directly (see `mockserver.http.fast_routing`)
        self.fast_router: Any = None
        #: set by create_app when answers to reads may be kept (see `mockserver.http.read_cache`)
        self.read_cache: ReadCache | None = None
        self.hub: PusherHub | None = None
        #: wakes the open panel pages (`mockserver.panel`); create_app pokes it
        self.panel = PanelFeed()
        #: set by `share` when several replicas use one store
        self.shared = False
        self.fanout: Any = None
        #: the version of each shared document (clock, faults) this replica last wrote or read
        self._seen: dict[str, int] = {}
        self.pusher_app_key = "doorcodes-vms"
        self.pusher_app_secret = secrets.token_hex(16) if seed is None else f"secret-{seed}"
        from .webhooks import Webhooks

        self.webhooks = Webhooks(self)

    # --- which API a path belongs to

    def vendor_for_path(self, path: str) -> Vendor | None:
        for vendor in self.vendors.values():
            if path == vendor.prefix or path.startswith(vendor.prefix + "/"):
                return vendor
        return None

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
        self._seen["clock"] = self.building.save_meta("clock", self.clock.to_dict())

    def set_choices(self, choices: Choices) -> None:
        """Put ``choices`` in force; they are saved with the state (and reach the other replicas)."""
        self.choices = choices
        self._seen["choices"] = self.building.save_meta("choices", choices.to_dict())

    def restore_choices(self, data: dict[str, Any]) -> None:
        self.choices = Choices(data)

    # --- several replicas on one shared store

    def share(self, fanout: Any) -> None:
        """Follow the other replicas: faults are saved with the state, pushes go out through ``fanout``."""
        self.shared = True
        self.fanout = fanout

        def save_faults(faults: Faults) -> None:
            self._seen["faults"] = self.building.save_meta("faults", faults.to_data())

        self.faults.on_change = save_faults

    def sync_shared(self) -> None:
        """Before a request: take the clock and faults another replica changed since this one last looked.
        When the shared state cannot be reached, the request goes on with what this replica last saw: one that
        needs the building then gets its operation's answer for an unavailable building."""
        shared = (("clock", self.clock.restore), ("faults", self.faults.load), ("choices", self.restore_choices))
        try:
            found = self.building.meta_versions([name for name, _ in shared])
        except StoreUnavailable:
            return
        for (name, apply), (version, data) in zip(shared, found, strict=True):
            if data is not None and version != self._seen.get(name):
                self._seen[name] = version
                apply(data)

    @property
    def pushes(self) -> Any:
        """Where pushes go: the Redis fan-out when replicas share a store, else this mock's own hub."""
        return self.fanout if self.fanout is not None else self.hub

    def reset(self) -> None:
        """Back to the fixtures: state, clock, choices, faults, journal and limits."""
        self.building.clear()
        self.faults.clear()
        self.journal.clear()
        self.limiter.clear()
        self.webhooks.clear()
        # The clock goes back to where this mock started it: the fixtures' time, else its own start.
        start = self.fixtures.get("clock")
        self.clock.restart(datetime.fromisoformat(str(start).replace("Z", "+00:00")) if start else None)
        self.building.load_fixtures({k: v for k, v in self.fixtures.items() if k not in ("clock", "choices")})
        if self.shared:
            self.building.save_meta("pusher", {"secret": self.pusher_app_secret})
        self.save_clock()
        self.set_choices(self.start_choices)

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
