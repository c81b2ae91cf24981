"""Why a release did not come up, as the updater records it: the unit's result and the
scanner's own last error, asked of systemctl and journalctl (stand-ins here, first on PATH;
tests/system/test_vm.py asks the real ones)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from device.update.service import Service, last_error_line

BOILERPLATE = (
    "Job for ticket-scanner.service failed because the control process exited with error code.\n"
    'See "systemctl status ticket-scanner.service" and "journalctl -xeu ticket-scanner.service"'
    " for details."
)
SCANNER_LOG = (
    "INFO ticket_scanner: starting version 1.2.0\n"
    "ticket-scanner: config error: /etc/ticket-scanner/config.toml: [api] base_url: expected an"
    " https:// URL\n"
)


def _script(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """systemctl: restart fails with systemd's boilerplate, show says exit-code; journalctl
    prints the scanner's own lines and records how it was asked."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "log.txt").write_text(SCANNER_LOG)
    (tmp_path / "boilerplate.txt").write_text(BOILERPLATE)
    _script(
        bin_dir,
        "systemctl",
        f'case "$1" in\n'
        f"restart) cat {tmp_path}/boilerplate.txt >&2; exit 1 ;;\n"
        f'show) printf "Result=exit-code\\nExecMainStatus=2\\n" ;;\n'
        f"esac\n",
    )
    _script(bin_dir, "journalctl", f'echo "$@" > {tmp_path}/asked; cat {tmp_path}/log.txt\n')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path


def test_a_failed_restart_records_the_units_result_and_the_scanners_error(
    systemd: Path,
) -> None:
    service = Service(
        ["systemctl", "restart", "ticket-scanner.service"],
        ["true"],
        0,
        unit="ticket-scanner.service",
        wall_clock=lambda: 1_700_000_000.5,
    )
    problem = service.restart()
    assert problem == (
        "ticket-scanner.service did not start: result exit-code (status 2); the scanner said: "
        "ticket-scanner: config error: /etc/ticket-scanner/config.toml: [api] base_url: "
        "expected an https:// URL"
    )
    assert "systemctl status" not in problem
    # Only the unit's own processes' lines, and only since this restart.
    assert (systemd / "asked").read_text().split() == [
        "_SYSTEMD_UNIT=ticket-scanner.service",
        "--since=@1700000000",
        "--output=cat",
        "--no-pager",
        "--quiet",
    ]


def test_without_a_unit_the_commands_own_words_are_kept(systemd: Path) -> None:
    service = Service(["systemctl", "restart", "x.service"], ["true"], 0, unit="")
    problem = service.restart()
    assert problem is not None
    assert problem.startswith('restart failed (exit 1): See "systemctl status')


def test_an_unhealthy_release_is_explained_the_same_way(systemd: Path) -> None:
    service = Service(["true"], ["false"], 0, unit="ticket-scanner.service", sleep=lambda _: None)
    assert service.restart() is None
    assert service.unhealthy() == (
        "ticket-scanner.service is not running: result exit-code (status 2); the scanner said: "
        "ticket-scanner: config error: /etc/ticket-scanner/config.toml: [api] base_url: "
        "expected an https:// URL"
    )


@pytest.mark.parametrize(
    ("log", "line"),
    [
        (SCANNER_LOG, SCANNER_LOG.splitlines()[-1]),
        (
            'Traceback (most recent call last):\n  File "x", line 1\nRuntimeError: boom\n',
            "RuntimeError: boom",
        ),
        ("INFO a\nINFO b\n", "INFO b"),
        ("ERROR x: \x1b[2Jwiped\nINFO after\n", "ERROR x: \\x1b[2Jwiped"),
        ("", ""),
    ],
)
def test_the_line_quoted_is_the_last_error_made_safe(log: str, line: str) -> None:
    assert last_error_line(log) == line
