"""Schema-driven fuzzing (schemathesis) against a live server: no input ever gets a 5xx.

Every operation of the OpenAPI document is exercised with valid (positive) and invalid
(negative) requests generated from its schema; each answer must be below 500, and each 4xx
must be a problem+json body naming a field. Bounded: `EXAMPLES` per operation and mode
(`tests/support/schema_cases.py`).
Each operation group must run cases in each mode: a group whose routes moved, or whose
strategies generate nothing, fails instead of passing without having tested anything.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.support.api import running_api
from tests.support.schema_cases import can_be_invalid, generated_cases


def problem_json_on_4xx(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 4xx answer is RFC 9457 problem+json with a title, a detail and the field at fault."""
    if 400 <= response.status_code < 500:
        content_type = response.headers.get("content-type", [""])
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        assert content_type == "application/problem+json", (response.status_code, content_type)
        body = response.json()
        assert {"type", "title", "status", "detail"} <= set(body), body
        assert body["status"] == response.status_code
        if response.status_code in (404, 405, 415, 422):
            assert isinstance(body.get("field"), str) and body["field"], body
    return None


OTHER_PARTS = ("/v1/escalations", "/v1/accounts", "/v1/products", "/rsaa")


def in_group(path: str, group: str) -> bool:
    """`parts`: the escalation and credit routes; `api`: every other route, so a new route is
    fuzzed without being listed here."""
    other = any(part in path for part in OTHER_PARTS)
    return other if group == "parts" else not other


def check_every_operation_ran(cases: dict[str, int], group: str, mode: GenerationMode) -> None:
    """Fail when the group had no operation, ran no case, or left an operation without one."""
    assert cases, f"no {group} operation to fuzz in {mode.value} mode"
    assert sum(cases.values()) > 0, f"the {group} group ran no case in {mode.value} mode"
    idle = sorted(name for name, ran in cases.items() if ran == 0)
    assert not idle, f"{group}, {mode.value} mode: no case ran for {idle}"


@pytest.mark.parametrize("group", ["api", "parts"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_reaches_a_server_error(sqlite_url: str, mode: GenerationMode, group: str) -> None:
    with running_api(sqlite_url) as (client, _):
        base = str(client.base_url).rstrip("/")
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        operations = [
            op
            for op in (result.ok() for result in schema.get_all_operations())
            if in_group(op.path, group) and (mode is GenerationMode.POSITIVE or can_be_invalid(op))
        ]
        if group == "api":
            assert len(operations) >= (9 if mode is GenerationMode.POSITIVE else 6)
        cases: dict[str, int] = dict.fromkeys((f"{op.method} {op.path}" for op in operations), 0)
        for operation in operations:
            for case in generated_cases(operation, mode):
                cases[f"{operation.method} {operation.path}"] += 1
                response = case.call(base_url=base, timeout=30)
                case.validate_response(response, checks=[not_a_server_error, problem_json_on_4xx])
        check_every_operation_ran(cases, group, mode)


@pytest.mark.parametrize(
    ("cases", "message"),
    [
        ({}, "no parts operation to fuzz in negative mode"),
        ({"GET /v1/escalations": 0, "POST /v1/accounts": 0}, "the parts group ran no case"),
        ({"GET /v1/escalations": 15, "POST /v1/accounts": 0}, "no case ran for ['POST /v1/acc"),
    ],
)
def test_a_group_or_operation_that_ran_no_case_fails(cases: dict[str, int], message: str) -> None:
    with pytest.raises(AssertionError, match=re.escape(message)):
        check_every_operation_ran(cases, "parts", GenerationMode.NEGATIVE)
    check_every_operation_ran(
        {**cases, "GET /v1/escalations": 1, "POST /v1/accounts": 1},
        "parts",
        GenerationMode.NEGATIVE,
    )
