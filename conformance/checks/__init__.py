"""The domain checks. Importing this package registers every response check with Schemathesis and every
scenario with the run; `catalogue(api)` lists them."""

from __future__ import annotations

from dataclasses import dataclass

from ..scenarios import SCENARIOS
from . import magicline, seam, vms  # noqa: F401 - importing registers the checks
from .common import RESPONSE_CHECKS

__all__ = ["CheckInfo", "catalogue"]


@dataclass(frozen=True)
class CheckInfo:
    name: str
    kind: str  # "response", "scenario" or "machine"
    doc: str
    needs: tuple[str, ...] = ()


def catalogue(api: str) -> list[CheckInfo]:
    """Every domain check of one API (the generic Schemathesis checks not included)."""
    from ..profile import profile

    items = [CheckInfo(c.name, "response", c.doc) for c in RESPONSE_CHECKS[api]]
    items += [CheckInfo(s.name, "scenario", s.doc, s.needs) for s in SCENARIOS[api]]
    items += [CheckInfo(m.name, "machine", m.doc, m.needs) for m in profile(api).machines]
    return items
