"""A FrameSource that behaves like the Pi camera but plays a ``Reel``.

It reuses the Pi camera's own machinery, ``hal.picam.capture_frames`` filling a
``NewestFrameSlot`` on a thread, so the loop sees what it sees on a Pi: frames arriving on
their own schedule, ``next_due()`` unknown (the loop waits on ``wait_for_frame``), and frames
overwritten while the loop was busy counted as dropped. Paced, frame ``k`` arrives ``k / fps``
seconds after the first ``newest()`` on the real clock. Unpaced (``fps=None``), the next frame
is captured as soon as the loop took the previous one: as fast as the loop goes, none dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from bench.scenes import Reel
from hal.picam import NewestFrameSlot, RawArray, capture_frames
from hal.ports import Frame

JOIN_TIMEOUT_S = 5.0


class _Stopped(Exception):  # noqa: N818 - a signal to capture_frames, not an error
    """close() interrupted a capture; capture_frames treats it as the end, not a failure."""


class ReplayCamera:
    """``ReplayCamera(reel, fps=30)``; ``on_capture(k)`` runs on the capture thread before frame k.

    Every capture draws a fresh array, as picamera2 hands out a new buffer each time.
    """

    def __init__(
        self,
        reel: Reel,
        *,
        fps: float | None,
        clock: Callable[[], float] = time.monotonic,
        on_capture: Callable[[int], None] | None = None,
    ) -> None:
        if len(reel) == 0:
            raise ValueError("a replay camera needs at least one frame")
        self._reel = reel
        self._fps = fps
        self._clock = clock
        self._on_capture = on_capture
        self._slot = NewestFrameSlot()
        self._stop = threading.Event()
        self._taken = threading.Event()  # unpaced: the loop took the last frame
        self._taken.set()
        self._start: float | None = None
        self.captured = 0
        self._thread = threading.Thread(
            target=capture_frames,
            args=(self._capture, self._slot, self._stop),
            kwargs={"size": reel.size, "clock": clock},
            name="replay-capture",
            daemon=True,
        )

    def newest(self) -> Frame | None:
        """The newest captured frame not handed out before, or None (starts capture)."""
        if self._start is None:
            # Start on the loop's first look, as ImagesSource does: frames played while
            # the loop was still being built would only count as dropped.
            self._start = self._clock()
            self._thread.start()
        frame = self._slot.take()
        if frame is not None:
            self._taken.set()
        return frame

    def next_due(self) -> None:
        """Like a live camera: unknown, so the loop waits in ``wait_for_frame``."""
        return None

    def wait_for_frame(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until a frame waits, as the Pi camera does."""
        return self._slot.wait(timeout)

    @property
    def finished(self) -> bool:
        """True once every frame was captured and the last one taken."""
        if self._start is None or self._thread.is_alive():
            return False
        return not self._slot.wait(0)

    @property
    def dropped(self) -> int:
        return self._slot.dropped

    @property
    def skipped(self) -> int:
        return 0  # every frame it delivers was readable

    def close(self) -> None:
        self._stop.set()
        self._taken.set()
        if self._thread.is_alive():
            self._thread.join(JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                raise RuntimeError(f"replay capture thread still running after {JOIN_TIMEOUT_S} s")

    def _capture(self) -> RawArray:
        """Frame ``captured``, when it is due; setting stop with the last one ends capture."""
        index = self.captured
        self._wait_until_due(index)
        if self._on_capture is not None:
            self._on_capture(index)
        pixels = self._reel.frame(index)
        self.captured += 1
        if self.captured == len(self._reel):
            self._stop.set()  # capture_frames stores this frame, then sees stop and returns
        return pixels

    def _wait_until_due(self, index: int) -> None:
        if self._fps is None:
            self._taken.wait()
            self._taken.clear()
        else:
            assert self._start is not None
            delay = self._start + index / self._fps - self._clock()
            if delay > 0:
                self._stop.wait(delay)
        if self._stop.is_set():
            raise _Stopped
