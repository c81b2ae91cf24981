"""QR decoding behind one small protocol: zxing-cpp by default, ZBar (pyzbar) selectable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from hal.ports import GrayPixels

DecoderName = Literal["zxing", "zbar"]
DECODER_NAMES: tuple[DecoderName, ...] = ("zxing", "zbar")

Point = tuple[int, int]


@dataclass(frozen=True)
class Decoded:
    """One QR code found in a frame: its exact text and its corners (clockwise from top-left)."""

    text: str
    position: tuple[Point, Point, Point, Point]


class Decoder(Protocol):
    """Finds QR codes in a grayscale frame."""

    def decode(self, pixels: GrayPixels) -> list[Decoded]: ...


class MissingLibraryError(RuntimeError):
    """A decoder's system library is not installed; the message names the package."""


class ZxingDecoder:
    """zxing-cpp: reads more than ZBar on real photos, at a fraction of the cost."""

    def __init__(self) -> None:
        import zxingcpp  # noqa: PLC0415 - keep start-up cheap for commands that never decode

        self._zxing = zxingcpp
        self._formats = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
        # Plain: the bytes transcoded as the code says (ECI or guessed charset), without
        # the "human readable" escapes zxing-cpp applies by default.
        self._text_mode = zxingcpp.TextMode.Plain

    def decode(self, pixels: GrayPixels) -> list[Decoded]:
        results = self._zxing.read_barcodes(
            pixels, formats=self._formats, text_mode=self._text_mode
        )
        return [Decoded(result.text, _zxing_corners(result.position)) for result in results]


class ZbarDecoder:
    """ZBar through pyzbar; needs the libzbar0 system package."""

    def __init__(self) -> None:
        try:
            from pyzbar import pyzbar  # noqa: PLC0415 - fails without libzbar0, so only on demand
        except ImportError as error:
            raise MissingLibraryError(
                "the zbar decoder needs the ZBar library: sudo apt-get install libzbar0"
            ) from error
        self._pyzbar = pyzbar
        self._symbols = [pyzbar.ZBarSymbol.QRCODE]

    def decode(self, pixels: GrayPixels) -> list[Decoded]:
        height, width = pixels.shape
        results = self._pyzbar.decode((pixels.tobytes(), width, height), symbols=self._symbols)
        # ZBar hands QR text over as UTF-8 whatever the code's own charset was.
        return [
            Decoded(result.data.decode("utf-8", errors="replace"), _zbar_corners(result.polygon))
            for result in results
        ]


def make_decoder(name: DecoderName) -> Decoder:
    """The decoder called ``name``: ``make_decoder("zxing").decode(pixels)``."""
    if name == "zxing":
        return ZxingDecoder()
    if name == "zbar":
        return ZbarDecoder()
    raise ValueError(f"unknown decoder {name!r}: expected one of {', '.join(DECODER_NAMES)}")


def _zxing_corners(position: object) -> tuple[Point, Point, Point, Point]:
    corners = [getattr(position, name) for name in ("top_left", "top_right")]
    corners += [getattr(position, name) for name in ("bottom_right", "bottom_left")]
    a, b, c, d = ((int(point.x), int(point.y)) for point in corners)
    return (a, b, c, d)


def _zbar_corners(polygon: list[tuple[int, int]]) -> tuple[Point, Point, Point, Point]:
    points = [(int(x), int(y)) for x, y in polygon]
    if len(points) != 4:  # ZBar may give more corners for a warped code: fall back to its box
        xs, ys = [x for x, _ in points], [y for _, y in points]
        points = [(min(xs), min(ys)), (max(xs), min(ys)), (max(xs), max(ys)), (min(xs), max(ys))]
    a, b, c, d = points
    return (a, b, c, d)
