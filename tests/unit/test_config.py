"""The service config file: database URL precedence, destinations, products, errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sla_engine.config import (
    DEFAULT_DATABASE_URL,
    DEFAULT_PAGERDUTY_URL,
    Destination,
    ServiceConfig,
    load_config,
)
from sla_engine.core.policies import default_policies
from sla_engine.errors import ConfigError

SPEC_EXAMPLE = """
[database]
url = "sqlite:///from-file.db"

[[destinations]]
name = "oncall"
type = "webhook"
url = "http://127.0.0.1:9000/hook"
secret_env = "ONCALL_WEBHOOK_SECRET"

[[destinations]]
name = "pd"
type = "pagerduty"
url = "http://127.0.0.1:9001/v2/enqueue"
routing_key = "R0UTING"

[policies.standard.first_response]
calendar = "smartertools"
target = "1h"
breach = "4h"
escalate = [{at = "75%", to = "oncall"}, {at = "100%", to = "pd"}]
repeat_after_breach = {every = "1h", to = "oncall"}

[policies.standard.resolution]
calendar = "smartertools"
breach = "16h"

[policies.gold.first_response]
calendar = "24x7"
breach = "30m"
retarget = "from_start"
escalate = [{at = "-10m", to = "oncall", during = "smartertools"}]

[products]
SmarterMail = 12
SmarterTrack = 100
"""

ENV = {"ONCALL_WEBHOOK_SECRET": "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sla-engine.toml"
    path.write_text(text)
    return path


def test_no_file_gives_the_defaults() -> None:
    config = load_config(None, env={})
    assert config == ServiceConfig()
    assert config.database_url == DEFAULT_DATABASE_URL
    assert dict(config.policies) == default_policies()
    assert dict(config.destinations) == {} and dict(config.products) == {} and config.path is None


def test_the_spec_example_loads(tmp_path: Path) -> None:
    path = write(tmp_path, SPEC_EXAMPLE)
    config = load_config(path, env=ENV)
    assert config.path == path and config.database_url == "sqlite:///from-file.db"
    assert config.destinations["oncall"] == Destination(
        name="oncall",
        type="webhook",
        url="http://127.0.0.1:9000/hook",
        secret=ENV["ONCALL_WEBHOOK_SECRET"],
    )
    assert config.destinations["pd"].routing_key == "R0UTING"
    assert config.destinations["pd"].url == "http://127.0.0.1:9001/v2/enqueue"
    assert set(config.policies) == {"standard", "emergency", "gold"}
    assert set(config.policies["standard"].metrics) == {"first_response", "resolution"}
    assert config.policies["gold"].metrics["first_response"].breach == timedelta(minutes=30)
    assert dict(config.products) == {"SmarterMail": 12, "SmarterTrack": 100}
    assert "whsec_" not in repr(config.destinations["oncall"])


def test_inline_secret_and_default_pagerduty_url(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [[destinations]]
        name = "hook"
        type = "webhook"
        url = "https://hooks.example.com/sla"
        secret = "plain-shared-secret"
        [[destinations]]
        name = "pd"
        type = "pagerduty"
        routing_key = "abc"
    """,
    )
    config = load_config(path, env={})
    assert config.destinations["hook"].secret == "plain-shared-secret"
    assert config.destinations["pd"].url == DEFAULT_PAGERDUTY_URL


@pytest.mark.parametrize(
    ("explicit", "env", "in_file", "expected"),
    [
        ("sqlite:///explicit.db", "sqlite:///env.db", True, "sqlite:///explicit.db"),
        (
            None,
            "postgresql+psycopg://postgres@127.0.0.1/env",
            True,
            "postgresql+psycopg://postgres@127.0.0.1/env",
        ),
        (None, None, True, "sqlite:///from-file.db"),
        (None, None, False, DEFAULT_DATABASE_URL),
        (None, "", True, "sqlite:///from-file.db"),
    ],
)
def test_database_url_precedence(
    tmp_path: Path, explicit: str | None, env: str | None, in_file: bool, expected: str
) -> None:
    text = '[database]\nurl = "sqlite:///from-file.db"\n' if in_file else ""
    environ = {} if env is None else {"SLA_ENGINE_DATABASE_URL": env}
    config = load_config(write(tmp_path, text), env=environ, database_url=explicit)
    assert config.database_url == expected


@pytest.mark.parametrize(
    ("explicit", "env", "field"),
    [("not a url", None, "database_url"), (None, "::nope::", "SLA_ENGINE_DATABASE_URL")],
)
def test_bad_database_urls_from_arguments_name_their_source(
    explicit: str | None, env: str | None, field: str
) -> None:
    environ = {} if env is None else {"SLA_ENGINE_DATABASE_URL": env}
    with pytest.raises(ConfigError) as err:
        load_config(None, env=environ, database_url=explicit)
    assert err.value.field == field and err.value.value == (explicit or env)


WEBHOOK = '[[destinations]]\nname = "oncall"\ntype = "webhook"\n'


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ('colour = "blue"', "colour", "blue"),
        ("[database]\nhost = 'x'", "database.host", "x"),
        ("[database]\nurl = 'not a url'", "database.url", "not a url"),
        ("[database]\nurl = 5", "database.url", 5),
        ("database = 1", "database", 1),
        ("destinations = 'x'", "destinations", "x"),
        (
            WEBHOOK + 'url = "ftp://127.0.0.1/hook"\nsecret = "s"',
            "destinations[0].url",
            "ftp://127.0.0.1/hook",
        ),
        (
            WEBHOOK + 'url = "http://user:pass@127.0.0.1/hook"\nsecret = "s"',
            "destinations[0].url",
            "http://user:pass@127.0.0.1/hook",
        ),
        (
            WEBHOOK + 'url = "http://token@127.0.0.1/hook"\nsecret = "s"',
            "destinations[0].url",
            "http://token@127.0.0.1/hook",
        ),
        (WEBHOOK + 'url = "http:///hook"\nsecret = "s"', "destinations[0].url", "http:///hook"),
        (
            WEBHOOK + 'url = "http://127.0.0.1:99999/"\nsecret = "s"',
            "destinations[0].url",
            "http://127.0.0.1:99999/",
        ),
        (
            WEBHOOK + 'url = "http://127.0.0.1/a b"\nsecret = "s"',
            "destinations[0].url",
            "http://127.0.0.1/a b",
        ),
        (WEBHOOK + 'url = "http://127.0.0.1/"', "destinations[0]", "oncall"),
        (
            WEBHOOK + 'url = "http://127.0.0.1/"\nsecret_env = "MISSING_SECRET"',
            "destinations[0].secret_env",
            "MISSING_SECRET",
        ),
        (
            WEBHOOK + 'url = "http://127.0.0.1/"\nsecret_env = "EMPTY_SECRET"',
            "destinations[0].secret_env",
            "EMPTY_SECRET",
        ),
        (
            WEBHOOK + 'url = "http://127.0.0.1/"\nsecret = "s"\nsecret_env = "SET_SECRET"',
            "destinations[0].secret_env",
            "SET_SECRET",
        ),
        (
            WEBHOOK + 'url = "http://127.0.0.1/"\nsecret = "whsec_a"',
            "destinations[0].secret",
            "whsec_***",
        ),
        (WEBHOOK + 'url = "http://127.0.0.1/"\nsecret = ""', "destinations[0].secret", ""),
        (
            WEBHOOK + 'secret = "s"',
            "destinations[0]",
            {"name": "oncall", "type": "webhook", "secret": "s"},
        ),
        (
            WEBHOOK + 'url = "http://127.0.0.1/"\nsecret = "s"\nmethod = "PUT"',
            "destinations[0].method",
            "PUT",
        ),
        (
            '[[destinations]]\nname = "x"\ntype = "email"\nurl = "http://127.0.0.1/"',
            "destinations[0].type",
            "email",
        ),
        ('[[destinations]]\ntype = "webhook"', "destinations[0]", {"type": "webhook"}),
        ('[[destinations]]\nname = ""\ntype = "webhook"', "destinations[0].name", ""),
        ('[[destinations]]\nname = "pd"\ntype = "pagerduty"', "destinations[0]", "pd"),
        (
            '[[destinations]]\nname = "pd"\ntype = "pagerduty"\nrouting_key = "k"\n'
            'secret_env = "SET_SECRET"',
            "destinations[0].secret_env",
            "SET_SECRET",
        ),
        (
            '[[destinations]]\nname = "pd"\ntype = "pagerduty"\nrouting_key = "k"\n'
            '[[destinations]]\nname = "pd"\ntype = "pagerduty"\nrouting_key = "j"',
            "destinations[1].name",
            "pd",
        ),
        ("[products]\nSmarterMail = 0", "products.SmarterMail", 0),
        ("[products]\nSmarterMail = '12'", "products.SmarterMail", "12"),
        ("[products]\nSmarterMail = true", "products.SmarterMail", True),
        ("[products]\nSmarterMail = 12.5", "products.SmarterMail", 12.5),
        ("products = 3", "products", 3),
        (
            '[policies.standard.first_response]\nbreach = "soon"',
            "policies.standard.first_response.breach",
            "soon",
        ),
    ],
)
def test_every_config_error_names_file_key_and_value(
    tmp_path: Path, text: str, key: str, value: Any
) -> None:
    path = write(tmp_path, text)
    env = {"EMPTY_SECRET": "", "SET_SECRET": "x"}
    with pytest.raises(ConfigError) as err:
        load_config(path, env=env)
    assert err.value.field == key
    assert err.value.value == value
    assert str(path) in err.value.message and key in err.value.message


def test_secrets_are_not_echoed_in_errors(tmp_path: Path) -> None:
    path = write(tmp_path, WEBHOOK + 'url = "http://127.0.0.1/"\nsecret = "whsec_a"')
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert "whsec_a'" not in err.value.message


def test_a_missing_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert str(path) in err.value.message and err.value.value == str(path)


def test_a_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[database\nurl = 1")
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert str(path) in err.value.message and "TOML" in err.value.message


def test_an_unreadable_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, env={})  # a directory
    assert str(tmp_path) in err.value.message


def test_a_non_utf8_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[products]\n"Caf\xe9" = 1\n')
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert str(path) in err.value.message
