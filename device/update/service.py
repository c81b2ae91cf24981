"""The scanner service, through two commands the operator (or a test) can replace.

Defaults for a provisioned Pi: ``systemctl restart ticket-scanner.service`` and
``systemctl is-active --quiet ticket-scanner.service`` after a settle time, which catches a
release that starts and then crashes (systemd restarts it, so it is not active).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence

from device.update.text import one_line

RESTART_TIMEOUT_S = 120
HEALTH_TIMEOUT_S = 60


class Service:
    def __init__(
        self,
        restart: Sequence[str],
        health: Sequence[str],
        settle_s: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._restart, self._health = list(restart), list(health)
        self._settle_s, self._sleep = settle_s, sleep

    def restart(self) -> str | None:
        """None if the restart command succeeded, else why not."""
        return _run(self._restart, RESTART_TIMEOUT_S, "restart")

    def unhealthy(self) -> str | None:
        """None once the service is healthy after settling, else why not."""
        self._sleep(self._settle_s)
        return _run(self._health, HEALTH_TIMEOUT_S, "health check")


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
