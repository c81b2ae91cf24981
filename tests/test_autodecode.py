"""The ``auto`` decoder: everything zxing-cpp reads, more where a second look helps, same cost on
empty frames, and never more than its time budget on a hard one."""

import itertools
from pathlib import Path

import numpy as np
import pytest

from device.autodecode import AutoDecoder
from device.decode import Decoded, MissingLibraryError, ZbarDecoder, ZxingDecoder
from hal.ports import GrayPixels
from tests.samples import SAMPLES, Sample, samples

WITH_CODE = [sample for sample in samples() if sample.expected is not None]
WITHOUT_CODE = [sample for sample in samples() if sample.expected is None]
# Bent paper: zxing-cpp finds the symbol but cannot decode it; the second look can.
CRUMPLED = SAMPLES / "qrcode-4" / "14.webp"
# zxing-cpp finds the symbol, and nothing this project has reads it.
HOPELESS = SAMPLES / "qrcode-4" / "05.webp"


class RecordingDecoder:
    """Stands in for ZBar: finds nothing and remembers the sizes it was shown."""

    def __init__(self) -> None:
        self.shown: list[tuple[int, ...]] = []

    def decode(self, pixels: GrayPixels) -> list[Decoded]:
        self.shown.append(pixels.shape)
        return []


def sample_at(path: Path) -> Sample:
    (sample,) = [sample for sample in WITH_CODE if sample.path == path]
    return sample


def read_by(decoder: AutoDecoder | ZxingDecoder, sample: Sample) -> bool:
    return any(code.text == sample.expected for code in decoder.decode(sample.pixels()))


def test_auto_reads_every_photo_zxing_reads_and_more() -> None:
    zxing, auto = ZxingDecoder(), AutoDecoder.create()
    by_zxing = {sample.path for sample in WITH_CODE if read_by(zxing, sample)}
    by_auto = {sample.path for sample in WITH_CODE if read_by(auto, sample)}
    assert by_zxing <= by_auto
    assert len(by_auto) >= len(by_zxing) + 3  # measured: 125 -> 128 of 137
    assert auto.stats.rescued == len(by_auto - by_zxing)


def test_the_second_look_never_runs_on_photos_without_a_code() -> None:
    auto = AutoDecoder.create()
    noise = np.random.default_rng(7).integers(0, 256, (480, 640), dtype=np.uint8)
    frames = [sample.pixels() for sample in WITHOUT_CODE] + [noise, np.zeros((480, 640), np.uint8)]
    assert [auto.decode(frame) for frame in frames] == [[] for _ in frames]
    assert auto.stats.second_looks == 0


def test_a_rescued_code_is_placed_where_it_is_in_the_frame() -> None:
    sample = sample_at(CRUMPLED)
    photo = sample.pixels()
    frame = np.full((480, 640), 40, dtype=np.uint8)
    frame[100 : 100 + photo.shape[0], 200 : 200 + photo.shape[1]] = photo
    assert ZxingDecoder().decode(frame) == []

    auto = AutoDecoder.create()
    (code,) = auto.decode(frame)
    assert code.text == sample.expected
    assert auto.stats.rescued == 1
    xs, ys = [x for x, _ in code.position], [y for _, y in code.position]
    assert 200 <= min(xs) < max(xs) <= 200 + photo.shape[1]
    assert 100 <= min(ys) < max(ys) <= 100 + photo.shape[0]


def test_zbar_looks_at_the_region_then_at_it_scaled_up_then_at_the_whole_frame() -> None:
    zbar = RecordingDecoder()
    auto = AutoDecoder(ZxingDecoder(), zbar, budget_s=10.0)
    pixels = sample_at(HOPELESS).pixels()
    assert auto.decode(pixels) == []
    region, scaled, whole = zbar.shown
    assert region[0] < pixels.shape[0] or region[1] < pixels.shape[1]
    assert scaled == (region[0] * 2, region[1] * 2)
    assert whole == pixels.shape


def test_the_time_budget_stops_the_second_look_between_steps() -> None:
    zbar = RecordingDecoder()
    one_second_per_reading = itertools.count(0.0, 1.0).__next__
    auto = AutoDecoder(ZxingDecoder(), zbar, budget_s=1.5, clock=one_second_per_reading)
    assert auto.decode(sample_at(HOPELESS).pixels()) == []
    assert zbar.shown == []  # the zxing-cpp steps used the budget up
    assert auto.stats.out_of_time == 1


def test_without_libzbar0_the_zxing_steps_still_rescue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from device import autodecode  # noqa: PLC0415

    def missing() -> ZbarDecoder:
        raise MissingLibraryError("no libzbar0")

    monkeypatch.setattr(autodecode, "ZbarDecoder", missing)
    assert read_by(AutoDecoder.create(), sample_at(CRUMPLED))
