"""The `sla-engine` command line: one typer app, one module per command group.

`main()` is the single error boundary: an `SlaEngineError` raised by any command (bad
argument, unknown calendar, bad config file ...) and any click usage error become one
`error: ...` line on stderr and exit code 2, never a traceback. Command modules just raise.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

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


def _register() -> None:
    # Each command group module adds its commands to `app` on import.
    from sla_engine.cli import (
        calendar_cmds,  # noqa: F401
        config_cmds,  # noqa: F401
        credit_cmds,  # noqa: F401
        escalation_cmds,  # noqa: F401
        ingest_cmds,  # noqa: F401
        service_cmds,  # noqa: F401
    )


def _click_exception_modules() -> list[ModuleType]:
    """Where click's exception classes live: recent typer vendors click as `typer._click`."""
    import importlib

    modules = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            continue
    return modules


_CLICK = _click_exception_modules()
_USAGE_ERRORS: tuple[type[Exception], ...] = tuple(m.UsageError for m in _CLICK)
_CLICK_ERRORS: tuple[type[Exception], ...] = tuple(m.ClickException for m in _CLICK)
_ABORTS: tuple[type[BaseException], ...] = (typer.Abort,) + tuple(
    m.Abort for m in _CLICK if hasattr(m, "Abort")
)


def error_line(exc: SlaEngineError) -> str:
    """One line for an engine error, naming the field and the value when the message does not."""
    message = _one_line(exc.message)
    if exc.field and exc.field not in message:
        message = f"{exc.field}: {message}"
    value_text = str(exc.value)
    if exc.value is not None and (not value_text or value_text not in message):
        message = f"{message} (got {exc.value!r})"
    return f"error: {message}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _usage_error_line(exc: Any) -> str:
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else PROG_NAME
    return f"error: {_one_line(exc.format_message())} (see '{command} --help')"


def _fail(line: str, code: int = USAGE_EXIT_CODE) -> int:
    print(line, file=sys.stderr, flush=True)
    return code


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on `argv` (default: `sys.argv[1:]`) and return the process exit code.

    A command sets a non-zero exit code by raising `typer.Exit(code)`.
    """
    _register()
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name=PROG_NAME, standalone_mode=False)
    except SlaEngineError as exc:
        return _fail(error_line(exc))
    except OverflowError as exc:
        return _fail(f"error: date or time out of range ({exc})")
    except _USAGE_ERRORS as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]
            return USAGE_EXIT_CODE
        return _fail(_usage_error_line(exc), getattr(exc, "exit_code", USAGE_EXIT_CODE))
    except _CLICK_ERRORS as exc:
        message = _one_line(exc.format_message())  # type: ignore[attr-defined]
        return _fail(f"error: {message}", getattr(exc, "exit_code", 1))
    except _ABORTS:
        return _fail("error: aborted", 1)
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def main() -> None:
    """Console-script entry point (`sla-engine`)."""
    sys.exit(run())
