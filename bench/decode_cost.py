"""Part 1: what one frame costs each decoder, beside the bare library calls on the same frames.

Empty frames are the no-code photos cover-fitted to each size; QR frames are the code photos
letterboxed onto mid-grey. Every frame goes to every contender in turn, in an order that
rotates from frame to frame, so machine noise (another process, a frequency step) lands on
all of them alike instead of on whichever ran during the noisy second.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import zxingcpp
from pyzbar import pyzbar

from bench.samples import Photo, cover, letterbox
from bench.stats import Spread, spread_ns
from device.decode import make_decoder
from hal.ports import GrayPixels

SIZES: tuple[tuple[int, int], ...] = ((320, 240), (640, 480), (1280, 720))
KINDS = ("empty", "qr")
CONTENDERS = ("auto", "zxing", "zbar", "bare-zxing", "bare-zbar")
# The project's target: ``auto`` costs at most 10% more than bare zxing-cpp on the frames
# a gate sees most, empty ones, at the camera's 640x480.
RATIO_SIZE = "640x480"
WARM_UP_FRAMES = 3

DecodeCall = Callable[[GrayPixels], object]
T = TypeVar("T")


@dataclass(frozen=True)
class Cell:
    """One contender on one kind and size of frame."""

    contender: str
    kind: str
    size: str
    timing: Spread


@dataclass(frozen=True)
class DecodeCost:
    repetitions: int
    frames: dict[str, int]  # kind -> frames of that kind at each size
    cells: list[Cell]
    auto_over_bare_zxing: float  # median ratio on empty 640x480 frames

    def timing(self, contender: str, kind: str, size: str) -> Spread:
        return find(self.cells, contender, kind, size)


def find(cells: Sequence[Cell], contender: str, kind: str, size: str) -> Spread:
    """The timing of ``contender`` on ``kind`` frames of ``size`` ("640x480")."""
    for cell in cells:
        if (cell.contender, cell.kind, cell.size) == (contender, kind, size):
            return cell.timing
    raise KeyError(f"no measurement for {contender} on {kind} {size} frames")


def contenders() -> dict[str, DecodeCall]:
    """The project's decoders as the loop builds them, and the libraries called plainly."""
    qr_symbols = [pyzbar.ZBarSymbol.QRCODE]
    qr_formats = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)  # what QRCode converts to

    def bare_zxing(frame: GrayPixels) -> object:
        return zxingcpp.read_barcodes(frame, formats=qr_formats)

    def bare_zbar(frame: GrayPixels) -> object:
        height, width = frame.shape
        return pyzbar.decode((frame.tobytes(), width, height), symbols=qr_symbols)

    calls: dict[str, DecodeCall] = {
        name: make_decoder(name).decode for name in ("auto", "zxing", "zbar")
    }
    calls["bare-zxing"] = bare_zxing
    calls["bare-zbar"] = bare_zbar
    assert tuple(calls) == CONTENDERS
    return calls


def measure(photos: Sequence[Photo], *, repetitions: int, qr_photos: int | None) -> DecodeCost:
    """Time every contender on every frame ``repetitions`` times.

    ``qr_photos`` limits the code photos used (spread over all folders), for a quick run.
    """
    calls = contenders()
    empties = [photo.gray() for photo in photos if photo.expected is None]
    codes = _spread([photo.gray() for photo in photos if photo.expected is not None], qr_photos)
    cells: list[Cell] = []
    for width, height in SIZES:
        size = (width, height)
        framed = {
            "empty": [cover(image, size) for image in empties],
            "qr": [letterbox(image, size) for image in codes],
        }
        for kind in KINDS:
            durations = _time_interleaved(calls, framed[kind], repetitions)
            cells += [
                Cell(name, kind, f"{width}x{height}", spread_ns(ns))
                for name, ns in durations.items()
            ]
    auto = find(cells, "auto", "empty", RATIO_SIZE).median_ms
    bare = find(cells, "bare-zxing", "empty", RATIO_SIZE).median_ms
    return DecodeCost(repetitions, {"empty": len(empties), "qr": len(codes)}, cells, auto / bare)


def _time_interleaved(
    calls: dict[str, DecodeCall], frames: Sequence[GrayPixels], repetitions: int
) -> dict[str, list[int]]:
    names = list(calls)
    durations: dict[str, list[int]] = {name: [] for name in names}
    for frame in frames[:WARM_UP_FRAMES]:  # first calls load code and fill caches: not timed
        for name in names:
            calls[name](frame)
    with _no_gc():
        turn = 0
        for _ in range(repetitions):
            for frame in frames:
                turn += 1
                shift = turn % len(names)
                for name in names[shift:] + names[:shift]:
                    call = calls[name]
                    start = time.perf_counter_ns()
                    call(frame)
                    durations[name].append(time.perf_counter_ns() - start)
    return durations


@contextmanager
def _no_gc() -> Iterator[None]:
    """Keep Python's cycle collector from pausing inside one contender's timing."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _spread(items: list[T], limit: int | None) -> list[T]:
    """At most ``limit`` items taken evenly across the list (folders stay represented)."""
    if limit is None or limit >= len(items):
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]
