"""Pillow drawings for 128x64 and 128x32 monochrome OLEDs.

Text is drawn with X.Org's misc-fixed bitmap fonts, 6x10 and 5x8 (public domain: "Public domain
font. Share and enjoy."), converted to Pillow's .pil/.pbm format in ``device/fonts``: made for
1-bit screens and drawn pixel for pixel, so every machine gives the same image.

Example::

    image = render(Screen("admitted", "WELCOME", ("10:00-11:00", "Adult")), (128, 64))
    print(terminal_art(image))
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
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


ELLIPSIS = "..."
LIT = 255  # mode "1" keeps what it is given: fill=LIT stores 1, which ImageChops and masks misread
# Quadrant blocks: 2x2 pixels per character, indexed by top-left, top-right, bottom-left,
# bottom-right bits, so a 128-pixel-wide OLED fits an 80-column terminal.
QUADRANTS = " ▗▖▄▝▐▞▟▘▚▌▙▀▜▛█"
FONT_DIR = Path(__file__).parent / "fonts"
TITLE_SPACING = 1  # extra px between title letters where room allows: big capitals then never touch


@dataclass(frozen=True)
class BitmapFont:
    """A monospaced bitmap font: every glyph advances ``advance`` px; a line is ``height`` rows."""

    font: ImageFont.ImageFont
    advance: int
    height: int

    @classmethod
    def load(cls, name: str, advance: int, height: int) -> BitmapFont:
        """Load ``device/fonts/<name>.pil`` (and its .pbm): pixels, never FreeType hinting."""
        return cls(ImageFont.load(str(FONT_DIR / f"{name}.pil")), advance, height)


# misc-fixed (public domain, see fonts/LICENSE): made for small 1-bit screens, each glyph has a
# blank column and row, so letters never touch. Row 0 of both cells is always blank: lines are
# drawn one row up, and ``height`` keeps the rows that can hold ink (plus one of spacing in 6x10).
REGULAR = BitmapFont.load("misc-fixed-6x10", advance=6, height=10)
SMALL = BitmapFont.load("misc-fixed-5x8", advance=5, height=7)


@dataclass(frozen=True)
class Layout:
    """How a panel height spends its rows."""

    status_font: BitmapFont
    detail_font: BitmapFont
    max_details: int
    gap: int  # px between the status, title and detail blocks, and between two title lines
    status_rule: bool  # a line under the status bar


TALL = Layout(REGULAR, REGULAR, max_details=2, gap=2, status_rule=True)
# 32 rows: small status strip (7) + 2x title (14) + one small detail line (7) + two 1-px gaps.
SHORT = Layout(SMALL, SMALL, max_details=1, gap=1, status_rule=False)

Box = tuple[int, int, int, int]  # left, top, right, bottom (right and bottom exclusive)


def render(screen: Screen, size: tuple[int, int]) -> Image.Image:
    """Draw ``screen`` as a mode "1" image of exactly ``size``: status, big title, details."""
    width, height = size
    image = Image.new("1", size)
    layout = SHORT if height < 64 else TALL  # a 128x32 panel: small status, one detail line
    box = (1, 1, width - 1, height - 1)
    if screen.style == "outlined":
        box = _draw_outline(image)
    if screen.status:
        box = _draw_status(image, safe_text(screen.status), box, layout)
    lines = [safe_text(line) for line in screen.lines]
    _draw_body(image, safe_text(screen.title).strip(), lines, box, layout)
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


def _draw_outline(image: Image.Image) -> Box:
    """Draw the "outlined" marks and return the box left inside them.

    A 2-px frame on tall panels; on short ones 2-px bars at the sides only, since a 32-row
    panel has no rows to spare for a top and bottom edge.
    """
    width, height = image.size
    draw = ImageDraw.Draw(image)
    if height >= 64:
        draw.rectangle((0, 0, width - 1, height - 1), outline=LIT, width=2)
        return (3, 3, width - 3, height - 3)
    draw.rectangle((0, 0, 1, height - 1), fill=LIT)
    draw.rectangle((width - 2, 0, width - 1, height - 1), fill=LIT)
    return (3, 1, width - 3, height - 1)


def _draw_status(image: Image.Image, status: str, box: Box, layout: Layout) -> Box:
    """Draw the status (and its rule, on tall panels) at the top of ``box``; return the rest."""
    left, top, right, bottom = box
    font = layout.status_font
    _paste(image, _strip(truncate(status, (right - left) // font.advance), font), (left, top))
    if not layout.status_rule:
        return (left, top + font.height + layout.gap, right, bottom)
    rule = top + font.height + 1
    ImageDraw.Draw(image).line((left, rule, right - 1, rule), fill=LIT)
    return (left, rule + 2, right, bottom)


def _draw_body(image: Image.Image, title: str, lines: list[str], box: Box, layout: Layout) -> None:
    """Draw the title and the detail lines below it, centred in ``box`` as one block."""
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    font = layout.detail_font
    max_chars = width // font.advance
    details = [_strip(truncate(line, max_chars), font) for line in _shown(lines, layout, max_chars)]
    details_height = font.height * len(details)
    gap = layout.gap if title and details else 0
    title_image = (
        _fit_title(title, width, height - details_height - gap, layout.gap) if title else None
    )
    title_height = title_image.height if title_image else 0
    y = top + max(height - title_height - gap - details_height, 0) // 2
    if title_image:
        _paste(image, title_image, (left + (width - title_image.width) // 2, y))
    y += title_height + gap
    for detail in details:
        _paste(image, detail, (left + (width - detail.width) // 2, y))
        y += font.height


def _shown(lines: list[str], layout: Layout, max_chars: int) -> list[str]:
    """The detail lines there is room for; more than that: all on one line, when they fit.

    So a short panel says "first scan 10:32, gate-2", which a tall one wraps in two.
    """
    joined = " ".join(lines)
    if len(lines) > layout.max_details and len(joined) <= max_chars:
        return [joined]
    return lines[: layout.max_details]


def _fit_title(title: str, width: int, height: int, gap: int) -> Image.Image:
    """The biggest title that fits, from 2x on one line down to small; else truncated."""
    max_chars = (width + TITLE_SPACING) // (REGULAR.advance + TITLE_SPACING)
    short = truncate(title, max_chars)
    for text in (title, short):  # the ellipsis's dots sit below the baseline: try it as drawn
        for block in _title_forms(text, gap):
            if block.width <= width and block.height <= height:
                return block
    return _title_block([short], 1, 1, 0, gap)  # no room even for one small line: clipped


def _title_forms(title: str, gap: int) -> Iterator[Image.Image]:
    """``title`` drawn in each form, biggest and airiest first."""
    split = _two_lines(title)
    forms = [  # (lines, scale_x, scale_y, letter spacing)
        ([title], 2, 2, TITLE_SPACING),
        ([title], 2, 2, 0),
        (split, 2, 2, TITLE_SPACING),
        (split, 2, 2, 0),
        ([title], 1, 2, TITLE_SPACING),
        ([title], 1, 1, TITLE_SPACING),
        ([title], 1, 1, 0),
    ]
    for lines, scale_x, scale_y, spacing in forms:
        if lines:
            yield _title_block(lines, scale_x, scale_y, spacing, gap)


def _two_lines(text: str) -> list[str]:
    """``text`` split at the space that best balances two lines; [] for a single word."""
    words = text.split()
    splits = [[" ".join(words[:cut]), " ".join(words[cut:])] for cut in range(1, len(words))]
    return min(splits, key=lambda pair: max(map(len, pair)), default=[])


def _title_block(
    lines: list[str], scale_x: int, scale_y: int, spacing: int, gap: int
) -> Image.Image:
    """Title lines cropped to their ink rows, scaled up with NEAREST, centred on each other."""
    strips = [_strip(line, REGULAR, spacing) for line in lines]
    ink = _strip(" ".join(lines), REGULAR, spacing).getbbox()
    top, bottom = (ink[1], ink[3]) if ink else (0, REGULAR.height)
    scaled = [
        crop.resize((crop.width * scale_x, crop.height * scale_y), Image.Resampling.NEAREST)
        for crop in (_ink_columns(strip, top, bottom) for strip in strips)
    ]
    block_height = sum(part.height for part in scaled) + gap * (len(scaled) - 1)
    block = Image.new("1", (max(part.width for part in scaled), block_height))
    y = 0
    for part in scaled:
        _paste(block, part, ((block.width - part.width) // 2, y))
        y += part.height + gap
    return block


def _ink_columns(strip: Image.Image, top: int, bottom: int) -> Image.Image:
    """Rows ``top`` to ``bottom`` of ``strip``, less blank columns at either end.

    The last glyph's blank column would otherwise push a big title off centre.
    """
    box = strip.getbbox()
    left, right = (box[0], box[2]) if box else (0, strip.width)
    return strip.crop((left, top, right, bottom))


def _strip(text: str, font: BitmapFont, spacing: int = 0) -> Image.Image:
    """One line of text, white on black, ``font.height`` rows tall."""
    pitch = font.advance + spacing
    image = Image.new("1", (max(pitch * len(text) - spacing, 1), font.height))
    draw = ImageDraw.Draw(image)
    for index, char in enumerate(text):
        draw.text((index * pitch, -1), char, font=font.font, fill=LIT)  # -1: row 0 is blank
    return image


def _paste(image: Image.Image, part: Image.Image, at: tuple[int, int]) -> None:
    """Paint the white pixels of ``part`` onto ``image`` (black ones stay transparent)."""
    image.paste(part, at, part)
