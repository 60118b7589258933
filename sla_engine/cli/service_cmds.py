"""Command group: `serve`, `db upgrade|current`, `report attainment`.

`serve` applies the migrations, builds the services, starts the background loops
(escalations, housekeeping) and runs the HTTP API under uvicorn until SIGTERM / Ctrl-C.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from sla_engine.cli import app
from sla_engine.cli.options import parse_instant
from sla_engine.errors import InputError

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


def _config(config: Path | None, database_url: str | None) -> Any:
    from sla_engine.config import load_config

    return load_config(config, database_url=database_url)


def _graceful_server_class() -> Any:
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


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port", min=0, max=65535)] = 8000,
    database_url: DatabaseOption = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="uvicorn log level: debug, info, warning, error")
    ] = "warning",
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
    """Run the HTTP API and the escalation scheduler (in one process unless --workers)."""
    import uvicorn

    from sla_engine.api import create_app
    from sla_engine.composition import build_services
    from sla_engine.storage.db import masked

    levels = ("critical", "error", "warning", "info", "debug", "trace")
    if log_level not in levels:
        raise InputError(
            f"--log-level must be one of {', '.join(levels)}", field="--log-level", value=log_level
        )
    cfg = _config(config, database_url)
    shown = f"[{host}]" if ":" in host else host
    serving = f"sla-engine serving on http://{shown}:{port} (database {masked(cfg.database_url)})"
    if workers > 1:
        _serve_workers(cfg, config, host, port, log_level, workers, serving)
        return
    services = build_services(cfg)
    try:
        server = _graceful_server_class()(
            uvicorn.Config(create_app(services), host=host, port=port, log_level=log_level)
        )
        services.start_background()
        typer.echo(serving)
        server.run()
    finally:
        services.close()


def _serve_workers(
    cfg: Any, config: Path | None, host: str, port: int, log_level: str, workers: int, serving: str
) -> None:
    """uvicorn's process supervisor over `worker_app.create`; migrations run once, here."""
    import os

    import uvicorn

    from sla_engine.cli import worker_app
    from sla_engine.config import DATABASE_URL_ENV
    from sla_engine.storage.db import upgrade

    upgrade(cfg.database_url)
    os.environ[DATABASE_URL_ENV] = cfg.database_url
    if config is not None:
        os.environ[worker_app.CONFIG_ENV] = str(config.resolve())
    typer.echo(f"{serving}, {workers} worker processes")
    uvicorn.run(
        "sla_engine.cli.worker_app:create",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
    )


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
    plot: Annotated[
        Path | None, typer.Option("--plot", help="also draw a histogram into this PNG file")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """First-response attainment of the tickets created in [--from, --to)."""
    from sla_engine.report import plot_attainment
    from sla_engine.report_store import REPORT_METRIC, ReportWindow, load_report
    from sla_engine.storage.db import make_engine, make_sessionmaker, upgrade

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
    now = datetime.now(UTC)
    window = ReportWindow.resolve(
        None if start is None else parse_instant(start, "--from"),
        None if end is None else parse_instant(end, "--to"),
        policy,
        now,
        start_field="--from",
        end_field="--to",
    )
    upgrade(cfg.database_url)
    engine = make_engine(cfg.database_url)
    try:
        rows, summary = load_report(make_sessionmaker(engine), window, now)
    finally:
        engine.dispose()
    metric = cfg.policies.get(policy or "standard")
    limits = metric.metrics.get(REPORT_METRIC) if metric is not None else None
    if plot is not None:
        target = None if limits is None or limits.target is None else limits.target
        try:
            plot_attainment(
                rows,
                plot,
                now=now,
                target_s=None if target is None else target.total_seconds(),
                breach_s=None if limits is None else limits.breach.total_seconds(),
                title=f"Business time to first response ({policy or 'all policies'})",
            )
        except OSError as exc:
            raise InputError(
                f"--plot: cannot write {plot} ({exc})", field="--plot", value=str(plot)
            ) from None
    if as_json:
        typer.echo(json.dumps({**window.to_json(), **summary.to_json()}, indent=2))
    else:
        typer.echo(_report_text(window, summary))
    if plot is not None:
        typer.echo(f"plot written to {plot}")


def _share_text(share: Any) -> str:
    if share.share is None:
        return "n/a (nothing decided yet)"
    return f"{share.share:.1%} ({share.achieved} of {share.decided})"


def _seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    minutes = seconds / 60
    return f"{seconds:.0f} s ({minutes:.1f} business min)"


def _report_text(window: Any, summary: Any) -> str:
    lines = [
        f"first-response attainment, tickets created {window.start.isoformat()} .. "
        f"{window.end.isoformat()} ({window.policy or 'all policies'})",
        f"  tickets             {summary.count} (answered {summary.answered}, open "
        f"{summary.open}, cancelled {summary.cancelled})",
        f"  within target       {_share_text(summary.within_target)}",
        f"  within breach       {_share_text(summary.within_breach)}",
        f"  median response     {_seconds_text(summary.median_response_s)}",
        f"  p90 response        {_seconds_text(summary.p90_response_s)}",
        f"  breaches            {summary.breaches}",
    ]
    for week, count in summary.breaches_per_week.items():
        lines.append(f"    {week}          {count}")
    return "\n".join(lines)
