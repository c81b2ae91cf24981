"""systemd's notify protocol: READY once the scanner truly works, WATCHDOG while frames flow.

The unit is ``Type=notify`` with ``WatchdogSec=``. READY=1 is sent only after the config was
read, the display and outputs opened, and the camera delivered a frame that was decoded, so
``systemctl start`` (and the updater's health check) means "this release scans". WATCHDOG=1
is sent from the scan loop, and only while the camera keeps delivering frames: a loop that
spins on a dead camera is as useless as a hung one, and systemd should restart both.

No dependency: the protocol is one datagram to ``$NOTIFY_SOCKET``. Outside systemd (no
socket) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

FRAME_STALL_S = 10.0  # no frame for this long: stop feeding the watchdog


def _address(environ: Mapping[str, str]) -> str | None:
    path = environ.get("NOTIFY_SOCKET", "")
    if not path:
        return None
    # "@name" is Linux's abstract namespace, written with a leading NUL on the wire.
    return "\0" + path[1:] if path.startswith("@") else path


class Notifier:
    """``Notifier.from_environment()``, then ``ready()``, ``alive(...)`` and ``stopping()``."""

    def __init__(
        self,
        address: str | None,
        *,
        watchdog_s: float | None,
        send: Callable[[str, bytes], None] | None = None,
    ) -> None:
        self._address = address
        # Ping at half the interval, as sd_watchdog_enabled(3) advises.
        self._interval = watchdog_s / 2 if watchdog_s else None
        self._send = send or _send_datagram
        self._last_ping: float | None = None
        self._ready = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        usec = env.get("WATCHDOG_USEC", "")
        # WATCHDOG_PID names the process meant to ping; another process must stay quiet.
        mine = env.get("WATCHDOG_PID", str(os.getpid())) == str(os.getpid())
        watchdog_s = int(usec) / 1_000_000 if usec.isdigit() and mine else None
        return cls(_address(env), watchdog_s=watchdog_s)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def ready(self, status: str = "") -> None:
        """The scanner works: config read, outputs open, a camera frame decoded."""
        if not self._ready:
            self._ready = True
            self._notify(f"READY=1\nSTATUS={status or 'scanning'}")

    def alive(self, now: float, last_frame_at: float | None) -> None:
        """Called every loop pass: feed the watchdog if frames are still arriving."""
        if self._interval is None or not self._ready:
            return
        if last_frame_at is None or now - last_frame_at > FRAME_STALL_S:
            return  # the camera has stalled: let systemd's watchdog restart us
        if self._last_ping is None or now - self._last_ping >= self._interval:
            self._last_ping = now
            self._notify("WATCHDOG=1")

    def stopping(self) -> None:
        self._notify("STOPPING=1")

    def _notify(self, message: str) -> None:
        if self._address is None:
            return
        try:
            self._send(self._address, message.encode("ascii"))
        except OSError as error:  # systemd gone or socket unreadable: never stop the gate
            log.warning("sd_notify failed error=%s", error)


def _send_datagram(address: str, payload: bytes) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(payload)
