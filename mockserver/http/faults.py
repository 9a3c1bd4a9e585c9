"""Faults: make operations fail with a declared status or slow down, by probability or for the next N calls."""

from __future__ import annotations

import random
import threading
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

    def add(self, **spec: Any) -> Fault:
        with self._lock:
            fault = Fault(id=f"fault-{self._next}", **spec)
            self._next += 1
            self._faults.append(fault)
            return fault

    def all(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) < before

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def match(self, api: str, operation_id: str | None, tenant: str | None, declared: set[int]) -> Fault | None:
        """The first fault that applies to this call (and count it), or None."""
        if not self._faults:
            return None
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
