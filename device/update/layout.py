"""The install root on the device, and the few operations on its shape.

INSTALL/current -> releases/1.1.0     relative symlink; the service runs current/venv
INSTALL/releases/1.1.0/               manifest.json, requirements.txt, wheels/, venv/, .ready
INSTALL/releases/1.0.0/               the previous release, kept for a rollback
INSTALL/releases/.1.2.0.partial/      an unpack under way (deleted by the next run)
INSTALL/state.json                    see state.py
INSTALL/tuf/                          TUF metadata cache (rollback protection lives here)
INSTALL/downloads/                    a verified bundle waiting to be unpacked
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from device.update.atomic import write_atomic
from device.update.contract import is_version
from device.update.outcome import TryLater

_log = logging.getLogger(__name__)
READY = ".ready"


class InstallRoot:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.releases = path / "releases"
        self.current = path / "current"
        self.state_file = path / "state.json"
        self.metadata = path / "tuf"
        self.downloads = path / "downloads"

    def create(self) -> None:
        for folder in (self.path, self.releases, self.metadata, self.downloads):
            folder.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One updater at a time (TUF's cache and the releases are not shared safely)."""
        with (self.path / ".lock").open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise TryLater("another update is running") from None
            yield

    def release(self, version: str) -> Path:
        return self.releases / version

    def partial(self, version: str) -> Path:
        return self.releases / f".{version}.partial"

    def live(self) -> str | None:
        """The version `current` points at, if it points at a release that exists."""
        try:
            target = os.readlink(self.current)
        except OSError:
            return None
        parts = Path(target).parts
        if len(parts) != 2 or parts[0] != "releases" or not is_version(parts[1]):
            _log.warning("%s points at %s, not at a release", self.current, target)
            return None
        return parts[1] if self.release(parts[1]).is_dir() else None

    def link_target(self, version: str) -> str:
        return f"releases/{version}"

    def is_ready(self, version: str) -> bool:
        return (self.release(version) / READY).is_file()

    def mark_ready(self, version: str) -> None:
        # Everything the build wrote must be on the card before anything may point at it.
        os.sync()
        write_atomic(self.release(version) / READY, b"built and self-tested\n")

    def installed(self) -> list[str]:
        if not self.releases.is_dir():
            return []
        return sorted(p.name for p in self.releases.iterdir() if is_version(p.name))

    def clean_strays(self) -> list[str]:
        """What a killed run leaves behind: half unpacks, half deletes, a temporary link."""
        removed = []
        stray_link = self.path / f".{self.current.name}.tmp"
        if stray_link.is_symlink():
            stray_link.unlink()
            removed.append(stray_link.name)
        if self.releases.is_dir():
            for entry in self.releases.iterdir():
                if entry.name.startswith(".") and entry.name.endswith((".partial", ".deleting")):
                    shutil.rmtree(entry)
                    removed.append(entry.name)
        return removed
