"""`vms_validation_fields` on hand-made 422s: what a Laravel server may and may not leave out."""

from __future__ import annotations

import pytest

from conformance.checks.common import Observation
from conformance.checks.vms import vms_validation_fields


def _create_code_422(errors: dict[str, list[str]], request_body: object) -> Observation:
    return Observation(
        api="vms",
        operation_id="createCode",
        method="POST",
        path="/api/v1/intercom/{intercom}/codes",
        status=422,
        body={"message": "invalid", "errors": errors},
        request_body=request_body,
    )


def test_a_422_must_name_a_missing_body_field() -> None:
    with pytest.raises(AssertionError, match="lacks"):
        vms_validation_fields(_create_code_422({"title": ["too long"]}, {"title": "x" * 300}))


def test_naming_one_missing_field_is_enough() -> None:
    vms_validation_fields(_create_code_422({"title": ["required"]}, {}))


def test_a_server_that_stopped_at_a_bad_header_owes_no_word_about_the_body() -> None:
    vms_validation_fields(_create_code_422({"x-client": ["The selected x-client is invalid."]}, {}))


def test_a_field_the_operation_does_not_have_is_refused() -> None:
    with pytest.raises(AssertionError, match="does not have"):
        vms_validation_fields(_create_code_422({"colour": ["bad"], "title": ["required"]}, {}))
