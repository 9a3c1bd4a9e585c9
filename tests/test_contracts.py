"""The contracts themselves: valid OpenAPI 3.0.3, loadable by every tool we build on, examples that validate,
the vendor conventions written into them, and shipped inside the installed distribution."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from connexion import AsyncApp
from openapi_core import OpenAPI
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from mockserver.contracts import CONTRACTS, contract_path, document, load_contract
from tests.node_tools import ensure_node_tools, needs_node
from tests.specs import resolve_refs

ROOT = Path(__file__).resolve().parent.parent
VENDORS = ("magicline", "seam", "vms")
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def _examples(spec: dict[str, Any]) -> list[tuple[str, Any, dict[str, Any]]]:
    """(where, example, schema) for every example in a contract: schemas, parameters and media types."""
    found: list[tuple[str, Any, dict[str, Any]]] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if "example" in node and isinstance(node.get("schema"), dict):
                found.append((where, node["example"], node["schema"]))  # parameter or media type
            elif "example" in node and ("type" in node or "allOf" in node or "properties" in node):
                found.append((where, node["example"], {k: v for k, v in node.items() if k != "example"}))
            for name, example in (node.get("examples") or {}).items() if isinstance(node.get("schema"), dict) else ():
                found.append((f"{where}/examples/{name}", example["value"], node["schema"]))
            for key, value in node.items():
                if key not in ("example", "examples"):
                    walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{where}/{index}")

    walk(spec, "#")
    return found


@pytest.mark.parametrize("name", CONTRACTS)
def test_contract_is_valid_openapi_303(name: str) -> None:
    spec = document(name)
    assert spec["openapi"] == "3.0.3"
    validate(spec)


@pytest.mark.parametrize("name", CONTRACTS)
def test_the_contract_data_is_what_connexion_would_read_from_the_file(name: str) -> None:
    # The mock hands Connexion the parsed contract (libyaml's parser, once per process) instead of the file,
    # which Connexion would read with PyYAML's pure-Python parser: both must give the same document.
    assert document(name) == yaml.safe_load(contract_path(name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", CONTRACTS)
def test_contract_loads_in_connexion_openapi_core_and_schemathesis(name: str) -> None:
    app = AsyncApp(__name__)
    # resolver_error: the contract alone must load, whether or not handlers exist for it
    app.add_api(contract_path(name), base_path=f"/{name}", resolver_error=501)
    app.middleware._build_middleware_stack()
    OpenAPI.from_dict(document(name))
    schema = schemathesis.openapi.from_path(str(contract_path(name)))
    results = list(schema.get_all_operations())
    assert results and all(result.ok() for result in results)
    assert len(results) == len(load_contract(name).operations)


@pytest.mark.parametrize("name", CONTRACTS)
def test_every_example_validates_against_its_schema(name: str) -> None:
    spec = document(name)
    examples = _examples(spec)
    assert examples or name == "control", "a vendor contract without its seeds' examples"
    failures = []
    for where, example, schema in examples:
        errors = list(OAS30Validator(resolve_refs(schema, spec)).iter_errors(example))
        if errors:
            failures.append(f"{where}: {errors[0].message}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", CONTRACTS)
def test_operation_ids_are_plain_and_unique(name: str) -> None:
    ids = [
        op["operationId"]
        for item in document(name)["paths"].values()
        for method, op in item.items()
        if method in METHODS
    ]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][A-Za-z0-9]*", op_id) for op_id in ids), ids


def test_magicline_declares_scopes_head_and_every_error() -> None:
    spec = document("magicline")
    for path, item in spec["paths"].items():
        assert "head" in item, f"{path} lacks HEAD"
        assert set(item["head"]["responses"]) == {"200", "401"}
        for method, op in item.items():
            if method == "head":
                continue
            assert op["x-required-scopes"], f"{method} {path} declares no scope"
            assert {"400", "401", "403", "404", "409", "429", "500", "503"} <= set(op["responses"])
    scopes = {op_id: op.raw.get("x-required-scopes") for op_id, op in load_contract("magicline").operations.items()}
    assert scopes["getCustomerAccessCode"] == ["CUSTOMER_READ"]
    assert scopes["addAccessMediums"] == ["CUSTOMER_ACCESS_MEDIUM_WRITE"]
    assert load_contract("magicline").operation("addAccessMediums").raw["deprecated"] is True
    assert load_contract("magicline").operation("addAccessMedium").raw["deprecated"] is True


def test_vms_paginator_and_dates_follow_the_seed() -> None:
    spec = document("vms")
    schemas = spec["components"]["schemas"]
    assert set(schemas["PageMeta"]["required"]) == {
        "current_page",
        "from",
        "last_page",
        "links",
        "path",
        "per_page",
        "to",
        "total",
    }
    assert set(schemas["PageLinks"]["required"]) == {"first", "last", "prev", "next"}
    date = re.compile(schemas["DateTime"]["pattern"])
    assert date.search("2022-04-19 17:16:00") and not date.search("2022-04-19T17:16:00Z")
    code = schemas["IntercomCode"]
    assert "format" not in code["properties"]["expired_at"]
    assert schemas["Intercom"]["properties"]["created_at"]["nullable"] is True
    for op_id in ("listCodes", "deleteCodes", "createCode", "openDoor", "authorizeChannel"):
        op = load_contract("vms").operation(op_id).raw
        assert "401" in op["responses"] and "422" in op["responses"]
        headers = {p.get("$ref", "").rsplit("/", 1)[-1] for p in op["parameters"]}
        assert {"XClient", "XUUID", "XSocketID"} <= headers


def test_seam_uses_documented_error_ids_and_marks_its_own_choices() -> None:
    spec = document("seam")
    unlock = load_contract("seam").operation("unlockIntercom").raw["responses"]["500"]
    assert unlock["content"]["application/json"]["example"]["error_id"] == "INTERCOM_DISCONNECTED"
    delete = load_contract("seam").operation("deleteAccessCode").raw["responses"]["500"]
    assert delete["content"]["application/json"]["example"]["error_id"] == "ACCESS_CODE_REMOVAL_FAILED"
    assert spec["components"]["responses"]["Unauthorized"]["x-mock-choice"]["reason"]
    assert spec["components"]["schemas"]["AccessCode"]["properties"]["access_code_id"]["format"] == "uuid"


@pytest.mark.parametrize("name", VENDORS)
def test_links_point_at_existing_operations(name: str) -> None:
    known = set(load_contract(name).operations)
    links = [
        link
        for op in (operation.raw for operation in load_contract(name).operations.values())
        for response in op["responses"].values()
        for link in response.get("links", {}).values()
    ]
    assert links, f"{name} has no links for stateful testing"
    assert all(link["operationId"] in known for link in links)


def test_contracts_ship_inside_the_wheel(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0 and "No module named 'hatchling'" in result.stderr:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for name in CONTRACTS:
        packaged = f"mockserver/openapi/{name}.yaml"
        assert packaged in names
        assert yaml.safe_load(zipfile.ZipFile(wheel).read(packaged)) == document(name)
    assert "mockserver/fixtures/demo.yaml" in names
    assert {"mockserver/static/panel.html", "mockserver/static/panel.js", "mockserver/static/panel.css"} <= set(names)


@needs_node
@pytest.mark.parametrize("name", CONTRACTS)
def test_independent_linter_finds_no_errors(name: str, tmp_path: Path) -> None:
    modules = ensure_node_tools(".bin/spectral")
    ruleset = tmp_path / ".spectral.yaml"
    ruleset.write_text('extends: ["spectral:oas"]\n')
    result = subprocess.run(
        [
            str(modules / ".bin" / "spectral"),
            "lint",
            str(contract_path(name)),
            "--ruleset",
            str(ruleset),
            "--format",
            "json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    problems = json.loads(result.stdout or "[]")
    errors = [p for p in problems if p["severity"] == 0]
    assert not errors, errors
