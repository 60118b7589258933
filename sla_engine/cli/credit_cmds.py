"""Command group `credits`: show an account's balances and ledger, grant credits.

They work on the service's database (`--config`, `--database-url`, or
`SLA_ENGINE_DATABASE_URL`), through the same CreditService as the HTTP API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sla_engine.cli.app import app
from sla_engine.cli.options import parse_instant
from sla_engine.core.times import utcnow
from sla_engine.credits.ledger import GRANT_KINDS
from sla_engine.json_types import JsonObject

if TYPE_CHECKING:
    from sla_engine.credits.credit_service import CreditService

credits_app = typer.Typer(
    help="Support-ticket credits: balances, the ledger, grants and purchases.",
    no_args_is_help=True,
)
app.add_typer(credits_app, name="credits")

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="service config file (TOML)", dir_okay=False)
]
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url", help="database URL (default: $SLA_ENGINE_DATABASE_URL, config, SQLite)"
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON instead of text")]


@contextmanager
def _credit_service(config_path: Path | None, database_url: str | None) -> Iterator[CreditService]:
    from sla_engine.composition import build_services
    from sla_engine.config import load_config

    services = build_services(
        load_config(config_path, database_url=database_url, stored_calendars=True)
    )
    try:
        yield services.credits
    finally:
        services.close()


@credits_app.command("show")
def show(
    account: Annotated[str, typer.Argument(help="account id")],
    at: Annotated[str | None, typer.Option("--at", help="ISO 8601 instant; default: now")] = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Credits usable at an instant, the subscription cover, and the lots left."""
    when = parse_instant(at, "--at") if at is not None else utcnow()
    with _credit_service(config, database_url) as credits:
        answer = credits.credits(account, when)
    typer.echo(json.dumps(answer, indent=2) if as_json else balance_text(answer))


@credits_app.command("ledger")
def ledger(
    account: Annotated[str, typer.Argument(help="account id")],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every ledger entry of the account, in the order recorded."""
    with _credit_service(config, database_url) as credits:
        answer = credits.ledger(account)
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    for entry in answer["entries"]:
        typer.echo(entry_text(entry))


@credits_app.command("grant")
def grant(
    account: Annotated[str, typer.Argument(help="account id")],
    kind: Annotated[str, typer.Option("--kind", help=f"one of: {', '.join(GRANT_KINDS)}")],
    quantity: Annotated[
        int | None, typer.Option("--quantity", help="tickets bought (ticket_purchase only)")
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="ISO 8601 purchase instant; default: now")
    ] = None,
    price: Annotated[
        str | None, typer.Option("--price", help="price per ticket (ticket_purchase only)")
    ] = None,
    package: Annotated[
        str | None, typer.Option("--package", help="package name (ticket_purchase only)")
    ] = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Grant credits (licence, renewal, reinstatement, bundle) or record a ticket purchase."""
    when = parse_instant(at, "--at") if at is not None else utcnow()
    with _credit_service(config, database_url) as credits:
        answer = credits.grant(
            account, kind, when, quantity=quantity, price_per_ticket=price, package=package
        )
    typer.echo(json.dumps(answer, indent=2) if as_json else entry_text(answer["entry"]))


def balance_text(answer: JsonObject) -> str:
    unlimited = "yes (hosted subscription)" if answer["unlimited_email"] else "no"
    lines = [
        f"account {answer['account']} at {answer['at']}",
        f"  email: {answer['email']}  emergency: {answer['emergency']}  "
        f"unlimited email: {unlimited}",
    ]
    lines.extend(
        f"  lot {lot['lot_id']}: {lot['remaining']} {lot['kind']} ({lot['source']}), "
        f"purchased {lot['purchased_at']}, expires {lot['expires_at']}"
        for lot in answer["lots"]
    )
    return "\n".join(lines)


def entry_text(entry: JsonObject) -> str:
    parts = [
        f"#{entry['id']}",
        entry["type"],
        f"{entry['quantity']:+d}",
        entry["kind"] or "-",
        f"at {entry['occurred_at']}",
    ]
    if entry["expires_at"]:
        parts.append(f"expires {entry['expires_at']}")
    parts.extend(
        f"{key}={entry[key]}"
        for key in ("source", "ticket_id", "lot_id", "price_per_ticket", "package", "note")
        if entry[key] is not None
    )
    return " ".join(parts)
