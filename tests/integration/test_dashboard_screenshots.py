"""The dashboard with realistic data, in headless Chromium at a laptop's 1366x768.

Seeds a month of answered tickets (for the attainment charts), a live queue of standard,
emergency and gold tickets at every standing, and escalations delivered, retrying and dead;
then checks the page renders every panel without a script error and takes screenshots.
`SLA_ENGINE_UPDATE_SCREENSHOTS=1` writes them to docs/images/ (the README and
docs/DASHBOARD.md show them); otherwise they go to the test's temporary folder.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from sla_engine.api import create_app
from sla_engine.composition import build_services
from sla_engine.config import load_config
from tests.support.browser import chromium
from tests.support.escalation_receiver import Receiver
from tests.support.server import serve_app

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CONFIG = """
[database]
url = "{db}"

[[destinations]]
name = "oncall"
type = "webhook"
url = "{hooks}/oncall"
secret = "{secret}"

[[destinations]]
name = "team-lead"
type = "webhook"
url = "{hooks}/team-lead"
secret = "{secret}"

[[destinations]]
name = "pager"
type = "webhook"
url = "{hooks}/pager"
secret = "{secret}"

[policies.standard.first_response]
escalate = [{{at = "75%", to = "oncall"}}, {{at = "100%", to = "team-lead"}}]

[policies.standard.resolution]
calendar = "smartertools"
target = "16h"
breach = "24h"

[policies.emergency.first_response]
escalate = [{{at = "50%", to = "oncall"}}, {{at = "100%", to = "pager"}}]

[policies.gold.first_response]
calendar = "24x7"
target = "15m"
breach = "30m"
escalate = [{{at = "100%", to = "oncall"}}]
"""
LIVE = [  # id, policy, age; standard tickets run on SmarterTools hours, the others 24x7
    ("E-551", "emergency", timedelta(minutes=78)),
    ("G-88", "gold", timedelta(minutes=22)),
    ("E-552", "emergency", timedelta(minutes=47)),
    ("G-89", "gold", timedelta(minutes=4)),
    ("E-553", "emergency", timedelta(minutes=12)),
    ("T-10231", "standard", timedelta(hours=30)),
    ("T-10240", "standard", timedelta(hours=7)),
    ("T-10244", "standard", timedelta(hours=3, minutes=20)),
    ("T-10247", "standard", timedelta(hours=2, minutes=5)),
    ("T-10249", "standard", timedelta(minutes=70)),
    ("T-10251", "standard", timedelta(minutes=48)),
    ("T-10252", "standard", timedelta(minutes=22)),
    ("T-10253", "standard", timedelta(minutes=3)),
]


def seed_history(api: httpx.Client, now: datetime) -> None:
    """A month of tickets, each answered and solved, some late."""
    rnd = random.Random(13)
    delays = [5, 9, 14, 20, 26, 35, 42, 55, 70, 95, 140, 230, 300]
    number = 9000
    for day in range(30, 0, -1):
        for _ in range(rnd.randint(3, 9)):
            number += 1
            created = now - timedelta(days=day, hours=rnd.uniform(0, 8))
            policy = rnd.choice(["standard"] * 6 + ["emergency", "gold"])
            tid = f"T-{number}"
            _post(api, "/v1/tickets", {"id": tid, "policy": policy, "created_at": _iso(created)})
            replied = created + timedelta(minutes=rnd.choice(delays))
            solved = replied + timedelta(hours=rnd.uniform(0.5, 20))
            for kind, at in (("agent_reply", replied), ("solved", solved)):
                body = {"event_id": f"{tid}-{kind}", "type": kind, "occurred_at": _iso(at)}
                _post(api, f"/v1/tickets/{tid}/events", body)


def seed_calendar_change(api: httpx.Client, now: datetime) -> None:
    """The London office opens at 08:30 from next Monday: a second, upcoming version."""
    monday = (now + timedelta(days=7 - now.weekday())).date()
    days = ("mon", "tue", "wed", "thu", "fri")
    definition = {
        "name": "London office with lunch break",
        "timezone": "Europe/London",
        "hours": {day: ["08:30-12:30", "13:30-17:30"] for day in days},
        "holidays": {"country": "GB", "subdiv": "ENG"},
    }
    body = {"definition": definition, "effective_from": f"{monday}T08:30:00+00:00"}
    answer = api.put("/v1/calendars/example-lunch-break", json=body)
    assert answer.status_code == 201, answer.text


def seed_live(api: httpx.Client, now: datetime) -> None:
    seed_calendar_change(api, now)
    for tid, policy, age in LIVE:
        _post(api, "/v1/tickets", {"id": tid, "policy": policy, "created_at": _iso(now - age)})
    # Answered, now waiting on the customer: first response done, resolution paused.
    _post(
        api,
        "/v1/tickets",
        {"id": "T-10238", "policy": "standard", "created_at": _iso(now - timedelta(hours=5))},
    )
    for kind, minutes_ago in (("agent_reply", 260), ("pending", 60)):
        at = _iso(now - timedelta(minutes=minutes_ago))
        _post(
            api, "/v1/tickets/T-10238/events", {"event_id": kind, "type": kind, "occurred_at": at}
        )


def _iso(value: datetime) -> str:
    return value.isoformat()


def _post(api: httpx.Client, path: str, body: dict[str, Any]) -> None:
    answer = api.post(path, json=body)
    assert answer.status_code in (200, 201), answer.text


@contextmanager
def realistic_service(tmp_path: Path, receiver: tuple[Receiver, str]) -> Iterator[str]:
    rec, hooks = receiver
    rec.script["/team-lead"] = [400] * 50  # refuses: dead letters
    rec.script["/pager"] = [503] * 50  # down: retrying
    config = tmp_path / "sla.toml"
    db = f"sqlite:///{tmp_path / 'sla-engine.db'}"
    config.write_text(CONFIG.format(db=db, hooks=hooks, secret=SECRET))
    services = build_services(load_config(config, env={}))
    try:
        with serve_app(create_app(services, api_token="")) as base:
            now = datetime.now(UTC)
            with httpx.Client(base_url=base, timeout=30) as api:
                seed_history(api, now)  # before the scheduler runs: history pages nobody
                services.start_background()
                seed_live(api, now)
            yield f"{base}/"
    finally:
        services.close()


def test_dashboard_with_realistic_data(tmp_path: Path, receiver: tuple[Receiver, str]) -> None:
    out = IMAGES if os.environ.get("SLA_ENGINE_UPDATE_SCREENSHOTS") else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    with realistic_service(tmp_path, receiver) as url:
        for dark in (False, True):
            with chromium(dark=dark) as browser:
                browser.get(url)
                _wait_for_panels(browser)
                errors = [e for e in browser.get_log("browser") if e.get("source") == "javascript"]
                assert not errors, errors
                width = browser.execute_script("return document.documentElement.scrollWidth")
                assert width <= 1366, f"the page is {width}px wide on a 1366px screen"
                suffix = "-dark" if dark else ""
                browser.save_screenshot(str(out / f"dashboard{suffix}.png"))
                if dark:
                    continue
                browser.execute_script("document.getElementById('attainment').scrollIntoView()")
                time.sleep(0.3)
                browser.save_screenshot(str(out / "dashboard-reports.png"))
    for name in ("dashboard.png", "dashboard-dark.png", "dashboard-reports.png"):
        assert (out / name).stat().st_size > 20_000, name


def _wait_for_panels(browser: Any) -> None:
    deadline = time.monotonic() + 20
    script = """
      const q = document.querySelectorAll('#queue-body tr').length;
      const e = document.querySelectorAll('#esc-body tr[data-status="dead"]').length;
      const a = document.querySelectorAll('#att-body .chart, #att-body .weeks').length;
      const c = document.querySelectorAll('#cal-body .week').length;
      return q >= 10 && e >= 1 && a >= 1 && c >= 1;
    """
    while not browser.execute_script(script):
        assert time.monotonic() < deadline, "the dashboard did not fill every panel"
        time.sleep(0.2)
    time.sleep(1.5)  # let retries and countdowns move once more
