"""Camera frames for loop tests: folders of PNGs with QR codes (or nothing) in view."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zxingcpp
from PIL import Image

Shot = tuple[str | None, int]  # (code in view or None, how many frames)


def qr_picture(text: str | None, size: tuple[int, int] = (320, 240)) -> Image.Image:
    view = Image.new("L", size, 110)
    if text is not None:
        symbol = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode)
        tile = Image.fromarray(
            np.asarray(zxingcpp.write_barcode_to_image(symbol, scale=3), dtype=np.uint8)
        )
        view.paste(tile, ((size[0] - tile.width) // 2, (size[1] - tile.height) // 2))
    return view


def write_frames(
    folder: Path,
    shots: Sequence[tuple[Any, int]],
    picture: Callable[[Any], Image.Image] = qr_picture,
) -> Path:
    """frame00000.png ... one file per frame (hard links for repeats); returns the folder.

    ``picture`` draws what each shot shows (default: a text's QR code, or nothing for None).
    """
    folder.mkdir(parents=True, exist_ok=True)
    pictures: dict[Any, Path] = {}
    index = 0
    for text, count in shots:
        if text not in pictures:
            pictures[text] = folder.parent / f"{folder.name}-picture{len(pictures)}.png"
            picture(text).save(pictures[text])
        for _ in range(count):
            os.link(pictures[text], folder / f"frame{index:05d}.png")
            index += 1
    return folder
