"""The dashboard at `/` in a real headless Chromium (Selenium, the system's chromium-driver).

A real server (uvicorn on 127.0.0.1) runs the service with its escalation loop; the tests
create tickets and events over HTTP and watch the page: the queue's order, its live updates,
a countdown ticking (and a paused one standing still), a breach turning the row red, a dead
delivery replayed from its button, the policy filter, escaping, and the token prompt.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from sla_engine.api import create_app
from sla_engine.api.problems import FieldError, Problem
from sla_engine.composition import build_services
from sla_engine.config import load_config
from tests.support.browser import chromium
from tests.support.escalation_receiver import Receiver
from tests.support.server import serve_app

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
LIVE_S = 2.0  # a change shows without a reload within 2 s
CONFIG = """
[database]
url = "{db}"

[[destinations]]
name = "desk"
type = "webhook"
url = "{hooks}/desk"
secret = "{secret}"

[policies.fast.first_response]
calendar = "24x7"
target = "3s"
breach = "8s"
escalate = [{{at = "100%", to = "desk"}}]

[policies.slow.first_response]
calendar = "24x7"
target = "30m"
breach = "1h"

[policies.slow.resolution]
calendar = "24x7"
breach = "2h"
"""


@dataclass
class Dashboard:
    """A running service: its page URL, an API client and the webhook receiver."""

    url: str
    api: httpx.Client
    receiver: Receiver

    def ticket(self, ticket_id: str, policy: str, age: timedelta = timedelta(0)) -> None:
        created = datetime.now(UTC) - age
        answer = self.api.post(
            "/v1/tickets",
            json={"id": ticket_id, "policy": policy, "created_at": created.isoformat()},
        )
        assert answer.status_code == 201, answer.text

    def event(self, ticket_id: str, kind: str, **data: Any) -> None:
        body = {
            "event_id": f"{ticket_id}-{kind}-{time.monotonic_ns()}",
            "type": kind,
            "occurred_at": datetime.now(UTC).isoformat(),
            **data,
        }
        answer = self.api.post(f"/v1/tickets/{ticket_id}/events", json=body)
        assert answer.status_code == 201, answer.text


def without_routes(app: Any, missing: dict[str, int]) -> Any:
    """`app` as an older service would answer: GET on each path pattern of `missing` gets
    that status (404 or 405) with the problem the service gives for an unknown route."""

    async def older(scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        for pattern, status in missing.items():
            if scope["type"] == "http" and scope["method"] == "GET" and re.fullmatch(pattern, path):
                why = "no route matches this path" if status == 404 else "method not allowed"
                problem = Problem(status, "not-found", why, errors=(FieldError("path", path, why),))
                await problem.response(path)(scope, receive, send)
                return
        await app(scope, receive, send)

    return older


@contextmanager
def running_dashboard(
    tmp_path: Path,
    receiver: tuple[Receiver, str],
    token: str | None = None,
    missing: dict[str, int] | None = None,
) -> Iterator[Dashboard]:
    rec, hooks = receiver
    config = tmp_path / "sla.toml"
    db = f"sqlite:///{tmp_path / 'sla-engine.db'}"
    config.write_text(CONFIG.format(db=db, hooks=hooks, secret=SECRET))
    services = build_services(load_config(config, env={}))
    services.start_background()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with (
            serve_app(
                without_routes(create_app(services, api_token=token or ""), missing or {})
            ) as base,
            httpx.Client(base_url=base, headers=headers, timeout=10) as api,
        ):
            yield Dashboard(f"{base}/", api, rec)
    finally:
        services.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


@pytest.fixture
def dashboard(tmp_path: Path, receiver: tuple[Receiver, str]) -> Iterator[Dashboard]:
    with running_dashboard(tmp_path, receiver) as board:
        yield board


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `condition` every 50 ms until it is truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Exception:  # a row replaced while read (stale element): try again
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.1f} s: {what}")
        time.sleep(0.05)


def queue_ids(browser: Any) -> list[str]:
    return list(
        browser.execute_script(
            "return [...document.querySelectorAll('#queue-body tr')].map(tr => tr.dataset.ticketId)"
        )
    )


def row(browser: Any, attribute: str, value: str) -> Any:
    """The table row whose `data-*` attribute equals `value` (any characters), or None."""
    return browser.execute_script(
        f"return [...document.querySelectorAll('tr[{attribute}]')]"
        f".find(tr => tr.getAttribute('{attribute}') === arguments[0]) || null",
        value,
    )


def seconds(countdown: str) -> int:
    hours, minutes, secs = (int(part) for part in countdown.split(":"))
    return hours * 3600 + minutes * 60 + secs


def open_page(browser: Any, board: Dashboard) -> None:
    browser.get(board.url)
    wait_until(
        lambda: browser.execute_script("return document.documentElement.dataset.queueRendered"),
        10,
        "the first queue render",
    )


def test_queue_order_and_live_changes(browser: Any, dashboard: Dashboard) -> None:
    dashboard.ticket("A-late", "slow", timedelta(minutes=50))  # 10 min left
    dashboard.ticket("B-later", "slow", timedelta(minutes=10))  # 50 min left
    dashboard.ticket("C-emergency", "emergency", timedelta(minutes=30))  # 30 min left
    open_page(browser, dashboard)
    wait_until(lambda: len(queue_ids(browser)) == 3, 5, "three rows")
    assert queue_ids(browser) == ["A-late", "C-emergency", "B-later"]

    first = row(browser, "data-ticket-id", "A-late")
    cells = [c.text for c in first.find_elements("css selector", "td, th")]
    assert cells[2].startswith("First response")
    assert "slow" in cells[3] and "24x7" in cells[3]
    assert re.fullmatch(r"0:(09|10):\d\d", first.find_element("css selector", ".countdown").text)
    breach_at = first.find_element("css selector", "time")
    assert breach_at.get_attribute("datetime")
    assert breach_at.text.startswith("Today") or re.match(r"\w{3} ", breach_at.text)

    dashboard.ticket("D-new", "slow", timedelta(minutes=40))  # 20 min left: second place
    wait_until(
        lambda: queue_ids(browser) == ["A-late", "D-new", "C-emergency", "B-later"],
        LIVE_S,
        "the new ticket in its place",
    )
    dashboard.event("C-emergency", "agent_reply")  # its only metric stops
    wait_until(
        lambda: queue_ids(browser) == ["A-late", "D-new", "B-later"],
        LIVE_S,
        "the answered emergency ticket leaving the queue",
    )


def test_countdown_ticks_and_a_paused_metric_stands_still(
    browser: Any, dashboard: Dashboard
) -> None:
    dashboard.ticket("T-run", "slow", timedelta(minutes=5))
    dashboard.ticket("T-wait", "slow", timedelta(minutes=5))
    dashboard.event("T-wait", "agent_reply")  # first response done: resolution runs (2h)
    dashboard.event("T-wait", "pending")  # resolution pauses
    open_page(browser, dashboard)
    wait_until(lambda: len(queue_ids(browser)) == 2, 5, "two rows")

    def countdown(ticket: str) -> str:
        return str(
            row(browser, "data-ticket-id", ticket).find_element("css selector", ".countdown").text
        )

    running_before, paused_before = countdown("T-run"), countdown("T-wait")
    time.sleep(2.5)
    running_after, paused_after = countdown("T-run"), countdown("T-wait")
    assert 1 <= seconds(running_before) - seconds(running_after) <= 4
    assert paused_after == paused_before
    paused_row = row(browser, "data-ticket-id", "T-wait")
    assert "paused" in paused_row.text.lower()
    assert "Resolution" in paused_row.text


def test_breach_turns_the_row_red_and_a_dead_delivery_is_replayed(
    browser: Any, dashboard: Dashboard
) -> None:
    dashboard.receiver.script["/desk"] = [400]  # the first delivery is refused: dead
    dashboard.ticket("F-1", "fast")  # target 3 s, breach 8 s, escalation at 100%
    open_page(browser, dashboard)
    seen: list[str] = []

    def standing() -> str | None:
        value = row(browser, "data-ticket-id", "F-1").get_attribute("data-standing")
        if value and (not seen or seen[-1] != value):
            seen.append(value)
        return value if value == "breached" else None

    wait_until(standing, 15, "the fast ticket breaching")
    assert seen[-3:] == ["ok", "risk", "breached"] or seen[-2:] == ["risk", "breached"], seen
    red = row(browser, "data-ticket-id", "F-1")
    background = red.find_element("css selector", "td").value_of_css_property("background-color")
    r, g, b = (int(x) for x in re.findall(r"\d+", background)[:3])
    assert r > g + 10 and r > b + 10, f"breached row background is {background}"
    assert "Breached" in red.text

    delivery = wait_until(
        lambda: browser.execute_script(
            "return document.querySelector('#esc-body tr[data-status=\"dead\"]')"
        ),
        10,
        "the refused delivery listed as dead",
    )
    escalation_id = delivery.get_attribute("data-escalation-id")
    assert escalation_id.startswith("msg_") and "F-1" in delivery.text
    button = delivery.find_element("css selector", "button")
    assert button.text == "Replay"
    button.click()
    wait_until(
        lambda: (
            row(browser, "data-escalation-id", escalation_id).get_attribute("data-status")
            == "delivered"
        ),
        10,
        "the replayed delivery shown as delivered",
    )
    hits = dashboard.receiver.wait_for(2, timeout=5)
    assert [h.headers["webhook-id"] for h in hits] == [escalation_id, escalation_id]
    assert not row(browser, "data-escalation-id", escalation_id).find_elements(
        "css selector", "button"
    )


def test_policy_filter_and_escaping(browser: Any, dashboard: Dashboard) -> None:
    hostile = '<img src=x onerror="window.owned=1">&amp;'
    dashboard.ticket(hostile, "slow", timedelta(minutes=20))
    dashboard.ticket("E-9", "emergency", timedelta(minutes=1))
    open_page(browser, dashboard)
    wait_until(lambda: len(queue_ids(browser)) == 2, 5, "two rows")
    assert queue_ids(browser) == [hostile, "E-9"]
    assert row(browser, "data-ticket-id", hostile).find_element("css selector", "th").text == (
        hostile
    )
    assert not browser.find_elements("css selector", "#queue-body img")
    assert browser.execute_script("return window.owned") is None

    wait_until(
        lambda: (
            "slow"
            in [
                o.get_attribute("value")
                for o in browser.find_elements("css selector", "#filter-policy option")
            ]
        ),
        5,
        "the policy filter listing the configured policies",
    )
    label = browser.find_element("css selector", "label:has(#filter-policy)")
    assert label.text.startswith("Policy")
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    keyboard = ActionChains(browser)
    keyboard.send_keys(Keys.TAB).perform()  # first stop: the skip link
    assert browser.switch_to.active_element.get_attribute("class") == "skip"
    keyboard.send_keys(Keys.TAB).perform()  # then the policy filter, chosen by typing
    assert browser.switch_to.active_element.get_attribute("id") == "filter-policy"
    keyboard.send_keys("e").perform()
    wait_until(lambda: queue_ids(browser) == ["E-9"], LIVE_S, "only the emergency ticket")
    assert browser.current_url.endswith("#policy=emergency")
    browser.find_element("css selector", "#filter-policy option[value='']").click()
    wait_until(lambda: len(queue_ids(browser)) == 2, LIVE_S, "both tickets again")


def test_token_prompt(browser: Any, tmp_path: Path, receiver: tuple[Receiver, str]) -> None:
    with running_dashboard(tmp_path, receiver, token="s3cret-token") as board:
        board.ticket("S-1", "slow", timedelta(minutes=5))
        assert httpx.get(board.url).status_code == 200  # the page itself is public
        assert httpx.get(board.url + "v1/escalations").status_code == 401
        browser.get(board.url)
        form = wait_until(
            lambda: (
                browser.find_element("id", "auth").is_displayed()
                and browser.find_element("id", "auth-form")
            ),
            5,
            "the token prompt",
        )
        assert not browser.find_element("id", "main").is_displayed()
        assert queue_ids(browser) == []
        token_input = form.find_element("id", "auth-token")
        assert token_input.get_attribute("type") == "password"
        assert browser.switch_to.active_element == token_input

        token_input.send_keys("wrong")
        form.find_element("css selector", "button[type=submit]").click()
        error = wait_until(
            lambda: (
                browser.find_element("id", "auth-error").is_displayed()
                and browser.find_element("id", "auth-error")
            ),
            5,
            "the refused-token message",
        )
        assert "refused" in error.text and error.get_attribute("role") == "alert"
        assert queue_ids(browser) == []

        browser.find_element("id", "auth-token").send_keys("s3cret-token\n")
        wait_until(lambda: queue_ids(browser) == ["S-1"], 5, "the queue after the right token")
        assert not browser.find_element("id", "auth").is_displayed()
        stored = browser.execute_script("return sessionStorage.getItem('sla_engine.api_token')")
        assert stored == "s3cret-token"

        browser.refresh()  # the tab keeps its token
        wait_until(lambda: queue_ids(browser) == ["S-1"], 5, "the queue after a reload")
        browser.find_element("id", "forget-token").click()
        wait_until(lambda: browser.find_element("id", "auth").is_displayed(), 2, "the prompt")
        assert queue_ids(browser) == []


def test_a_missing_endpoint_leaves_a_note_and_the_rest_working(
    browser: Any, tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    missing = {r"/v1/tickets": 405, r"/v1/policies": 404, r"/v1/calendars/[^/]+/versions": 404}
    with running_dashboard(tmp_path, receiver, missing=missing) as board:
        board.ticket("X-1", "slow", timedelta(minutes=5))
        browser.get(board.url)
        note = wait_until(
            lambda: (
                browser.find_element("id", "queue-note").is_displayed()
                and browser.find_element("id", "queue-note")
            ),
            5,
            "the queue's note",
        )
        assert "not available" in note.text
        assert queue_ids(browser) == []
        versions = wait_until(
            lambda: browser.find_elements("css selector", "#cal-body .versions"),
            10,
            "the calendars panel",
        )
        assert all("not available" in v.text for v in versions)
        assert browser.find_elements("css selector", "#cal-body .week li")
        assert wait_until(
            lambda: browser.find_elements("css selector", "#att-body .att-card"), 10, "attainment"
        )
        assert not browser.find_element("id", "esc-note").is_displayed()
        assert browser.find_element("id", "esc-empty").is_displayed()
        errors = [e for e in browser.get_log("browser") if e.get("source") == "javascript"]
        assert not errors, errors
