"""The pure legacy-version rule: with current major M, M and M-1 are supported, older legacy."""

from __future__ import annotations

import pytest

from sla_engine.core.products import legacy_flag, major_of, version_status
from sla_engine.errors import InputError, NotFound

CURRENT = {"SmarterMail": 12, "SmarterStats": 2}


@pytest.mark.parametrize(
    ("product", "version", "status"),
    [
        ("SmarterMail", "12", "supported"),
        ("SmarterMail", "12.x", "supported"),
        ("smartermail", "11.0.7", "supported"),
        ("SmarterMail", "10", "legacy"),
        ("SmarterMail", "1", "legacy"),
        ("SmarterStats", "1.9", "supported"),
    ],
)
def test_supported_and_legacy(product: str, version: str, status: str) -> None:
    answer = version_status(product, version, CURRENT)
    assert answer.status == status
    assert answer.minor_updates is (status == "supported")
    assert answer.tickets_accepted is True
    assert answer.to_json()["status"] == status


@pytest.mark.parametrize("version", ["", "x", "12.", ".12", "12..1", "v12", "0", "0.9", "12 1"])
def test_bad_versions_name_the_field(version: str) -> None:
    with pytest.raises(InputError) as caught:
        major_of(version)
    assert caught.value.field == "version"


def test_a_version_newer_than_the_current_major_is_refused() -> None:
    with pytest.raises(InputError) as caught:
        version_status("SmarterMail", "13", CURRENT)
    assert caught.value.field == "version"


def test_an_unknown_product_is_not_found() -> None:
    with pytest.raises(NotFound) as caught:
        version_status("SmarterPaint", "3", CURRENT)
    assert caught.value.field == "product" and caught.value.value == "SmarterPaint"


def test_the_ticket_flag() -> None:
    assert legacy_flag("SmarterMail", "10.3", CURRENT) is True
    assert legacy_flag("SmarterMail", "11", CURRENT) is False
    assert legacy_flag("Unlisted", "3", CURRENT) is None
    assert legacy_flag("SmarterMail", None, CURRENT) is None
    assert legacy_flag(None, "10", CURRENT) is None
    with pytest.raises(InputError):
        legacy_flag("Unlisted", "three", CURRENT)
