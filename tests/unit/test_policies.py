"""Policies: built-in defaults, escalation thresholds, merging and validating [policies]."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from typing import Any

import pytest

from sla_engine.core.policies import (
    EscalationRule,
    MetricPolicy,
    RepeatRule,
    default_policies,
    parse_policies,
    parse_threshold,
)
from sla_engine.errors import ConfigError, InputError

H = timedelta(hours=1)
M = timedelta(minutes=1)
FILE = "/etc/sla/test.toml"


def parse(text: str, destinations: tuple[str, ...] = ("oncall", "pd")) -> dict[str, Any]:
    return parse_policies(tomllib.loads(text).get("policies"), FILE, destinations=destinations)


def test_builtin_defaults_reproduce_the_seed_policy() -> None:
    policies = default_policies()
    assert set(policies) == {"standard", "emergency"}
    standard = policies["standard"]
    assert list(standard.metrics) == ["first_response"]
    assert standard.metrics["first_response"] == MetricPolicy(
        metric="first_response",
        calendar="smartertools",
        breach=4 * H,
        target=H,
        retarget="from_change",
        escalate=(),
        repeat_after_breach=None,
        pausable=False,
    )
    assert standard.calendar_after_first_response is None
    emergency = policies["emergency"]
    fr = emergency.metrics["first_response"]
    assert (fr.calendar, fr.breach, fr.target, fr.escalate) == ("24x7", H, None, ())
    assert emergency.calendar_after_first_response == "smartertools"


def test_calendar_after_first_response_applies_to_the_other_metrics_only() -> None:
    policies = parse("""
        [policies.emergency.resolution]
        calendar = "24x7"
        breach = "8h"
    """)
    emergency = policies["emergency"]
    assert emergency.calendar_for("first_response", True) == "24x7"
    assert emergency.calendar_for("resolution", False) == "24x7"
    assert emergency.calendar_for("resolution", True) == "smartertools"


@pytest.mark.parametrize(
    ("at", "fraction", "offset", "due"),
    [
        ("75%", 0.75, None, 3 * H),
        ("100%", 1.0, None, 4 * H),
        ("12.5%", 0.125, None, 30 * M),
        ("-15m", None, 15 * M, 4 * H - 15 * M),
        ("-1h30m", None, 90 * M, 150 * M),
    ],
)
def test_escalation_thresholds(
    at: str, fraction: float | None, offset: timedelta | None, due: timedelta
) -> None:
    rule = EscalationRule(at=at, to="oncall")
    assert (rule.fraction, rule.offset) == (fraction, offset)
    assert rule.business_due(4 * H) == due
    assert parse_threshold(at) == (fraction, offset)


@pytest.mark.parametrize("at", ["0%", "101%", "-5%", "75", "abc", "-0m", "15m", "-x", "", "%"])
def test_bad_thresholds_are_refused(at: str) -> None:
    with pytest.raises(ValueError):
        parse_threshold(at)
    with pytest.raises(InputError) as err:
        EscalationRule(at=at, to="oncall")
    assert (err.value.field, err.value.value) == ("at", at)


def test_naming_a_new_metric_adds_it_and_keeps_the_defaults() -> None:
    policies = parse("""
        [policies.standard.resolution]
        calendar = "smartertools"
        breach = "16h"
    """)
    standard = policies["standard"]
    assert set(standard.metrics) == {"first_response", "resolution"}
    assert (
        standard.metrics["first_response"]
        == default_policies()["standard"].metrics["first_response"]
    )
    res = standard.metrics["resolution"]
    assert (res.breach, res.target, res.pausable, res.retarget) == (
        16 * H,
        None,
        True,
        "from_change",
    )
    assert policies["emergency"] == default_policies()["emergency"]


def test_naming_a_key_overrides_just_that_key() -> None:
    policies = parse("""
        [policies.standard.first_response]
        breach = "3h"
        escalate = [{at = "75%", to = "oncall"}, {at = "-10m", to = "pd", during = "smartertools"}]
        repeat_after_breach = {every = "1h", to = "oncall"}
    """)
    fr = policies["standard"].metrics["first_response"]
    assert (fr.calendar, fr.target, fr.breach) == ("smartertools", H, 3 * H)
    assert fr.escalate == (
        EscalationRule("75%", "oncall"),
        EscalationRule("-10m", "pd", "smartertools"),
    )
    assert fr.repeat_after_breach == RepeatRule(every=H, to="oncall")


def test_the_spec_example_parses() -> None:
    policies = parse("""
        [policies.standard.first_response]
        calendar = "smartertools"
        target = "1h"
        breach = "4h"
        escalate = [{at = "75%", to = "oncall"}, {at = "100%", to = "oncall"}]
        repeat_after_breach = {every = "1h", to = "oncall"}

        [policies.gold.first_response]
        calendar = "24x7"
        breach = "30m"
        retarget = "from_start"
        escalate = [{at = "-10m", to = "oncall", during = "smartertools"}]
    """)
    gold = policies["gold"]
    assert gold.name == "gold" and gold.calendar_after_first_response is None
    fr = gold.metrics["first_response"]
    assert (fr.calendar, fr.breach, fr.target, fr.retarget) == ("24x7", 30 * M, None, "from_start")
    assert fr.escalate[0].offset == 10 * M and fr.escalate[0].during == "smartertools"


def test_inherited_values_can_be_removed_with_false() -> None:
    policies = parse("""
        [policies.standard.first_response]
        target = false
        [policies.emergency]
        calendar_after_first_response = false
    """)
    assert policies["standard"].metrics["first_response"].target is None
    assert policies["emergency"].calendar_after_first_response is None


def test_metric_options_and_policy_level_calendar() -> None:
    policies = parse("""
        [policies.vip]
        calendar_after_first_response = "smartertools"
        [policies.vip.first_response]
        calendar = "24x7"
        breach = "15m"
        pausable = true
        [policies.vip.next_response]
        calendar = "24x7"
        breach = "1h"
        pausable = false
    """)
    vip = policies["vip"]
    assert vip.calendar_after_first_response == "smartertools"
    assert vip.metrics["first_response"].pausable is True
    assert vip.metrics["next_response"].pausable is False


def test_no_policies_table_gives_the_defaults() -> None:
    assert parse_policies(None, FILE) == default_policies()


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        (
            '[policies.standard.frist_response]\nbreach = "1h"',
            "policies.standard.frist_response",
            {"breach": "1h"},
        ),
        (
            '[policies.standard.first_response]\nbreech = "1h"',
            "policies.standard.first_response.breech",
            "1h",
        ),
        (
            '[policies.gold.first_response]\ncalendar = "24x7"\nbreach = "1 day"',
            "policies.gold.first_response.breach",
            "1 day",
        ),
        (
            '[policies.gold.first_response]\ncalendar = "24x7"\nbreach = 4',
            "policies.gold.first_response.breach",
            4,
        ),
        (
            '[policies.gold.first_response]\ncalendar = "24x7"\nbreach = "0s"',
            "policies.gold.first_response.breach",
            "0s",
        ),
        (
            '[policies.gold.first_response]\ncalendar = "24x7"\nbreach = "-1h"',
            "policies.gold.first_response.breach",
            "-1h",
        ),
        (
            '[policies.gold.first_response]\ncalendar = "mars-time"\nbreach = "1h"',
            "policies.gold.first_response.calendar",
            "mars-time",
        ),
        (
            '[policies.gold.first_response]\nbreach = "1h"',
            "policies.gold.first_response",
            {"breach": "1h"},
        ),
        (
            '[policies.gold.resolution]\ncalendar = "24x7"',
            "policies.gold.resolution",
            {"calendar": "24x7"},
        ),
        (
            '[policies.standard.first_response]\nretarget = "from_now"',
            "policies.standard.first_response.retarget",
            "from_now",
        ),
        (
            '[policies.standard.first_response]\ntarget = "5h"',
            "policies.standard.first_response.target",
            "5h",
        ),
        (
            '[policies.standard.first_response]\npausable = "yes"',
            "policies.standard.first_response.pausable",
            "yes",
        ),
        (
            '[policies.standard.first_response]\nescalate = [{at = "150%", to = "oncall"}]',
            "policies.standard.first_response.escalate[0].at",
            "150%",
        ),
        (
            '[policies.standard.first_response]\nescalate = [{at = "-4h", to = "oncall"}]',
            "policies.standard.first_response.escalate[0].at",
            "-4h",
        ),
        (
            '[policies.standard.first_response]\nescalate = [{at = "50%", to = "nobody"}]',
            "policies.standard.first_response.escalate[0].to",
            "nobody",
        ),
        (
            '[policies.standard.first_response]\nescalate = [{at = "50%", to = "oncall", '
            'during = "nope"}]',
            "policies.standard.first_response.escalate[0].during",
            "nope",
        ),
        (
            '[policies.standard.first_response]\nescalate = [{at = "50%", to = "oncall", '
            'when = "x"}]',
            "policies.standard.first_response.escalate[0].when",
            "x",
        ),
        (
            '[policies.standard.first_response]\nescalate = [{to = "oncall"}]',
            "policies.standard.first_response.escalate[0]",
            {"to": "oncall"},
        ),
        (
            '[policies.standard.first_response]\nescalate = [{at = "50%", to = "oncall"}, '
            '{at = "50%", to = "oncall"}]',
            "policies.standard.first_response.escalate[1]",
            "50%",
        ),
        (
            '[policies.standard.first_response]\nescalate = {at = "50%", to = "oncall"}',
            "policies.standard.first_response.escalate",
            {"at": "50%", "to": "oncall"},
        ),
        (
            '[policies.standard.first_response]\nrepeat_after_breach = {every = "1h", to = "x"}',
            "policies.standard.first_response.repeat_after_breach.to",
            "x",
        ),
        (
            '[policies.standard.first_response]\nrepeat_after_breach = {every = "0s", to = '
            '"oncall"}',
            "policies.standard.first_response.repeat_after_breach.every",
            "0s",
        ),
        (
            '[policies.standard.first_response]\nrepeat_after_breach = {to = "oncall"}',
            "policies.standard.first_response.repeat_after_breach",
            {"to": "oncall"},
        ),
        (
            '[policies.emergency]\ncalendar_after_first_response = "nowhere"',
            "policies.emergency.calendar_after_first_response",
            "nowhere",
        ),
        ("[policies]\nstandard = 3", "policies.standard", 3),
        ("[policies.empty]", "policies.empty", {}),
        (
            '[policies." gold".first_response]\ncalendar = "24x7"\nbreach = "1h"',
            "policies. gold",
            " gold",
        ),
        ('policies = "x"', "policies", "x"),
    ],
)
def test_every_policy_error_names_file_key_and_value(text: str, key: str, value: Any) -> None:
    with pytest.raises(ConfigError) as err:
        parse(text)
    assert err.value.field == key
    assert err.value.value == value
    assert FILE in err.value.message and key in err.value.message
    assert repr(value) in err.value.message


def test_escalations_need_configured_destinations() -> None:
    with pytest.raises(ConfigError, match="none configured"):
        parse(
            '[policies.standard.first_response]\nescalate = [{at = "50%", to = "oncall"}]',
            destinations=(),
        )


def test_a_broken_calendar_file_is_refused_naming_the_policy_key(tmp_path: Any) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "x"\ntimezone = "Mars/Olympus"\n[hours]\nmon = ["08:00-17:00"]\n')
    with pytest.raises(ConfigError) as err:
        parse(f'[policies.gold.first_response]\ncalendar = "{broken}"\nbreach = "1h"')
    assert err.value.field == "policies.gold.first_response.calendar"
    assert err.value.value == str(broken) and "Mars/Olympus" in err.value.message
