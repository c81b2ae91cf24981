"""Sim adapters: every output call becomes one event (a JSON line), so the loop runs off the Pi."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from PIL import Image

from hal.ports import LedName

Emit = Callable[[Mapping[str, Any]], None]


class SimDisplay:
    """A display that records what it was asked to show; ``image`` keeps the last picture."""

    def __init__(self, emit: Emit, size: tuple[int, int] = (128, 64)) -> None:
        self._emit = emit
        self._size = size
        self.image: Image.Image | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    def show(self, image: Image.Image, text: str) -> None:
        if image.size != self._size:
            raise ValueError(f"image is {image.size}, display is {self._size}")
        self.image = image
        self._emit({"event": "display", "text": text})

    def close(self) -> None:
        self._emit({"event": "display", "text": "", "closed": True})


class SimLights:
    def __init__(self, emit: Emit) -> None:
        self._emit = emit

    def set(self, name: LedName, on: bool) -> None:
        self._emit({"event": "led", "name": name, "on": on})

    def close(self) -> None:
        """Nothing to release."""


class SimBeeper:
    def __init__(self, emit: Emit) -> None:
        self._emit = emit

    def tone(self, hz: float | None) -> None:
        self._emit({"event": "buzzer", "hz": hz})

    def close(self) -> None:
        """Nothing to release."""


class SimRelay:
    def __init__(self, emit: Emit) -> None:
        self._emit = emit

    def set(self, energized: bool) -> None:
        self._emit({"event": "relay", "on": energized})

    def close(self) -> None:
        """Nothing to release."""


class SimTrigger:
    """A trigger button pressed by a script (the demo, tests)."""

    def __init__(self) -> None:
        self.pressed = False

    def close(self) -> None:
        """Nothing to release."""
