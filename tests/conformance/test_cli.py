"""The `conformance` command as a CI gate: exit codes, JUnit XML, no credential in any output."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

import mockserver.testing as mock_testing
from tests.conformance import planted
from tests.conformance.forked import run_conformance

SECRETS = ("demo-seam-alice", "demo-seam-bob", "alice-password", "bob-password", "demo-magicline-mission")


def _conformance(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_conformance([*args, "--no-progress", "--max-examples", "4", "--max-steps", "4"], env=env, timeout=300)


@pytest.fixture
def mock() -> Iterator[mock_testing.RunningMock]:
    with mock_testing.start_mock(seed=0) as running:
        yield running


@pytest.mark.slow
def test_a_conforming_server_exits_0_and_writes_junit(mock: mock_testing.RunningMock, tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    result = _conformance(
        "run",
        "--api",
        "seam",
        "--base-url",
        mock.urls["seam"],
        "--token",
        "demo-seam-alice",
        "--other-token",
        "demo-seam-bob",
        "--junit",
        str(report),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CONFORMS" in result.stdout
    root = ET.parse(report).getroot()
    cases = root.findall(".//testcase")
    assert cases and not root.findall(".//failure")
    text = result.stdout + result.stderr + report.read_text()
    assert not [secret for secret in SECRETS if secret in text]


@pytest.mark.slow
def test_a_broken_server_exits_1_names_the_check_and_hides_credentials(tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    with mock_testing.start_mock(seed=0, wrap=planted.wrap(planted.VmsPagingTotal())) as mock:
        result = _conformance(
            "run",
            "--api",
            "vms",
            "--base-url",
            mock.urls["vms"],
            "--login",
            "alice@demo.test",
            "--password",
            "alice-password",
            "--intercom-id",
            "180",
            "--junit",
            str(report),
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "vms_paginator" in result.stdout and "curl" in result.stdout
    failed = [
        case.get("classname")
        for case in ET.parse(report).getroot().iter("testcase")
        if case.find("failure") is not None
    ]
    assert "vms.vms_paginator" in failed
    text = result.stdout + result.stderr + report.read_text()
    assert not [secret for secret in SECRETS if secret in text]


def test_a_bounded_run_sends_what_its_examples_ask_for(mock: mock_testing.RunningMock) -> None:
    # Schemathesis' error feedback, learning from VMS's 422s in the fuzzing phase, once made the stateful phase redraw
    # scenario after scenario: 400 requests where 4 examples of 4 steps ask for about 40.
    with mock.client("control") as control:
        control.delete("/journal").raise_for_status()
    phases = ("--stage", "schemathesis", "--phase", "fuzzing", "--phase", "stateful")
    result = _conformance(
        "run", "--api", "vms", "--base-url", mock.urls["vms"], "--login", "alice@demo.test",
        "--password", "alice-password", "--intercom-id", "180", *phases,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    with mock.client("control") as control:
        sent = control.get("/journal", params={"api": "vms", "limit": 10_000}).json()["entries"]
    assert 10 < len(sent) <= 120


def test_a_run_that_cannot_be_done_exits_2(tmp_path: Path) -> None:
    unreachable = _conformance("run", "--api", "seam", "--base-url", "http://127.0.0.1:9", "--token", "x")
    assert unreachable.returncode == 2
    missing = _conformance("run", "--api", "vms", "--base-url", "http://127.0.0.1:9")  # no credentials
    assert missing.returncode == 2
    broken = tmp_path / "conformance.toml"
    broken.write_text("[[target]]\napi = 'nothing'\n")
    assert _conformance("run", "--config", str(broken)).returncode == 2


@pytest.mark.slow
def test_several_apis_from_a_config_file(mock: mock_testing.RunningMock, tmp_path: Path) -> None:
    config = tmp_path / "conformance.toml"
    config.write_text(f"""
[[target]]
api = "seam"
base_url = "{mock.urls["seam"]}"
token = "demo-seam-alice"

[[target]]
api = "magicline"
base_url = "{mock.urls["magicline"]}"
api_key = "demo-magicline-mission"
customer_id = 1003
""")
    result = _conformance("run", "--config", str(config), "--junit", str(tmp_path / "r.xml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "seam" in result.stdout and "magicline" in result.stdout


@pytest.mark.slow
def test_the_pytest_plugin_gates_a_server(mock: mock_testing.RunningMock, tmp_path: Path) -> None:
    config = tmp_path / "conformance.toml"
    config.write_text(
        f'max-examples = 4\n\n[[target]]\napi = "seam"\nbase_url = "{mock.urls["seam"]}"\ntoken = "demo-seam-alice"\n'
    )
    passed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--conformance-config",
            str(config),
            "--rootdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert passed.returncode == 0 and "1 passed" in passed.stdout, passed.stdout + passed.stderr
    with mock_testing.start_mock(seed=0, wrap=planted.wrap(planted.SeamHealth())) as broken:
        config.write_text(config.read_text().replace(mock.urls["seam"], broken.urls["seam"]))
        failed = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--conformance-config",
                str(config),
                "--rootdir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
    assert failed.returncode == 1 and "seam_health" in failed.stdout, failed.stdout
    assert "demo-seam-alice" not in failed.stdout


# ---------------------------------------------------------------------------------------------- the output


def test_checks_prints_every_check_in_full_and_every_mock_choice_with_its_reason() -> None:
    from conformance.checks import catalogue
    from mockserver.contracts import load_contract

    result = subprocess.run(
        [sys.executable, "-m", "conformance", "checks", "--api", "vms"], capture_output=True, text=True, check=True
    )
    text = " ".join(result.stdout.split())
    for info in catalogue("vms"):
        assert " ".join(info.doc.split()) in text, info.name  # the whole docstring, not its first line
    for mark in load_contract("vms").marks():
        assert mark.where in text and " ".join(mark.reason.split()) in text


def test_the_summary_counts_in_words_and_says_each_error_once() -> None:
    from conformance.events import Finding, Outcome, RequestView, RunFinished, RunStarted
    from conformance.reports import Summary

    finding = Finding("vms", "vms_code_digits", "GET /x", "Field", "letters", (RequestView("GET", "http://x/y"),))
    events = [
        RunStarted("vms", "vms", "http://x", 0, "run"),
        Outcome("vms", "vms_code_digits", "GET /x", "failed", 0, finding),
        *[Outcome("vms", "schemathesis", "GET /x", "error", note="Hook failed: boom") for _ in range(3)],
        RunFinished("vms", 1.0),
    ]
    text = Summary().consume(events).render()
    assert "failed: 1 check" in text and "1 checks" not in text
    assert "reproduce (seed None):" in text and ", )" not in text
    assert text.count("Hook failed: boom") == 1


@pytest.mark.slow
def test_fuzz_without_a_terminal_prints_each_stage_once_and_says_when_it_found_nothing(
    mock: mock_testing.RunningMock, tmp_path: Path
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance",
            "fuzz",
            "--api",
            "seam",
            "--base-url",
            mock.urls["seam"],
            "--token",
            "demo-seam-alice",
            "--max-time",
            "4",
            "--max-examples",
            "2",
            "--out",
            str(tmp_path / "found"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    stages = [line for line in result.stderr.splitlines() if line.startswith("seam: ")]
    assert stages and len(stages) == len(set(stages))
    assert "no findings" in result.stdout


def test_a_config_file_names_its_own_keys_in_skip_notes(mock: mock_testing.RunningMock, tmp_path: Path) -> None:
    config = tmp_path / "gate.toml"
    config.write_text(f'[[target]]\napi = "seam"\nbase-url = "{mock.urls["seam"]}"\ntoken = "demo-seam-alice"\n')
    result = _conformance("run", "--config", str(config), "--stage", "scenarios")
    assert result.returncode == 0, result.stdout
    assert "`other-token` (in gate.toml)" in result.stdout and "--other-token" not in result.stdout
