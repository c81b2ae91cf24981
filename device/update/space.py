"""Free space checks, so an update never fills the card the scan journal lives on."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from device.update.outcome import Failed

# Downloading holds the spooled copy and the verified copy at once.
DOWNLOAD_FACTOR = 2
# Unpacked wheels (about the bundle's size again) plus the venv built from them, which is
# larger than the compressed wheels: the real app's 30 MB bundle became 30 MB of wheels and a
# 117 MB venv (x86-64, measured). 6x leaves the reserve untouched with some margin.
UNPACK_FACTOR = 6

FreeSpace = Callable[[Path], int]


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free  # f_bavail: what is left above the root reserve


def require(path: Path, needed: int, what: str, free: FreeSpace = free_bytes) -> None:
    available = free(path)
    if available < needed:
        raise Failed(
            f"not enough free space on {path} to {what}: needs {_mb(needed)}, "
            f"{_mb(available)} free; nothing was changed"
        )


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
