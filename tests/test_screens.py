"""Screen drawings: golden PNGs for both panel sizes, and the rules every drawing keeps.

Regenerate the goldens after an intended change, then look at them before committing:
``UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_screens.py``
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageDraw

from device.screens import Screen, ScreenStyle, render, safe_text, terminal_art

GOLDEN = Path(__file__).parent / "golden"
REGENERATE = ".venv/bin/pytest tests/test_screens.py"
STATUS = "SCAN  gate-1  online"
SIZES = [(128, 64), (128, 32)]
STYLES: list[ScreenStyle] = ["plain", "inverted", "outlined"]

SCREENS = {
    "ready": Screen("ready", "READY", ("Show your ticket",), STATUS),
    "checking": Screen("checking", "CHECKING", (), STATUS),
    "admitted": Screen("admitted", "WELCOME", ("10:00-11:00", "General Admission"), STATUS),
    "already_scanned": Screen("already_scanned", "ALREADY SCANNED", ("10:32 - gate-2",), STATUS),
    "valid": Screen("valid", "VALID", ("not checked in",), "VERIFY gate-1 online", "outlined"),
    "canceled": Screen(
        "canceled", "CANCELED", ("Booking canceled", "10:00-11:00"), STATUS, "inverted"
    ),
    "invalid": Screen("invalid", "NOT A VALID TICKET", ("Unknown code",), STATUS, "inverted"),
    "unauthorized": Screen(
        "unauthorized", "NOT AUTHORISED", ("Call supervisor",), STATUS, "inverted"
    ),
    "unreachable": Screen("unreachable", "NO CONNECTION", ("Try again",), "SCAN  gate-1  offline"),
}
SHORT_PANEL = ["ready", "admitted", "already_scanned", "valid", "canceled", "unauthorized"]
GOLDEN_CASES = [(name, (128, 64)) for name in SCREENS] + [(name, (128, 32)) for name in SHORT_PANEL]


def assert_matches_golden(image: Image.Image, name: str) -> None:
    """Compare with tests/golden/<name>.png, or write it when UPDATE_GOLDEN=1."""
    path = GOLDEN / f"{name}.png"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        image.save(path)
        return
    if not path.exists():
        pytest.fail(f"no golden {path}: create it with UPDATE_GOLDEN=1 {REGENERATE}")
    with Image.open(path) as golden:
        expected = golden.copy()
    assert (expected.mode, expected.size) == (image.mode, image.size)
    changed = ImageChops.difference(image, expected).getbbox()
    assert changed is None, (
        f"{name}: pixels in {changed} differ from {path}; if intended: UPDATE_GOLDEN=1 {REGENERATE}"
    )


@pytest.mark.parametrize(
    ("name", "size"), GOLDEN_CASES, ids=[f"{n}_{w}x{h}" for n, (w, h) in GOLDEN_CASES]
)
def test_render_matches_golden(name: str, size: tuple[int, int]) -> None:
    assert_matches_golden(render(SCREENS[name], size), f"{name}_{size[0]}x{size[1]}")


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("style", STYLES)
def test_render_is_mode_1_of_exact_size_with_lit_pixels_stored_as_255(
    size: tuple[int, int], style: ScreenStyle
) -> None:
    image = render(Screen("admitted", "WELCOME", ("a", "b"), STATUS, style), size)

    assert (image.mode, image.size) == ("1", size)
    # A pixel drawn with fill=1 is stored as 1, and ImageChops.difference then tells it from a
    # golden's 255 although both look lit.
    assert sum(image.histogram()[1:255]) == 0


@pytest.mark.parametrize("size", SIZES)
def test_big_title_alone_is_centred(size: tuple[int, int]) -> None:
    left, top, right, bottom = render(Screen("ready", "READY"), size).getbbox() or (0, 0, 0, 0)

    assert abs(left - (size[0] - right)) <= 1
    assert abs(top - (size[1] - bottom)) <= 1
    assert bottom - top >= 12  # 2x: six-pixel capitals, twelve pixels tall


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(("style", "background"), [("plain", 0), ("inverted", 255)])
def test_long_text_is_truncated_with_ellipsis_inside_a_clear_border(
    size: tuple[int, int], style: ScreenStyle, background: int
) -> None:
    long = Screen("invalid", "X" * 40, ("y" * 40, "z" * 40, "w" * 40), "s" * 40, style)
    # 126 usable px: 21 small characters, or 18 title characters at 7 px each.
    cut = Screen(
        "invalid", "X" * 15 + "...", ("y" * 18 + "...", "z" * 18 + "..."), "s" * 18 + "...", style
    )

    image = render(long, size)

    assert ImageChops.difference(image, render(cut, size)).getbbox() is None
    width, height = size
    edges = [
        (0, 0, width, 1),
        (0, height - 1, width, height),
        (0, 0, 1, height),
        (width - 1, 0, width, height),
    ]
    for edge in edges:
        assert image.crop(edge).getextrema() == (background, background), edge


def test_outlined_frame_survives_long_text() -> None:
    image = render(Screen("valid", "V" * 40, ("v" * 40, "v" * 40), "v" * 40, "outlined"), (128, 64))
    frame = Image.new("1", (128, 64))
    ImageDraw.Draw(frame).rectangle((0, 0, 127, 63), outline=255, width=2)

    assert ImageChops.difference(ImageChops.logical_and(image, frame), frame).getbbox() is None
    inside = image.crop((2, 2, 126, 62))
    assert inside.crop((0, 0, 124, 1)).getbbox() is None  # the gap inside the frame stays dark
    assert inside.crop((0, 0, 1, 60)).getbbox() is None
    assert inside.crop((123, 0, 124, 60)).getbbox() is None


def test_non_ascii_and_control_characters_are_drawn_as_question_marks() -> None:
    dirty = Screen("admitted", "CAF\u00c9", ("a\tb\u200bc", "\x1b[2J"), "gate\n1")
    clean = Screen("admitted", "CAF?", ("a?b?c", "?[2J"), "gate?1")

    assert safe_text("\u00e9\x00~ ") == "??~ "
    assert (
        ImageChops.difference(render(dirty, (128, 64)), render(clean, (128, 64))).getbbox() is None
    )


def test_terminal_art_of_a_tiny_image() -> None:
    image = Image.new("1", (3, 3))
    ImageDraw.Draw(image).point([(0, 0), (2, 0), (1, 1), (2, 1), (2, 2)], fill=255)

    assert terminal_art(image) == "┌──┐\n│▚▌│\n│ ▘│\n└──┘"


def test_terminal_art_of_a_screen_fits_an_80_column_terminal() -> None:
    rows = terminal_art(render(SCREENS["admitted"], (128, 64))).split("\n")

    assert len(rows) == 32 + 2
    assert {len(row) for row in rows} == {64 + 2}


@pytest.mark.parametrize("size", SIZES)
def test_different_screens_give_different_pixels(size: tuple[int, int]) -> None:
    drawings = {render(screen, size).tobytes() for screen in SCREENS.values()}

    assert len(drawings) == len(SCREENS)
