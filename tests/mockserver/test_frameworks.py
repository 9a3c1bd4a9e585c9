"""The framework releases the mock runs on: declared, pinned and checked when it starts (mockserver.http.supported)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from mockserver.http import connection, connexion_internals, starlette_internals
from mockserver.http.supported import UnsupportedFramework, require

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
CHECKED = {"connexion": connexion_internals, "starlette": starlette_internals, "uvicorn": connection}


def _requirements() -> dict[str, Requirement]:
    found = {}
    for line in [*PROJECT["dependencies"], *(r for rs in PROJECT["optional-dependencies"].values() for r in rs)]:
        requirement = Requirement(line)
        if requirement.name != "doorcodes-contracts":
            found[requirement.name.lower()] = requirement
    return found


def _pins(name: str) -> dict[str, Version]:
    pins = {}
    for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            package, _, version = line.partition("==")
            pins[package.strip().lower().replace("_", "-")] = Version(version.strip())
    return pins


def test_every_dependency_has_a_tested_range() -> None:
    for name, requirement in _requirements().items():
        operators = {spec.operator for spec in requirement.specifier}
        assert {">=", "<"} <= operators, f"{name}: {requirement.specifier} has no lower and upper bound"


@pytest.mark.parametrize("constraints", ["constraints.txt", "constraints-lowest.txt"])
def test_the_constraints_pin_every_dependency_inside_its_range(constraints: str) -> None:
    pins = _pins(constraints)
    for name, requirement in _requirements().items():
        assert name in pins, f"{constraints} does not pin {name}"
        assert pins[name] in requirement.specifier, f"{constraints}: {name} {pins[name]} not in {requirement.specifier}"


def test_the_lowest_constraints_are_the_lower_bounds() -> None:
    pins = _pins("constraints-lowest.txt")
    for name, requirement in _requirements().items():
        (lowest,) = [Version(spec.version) for spec in requirement.specifier if spec.operator == ">="]
        assert pins[name] == lowest, f"{name}: constraints-lowest.txt pins {pins[name]}, the range starts at {lowest}"


@pytest.mark.parametrize("framework", sorted(CHECKED))
def test_the_checked_range_is_the_declared_one(framework: str) -> None:
    module = CHECKED[framework]
    specifier = _requirements()[framework].specifier
    declared = {spec.operator: Version(spec.version).release for spec in specifier}
    assert declared[">="][: len(module.LOWEST)] == module.LOWEST
    assert declared["<"] == module.BELOW


def test_a_release_outside_the_range_is_refused() -> None:
    with pytest.raises(UnsupportedFramework, match=r"^unsupported connexion 3\.1: this mock is tested with connexion"):
        require("connexion", (3, 1, 0), (3, 3), (3, 4))
    with pytest.raises(UnsupportedFramework, match=r"^unsupported starlette 1\.11: "):
        require("starlette", (1, 11, 2), (1, 7), (1, 11))
    with pytest.raises(UnsupportedFramework, match=r"^unsupported uvicorn 0\.52\.0: .* uvicorn>=0\.52\.4,<0\.55$"):
        require("uvicorn", (0, 52, 0), (0, 52, 4), (0, 55))
    require("uvicorn", (0, 54, 0), (0, 52, 4), (0, 55))


def test_a_missing_piece_is_named() -> None:
    class Validator:
        def _parse(self) -> None: ...

    needed = [(Validator, "_parse"), (Validator, "_insert_messages")]
    with pytest.raises(
        UnsupportedFramework, match=r"^unsupported connexion 3\.3: it lacks Validator\._insert_messages$"
    ):
        require("connexion", (3, 3, 0), (3, 3), (3, 4), needed)


def _start(prelude: str) -> subprocess.CompletedProcess[str]:
    """`mockserver run --help` in a fresh interpreter after ``prelude`` (which fakes the installed framework)."""
    # The prelude may import Connexion before the CLI hides the warning Starlette's test client gives on import.
    quiet = "import warnings\nwarnings.filterwarnings('ignore', message='Using `httpx`')\n"
    run = "import sys\nsys.argv = ['mockserver', 'run', '--help']\nfrom mockserver.cli import main\nmain()\n"
    script = f"{quiet}{prelude}\n{run}"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_the_cli_refuses_an_untested_release_in_one_line() -> None:
    result = _start(
        "import importlib.metadata as metadata\n"
        "real = metadata.version\n"
        "metadata.version = lambda name: '3.1.0' if name == 'connexion' else real(name)"
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "mockserver: unsupported connexion 3.1: this mock is tested with connexion>=3.3,<3.4"
    ]
    assert not result.stdout


def test_the_cli_refuses_a_release_that_lacks_what_the_mock_uses() -> None:
    result = _start(
        "from connexion.validators.abstract import AbstractRequestBodyValidator as V\ndel V._insert_messages"
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        "mockserver: unsupported connexion 3.3: it lacks AbstractRequestBodyValidator._insert_messages"
    )


def test_the_cli_starts_on_the_installed_releases() -> None:
    result = _start("")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_a_contract_validated_once_is_not_trusted_after_an_edit() -> None:
    # Connexion validates each contract on every `add_api`; the mock remembers valid ones by content, never by name.
    from connexion.exceptions import InvalidSpecification
    from connexion.spec import Specification

    from mockserver.contracts import load_contract
    from mockserver.http.connexion_internals import remember_valid_contracts

    remember_valid_contracts()
    contract = load_contract("seam").raw
    Specification.from_dict(contract)
    edited = {**contract, "paths": {"/health": {"get": {"responses": {"200": {"description": 5}}}}}}
    with pytest.raises(InvalidSpecification):
        Specification.from_dict(edited)
    Specification.from_dict(contract)  # and the one remembered still loads
