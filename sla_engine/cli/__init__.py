"""The `sla-engine` command line: one typer app, one module per command group."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="SLA and business-hours engine: deadlines, ticket SLA clocks, escalations, credits.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    # Each command group module adds its commands to `app` on import.
    from sla_engine.cli import calendar_cmds  # noqa: F401
    from sla_engine.cli import service_cmds  # noqa: F401
    from sla_engine.cli import escalation_cmds  # noqa: F401
    from sla_engine.cli import credit_cmds  # noqa: F401


def main() -> None:
    _register()
    app()
