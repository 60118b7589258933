"""`sla-engine config check [FILE]`: validate a service config file without starting anything."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sla_engine.cli.app import app

config_app = typer.Typer(help="Service config files.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("check")
def config_check(
    file: Annotated[
        Path | None,
        typer.Argument(help="config file (TOML); default: the built-in defaults alone"),
    ] = None,
) -> None:
    """Load FILE as `serve --config FILE` would: every policy, calendar and destination checked.

    Prints a summary and exits 0, or one `error:` line naming the key and value and exits 2.
    """
    from sla_engine.config import load_config

    cfg = load_config(file, stored_calendars=True)
    where = str(file) if file is not None else "built-in defaults"
    policies = ", ".join(sorted(cfg.policies))
    destinations = ", ".join(sorted(cfg.destinations)) or "none"
    print(f"ok: {where}")
    print(f"  policies: {policies}")
    print(f"  destinations: {destinations}")
    print(f"  products: {', '.join(f'{k} {v}' for k, v in sorted(cfg.products.items())) or 'none'}")
    for name, key in cfg.stored_calendars.items():
        print(
            f"note: {key} = {name!r} is no calendar file: it must be stored in the service's "
            "database (`sla-engine calendars put`), or the service refuses to start"
        )
