"""Which release this device should run next: the newest one above the running version that is
built for this platform and Python, not marked bad here, and whose rollout includes this device.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from device.update.contract import in_rollout, parse_version
from device.update.source import Release

_MANYLINUX = re.compile(r"manylinux_([0-9]+)_([0-9]+)_([a-z0-9_]+)")
_LINUX = re.compile(r"linux_([a-z0-9_]+)")


@dataclass(frozen=True)
class Device:
    id: str
    machine: str  # platform.machine(): aarch64 on a 64-bit Pi OS
    glibc: tuple[int, int]  # (0, 0) when not glibc
    python: str  # "3.11"

    @classmethod
    def this(cls, device_id: str, python: str) -> Device:
        name, version = platform.libc_ver()
        numbers = (
            tuple(int(n) for n in re.findall(r"[0-9]+", version)[:2]) if name == "glibc" else ()
        )
        glibc = (numbers[0], numbers[1]) if len(numbers) == 2 else (0, 0)
        return cls(device_id, platform.machine(), glibc, python)


def runs_here(tag: str, device: Device) -> bool:
    """Whether wheels for platform ``tag`` run on ``device`` (``any``: pure Python)."""
    if tag == "any":
        return True
    manylinux = _MANYLINUX.fullmatch(tag)
    if manylinux:
        needs = (int(manylinux.group(1)), int(manylinux.group(2)))
        return manylinux.group(3) == device.machine and device.glibc >= needs
    linux = _LINUX.fullmatch(tag)
    return linux is not None and linux.group(1) == device.machine


def choose(
    releases: Iterable[Release],
    *,
    running: str | None,
    bad: Mapping[str, str],
    device: Device,
) -> tuple[Release | None, list[str]]:
    """The release to install (or None) and why the newer ones were passed over."""
    floor = parse_version(running) if running else ()
    passed_over = []
    eligible = []
    for release in sorted(releases, key=lambda r: parse_version(r.version), reverse=True):
        info = release.info
        if parse_version(info.version) <= floor:
            continue
        why = ""
        if info.version in bad:
            why = f"marked bad: {bad[info.version]}"
        elif not runs_here(info.platform, device):
            why = f"built for {info.platform}, this is {device.machine} glibc {device.glibc}"
        elif info.python != device.python:
            why = f"built for Python {info.python}, this is {device.python}"
        elif not in_rollout(device.id, info.version, info.rollout):
            why = f"rollout at {info.rollout}% does not include this device yet"
        if why:
            passed_over.append(f"{info.version}: {why}")
        else:
            eligible.append(release)
    return (eligible[0] if eligible else None), passed_over
