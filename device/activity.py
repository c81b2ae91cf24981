"""The activity file: its mtime says when a code was last in view, for the updater.

The updater never restarts the scanner while a guest is at it: it switches releases only
when this file is older than a minute. Touching it costs a syscall, so at most once a second.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

TOUCH_EVERY_S = 1.0


class ActivityMarker:
    """``ActivityMarker(path).saw(when)`` with loop-clock times; touches ``path`` now and then."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._touched_for: float | None = None

    def saw(self, code_at: float | None) -> None:
        if code_at is None:
            return
        if self._touched_for is not None and code_at - self._touched_for < TOUCH_EVERY_S:
            return
        self._touched_for = code_at
        try:
            self._path.touch()
            os.utime(self._path)  # touch() leaves the mtime alone on some filesystems
        except OSError as error:  # a read-only state dir must not stop the gate
            log.warning("cannot mark activity path=%s error=%s", self._path, error.strerror)
