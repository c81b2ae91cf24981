"""Where the figures were measured: CPU, Python, decoder libraries, date and git commit."""

from __future__ import annotations

import ctypes
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from pyzbar import zbar_library

from bench import REPO


@dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int
    python: str
    zxing_cpp: str
    pyzbar: str
    zbar: str
    date: str
    git_commit: str


def describe() -> Machine:
    return Machine(
        cpu=cpu_model(),
        cores=os.cpu_count() or 0,
        python=platform.python_version(),
        zxing_cpp=metadata.version("zxing-cpp"),
        pyzbar=metadata.version("pyzbar"),
        zbar=zbar_version(),
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        git_commit=git_commit(),
    )


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """x86 names the CPU in ``model name``; a Pi's kernel gives the board in ``Model``."""
    fields: dict[str, str] = {}
    for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields.get("model name") or fields.get("Model") or platform.machine()


def zbar_version() -> str:
    """The ZBar library's own version, asked through the library pyzbar loaded."""
    library, _dependencies = zbar_library.load()
    parts = [ctypes.c_uint(), ctypes.c_uint(), ctypes.c_uint()]
    # ZBar 0.22+ takes (major, minor, patch); older ones read two and ignore the third.
    library.zbar_version(*(ctypes.byref(part) for part in parts))
    return ".".join(str(part.value) for part in parts)


def git_commit() -> str:
    """HEAD's hash, with "+changes" when the work tree differs from it."""
    git = shutil.which("git")
    if git is None:
        return "unknown (git is not installed)"

    def run(*args: str) -> str:
        done = subprocess.run(  # noqa: S603 - git itself, fixed arguments
            [git, *args], cwd=REPO, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip())
        return done.stdout.strip()

    try:
        head = run("rev-parse", "HEAD")
        dirty = run("status", "--porcelain", "--untracked-files=no")
    except RuntimeError as error:
        return f"unknown (git: {error})"
    return head + ("+changes" if dirty else "")
