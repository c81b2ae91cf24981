"""``ticket-scanner screens``: every screen rendered to PNG, for the README and for review."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from device.api import ScanRecord, TicketInfo
from device.feedback import ready_screen, screen_for, status_line
from device.screens import Screen, render
from device.verdict import Decision
from device.verdicts import Verdict

SIZES = ((128, 64), (128, 32))


class GalleryError(Exception):
    """The screens cannot be written where asked; the message names the path."""


def write_sheet(path: Path) -> Path:
    """One PNG with every sample screen at every size (not built yet)."""
    raise GalleryError(f"{path}: --sheet is not built yet")


def sample_screens(now: datetime | None = None) -> list[Screen]:
    """One screen per verdict, plus the ready screens, with a plausible ticket."""
    today = (now or datetime.now(UTC)).replace(hour=14, minute=0, second=0, microsecond=0)
    ticket = TicketInfo(
        id="t-5001",
        type="guest",
        slot_start=today,
        slot_end=today + timedelta(hours=3),
        scans=(ScanRecord("gate-2", today.replace(hour=10, minute=32)),),
    )
    online = status_line("scan", True)
    screens = [ready_screen(online), ready_screen(online, armed=False)]
    for verdict in Verdict:
        first = ticket.scans[0] if verdict in (Verdict.ALREADY_SCANNED, Verdict.VALID) else None
        decision = Decision(
            verdict, admits=verdict is Verdict.ADMITTED, ticket=ticket, first_scan=first
        )
        mode = "verify" if verdict is Verdict.VALID else "scan"
        connected = verdict not in (Verdict.UNREACHABLE, Verdict.ACCEPTED_OFFLINE)
        screens.append(screen_for(decision, status_line(mode, connected), UTC))
    return screens


def write_gallery(out: Path) -> list[Path]:
    """Write ``<kind>-<width>x<height>.png`` for every sample screen; return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for size in SIZES:
        for number, screen in enumerate(sample_screens()):
            name = screen.kind if screen.kind != "ready" else f"ready{number}"
            path = out / f"{name}-{size[0]}x{size[1]}.png"
            render(screen, size).save(path)
            written.append(path)
    return written
