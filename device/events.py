"""The events file: one JSON object per line for every verdict and (sim) output call."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

Emit = Callable[[Mapping[str, Any]], None]


def ignore(_event: Mapping[str, Any]) -> None:
    """An emitter for when no events file is configured."""


class EventLog:
    """Appends events as JSON lines; ASCII-only, so no control character is ever written raw."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path) -> EventLog:
        return cls(path.open("a", encoding="ascii", buffering=1))

    def emit(self, event: Mapping[str, Any]) -> None:
        line = json.dumps(event, ensure_ascii=True, separators=(",", ":"), default=str)
        with self._lock:
            self._stream.write(line + "\n")

    def close(self) -> None:
        self._stream.close()
