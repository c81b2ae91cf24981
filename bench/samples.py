"""The sample photos (``qrcode-N`` with expected texts, ``falsepositives-N`` without codes).

The layout is zxing-cpp's test samples, as in ``tests/data/qr-samples``: every image
``<stem>.<png|jpg|webp>`` in a ``qrcode-N`` folder has ``<stem>.txt`` beside it holding the
exact expected text (UTF-8); ``falsepositives-N`` folders hold photos with no code at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from bench import BenchError
from hal.ports import GrayPixels

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".webp"})
LETTERBOX_GREY = 128


@dataclass(frozen=True)
class Photo:
    """One sample photo; ``expected`` is its code's exact text, None for a photo with no code."""

    path: Path
    folder: str
    expected: str | None

    def gray(self) -> Image.Image:
        """The photo as an 8-bit grayscale PIL image, loaded now."""
        try:
            with Image.open(self.path) as image:
                image.load()
                return image.convert("L")
        except (OSError, ValueError) as error:
            raise BenchError(f"cannot read sample photo {self.path}: {error}") from error

    def pixels(self) -> GrayPixels:
        """The photo at its own size, as ``ticket-scanner decode`` would see it."""
        return np.asarray(self.gray())


def load_photos(root: Path) -> list[Photo]:
    """Every photo under ``root``, those with codes first; refuses an incomplete layout."""
    if not root.is_dir():
        raise BenchError(f"samples folder {root} does not exist (see --samples)")
    with_codes: list[Photo] = []
    without: list[Photo] = []
    for folder in sorted(path for path in root.iterdir() if path.is_dir()):
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if folder.name.startswith("qrcode-"):
            with_codes += [Photo(p, folder.name, _expected_text(p)) for p in images]
        elif folder.name.startswith("falsepositives-"):
            without += [Photo(p, folder.name, None) for p in images]
    if not with_codes or not without:
        raise BenchError(
            f"samples folder {root} needs photos in qrcode-N and in falsepositives-N folders "
            f"(found {len(with_codes)} with codes, {len(without)} without)"
        )
    return with_codes + without


def _expected_text(image: Path) -> str:
    text_file = image.with_suffix(".txt")
    try:
        return text_file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise BenchError(f"{image} has no expected text: {text_file.name} is missing") from None
    except UnicodeDecodeError as error:
        raise BenchError(f"{text_file} is not UTF-8: {error}") from None


def cover(image: Image.Image, size: tuple[int, int]) -> GrayPixels:
    """``image`` scaled and cropped to fill ``size`` exactly (a camera sees a whole scene)."""
    return np.asarray(ImageOps.fit(image, size, Image.Resampling.BILINEAR))


def letterbox(image: Image.Image, size: tuple[int, int]) -> GrayPixels:
    """``image`` scaled to fit inside ``size``, centred on mid-grey, nothing cropped off."""
    inner = ImageOps.contain(image, size, Image.Resampling.BILINEAR)
    canvas = Image.new("L", size, LETTERBOX_GREY)
    canvas.paste(inner, ((size[0] - inner.width) // 2, (size[1] - inner.height) // 2))
    return np.asarray(canvas)
