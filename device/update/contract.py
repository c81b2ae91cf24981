"""What the publisher (``deploy/ota``) and the device agree on: names, versions, metadata fields.

A release is one TUF target, ``ticket-scanner-<version>.tar.gz``, whose signed custom metadata
says which version, platform and Python it is for, when it was built and what share of devices
may take it. Both sides import this module, so the two can never disagree on a field name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

APP_NAME = "ticket-scanner"
BUNDLE_SUFFIX = ".tar.gz"
MANIFEST = "manifest.json"
REQUIREMENTS = "requirements.txt"
WHEELS = "wheels"

# Plain dotted numbers only: they order without a parser the device would have to ship, and
# they are safe as directory names (releases/<version>).
_VERSION = re.compile(r"[0-9]{1,6}(\.[0-9]{1,6}){1,3}")


def parse_version(text: str) -> tuple[int, ...]:
    """``parse_version("1.10.2")`` -> (1, 10, 2); ValueError for anything else."""
    if not isinstance(text, str) or not _VERSION.fullmatch(text):
        raise ValueError(f"not a release version (digits and dots, e.g. 1.4.0): {text!r}")
    return tuple(int(part) for part in text.split("."))


def is_version(text: str) -> bool:
    try:
        parse_version(text)
    except ValueError:
        return False
    return True


def bundle_name(version: str) -> str:
    parse_version(version)
    return f"{APP_NAME}-{version}{BUNDLE_SUFFIX}"


def in_rollout(device_id: str, version: str, percent: int) -> bool:
    """Deterministic per device and release: the same device always gets the same answer,
    and a raised percentage only ever adds devices (hash(device, version) % 100 < percent)."""
    digest = hashlib.sha256(f"{device_id}\n{version}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < percent


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class ReleaseInfo:
    """A release as the signed target metadata (``custom``) describes it."""

    version: str
    platform: str
    python: str
    created: datetime
    rollout: int

    def to_custom(self) -> dict[str, Any]:
        return {
            "name": APP_NAME,
            "version": self.version,
            "platform": self.platform,
            "python": self.python,
            "created": iso(self.created),
            "rollout": self.rollout,
        }

    @classmethod
    def from_custom(cls, custom: Any) -> ReleaseInfo:
        """Raise ValueError unless ``custom`` describes a release completely and sanely."""
        if not isinstance(custom, dict) or custom.get("name") != APP_NAME:
            raise ValueError("not a ticket-scanner release")
        text = {key: custom.get(key) for key in ("version", "platform", "python", "created")}
        if not all(isinstance(value, str) for value in text.values()):
            raise ValueError("version, platform, python and created must be strings")
        rollout = custom.get("rollout")
        if not (isinstance(rollout, int) and not isinstance(rollout, bool) and 0 <= rollout <= 100):
            raise ValueError(f"rollout must be a whole percentage, got {rollout!r}")
        parse_version(str(text["version"]))
        return cls(
            version=str(text["version"]),
            platform=str(text["platform"]),
            python=str(text["python"]),
            created=parse_iso(str(text["created"])),
            rollout=rollout,
        )
