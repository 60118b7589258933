"""Command group: `sla-engine worker` and `sla-engine escalations list|replay`."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from sla_engine.cli.app import app
from sla_engine.errors import InputError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from sla_engine.config import ServiceConfig
    from sla_engine.escalation import EscalationLog

escalations_app = typer.Typer(help="List and replay escalation deliveries.", no_args_is_help=True)
app.add_typer(escalations_app, name="escalations")

ConfigOption = typer.Option(None, "--config", help="service config file (TOML)")
DatabaseOption = typer.Option(
    None,
    "--database-url",
    help="database URL (default: $SLA_ENGINE_DATABASE_URL, the "
    "config file's [database].url, then sqlite:///sla-engine.db)",
)


def _config(config: Path | None, database_url: str | None) -> ServiceConfig:
    from sla_engine.config import load_config

    return load_config(config, database_url=database_url, stored_calendars=True)


def _sessions(config: ServiceConfig, *, migrate: bool) -> tuple[Engine, sessionmaker[Session]]:
    from sla_engine.storage.db import make_engine, make_sessionmaker, upgrade

    if migrate:
        upgrade(config.database_url)
    engine = make_engine(config.database_url)
    return engine, make_sessionmaker(engine)


def _log(config: ServiceConfig) -> EscalationLog:
    from sla_engine.core.times import utcnow
    from sla_engine.escalation import EscalationLog

    _engine, sessions = _sessions(config, migrate=True)
    return EscalationLog(sessions, utcnow)


@app.command()
def worker(
    config: Path | None = ConfigOption,
    database_url: str | None = DatabaseOption,
    metrics_port: int | None = typer.Option(
        None,
        "--metrics-port",
        min=0,
        max=65535,
        help="serve Prometheus metrics (the escalation counters) at http://HOST:PORT/metrics",
    ),
    metrics_host: str = typer.Option(
        "127.0.0.1", "--metrics-host", help="address of the --metrics-port listener"
    ),
    log_level: str = typer.Option(
        "info", "--log-level", help="log level: critical, error, warning, info, debug"
    ),
) -> None:
    """Run only the escalation scheduler (fire due timers, deliver notifications) and the
    calendar jobs (calendar file changes, re-planning after a calendar change), for
    scale-out: any number of workers may share one database. Stops on SIGTERM or Ctrl-C."""
    import prometheus_client

    from sla_engine.cli.service_cmds import check_log_level
    from sla_engine.composition import build_services, tune_gc_for_service
    from sla_engine.logging_setup import configure_logging

    configure_logging(check_log_level(log_level))
    cfg = _config(config, database_url)
    metrics_server = None
    if metrics_port is not None:
        try:
            metrics_server, _ = prometheus_client.start_http_server(metrics_port, addr=metrics_host)
        except OSError as exc:
            raise InputError(
                f"--metrics-port: listening on {metrics_host}:{metrics_port} failed: "
                f"{exc.strerror}",
                field="--metrics-port",
                value=metrics_port,
            ) from None
        typer.echo(f"metrics on http://{metrics_host}:{metrics_server.server_port}/metrics")
    # the worker's parts as the service builds them: stored calendars (so timers are planned
    # with the versions in force), escalations, the calendar jobs
    services = build_services(cfg)
    tune_gc_for_service()
    scheduler = services.escalations.engine
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    stops = [scheduler.start()]
    if services.calendar_store is not None:
        stops.append(services.calendar_store.start())
    typer.echo(f"escalation worker {scheduler.worker} running", err=True)
    try:
        while not stopped.wait(1.0):
            pass
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
        for stop in reversed(stops):
            stop()
        services.close()


@escalations_app.command("list")
def list_cmd(
    ticket: str | None = typer.Option(None, "--ticket", help="only this ticket"),
    status: str | None = typer.Option(
        None, "--status", help="queued, sending, sent, dead or cancelled"
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    config: Path | None = ConfigOption,
    database_url: str | None = DatabaseOption,
) -> None:
    """List escalation deliveries (dead letters: --status dead)."""
    rows = _log(_config(config, database_url)).list(ticket=ticket, status=status)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no escalations match", err=True)
    for row in rows:
        typer.echo(
            f"{row['id']}  {row['status']:<9} {row['ticket']} {row['metric']} "
            f"#{row['cycle']} {row['threshold']:<9} -> {row['destination']} "
            f"attempts={row['attempts']} due={row['due_at']}"
            + (f" error={row['last_error']}" if row["last_error"] else "")
        )


@escalations_app.command("replay")
def replay_cmd(
    escalation_id: str = typer.Argument(..., help="the delivery id (its webhook-id)"),
    config: Path | None = ConfigOption,
    database_url: str | None = DatabaseOption,
) -> None:
    """Queue a dead (or sent) delivery again, with the same webhook-id."""
    row = _log(_config(config, database_url)).replay(escalation_id)
    typer.echo(
        f"{row['id']} queued again (ticket {row['ticket']}, {row['threshold']} -> "
        f"{row['destination']})"
    )
