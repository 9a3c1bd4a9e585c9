"""What to test (a `Target`: one vendor API on one server, with its credentials and ids) and how (`Options`),
from command-line values or a TOML file.

The TOML file uses the command line's option names::

    seed = 0
    max-rps = 10

    [[target]]
    api = "vms"
    base-url = "https://vms.example.com"
    login = "demo"
    password = "${VMS_PASSWORD}"      # ${NAME} is read from the environment
    intercom-id = 180

Secrets belong in the environment, not in the file; `${NAME}` substitution is there for that.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import pathlib
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

__all__ = ["APIS", "STAGES", "ConfigError", "Credentials", "Options", "Target", "load_config"]

APIS = ("magicline", "seam", "vms")

# What a run consists of, in order. `schemathesis` is the generic contract run (its phases are chosen with
# `schemathesis_phases`), `scenarios` the multi-call domain checks, `machines` the rule-based state machines.
STAGES = ("schemathesis", "scenarios", "machines")
SCHEMATHESIS_PHASES = ("examples", "coverage", "fuzzing", "stateful")

# Requests per second against anything that is not loopback, unless told otherwise.
DEFAULT_REMOTE_MAX_RPS = 10.0


class ConfigError(ValueError):
    """The targets or options cannot be used as given."""


@dataclass(frozen=True)
class Credentials:
    """One tenant's credentials: VMS `login`/`password`, a Seam bearer `token`, or a Magicline `api_key`."""

    login: str | None = None
    password: str | None = None
    token: str | None = None
    api_key: str | None = None

    def secrets(self) -> list[str]:
        return [value for value in (self.password, self.token, self.api_key) if value]

    def is_empty(self) -> bool:
        return not any((self.login, self.password, self.token, self.api_key))

    def __repr__(self) -> str:
        # Never let a credential reach a log through repr().
        shown = {name: ("***" if getattr(self, name) else None) for name in ("password", "token", "api_key")}
        return (
            f"Credentials(login={self.login!r}, password={shown['password']}, token={shown['token']}, "
            f"api_key={shown['api_key']})"
        )


@dataclass(frozen=True)
class Target:
    """One vendor API on one server."""

    api: str
    base_url: str
    credentials: Credentials
    #: another tenant (VMS user, Seam owner, Magicline studio), for isolation checks
    other: Credentials | None = None
    #: Magicline: a key of the same studio without the write scope
    limited_api_key: str | None = None
    #: VMS: the test intercom where codes may be created
    intercom_id: int | None = None
    #: Magicline: the test customer that access mediums may be added to
    customer_id: int | None = None
    #: Seam: a code that may be deleted
    disposable_code_id: str | None = None
    #: how reports name this target (defaults to the API's name)
    name: str = ""
    #: where it was given: "options" (the command line) or a TOML file's name, so messages name options the way
    #: the user wrote them
    source: str = "options"

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.api)
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))

    def problems(self) -> list[str]:
        """Why this target cannot be run, if it cannot."""
        found = []
        if self.api not in APIS:
            found.append(f"unknown API {self.api!r}; known: {', '.join(APIS)}")
            return found
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            found.append(f"{self.name}: base URL {self.base_url!r} is not an http(s) URL")
        needed = {"vms": ("login", "password"), "seam": ("token",), "magicline": ("api_key",)}[self.api]
        for name in needed:
            if not getattr(self.credentials, name):
                found.append(f"{self.name}: {self.spell(name)} is required")
        if self.other is not None and not self.other.is_empty():
            for name in needed:
                if not getattr(self.other, name):
                    found.append(f"{self.name}: {self.spell('other_' + name)} is required with the other tenant")
        return found

    def spell(self, name: str) -> str:
        """An option as the user gives it: `--intercom-id` on the command line, `intercom-id` in a TOML file."""
        key = name.replace("_", "-")
        return f"--{key}" if self.source == "options" else f"`{key}` (in {self.source})"

    def secrets(self) -> list[str]:
        values = [*self.credentials.secrets()]
        if self.other is not None:
            values += self.other.secrets()
        if self.limited_api_key:
            values.append(self.limited_api_key)
        return values

    @property
    def is_loopback(self) -> bool:
        host = urlsplit(self.base_url).hostname or ""
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True)
class Options:
    """How to run: bounded and repeatable by default."""

    #: None: 0 for `run`, a random one (reported) for `fuzz`
    seed: int | None = 0
    #: examples per operation in Schemathesis' fuzzing phase and per state machine
    max_examples: int = 10
    #: steps of each stateful scenario (Schemathesis' stateful phase and our state machines)
    max_steps: int = 8
    stages: tuple[str, ...] = STAGES
    schemathesis_phases: tuple[str, ...] = SCHEMATHESIS_PHASES
    read_only: bool = False
    allow_destructive: bool = False
    allow_door_unlock: bool = False
    #: judge the whole contract, the mock's choices included (for the mock itself, or a re-implementation of it)
    strict: bool = False
    #: None picks: no limit on loopback, DEFAULT_REMOTE_MAX_RPS elsewhere; 0 means no limit
    max_rps: float | None = None
    request_timeout: float = 10.0
    #: fuzz only: how long to keep going
    max_time: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def rate_for(self, target: Target) -> float:
        if self.max_rps is not None:
            return self.max_rps
        return 0.0 if target.is_loopback else DEFAULT_REMOTE_MAX_RPS

    def replace(self, **changes: Any) -> Options:
        return dataclasses.replace(self, **changes)


# ---------------------------------------------------------------------------------------------- TOML

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

_TARGET_KEYS = {
    "api",
    "base-url",
    "name",
    "login",
    "password",
    "token",
    "api-key",
    "other-login",
    "other-password",
    "other-token",
    "other-api-key",
    "limited-api-key",
    "intercom-id",
    "customer-id",
    "disposable-code-id",
}
_OPTION_KEYS = {
    "seed": int,
    "max-examples": int,
    "max-steps": int,
    "read-only": bool,
    "allow-destructive": bool,
    "allow-door-unlock": bool,
    "strict": bool,
    "max-rps": float,
    "request-timeout": float,
    "max-time": int,
}


def _load_toml(path: pathlib.Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def _expand(value: Any, where: str) -> Any:
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        return os.environ[name]

    return _ENV.sub(substitute, value)


def _int_or_none(value: Any, where: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where} must be an integer") from exc


def target_from_values(values: dict[str, Any], where: str = "target", source: str = "options") -> Target:
    """A target from option-named values (the CLI's and the TOML file's spelling, hyphens or underscores)."""
    data = {key.replace("_", "-"): value for key, value in values.items() if value is not None}
    unknown = set(data) - _TARGET_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    data = {key: _expand(value, f"{where}.{key}") for key, value in data.items()}
    for key in ("api", "base-url"):
        if not data.get(key):
            raise ConfigError(f"{where}: `{key}` is required")
    other = Credentials(
        login=data.get("other-login"),
        password=data.get("other-password"),
        token=data.get("other-token"),
        api_key=data.get("other-api-key"),
    )
    return Target(
        api=str(data["api"]),
        base_url=str(data["base-url"]),
        name=str(data.get("name", "")),
        credentials=Credentials(
            login=data.get("login"), password=data.get("password"), token=data.get("token"), api_key=data.get("api-key")
        ),
        other=None if other.is_empty() else other,
        limited_api_key=data.get("limited-api-key"),
        intercom_id=_int_or_none(data.get("intercom-id"), f"{where}.intercom-id"),
        customer_id=_int_or_none(data.get("customer-id"), f"{where}.customer-id"),
        disposable_code_id=data.get("disposable-code-id"),
        source=source,
    )


def load_config(path: str | pathlib.Path, base: Options | None = None) -> tuple[list[Target], Options]:
    """Targets and options from a TOML file; top-level keys override `base`."""
    path = pathlib.Path(path)
    data = _load_toml(path)
    options = base or Options()
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key == "target":
            continue
        if key not in _OPTION_KEYS:
            raise ConfigError(f"{path}: unknown option `{key}`")
        try:
            changes[key.replace("-", "_")] = _OPTION_KEYS[key](value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: `{key}` has the wrong type") from exc
    raw_targets = data.get("target", [])
    if not isinstance(raw_targets, list) or not raw_targets:
        raise ConfigError(f"{path}: at least one [[target]] table is required")
    targets = [
        target_from_values(item, f"{path.name}: target {index + 1}", source=path.name)
        for index, item in enumerate(raw_targets)
    ]
    return targets, options.replace(**changes)
