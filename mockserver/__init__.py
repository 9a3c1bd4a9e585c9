"""A stateful contract-testing mock of the Magicline, Seam intercom cloud and AIPIX VMS door-access APIs.

`create_app` builds the ASGI application; `start_mock` runs one in-process for tests (see `mockserver.testing`).
The names load on first use, so `import mockserver.contracts` (the conformance suite's only need) stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "create_app": "mockserver.app",
    "ManualClock": "mockserver.domain.clock",
    "Settings": "mockserver.runtime",
    "RunningMock": "mockserver.testing",
    "start_mock": "mockserver.testing",
}

__all__ = ["ManualClock", "RunningMock", "Settings", "create_app", "start_mock"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mockserver' has no attribute {name!r}")
