"""The real QR photos in tests/data/qr-samples (from zxing-cpp's test samples, Apache-2.0)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from hal.ports import GrayPixels

SAMPLES = Path(__file__).parent / "data" / "qr-samples"
IMAGE_SUFFIXES = {".png", ".jpg", ".webp"}


@dataclass(frozen=True)
class Sample:
    path: Path
    expected: str | None  # None: a photo with no code in it

    def pixels(self) -> GrayPixels:
        with Image.open(self.path) as image:
            return np.asarray(image.convert("L"))


def samples() -> list[Sample]:
    """Every photo: those with a code (and its exact text) and the false-positive traps."""
    found = []
    for path in sorted(SAMPLES.glob("*/*")):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        text_file = path.with_suffix(".txt")
        if path.parent.name.startswith("qrcode-"):
            found.append(Sample(path, text_file.read_bytes().decode("utf-8")))
        else:
            found.append(Sample(path, None))
    return found
