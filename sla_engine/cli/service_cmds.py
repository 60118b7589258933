"""Command group: `serve`, `db upgrade|current`, `report attainment`.

`serve` applies the migrations, builds the services, starts the background loops
(escalations, housekeeping) and runs the HTTP API under uvicorn until SIGTERM / Ctrl-C.
"""

from __future__ import annotations

import errno
import json
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sla_engine.cli.app import app
from sla_engine.cli.options import parse_instant
from sla_engine.core.times import utcnow
from sla_engine.errors import InputError

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

    from sla_engine.config import ServiceConfig
    from sla_engine.report import Attainment, MetricRow, Share
    from sla_engine.report_store import ReportWindow

db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
report_app = typer.Typer(help="SLA reports.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(report_app, name="report")

ConfigOption = Annotated[Path | None, typer.Option("--config", help="service config file (TOML)")]
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="database URL (default: $SLA_ENGINE_DATABASE_URL, the config file's "
        "[database].url, then sqlite:///sla-engine.db)",
    ),
]


def _config(config: Path | None, database_url: str | None) -> ServiceConfig:
    from sla_engine.config import load_config

    return load_config(config, database_url=database_url, stored_calendars=True)


def _graceful_server_class() -> type[uvicorn.Server]:
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """uvicorn's server, but a SIGTERM / Ctrl-C ends `run()` normally instead of re-raising
        the signal, so the background loops are stopped and the process exits 0."""

        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            handled = (signal.SIGINT, signal.SIGTERM)
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return GracefulServer


UVICORN_BACKLOG = 2048
WORKER_HEALTHCHECK_S = 30
LogLevelOption = Annotated[
    str,
    typer.Option("--log-level", help="log level: critical, error, warning, info, debug"),
]


def check_log_level(log_level: str) -> str:
    from sla_engine.logging_setup import LEVELS

    if log_level.lower() not in LEVELS:
        raise InputError(
            f"--log-level must be one of {', '.join(LEVELS)}", field="--log-level", value=log_level
        )
    return log_level.lower()


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, before anything else starts, so a port in use is one
    error line (and "serving on" is printed only once connections are accepted)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(UVICORN_BACKLOG)
    except OSError as exc:
        sock.close()
        shown = f"[{host}]" if ":" in host else host
        why = "is already in use" if exc.errno == errno.EADDRINUSE else f"failed: {exc.strerror}"
        raise InputError(
            f"--port: listening on {shown}:{port} {why}", field="--port", value=port
        ) from None
    sock.set_inheritable(True)
    return sock


def _uvicorn_config(
    app: FastAPI | str, sock: socket.socket, log_level: str, **extra: Any
) -> uvicorn.Config:
    """uvicorn's config: our logging (not uvicorn's), problem+json for unparsable requests."""
    import uvicorn

    from sla_engine.api.protocol import ProblemHttpToolsProtocol

    host, port = sock.getsockname()[:2]
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=None,
        access_log=log_level == "debug",
        http=ProblemHttpToolsProtocol,
        backlog=UVICORN_BACKLOG,
        **extra,
    )


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port", min=0, max=65535)] = 8000,
    database_url: DatabaseOption = None,
    log_level: LogLevelOption = "info",
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="server processes (each with its own background loops); more pay off on "
            "PostgreSQL, SQLite writers take turns",
            min=1,
            max=64,
        ),
    ] = 1,
) -> None:
    """Run the HTTP API and the escalation scheduler (in one process unless --workers).

    Logs go to stderr (`SLA_ENGINE_LOG_FORMAT=json` for JSON lines); `--log-level debug` adds
    one access line per request."""
    from sla_engine.api import create_app
    from sla_engine.composition import build_services, tune_gc_for_service
    from sla_engine.logging_setup import configure_logging
    from sla_engine.storage.db import masked

    log_level = check_log_level(log_level)
    configure_logging(log_level, access_log=log_level == "debug")  # or a bad log format's error
    cfg = _config(config, database_url)
    sock = listen(host, port)
    try:
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        serving = (
            f"sla-engine serving on http://{shown}:{bound} (database {masked(cfg.database_url)})"
        )
        if workers > 1:
            _serve_workers(cfg, config, sock, log_level, workers, serving)
            return
        services = build_services(cfg)
        try:
            server = _graceful_server_class()(
                _uvicorn_config(create_app(services), sock, log_level)
            )
            tune_gc_for_service()
            services.start_background()
            typer.echo(serving)
            server.run(sockets=[sock])
        finally:
            services.close()
    finally:
        sock.close()


def _serve_workers(
    cfg: ServiceConfig,
    config: Path | None,
    sock: socket.socket,
    log_level: str,
    workers: int,
    serving: str,
) -> None:
    """uvicorn's process supervisor over `worker_app.create` on our socket; migrations run
    once, here; the processes' Prometheus counters are summed (`metrics_dir`)."""
    import inspect
    import os

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from sla_engine.cli import worker_app
    from sla_engine.config import DATABASE_URL_ENV
    from sla_engine.metrics_dir import multiprocess_metrics
    from sla_engine.storage.db import upgrade

    upgrade(cfg.database_url)
    os.environ[DATABASE_URL_ENV] = cfg.database_url
    os.environ[worker_app.LOG_LEVEL_ENV] = log_level
    if config is not None:
        os.environ[worker_app.CONFIG_ENV] = str(config.resolve())
    extra: dict[str, Any] = {"factory": True, "workers": workers}
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.Config).parameters:
        # A worker builds its services before it answers the supervisor's ping: on a busy
        # machine that outlasts uvicorn's 5 s, and the supervisor kills and restarts it.
        extra["timeout_worker_healthcheck"] = WORKER_HEALTHCHECK_S
    with multiprocess_metrics():
        uvicorn_config = _uvicorn_config(
            "sla_engine.cli.worker_app:create", sock, log_level, **extra
        )
        supervisor_args: dict[str, Any] = {"sockets": [sock]}
        if "target" in inspect.signature(Multiprocess).parameters:  # older uvicorn
            supervisor_args["target"] = uvicorn.Server(uvicorn_config).run
        typer.echo(f"{serving}, {workers} worker processes")
        Multiprocess(uvicorn_config, **supervisor_args).run()


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Apply the schema migrations up to the newest (idempotent)."""
    from sla_engine.storage.db import current_revision, masked, upgrade

    cfg = _config(config, database_url)
    upgrade(cfg.database_url)
    revision = current_revision(cfg.database_url)
    typer.echo(f"{masked(cfg.database_url)}: at revision {revision}")


@db_app.command("current")
def db_current(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Print the schema revision the database is at ('none' when never migrated)."""
    from sla_engine.storage.db import current_revision, masked

    cfg = _config(config, database_url)
    typer.echo(f"{masked(cfg.database_url)}: at revision {current_revision(cfg.database_url)}")


@report_app.command("attainment")
def report_attainment(
    start: Annotated[
        str | None, typer.Option("--from", help="ISO 8601 with offset; default: --to - 30 days")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="ISO 8601 with offset; default: now")
    ] = None,
    policy: Annotated[str | None, typer.Option("--policy", help="only this policy")] = None,
    metric: Annotated[
        str,
        typer.Option("--metric", help="first_response, next_response or resolution"),
    ] = "first_response",
    plot: Annotated[
        Path | None, typer.Option("--plot", help="also draw a histogram into this PNG file")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="print one CSV row per ticket metric instead")
    ] = False,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Attainment of one SLA metric (default first response) of the tickets created in
    [--from, --to)."""
    from sla_engine.report import policy_limits, to_csv
    from sla_engine.report_store import ReportWindow, load_report
    from sla_engine.storage.db import make_engine, make_sessionmaker, upgrade
    from sla_engine.tickets import RecentCalendars

    cfg = _config(config, database_url)
    if policy is not None and policy not in cfg.policies:
        known = ", ".join(sorted(cfg.policies))
        raise InputError(
            f"--policy {policy!r} is not a configured policy (known: {known})",
            field="--policy",
            value=policy,
        )
    if plot is not None and plot.suffix.lower() != ".png":
        raise InputError("--plot must name a .png file", field="--plot", value=str(plot))
    if as_csv and as_json:
        raise InputError("--csv and --json: choose one", field="--csv", value="--json")
    now = utcnow()
    window = ReportWindow.resolve(
        None if start is None else parse_instant(start, "--from"),
        None if end is None else parse_instant(end, "--to"),
        policy,
        now,
        metric=metric,
        start_field="--from",
        end_field="--to",
        metric_field="--metric",
    )
    upgrade(cfg.database_url)
    engine = make_engine(cfg.database_url)
    try:
        rows, summary = load_report(make_sessionmaker(engine), window, now, RecentCalendars())
    finally:
        engine.dispose()
    if plot is not None:
        _plot(
            rows,
            plot,
            now,
            window,
            policy_limits(cfg.policies, metric, [policy] if policy else {r.policy for r in rows}),
        )
    if as_csv:
        typer.echo(to_csv(rows, now), nl=False)
    elif as_json:
        typer.echo(json.dumps({**window.to_json(), **summary.to_json()}, indent=2))
    else:
        typer.echo(_report_text(window, summary))
    if plot is not None:
        typer.echo(f"plot written to {plot}", err=as_csv)


def _plot(
    rows: list[MetricRow],
    plot: Path,
    now: datetime,
    window: ReportWindow,
    limits: tuple[float | None, float | None],
) -> None:
    from sla_engine.report_plot import STOP_NAMES, plot_attainment

    target_s, breach_s = limits
    try:
        plot_attainment(
            rows,
            plot,
            now=now,
            target_s=target_s,
            breach_s=breach_s,
            metric=window.metric,
            title=f"Business time to {STOP_NAMES[window.metric]} "
            f"({window.policy or 'all policies'})",
        )
    except OSError as exc:
        raise InputError(
            f"--plot: cannot write {plot} ({exc})", field="--plot", value=str(plot)
        ) from None


def _share_text(share: Share) -> str:
    if share.share is None:
        return "n/a (nothing decided yet)"
    return f"{share.share:.1%} ({share.achieved} of {share.decided})"


def _seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    minutes = seconds / 60
    return f"{seconds:.0f} s ({minutes:.1f} business min)"


def _report_text(window: ReportWindow, summary: Attainment) -> str:
    verb = "solved" if window.metric == "resolution" else "answered"
    lines = [
        f"{window.metric} attainment, tickets created {window.start.isoformat()} .. "
        f"{window.end.isoformat()} ({window.policy or 'all policies'})",
        f"  tickets             {summary.count} ({verb} {summary.answered}, open "
        f"{summary.open}, cancelled {summary.cancelled})",
        f"  within target       {_share_text(summary.within_target)}",
        f"  within breach       {_share_text(summary.within_breach)}",
        f"  median time to stop {_seconds_text(summary.median_response_s)}",
        f"  p90 time to stop    {_seconds_text(summary.p90_response_s)}",
        f"  breaches            {summary.breaches}",
    ]
    for week, count in summary.breaches_per_week.items():
        lines.append(f"    {week}          {count}")
    return "\n".join(lines)
