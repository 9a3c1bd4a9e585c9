"""Faults: make operations fail with a declared status or slow down, by probability or for the next N calls."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Set
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Fault:
    id: str
    api: str
    operation_id: str | None = None
    tenant: str | None = None
    status: int | None = None
    latency_ms: int = 0
    probability: float = 1.0
    count: int | None = None
    hits: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: v for k, v in data.items() if v is not None}


class Faults:
    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next = 1
        self._rng = random.Random(seed)
        #: called after every change (hits included), outside the lock; replicas share faults through it
        self.on_change: Callable[[Faults], None] | None = None

    def to_data(self) -> dict[str, Any]:
        with self._lock:
            return {"next": self._next, "faults": [asdict(fault) for fault in self._faults]}

    def load(self, data: dict[str, Any]) -> None:
        """Take the faults another replica saved (without calling `on_change`)."""
        with self._lock:
            self._next = int(data.get("next", 1))
            self._faults = [Fault(**fault) for fault in data.get("faults", [])]

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    def add(self, **spec: Any) -> Fault:
        with self._lock:
            fault = Fault(id=f"fault-{self._next}", **spec)
            self._next += 1
            self._faults.append(fault)
        self._changed()
        return fault

    def all(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            removed = len(self._faults) < before
        if removed:
            self._changed()
        return removed

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
        self._changed()

    def match(self, api: str, operation_id: str | None, tenant: str | None, declared: Set[int]) -> Fault | None:
        """The first fault that applies to this call (and count it), or None."""
        if not self._faults:
            return None
        found = self._match(api, operation_id, tenant, declared)
        if found is not None:
            self._changed()
        return found

    def _match(self, api: str, operation_id: str | None, tenant: str | None, declared: Set[int]) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.api != api:
                    continue
                if fault.operation_id is not None and fault.operation_id != operation_id:
                    continue
                if fault.tenant is not None and fault.tenant != tenant:
                    continue
                # A fault for a whole API only answers statuses the operation declares.
                if fault.status is not None and fault.status not in declared:
                    continue
                if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                    continue
                fault.hits += 1
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                return fault
        return None
