"""A TUF repository as static files that any HTTPS host can serve.

Layout (consistent snapshots, as python-tuf's ngclient fetches them)::

    REPO/metadata/1.root.json, 2.root.json ...   every root version (devices walk them in order)
    REPO/metadata/N.targets.json, N.snapshot.json every version, so a device mid-update never
                                                  sees a mix of old and new files
    REPO/metadata/timestamp.json                  the one file that changes in place
    REPO/metadata/root.json, targets.json, snapshot.json   the newest copies, for people and tools
    REPO/targets/<sha256>.ticket-scanner-<V>.tar.gz

Every file is written to a temporary name and renamed, and a publish writes bundle, targets,
snapshot, then timestamp: an upload or a crash at any point leaves a repository that devices
read as either the old state or the new one.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from securesystemslib.signer import Signer
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Signed,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer
from tuf.repository import Repository

from deploy.otalib.errors import OtaError
from device.update.atomic import fsync_dir, write_atomic

# Timestamp short: a frozen or replayed repository is noticed within a day (the publishing
# host re-signs it daily: `deploy/ota resign`). Targets and snapshot change with releases.
# Root is the long-lived trust anchor the devices were provisioned with.
EXPIRY: Mapping[str, timedelta] = {
    Root.type: timedelta(days=365),
    Targets.type: timedelta(days=90),
    Snapshot.type: timedelta(days=30),
    Timestamp.type: timedelta(days=1),
}
_NEW: Mapping[str, Callable[[], Signed]] = {
    Root.type: Root,
    Targets.type: Targets,
    Snapshot.type: Snapshot,
    Timestamp.type: Timestamp,
}
_ROOT_FILE = re.compile(r"([0-9]+)\.root\.json")
_SERIALIZER = JSONSerializer(compact=False)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class FileRepository(Repository):
    """tuf.repository.Repository over REPO/metadata and REPO/targets.

    ``signers`` holds the keys this operation may use; signing a role without its key is an
    OtaError naming the key. ``expiry`` overrides the periods (tests make expired metadata).
    """

    def __init__(
        self,
        path: Path,
        signers: Mapping[str, Signer],
        *,
        expiry: Mapping[str, timedelta] | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.path = path
        self.metadata = path / "metadata"
        self.targets_dir = path / "targets"
        self.signers = dict(signers)
        self.expiry = {**EXPIRY, **(expiry or {})}
        self.now = now

    # -- tuf.repository.Repository ------------------------------------------------------------

    def open(self, role: str) -> Metadata[Any]:
        file = self._latest_root() if role == Root.type else self.metadata / f"{role}.json"
        if file is None or not file.exists():
            md: Metadata[Any] = Metadata(_NEW[role]())
            md.signed.version = 0  # close() bumps it to 1
            return md
        return Metadata.from_file(str(file))

    def close(self, role: str, md: Metadata[Any]) -> None:
        signer = self.signers.get(role)
        if signer is None:
            raise OtaError(f"this needs the {role} key, which was not loaded")
        md.signed.version += 1
        md.signed.expires = self.now() + self.expiry[role]
        md.signatures.clear()
        md.sign(signer, append=True)
        self._verify(role, md)
        data = md.to_bytes(_SERIALIZER)
        version = md.signed.version
        if role == Timestamp.type:
            names = ["timestamp.json"]
        else:
            names = [f"{version}.{role}.json", f"{role}.json"]  # versioned first: it is served
        self.metadata.mkdir(parents=True, exist_ok=True)
        for name in names:
            write_atomic(self.metadata / name, data)

    @property
    def targets_infos(self) -> dict[str, MetaFile]:
        return {"targets.json": MetaFile(version=self.targets().version)}

    @property
    def snapshot_info(self) -> MetaFile:
        return MetaFile(version=self.snapshot().version)

    # -- helpers -----------------------------------------------------------------------------

    def exists(self) -> bool:
        return self._latest_root() is not None

    def require(self) -> None:
        if not self.exists():
            raise OtaError(f"{self.path}: no TUF repository here (make one with init-repo)")

    def _latest_root(self) -> Path | None:
        if not self.metadata.is_dir():
            return None
        versions = [
            int(match.group(1))
            for match in (_ROOT_FILE.fullmatch(p.name) for p in self.metadata.iterdir())
            if match
        ]
        return self.metadata / f"{max(versions)}.root.json" if versions else None

    def _verify(self, role: str, md: Metadata[Any]) -> None:
        """Write only what a device would accept: a last check against the trusted root."""
        if role == Root.type:
            previous = self.root() if self.exists() else None
            result = md.signed.get_root_verification_result(
                previous, md.signed_bytes, md.signatures
            )
        else:
            result = self.root().get_verification_result(role, md.signed_bytes, md.signatures)
        if not result:
            raise OtaError(f"{role} metadata failed to verify with the repository's root")

    def target_file(self, info: TargetFile) -> Path:
        """Where a target is stored: its sha256 prefixes the name (consistent snapshots)."""
        return self.targets_dir / f"{info.hashes['sha256']}.{info.path}"


def copy_atomic(source: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o644)  # served as is; mkstemp's 0600 would hide it from a web server
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
