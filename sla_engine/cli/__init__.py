"""The `sla-engine` command line: one typer app (`cli/app.py`), one module per command group.

`main()` is the single error boundary: an `SlaEngineError` raised by any command (bad
argument, unknown calendar, bad config file ...) and any click usage error become one
`error: ...` line on stderr and exit code 2, never a traceback. Command modules just raise.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

import typer

from sla_engine.cli.app import PROG_NAME, USAGE_EXIT_CODE, error_line, one_line
from sla_engine.cli.app import app as root_app
from sla_engine.errors import SlaEngineError

__all__ = ["PROG_NAME", "USAGE_EXIT_CODE", "error_line", "main", "run"]


def _register() -> None:
    # Each command group module adds its commands to `cli.app.app` on import.
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
_ABORTS: tuple[type[BaseException], ...] = (
    typer.Abort,
    *(m.Abort for m in _CLICK if hasattr(m, "Abort")),
)


def _usage_error_line(exc: Exception) -> str:
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else PROG_NAME
    message = one_line(exc.format_message())  # type: ignore[attr-defined]
    return f"error: {message} (see '{command} --help')"


def _fail(line: str, code: int = USAGE_EXIT_CODE) -> int:
    print(line, file=sys.stderr, flush=True)
    return code


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on `argv` (default: `sys.argv[1:]`) and return the process exit code.

    A command sets a non-zero exit code by raising `typer.Exit(code)`.
    """
    _register()
    command = typer.main.get_command(root_app)
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
        message = one_line(exc.format_message())  # type: ignore[attr-defined]
        return _fail(f"error: {message}", getattr(exc, "exit_code", 1))
    except _ABORTS:
        return _fail("error: aborted", 1)
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def main() -> None:
    """Console-script entry point (`sla-engine`)."""
    sys.exit(run())
