"""The OpenAPI document is the truth about the API: schemathesis finds nothing contradicting it.

Against a live server (uvicorn on 127.0.0.1), on SQLite and on PostgreSQL, every operation of
`/openapi.json` gets schema-generated valid (positive) and invalid (negative) requests, and
every answer must pass: no 5xx, a status the operation declares, the content type declared for
that status, and a body valid against the declared schema. Bounded (`EXAMPLES` per operation
and mode, `tests/support/schema_cases.py`: generated once per run, the same cases for both
databases and for `test_api_fuzz.py`). The case counts per operation group are printed
(`pytest -s`) and each group must have run cases in both modes.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.api import running_api
from tests.support.schema_cases import can_be_invalid, generated_cases

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SEED_TICKET = {"id": "T-1", "policy": "standard", "created_at": "2026-11-20T13:00:00-07:00"}


def group_of(path: str) -> str:
    """`/v1/tickets/{ticket_id}/sla` -> `tickets`; `/healthz` -> `service`."""
    parts = path.strip("/").split("/")
    return parts[1] if parts[0] == "v1" and len(parts) > 1 else "service"


def run_contract(url: str) -> tuple[Counter[str], dict[str, int]]:
    """(cases per `group mode`, cases per operation) of one schemathesis run; fails listing
    every operation whose check failed."""
    per_group: Counter[str] = Counter()
    per_operation: Counter[str] = Counter()
    failures: list[str] = []
    with running_api(url) as (client, _):
        assert client.post("/v1/tickets", json=SEED_TICKET).status_code == 201
        base = str(client.base_url).rstrip("/")
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 20, [op.label for op in operations]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for operation in operations:
                if mode is GenerationMode.NEGATIVE and not can_be_invalid(operation):
                    continue
                try:
                    ran = exercise(operation, mode, base)
                except (Exception, BaseExceptionGroup) as exc:  # report them all at the end
                    failures.append(f"{operation.label} ({mode.value}): {exc}")
                    continue
                per_operation[operation.label] += ran
                per_group[f"{group_of(operation.path)} {mode.value}"] += ran
        missing = [op.label for op in operations if not per_operation[op.label]]
    assert not failures, "\n\n".join(failures)
    assert not missing, f"operations that ran no case: {missing}"
    return per_group, dict(per_operation)


def exercise(operation: Any, mode: GenerationMode, base: str) -> int:
    """Send the bounded cases of one operation in one mode; the number of cases sent."""
    cases = generated_cases(operation, mode)
    for case in cases:
        response = case.call(base_url=base, timeout=30)
        case.validate_response(response, checks=CHECKS)
    return len(cases)


def test_schemathesis_finds_no_contradiction(db_url: str) -> None:
    began = time.monotonic()
    per_group, per_operation = run_contract(db_url)
    took = time.monotonic() - began
    groups = sorted({key.split(" ")[0] for key in per_group})
    for group in groups:
        assert per_group[f"{group} positive"] > 0, (group, per_group)
    print(
        f"\nschemathesis on {db_url.split(':')[0]}: {sum(per_operation.values())} cases, "
        f"{len(per_operation)} operations, {took:.0f} s"
    )
    for key, count in sorted(per_group.items()):
        print(f"  {key:<24} {count}")


def test_docs_work_with_no_network(sqlite_url: str) -> None:
    """`/docs` loads only what the service itself serves (Swagger UI from the package)."""
    with running_api(sqlite_url) as (client, _):
        page = client.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?["']([^"']+)["']""", page.text)
        found = [a or b for a, b in urls]
        assert len(found) >= 4, page.text  # stylesheet, icon, script, the OpenAPI document
        for url in found:
            assert url.startswith("/") and not url.startswith("//"), url
            answer = client.get(url)
            assert answer.status_code == 200, url
            assert len(answer.content) > 100, url
        assert "http://" not in page.text and "https://" not in page.text
        bundle = client.get("/docs/assets/swagger-ui-bundle.js")
        assert "javascript" in bundle.headers["content-type"]
        document = client.get("/openapi.json").json()
        assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
        assert list(metrics) == ["text/plain"]


def test_every_operation_declares_its_errors_as_problems(sqlite_url: str) -> None:
    with running_api(sqlite_url) as (client, _):
        document = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            codes = set(responses)
            assert "414" in codes, (method, path)
            if path.startswith("/v1/"):
                assert {"401", "503"} <= codes and operation["security"], (method, path)
            if "requestBody" in operation:
                assert {"413", "415", "422"} <= codes, (method, path)
                assert isinstance(operation["x-body-limit"], int)
            if "{" in path:
                assert "404" in codes, (method, path)
            for code, response in responses.items():
                if code[0] in "45":
                    assert list(response["content"]) == ["application/problem+json"], (path, code)
                elif code[0] == "2":
                    assert response["content"], (method, path, code)
    tickets = document["paths"]["/v1/tickets"]["post"]["responses"]
    assert {"200", "201", "402", "409"} <= set(tickets)
    assert "Retry-After" in tickets["503"]["headers"]
