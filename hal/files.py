"""The ``images:DIR`` camera source: a folder of pictures played back as a paced stream.

Frame ``k`` (in natural name order) becomes available ``k / fps`` seconds after the first
``newest()`` call, on the injected clock. Like a real camera the source hands out only the
newest due frame: frames the loop was too slow for are skipped (never decoded) and counted
in ``dropped``. An image that cannot be read (truncated, damaged) is logged once, counted in
``skipped`` and played as no frame: one bad file never stops the loop.

Example::

    source = ImagesSource(Path("samples"), fps=10, clock=time.monotonic)
    while not source.finished:
        frame = source.newest()
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from hal.ports import Frame, GrayPixels

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".pgm"})
log = logging.getLogger(__name__)


class ImageFolderError(ValueError):
    """The folder is missing, not a folder, or holds no images; the message names it."""


class ImagesSource:
    """A FrameSource that plays the images in a folder at ``fps`` frames per second."""

    def __init__(self, folder: Path, *, fps: float, clock: Callable[[], float]) -> None:
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps for image folder {folder} must be a positive number, got {fps}")
        self._paths = list_images(folder)
        self._fps = fps
        self._clock = clock
        self._start: float | None = None  # clock time of the first newest() call
        self._next = 0  # first frame neither handed out nor skipped
        self._dropped = 0
        self._skipped = 0

    def newest(self) -> Frame | None:
        """The newest due frame not handed out before, or None when none is due yet."""
        now = self._clock()
        if self._start is None:
            self._start = now
        due = self._due_count(now)
        if due <= self._next:
            return None
        index = due - 1
        self._dropped += index - self._next
        self._next = due  # handed out or skipped: a bad file is read (and logged) once
        try:
            pixels = load_gray(self._paths[index])
        except ValueError as error:
            self._skipped += 1
            log.warning("frame skipped index=%d: %s", index, error)
            return None
        return Frame(pixels=pixels, captured_at=self._due_at(index), index=index)

    def next_due(self) -> float | None:
        """Clock time at which the next frame becomes available; None once finished."""
        if self.finished:
            return None
        if self._start is None:
            return self._clock()  # the first frame is due on the first newest() call
        return self._due_at(self._next)

    def wait_for_frame(self, timeout: float) -> bool:
        """Never blocks: frames are due on the loop's clock, and the loop sleeps on it."""
        return False

    @property
    def finished(self) -> bool:
        """True once the last image has been handed out."""
        return self._next >= len(self._paths)

    @property
    def dropped(self) -> int:
        """Frames skipped because a newer one was already due."""
        return self._dropped

    @property
    def skipped(self) -> int:
        """Frames whose image could not be read (truncated, damaged, not an image)."""
        return self._skipped

    def close(self) -> None:
        """Nothing to release: images are opened and closed one at a time."""

    def _due_at(self, index: int) -> float:
        assert self._start is not None
        return self._start + index / self._fps  # as frames_due() reckons it

    def _due_count(self, now: float) -> int:
        assert self._start is not None
        return frames_due(self._start, self._fps, now, limit=len(self._paths))


def frames_due(start: float, fps: float, now: float, *, limit: int) -> int:
    """How many frames of a stream paced at ``fps`` from ``start`` are due at ``now``.

    Frame ``k`` is due at ``start + k / fps``; counted with that very expression, so a frame is
    never due by one reckoning and not by the other because of rounding.
    """
    count = min(limit, max(0, math.floor((now - start) * fps) + 1))
    while count < limit and start + count / fps <= now:
        count += 1
    while count > 0 and start + (count - 1) / fps > now:
        count -= 1
    return count


def list_images(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, in natural name order (frame2 before frame10)."""
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ImageFolderError(f"image folder {folder} {what}")
    try:
        entries = list(folder.iterdir())
    except OSError as error:
        raise ImageFolderError(f"image folder {folder} cannot be read: {error.strerror}") from None
    if not entries:
        raise ImageFolderError(f"image folder {folder} is empty")
    images = [path for path in entries if is_image_file(path)]
    if not images:
        kinds = ", ".join(sorted(suffix.lstrip(".") for suffix in IMAGE_SUFFIXES))
        raise ImageFolderError(f"image folder {folder} holds no images ({kinds})")
    return sorted(images, key=lambda path: natural_key(path.name))


def is_image_file(path: Path) -> bool:
    """True for a regular file with an image suffix, in any case."""
    # Dot files are skipped: macOS leaves "._frame1.png" metadata files that are no images.
    hidden = path.name.startswith(".")
    return path.suffix.lower() in IMAGE_SUFFIXES and not hidden and path.is_file()


def natural_key(name: str) -> tuple[list[str | int], str]:
    """Sort key that compares digit runs as numbers and ignores case: frame2 < Frame10."""
    # re.split with a group alternates: text, digits, text, ... so odd positions are numbers
    parts: list[str | int] = [
        int(part) if position % 2 else part.casefold()
        for position, part in enumerate(re.split(r"(\d+)", name))
    ]
    return parts, name  # the name itself breaks ties such as "a01" vs "a1"


def load_gray(path: Path) -> GrayPixels:
    """Decode ``path`` as 8-bit grayscale (ITU-R 601 luma for colour images)."""
    try:
        with Image.open(path) as image:
            gray = image.convert("L")
    # OSError: unreadable or truncated; SyntaxError: corrupt PNG chunks; ValueError: odd modes
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc
    return np.array(gray, dtype=np.uint8)
