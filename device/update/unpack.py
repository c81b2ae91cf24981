"""Unpack a verified bundle into releases/.V.partial, then rename it to releases/V.

The bundle's hash was checked against signed metadata, but it is still read defensively: only
manifest.json, requirements.txt and wheels/*.whl, regular files, no links, bounded sizes. Each
file is fsynced before the rename, so releases/V only ever names a complete, durable tree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device.update.atomic import fsync_dir
from device.update.contract import MANIFEST, REQUIREMENTS, WHEELS, ReleaseInfo
from device.update.outcome import ReleaseBroken

MAX_MEMBERS = 2000
MAX_MEMBER_BYTES = 1 << 30
_WHEEL = re.compile(rf"{WHEELS}/[A-Za-z0-9_.+-]+\.whl")


@dataclass(frozen=True)
class Manifest:
    version: str
    platform: str
    python: str
    installer: str  # the pip wheel's file name
    wheels: tuple[str, ...]


def unpacked_size(bundle: Path) -> int:
    """Bytes the bundle's files take unpacked; ReleaseBroken if it holds anything else."""
    try:
        with tarfile.open(bundle, "r:gz") as tar:
            members = tar.getmembers()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ReleaseBroken(f"bundle unreadable: {error}") from None
    if len(members) > MAX_MEMBERS:
        raise ReleaseBroken(f"bundle has {len(members)} files; at most {MAX_MEMBERS}")
    for member in members:
        _check_member(member)
    return sum(member.size for member in members)


def _check_member(member: tarfile.TarInfo) -> None:
    allowed = member.name in (MANIFEST, REQUIREMENTS) or _WHEEL.fullmatch(member.name)
    if not (allowed and member.isfile() and 0 <= member.size <= MAX_MEMBER_BYTES):
        raise ReleaseBroken(f"bundle holds an unexpected entry: {member.name!r}")


def unpack(bundle: Path, partial: Path, final: Path, *, after_first: Callable[[], None]) -> None:
    """Extract into ``partial`` (emptied first), fsync everything, rename to ``final``."""
    if partial.exists():
        shutil.rmtree(partial)
    (partial / WHEELS).mkdir(parents=True)
    with tarfile.open(bundle, "r:gz") as tar:
        for index, member in enumerate(tar):
            _check_member(member)
            source = tar.extractfile(member)
            if source is None:
                raise ReleaseBroken(f"bundle entry {member.name!r} has no data")
            try:
                out = (partial / member.name).open("xb")
            except FileExistsError:
                raise ReleaseBroken(f"bundle holds {member.name!r} twice") from None
            with source, out:
                shutil.copyfileobj(source, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
            if index == 0:
                after_first()
    fsync_dir(partial / WHEELS)
    fsync_dir(partial)
    os.replace(partial, final)
    fsync_dir(final.parent)


def read_manifest(release: Path, expected: ReleaseInfo) -> Manifest:
    """The manifest, checked against what the signed metadata said this release is."""
    try:
        raw: Any = json.loads((release / MANIFEST).read_bytes())
        manifest = Manifest(
            version=str(raw["version"]),
            platform=str(raw["platform"]),
            python=str(raw["python"]),
            installer=str(raw["installer"]),
            wheels=tuple(str(name) for name in raw["wheels"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ReleaseBroken(f"manifest.json unreadable: {error}") from None
    said = (expected.version, expected.platform, expected.python)
    if (manifest.version, manifest.platform, manifest.python) != said:
        raise ReleaseBroken(
            f"manifest says {manifest.version}/{manifest.platform}/Python {manifest.python}, "
            f"the signed metadata {'/'.join(said[:2])}/Python {said[2]}"
        )
    if not (release / WHEELS / manifest.installer).is_file():
        raise ReleaseBroken(f"installer {manifest.installer!r} missing from wheels/")
    return manifest
