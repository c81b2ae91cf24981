"""``ticket-scanner update`` options; the defaults are a provisioned Pi's (see deploy/OTA.md).

Imported by device/cli.py to build --help, so it imports nothing heavy (no tuf here).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

INSTALL_ROOT = Path("/opt/ticket-scanner")
TRUSTED_ROOT = Path("/etc/ticket-scanner/ota-root.json")
URL_FILE = Path("/etc/ticket-scanner/ota-url")  # the repository URL, one line
ACTIVITY_FILE = Path("/var/lib/ticket-scanner/activity")
UNIT = "ticket-scanner.service"
RESTART = "systemctl restart ticket-scanner.service"
HEALTH = "systemctl is-active --quiet ticket-scanner.service"


class UsageError(ValueError):
    """A bad option value; reported like a config error (exit 2)."""


@dataclass(frozen=True)
class Settings:
    install_root: Path
    repo_url: str
    trusted_root: bytes
    activity_file: Path
    busy_window_s: float
    device_id: str
    restart: tuple[str, ...]
    health: tuple[str, ...]
    settle_s: float
    unit: str  # asked why it failed (its result, its last error line); "" asks nothing
    reserve_bytes: int
    python: Path  # the interpreter release venvs are made from


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--install-root",
        type=Path,
        default=INSTALL_ROOT,
        metavar="DIR",
        help=f"where releases live ({INSTALL_ROOT})",
    )
    parser.add_argument(
        "--repo-url",
        metavar="URL",
        help=f"the TUF repository (https); default: the line in {URL_FILE}",
    )
    parser.add_argument(
        "--trusted-root",
        type=Path,
        default=TRUSTED_ROOT,
        metavar="FILE",
        help=f"the root metadata this device trusts ({TRUSTED_ROOT})",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="one attempt, then exit 0 (updated or nothing to do), "
        "75 (try later) or 1 (failed); without it, check every --interval",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=3600.0,
        metavar="S",
        help="seconds between checks without --once (3600)",
    )
    parser.add_argument(
        "--activity-file",
        type=Path,
        default=ACTIVITY_FILE,
        metavar="FILE",
        help=f"touched by the scanner when a code is in view ({ACTIVITY_FILE})",
    )
    parser.add_argument(
        "--busy-window",
        type=float,
        default=60.0,
        metavar="S",
        help="do not restart within this long of the last code in view (60)",
    )
    parser.add_argument(
        "--device-id",
        default="",
        help="id for the rollout percentage (default: the Pi serial number)",
    )
    parser.add_argument(
        "--restart-command",
        default=RESTART,
        metavar="CMD",
        help=f"restarts the scanner ({RESTART!r})",
    )
    parser.add_argument(
        "--health-command",
        default=HEALTH,
        metavar="CMD",
        help=f"exit 0 when the scanner is healthy ({HEALTH!r})",
    )
    parser.add_argument(
        "--unit",
        default=UNIT,
        metavar="UNIT",
        help=f"the scanner's systemd unit, asked why it failed to start ({UNIT}; '' asks none)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=15.0,
        metavar="S",
        help="wait this long after a restart before the health check (15)",
    )
    parser.add_argument(
        "--reserve-mb",
        type=float,
        default=64.0,
        metavar="MB",
        help="free space to leave untouched on the install root's disk (64)",
    )
    parser.add_argument(
        "--python",
        type=Path,
        default=None,
        metavar="PATH",
        help="interpreter for release venvs (default: the one running this)",
    )


def handle(args: argparse.Namespace) -> int:
    """The ``update`` handler device/cli.py registers; tuf is imported only from here on."""
    from device.update.cli import run  # noqa: PLC0415

    return run(args)


def settings_from(args: argparse.Namespace) -> Settings:
    from device.update.source import check_repo_url  # noqa: PLC0415

    url = args.repo_url if args.repo_url is not None else _read_first_line(URL_FILE, "--repo-url")
    try:
        url = check_repo_url(url)
    except ValueError as error:
        raise UsageError(str(error)) from None
    try:
        trusted_root = args.trusted_root.read_bytes()
    except OSError as error:
        raise UsageError(
            f"{args.trusted_root}: cannot read the trusted root: {error.strerror}"
        ) from None
    for name in ("interval", "busy_window", "settle", "reserve_mb"):
        if getattr(args, name) < 0:
            raise UsageError(f"--{name.replace('_', '-')} must not be negative")
    try:
        restart, health = shlex.split(args.restart_command), shlex.split(args.health_command)
    except ValueError as error:
        raise UsageError(f"a command is not valid shell words: {error}") from None
    if not restart or not health:
        raise UsageError("--restart-command and --health-command must not be empty")
    return Settings(
        install_root=args.install_root,
        repo_url=url,
        trusted_root=trusted_root,
        activity_file=args.activity_file,
        busy_window_s=args.busy_window,
        device_id=_device_id(args.device_id),
        restart=tuple(restart),
        health=tuple(health),
        settle_s=args.settle,
        unit=args.unit,
        reserve_bytes=int(args.reserve_mb * 1e6),
        python=args.python or Path(getattr(sys, "_base_executable", sys.executable)),
    )


def _device_id(override: str) -> str:
    from device.identity import device_id  # noqa: PLC0415

    try:
        return device_id(override)
    except RuntimeError as error:
        raise UsageError(f"{error} (or pass --device-id)") from None


def _read_first_line(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip().splitlines()[0].strip()
    except (OSError, IndexError):
        raise UsageError(f"no repository URL: pass {option} or write it to {path}") from None
