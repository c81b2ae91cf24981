"""Part 2b: read rates on the sample photos made harder, as a gate's camera sees them.

The samples are good photos; a gate's are not. Each photo is degraded the same way every
run (seeded noise), so the rates compare decoders and releases, not luck: glare on a phone
screen, a dim low-contrast screen, motion blur, heavy JPEG, a code far away (small), noise.
A false positive is any code on a degraded photo that holds none.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter

from bench.samples import Photo
from device.cli import STILL_IMAGE_BUDGET_S
from device.decode import DECODER_NAMES, make_decoder
from hal.ports import GrayPixels

Degrade = Callable[[GrayPixels, int], GrayPixels]  # pixels, photo number -> degraded pixels


def _glare(pixels: GrayPixels, _: int) -> GrayPixels:
    """Half the contrast, and a bright spot off-centre, as a lamp on a phone screen."""
    height, width = pixels.shape
    rows, columns = np.mgrid[0:height, 0:width]
    distance2 = (columns - width * 0.6) ** 2 + (rows - height * 0.4) ** 2
    spot = np.exp(-distance2 / (2 * (width * 0.25) ** 2))
    return _clip(pixels * 0.5 + 60 + spot * 140)


def _low_contrast(pixels: GrayPixels, _: int) -> GrayPixels:
    return _clip(pixels * 0.25 + 100)


def _blur(pixels: GrayPixels, _: int) -> GrayPixels:
    return np.asarray(Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(1.6)))


def _jpeg(pixels: GrayPixels, _: int) -> GrayPixels:
    encoded = io.BytesIO()
    Image.fromarray(pixels).save(encoded, "JPEG", quality=12)
    return np.asarray(Image.open(encoded).convert("L"))


def _small(pixels: GrayPixels, _: int) -> GrayPixels:
    image = Image.fromarray(pixels)
    size = (max(1, image.width * 2 // 5), max(1, image.height * 2 // 5))
    return np.asarray(image.resize(size, Image.Resampling.BILINEAR))


def _noise(pixels: GrayPixels, number: int) -> GrayPixels:
    rng = np.random.default_rng(number)  # the same noise on the same photo every run
    return _clip(pixels + rng.normal(0, 28, pixels.shape))


def _clip(values: npt.NDArray[np.float64]) -> GrayPixels:
    clipped: GrayPixels = np.clip(values, 0, 255).astype(np.uint8)
    return clipped


DEGRADATIONS: dict[str, Degrade] = {
    "glare": _glare,
    "low contrast": _low_contrast,
    "blur": _blur,
    "jpeg q12": _jpeg,
    "small (40%)": _small,
    "noise": _noise,
}


@dataclass(frozen=True)
class DegradedReads:
    degradation: str
    decoder: str
    read: int
    with_code: int
    false_positives: int
    without_code: int


def measure(photos: Sequence[Photo]) -> list[DegradedReads]:
    """Every decoder on every photo under every degradation."""
    decoders = {name: make_decoder(name, budget_s=STILL_IMAGE_BUDGET_S) for name in DECODER_NAMES}
    originals = [(photo.expected, photo.pixels()) for photo in photos]
    with_code = sum(expected is not None for expected, _ in originals)
    rows: list[DegradedReads] = []
    for degradation, degrade in DEGRADATIONS.items():
        images = [(expected, degrade(pixels, n)) for n, (expected, pixels) in enumerate(originals)]
        for name, decoder in decoders.items():
            read = false_positives = 0
            for expected, pixels in images:
                texts = [code.text for code in decoder.decode(pixels)]
                read += expected is not None and expected in texts
                false_positives += expected is None and bool(texts)
            rows.append(
                DegradedReads(
                    degradation, name, read, with_code, false_positives, len(images) - with_code
                )
            )
    return rows
