"""QR decoding behind one small protocol: zxing-cpp and ZBar (pyzbar); ``auto`` combines them.

``make_decoder("auto")`` (the default, in ``device.autodecode``) runs zxing-cpp on every frame
and looks harder only where zxing-cpp saw a QR code it could not read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from hal.ports import GrayPixels

DecoderName = Literal["auto", "zxing", "zbar"]
DECODER_NAMES: tuple[DecoderName, ...] = ("auto", "zxing", "zbar")

Point = tuple[int, int]
Quad = tuple[Point, Point, Point, Point]


@dataclass(frozen=True)
class Decoded:
    """One QR code found in a frame: its exact text and its corners (clockwise from top-left)."""

    text: str
    position: Quad


@dataclass(frozen=True)
class Reading:
    """What zxing-cpp made of a frame: the codes it read and where it saw codes it could not."""

    found: list[Decoded]
    unreadable: list[Quad]


Binarizer = Literal["local", "global"]


class Decoder(Protocol):
    """Finds QR codes in a grayscale frame."""

    def decode(self, pixels: GrayPixels) -> list[Decoded]: ...


# ``auto`` spends at most about this long on a second look at one hard frame: a guest
# barely notices 0.1 s, and the next frame (33 ms later) is another chance anyway.
DEFAULT_BUDGET_S = 0.1


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
        self._binarizers = {
            "local": zxingcpp.Binarizer.LocalAverage,
            "global": zxingcpp.Binarizer.GlobalHistogram,
        }

    def decode(self, pixels: GrayPixels) -> list[Decoded]:
        return self.read(pixels).found

    def read(self, pixels: GrayPixels, *, binarizer: Binarizer = "local") -> Reading:
        """Read ``pixels``, keeping the symbols found but not decoded (checksum errors...)."""
        results = self._zxing.read_barcodes(
            pixels,
            formats=self._formats,
            # QR finder patterns are found at any angle; the 90/270 degree passes only
            # help linear barcodes (the samples read the same without them).
            try_rotate=False,
            # Light-on-dark codes (a phone in dark mode) need the inverted pass.
            try_invert=True,
            text_mode=self._text_mode,
            binarizer=self._binarizers[binarizer],
            return_errors=True,
        )
        found, unreadable = [], []
        for result in results:
            corners = _zxing_corners(result.position)
            if result.valid:
                found.append(Decoded(result.text, corners))
            else:
                unreadable.append(corners)
        return Reading(found, unreadable)


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


def make_decoder(name: DecoderName, *, budget_s: float = DEFAULT_BUDGET_S) -> Decoder:
    """The decoder called ``name``: ``make_decoder("auto").decode(pixels)``.

    ``budget_s`` caps the extra work ``auto`` spends on one hard frame.
    """
    if name == "auto":
        from device.autodecode import AutoDecoder  # noqa: PLC0415 - it imports this module

        return AutoDecoder.create(budget_s=budget_s)
    if name == "zxing":
        return ZxingDecoder()
    if name == "zbar":
        return ZbarDecoder()
    raise ValueError(f"unknown decoder {name!r}: expected one of {', '.join(DECODER_NAMES)}")


def _zxing_corners(position: object) -> Quad:
    corners = [getattr(position, name) for name in ("top_left", "top_right")]
    corners += [getattr(position, name) for name in ("bottom_right", "bottom_left")]
    a, b, c, d = ((int(point.x), int(point.y)) for point in corners)
    return (a, b, c, d)


def _zbar_corners(polygon: list[tuple[int, int]]) -> Quad:
    points = [(int(x), int(y)) for x, y in polygon]
    if len(points) != 4:  # ZBar may give more corners for a warped code: fall back to its box
        xs, ys = [x for x, _ in points], [y for _, y in points]
        points = [(min(xs), min(ys)), (max(xs), min(ys)), (max(xs), max(ys)), (min(xs), max(ys))]
    a, b, c, d = points
    return (a, b, c, d)
