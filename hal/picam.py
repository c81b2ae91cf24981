"""The Raspberry Pi camera as a FrameSource, through picamera2.

picamera2 (and libcamera's Python bindings) exist only on Raspberry Pi OS, from apt, so
they are imported when a camera is opened, never at module import. Frames are the Y
plane of the one YUV420 stream (``main``): grayscale for free, no colour conversion. A daemon
thread captures continuously into a one-slot holder, so ``newest()`` never blocks and
never hands out a stale frame.

Frames show the centre of the sensor (``zoom``): a ticket scanner is aimed, so the edges
of a wide lens only cost pixels. At 640x480 and zoom 2 a 45-module AnyRoad code 4 cm wide
(0.9 mm modules) at 30 cm gets 3.9 pixels per module on a Camera Module 3 (3.1 on a
Module 2), where zxing-cpp needs 2 to 3; at zoom 1 it would get 2.0 (``pixels_per_module``).
The sensor runs its full-field 2x2 binned mode (2304x1296 on the IMX708, 1640x1232 on the
IMX219), so "the whole sensor" is what zoom divides, and the crop is set after ``configure``
(before it, libcamera's ScalerCropMaximum is an empty rectangle).

Example::

    camera = Picamera2Source(size=(640, 480))
    frame = camera.newest()  # None until the first frame arrives
    camera.close()
"""

from __future__ import annotations

import importlib
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from hal.ports import Frame, GrayPixels

_log = logging.getLogger(__name__)

INSTALL_HINT = (
    "install python3-picamera2 with apt (Raspberry Pi OS) "
    "and create the venv with --system-site-packages"
)
# How long close() waits for the capture thread; a healthy camera returns within a frame.
STOP_TIMEOUT_S = 2.0

RawArray = npt.NDArray[np.uint8]
Rect = tuple[int, int, int, int]  # x, y, width, height in sensor pixels, as libcamera has them


def y_plane(yuv420: RawArray, width: int, height: int) -> GrayPixels:
    """The luma plane of a picamera2 YUV420 array (``height * 3/2`` rows of ``stride`` bytes)."""
    if yuv420.ndim != 2 or yuv420.shape[0] < height or yuv420.shape[1] < width:
        raise ValueError(
            f"YUV420 array of shape {yuv420.shape} is too small for a {width}x{height} Y plane"
        )
    # Rows past ``height`` hold U and V; columns past ``width`` are stride padding.
    # Copies only when there is padding, so decoders always get a contiguous image.
    return np.ascontiguousarray(yuv420[:height, :width])


class NewestFrameSlot:
    """A one-frame mailbox from the capture thread to the loop; overwritten frames are dropped."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._frame: Frame | None = None
        self._captured = 0
        self._dropped = 0
        self._error: BaseException | None = None

    def put(self, pixels: GrayPixels, captured_at: float) -> None:
        """Store a new frame, replacing (and dropping) one that was not taken."""
        with self._ready:
            if self._frame is not None:
                self._dropped += 1
            self._frame = Frame(pixels=pixels, captured_at=captured_at, index=self._captured)
            self._captured += 1
            self._ready.notify_all()

    def take(self) -> Frame | None:
        """The stored frame, once; None when nothing new arrived. Raises if capture failed."""
        with self._ready:
            if self._frame is None and self._error is not None:
                raise RuntimeError(f"camera capture failed: {self._error}") from self._error
            frame, self._frame = self._frame, None
            return frame

    def fail(self, error: BaseException) -> None:
        """Record that capture stopped for good, so the loop hears of it instead of starving."""
        with self._ready:
            self._error = error
            self._ready.notify_all()

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for a frame (or a failure); True if one is waiting."""
        with self._ready:
            return self._ready.wait_for(
                lambda: self._frame is not None or self._error is not None, timeout
            )

    @property
    def dropped(self) -> int:
        """Frames overwritten before anyone took them."""
        with self._ready:
            return self._dropped


def capture_frames(
    capture: Callable[[], RawArray],
    slot: NewestFrameSlot,
    stop: threading.Event,
    *,
    size: tuple[int, int],
    clock: Callable[[], float],
) -> None:
    """Capture Y planes into ``slot`` until ``stop`` is set; a capture error ends it and is kept."""
    width, height = size
    while not stop.is_set():
        try:
            raw = capture()
            captured_at = clock()
            slot.put(y_plane(raw, width, height), captured_at)
        except Exception as exc:
            if stop.is_set():
                return  # close() interrupted a capture in flight: not a failure
            _log.exception("camera capture failed error=%s", type(exc).__name__)
            slot.fail(exc)
            return


def scan_controls(
    available: Mapping[str, object], controls: Any, *, fps: float | None = None
) -> dict[str, object]:
    """libcamera controls that help reading codes, limited to those this camera has."""
    # picamera2 raises RuntimeError at configure() for any control the camera lacks
    # (controls.py Controls.__setattr__: "Control ... is not advertised by libcamera").
    wanted: dict[str, object] = {}
    if "AfMode" in available:  # only autofocus modules (Camera Module 3) have it
        wanted["AfMode"] = controls.AfModeEnum.Continuous
        if "AfRange" in available:
            # imx708.json rpi.af ranges (dioptres): normal 0-12 (infinity to 8.3 cm), macro
            # 3-15 (33 to 6.7 cm). A ticket at 30-40 cm (3.3-2.5 D) is at or past Macro's far
            # end, and af.cpp reports Failed there; Normal has it mid-range. Full (0-15) only
            # adds 6.7-8.3 cm, where a 4 cm ticket overflows the zoomed frame anyway, and a
            # wider range is a longer focus scan.
            wanted["AfRange"] = controls.AfRangeEnum.Normal
        if "AfSpeed" in available:
            wanted["AfSpeed"] = controls.AfSpeedEnum.Fast
    if "AeExposureMode" in available:
        # Prefer gain over shutter time: a ticket waved at the gate blurs less.
        wanted["AeExposureMode"] = controls.AeExposureModeEnum.Short
    if fps is not None and "FrameDurationLimits" in available:
        # A fixed frame time also caps the exposure: never a 1/10 s frame in a dim hall.
        frame_us = round(1_000_000 / fps)
        wanted["FrameDurationLimits"] = (frame_us, frame_us)
    return wanted


def crop_controls(available: Mapping[str, object], crop: Rect) -> dict[str, object]:
    """The control that sets the crop on this camera, after ``configure``.

    libcamera's pipeline_base.cpp ``applyScalerCrop`` uses ``rpi::ScalerCrops`` (one crop per
    output, Pi 5's PiSP only) before ``ScalerCrop``, and picamera2's ``configure_`` writes
    ScalerCrops itself wherever it is advertised: a ScalerCrop alone would be ignored there.
    """
    if "ScalerCrops" in available:
        return {"ScalerCrops": [crop]}
    if "ScalerCrop" in available:
        return {"ScalerCrop": crop}
    return {}


def full_field_binned(pixel_array: tuple[int, int]) -> tuple[int, int]:
    """The sensor mode to ask for: the whole sensor binned 2x2 (2304x1296 on an IMX708).

    picamera2's ``_make_libcamera_config`` picks the mode nearest ``sensor["output_size"]``,
    else the raw stream's size (the main size by default): for 640x480 that is a centre-cropped
    mode (IMX219 640x480 reads 1280x960, IMX708 1536x864 reads 3072x1728), which would zoom in
    before ``zoom`` does and hide the rest of the field.
    """
    return (pixel_array[0] // 2, pixel_array[1] // 2)


def centre_crop(full: Rect, size: tuple[int, int], zoom: float) -> Rect:
    """The sensor area frames of ``size`` show: their aspect ratio, 1/``zoom`` wide, centred."""
    x, y, width, height = full
    aspect = size[0] / size[1]
    crop_width = min(width, height * aspect) / zoom
    crop_height = crop_width / aspect
    return (
        x + round((width - crop_width) / 2),
        y + round((height - crop_height) / 2),
        round(crop_width),
        round(crop_height),
    )


def pixels_per_module(
    frame_width_px: int,
    *,
    sensor_fraction: float,
    hfov_deg: float,
    distance_mm: float,
    module_mm: float,
) -> float:
    """How many frame pixels one QR module covers, for a code ``distance_mm`` from the lens.

    ``sensor_fraction`` is the share of the sensor's width the frame shows (crop / full).
    """
    field_mm = 2 * distance_mm * math.tan(math.radians(hfov_deg) / 2) * sensor_fraction
    return frame_width_px / field_mm * module_mm


class Picamera2Source:
    """A FrameSource on the Pi camera: the Y plane of its one YUV420 stream."""

    def __init__(
        self,
        size: tuple[int, int] = (640, 480),
        *,
        zoom: float = 1.0,
        fps: float = 30.0,
        camera_num: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        width, height = size
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(f"camera size must be even and positive, got {width}x{height}")
        if zoom < 1:
            raise ValueError(f"camera zoom must be 1 or more, got {zoom}")
        self._camera = _open_camera(camera_num)
        try:
            self._size = configure_camera(self._camera, (width, height), zoom=zoom, fps=fps)
            self._camera.start()
        except BaseException:
            self._camera.close()
            raise
        self._closed = False
        self._slot = NewestFrameSlot()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=capture_frames,
            args=(lambda: self._camera.capture_array("main"), self._slot, self._stop),
            kwargs={"size": self._size, "clock": clock},
            name="picamera2-capture",
            daemon=True,  # never keep the process alive for a camera that hangs
        )
        self._thread.start()

    @property
    def size(self) -> tuple[int, int]:
        """Width and height of the frames, as libcamera configured them."""
        return self._size

    def newest(self) -> Frame | None:
        """The newest captured frame not handed out before, or None."""
        return self._slot.take()

    def next_due(self) -> float | None:
        """A live camera does not say when its next frame comes: the loop polls."""
        return None

    def wait_for_frame(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until a frame is waiting; True if one is."""
        return self._slot.wait(timeout)

    @property
    def finished(self) -> bool:
        """A camera never runs out of frames."""
        return False

    @property
    def dropped(self) -> int:
        """Frames captured but replaced by a newer one before the loop asked."""
        return self._slot.dropped

    @property
    def skipped(self) -> int:
        return 0  # every frame it delivers was readable

    def close(self) -> None:
        """Stop the capture thread, then the camera."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        # Newer picamera2 can cancel a capture that waits for a frame (e.g. a loose cable).
        cancel = getattr(self._camera, "cancel_all_and_flush", None)
        if cancel is not None:
            cancel()
        self._thread.join(STOP_TIMEOUT_S)
        if self._thread.is_alive():
            _log.warning("camera capture thread did not stop timeout_s=%s", STOP_TIMEOUT_S)
        self._camera.close()  # Picamera2.close() stops the camera first


def _open_camera(camera_num: int) -> Any:
    """Import picamera2 and open camera ``camera_num``."""
    try:
        picamera2 = importlib.import_module("picamera2")
    except ImportError as exc:
        raise RuntimeError(f"picamera2 is not available: {INSTALL_HINT}") from exc
    try:
        return picamera2.Picamera2(camera_num)
    except IndexError as exc:
        # Picamera2.__init__ looks the camera up in global_camera_info() first: with no camera
        # attached that list is empty, and the lookup fails before picamera2 wraps anything.
        raise _cannot_open(camera_num, "libcamera found no camera by that number") from exc
    except RuntimeError as exc:  # picamera2 wraps every later open failure in RuntimeError
        raise _cannot_open(camera_num, str(exc)) from exc


def _cannot_open(camera_num: int, why: str) -> RuntimeError:
    return RuntimeError(
        f"cannot open camera {camera_num} ({why}): check the ribbon cable; "
        "`rpicam-hello --list-cameras` shows what libcamera sees"
    )


def configure_camera(
    camera: Any, size: tuple[int, int], *, zoom: float, fps: float
) -> tuple[int, int]:
    """Configure one YUV420 ``main`` stream of ``size`` and the zoom crop; returns the size."""
    controls = importlib.import_module("libcamera").controls
    pixel_array = tuple(int(side) for side in camera.camera_properties["PixelArraySize"])
    full: Rect = (0, 0, pixel_array[0], pixel_array[1])
    config = camera.create_video_configuration(
        # One stream: the decoder reads only its Y plane, and a lores copy of the same size
        # would only cost buffers (6 x 460 kB at 640x480) on a 512 MB Zero 2 W.
        main={"size": size, "format": "YUV420"},
        sensor={"output_size": full_field_binned((full[2], full[3]))},
        controls=scan_controls(camera.camera_controls, controls, fps=fps),
    )
    camera.configure(config)
    _log_sensor_mode(camera, full)
    # Only now: before configure libcamera's ScalerCropMaximum is Rectangle{} (0, 0, 0, 0),
    # and configure_ writes picamera2's default ScalerCrops wherever they are advertised (a
    # Pi 5 with two outputs), which would override a crop passed in with the configuration.
    camera.set_controls(crop_controls(camera.camera_controls, centre_crop(full, size, zoom)))
    # libcamera may adjust sizes while validating; the configured one is what arrives.
    width, height = camera.camera_configuration()["main"]["size"]
    if (width, height) != size:
        _log.info("camera adjusted frame size requested=%s actual=%s", size, (width, height))
    return int(width), int(height)


def _log_sensor_mode(camera: Any, full: Rect) -> None:
    """Say which mode libcamera runs, and warn when it does not read the whole sensor."""
    sensor = camera.camera_configuration().get("sensor") or {}
    width, height = sensor.get("output_size", (0, 0))
    field = tuple(int(v) for v in camera.camera_properties.get("ScalerCropMaximum", full))
    _log.info("camera sensor_mode=%dx%d field=%s", width, height, field)
    if field != full:
        _log.warning(
            "camera sensor mode reads only %s of the sensor %s: zoom is relative to the full "
            "sensor, so frames show less than the config says",
            field,
            full,
        )
