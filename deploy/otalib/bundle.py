"""Build a release bundle: the app wheel at version V plus every dependency wheel, hash-locked.

``ticket-scanner-V.tar.gz`` holds::

    manifest.json      name, version, platform, python, created, installer, wheels
    requirements.txt   every wheel but pip, pinned with its sha256, so on the device
                       pip install --no-index --find-links wheels --require-hashes \
                           -r requirements.txt
                       installs exactly these files and nothing else
    wheels/*.whl       the app, its dependencies for the target platform, and pip itself
                       (the device runs pip from this wheel: its venvs are made without pip)

The app wheel is built from a copy of --source whose pyproject.toml says ``version = "V"``, so
the installed release's ``ticket-scanner --version`` prints V. Dependencies come from PyPI
(``pip download`` for the target platform) or, with a wheelhouse, from a folder only.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from datetime import datetime
from pathlib import Path

from deploy.otalib.errors import OtaError
from device.update.contract import (
    APP_NAME,
    MANIFEST,
    REQUIREMENTS,
    WHEELS,
    ReleaseInfo,
    bundle_name,
    iso,
)

# Raspberry Pi OS bookworm 64-bit: glibc 2.36, so any manylinux wheel up to 2_36 runs there.
DEFAULT_PLATFORM = "manylinux_2_36_aarch64"
DEFAULT_PYTHON = "3.11"  # bookworm's python3
# PEP 600: a manylinux_2_Y wheel runs on glibc 2.X for every Y <= X. The oldest manylinux wheels
# projects still ship are manylinux2014 (2_17); the two older aliases exist only for x86.
OLDEST_GLIBC_MINOR = 17
_LEGACY_ALIASES = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
_MANYLINUX_TAG = re.compile(r"manylinux_2_(?P<minor>[0-9]+)_(?P<arch>[a-z0-9_]+)")
PIP_TIMEOUT_S = 900
# Copying the source for the build skips what is not source and can be large or stale.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "__pycache__", "*.pyc", "*.egg-info",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis",
)  # fmt: skip
_WHEEL_NAME = re.compile(r"(?P<name>[A-Za-z0-9_.]+)-(?P<version>[^-]+)-.+\.whl")


def build_bundle(
    source: Path,
    info: ReleaseInfo,
    out_dir: Path,
    *,
    wheelhouse: Path | None = None,
) -> Path:
    """Build ``out_dir/ticket-scanner-V.tar.gz`` for ``info`` from the project in ``source``."""
    if not (source / "pyproject.toml").is_file():
        raise OtaError(f"{source}: no pyproject.toml (--source is the project folder)")
    if wheelhouse is not None and not wheelhouse.is_dir():
        raise OtaError(f"{wheelhouse}: no such wheelhouse folder")
    with tempfile.TemporaryDirectory(prefix="ota-build-") as work_name:
        work = Path(work_name)
        tree = work / "source"
        shutil.copytree(source, tree, ignore=_NOT_SOURCE, symlinks=True)
        set_version(tree / "pyproject.toml", info.version)
        app_wheel = _build_app_wheel(tree, work / "app", info.version)
        wheels = work / "bundle" / WHEELS
        _download(app_wheel, wheels, info, wheelhouse)
        bundle = out_dir / bundle_name(info.version)
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_bundle(bundle, wheels, info)
    return bundle


def set_version(pyproject: Path, version: str) -> None:
    """Set the static ``version`` in [project]; refuse projects without one."""
    lines = pyproject.read_text(encoding="utf-8").splitlines(keepends=True)
    table, replaced = "", 0
    for index, line in enumerate(lines):
        header = re.fullmatch(r"\s*\[([^\[\]]+)\]\s*", line)
        if header:
            table = header.group(1).strip()
        elif table == "project" and re.match(r"\s*version\s*=", line):
            lines[index] = f'version = "{version}"\n'
            replaced += 1
    if replaced != 1:
        raise OtaError(f"{pyproject}: expected one static `version = ...` in [project]")
    pyproject.write_text("".join(lines), encoding="utf-8")


def compatible_platforms(target: str) -> list[str]:
    """Every wheel platform tag that runs on ``target``, newest first.

    pip download takes the tags literally: given only ``manylinux_2_28_aarch64`` it refuses
    numpy 1.26, whose wheels say ``manylinux_2_17_aarch64.manylinux2014_aarch64``. So the
    target ``manylinux_2_36_aarch64`` becomes manylinux_2_36 ... manylinux_2_17 and
    manylinux2014 of that architecture (and, on x86, the older manylinux tags too).
    """
    match = _MANYLINUX_TAG.fullmatch(target)
    if match is None:
        return [target]  # linux_aarch64 or the like: only exactly that
    newest, arch = int(match["minor"]), match["arch"]
    oldest = 5 if arch in ("x86_64", "i686") else OLDEST_GLIBC_MINOR
    tags = []
    for minor in range(newest, oldest - 1, -1):
        tags.append(f"manylinux_2_{minor}_{arch}")
        if minor in _LEGACY_ALIASES and minor >= oldest:
            tags.append(f"{_LEGACY_ALIASES[minor]}_{arch}")
    return tags


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter's pip, arguments we built
            command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise OtaError(f"pip {args[0]} took over {PIP_TIMEOUT_S} s") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise OtaError(f"pip {args[0]} failed:\n{tail}")


def _build_app_wheel(tree: Path, out: Path, version: str) -> Path:
    # No build isolation: the build needs no network; setuptools comes from this venv.
    _pip(
        "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", str(out), str(tree)
    )
    built = sorted(out.glob("*.whl"))
    if len(built) != 1:
        raise OtaError(f"expected one app wheel from {tree}, got {[p.name for p in built]}")
    match = _WHEEL_NAME.fullmatch(built[0].name)
    if not match or _normal(match["name"]) != _normal(APP_NAME) or match["version"] != version:
        raise OtaError(f"{built[0].name}: not {APP_NAME} {version} (is --source this project?)")
    return built[0]


def _download(app_wheel: Path, wheels: Path, info: ReleaseInfo, wheelhouse: Path | None) -> None:
    """The app wheel and its dependency closure for the target, and pip to install them with."""
    # Without a wheelhouse pip uses its configured index (PyPI unless pip.conf says otherwise).
    where = ["--no-index", "--find-links", str(wheelhouse)] if wheelhouse is not None else []
    platforms = [arg for tag in compatible_platforms(info.platform) for arg in ("--platform", tag)]
    _pip(
        "download",
        "--quiet",
        "--only-binary=:all:",
        *platforms,
        "--python-version", info.python,
        "--implementation", "cp",
        "--abi", "cp" + info.python.replace(".", ""),
        "--dest", str(wheels),
        *where,
        str(app_wheel),
        "pip",
    )  # fmt: skip
    if not (wheels / app_wheel.name).exists():
        shutil.copy2(app_wheel, wheels / app_wheel.name)


def _write_bundle(bundle: Path, wheels: Path, info: ReleaseInfo) -> None:
    files = sorted(wheels.glob("*.whl"))
    installer = [p.name for p in files if _normal(_wheel_field(p, "name")) == "pip"]
    if not installer:
        raise OtaError("no pip wheel among the downloaded wheels (add one to the wheelhouse)")
    pinned = [
        f"{_wheel_field(p, 'name')}=={_wheel_field(p, 'version')} --hash=sha256:{_sha256(p)}\n"
        for p in files
        if p.name not in installer
    ]
    manifest = {
        "name": APP_NAME,
        "version": info.version,
        "platform": info.platform,
        "python": info.python,
        "created": iso(info.created),
        "installer": installer[0],
        "wheels": [p.name for p in files],
    }
    members: list[tuple[str, bytes | Path]] = [
        (MANIFEST, json.dumps(manifest, indent=2).encode() + b"\n"),
        (REQUIREMENTS, "".join(pinned).encode()),
        *((f"{WHEELS}/{p.name}", p) for p in files),
    ]
    temp = bundle.with_name(f".{bundle.name}.tmp")
    # Fixed times and owners: the same inputs give the same bytes (and the same hash).
    with (
        temp.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name, content in members:
            _add(tar, name, content, info.created)
    temp.replace(bundle)


def _add(tar: tarfile.TarFile, name: str, content: bytes | Path, created: datetime) -> None:
    data = content if isinstance(content, bytes) else content.read_bytes()
    member = tarfile.TarInfo(name)
    member.size, member.mode, member.mtime = len(data), 0o644, int(created.timestamp())
    tar.addfile(member, io.BytesIO(data))


def _wheel_field(path: Path, field: str) -> str:
    match = _WHEEL_NAME.fullmatch(path.name)
    if not match:
        raise OtaError(f"{path.name}: not a wheel file name")
    return match[field]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
