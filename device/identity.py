"""The device id sent with every scan: the Pi's serial number, unless the config overrides it."""

from __future__ import annotations

import re
from pathlib import Path

DEVICETREE_SERIAL = Path("/sys/firmware/devicetree/base/serial-number")
CPUINFO = Path("/proc/cpuinfo")
MACHINE_ID = Path("/etc/machine-id")
MACHINE_ID_PREFIX = "machine-id:"

_CPUINFO_SERIAL = re.compile(r"^Serial\s*:\s*([0-9A-Fa-f]+)\s*$", re.MULTILINE)


class NoDeviceIdError(RuntimeError):
    """Nothing on this machine names it (an image before first boot, a container)."""


def device_id(
    override: str = "",
    *,
    devicetree_serial: Path | None = None,
    cpuinfo: Path | None = None,
    machine_id: Path | None = None,
) -> str:
    """The id this scanner reports as ``device``: ``device_id()`` -> "10000000a1b2c3d4"."""
    if override:
        return override
    # Looked up at call time, so a test can point the module's paths elsewhere.
    devicetree_serial = devicetree_serial or DEVICETREE_SERIAL
    cpuinfo, machine_id = cpuinfo or CPUINFO, machine_id or MACHINE_ID
    serial = _read(devicetree_serial).rstrip("\x00").strip()
    if serial:
        return serial
    match = _CPUINFO_SERIAL.search(_read(cpuinfo))
    if match and match.group(1).strip("0"):
        return match.group(1).lower()
    fallback = _read(machine_id).strip()
    if fallback:
        # Not a Pi (or a Pi that hides its serial): say so, so nobody mistakes it for a serial.
        return MACHINE_ID_PREFIX + fallback
    raise NoDeviceIdError(
        f"no device id: no Raspberry Pi serial ({devicetree_serial}, Serial in {cpuinfo}) and "
        f"{machine_id} is empty or missing; set [device] id in the config"
    )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""
