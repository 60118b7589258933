"""The service config file: database, destinations, policies, products.

Everything is validated when the service starts, so a mistake is reported once, naming the
file, the key path and the value, instead of surfacing when the first escalation is due.
"""

from __future__ import annotations

import base64
import binascii
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

from sla_engine.core.policies import Policy, default_policies, parse_policies
from sla_engine.core.toml_reader import TableReader
from sla_engine.errors import ConfigError

DATABASE_URL_ENV = "SLA_ENGINE_DATABASE_URL"
DEFAULT_DATABASE_URL = "sqlite:///sla-engine.db"
DESTINATION_TYPES: tuple[str, ...] = ("webhook", "pagerduty")
DEFAULT_PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"

_TOP_LEVEL_KEYS = ("database", "destinations", "policies", "products")
_DATABASE_KEYS = ("url",)
_DESTINATION_KEYS = ("name", "type", "url", "secret", "secret_env", "routing_key")

DestinationType = Literal["webhook", "pagerduty"]


@dataclass(frozen=True)
class Destination:
    """Where escalations go. Webhooks are signed with ``secret`` (Standard Webhooks);
    PagerDuty events carry ``routing_key`` and are posted to ``url``."""

    name: str
    type: DestinationType
    url: str
    secret: str | None = field(default=None, repr=False)
    routing_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ServiceConfig:
    """A validated config: what the service needs to start."""

    database_url: str = DEFAULT_DATABASE_URL
    destinations: Mapping[str, Destination] = field(default_factory=dict)
    policies: Mapping[str, Policy] = field(default_factory=default_policies)
    products: Mapping[str, int] = field(default_factory=dict)
    path: Path | None = None
    stored_calendars: Mapping[str, str] = field(default_factory=dict)
    """Calendars the policies name that are no calendar file (name -> config key): they must
    be stored in the service's database, which `build_services` checks at start."""


def check_url(url: object, *, file: str, key: str) -> str:
    """A destination URL: http(s), with a host, without credentials."""

    def bad(reason: str) -> ConfigError:
        return ConfigError(f"{file}: {key} = {url!r}: {reason}", field=key, value=url)

    if not isinstance(url, str) or not url.strip():
        raise bad("expected a non-empty URL string")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise bad("a URL must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise bad(f"not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https"):
        raise bad("only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise bad("credentials in the URL are not allowed (use secret or routing_key)")
    if not parts.hostname:
        raise bad("the URL has no host")
    return url


@dataclass
class _ConfigParser(TableReader):
    """Reads one parsed TOML document into a :class:`ServiceConfig`."""

    env: Mapping[str, str]

    def database_url(self, doc: Mapping[str, object]) -> str | None:
        if "database" not in doc:
            return None
        table = self.table("database", doc["database"])
        self.unknown_keys("database", table, _DATABASE_KEYS)
        if "url" not in table:
            return None
        return check_database_url(
            table["url"], source=f"{self.file}: database.url", field="database.url"
        )

    def destinations(self, raw: object) -> dict[str, Destination]:
        if not isinstance(raw, list):
            raise self.error("destinations", raw, "expected an array of tables ([[destinations]])")
        found: dict[str, Destination] = {}
        for i, item in enumerate(raw):
            destination = self.destination(f"destinations[{i}]", item)
            if destination.name in found:
                raise self.error(
                    f"destinations[{i}].name",
                    destination.name,
                    "a second destination with this name",
                )
            found[destination.name] = destination
        return found

    def destination(self, key: str, raw: object) -> Destination:
        table = self.keyed_table(key, raw, _DESTINATION_KEYS, ("name", "type"))
        name = self.string(f"{key}.name", table["name"])
        kind = table["type"]
        if kind not in DESTINATION_TYPES:
            raise self.error(
                f"{key}.type", kind, f"expected one of: {', '.join(DESTINATION_TYPES)}"
            )
        if kind == "webhook" and "url" not in table:
            raise self.error(key, dict(table), "a webhook destination needs 'url'")
        url = check_url(table.get("url", DEFAULT_PAGERDUTY_URL), file=self.file, key=f"{key}.url")
        if kind == "webhook":
            if "routing_key" in table:
                raise self.error(
                    f"{key}.routing_key", "***", "routing_key is for pagerduty destinations"
                )
            return Destination(name=name, type="webhook", url=url, secret=self.secret(key, table))
        if "secret" in table or "secret_env" in table:
            key_name = "secret" if "secret" in table else "secret_env"
            raise self.error(
                f"{key}.{key_name}",
                table[key_name] if key_name == "secret_env" else "***",
                "secrets are for webhook destinations",
            )
        if "routing_key" not in table:
            raise self.error(key, name, "a pagerduty destination needs 'routing_key'")
        routing_key = self.string(f"{key}.routing_key", table["routing_key"])
        return Destination(name=name, type="pagerduty", url=url, routing_key=routing_key)

    def secret(self, key: str, table: Mapping[str, object]) -> str:
        """The webhook signing secret, given inline or through an environment variable."""
        if "secret" in table and "secret_env" in table:
            raise self.error(
                f"{key}.secret_env",
                table["secret_env"],
                "give either 'secret' or 'secret_env', not both",
            )
        if "secret_env" in table:
            variable = self.string(f"{key}.secret_env", table["secret_env"])
            secret = self.env.get(variable, "")
            if not secret:
                raise self.error(
                    f"{key}.secret_env", variable, "the environment variable is not set or is empty"
                )
        elif "secret" in table:
            raw = table["secret"]
            if not isinstance(raw, str) or not raw:
                raise self.error(
                    f"{key}.secret", "***" if raw else raw, "expected a non-empty string"
                )
            secret = raw
        else:
            raise self.error(
                key,
                table.get("name"),
                "a webhook destination needs 'secret' or 'secret_env' (webhooks are signed)",
            )
        if secret.startswith("whsec_"):
            try:
                decoded = base64.b64decode(secret.removeprefix("whsec_") + "==")
            except (binascii.Error, ValueError) as exc:
                raise self.error(
                    f"{key}.secret",
                    "whsec_***",
                    "a 'whsec_' secret must be base64 after the prefix",
                ) from exc
            if not decoded:
                raise self.error(f"{key}.secret", "whsec_", "the secret is empty")
        return secret

    def products(self, raw: object) -> dict[str, int]:
        table = self.table("products", raw)
        found: dict[str, int] = {}
        for name, version in table.items():
            key = f"products.{name}"
            if not name.strip():
                raise self.error(key, name, "a product name must not be empty")
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise self.error(
                    key, version, "expected the current major version as a positive integer"
                )
            found[name] = version
        return found


def check_database_url(url: object, *, source: str, field: str) -> str:
    """A database URL SQLAlchemy can parse; ``source`` says where it came from."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not isinstance(url, str) or not url.strip():
        raise ConfigError(
            f"{source} = {url!r}: expected a non-empty database URL", field=field, value=url
        )
    try:
        make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(
            f"{source} = {url!r}: not a database URL such as "
            f"'sqlite:///sla-engine.db' or 'postgresql+psycopg://host/db'",
            field=field,
            value=url,
        ) from exc
    return url


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a missing, unreadable or malformed file is a ConfigError naming it."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: config file not found", field="config", value=str(path)
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path}: cannot read config file ({exc})", field="config", value=str(path)
        ) from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid TOML ({exc})", field="config", value=str(path)
        ) from exc


def load_config(
    path: str | Path | None = None,
    env: Mapping[str, str] = os.environ,
    database_url: str | None = None,
    *,
    calendars: Callable[[str], object] | None = None,
    stored_calendars: bool = False,
) -> ServiceConfig:
    """Load and validate the service config file (or the defaults when ``path`` is None).

    Database URL precedence: ``database_url`` argument (``--database-url``) >
    ``SLA_ENGINE_DATABASE_URL`` > ``[database].url`` > ``sqlite:///sla-engine.db``.
    With ``stored_calendars``, a policy may name a calendar that is no file (one stored in
    the database); the service refuses to start when it is not stored either.
    """
    doc: Mapping[str, object] = {}
    file = "<defaults>"
    resolved: Path | None = None
    if path is not None:
        resolved = Path(path)
        file = str(resolved)
        doc = read_toml(resolved)
    parser = _ConfigParser(file=file, env=env)
    parser.unknown_keys("", doc, _TOP_LEVEL_KEYS)
    file_url = parser.database_url(doc)
    destinations = parser.destinations(doc["destinations"]) if "destinations" in doc else {}
    stored: dict[str, str] | None = {} if stored_calendars else None
    policies = parse_policies(
        doc.get("policies"),
        file,
        destinations=destinations.keys(),
        calendars=calendars,
        stored=stored,
    )
    products = parser.products(doc["products"]) if "products" in doc else {}
    return ServiceConfig(
        database_url=_pick_database_url(database_url, env, file_url),
        destinations=MappingProxyType(destinations),
        policies=MappingProxyType(policies),
        products=MappingProxyType(products),
        path=resolved,
        stored_calendars=MappingProxyType(stored or {}),
    )


def _pick_database_url(explicit: str | None, env: Mapping[str, str], from_file: str | None) -> str:
    if explicit is not None:
        return check_database_url(explicit, source="--database-url", field="database_url")
    if env.get(DATABASE_URL_ENV):
        return check_database_url(
            env[DATABASE_URL_ENV], source=DATABASE_URL_ENV, field=DATABASE_URL_ENV
        )
    return from_file or DEFAULT_DATABASE_URL
