"""Verdicts a vendor can trust: the default run holds a server to its vendor's documents only.

The mock at every value of every one of its choices (one at a time, and all at their most permissive) is a server
that differs from the mock's defaults only where the documents are silent: the default run must pass it, and
`--strict`, which also demands the mock's choices, must fail it. An independent implementation written from the
seeds alone (tests/independent) must pass too.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

import mockserver.testing as mock_testing
from mockserver.choices import CHOICES
from tests.conformance.forked import run_conformance
from tests.independent import serve

#: values the contract as written also allows: `--strict` has nothing to fail there
ALLOWED_BY_THE_CONTRACT = {
    # The seed itself shows an intercom's created_at as null; the contract makes it nullable.
    ("vms.intercom_created_at", "null"),
}
#: choices that only a run allowed to open doors can see
DOOR_CHOICES = {"seam.unlock_time"}
SMALL = ("--max-examples", "3", "--max-steps", "4")

pytestmark = pytest.mark.slow  # every case is one or more whole conformance runs

NON_DEFAULT = [(c.name, value) for c in CHOICES for value in c.values if value != c.default]

SCENARIOS = ("--stage", "scenarios")
EXAMPLES = ("--stage", "schemathesis", "--phase", "examples")
COVERAGE = ("--stage", "schemathesis", "--phase", "coverage")
#: Where each value shows under --strict: an API and a part of the run whose checks fail the mock there (seen in a
#: whole strict run of each). One failing check is the strict verdict, so the strict run is that part alone; the
#: default run stays whole. A value missing here gets the whole strict run over every API its choice touches.
STRICT_SHOWS: dict[str, tuple[str, tuple[str, ...]]] = {
    "limits=ignore": ("magicline", COVERAGE),  # negative_data_rejection (VMS too)
    "unsupported_method=not_found": ("seam", COVERAGE),  # unsupported_method (every API)
    "vms.client_headers=accept": ("vms", COVERAGE),  # missing_required_header, negative_data_rejection
    "vms.invalid_page=first_page": ("vms", COVERAGE),  # negative_data_rejection
    "vms.list_order=oldest_first": ("vms", SCENARIOS),  # vms_paging
    "vms.intercom_created_at=iso_micro": ("vms", EXAMPLES),  # response_schema_conformance
    "vms.bulk_delete_foreign=ignore": ("vms", SCENARIOS),  # vms_bulk_delete, vms_tenant_isolation
    "vms.past_expiry=accept": ("vms", SCENARIOS),  # vms_create_validation
    "vms.wsurl_auth=bearer": ("vms", EXAMPLES),  # mock_choice_security
    "seam.health_auth=bearer": ("seam", SCENARIOS),  # mock_choice_security
    "seam.unlock_time=positive": ("seam", COVERAGE),  # negative_data_rejection, positive_data_acceptance
    "seam.unlock_time=unbounded": ("seam", COVERAGE),  # negative_data_rejection
    "seam.foreign_status=forbidden": ("seam", SCENARIOS),  # seam_tenant_isolation
    "magicline.offset=opaque": ("magicline", SCENARIOS),  # magicline_slice
}


def toml_targets(targets: list[dict[str, Any]]) -> str:
    lines = []
    for target in targets:
        lines.append("[[target]]")
        lines += [
            f"{key} = {value!r}" if isinstance(value, str) else f"{key} = {value}" for key, value in target.items()
        ]
    return "\n".join(lines).replace("'", '"') + "\n"


def mock_targets(mock: mock_testing.RunningMock, apis: tuple[str, ...]) -> list[dict[str, Any]]:
    every = {
        "vms": {
            "api": "vms",
            "base-url": mock.urls["vms"],
            "login": "alice@demo.test",
            "password": "alice-password",
            "other-login": "bob@demo.test",
            "other-password": "bob-password",
            "intercom-id": 180,
        },
        "seam": {
            "api": "seam",
            "base-url": mock.urls["seam"],
            "token": "demo-seam-alice",
            "other-token": "demo-seam-bob",
        },
        "magicline": {
            "api": "magicline",
            "base-url": mock.urls["magicline"],
            "api-key": "demo-magicline-mission",
            "other-api-key": "demo-magicline-harbour",
            "limited-api-key": "demo-magicline-mission-readonly",
            "customer-id": 1003,
        },
    }
    return [every[api] for api in apis]


def conformance(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # A fresh process each run (forked from one that only imported the suite): in a process that has run the suite
    # before, or that serves the mock itself, Schemathesis' stateful phase generates other cases than a user's run
    # would.
    return run_conformance(["run", "--config", str(config), "--no-progress", *args])


def _apis(name: str) -> tuple[str, ...]:
    api = next(c.api for c in CHOICES if c.name == name)
    return (api,) if api else ("vms", "seam", "magicline")


@pytest.mark.parametrize(("name", "value"), NON_DEFAULT, ids=[f"{n}={v}" for n, v in NON_DEFAULT])
def test_the_default_run_passes_the_mock_at_each_choice_and_strict_fails_it(
    name: str, value: str, tmp_path: Path
) -> None:
    extra = ("--allow-door-unlock",) if name in DOOR_CHOICES else ()
    shows_in, part = STRICT_SHOWS.get(f"{name}={value}", ("", ()))
    with mock_testing.start_mock(seed=0, choices={name: value}) as mock:
        config = tmp_path / "targets.toml"
        config.write_text(toml_targets(mock_targets(mock, _apis(name))))
        default = conformance(config, *SMALL, *extra)
        assert default.returncode == 0, default.stdout[-4000:] + default.stderr[-2000:]
        assert "CONFORMS" in default.stdout
        config.write_text(toml_targets(mock_targets(mock, (shows_in,) if shows_in else _apis(name))))
        strict = conformance(config, "--strict", *SMALL, *extra, *part)
    if (name, value) in ALLOWED_BY_THE_CONTRACT:
        assert strict.returncode == 0, strict.stdout[-4000:]
    else:
        assert strict.returncode == 1, strict.stdout[-4000:] + strict.stderr[-2000:]
        assert "DOES NOT CONFORM" in strict.stdout


def test_the_default_run_passes_the_mock_in_the_lenient_preset_and_strict_passes_it_at_defaults(
    tmp_path: Path,
) -> None:
    config = tmp_path / "targets.toml"
    lenient = {c.name: c.lenient for c in CHOICES}
    with mock_testing.start_mock(seed=0, choices=lenient) as mock:
        config.write_text(toml_targets(mock_targets(mock, ("vms", "seam", "magicline"))))
        result = conformance(config, *SMALL, "--allow-door-unlock")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "differs from the mock's choices" in result.stdout  # and says where, as notes
    with mock_testing.start_mock(seed=0) as mock:
        config.write_text(toml_targets(mock_targets(mock, ("vms", "seam", "magicline"))))
        strict = conformance(config, "--strict", *SMALL, "--allow-door-unlock")
    assert strict.returncode == 0, strict.stdout[-4000:] + strict.stderr[-2000:]


def test_an_independent_server_written_from_the_seeds_conforms_and_strict_tells_it_from_the_mock(
    tmp_path: Path,
) -> None:
    with serve() as server:
        creds = server.credentials
        vms, seam, magicline = creds["vms"], creds["seam"], creds["magicline"]
        targets = [
            {
                "api": "vms",
                "base-url": server.base_url + "/vms",
                "login": vms["users"][0]["login"],
                "password": vms["users"][0]["password"],
                "other-login": vms["users"][1]["login"],
                "other-password": vms["users"][1]["password"],
                "intercom-id": vms["intercom_id"],
            },
            {
                "api": "seam",
                "base-url": server.base_url + "/seam",
                "token": seam["tokens"][0],
                "other-token": seam["tokens"][1],
                "disposable-code-id": seam["access_code_id"],
            },
            {
                "api": "magicline",
                "base-url": server.base_url + "/magicline",
                "api-key": magicline["api_key"],
                "other-api-key": magicline["other_studio_api_key"],
                "limited-api-key": magicline["read_only_api_key"],
                "customer-id": magicline["customer_id"],
            },
        ]
        config = tmp_path / "targets.toml"
        config.write_text(toml_targets(targets))
        result = conformance(config, *SMALL)
        # (the default run deleted the disposable code: the strict one goes without)
        targets[1].pop("disposable-code-id")
        config.write_text(toml_targets(targets))
        strict = conformance(config, "--strict", *SMALL, "--stage", "scenarios")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert result.stdout.count("CONFORMS") == 3
    assert strict.returncode == 1 and "DOES NOT CONFORM" in strict.stdout
