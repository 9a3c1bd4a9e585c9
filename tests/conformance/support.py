"""Helpers of the conformance tests: targets against a running mock, and runs collected into a summary."""

from __future__ import annotations

from typing import Any

from conformance import Credentials, Options, Summary, Target, run

#: small but complete: every stage and phase, fewer examples than the default
QUICK = Options(seed=0, max_examples=4, max_steps=6)


def mock_target(mock: Any, api: str, *, other: bool = True, ids: bool = True, **changes: Any) -> Target:
    """The demo building's first tenant as the target (the second as the other tenant), with test ids."""
    creds = mock.credentials
    if api == "vms":
        first, second = creds["vms"][0], creds["vms"][1]
        values: dict[str, Any] = dict(
            credentials=Credentials(login=first["login"], password=first["password"]),
            other=Credentials(login=second["login"], password=second["password"]),
            intercom_id=180,
        )
    elif api == "seam":
        first, second = creds["seam"]["owners"][0], creds["seam"]["owners"][1]
        values = dict(
            credentials=Credentials(token=first["access_token"]),
            other=Credentials(token=second["access_token"]),
            disposable_code_id=None,
        )
    else:
        values = dict(
            credentials=Credentials(api_key="demo-magicline-mission"),
            other=Credentials(api_key="demo-magicline-harbour"),
            limited_api_key="demo-magicline-mission-readonly",
            customer_id=1003,
        )
    if not other:
        values["other"] = None
    if not ids:
        for name in ("intercom_id", "customer_id", "limited_api_key", "disposable_code_id"):
            values.pop(name, None)
    values.update(changes)
    return Target(api=api, base_url=mock.urls[api], **values)


def disposable_code(mock: Any, intercom: str = "3043fde0-3c6d-4913-981f-2607f05fe74e") -> str:
    """A code programmed on Alice's intercom through the mock's control API, for Seam's delete checks."""
    with mock.client("control") as control:
        answer = control.post(f"/intercoms/{intercom}/codes", json={"name": "disposable"})
    answer.raise_for_status()
    body = answer.json()
    return body.get("access_code_id") or body.get("uuid") or body["id"]


def summarise(target: Target, options: Options = QUICK) -> Summary:
    return Summary().consume(run(target, options))


def failed_checks(summary: Summary) -> set[str]:
    return {check for result in summary.targets.values() for check in result.failed_checks}
