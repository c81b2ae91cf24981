"""Screen drawings: the product's own screens against golden PNGs, and what every drawing keeps.

The goldens are ``gallery.named_samples`` at a fixed clock. After an intended change, rewrite
them, look at every one (or at ``ticket-scanner screens --sheet FILE``), then commit them:
``.venv/bin/pytest tests/test_screens.py --regen-golden`` (the rewritten cases fail on purpose).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFont

from device.api import ScanRecord, TicketInfo
from device.feedback import screen_for
from device.gallery import named_samples
from device.screens import (
    FONT_DIR,
    REGULAR,
    SMALL,
    BitmapFont,
    Screen,
    ScreenStyle,
    render,
    safe_text,
    terminal_art,
)
from device.verdict import Decision
from device.verdicts import Verdict

GOLDEN = Path(__file__).parent / "golden"
REGENERATE = ".venv/bin/pytest tests/test_screens.py --regen-golden"
NOW = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)  # the goldens' clock: the sample ticket's day
SAMPLES = named_samples(NOW)
STATUS = "SCAN  online"
OFFLINE_QUEUE = "SCAN OFFLINE !1 Q3"
SIZES = [(128, 64), (128, 32)]
STYLES: list[ScreenStyle] = ["plain", "inverted", "outlined"]
GOLDEN_CASES = [(name, size) for name in SAMPLES for size in SIZES]

# What each product screen says, verbatim: (title, detail lines, status). The README quotes these.
WORDS = {
    "ready": ("READY", ("show ticket",), "SCAN  online"),
    "ready_trigger": ("READY", ("press trigger",), OFFLINE_QUEUE),
    "checking": ("CHECKING", ("one moment",), "SCAN  online"),
    "admitted": ("WELCOME", ("14:00-17:00", "GUEST"), "SCAN  online"),
    "already_scanned": ("ALREADY SCANNED", ("first scan 10:32,", "gate-2"), "SCAN  online"),
    "valid": ("VALID", ("first scan 10:32,", "gate-2"), "VERIFY  online"),
    "canceled": ("CANCELED", ("booking canceled", "14:00-17:00"), "SCAN  online"),
    "too_early": ("TOO EARLY", ("starts 14:00",), "SCAN  online"),
    "too_late": ("TOO LATE", ("ended 17:00",), "SCAN  online"),
    "invalid": ("NOT VALID", ("not a valid ticket",), "SCAN  online"),
    "unauthorized": ("SETUP ERROR", ("token refused", "call supervisor"), "SCAN  never online"),
    "setup_error": ("SETUP ERROR", ("wrong API URL", "call supervisor"), "SCAN  never online"),
    "server_error": ("SYSTEM ERROR", ("try again",), "SCAN  online"),
    "unreachable": ("NO CONNECTION", ("try again",), OFFLINE_QUEUE),
    "accepted_offline": ("ACCEPTED", ("offline - will sync",), OFFLINE_QUEUE),
}


@pytest.fixture
def regen_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--regen-golden"))


def assert_matches_golden(image: Image.Image, name: str, regen: bool) -> None:
    """Compare with tests/golden/<name>.png; with --regen-golden write it, and fail to say so."""
    path = GOLDEN / f"{name}.png"
    if regen:
        if os.environ.get("CI"):
            pytest.fail("--regen-golden is refused when CI is set: goldens need a person's look")
        image.save(path)
        pytest.fail(f"{path} written: look at it, and commit it if it is right")
    if not path.exists():
        pytest.fail(f"no golden {path}: write it with {REGENERATE}")
    with Image.open(path) as golden:
        expected = golden.copy()
    assert (expected.mode, expected.size) == (image.mode, image.size)
    changed = ImageChops.difference(image, expected).getbbox()
    assert changed is None, (
        f"{name}: pixels in {changed} differ from {path}; if intended: {REGENERATE}"
    )


def ink(text: str, font: BitmapFont) -> np.ndarray:
    """``text`` as ``font`` draws it, cropped to its ink: what to look for in a drawing."""
    image = Image.new("1", (font.advance * len(text) + 2, font.height + 2))
    ImageDraw.Draw(image).text((1, 1), text, font=font.font, fill=255)
    return np.asarray(image.crop(image.getbbox()))


def shows(image: Image.Image, text: str, font: BitmapFont, *, inverted: bool = False) -> bool:
    """Whether ``text``, in ``font`` at 1:1, appears pixel for pixel somewhere in ``image``."""
    pixels = np.asarray(ImageChops.invert(image) if inverted else image)
    needle = ink(text, font)
    windows = np.lib.stride_tricks.sliding_window_view(pixels, needle.shape)
    return bool((windows == needle).all(axis=(2, 3)).any())


def letters(image: Image.Image) -> int:
    """How many separate letters a line of text has: runs of columns holding ink."""
    columns = np.asarray(image).any(axis=0)
    return int(np.count_nonzero(columns[1:] & ~columns[:-1]) + columns[0])


@pytest.mark.parametrize(
    ("name", "size"), GOLDEN_CASES, ids=[f"{n}_{w}x{h}" for n, (w, h) in GOLDEN_CASES]
)
def test_product_screens_match_their_goldens(
    name: str, size: tuple[int, int], regen_golden: bool
) -> None:
    assert_matches_golden(render(SAMPLES[name], size), f"{name}_{size[0]}x{size[1]}", regen_golden)


def test_every_golden_is_a_product_screen_and_every_screen_has_one() -> None:
    expected = {f"{name}_{w}x{h}.png" for name, (w, h) in GOLDEN_CASES}

    assert {path.name for path in GOLDEN.glob("*.png")} == expected


def test_regenerating_goldens_writes_then_fails_and_is_refused_in_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(f"{__name__}.GOLDEN", tmp_path)
    image = render(SAMPLES["ready"], (128, 64))
    monkeypatch.delenv("CI", raising=False)

    with pytest.raises(pytest.fail.Exception, match="written: look at it"):
        assert_matches_golden(image, "ready_128x64", regen=True)
    assert (tmp_path / "ready_128x64.png").exists()

    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="refused when CI is set"):
        assert_matches_golden(image, "other_128x64", regen=True)
    assert not (tmp_path / "other_128x64.png").exists()


def test_the_samples_are_every_screen_the_product_shows() -> None:
    assert set(SAMPLES) == {"ready", "ready_trigger", "checking"} | {v.value for v in Verdict}
    assert {name: (s.title, s.lines, s.status) for name, s in SAMPLES.items()} == WORDS


@pytest.mark.parametrize(("name", "size"), GOLDEN_CASES)
def test_every_word_of_every_screen_is_drawn_whole(name: str, size: tuple[int, int]) -> None:
    screen = SAMPLES[name]
    image = render(screen, size)
    inverted = screen.style == "inverted"
    tall = size[1] >= 64
    font = REGULAR if tall else SMALL
    # A short panel has one detail line: the details joined when they fit, else the first.
    joined = " ".join(screen.lines)
    lines = list(screen.lines) if tall else [joined if len(joined) <= 24 else screen.lines[0]]

    for text in [screen.status, *lines]:
        assert shows(image, text, font, inverted=inverted), f"{text!r} not drawn whole"


@pytest.mark.parametrize("name", ["ready_trigger", "unreachable", "accepted_offline"])
def test_a_short_panel_still_shows_offline_and_the_queue(name: str) -> None:
    image = render(SAMPLES[name], (128, 32))

    for text in ("OFFLINE", "!1", "Q3"):
        assert shows(image, text, SMALL), text
    assert image.crop((0, 0, 128, 8)) != render(SAMPLES["ready"], (128, 32)).crop((0, 0, 128, 8))


def test_a_first_scan_says_first_scan_at_then_where_never_a_countdown() -> None:
    slot_start = datetime(2026, 3, 14, 14, 0, tzinfo=UTC)
    ticket = TicketInfo(slot_start=slot_start, slot_end=slot_start.replace(hour=17))
    earlier = ScanRecord("gate-2", datetime(2026, 3, 14, 10, 32, tzinfo=UTC))
    yesterday = ScanRecord("gate-2", datetime(2026, 3, 13, 10, 32, tzinfo=UTC))

    def lines(verdict: Verdict, first: ScanRecord) -> tuple[str, ...]:
        decision = Decision(verdict, admits=False, ticket=ticket, first_scan=first)
        return screen_for(decision, STATUS, UTC, now=NOW).lines

    assert lines(Verdict.VALID, earlier) == ("first scan 10:32,", "gate-2")
    assert lines(Verdict.ALREADY_SCANNED, earlier) == ("first scan 10:32,", "gate-2")
    assert lines(Verdict.ALREADY_SCANNED, yesterday) == ("first scan 13 Mar", "10:32, gate-2")
    # One line on a short panel: the small font has room for the whole sentence.
    short = render(SAMPLES["already_scanned"], (128, 32))
    assert shows(short, "first scan 10:32, gate-2", SMALL)


def test_valid_without_a_first_scan_says_not_checked_in_and_the_slot() -> None:
    ticket = TicketInfo(slot_start=NOW.replace(hour=14), slot_end=NOW.replace(hour=17))
    decision = Decision(Verdict.VALID, admits=False, ticket=ticket)

    assert screen_for(decision, STATUS, UTC, now=NOW).lines == ("not checked in", "14:00-17:00")


@pytest.mark.parametrize("word", ["TOO", "ACCEPTED", "LATE", "VALID", "WELCOME"])
@pytest.mark.parametrize("font", [REGULAR, SMALL], ids=["6x10", "5x8"])
def test_letters_never_touch_at_one_to_one(word: str, font: BitmapFont) -> None:
    # courB08's T touched its neighbours: "TOO" read "IOO" and "ACCEPTED" "ACCEPIED".
    assert letters(Image.fromarray(ink(word, font))) == len(word)


@pytest.mark.parametrize("size", SIZES)
def test_big_titles_are_the_font_scaled_2x_with_letters_apart(size: tuple[int, int]) -> None:
    image = render(Screen("too_late", "TOO LATE"), size)
    title = image.crop(image.getbbox())

    assert title.height == 2 * 7  # 7-px capitals of 6x10, doubled
    assert letters(title) == len("TOOLATE")


def test_the_fonts_are_the_bundled_bitmaps_with_their_licence() -> None:
    for font in (REGULAR, SMALL):
        assert type(font.font) is ImageFont.ImageFont  # a bitmap: no FreeType, no hinting
    assert "Public domain font." in (FONT_DIR / "LICENSE").read_text()
    assert {path.name for path in FONT_DIR.glob("*.p*")} >= {
        "misc-fixed-6x10.pil",
        "misc-fixed-6x10.pbm",
        "misc-fixed-5x8.pil",
        "misc-fixed-5x8.pbm",
    }


def test_the_colon_is_two_separate_dots() -> None:
    # misc-fixed 6x10's own colon, two diamonds a row apart, read as one mark at 1:1.
    colon = ink(":", REGULAR)

    assert colon.any(axis=1).tolist() == [True, True, False, True, True]


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
    assert bottom - top >= 12  # 2x: seven-pixel capitals, fourteen pixels tall


@pytest.mark.parametrize(
    ("size", "chars"), [((128, 64), 21), ((128, 32), 25)], ids=["128x64", "128x32"]
)
@pytest.mark.parametrize(("style", "background"), [("plain", 0), ("inverted", 255)])
def test_long_text_is_truncated_with_ellipsis_inside_a_clear_border(
    size: tuple[int, int], chars: int, style: ScreenStyle, background: int
) -> None:
    long = Screen("invalid", "X" * 40, ("y" * 40, "z" * 40, "w" * 40), "s" * 40, style)
    # 126 usable px: `chars` small characters (6 px, or 5 on a short panel), or 18 title
    # characters at 7 px each.
    cut = Screen(
        "invalid",
        "X" * 15 + "...",
        tuple(letter * (chars - 3) + "..." for letter in "yzw"),
        "s" * (chars - 3) + "...",
        style,
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


def test_outlined_on_a_short_panel_is_two_side_bars_so_no_row_is_lost() -> None:
    image = render(SAMPLES["valid"], (128, 32))

    for bar in ((0, 0, 2, 32), (126, 0, 128, 32)):
        assert image.crop(bar).getextrema() == (255, 255), bar
    for gap in ((2, 0, 3, 32), (125, 0, 126, 32)):
        assert image.crop(gap).getbbox() is None, gap
    assert shows(image, "VERIFY  online", SMALL)
    assert shows(image, "first scan 10:32, gate-2", SMALL)


def test_non_ascii_and_control_characters_are_drawn_as_question_marks() -> None:
    dirty = Screen("admitted", "CAF\u00c9", ("a\tb\u200bc", "\x1b[2J"), "gate\n1")
    clean = Screen("admitted", "CAF?", ("a?b?c", "?[2J"), "gate?1")

    assert safe_text("\u00e9\x00~ ") == "??~ "
    for size in SIZES:
        assert ImageChops.difference(render(dirty, size), render(clean, size)).getbbox() is None


def test_terminal_art_of_a_tiny_image() -> None:
    image = Image.new("1", (3, 3))
    ImageDraw.Draw(image).point([(0, 0), (2, 0), (1, 1), (2, 1), (2, 2)], fill=255)

    assert terminal_art(image) == "┌──┐\n│▚▌│\n│ ▘│\n└──┘"


def test_terminal_art_of_a_screen_fits_an_80_column_terminal() -> None:
    rows = terminal_art(render(SAMPLES["admitted"], (128, 64))).split("\n")

    assert len(rows) == 32 + 2
    assert {len(row) for row in rows} == {64 + 2}


@pytest.mark.parametrize("size", SIZES)
def test_different_screens_give_different_pixels(size: tuple[int, int]) -> None:
    drawings = {render(screen, size).tobytes() for screen in SAMPLES.values()}

    assert len(drawings) == len(SAMPLES)
