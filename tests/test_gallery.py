"""``ticket-scanner screens``: the contact sheet and the PNG folder, and the paths they refuse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from device.cli import main
from device.gallery import INK, LABEL_WIDTH, MARGIN, SIZES, contact_sheet, named_samples
from device.screens import render


def contains(sheet: Image.Image, part: Image.Image) -> bool:
    """Whether ``part`` appears pixel for pixel somewhere in ``sheet`` (both grey)."""
    haystack, needle = np.asarray(sheet), np.asarray(part)
    height, width = needle.shape
    first_row = needle[0].tobytes()  # one byte a pixel: a byte offset is an x
    for y in range(haystack.shape[0] - height + 1):
        row = haystack[y].tobytes()
        x = row.find(first_row)
        while x != -1:
            if (haystack[y : y + height, x : x + width] == needle).all():
                return True
            x = row.find(first_row, x + 1)
    return False


def screens(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["screens", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_sheet_shows_every_screen_at_both_sizes_one_to_one_and_2x(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "screens.png"

    code, out, err = screens(["--sheet", str(path)], capsys)

    assert (code, out, err) == (0, f"{path}\n", "")
    with Image.open(path) as written:
        sheet = written.convert("L")
    for name, screen in named_samples().items():
        for width, height in SIZES:
            drawing = render(screen, (width, height)).convert("L")
            assert contains(sheet, drawing), f"{name} {width}x{height} 1:1"
            double = drawing.resize((width * 2, height * 2), Image.Resampling.NEAREST)
            assert contains(sheet, double), f"{name} {width}x{height} 2x"


def test_each_screen_on_the_sheet_is_labelled_with_its_name() -> None:
    ready = named_samples()["ready"]
    one = np.asarray(contact_sheet({"ready": ready}))
    other = np.asarray(contact_sheet({"checking": ready}))

    # Same drawing under another name: only the label, left of the drawings, differs.
    changed = np.argwhere(one != other)
    assert changed.size
    assert changed[:, 1].max() < MARGIN + LABEL_WIDTH
    assert (one[:, : MARGIN + LABEL_WIDTH] == INK).any()  # the label is drawn, dark on grey


@pytest.mark.parametrize(
    ("existing", "message"),
    [(True, "exists already (remove it first)"), (False, "no folder {parent}")],
    ids=["file-exists", "no-parent-folder"],
)
def test_the_sheet_refuses_an_existing_file_or_a_missing_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], existing: bool, message: str
) -> None:
    path = tmp_path / "screens.png" if existing else tmp_path / "missing" / "screens.png"
    if existing:
        path.write_bytes(b"keep me")

    code, out, err = screens(["--sheet", str(path)], capsys)

    expected = message.format(parent=path.parent)
    assert (code, out, err) == (2, "", f"ticket-scanner: screens: {path}: {expected}\n")
    assert path.read_bytes() == b"keep me" if existing else not path.parent.exists()


def test_the_sheet_must_be_named_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "screens"

    code, _, err = screens(["--sheet", str(path)], capsys)

    assert code == 2
    assert err == f"ticket-scanner: screens: {path}: the sheet is a PNG: name it <something>.png\n"
    assert not path.exists()


def test_the_folder_gets_every_screen_at_both_sizes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "new" / "screens"

    code, printed, _ = screens(["--out", str(out)], capsys)

    expected = {f"{name}-{w}x{h}.png" for name in named_samples() for w, h in SIZES}
    assert code == 0
    assert {path.name for path in out.iterdir()} == expected
    assert len(printed.splitlines()) == len(expected)
    with Image.open(out / "valid-128x32.png") as image:
        assert image.size == (128, 32)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("file", "exists and is not a folder"),
        ("full", "folder is not empty (old screens would mix with new ones)"),
    ],
)
def test_the_folder_refuses_a_file_or_a_folder_with_something_in_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, message: str
) -> None:
    out = tmp_path / "screens"
    if kind == "file":
        out.write_text("keep me")
    else:
        out.mkdir()
        (out / "notes.txt").write_text("keep me")

    code, printed, err = screens(["--out", str(out)], capsys)

    assert (code, printed, err) == (2, "", f"ticket-scanner: screens: {out}: {message}\n")
    assert out.is_file() if kind == "file" else [p.name for p in out.iterdir()] == ["notes.txt"]
