"""PURE: which product versions are supported and which are legacy.

The seed policy: "products become legacy after there have been two subsequent major
releases". With current major M (from the config's `[products]`), M and M-1 are supported;
M-2 and older are legacy: no minor updates, but support tickets are still accepted (and the
ticket is flagged).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from sla_engine.errors import InputError, NotFound

SUPPORTED_MAJORS = 2
_VERSION = re.compile(r"^(\d{1,6})(?:\.(?:\d{1,9}|x|X))*$")


@dataclass(frozen=True)
class VersionStatus:
    """What the support policy says about one version of a product."""

    product: str
    version: str
    major: int
    current_major: int
    status: Literal["supported", "legacy"]

    @property
    def legacy(self) -> bool:
        return self.status == "legacy"

    @property
    def minor_updates(self) -> bool:
        return not self.legacy

    @property
    def tickets_accepted(self) -> bool:
        return True

    def to_json(self) -> dict[str, object]:
        return {
            "product": self.product,
            "version": self.version,
            "major": self.major,
            "current_major": self.current_major,
            "status": self.status,
            "minor_updates": self.minor_updates,
            "tickets_accepted": self.tickets_accepted,
        }


def major_of(version: str, field: str = "version") -> int:
    """The major number of `12`, `12.x`, `12.3` or `11.0.7`; InputError for anything else."""
    text = version.strip() if isinstance(version, str) else version
    match = _VERSION.match(text) if isinstance(text, str) else None
    if match is None:
        raise InputError(
            f"{field}: {version!r} is not a product version (expected e.g. 12, 12.x or 11.0.7)",
            field=field,
            value=version,
        )
    major = int(match.group(1))
    if major < 1:
        raise InputError(
            f"{field}: {version!r} has major version 0; major versions start at 1",
            field=field,
            value=version,
        )
    return major


def find_product(product: str, current_majors: Mapping[str, int]) -> tuple[str, int]:
    """The configured (name, current major) for `product`, matched case-insensitively."""
    for name, major in current_majors.items():
        if name.casefold() == product.strip().casefold():
            return name, major
    known = ", ".join(sorted(current_majors)) or "none configured"
    raise NotFound(
        f"product {product!r} is not a known product (known: {known})",
        field="product",
        value=product,
    )


def version_status(product: str, version: str, current_majors: Mapping[str, int]) -> VersionStatus:
    """Supported or legacy, judged from the product's current major version."""
    name, current = find_product(product, current_majors)
    major = major_of(version)
    if major > current:
        raise InputError(
            f"version {version!r} of {name} is newer than its current major version {current}",
            field="version",
            value=version,
        )
    status: Literal["supported", "legacy"] = (
        "supported" if current - major < SUPPORTED_MAJORS else "legacy"
    )
    return VersionStatus(name, version.strip(), major, current, status)


def legacy_flag(
    product: str | None, version: str | None, current_majors: Mapping[str, int]
) -> bool | None:
    """The ticket's `legacy` flag: None when the product or version is not given or not known.

    A ticket names what the customer runs; an unconfigured product is not a reason to refuse
    a ticket (tickets are accepted for every version), so it is left unflagged. A malformed
    or future version is bad input and raises InputError.
    """
    if not product or not version:
        return None
    try:
        return version_status(product, version, current_majors).legacy
    except NotFound:
        major_of(version)
        return None
