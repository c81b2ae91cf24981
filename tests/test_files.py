"""The ``images:DIR`` source against a fake clock and image files written with Pillow."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hal import files
from hal.files import ImageFolderError, ImagesSource, natural_key
from hal.ports import Frame, GrayPixels


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def write_gray(path: Path, value: int, size: tuple[int, int] = (8, 6)) -> Path:
    """An image whose every pixel is ``value``, so a frame tells which file it came from."""
    Image.new("L", size, value).save(path)
    return path


def folder_of(tmp_path: Path, count: int) -> Path:
    """``count`` PNGs frame0..frame{count-1}; frame k has pixel value 10 * k."""
    for k in range(count):
        write_gray(tmp_path / f"frame{k}.png", 10 * k)
    return tmp_path


def value_of(frame: Frame | None) -> int:
    """The pixel value that identifies which file a frame came from."""
    assert frame is not None
    return int(frame.pixels[0, 0])


# --- order ----------------------------------------------------------------------------------


def test_images_play_in_natural_name_order(tmp_path: Path) -> None:
    for value, name in [(2, "frame2.png"), (10, "frame10.PNG"), (1, "Frame1.jpg")]:
        write_gray(tmp_path / name, value)
    clock = FakeClock()
    source = ImagesSource(tmp_path, fps=1, clock=clock)

    values = []
    while not source.finished:
        values.append(value_of(source.newest()))
        clock.now += 1
    assert values == [1, 2, 10]


def test_natural_key_compares_numbers_as_numbers() -> None:
    names = ["f10.png", "f2.png", "F1.png", "f02b.png", "g.png"]
    assert sorted(names, key=natural_key) == ["F1.png", "f2.png", "f02b.png", "f10.png", "g.png"]


def test_only_image_files_are_played(tmp_path: Path) -> None:
    write_gray(tmp_path / "a.bmp", 1)
    write_gray(tmp_path / "b.pgm", 2)
    write_gray(tmp_path / "c.webp", 3)
    write_gray(tmp_path / "d.JPEG", 4)
    (tmp_path / "notes.txt").write_text("not a frame")
    (tmp_path / "sub.png").mkdir()  # a folder, whatever its name
    write_gray(tmp_path / "._a.png", 9)  # macOS metadata file
    clock = FakeClock()
    source = ImagesSource(tmp_path, fps=1, clock=clock)

    indices = []
    while not source.finished:
        frame = source.newest()
        assert frame is not None
        indices.append(frame.index)
        clock.now += 1
    assert indices == [0, 1, 2, 3]


# --- pacing ---------------------------------------------------------------------------------


def test_first_frame_is_due_on_the_first_call_and_the_next_not_before_its_time(
    tmp_path: Path,
) -> None:
    clock = FakeClock(100.0)
    source = ImagesSource(folder_of(tmp_path, 3), fps=4, clock=clock)

    first = source.newest()
    assert first is not None
    assert (first.index, first.captured_at) == (0, 100.0)
    assert source.newest() is None  # handed out already, the next is not due

    clock.now = 100.24
    assert source.newest() is None
    clock.now = 100.25
    second = source.newest()
    assert second is not None
    assert (second.index, second.captured_at, value_of(second)) == (1, 100.25, 10)


def test_the_newest_due_frame_wins_and_skipped_ones_count_as_dropped(tmp_path: Path) -> None:
    clock = FakeClock(0.0)
    source = ImagesSource(folder_of(tmp_path, 6), fps=10, clock=clock)
    assert value_of(source.newest()) == 0

    clock.now = 0.35  # frames 1, 2 and 3 are due; only 3 is handed out
    frame = source.newest()
    assert frame is not None
    assert (frame.index, value_of(frame)) == (3, 30)
    assert frame.captured_at == pytest.approx(0.3)
    assert source.dropped == 2

    clock.now = 10.0  # long past the end: the last frame, never a stale one
    last = source.newest()
    assert last is not None
    assert last.index == 5
    assert source.dropped == 3
    assert source.finished


def test_skipped_frames_are_never_decoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = folder_of(tmp_path, 5)
    loaded: list[str] = []
    real_load = files.load_gray

    def spy(path: Path) -> GrayPixels:
        loaded.append(path.name)
        return real_load(path)

    monkeypatch.setattr(files, "load_gray", spy)
    clock = FakeClock(0.0)
    source = ImagesSource(folder, fps=1, clock=clock)
    source.newest()
    clock.now = 3.5
    source.newest()
    assert loaded == ["frame0.png", "frame3.png"]


def test_next_due_says_when_to_ask_again(tmp_path: Path) -> None:
    clock = FakeClock(50.0)
    source = ImagesSource(folder_of(tmp_path, 2), fps=2, clock=clock)
    assert source.next_due() == 50.0  # not started: the first frame is due right away

    source.newest()
    assert source.next_due() == 50.5
    clock.now = 50.5
    source.newest()
    assert source.next_due() is None


def test_due_times_survive_float_rounding(tmp_path: Path) -> None:
    # (100 + 1/10 - 100) * 10 < 1 in floating point: frame 1 must still be due at next_due()
    clock = FakeClock(100.0)
    source = ImagesSource(folder_of(tmp_path, 12), fps=10, clock=clock)
    source.newest()
    for index in range(1, 12):
        due = source.next_due()
        assert due is not None
        clock.now = due
        frame = source.newest()
        assert frame is not None
        assert frame.index == index
    assert source.dropped == 0


def test_finished_only_after_the_last_frame_is_handed_out(tmp_path: Path) -> None:
    clock = FakeClock(0.0)
    source = ImagesSource(folder_of(tmp_path, 2), fps=1, clock=clock)
    assert not source.finished
    source.newest()
    assert not source.finished
    clock.now = 1.0
    source.newest()
    assert source.finished
    assert source.newest() is None
    source.close()


# --- pixels ---------------------------------------------------------------------------------


def test_colour_images_become_601_luma(tmp_path: Path) -> None:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (12, 200, 99)]
    image = Image.new("RGB", (len(colours), 3))
    for x, colour in enumerate(colours):
        for y in range(3):
            image.putpixel((x, y), colour)
    image.save(tmp_path / "colour.png")

    frame = ImagesSource(tmp_path, fps=1, clock=FakeClock()).newest()
    assert frame is not None
    assert frame.pixels.dtype == np.uint8
    assert frame.pixels.shape == (3, len(colours))  # rows x columns
    expected = [round(0.299 * r + 0.587 * g + 0.114 * b) for r, g, b in colours]
    assert np.abs(frame.pixels[0].astype(int) - expected).max() <= 1


def test_palette_and_alpha_images_load_as_gray(tmp_path: Path) -> None:
    Image.new("RGBA", (4, 4), (255, 255, 255, 255)).save(tmp_path / "a.png")
    Image.new("P", (4, 4), 0).save(tmp_path / "b.png")
    clock = FakeClock()
    source = ImagesSource(tmp_path, fps=1, clock=clock)
    first = source.newest()
    clock.now += 1
    second = source.newest()
    assert first is not None
    assert second is not None
    assert first.pixels.dtype == second.pixels.dtype == np.uint8
    assert int(first.pixels[0, 0]) == 255


# --- errors ---------------------------------------------------------------------------------


def test_missing_folder_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ValueError, match=rf"{re.escape(str(missing))}.*does not exist"):
        ImagesSource(missing, fps=1, clock=FakeClock())


def test_a_file_instead_of_a_folder_is_named(tmp_path: Path) -> None:
    path = write_gray(tmp_path / "one.png", 1)
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}.*not a folder"):
        ImagesSource(path, fps=1, clock=FakeClock())


def test_folder_without_images_is_named(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no frames here")
    with pytest.raises(ValueError, match=rf"{re.escape(str(tmp_path))}.*no images"):
        ImagesSource(tmp_path, fps=1, clock=FakeClock())


@pytest.mark.parametrize("fps", [0.0, -1.0, float("nan"), float("inf")])
def test_fps_must_be_positive(tmp_path: Path, fps: float) -> None:
    with pytest.raises(ValueError, match="fps"):
        ImagesSource(folder_of(tmp_path, 1), fps=fps, clock=FakeClock())


def test_an_empty_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(ImageFolderError, match=rf"{re.escape(str(tmp_path))} is empty"):
        ImagesSource(tmp_path, fps=1, clock=FakeClock())


def test_unreadable_images_are_skipped_counted_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hal.files")  # whatever an earlier test left
    write_gray(tmp_path / "frame0.png", 0)
    (tmp_path / "frame1.png").write_bytes(b"not a png")
    write_gray(tmp_path / "frame2.png", 20)
    half = write_gray(tmp_path / "frame3.png", 30, size=(400, 300))
    half.write_bytes(half.read_bytes()[:120])  # "image file is truncated"
    write_gray(tmp_path / "frame4.png", 40)
    clock = FakeClock(0.0)
    source = ImagesSource(tmp_path, fps=1, clock=clock)
    seen: list[int | None] = []
    while not source.finished:
        frame = source.newest()
        seen.append(None if frame is None else value_of(frame))
        clock.now += 1
    assert seen == [0, None, 20, None, 40]  # played on, in time, past both bad files
    assert source.skipped == 2
    assert source.dropped == 0
    warned = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert len(warned) == 2
    assert "frame1.png" in warned[0] and "frame3.png" in warned[1]


def test_the_last_image_unreadable_still_finishes(tmp_path: Path) -> None:
    write_gray(tmp_path / "frame0.png", 0)
    (tmp_path / "frame1.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    clock = FakeClock(0.0)
    source = ImagesSource(tmp_path, fps=1, clock=clock)
    assert value_of(source.newest()) == 0
    clock.now = 1.0
    assert source.newest() is None
    assert source.finished
    assert source.skipped == 1
