"""The suite passes the mock and fails every deliberately broken server, naming the check that should catch it.

Each planted server is the real mock with one behaviour broken by an ASGI wrapper (tests/conformance/planted.py),
run through the parts of a run that hold the checks meant to catch it (`Bug.stages`, `Bug.phases`); the mock
without a bug passes a whole run.
"""

from __future__ import annotations

import pytest

import mockserver.testing as mock_testing
from tests.conformance import planted
from tests.conformance.support import QUICK, disposable_code, failed_checks, mock_target, summarise

BUGS = sorted(
    (
        cls
        for cls in vars(planted).values()
        if isinstance(cls, type) and issubclass(cls, planted.Bug) and cls is not planted.Bug
    ),
    key=lambda cls: cls.__name__,
)


def _run(api: str, bug: planted.Bug | None) -> tuple[int, set[str]]:
    fixtures = bug.fixtures() if bug is not None and bug.fixtures else None
    # A bug needs only the parts of the run that hold its checks; the mock alone gets the whole run.
    options = QUICK.replace(stages=bug.stages, schemathesis_phases=bug.phases) if bug is not None else QUICK
    with mock_testing.start_mock(seed=0, wrap=planted.wrap(bug) if bug else None, fixtures=fixtures) as mock:
        if bug is not None and bug.setup:
            bug.setup(mock)
        extra = {"disposable_code_id": disposable_code(mock)} if api == "seam" else {}
        summary = summarise(mock_target(mock, api, **extra), options)
    return summary.exit_code, failed_checks(summary)


@pytest.mark.slow
@pytest.mark.parametrize("api", ["magicline", "seam", "vms"])
def test_the_mock_conforms(api: str) -> None:
    code, failed = _run(api, None)
    assert (code, failed) == (0, set())


@pytest.mark.parametrize("bug_class", BUGS, ids=[cls.__name__ for cls in BUGS])
def test_a_planted_bug_is_caught_by_its_check(bug_class: type[planted.Bug]) -> None:
    bug = bug_class()
    code, failed = _run(bug.api, bug)
    assert code == 1
    assert failed & bug.catches, f"{bug_class.__name__} ({bug_class.__doc__}) failed only {sorted(failed)}"
