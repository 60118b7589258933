"""The escalation part wired into the service: a ticket write fires on time through the
in-process loop, and the HTTP API and the CLI list and replay deliveries."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import standardwebhooks

from sla_engine.cli import run as cli
from sla_engine.composition import build_services
from sla_engine.config import load_config
from sla_engine.tickets import TicketCreate
from tests.support.server import serve_app

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def write_config(tmp: Path, base: str, url: str) -> Path:
    path = tmp / "sla.toml"
    path.write_text(f"""
[database]
url = "{url}"

[[destinations]]
name = "oncall"
type = "webhook"
url = "{base}/hook"
secret = "{SECRET}"

[policies.fast.first_response]
calendar = "24x7"
breach = "2s"
escalate = [{{at = "100%", to = "oncall"}}]
""")
    return path


@pytest.fixture
def services(sqlite_url: str, receiver, tmp_path: Path) -> Iterator[Any]:
    _rec, base = receiver
    config = load_config(write_config(tmp_path, base, sqlite_url), env={})
    svc = build_services(config)
    svc.start_background()
    yield svc
    svc.close()


def test_a_ticket_write_escalates_within_one_second_of_breach(services, receiver) -> None:
    rec, _base = receiver
    created = datetime.now(UTC)
    services.tickets.create_ticket(TicketCreate("T-9", "fast", created))
    breach = created + timedelta(seconds=2)
    [hit] = rec.wait_for(1, timeout=10)
    body = standardwebhooks.Webhook(SECRET).verify(hit.body, hit.headers)
    assert (body["ticket_id"], body["threshold"], body["policy"]) == ("T-9", "100%", "fast")
    assert 0 <= hit.at - breach.timestamp() <= 1.0


def test_http_api_lists_and_replays_dead_letters(services, receiver) -> None:
    rec, _base = receiver
    rec.script["/hook"] = [400]
    from sla_engine.api.app import create_app

    services.tickets.create_ticket(TicketCreate("T-1", "fast", datetime.now(UTC)))
    with serve_app(create_app(services, api_token="")) as api:
        deadline = time.monotonic() + 10
        dead: list[dict[str, Any]] = []
        while not dead and time.monotonic() < deadline:
            dead = httpx.get(f"{api}/v1/escalations", params={"status": "dead"}).json()[
                "escalations"
            ]
            time.sleep(0.1)
        [row] = dead
        assert (row["ticket"], row["threshold"], row["attempts"], row["last_status"]) == (
            "T-1",
            "100%",
            1,
            400,
        )
        assert httpx.get(f"{api}/v1/escalations", params={"ticket": "nope"}).json() == {
            "escalations": []
        }
        bad = httpx.get(f"{api}/v1/escalations", params={"status": "lost"})
        assert bad.status_code == 422 and "status" in bad.text
        missing = httpx.post(f"{api}/v1/escalations/msg_nope/replay")
        assert missing.status_code == 404
        replayed = httpx.post(f"{api}/v1/escalations/{row['id']}/replay")
        assert replayed.status_code == 200 and replayed.json()["id"] == row["id"]
        hits = rec.wait_for(2, timeout=10)
        assert [h.headers["webhook-id"] for h in hits] == [row["id"], row["id"]]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            listed = httpx.get(f"{api}/v1/escalations", params={"ticket": "T-1"}).json()
            if listed["escalations"][0]["status"] == "sent":
                break
            time.sleep(0.1)
        assert listed["escalations"][0]["status"] == "sent"
        assert httpx.post(f"{api}/v1/escalations/{row['id']}/replay").status_code == 200
        again = httpx.post(f"{api}/v1/escalations/{row['id']}/replay")
        assert again.status_code in (200, 409)
        metrics = httpx.get(f"{api}/metrics").text
        assert "sla_engine_escalations_sent_total" in metrics
        assert "sla_engine_escalation_lag_seconds_bucket" in metrics


def test_cli_lists_and_replays(sqlite_url: str, receiver, tmp_path: Path, capsys) -> None:
    rec, base = receiver
    rec.script["/hook"] = [404]
    path = write_config(tmp_path, base, sqlite_url)
    svc = build_services(load_config(path, env={}))
    now = datetime.now(UTC)
    svc.tickets.create_ticket(TicketCreate("T-1", "fast", now - timedelta(seconds=5)))
    svc.escalations.engine.tick(now)
    svc.close()
    assert cli(["escalations", "list", "--config", str(path), "--status", "dead"]) == 0
    out = capsys.readouterr().out
    assert "dead" in out and "T-1" in out and "HTTP 404" in out
    delivery = out.split()[0]
    assert cli(["escalations", "replay", delivery, "--config", str(path)]) == 0
    assert "queued again" in capsys.readouterr().out
    assert cli(["escalations", "replay", "msg_missing", "--config", str(path)]) == 2
    assert "msg_missing" in capsys.readouterr().err
    assert cli(["escalations", "list", "--config", str(path), "--status", "bogus"]) == 2
    assert "status" in capsys.readouterr().err
