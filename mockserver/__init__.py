"""A stateful contract-testing mock of the Magicline, Seam intercom cloud and AIPIX VMS door-access APIs.

`create_app` builds the ASGI application; `start_mock` runs one in-process for tests (see `mockserver.testing`).
"""

from .app import create_app
from .domain.clock import ManualClock
from .runtime import Settings
from .testing import RunningMock, start_mock

__all__ = ["ManualClock", "RunningMock", "Settings", "create_app", "start_mock"]
