"""The events file: one JSON object per line for every verdict and (sim) output call."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

Emit = Callable[[Mapping[str, Any]], None]


class EventsError(ValueError):
    """The events file cannot be opened for appending; the message names it and says why."""


def ignore(_event: Mapping[str, Any]) -> None:
    """An emitter for when no events file is configured."""


class EventLog:
    """Appends events as JSON lines; ASCII-only, so no control character is ever written raw."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path) -> EventLog:
        """Append to ``path``; EventsError (not a traceback) when it cannot be opened."""
        try:
            return cls(path.open("a", encoding="ascii", buffering=1))
        except OSError as error:
            raise EventsError(f"{path}: {_why_not(path, error)}") from None

    def emit(self, event: Mapping[str, Any]) -> None:
        line = json.dumps(event, ensure_ascii=True, separators=(",", ":"), default=str)
        with self._lock:
            self._stream.write(line + "\n")

    def close(self) -> None:
        self._stream.close()


def _why_not(path: Path, error: OSError) -> str:
    """What to fix, in words: the usual reasons first, the system's own text otherwise."""
    if isinstance(error, IsADirectoryError):
        return "is a folder, not a file"
    if isinstance(error, FileNotFoundError):
        return f"cannot create the file: folder {path.parent} does not exist"
    if isinstance(error, NotADirectoryError):
        return f"cannot create the file: {path.parent} is not a folder"
    if isinstance(error, PermissionError):
        return "permission denied"
    return f"cannot open the file: {error.strerror or error}"
