"""The product's own scan loop, built by ``device.app.build``, over a replay camera."""

from __future__ import annotations

import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import BenchError
from bench.replay import ReplayCamera
from device.app import build
from device.config import ApiConfig, Config, DeviceConfig, HardwareConfig, OfflineConfig
from device.loop import Report
from device.sandbox import DEMO_TOKEN

DEVICE_ID = "bench"  # not the machine's id: the bench should not depend on /etc/machine-id


@dataclass(frozen=True)
class LoopRun:
    verdicts: int
    frames_captured: int
    frames_decoded: int
    frames_dropped: int
    seconds: float


def door_config(base_url: str, journal: Path) -> Config:
    """A door unit on the sim backend (it scans continuously), talking to ``base_url``."""
    return Config(
        api=ApiConfig(base_url=base_url),
        device=DeviceConfig(id=DEVICE_ID, profile="door"),
        hardware=HardwareConfig(backend="sim", events=""),
        offline=OfflineConfig(journal=journal),
    )


def run_loop(
    base_url: str, camera: ReplayCamera, observer: Callable[[Report], None] | None = None
) -> LoopRun:
    """Play ``camera`` to its end through the real loop, showing each verdict to ``observer``.

    Every verdict must come from a server answer, or the latencies are not round trips.
    """
    verdicts = 0
    unanswered: Counter[str] = Counter()

    def tally(report: Report) -> None:  # keeps nothing per report: the memory part runs this
        nonlocal verdicts
        verdicts += 1
        if report.reply.kind in ("unreachable", "server_error"):
            unanswered[report.reply.kind] += 1
        if observer is not None:
            observer(report)

    # A fresh journal each run: every scan is journaled (two commits) as on the device.
    with (
        tempfile.TemporaryDirectory(prefix="ticket-scanner-bench-journal-") as folder,
        build(
            door_config(base_url, Path(folder) / "journal.db"),
            observers=[tally],
            token=DEMO_TOKEN,
            source=camera,
        ) as running,
    ):
        started = time.monotonic()
        running.loop.run(threading.Event())
        seconds = time.monotonic() - started
        decoded = running.loop.frames_decoded
        dropped = running.source.dropped
    if unanswered:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(unanswered.items()))
        raise BenchError(
            f"{unanswered.total()} of {verdicts} scans got no proper answer from the sandbox "
            f"({kinds}): the latencies would not be real round trips"
        )
    return LoopRun(verdicts, camera.captured, decoded, dropped, seconds)
