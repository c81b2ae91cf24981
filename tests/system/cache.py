"""Where the system tests keep what is slow to make (root file systems, VM images, wheels)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CACHE_ENV = "TICKET_SCANNER_SYSTEM_CACHE"
DEFAULT_CACHE = Path("/var/cache/ticket-scanner-system-test")


def cache_dir() -> Path:
    """The cache folder (outside the checkout, so a fresh clone reuses it); created if missing."""
    folder = Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def recipe_key(*parts: str | bytes) -> str:
    """A short hash of everything that decides what an image holds: change one, rebuild it."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]
