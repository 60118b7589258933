"""Shared set-up for the credit tests: a real service on a real database behind uvicorn."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import httpx

from sla_engine.composition import Services, build_services
from sla_engine.config import ServiceConfig
from tests.support.server import serve_app

PRODUCTS = MappingProxyType({"SmarterMail": 12, "SmarterTrack": 100})


def make_services(db_url: str) -> Services:
    return build_services(ServiceConfig(database_url=db_url, products=PRODUCTS))


_namespaces = itertools.count(1)


@dataclass
class Api:
    """A client of a running service, with the credit requests as short methods.

    Tests share one server per database; each test's account and ticket ids are prefixed with
    its own namespace (`ns`), and answers are shown to the test with the prefix removed.
    """

    client: httpx.Client
    services: Services
    ns: str = ""

    def fresh_namespace(self) -> None:
        self.ns = f"n{next(_namespaces)}-"

    def id(self, name: str) -> str:
        return self.ns + name

    def strip(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith(self.ns):
            return value[len(self.ns) :]
        if isinstance(value, list):
            return [self.strip(v) for v in value]
        if isinstance(value, dict):
            return {k: self.strip(v) for k, v in value.items()}
        return value

    def grant(self, account: str, kind: str, at: str, **fields: Any) -> httpx.Response:
        body = {"kind": kind, "occurred_at": at, **fields}
        return self.client.post(f"/v1/accounts/{self.id(account)}/grants", json=body)

    def subscribe(self, account: str, start: str, end: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"kind": "hosted", "start": start}
        if end is not None:
            body["end"] = end
        return self.client.post(f"/v1/accounts/{self.id(account)}/subscriptions", json=body)

    def credits(self, account: str, at: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/accounts/{self.id(account)}/credits", params={"at": at})
        assert response.status_code == 200, response.text
        return dict(self.strip(response.json()))

    def ledger(self, account: str) -> list[dict[str, Any]]:
        response = self.client.get(f"/v1/accounts/{self.id(account)}/ledger")
        assert response.status_code == 200, response.text
        return list(self.strip(response.json()["entries"]))

    def ticket(
        self, ticket_id: str, created_at: str, account: str | None = None, **fields: Any
    ) -> httpx.Response:
        body: dict[str, Any] = {
            "id": self.id(ticket_id),
            "policy": fields.pop("policy", "standard"),
            "created_at": created_at,
            **fields,
        }
        if account is not None:
            body["account"] = self.id(account)
        return self.client.post("/v1/tickets", json=body)

    def get_ticket(self, ticket_id: str) -> httpx.Response:
        return self.client.get(f"/v1/tickets/{self.id(ticket_id)}")

    def ticket_json(self, ticket_id: str) -> dict[str, Any]:
        response = self.get_ticket(ticket_id)
        assert response.status_code == 200, response.text
        return dict(self.strip(response.json()))

    def rsaa(self, ticket_id: str, at: str | None = None) -> httpx.Response:
        params = {} if at is None else {"at": at}
        return self.client.get(f"/v1/tickets/{self.id(ticket_id)}/rsaa", params=params)

    def event(
        self, ticket_id: str, event_id: str, type_: str, at: str, **data: Any
    ) -> httpx.Response:
        if isinstance(data.get("new_ticket_id"), str):
            data["new_ticket_id"] = self.id(data["new_ticket_id"])
        body = {"event_id": event_id, "type": type_, "occurred_at": at, **data}
        return self.client.post(f"/v1/tickets/{self.id(ticket_id)}/events", json=body)


@contextmanager
def running_credits_api(db_url: str) -> Iterator[Api]:
    """A real server over fresh services on `db_url`, with the credit requests as methods."""
    from sla_engine.api.app import create_app

    services = make_services(db_url)
    try:
        with (
            serve_app(create_app(services)) as base,
            httpx.Client(base_url=base, timeout=60) as client,
        ):
            yield Api(client, services)
    finally:
        services.close()


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem+json body of an error answer with `status`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return dict(response.json())
