"""An independent check that a response the mock sent is one its contract declares.

The mock validates its own responses with Connexion when asked to, but only on routed operations; this audit uses
openapi-core (a different validator) on every response, routed or not. A response to a path or method the contract
does not have must still be the vendor's own error body, so it is checked against that vendor's error schema.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import httpx
import jsonschema
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.testing import MockRequest, MockResponse

from mockserver.contracts import contract_path
from mockserver.testing import RunningMock
from tests.specs import resolve_refs

HOST = "http://mock.test"
PREFIXES = {"/magicline": "magicline", "/seam": "seam", "/vms": "vms", "/_mock": "control"}
#: the body every unrouted answer of a vendor (404 unknown path, 405 wrong method) carries
GENERIC_ERROR = {
    "magicline": "ErrorResponse",
    "seam": "Error",
    "vms": "Message",
    "control": "Problem",
}


@functools.cache
def _contract(api: str) -> tuple[OpenAPI, dict[str, Any]]:
    spec = yaml.safe_load(contract_path(api).read_text())
    served = copy.deepcopy(spec)
    served["servers"] = [{"url": HOST}]
    # openapi-core reads a few JSON media types itself; the control API's problem documents are JSON too.
    config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
    return OpenAPI.from_dict(served, config=config), spec


def _split(path: str) -> tuple[str, str]:
    for prefix, api in PREFIXES.items():
        if path == prefix or path.startswith(prefix + "/"):
            return api, path[len(prefix) :] or "/"
    raise AssertionError(f"{path} is under no API prefix")


def problems(response: httpx.Response) -> list[str]:
    """What is wrong with ``response`` against its API's contract (empty when nothing is)."""
    request = response.request
    api, path = _split(request.url.path)
    openapi, spec = _contract(api)
    content_type = response.headers.get("content-type", "")
    found: list[str] = []
    if response.status_code >= 500 and response.status_code not in (500, 503):
        found.append(f"status {response.status_code}")
    mock_request = MockRequest(
        HOST,
        request.method.lower(),
        path,
        args=dict(request.url.params),
        headers=dict(request.headers),
        data=request.content,
        content_type=request.headers.get("content-type", "application/json"),
    )
    mock_response = MockResponse(
        response.content,
        status_code=response.status_code,
        headers=dict(response.headers),
        content_type=content_type.split(";")[0].strip(),
    )
    try:
        errors = list(openapi.iter_response_errors(mock_request, mock_response))
    except (PathNotFound, OperationNotFound) as error:
        errors = [error]
    routed = not any(isinstance(error, (PathNotFound, OperationNotFound)) for error in errors)
    if not routed:
        errors = []
    found.extend(f"{type(error).__name__}: {error} {getattr(error, '__cause__', '')}" for error in errors)
    if not routed:
        # Magicline's HEAD checks only the key, on any path (vendor-facts); a CORS preflight answers anywhere.
        head_checks_key = api == "magicline" and request.method == "HEAD" and response.status_code in (200, 401)
        preflight = request.method == "OPTIONS" and response.status_code < 300
        if response.status_code not in (404, 405) and not head_checks_key and not preflight:
            found.append(f"unrouted {request.method} {path} answered {response.status_code}")
        if request.method not in ("HEAD", "OPTIONS"):
            found.extend(_generic_error_problems(api, spec, response))
    return found


def _generic_error_problems(api: str, spec: dict[str, Any], response: httpx.Response) -> list[str]:
    if not response.headers.get("content-type", "").startswith(("application/json", "application/problem+json")):
        return [f"unrouted answer is {response.headers.get('content-type')!r}, not JSON"]
    schema = resolve_refs(spec["components"]["schemas"][GENERIC_ERROR[api]], spec)
    schema = _nullable_to_types(schema)
    validator = jsonschema.Draft4Validator(schema)
    return [f"unrouted body: {error.message}" for error in validator.iter_errors(response.json())]


def _nullable_to_types(schema: Any) -> Any:
    """OpenAPI 3.0's ``nullable`` as JSON Schema draft 4 understands it."""
    if isinstance(schema, list):
        return [_nullable_to_types(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: _nullable_to_types(value) for key, value in schema.items() if key != "nullable"}
    if schema.get("nullable") and "type" in converted:
        converted["type"] = [converted["type"], "null"]
    return converted


def assert_conforms(response: httpx.Response) -> httpx.Response:
    found = problems(response)
    assert not found, (
        f"{response.request.method} {response.request.url} -> {response.status_code} {response.text[:300]}\n"
        + "\n".join(found)
    )
    return response


def audited_client(mock: RunningMock, **kwargs: Any) -> httpx.Client:
    """A client of ``mock`` (`RunningMock.client`: straight to the app, no socket) that audits every response it
    receives."""

    def hook(response: httpx.Response) -> None:
        response.read()
        assert_conforms(response)

    return mock.client(event_hooks={"response": [hook]}, **kwargs)


def state_of(client: httpx.Client) -> Any:
    """The whole state of the mock behind ``client`` (its records, without the clock), to compare before/after."""
    response = client.get("/_mock/snapshot")
    response.raise_for_status()
    return response.json()["state"]
