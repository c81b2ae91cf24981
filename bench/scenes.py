"""Camera frames for the loop: guests holding up QR tickets in front of real photos.

A ``Reel`` stores each background and each code's QR tile once and draws frame ``k`` on
demand into a fresh array, as a camera hands out a new buffer for every frame. Guest ``i``
shows a distinct code for a few frames, then steps away for a few frames.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import zxingcpp

from bench import BenchError
from bench.samples import Photo, cover
from hal.ports import GrayPixels

FRAME_SIZE = (640, 480)
TILE_SCALE = 4  # pixels per QR module: about 180 px for a ticket code, as at arm's length
MIN_BACKGROUND_SIDE = 200  # smaller photos (1x1 traps, icons) make poor scenery
UNKNOWN_BOOKING_ID = 900_000  # far from the sandbox's ids, so the sandbox answers 400


@dataclass(frozen=True)
class Shot:
    """What one frame shows: a background, and maybe QR tile ``tile`` with its corner at ``at``."""

    background: int
    tile: int | None = None
    at: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class Reel:
    """A finite camera stream; ``frame(k)`` draws frame ``k``."""

    backgrounds: list[GrayPixels]
    tiles: list[GrayPixels]
    shots: list[Shot]

    @property
    def size(self) -> tuple[int, int]:
        height, width = self.backgrounds[0].shape
        return width, height

    def __len__(self) -> int:
        return len(self.shots)

    def frame(self, index: int) -> GrayPixels:
        shot = self.shots[index]
        pixels = self.backgrounds[shot.background].copy()
        if shot.tile is not None:
            tile = self.tiles[shot.tile]
            x, y = shot.at
            pixels[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
        return pixels


def unknown_code(number: int) -> str:
    """An AnyRoad-style ticket code (data URI of JSON ids) that no sandbox ticket has."""
    ids = {"booking_id": UNKNOWN_BOOKING_ID + number, "ticket_id": number, "guest_id": number}
    raw = json.dumps(ids, separators=(",", ":")).encode()
    return "data:application/json;base64," + base64.b64encode(raw).decode("ascii")


def qr_tile(text: str) -> GrayPixels:
    """The QR code of ``text`` with its quiet zone, black on white."""
    symbol = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode)
    return np.asarray(zxingcpp.write_barcode_to_image(symbol, scale=TILE_SCALE), dtype=np.uint8)


def backgrounds(photos: Sequence[Photo], size: tuple[int, int] = FRAME_SIZE) -> list[GrayPixels]:
    """The no-code photos large enough to be scenery, cover-fitted to ``size``."""
    scenery = []
    for photo in photos:
        if photo.expected is not None:
            continue
        image = photo.gray()
        if min(image.size) >= MIN_BACKGROUND_SIDE:
            scenery.append(cover(image, size))
    if not scenery:
        raise BenchError(f"no no-code photo is at least {MIN_BACKGROUND_SIDE} px on each side")
    return scenery


def guest_reel(
    codes: Sequence[str],
    scenery: Sequence[GrayPixels],
    *,
    code_frames: int,
    gap_frames: int,
    lead_frames: int = 0,
    trail_frames: int = 0,
) -> Reel:
    """Guests one after another: each code in view ``code_frames``, then ``gap_frames`` not.

    ``lead_frames`` and ``trail_frames`` of empty scenery come before and after. Each guest
    gets the next background and a tile position of its own (seeded: every run plays the
    same frames).
    """
    tiles = [qr_tile(code) for code in codes]
    width, height = scenery[0].shape[1], scenery[0].shape[0]
    shots = [Shot(0)] * lead_frames
    for number, tile in enumerate(tiles):
        place = random.Random(number)  # noqa: S311 - scenery, not secrets
        if tile.shape[0] > height or tile.shape[1] > width:
            raise BenchError(f"code {number} ({tile.shape[1]} px) does not fit a {width}x{height}")
        at = (
            place.randrange(width - tile.shape[1] + 1),
            place.randrange(height - tile.shape[0] + 1),
        )
        background = number % len(scenery)
        shots += [Shot(background, number, at)] * code_frames
        shots += [Shot(background)] * gap_frames
    shots += [Shot(0)] * trail_frames
    return Reel(list(scenery), tiles, shots)
