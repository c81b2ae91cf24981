"""When not to update: a guest at the scanner, or a clock that cannot be right."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from device.update.contract import MANIFEST, parse_iso

# No release of this updater is older than this, so a clock before it is wrong (a Pi has no
# battery-backed clock; before NTP it can start in the past).
BUILD_FLOOR = datetime(2026, 11, 1, tzinfo=UTC)


def seconds_since_activity(activity_file: Path, now: datetime) -> float | None:
    """Seconds since the scanner last saw a code (the file's mtime); None if never."""
    try:
        mtime = os.stat(activity_file).st_mtime
    except FileNotFoundError:
        return None
    return now.timestamp() - mtime


def busy(activity_file: Path, now: datetime, window_s: float) -> bool:
    """A code was in view within ``window_s`` (either way: a clock step must not hide it)."""
    since = seconds_since_activity(activity_file, now)
    return since is not None and abs(since) < window_s


def clock_floor(release_dir: Path | None) -> datetime:
    """The earliest the clock can be: this updater's build floor, or when the running
    release was built, whichever is later."""
    floor = BUILD_FLOOR
    if release_dir is not None:
        try:
            created = parse_iso(json.loads((release_dir / MANIFEST).read_bytes())["created"])
        except (OSError, ValueError, KeyError, TypeError):
            return floor
        floor = max(floor, created)
    return floor
