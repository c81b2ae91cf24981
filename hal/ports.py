"""Ports: what the application needs from hardware, named by role.

Adapters carry the technology in their name (``Picamera2Source``, ``GpioLights``,
``LumaDisplay``, ``SimBeeper``). They are thin: no business rules, no sleeps, and
each owns its ``close()``. Timing lives in ``device.feedback``, driven by the loop's
injected clock, so tests assert sequences of calls instead of waiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
from PIL import Image

LedName = Literal["green", "amber", "red"]
LED_NAMES: tuple[LedName, ...] = ("green", "amber", "red")

GrayPixels = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Frame:
    """One grayscale camera frame (rows x columns, uint8) and when it was captured."""

    pixels: GrayPixels
    captured_at: float  # seconds on the loop's monotonic clock
    index: int  # position in the source's stream; gaps are dropped frames


class FrameSource(Protocol):
    """A camera: hands out the newest frame, never a queue of stale ones."""

    def newest(self) -> Frame | None:
        """The newest frame not handed out before, or None when none has arrived since."""
        ...

    @property
    def finished(self) -> bool:
        """True once a finite source (a folder of images) has handed out its last frame."""
        ...

    def next_due(self) -> float | None:
        """When the next frame is expected on the loop's clock; None if unknown (a live camera)."""
        ...

    def wait_for_frame(self, timeout: float) -> bool:
        """A live camera: block up to ``timeout`` seconds until a frame waits; True if one does.

        A source paced by the loop's clock (``next_due`` is not None) returns False at once.
        """
        ...

    @property
    def dropped(self) -> int:
        """Frames that arrived but were superseded before the loop asked for them."""
        ...

    @property
    def skipped(self) -> int:
        """Frames that could not be read at all (a damaged image file); a camera has none."""
        ...

    def close(self) -> None: ...


class Display(Protocol):
    """A small monochrome screen."""

    @property
    def size(self) -> tuple[int, int]:
        """Width and height in pixels, e.g. (128, 64)."""
        ...

    def show(self, image: Image.Image, text: str) -> None:
        """Show a 1-bit image of exactly ``size``; ``text`` says the same in words (for logs)."""
        ...

    def close(self) -> None: ...


class Lights(Protocol):
    """Indicator LEDs, addressed by colour."""

    def set(self, name: LedName, on: bool) -> None: ...

    def close(self) -> None: ...


class Beeper(Protocol):
    """A buzzer. A plain (active) buzzer sounds at its own pitch whatever ``hz`` says."""

    def tone(self, hz: float | None) -> None:
        """Start sounding at ``hz``, or fall silent with None."""
        ...

    def close(self) -> None: ...


class Relay(Protocol):
    """A door strike or turnstile contact."""

    def set(self, energized: bool) -> None: ...

    def close(self) -> None: ...


class Trigger(Protocol):
    """The handheld's trigger button, polled by the loop."""

    @property
    def pressed(self) -> bool: ...

    def close(self) -> None: ...
