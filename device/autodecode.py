"""``auto``: zxing-cpp on every frame, and a harder look only where it saw a code it could not read.

Most camera frames hold no code, and on those ``auto`` costs one zxing-cpp call. When
zxing-cpp finds a QR symbol but cannot decode it (a checksum error on a crumpled ticket,
glare, modules too small), the region around it gets other chances, cheapest first:

1. zxing-cpp with its global-histogram binarizer (uneven light),
2. zxing-cpp on the region scaled up twice (modules only a pixel or two wide),
3. the same on the region contrast-stretched first (glare, a dim phone screen),
4. ZBar on the stretched region, then on the region scaled up (ZBar samples the grid
   differently and copes with bent paper),
5. ZBar on the whole frame (when the symbol's outline was too far off to crop well).

The steps were chosen on the sample photos degraded by glare, low contrast, blur, JPEG
and small size: each one rescues photos the steps before it miss.

A time budget stops the sequence between steps, so one hard frame cannot stall the gate.
ZBar steps need libzbar0; without it ``auto`` still runs the zxing-cpp steps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from PIL import Image

from device.decode import (
    DEFAULT_BUDGET_S,
    Decoded,
    Decoder,
    MissingLibraryError,
    Point,
    Quad,
    ZbarDecoder,
    ZxingDecoder,
)
from hal.ports import GrayPixels

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # left, top, right, bottom (exclusive)
Attempt = Callable[[], list[Decoded]]

MARGIN = 0.25  # crop this much of the symbol's size around it: quiet zone and a bad outline
MAX_REGIONS = 2  # a ticket scanner looks at one code; more symbols are noise or a sheet
UPSCALE_BELOW_PX = 400  # a larger region's modules are big enough; scaling it up only costs


@dataclass
class SecondLookStats:
    """How often the harder look ran and what it brought; for ``make bench`` and the logs."""

    frames: int = 0
    second_looks: int = 0
    rescued: int = 0
    out_of_time: int = 0
    rescued_by: dict[str, int] = field(default_factory=dict)


class AutoDecoder:
    """zxing-cpp first; a second look (zxing-cpp variants, then ZBar) only at unreadable symbols."""

    def __init__(
        self,
        zxing: ZxingDecoder,
        zbar: Decoder | None,
        *,
        budget_s: float = DEFAULT_BUDGET_S,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._zxing = zxing
        self._zbar = zbar
        self._budget_s = budget_s
        self._clock = clock
        self.stats = SecondLookStats()

    @classmethod
    def create(cls, *, budget_s: float = DEFAULT_BUDGET_S) -> AutoDecoder:
        """zxing-cpp plus ZBar when libzbar0 is installed."""
        zbar: Decoder | None
        try:
            zbar = ZbarDecoder()
        except MissingLibraryError as error:
            log.warning("auto decoder without ZBar steps: %s", error)
            zbar = None
        return cls(ZxingDecoder(), zbar, budget_s=budget_s)

    def decode(self, pixels: GrayPixels) -> list[Decoded]:
        self.stats.frames += 1
        reading = self._zxing.read(pixels)
        regions = _regions_to_retry(reading.unreadable, reading.found, pixels.shape)
        if not regions:
            return reading.found
        self.stats.second_looks += 1
        deadline = self._clock() + self._budget_s
        for step, attempt in self._attempts(pixels, regions):
            if self._clock() > deadline:
                self.stats.out_of_time += 1
                log.debug("second look out of time before step=%s", step)
                break
            codes = attempt()
            if codes:
                self.stats.rescued += 1
                self.stats.rescued_by[step] = self.stats.rescued_by.get(step, 0) + 1
                return _unique(reading.found + codes)
        return reading.found

    def _attempts(self, pixels: GrayPixels, regions: list[Box]) -> Iterator[tuple[str, Attempt]]:
        """The second look's steps, cheapest and most often useful first."""
        zbar = self._zbar
        for box in regions:
            crop = _crop(pixels, box)
            stretched = _stretched(crop)  # a table lookup: cheap next to any decode
            small = max(crop.shape) < UPSCALE_BELOW_PX
            yield "zxing-global", partial(_look, self._zxing_global, crop, box)
            if small:
                yield "zxing-2x", partial(_look, self._zxing.decode, crop, box, scale=2)
                yield (
                    "zxing-2x-stretched",
                    partial(_look, self._zxing.decode, stretched, box, scale=2),
                )
            if zbar is not None:
                yield "zbar-stretched", partial(_look, zbar.decode, stretched, box)
                if small:
                    yield "zbar-2x", partial(_look, zbar.decode, crop, box, scale=2)
        if zbar is not None:
            yield "zbar-frame", partial(zbar.decode, pixels)

    def _zxing_global(self, pixels: GrayPixels) -> list[Decoded]:
        return self._zxing.read(pixels, binarizer="global").found


def _look(
    decode: Callable[[GrayPixels], list[Decoded]], crop: GrayPixels, box: Box, scale: int = 1
) -> list[Decoded]:
    """Decode ``crop`` of ``box`` (scaled up ``scale`` times); corners in frame coordinates."""
    return _moved(decode(_scaled(crop, scale) if scale > 1 else crop), box, scale)


def _regions_to_retry(
    unreadable: list[Quad], found: list[Decoded], shape: tuple[int, ...]
) -> list[Box]:
    """Boxes around unreadable symbols, largest first, without the ones inside a bigger one.

    zxing-cpp often reports one damaged code as several partial symbols; the largest box
    holds the whole code. Symbols overlapping a code that was read are that code's echo.
    """
    height, width = shape[0], shape[1]
    read_boxes = [_bounds(code.position) for code in found]
    boxes = sorted((_bounds(quad) for quad in unreadable), key=_area, reverse=True)
    kept: list[Box] = []
    for box in boxes:
        if any(_overlaps(box, other) for other in read_boxes):
            continue
        if any(_inside(box, bigger) for bigger in kept):
            continue
        kept.append(box)
    return [_with_margin(box, width, height) for box in kept[:MAX_REGIONS]]


def _bounds(quad: Quad) -> Box:
    xs, ys = [x for x, _ in quad], [y for _, y in quad]
    return min(xs), min(ys), max(xs), max(ys)


def _area(box: Box) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _inside(inner: Box, outer: Box) -> bool:
    """Mostly inside: at least half of ``inner``'s area lies within ``outer``."""
    left, top = max(inner[0], outer[0]), max(inner[1], outer[1])
    right, bottom = min(inner[2], outer[2]), min(inner[3], outer[3])
    shared = max(0, right - left) * max(0, bottom - top)
    return shared * 2 >= _area(inner)


def _with_margin(box: Box, width: int, height: int) -> Box:
    margin = int(max(box[2] - box[0], box[3] - box[1]) * MARGIN) + 4
    return (
        max(0, box[0] - margin),
        max(0, box[1] - margin),
        min(width, box[2] + margin),
        min(height, box[3] + margin),
    )


def _crop(pixels: GrayPixels, box: Box) -> GrayPixels:
    left, top, right, bottom = box
    return np.ascontiguousarray(pixels[top:bottom, left:right])


def _scaled(pixels: GrayPixels, factor: int) -> GrayPixels:
    height, width = pixels.shape
    image = Image.fromarray(pixels).resize(
        (width * factor, height * factor), Image.Resampling.BILINEAR
    )
    return np.asarray(image)


def _stretched(pixels: GrayPixels) -> GrayPixels:
    """Contrast stretched so the darkest and brightest 1% become black and white."""
    counts = np.bincount(pixels.ravel(), minlength=256).cumsum()
    low = int(np.searchsorted(counts, counts[-1] * 0.01))
    high = int(np.searchsorted(counts, counts[-1] * 0.99))
    if high - low < 8:  # flat: nothing to stretch, and noise would be blown up
        return pixels
    table = np.clip((np.arange(256) - low) * (255 / (high - low)), 0, 255).astype(np.uint8)
    stretched: GrayPixels = table[pixels]
    return stretched


def _moved(codes: list[Decoded], box: Box, scale: int = 1) -> list[Decoded]:
    """Corners found in a (scaled) crop of ``box``, in the frame's coordinates."""
    left, top = box[0], box[1]

    def point(p: Point) -> Point:
        return left + p[0] // scale, top + p[1] // scale

    return [
        Decoded(code.text, (point(a), point(b), point(c), point(d)))
        for code in codes
        for a, b, c, d in [code.position]
    ]


def _unique(codes: list[Decoded]) -> list[Decoded]:
    """One entry per text, the first (zxing-cpp's own read) winning."""
    first: dict[str, Decoded] = {}
    for code in codes:
        first.setdefault(code.text, code)
    return list(first.values())
