"""``ticket-scanner screens``: every screen rendered to PNG, for the README and for review.

Example::

    write_sheet(Path("docs/screens.png"))  # one contact sheet of every screen
    write_gallery(Path("screens"))  # screens/<name>-128x64.png, ...
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image, ImageDraw

from device.api import ScanRecord, TicketInfo
from device.feedback import checking_screen, ready_screen, screen_for, status_line
from device.screens import REGULAR, Screen, render
from device.verdict import Decision
from device.verdicts import Verdict

SIZES = ((128, 64), (128, 32))
GREY, INK = 128, 0  # the sheet's background and label colour: a lit pixel stays white
MARGIN = 8  # px around and between the drawings on the sheet
LABEL_WIDTH = 17 * REGULAR.advance  # "accepted_offline" and a space
ZOOM = 2  # the second copy of each drawing, for reading; the first is 1:1, as on the panel


class GalleryError(Exception):
    """The screens cannot be written where asked; the message names the path."""


def named_samples(now: datetime | None = None) -> dict[str, Screen]:
    """Every screen the product shows, by name: the ready screens, CHECKING, each verdict.

    ``now`` (default: the clock) is the day of the sample ticket: fix it for stable pictures.
    """
    now = now or datetime.now(UTC)
    today = now.replace(hour=14, minute=0, second=0, microsecond=0)
    ticket = TicketInfo(
        id="t-5001",
        type="guest",
        slot_start=today,
        slot_end=today + timedelta(hours=3),
        scans=(ScanRecord("gate-2", today.replace(hour=10, minute=32)),),
    )
    online = status_line("scan", True)
    # Offline with scans waiting and one disputed: what staff must still see on a short panel.
    offline = status_line("scan", False, queued=3, conflicts=1)
    never_online = status_line("scan", False, proven=False)
    screens = {
        "ready": ready_screen(online),
        "ready_trigger": ready_screen(offline, armed=False),
        "checking": checking_screen(online),
    }
    for verdict in Verdict:
        first = ticket.scans[0] if verdict in (Verdict.ALREADY_SCANNED, Verdict.VALID) else None
        decision = Decision(
            verdict, admits=verdict is Verdict.ADMITTED, ticket=ticket, first_scan=first
        )
        connected = verdict not in (Verdict.UNREACHABLE, Verdict.ACCEPTED_OFFLINE)
        status = status_line("verify", True) if verdict is Verdict.VALID else online
        if verdict in (Verdict.UNAUTHORIZED, Verdict.SETUP_ERROR):
            status = never_online  # as a scanner set up wrong shows it: it never got through
        screens[verdict.value] = screen_for(
            decision, status if connected else offline, UTC, now=now
        )
    return screens


def sample_screens(now: datetime | None = None) -> list[Screen]:
    """One screen per verdict, plus the ready and checking screens, with a plausible ticket."""
    return list(named_samples(now).values())


def write_gallery(out: Path) -> list[Path]:
    """Write ``<name>-<width>x<height>.png`` for every sample screen into a new or empty folder."""
    if out.exists() and not out.is_dir():
        raise GalleryError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise GalleryError(f"{out}: folder is not empty (old screens would mix with new ones)")
    written: list[Path] = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for size in SIZES:
            for name, screen in named_samples().items():
                path = out / f"{name}-{size[0]}x{size[1]}.png"
                render(screen, size).save(path)
                written.append(path)
    except OSError as error:
        raise GalleryError(f"{out}: cannot write: {error.strerror or error}") from error
    return written


def write_sheet(path: Path, now: datetime | None = None) -> Path:
    """Write one PNG of every sample screen at 128x64 and 128x32, 1:1 and 2x; return ``path``."""
    if path.suffix.lower() != ".png":
        raise GalleryError(f"{path}: the sheet is a PNG: name it <something>.png")
    if path.exists():
        raise GalleryError(f"{path}: exists already (remove it first)")
    if not path.parent.is_dir():
        raise GalleryError(f"{path}: no folder {path.parent}")
    try:
        contact_sheet(named_samples(now)).save(path)
    except OSError as error:
        raise GalleryError(f"{path}: cannot write: {error.strerror or error}") from error
    return path


def contact_sheet(screens: dict[str, Screen]) -> Image.Image:
    """A grey sheet, one row per screen: its name, then each size 1:1, then each size 2x."""
    drawings = [(width * scale, height * scale) for scale in (1, ZOOM) for width, height in SIZES]
    row_height = max(height for _, height in drawings) + MARGIN
    sheet_width = MARGIN + LABEL_WIDTH + sum(width + MARGIN for width, _ in drawings)
    sheet = Image.new("L", (sheet_width, MARGIN + row_height * len(screens)), GREY)
    draw = ImageDraw.Draw(sheet)
    for row, (name, screen) in enumerate(screens.items()):
        top = MARGIN + row * row_height
        draw.text((MARGIN, top), name, font=REGULAR.font, fill=INK)
        left = MARGIN + LABEL_WIDTH
        for scale in (1, ZOOM):
            for size in SIZES:
                sheet.paste(_drawing(screen, size, scale), (left, top))
                left += size[0] * scale + MARGIN
    return sheet


def _drawing(screen: Screen, size: tuple[int, int], scale: int) -> Image.Image:
    """``screen`` as the panel shows it, scaled up pixel for pixel (NEAREST)."""
    image = render(screen, size).convert("L")
    return image.resize((size[0] * scale, size[1] * scale), Image.Resampling.NEAREST)
