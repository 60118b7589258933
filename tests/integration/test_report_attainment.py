"""Attainment of every metric over HTTP, as numbers and as CSV, with `GET /v1/policies` and
`POST /v1/elapsed`; then `sla-engine report attainment --metric --csv --plot` (in process),
on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from sla_engine.api import create_app
from sla_engine.composition import build_services
from sla_engine.config import load_config
from tests.support.plots import saved_axes
from tests.support.server import serve_app

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
WINDOW = {"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}
CONFIG = """
[[destinations]]
name = "oncall"
type = "webhook"
url = "http://127.0.0.1:9/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[policies.standard.resolution]
calendar = "smartertools"
breach = "16h"
target = "8h"

[policies.standard.next_response]
calendar = "smartertools"
breach = "2h"

[policies.gold.first_response]
calendar = "24x7"
breach = "30m"
retarget = "from_start"
escalate = [{at = "-10m", to = "oncall", during = "smartertools"}, {at = "100%", to = "oncall"}]
repeat_after_breach = {every = "1h", to = "oncall"}
"""


@contextmanager
def report_api(url: str, tmp_path: Path) -> Iterator[tuple[httpx.Client, Any]]:
    config = tmp_path / "sla-engine.toml"
    config.write_text(CONFIG)
    services = build_services(load_config(config, env={}, database_url=url), clock=lambda: NOW)
    try:
        with serve_app(create_app(services)) as base, httpx.Client(base_url=base) as client:
            yield client, services
    finally:
        services.close()


def post(client: httpx.Client, path: str, body: dict[str, Any]) -> None:
    answer = client.post(path, json=body)
    assert answer.status_code == 201, answer.text


def seed(client: httpx.Client) -> None:
    """Three standard tickets of Monday 23 November (Phoenix) and a gold one."""
    for tid in ("A", "B", "C"):
        post(client, "/v1/tickets", {"id": tid, "policy": "standard", "created_at": mon("09:00")})
    reply(client, "A", "agent_reply", mon("09:30"))
    reply(client, "A", "customer_reply", mon("10:00"))  # next_response starts
    reply(client, "A", "agent_reply", mon("11:00"))  # ... answered in 1h
    reply(client, "A", "solved", mon("12:00"))  # resolved in 3h
    reply(client, "B", "agent_reply", mon("15:00"))  # first response late (6h > 4h)
    reply(client, "B", "customer_reply", mon("16:00"))  # next_response runs: breached by NOW
    # C: nothing since: first response and resolution running past their deadlines
    post(client, "/v1/tickets", {"id": "G", "policy": "gold", "created_at": "2026-11-24T10:00Z"})
    reply(client, "G", "agent_reply", "2026-11-24T10:20:00Z")


def mon(clock: str) -> str:
    return f"2026-11-23T{clock}:00-07:00"


def reply(client: httpx.Client, tid: str, kind: str, at: str) -> None:
    post(
        client,
        f"/v1/tickets/{tid}/events",
        {"event_id": f"{tid}-{kind}-{at}", "type": kind, "occurred_at": at},
    )


def report(client: httpx.Client, **params: Any) -> dict[str, Any]:
    answer = client.get("/v1/reports/attainment", params={**WINDOW, **params})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_attainment_of_each_metric(db_url: str, tmp_path: Path) -> None:
    with report_api(db_url, tmp_path) as (client, _):
        seed(client)
        first = report(client)
        assert first["metric"] == "first_response"
        assert first["count"] == 4 and first["answered"] == 3
        assert first["within_breach"] == {"achieved": 2, "decided": 4, "share": 0.5}
        resolution = report(client, metric="resolution", policy="standard")
        assert resolution["metric"] == "resolution"
        assert (resolution["count"], resolution["answered"]) == (3, 1)
        assert resolution["median_response_s"] == 3 * 3600.0  # A: solved after 3 business hours
        # B and C run past Tuesday 16:00 (16 business hours): breached by NOW
        assert resolution["within_breach"] == {"achieved": 1, "decided": 3, "share": 1 / 3}
        assert resolution["target_s"] == 8 * 3600.0 and resolution["breach_s"] == 16 * 3600.0
        following = report(client, metric="next_response")
        assert (following["count"], following["answered"]) == (2, 1)
        assert following["median_response_s"] == 3600.0
        assert following["within_breach"] == {"achieved": 1, "decided": 2, "share": 0.5}
        gold = report(client, policy="gold")
        assert gold["count"] == 1 and gold["target_s"] is None and gold["breach_s"] == 1800.0


def test_attainment_rows_as_csv(db_url: str, tmp_path: Path) -> None:
    with report_api(db_url, tmp_path) as (client, _):
        seed(client)
        by_format = client.get(
            "/v1/reports/attainment", params={**WINDOW, "format": "csv", "metric": "resolution"}
        )
        by_accept = client.get(
            "/v1/reports/attainment",
            params={**WINDOW, "metric": "resolution"},
            headers={"Accept": "text/csv"},
        )
        for answer in (by_format, by_accept):
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"].startswith("text/csv")
        assert by_format.text == by_accept.text
        lines = list(csv.DictReader(io.StringIO(by_format.text)))
        header = by_format.text.splitlines()[0].split(",")
        for column in (
            "ticket_id",
            "policy",
            "metric",
            "cycle",
            "status",
            "started_at",
            "stopped_at",
            "target_at",
            "breach_at",
            "business_elapsed_s",
        ):
            assert column in header
        rows = {line["ticket_id"]: line for line in lines}
        assert set(rows) == {"A", "B", "C"}  # gold has no resolution metric
        assert {line["metric"] for line in lines} == {"resolution"}
        assert rows["A"]["status"] == "achieved"
        assert float(rows["A"]["business_elapsed_s"]) == 3 * 3600.0
        assert datetime.fromisoformat(rows["A"]["stopped_at"]) == datetime.fromisoformat(
            mon("12:00")
        )
        assert rows["C"]["status"] == "breached" and rows["C"]["stopped_at"] == ""
        # C has run since Monday 09:00: 8 h Monday, 9 h Tuesday, none yet on Wednesday 05:00
        assert float(rows["C"]["business_elapsed_s"]) == 17 * 3600.0
        json_anyway = client.get(
            "/v1/reports/attainment",
            params={**WINDOW, "format": "json"},
            headers={"Accept": "text/csv"},
        )
        assert json_anyway.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"metric": "first_reply"}, "metric"),
        ({"format": "xml"}, "format"),
        ({"policy": "platinum"}, "policy"),
    ],
)
def test_bad_report_parameters(
    db_url: str, tmp_path: Path, params: dict[str, str], field: str
) -> None:
    with report_api(db_url, tmp_path) as (client, _):
        answer = client.get("/v1/reports/attainment", params=params)
        assert answer.status_code == 422
        assert answer.json()["field"] == field


def test_policies_in_force(db_url: str, tmp_path: Path) -> None:
    with report_api(db_url, tmp_path) as (client, _):
        listed = client.get("/v1/policies").json()["policies"]
        assert [p["name"] for p in listed] == ["emergency", "gold", "standard"]
        standard = client.get("/v1/policies/standard").json()
        assert standard == next(p for p in listed if p["name"] == "standard")
        first = standard["metrics"]["first_response"]  # the built-in default, kept
        assert (first["calendar"], first["target"], first["breach"]) == ("smartertools", "1h", "4h")
        resolution = standard["metrics"]["resolution"]  # added by the config file
        assert (resolution["breach"], resolution["target"]) == ("16h", "8h")
        assert resolution["pausable"] is True
        emergency = client.get("/v1/policies/emergency").json()
        assert emergency["calendar_after_first_response"] == "smartertools"
        assert emergency["metrics"]["first_response"]["breach"] == "1h"
        gold = client.get("/v1/policies/gold").json()["metrics"]["first_response"]
        assert gold["breach"] == "30m" and gold["retarget"] == "from_start"
        assert gold["escalate"] == [
            {"at": "-10m", "to": "oncall", "during": "smartertools"},
            {"at": "100%", "to": "oncall", "during": None},
        ]
        assert gold["repeat_after_breach"] == {"every": "1h", "to": "oncall", "during": None}
        missing = client.get("/v1/policies/platinum")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert "platinum" in missing.json()["detail"]


@pytest.mark.parametrize(
    ("start", "end", "seconds", "text"),
    [
        ("2026-11-20T13:00:00-07:00", "2026-11-23T08:30:00-07:00", 16200.0, "4h30m"),
        ("2026-11-23T08:30:00-07:00", "2026-11-20T13:00:00-07:00", -16200.0, "-4h30m"),
        ("2026-11-21T10:00:00-07:00", "2026-11-22T10:00:00-07:00", 0.0, "0s"),  # a weekend
        ("2026-11-23T09:00:00-07:00", "2026-11-23T09:00:01.5-07:00", 1.5, "1.5s"),
    ],
)
def test_elapsed_business_time(
    sqlite_url: str, tmp_path: Path, start: str, end: str, seconds: float, text: str
) -> None:
    with report_api(sqlite_url, tmp_path) as (client, _):
        body = {"calendar": "smartertools", "from": start, "to": end}
        answer = client.post("/v1/elapsed", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"elapsed_s": seconds, "elapsed": text, "calendar": "smartertools"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"calendar": "mars", "from": "2026-11-20T13:00:00Z", "to": "2026-11-21T13:00:00Z"},
            "calendar",
        ),
        ({"calendar": "24x7", "from": "2026-11-20T13:00:00", "to": "2026-11-21T13:00:00Z"}, "from"),
        ({"calendar": "24x7", "from": "2026-11-20T13:00:00Z"}, "to"),
        ({"calendar": "24x7", "from": "2026-11-20T13:00Z", "to": "2026-11-21T13:00Z", "x": 1}, "x"),
    ],
)
def test_bad_elapsed_requests(
    sqlite_url: str, tmp_path: Path, body: dict[str, Any], field: str
) -> None:
    with report_api(sqlite_url, tmp_path) as (client, _):
        answer = client.post("/v1/elapsed", json=body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == field


def test_openapi_declares_the_new_routes(sqlite_url: str, tmp_path: Path) -> None:
    with report_api(sqlite_url, tmp_path) as (client, _):
        paths = client.get("/openapi.json").json()["paths"]
        report_200 = paths["/v1/reports/attainment"]["get"]["responses"]["200"]["content"]
        assert {"application/json", "text/csv"} <= set(report_200)
        queue = paths["/v1/tickets"]["get"]
        assert {p["name"] for p in queue["parameters"]} >= {
            "status",
            "policy",
            "calendar",
            "metric",
            "breached",
            "breach_before",
            "order",
            "limit",
            "cursor",
        }
        assert "422" in queue["responses"] and "post" in paths["/v1/tickets"]
        assert "404" in paths["/v1/policies/{name}"]["get"]["responses"]
        assert "requestBody" in paths["/v1/elapsed"]["post"]


# --- the CLI -------------------------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from sla_engine.cli import run

    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The axes of each figure the plot saves."""
    return saved_axes(monkeypatch)


def lines_at(ax: Any) -> list[float]:
    return sorted(float(line.get_xdata()[0]) for line in ax.get_lines())


def test_cli_report_of_a_metric_as_csv_and_its_plot_lines(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], drawn: list[Any]
) -> None:
    config = tmp_path / "sla-engine.toml"
    with report_api(db_url, tmp_path) as (client, _):
        seed(client)
    window = ("--from", WINDOW["from"], "--to", WINDOW["to"])
    common = ("--config", str(config), "--database-url", db_url, *window)
    code, out, err = cli(capsys, "report", "attainment", *common, "--metric", "resolution", "--csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sorted(r["ticket_id"] for r in rows) == ["A", "B", "C"]

    plots = {name: tmp_path / f"{name}.png" for name in ("all", "standard", "gold")}
    code, out, err = cli(capsys, "report", "attainment", *common, "--plot", str(plots["all"]))
    assert code == 0, err
    assert "first_response attainment" in out and f"plot written to {plots['all']}" in out
    for name in ("standard", "gold"):
        code, _, err = cli(
            capsys, "report", "attainment", *common, "--policy", name, "--plot", str(plots[name])
        )
        assert code == 0, err
    all_policies, standard, gold = drawn
    assert lines_at(all_policies) == []  # two policies' tickets: no one line is theirs
    assert lines_at(standard) == [1.0, 4.0]
    assert lines_at(gold) == [0.5]
    for path in plots.values():
        assert path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--metric", "first_reply"), "--metric"),
        (("--csv", "--json"), "--csv"),
    ],
)
def test_cli_report_refuses_bad_options(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], named: str
) -> None:
    code, out, err = cli(capsys, "report", "attainment", "--database-url", sqlite_url, *args)
    assert code == 2
    assert err.startswith("error:") and named in err and out == ""
