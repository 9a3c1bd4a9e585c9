"""Where a server differs from one of the mock's choices (`x-mock-choice` in the contracts): a note in the default
vendor view, a failure under `--strict`.

The vendor's documents leave these points open, so a vendor that answers 403 where the mock chose 404, or orders a
list otherwise, still conforms; the run says so once per check, operation and difference, with a count.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from schemathesis.core.failures import Severity

from .failures import ConformanceFailure

__all__ = ["ChoiceDeviation", "Deviation", "Deviations"]


class ChoiceDeviation(ConformanceFailure):
    """Under `--strict`: the server differs from a mock choice."""

    code = "DC501"
    kind_title = "Differs from the mock's choice"
    default_severity = Severity.MEDIUM


@dataclass(frozen=True)
class Deviation:
    check: str
    operation: str
    message: str
    count: int = 1


class Deviations:
    """Collects differences from mock choices during a run (thread-safe; checks run in Schemathesis' workers)."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self._counts: dict[tuple[str, str, str], int] = {}
        self._sampled: dict[object, int] = {}
        self._lock = threading.Lock()

    def sample(self, key: object, limit: int) -> bool:
        """Whether to look at one more exchange of a kind (``key``): a costly comparison need not see them all."""
        with self._lock:
            seen = self._sampled.get(key, 0)
            self._sampled[key] = seen + 1
        return seen < limit

    def report(self, check: str, operation: str, message: str) -> None:
        """Record a difference (vendor view), or raise it as a failure (strict)."""
        if self.strict:
            raise ChoiceDeviation(check=check, operation=operation, message=message)
        key = (check, operation, message)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def drain(self) -> list[Deviation]:
        with self._lock:
            counts, self._counts = self._counts, {}
        return [Deviation(check, operation, message, count) for (check, operation, message), count in counts.items()]
