"""Decoders on real photos and on generated frames: exact text, no false positives."""

import numpy as np
import pytest
import zxingcpp

from device.decode import Decoder, make_decoder
from tests.samples import samples

ALL = samples()
WITH_CODE = [sample for sample in ALL if sample.expected is not None]
WITHOUT_CODE = [sample for sample in ALL if sample.expected is None]


def frame_with(text: str, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    symbol = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode)
    tile = np.asarray(zxingcpp.write_barcode_to_image(symbol, scale=5), dtype=np.uint8)
    frame = np.full((size[1], size[0]), 128, dtype=np.uint8)
    top, left = 40, 60
    frame[top : top + tile.shape[0], left : left + tile.shape[1]] = tile
    return frame


def reads(decoder: Decoder) -> int:
    return sum(
        any(code.text == sample.expected for code in decoder.decode(sample.pixels()))
        for sample in WITH_CODE
    )


def test_the_sample_set_is_complete() -> None:
    assert (len(WITH_CODE), len(WITHOUT_CODE)) == (137, 46)


@pytest.mark.parametrize(("name", "at_least"), [("auto", 128), ("zxing", 125), ("zbar", 95)])
def test_reads_the_real_photos(name: str, at_least: int) -> None:
    assert reads(make_decoder(name)) >= at_least  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["auto", "zxing", "zbar"])
def test_no_false_positives(name: str) -> None:
    decoder = make_decoder(name)  # type: ignore[arg-type]
    found = {sample.path.name: decoder.decode(sample.pixels()) for sample in WITHOUT_CODE}
    assert {name: codes for name, codes in found.items() if codes} == {}


@pytest.mark.parametrize("name", ["auto", "zxing", "zbar"])
@pytest.mark.parametrize(
    "text",
    [
        "data:application/json;base64,eyJib29raW5nX2lkIjoxMDAxfQ==",
        "Grüße, 東京 🎫",
        '{"qr_code": "x", "device": "evil"}',
        "\x1b[2Jcleared",
    ],
)
def test_text_comes_back_exactly(name: str, text: str) -> None:
    codes = make_decoder(name).decode(frame_with(text))  # type: ignore[arg-type]
    assert [code.text for code in codes] == [text]


def test_position_is_where_the_code_is() -> None:
    (code,) = make_decoder("zxing").decode(frame_with("here"))
    xs = [x for x, _ in code.position]
    ys = [y for _, y in code.position]
    assert 60 <= min(xs) < max(xs) < 60 + 200
    assert 40 <= min(ys) < max(ys) < 40 + 200
    assert code.position[0] == (min(xs), min(ys))  # clockwise from the top-left corner


def test_an_empty_frame_has_no_codes() -> None:
    assert make_decoder("zxing").decode(np.zeros((480, 640), dtype=np.uint8)) == []


def test_an_unknown_decoder_is_refused() -> None:
    with pytest.raises(ValueError, match="expected one of auto, zxing, zbar"):
        make_decoder("opencv")  # type: ignore[arg-type]
