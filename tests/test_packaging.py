"""What an installed distribution carries and costs: the license ships in the wheel and the sdist, and the pytest
plugins the package registers (entry point pytest11) keep every pytest run in a user's environment quiet and light."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

from hatchling.builders.sdist import SdistBuilder
from hatchling.builders.wheel import WheelBuilder

ROOT = Path(__file__).resolve().parents[1]
#: modules the plugins must not import until a mock starts or a conformance target runs
HEAVY = ("connexion", "uvicorn", "starlette", "schemathesis", "hypothesis", "jsonschema")
#: of those, the ones no other plugin of a user's environment loads (Schemathesis and Hypothesis have their own)
OURS_ALONE = ("connexion", "uvicorn", "starlette")


def test_the_license_ships_in_the_wheel_and_the_sdist_with_the_constraints(tmp_path: Path) -> None:
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("MIT License")
    with zipfile.ZipFile(next(WheelBuilder(str(ROOT)).build(directory=str(tmp_path)))) as wheel:
        info = next(name.split("/")[0] for name in wheel.namelist() if name.endswith(".dist-info/METADATA"))
        assert wheel.read(f"{info}/licenses/LICENSE").decode() == license_text
        metadata = wheel.read(f"{info}/METADATA").decode()
    assert "License-Expression: MIT" in metadata and "License-File: LICENSE" in metadata
    with tarfile.open(next(SdistBuilder(str(ROOT)).build(directory=str(tmp_path)))) as sdist:
        names = sdist.getnames()
    # The README's install commands name the constraints files; an sdist is installed the same way.
    for name in ("LICENSE", "constraints.txt", "constraints-lowest.txt"):
        assert any(member.endswith(f"/{name}") for member in names), name


def test_importing_the_plugins_warns_nothing_and_loads_no_server() -> None:
    plugins = {entry.name: entry.value for entry in importlib.metadata.entry_points(group="pytest11")}
    assert plugins["doorcodes_mock"] == "mockserver.testing"
    assert plugins["doorcodes_conformance"] == "conformance.pytest_plugin"
    check = f"import sys, {', '.join(plugins[name] for name in ('doorcodes_mock', 'doorcodes_conformance'))}; " + (
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", check], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout == "[]\n"


def test_a_users_pytest_run_stays_quiet(tmp_path: Path) -> None:
    """A project that merely has the package installed sees no warning from it, and neither does one that uses
    the `mock_server` fixture."""
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            f"""
            import sys

            import httpx


            def test_the_plugins_are_there_and_light(pytestconfig):
                assert pytestconfig.pluginmanager.has_plugin("doorcodes_mock")
                assert pytestconfig.pluginmanager.has_plugin("doorcodes_conformance")
                assert [m for m in {OURS_ALONE!r} if m in sys.modules] == []


            def test_the_fixture_starts_a_mock(mock_server):
                assert httpx.get(mock_server.urls["seam"] + "/health").json() == {{"ok": True}}
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_user.py"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout and "warning" not in result.stdout.lower(), result.stdout
