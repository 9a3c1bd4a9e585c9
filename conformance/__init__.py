"""Conformance suite: checks a vendor server (Magicline, Seam-compatible intercom cloud, AIPIX VMS) against the
project's contracts and the vendors' documented behaviour.

    from conformance import Credentials, Options, Summary, Target, run

    target = Target(api="vms", base_url="https://vms.example.com",
                    credentials=Credentials(login="demo", password="secret"), intercom_id=180)
    summary = Summary().consume(run(target, Options(seed=0)))
    print(summary.render()); raise SystemExit(summary.exit_code)
"""

from __future__ import annotations

import importlib
from typing import Any

# The names load on first use: the package's pytest plugin imports `conformance` in every pytest run of an
# environment that has it, and needs none of the engine until a target runs.
_EXPORTS = {
    "fuzz": "conformance.engine",
    "run": "conformance.engine",
    "Finding": "conformance.events",
    "Summary": "conformance.reports",
    "write_junit": "conformance.reports",
    "Credentials": "conformance.target",
    "Options": "conformance.target",
    "Target": "conformance.target",
    "load_config": "conformance.target",
}

__all__ = ["Credentials", "Finding", "Options", "Summary", "Target", "fuzz", "load_config", "run", "write_junit"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'conformance' has no attribute {name!r}")
