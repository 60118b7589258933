"""`sla-engine credits show|grant|ledger` on a real database (in-process and as a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sla_engine.cli import run

CLI = str(Path(sys.executable).parent / "sla-engine")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_grant_then_show_and_ledger(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    db = ("--database-url", sqlite_url)
    code, out, _ = cli(
        capsys,
        "credits",
        "grant",
        "acme",
        "--kind",
        "license_purchase",
        "--at",
        "2024-02-29T10:00:00-07:00",
        *db,
    )
    assert code == 0 and "grant +2 email" in out and "expires 2025-02-28T17:00:00+00:00" in out
    code, out, _ = cli(
        capsys,
        "credits",
        "grant",
        "acme",
        "--kind",
        "ticket_purchase",
        "--quantity",
        "3",
        "--price",
        "12.50",
        "--package",
        "3-pack",
        "--at",
        "2024-06-01T00:00:00Z",
        *db,
    )
    assert code == 0 and "price_per_ticket=12.50" in out

    code, out, _ = cli(
        capsys, "credits", "show", "acme", "--at", "2024-07-01T00:00:00Z", "--json", *db
    )
    assert code == 0
    shown = json.loads(out)
    assert (shown["email"], shown["emergency"], shown["unlimited_email"]) == (5, 0, False)
    assert [lot["remaining"] for lot in shown["lots"]] == [2, 3]

    code, out, _ = cli(capsys, "credits", "show", "acme", "--at", "2025-03-01T00:00:00Z", *db)
    assert code == 0 and "email: 3" in out and "lot 2: 3 email (ticket_purchase)" in out

    code, out, _ = cli(capsys, "credits", "ledger", "acme", *db)
    assert code == 0 and len(out.strip().splitlines()) == 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--kind", "gift"), "kind"),
        (("--kind", "renewal", "--quantity", "4"), "quantity"),
        (("--kind", "renewal", "--at", "2026-01-01T00:00"), "--at"),
        (("--kind", "ticket_purchase", "--price", "cheap"), "price_per_ticket"),
    ],
)
def test_bad_grants_are_one_error_line_and_exit_2(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], needle: str
) -> None:
    code, out, err = cli(capsys, "credits", "grant", "acme", *args, "--database-url", sqlite_url)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and needle in err and len(err.strip().splitlines()) == 1
    code, out, _ = cli(capsys, "credits", "ledger", "acme", "--database-url", sqlite_url)
    assert code == 0 and out == ""


def test_the_installed_command_shows_credits(sqlite_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLA_ENGINE_")}
    env["SLA_ENGINE_DATABASE_URL"] = sqlite_url
    granted = subprocess.run(
        [
            CLI,
            "credits",
            "grant",
            "ACC-1",
            "--kind",
            "bundle_purchase",
            "--at",
            "2026-01-05T00:00:00Z",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert granted.returncode == 0, granted.stderr
    shown = subprocess.run(
        [CLI, "credits", "show", "ACC-1", "--at", "2026-02-01T00:00:00Z", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["email"] == 2
