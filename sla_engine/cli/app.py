"""The typer app every command group registers on, and the one-line form of an engine error.

A module of its own so the command modules import it without importing `sla_engine.cli`,
which registers them (`sla_engine/cli/__init__.py`: `run()` and `main()`).
"""

from __future__ import annotations

import typer

from sla_engine.errors import SlaEngineError

PROG_NAME = "sla-engine"
USAGE_EXIT_CODE = 2

app = typer.Typer(
    help="SLA and business-hours engine: deadlines, ticket SLA clocks, escalations, credits.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"{PROG_NAME} {version('sla_engine')}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False, "--version", help="print the version and exit", callback=_version, is_eager=True
    ),
) -> None:
    """SLA and business-hours engine: deadlines, ticket SLA clocks, escalations, credits."""


def error_line(exc: SlaEngineError) -> str:
    """One line for an engine error, naming the field and the value when the message does not."""
    message = one_line(exc.message)
    if exc.field and exc.field not in message:
        message = f"{exc.field}: {message}"
    value_text = str(exc.value)
    if exc.value is not None and (not value_text or value_text not in message):
        message = f"{message} (got {exc.value!r})"
    return f"error: {message}"


def one_line(text: str) -> str:
    return " ".join(text.split())
