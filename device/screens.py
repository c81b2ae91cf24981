"""Pillow drawings for 128x64 and 128x32 monochrome OLEDs.

Example::

    image = render(Screen("admitted", "WELCOME", ("10:00-11:00", "Adult")), (128, 64))
    print(terminal_art(image))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFont

ScreenStyle = Literal["plain", "inverted", "outlined"]


@dataclass(frozen=True)
class Screen:
    """What one screen says; ``render`` turns it into pixels.

    ``kind`` is "ready", "checking" or a Verdict value. ``title`` is the big word(s),
    ``lines`` up to two detail lines, ``status`` the status bar (mode and connection).
    All text is display-safe already (printable ASCII).
    """

    kind: str
    title: str
    lines: tuple[str, ...] = ()
    status: str = ""
    style: ScreenStyle = "plain"

    @property
    def text(self) -> str:
        """The screen in words, one line, for events and logs."""
        return " | ".join(part for part in (self.title, *self.lines, self.status) if part)


# Pillow's bundled bitmap font (courB08) draws the same pixels on every machine; FreeType may not.
FONT = ImageFont.load_default_imagefont()
ADVANCE = 6  # courB08 is monospaced: every glyph advances 6 px
LINE_HEIGHT = 10  # rows 1-10 of its 11-px cell hold all the ink
TITLE_SPACING = 1  # extra px between title letters where room allows: big capitals then never touch
GAP = 2  # px between the title and the detail lines, and between two title lines
ELLIPSIS = "..."
LIT = 255  # mode "1" keeps what it is given: fill=LIT stores 1, which ImageChops and masks misread
# Quadrant blocks: 2x2 pixels per character, indexed by top-left, top-right, bottom-left,
# bottom-right bits, so a 128-pixel-wide OLED fits an 80-column terminal.
QUADRANTS = " ▗▖▄▝▐▞▟▘▚▌▙▀▜▛█"

Box = tuple[int, int, int, int]  # left, top, right, bottom (right and bottom exclusive)


def render(screen: Screen, size: tuple[int, int]) -> Image.Image:
    """Draw ``screen`` as a mode "1" image of exactly ``size``: status bar, big title, details."""
    width, height = size
    image = Image.new("1", size)
    compact = height < 64  # a 128x32 panel: no status bar, one detail line
    frame = _draw_frame(image) if screen.style == "outlined" else 0
    box = (frame + 1, frame + 1, width - frame - 1, height - frame - 1)
    if screen.status and not compact:
        box = _draw_status(image, safe_text(screen.status), box)
    lines = [safe_text(line) for line in screen.lines[: 1 if compact else 2]]
    _draw_body(image, safe_text(screen.title).strip(), lines, box)
    return ImageChops.invert(image) if screen.style == "inverted" else image


def terminal_art(image: Image.Image) -> str:
    """Draw a 1-bit image with quadrant blocks (2x2 pixels per character) inside a box border."""
    pixels = np.asarray(image.convert("1"), dtype=np.uint8)
    height, width = pixels.shape
    pixels = np.pad(pixels, ((0, height % 2), (0, width % 2)))
    index = (
        8 * pixels[::2, ::2] + 4 * pixels[::2, 1::2] + 2 * pixels[1::2, ::2] + pixels[1::2, 1::2]
    )
    rows = ["".join(QUADRANTS[value] for value in row) for row in index]
    border = "─" * index.shape[1]
    return "\n".join([f"┌{border}┐", *(f"│{row}│" for row in rows), f"└{border}┘"])


def safe_text(text: str) -> str:
    """Replace anything outside printable ASCII with "?"."""
    return "".join(char if " " <= char <= "~" else "?" for char in text)


def truncate(text: str, max_chars: int) -> str:
    """Shorten ``text`` to at most ``max_chars``, ending in "..." when something was cut."""
    if len(text) <= max_chars:
        return text
    return text[: max(max_chars - len(ELLIPSIS), 0)] + ELLIPSIS


def _draw_frame(image: Image.Image) -> int:
    """Draw the "outlined" frame (2 px, or 1 px on short panels) and return its width."""
    frame = 2 if image.height >= 64 else 1
    ImageDraw.Draw(image).rectangle(
        (0, 0, image.width - 1, image.height - 1), outline=LIT, width=frame
    )
    return frame


def _draw_status(image: Image.Image, status: str, box: Box) -> Box:
    """Draw the status bar and its separator at the top of ``box``; return the box left below."""
    left, top, right, bottom = box
    _paste(image, _strip(truncate(status, (right - left) // ADVANCE)), (left, top))
    separator = top + LINE_HEIGHT + 1
    ImageDraw.Draw(image).line((left, separator, right - 1, separator), fill=LIT)
    return (left, separator + 2, right, bottom)


def _draw_body(image: Image.Image, title: str, lines: list[str], box: Box) -> None:
    """Draw the title and the detail lines below it, centred in ``box`` as one block."""
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    details = [_strip(truncate(line, width // ADVANCE)) for line in lines]
    details_height = LINE_HEIGHT * len(details)
    gap = GAP if title and details else 0
    title_image = _fit_title(title, width, height - details_height - gap) if title else None
    title_height = title_image.height if title_image else 0
    y = top + max(height - title_height - gap - details_height, 0) // 2
    if title_image:
        _paste(image, title_image, (left + (width - title_image.width) // 2, y))
    y += title_height + gap
    for detail in details:
        _paste(image, detail, (left + (width - detail.width) // 2, y))
        y += LINE_HEIGHT


def _fit_title(title: str, width: int, height: int) -> Image.Image:
    """The biggest title that fits, from 2x on one line down to small; else truncated and tall."""
    split = _two_lines(title)
    forms = [  # (lines, scale_x, scale_y, letter spacing), biggest and airiest first
        ([title], 2, 2, 1),
        ([title], 2, 2, 0),
        (split, 2, 2, 1),
        (split, 2, 2, 0),
        ([title], 1, 2, 1),
        ([title], 1, 1, 0),
    ]
    for lines, scale_x, scale_y, spacing in forms:
        block = _title_block(lines, scale_x, scale_y, spacing) if lines else None
        if block is not None and block.width <= width and block.height <= height:
            return block
    scale_y = 2 if _title_block([title], 1, 2, 0).height <= height else 1
    max_chars = (width + TITLE_SPACING) // (ADVANCE + TITLE_SPACING)
    return _title_block([truncate(title, max_chars)], 1, scale_y, TITLE_SPACING)


def _two_lines(text: str) -> list[str]:
    """``text`` split at the space that best balances two lines; [] for a single word."""
    words = text.split()
    splits = [[" ".join(words[:cut]), " ".join(words[cut:])] for cut in range(1, len(words))]
    return min(splits, key=lambda pair: max(map(len, pair)), default=[])


def _title_block(lines: list[str], scale_x: int, scale_y: int, spacing: int) -> Image.Image:
    """Title lines cropped to their ink rows, scaled up with NEAREST, centred on each other."""
    strips = [_strip(line, spacing) for line in lines]
    ink = _strip(" ".join(lines), spacing).getbbox()
    top, bottom = (ink[1], ink[3]) if ink else (0, LINE_HEIGHT)
    scaled = [
        strip.crop((0, top, strip.width, bottom)).resize(
            (strip.width * scale_x, (bottom - top) * scale_y), Image.Resampling.NEAREST
        )
        for strip in strips
    ]
    block_height = sum(part.height for part in scaled) + GAP * (len(scaled) - 1)
    block = Image.new("1", (max(part.width for part in scaled), block_height))
    y = 0
    for part in scaled:
        _paste(block, part, ((block.width - part.width) // 2, y))
        y += part.height + GAP
    return block


def _strip(text: str, spacing: int = 0) -> Image.Image:
    """One line of small text, white on black, LINE_HEIGHT rows tall."""
    pitch = ADVANCE + spacing
    image = Image.new("1", (max(pitch * len(text) - spacing, 1), LINE_HEIGHT))
    draw = ImageDraw.Draw(image)
    for index, char in enumerate(text):
        draw.text((index * pitch, -1), char, font=FONT, fill=LIT)  # -1: the cell's row 0 is empty
    return image


def _paste(image: Image.Image, part: Image.Image, at: tuple[int, int]) -> None:
    """Paint the white pixels of ``part`` onto ``image`` (black ones stay transparent)."""
    image.paste(part, at, part)
