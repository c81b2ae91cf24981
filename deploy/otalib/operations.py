"""What an operator does to the repository: create it, add a release, steer a rollout, re-sign.

Each operation loads only the keys it needs, and ends by signing a new snapshot and timestamp,
so devices see its change atomically (see repo.py for the write order).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path

from tuf.api.metadata import Root, Snapshot, TargetFile, Targets, Timestamp

from deploy.otalib.errors import OtaError
from deploy.otalib.keys import ROLES, generate_keys, load_signer, refuse_keys_inside
from deploy.otalib.repo import FileRepository, copy_atomic, utc_now
from device.update.contract import ReleaseInfo, bundle_name

Expiry = Mapping[str, timedelta] | None


def init_repo(repo: Path, keys: Path, *, expiry: Expiry = None) -> Path:
    """New keys and version 1 of every role; returns the root file devices must trust."""
    refuse_keys_inside(keys, repo)
    metadata = repo / "metadata"
    if metadata.exists() and any(metadata.iterdir()):
        raise OtaError(f"{metadata}: a repository already exists here; refusing to overwrite it")
    signers = generate_keys(keys)
    files = FileRepository(repo, signers, expiry=expiry)
    with files.edit_root() as root:
        root.consistent_snapshot = True
        for role in ROLES:
            root.add_key(signers[role].public_key, role)
    for role in (Targets.type, Snapshot.type, Timestamp.type):
        with files.edit(role):
            pass
    files.targets_dir.mkdir(parents=True, exist_ok=True)
    return metadata / "1.root.json"


def open_repo(
    repo: Path, keys: Path, roles: Iterable[str], *, expiry: Expiry = None
) -> FileRepository:
    """The repository with the signers for ``roles``, each checked against its root."""
    refuse_keys_inside(keys, repo)
    unsigned = FileRepository(repo, {})
    unsigned.require()
    root = unsigned.root()
    signers = {role: load_signer(keys, role, root) for role in roles}
    return FileRepository(repo, signers, expiry=expiry)


def add_release(
    repo: Path, keys: Path, bundle: Path, info: ReleaseInfo, *, expiry: Expiry = None
) -> Path:
    """Add ``bundle`` as the target for ``info.version``; returns where it is stored."""
    files = open_repo(repo, keys, (Targets.type, Snapshot.type, Timestamp.type), expiry=expiry)
    name = bundle_name(info.version)
    if name in files.targets().targets:
        raise OtaError(f"version {info.version} is already published; publish a new version")
    target = TargetFile.from_file(name, str(bundle))
    target.unrecognized_fields["custom"] = info.to_custom()
    stored = files.target_file(target)
    copy_atomic(bundle, stored)  # the bundle first: no metadata ever names a missing file
    with files.edit_targets() as targets:
        targets.targets[name] = target
    files.do_snapshot()
    files.do_timestamp()
    return stored


def set_rollout(repo: Path, keys: Path, version: str, percent: int) -> None:
    """Change the share of devices that may install ``version`` (0 halts a rollout)."""
    if not 0 <= percent <= 100:
        raise OtaError(f"rollout must be 0 to 100 percent, got {percent}")
    files = open_repo(repo, keys, (Targets.type, Snapshot.type, Timestamp.type))
    name = bundle_name(version)
    with files.edit_targets() as targets:
        target = targets.targets.get(name)
        if target is None:
            raise OtaError(f"version {version} is not published")
        custom = dict(target.custom or {})
        custom["rollout"] = percent
        target.unrecognized_fields["custom"] = custom
    files.do_snapshot()
    files.do_timestamp()


def resign(
    repo: Path,
    keys: Path,
    *,
    roles: Iterable[str] = (),
    expiry: Expiry = None,
    now: datetime | None = None,
) -> list[str]:
    """Re-sign the timestamp, plus any role in ``roles`` and any targets or snapshot within
    half its period of expiring. Returns the roles signed anew. Run daily (cron)."""
    wanted = set(roles) | {Timestamp.type}
    unsigned = FileRepository(repo, {}, expiry=expiry)
    unsigned.require()
    moment = now or utc_now()
    for role, signed in ((Targets.type, unsigned.targets()), (Snapshot.type, unsigned.snapshot())):
        if signed.expires - moment < unsigned.expiry[role] / 2:
            wanted.add(role)
    if Targets.type in wanted:
        wanted.add(Snapshot.type)  # a new targets version needs a snapshot naming it
    files = open_repo(repo, keys, sorted(wanted), expiry=expiry)
    if Root.type in wanted:
        with files.edit_root():
            pass
    if Targets.type in wanted:
        with files.edit_targets():
            pass
    if Snapshot.type in wanted:
        files.do_snapshot(force=True)
    files.do_timestamp(force=True)
    return [role for role in ROLES if role in wanted]


def status(repo: Path) -> list[str]:
    """One line per role (version, expiry) and per release (rollout, platform, size)."""
    files = FileRepository(repo, {})
    files.require()
    lines = []
    for role, signed in (
        (Root.type, files.root()),
        (Targets.type, files.targets()),
        (Snapshot.type, files.snapshot()),
        (Timestamp.type, files.timestamp()),
    ):
        lines.append(f"{role:<9} v{signed.version:<4} expires {signed.expires:%Y-%m-%d %H:%M} UTC")
    for name, target in sorted(files.targets().targets.items()):
        try:
            info = ReleaseInfo.from_custom(target.custom)
        except ValueError:
            lines.append(f"{name}: not a release ({target.length} bytes)")
            continue
        lines.append(
            f"{info.version:<10} rollout {info.rollout:>3}%  {info.platform}  "
            f"python {info.python}  {target.length / 1e6:.1f} MB  built {info.created:%Y-%m-%d}"
        )
    return lines
