"""What a run reports, as a stream of events (the engine yields them; reports and the CLI consume them).

Nothing here holds a credential: requests are redacted before they become events.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "Event",
    "Finding",
    "Note",
    "Outcome",
    "RequestView",
    "RunFinished",
    "RunStarted",
    "StageFinished",
    "StageStarted",
]


@dataclass(frozen=True)
class RequestView:
    """A request, redacted, with what a reproduction needs."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None


@dataclass(frozen=True)
class Finding:
    """One way the server broke its contract."""

    target: str
    check: str
    operation: str
    title: str
    message: str
    #: requests that reproduce it, oldest first; the last one got the failing answer
    requests: tuple[RequestView, ...] = ()
    status: int | None = None
    response: str = ""
    seed: int | None = None
    stage: str = ""
    code: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.target, self.check, self.operation, self.title


@dataclass(frozen=True)
class Event:
    target: str


@dataclass(frozen=True)
class RunStarted(Event):
    api: str
    base_url: str
    seed: int
    mode: str


@dataclass(frozen=True)
class StageStarted(Event):
    stage: str


@dataclass(frozen=True)
class StageFinished(Event):
    stage: str
    seconds: float


@dataclass(frozen=True)
class Outcome(Event):
    """How one check fared on one operation (`passed` counts responses that passed)."""

    check: str
    operation: str
    status: str  # "passed", "failed", "skipped" or "error"
    passed: int = 0
    finding: Finding | None = None
    note: str = ""


@dataclass(frozen=True)
class Note(Event):
    message: str
    #: "info", "warning", or "deviation" (the server differs from one of the mock's choices)
    level: str = "info"


@dataclass(frozen=True)
class RunFinished(Event):
    seconds: float
    #: why the run could not be done (exit code 2), or None when it ran
    error: str | None = None
    stats: dict[str, int] = field(default_factory=dict)
