"""The scanner service, through two commands the operator (or a test) can replace.

Defaults for a provisioned Pi: ``systemctl restart ticket-scanner.service`` and
``systemctl is-active --quiet ticket-scanner.service`` after a settle time, which catches a
release that starts and then crashes (systemd restarts it, so it is not active).

When either fails, the reason recorded is the unit's own: its result as systemd saw it
(``exit-code``, ``timeout``, ``watchdog``…) and the scanner's last error line in the journal
since the restart, not systemctl's "See systemctl status …" boilerplate.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Sequence

from device.update.text import one_line

RESTART_TIMEOUT_S = 120
HEALTH_TIMEOUT_S = 60


QUERY_TIMEOUT_S = 20
# A line worth quoting from the scanner's log: an error it reported, or a traceback's last line.
_ERROR_LINE = re.compile(r"(?i)\b(error|exception|traceback|failed|fatal)\b|^[A-Za-z_.]+Error: ")


class Service:
    def __init__(
        self,
        restart: Sequence[str],
        health: Sequence[str],
        settle_s: float,
        sleep: Callable[[float], None] = time.sleep,
        *,
        unit: str = "",
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._restart, self._health = list(restart), list(health)
        self._settle_s, self._sleep = settle_s, sleep
        self._unit, self._wall_clock = unit, wall_clock
        self._restarted_at = 0.0

    def restart(self) -> str | None:
        """None if the restart command succeeded, else why not."""
        self._restarted_at = self._wall_clock()
        return self._explained(_run(self._restart, RESTART_TIMEOUT_S, "restart"), "restart")

    def unhealthy(self) -> str | None:
        """None once the service is healthy after settling, else why not."""
        self._sleep(self._settle_s)
        return self._explained(_run(self._health, HEALTH_TIMEOUT_S, "health check"), "health")

    def _explained(self, problem: str | None, what: str) -> str | None:
        """``problem`` as the unit tells it, where ``unit`` is set and systemd knows more."""
        if problem is None or not self._unit:
            return problem
        cause = unit_failure(self._unit, since=self._restarted_at)
        if cause is None:
            return problem
        verb = "did not start" if what == "restart" else "is not running"
        return f"{self._unit} {verb}: {cause}"


def unit_failure(unit: str, *, since: float) -> str | None:
    """``result exit-code (status 1); the scanner said: …`` for ``unit``; None if unknown.

    The result comes from ``systemctl show``; the line from the journal entries of the unit's
    own processes (not systemd's messages about it) logged since ``since`` (a Unix time).
    """
    shown = _output(["systemctl", "show", "--property=Result,ExecMainStatus", unit])
    fields = dict(line.partition("=")[::2] for line in (shown or "").splitlines())
    result, status = fields.get("Result", ""), fields.get("ExecMainStatus", "")
    journal = _output(
        ["journalctl", f"_SYSTEMD_UNIT={unit}", f"--since=@{int(since)}",
         "--output=cat", "--no-pager", "--quiet"]
    )  # fmt: skip
    said = last_error_line(journal or "")
    if not result or (result == "success" and not said):
        return None
    cause = f"result {result}" + (f" (status {status})" if status not in ("", "0") else "")
    return cause + (f"; the scanner said: {said}" if said else "")


def last_error_line(log: str) -> str:
    """The last line of ``log`` that reports an error, else its last line; shortened."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if _ERROR_LINE.search(line)]
    return one_line((errors or lines or [""])[-1], 200)


def _output(command: list[str]) -> str | None:
    try:
        done = subprocess.run(  # noqa: S603 - systemd's own tools, fixed arguments
            command, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _run(command: Sequence[str], timeout_s: float, what: str) -> str | None:
    try:
        done = subprocess.run(  # noqa: S603 - the operator's configured command
            command, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        return f"{what} took over {timeout_s:g} s"
    except OSError as error:
        return f"{what} could not run {command[0]!r}: {error.strerror}"
    if done.returncode != 0:
        detail = one_line(done.stderr or done.stdout)
        return f"{what} failed (exit {done.returncode})" + (f": {detail}" if detail else "")
    return None
