"""The fast acceptance checks the validators use before JSON Schema never accept what JSON Schema refuses.

`quick_check` only speeds up the common case: a value it accepts skips the full validator, anything else goes to
it. So the one property that matters is quick(value) => the validator accepts value, for every schema of every
contract it applies to, on valid, invalid and arbitrary values.
"""

from __future__ import annotations

from typing import Any

import pytest
from connexion.json_schema import Draft4RequestValidator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator

from mockserver.contracts import document
from mockserver.http.validation import quick_check
from tests.specs import resolve_refs


def _schemas() -> list[Any]:
    found = []
    for name in ("magicline", "seam", "vms", "control"):
        spec = document(name)
        for path, item in spec["paths"].items():
            for method, operation in item.items():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                for parameter in resolve_refs(operation.get("parameters", []), spec):
                    found.append(pytest.param(parameter["schema"], id=f"{name}:{method} {path}:{parameter['name']}"))
                body = resolve_refs(operation.get("requestBody", {}), spec)
                for media, content in body.get("content", {}).items():
                    found.append(pytest.param(content["schema"], id=f"{name}:{method} {path}:body:{media}"))
    return [p for p in found if quick_check(p.values[0]) is not None]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def _near(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values close to a schema's boundaries, where a wrong quick check would show."""
    values: list[Any] = []
    for key in ("minimum", "maximum"):
        if key in schema:
            values += [schema[key] - 1, schema[key], schema[key] + 1, float(schema[key]), True]
    for key in ("minLength", "maxLength"):
        if key in schema:
            values += ["x" * max(schema[key] - 1, 0), "x" * schema[key], "x" * (schema[key] + 1), " ", ""]
    values += list(schema.get("enum", [])) + [example for example in [schema.get("example")] if example is not None]
    for name in schema.get("properties", {}):
        for value in [None, "", " ", 0, -1, "2029-12-31 12:45", "2029-02-30 12:45", [], {}]:
            values.append({**{r: "x" for r in schema.get("required", [])}, name: value})
    if "items" in schema:
        values += [[], [1], [0], [-1], [1] * 201, ["1"], [True], [1.0]]
    return st.sampled_from(values) if values else st.nothing()


@pytest.mark.parametrize("schema", _schemas())
def test_quick_acceptance_implies_schema_acceptance(schema: dict[str, Any]) -> None:
    quick = quick_check(schema)
    assert quick is not None
    full = Draft4RequestValidator(schema, format_checker=Draft4Validator.FORMAT_CHECKER)

    @given(value=JSON | _near(schema))
    @settings(max_examples=50, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    def check(value: Any) -> None:
        if quick(value):
            assert full.is_valid(value), f"quick check accepted {value!r}, which the schema refuses"

    check()


def test_quick_checks_accept_the_contracts_examples() -> None:
    """And they do their job: the common, valid values take the fast path."""
    schema = resolve_refs(document("vms")["components"]["schemas"]["CreateCodeRequest"], document("vms"))
    quick = quick_check(schema)
    assert quick is not None
    assert quick({"title": "new code", "expired_at": "2029-12-31 12:45"})
    assert not quick({"title": " ", "expired_at": "2029-12-31 12:45"})
    delete = resolve_refs(document("vms")["components"]["schemas"]["DeleteCodesRequest"], document("vms"))
    assert quick_check(delete)({"ids": [1, 2]}) and not quick_check(delete)({"ids": [True]})
