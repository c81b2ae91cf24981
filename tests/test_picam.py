"""The picamera2 source: its pure parts without picamera2, the adapter against a fake module.

The one ``hardware`` test opens the real camera; it runs only with ``pytest -m hardware``.
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from device.config import CameraConfig
from hal.picam import (
    INSTALL_HINT,
    NewestFrameSlot,
    Picamera2Source,
    RawArray,
    capture_frames,
    centre_crop,
    pixels_per_module,
    scan_controls,
    y_plane,
)


def yuv420(width: int, height: int, *, stride: int, luma: int | None = None) -> RawArray:
    """A picamera2-shaped YUV420 array: Y rows then U/V rows, each ``stride`` bytes wide.

    Y pixels count up (or are all ``luma``), padding columns are 255, chroma rows are 128,
    so any leak of padding or chroma into the Y plane shows.
    """
    array = np.full((height * 3 // 2, stride), 128, dtype=np.uint8)
    array[:height, width:] = 255
    if luma is None:
        array[:height, :width] = (np.arange(width * height) % 200).reshape(height, width)
    else:
        array[:height, :width] = luma
    return array


def gray(value: int) -> RawArray:
    return np.full((2, 4), value, dtype=np.uint8)


# --- Y plane --------------------------------------------------------------------------------


def test_y_plane_drops_chroma_rows_and_stride_padding() -> None:
    raw = yuv420(6, 4, stride=64)
    plane = y_plane(raw, 6, 4)
    assert plane.shape == (4, 6)
    assert plane.dtype == np.uint8
    assert plane.flags.c_contiguous  # decoders want a plain image, not a strided view
    assert np.array_equal(plane, (np.arange(24) % 200).reshape(4, 6))


def test_y_plane_without_padding_is_the_first_rows() -> None:
    raw = yuv420(8, 4, stride=8)
    assert np.array_equal(y_plane(raw, 8, 4), raw[:4])


def test_y_plane_refuses_an_array_too_small_for_the_size() -> None:
    with pytest.raises(ValueError, match="too small"):
        y_plane(yuv420(8, 4, stride=8), 16, 4)


# --- newest-frame slot ----------------------------------------------------------------------


def test_slot_hands_out_each_frame_once() -> None:
    slot = NewestFrameSlot()
    assert slot.take() is None

    slot.put(gray(7), captured_at=3.5)
    frame = slot.take()
    assert frame is not None
    assert (frame.index, frame.captured_at, int(frame.pixels[0, 0])) == (0, 3.5, 7)
    assert slot.take() is None
    assert slot.dropped == 0


def test_slot_keeps_only_the_newest_and_counts_the_overwritten() -> None:
    slot = NewestFrameSlot()
    for value in (1, 2, 3):
        slot.put(gray(value), captured_at=float(value))
    frame = slot.take()
    assert frame is not None
    assert (frame.index, int(frame.pixels[0, 0])) == (2, 3)  # the index gap shows the drops
    assert slot.dropped == 2

    slot.put(gray(4), captured_at=4.0)  # taken in time: no drop
    assert slot.take() is not None
    assert slot.dropped == 2


def test_slot_failure_is_raised_after_the_last_good_frame() -> None:
    slot = NewestFrameSlot()
    slot.put(gray(1), captured_at=1.0)
    slot.fail(OSError("cable"))
    assert slot.take() is not None
    with pytest.raises(RuntimeError, match="camera capture failed: cable"):
        slot.take()


def test_slot_wait_returns_at_once_when_a_frame_is_there() -> None:
    slot = NewestFrameSlot()
    assert slot.wait(timeout=0) is False
    slot.put(gray(1), captured_at=1.0)
    assert slot.wait(timeout=0) is True


def test_slot_wait_wakes_when_another_thread_puts_a_frame() -> None:
    slot = NewestFrameSlot()
    producer = threading.Thread(target=slot.put, args=(gray(1), 1.0))
    producer.start()
    assert slot.wait(timeout=10.0)
    producer.join()


# --- capture loop ---------------------------------------------------------------------------


def test_capture_frames_stores_y_planes_stamped_by_the_clock_until_stopped() -> None:
    stop = threading.Event()
    raws = [yuv420(4, 2, stride=32, luma=value) for value in (10, 20, 30)]

    def capture() -> RawArray:
        raw = raws.pop(0)
        if not raws:
            stop.set()
        return raw

    times = iter([5.0, 5.1, 5.2])
    slot = NewestFrameSlot()
    capture_frames(capture, slot, stop, size=(4, 2), clock=lambda: next(times))

    frame = slot.take()
    assert frame is not None
    assert frame.pixels.shape == (2, 4)
    assert (frame.index, frame.captured_at, int(frame.pixels.max())) == (2, 5.2, 30)
    assert slot.dropped == 2


def test_capture_error_ends_the_loop_and_reaches_the_reader(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def capture() -> RawArray:
        raise TimeoutError("no frame from the sensor")

    slot = NewestFrameSlot()
    capture_frames(capture, slot, threading.Event(), size=(4, 2), clock=lambda: 0.0)
    with pytest.raises(RuntimeError, match="no frame from the sensor"):
        slot.take()
    assert "camera capture failed" in caplog.text


def test_capture_error_while_stopping_is_no_failure() -> None:
    stop = threading.Event()

    def capture() -> RawArray:
        stop.set()  # close() cancelled the capture in flight
        raise RuntimeError("cancelled")

    slot = NewestFrameSlot()
    capture_frames(capture, slot, stop, size=(4, 2), clock=lambda: 0.0)
    assert slot.take() is None


# --- controls -------------------------------------------------------------------------------

CONTROLS = SimpleNamespace(
    AfModeEnum=SimpleNamespace(Continuous="af-continuous"),
    AfRangeEnum=SimpleNamespace(Macro="af-macro"),
    AfSpeedEnum=SimpleNamespace(Fast="af-fast"),
    AeExposureModeEnum=SimpleNamespace(Short="ae-short"),
)
CAMERA_MODULE_3 = (0, 0, 4608, 2592)  # IMX708: 16:9, 66 degrees across
CAMERA_MODULE_2 = (0, 0, 3280, 2464)  # IMX219: 4:3, 62.2 degrees across
AUTOFOCUS_CAMERA = {
    "AfMode": (0, 2, 0),
    "AfRange": (0, 2, 0),
    "AfSpeed": (0, 1, 0),
    "AeExposureMode": (0, 3, 0),
    "FrameDurationLimits": (33, 1_000_000, 33_333),
    "ScalerCrop": ((0, 0, 64, 64), CAMERA_MODULE_3, CAMERA_MODULE_3),
    "ExposureTime": (1, 9, 5),
}


def test_fast_close_range_autofocus_short_exposure_and_zoom_where_the_camera_has_them() -> None:
    crop = (1440, 648, 1728, 1296)
    assert scan_controls(AUTOFOCUS_CAMERA, CONTROLS, crop=crop, fps=30) == {
        "AfMode": "af-continuous",
        "AfRange": "af-macro",
        "AfSpeed": "af-fast",
        "AeExposureMode": "ae-short",
        "FrameDurationLimits": (33_333, 33_333),
        "ScalerCrop": crop,
    }


def test_fixed_focus_camera_gets_no_autofocus_control() -> None:
    fixed_focus = {"AeExposureMode": (0, 3, 0), "ScalerCrop": AUTOFOCUS_CAMERA["ScalerCrop"]}
    assert set(scan_controls(fixed_focus, CONTROLS, crop=CAMERA_MODULE_2, fps=30)) == {
        "AeExposureMode",
        "ScalerCrop",
    }


@pytest.mark.parametrize(
    ("sensor", "zoom", "crop"),
    [
        (CAMERA_MODULE_3, 1.0, (576, 0, 3456, 2592)),  # 4:3 frames from a 16:9 sensor
        (CAMERA_MODULE_3, 2.0, (1440, 648, 1728, 1296)),
        (CAMERA_MODULE_2, 1.0, (0, 2, 3280, 2460)),  # not quite 4:3
        (CAMERA_MODULE_2, 2.0, (820, 617, 1640, 1230)),
    ],
)
def test_zoom_shows_the_centre_of_the_sensor_at_the_frames_aspect_ratio(
    sensor: tuple[int, int, int, int], zoom: float, crop: tuple[int, int, int, int]
) -> None:
    assert centre_crop(sensor, (640, 480), zoom) == crop


@pytest.mark.parametrize(("sensor", "hfov_deg"), [(CAMERA_MODULE_3, 66.0), (CAMERA_MODULE_2, 62.2)])
def test_the_default_zoom_gives_a_ticket_code_enough_pixels_at_arms_length(
    sensor: tuple[int, int, int, int], hfov_deg: float
) -> None:
    # A 4 cm AnyRoad code has 45 modules; zxing-cpp wants at least 2-3 pixels on each.
    def at_30_cm(zoom: float) -> float:
        crop = centre_crop(sensor, (640, 480), zoom)
        return pixels_per_module(
            640,
            sensor_fraction=crop[2] / sensor[2],
            hfov_deg=hfov_deg,
            distance_mm=300,
            module_mm=40 / 45,
        )

    assert at_30_cm(CameraConfig().zoom) >= 3.0
    assert at_30_cm(1.0) < 2.5  # why the default zooms at all


# --- the adapter against a fake picamera2 ---------------------------------------------------


class FakePicamera2:
    """Just enough of Picamera2: records the configuration, serves queued lores arrays."""

    stride = 704  # wider than the frame, as libcamera pads rows

    def __init__(self, camera_num: int, *, camera_controls: dict[str, Any]) -> None:
        self.camera_num = camera_num
        self.camera_controls = camera_controls
        self.camera_properties = {"PixelArraySize": CAMERA_MODULE_3[2:]}
        self.configured: dict[str, Any] | None = None
        self.adjusted_size: tuple[int, int] | None = None
        self.arrays: list[RawArray] = []
        self.started = False
        self.closed = False
        self._cancelled = threading.Event()

    def create_video_configuration(self, **kwargs: Any) -> dict[str, Any]:
        return kwargs

    def configure(self, config: dict[str, Any]) -> None:
        self.configured = config

    def camera_configuration(self) -> dict[str, Any]:
        assert self.configured is not None
        size = self.adjusted_size or self.configured["lores"]["size"]
        return {"lores": {"size": size, "format": "YUV420", "stride": self.stride}}

    def start(self) -> None:
        self.started = True

    def capture_array(self, name: str) -> RawArray:
        assert name == "lores"
        if self.arrays:
            return self.arrays.pop(0)
        self._cancelled.wait()  # like a real camera between frames, until cancelled
        raise RuntimeError("job cancelled")

    def cancel_all_and_flush(self) -> None:
        self._cancelled.set()

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_modules(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[FakePicamera2]]:
    """Fake ``picamera2`` and ``libcamera`` modules; yields the cameras they open."""
    cameras: list[FakePicamera2] = []
    controls: dict[str, Any] = AUTOFOCUS_CAMERA

    def open_camera(camera_num: int) -> FakePicamera2:
        camera = FakePicamera2(camera_num, camera_controls=controls)
        camera.arrays.append(yuv420(640, 480, stride=FakePicamera2.stride))
        cameras.append(camera)
        return camera

    picamera2 = types.ModuleType("picamera2")
    picamera2.Picamera2 = open_camera  # type: ignore[attr-defined]
    libcamera = types.ModuleType("libcamera")
    libcamera.controls = CONTROLS  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", picamera2)
    monkeypatch.setitem(sys.modules, "libcamera", libcamera)
    yield cameras


def test_source_configures_a_yuv420_lores_stream_with_scan_controls(
    fake_modules: list[FakePicamera2],
) -> None:
    source = Picamera2Source(size=(640, 480), zoom=2.0, fps=25.0, clock=lambda: 42.0)
    try:
        (camera,) = fake_modules
        assert camera.configured is not None
        assert camera.configured["lores"] == {"size": (640, 480), "format": "YUV420"}
        assert camera.configured["main"]["size"] == (640, 480)  # lores may not exceed main
        assert camera.configured["controls"] == {
            "AfMode": "af-continuous",
            "AfRange": "af-macro",
            "AfSpeed": "af-fast",
            "AeExposureMode": "ae-short",
            "FrameDurationLimits": (40_000, 40_000),
            "ScalerCrop": (1440, 648, 1728, 1296),
        }
        assert camera.started
    finally:
        source.close()


def test_source_hands_out_the_y_plane_once(fake_modules: list[FakePicamera2]) -> None:
    source = Picamera2Source(clock=lambda: 42.0)
    try:
        assert source.wait_for_frame(timeout=10.0)
        frame = source.newest()
        assert frame is not None
        assert frame.pixels.shape == (480, 640)
        assert frame.pixels.max() < 200  # no padding (255) and no chroma rows
        assert (frame.index, frame.captured_at) == (0, 42.0)
        assert source.newest() is None
        assert source.dropped == 0
        assert not source.finished
    finally:
        source.close()


def test_source_uses_the_size_libcamera_settled_on(
    fake_modules: list[FakePicamera2], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_configure = FakePicamera2.configure

    def adjusting(camera: FakePicamera2, config: dict[str, Any]) -> None:
        real_configure(camera, config)
        camera.adjusted_size = (640, 480)

    monkeypatch.setattr(FakePicamera2, "configure", adjusting)
    source = Picamera2Source(size=(642, 482))
    try:
        assert source.size == (640, 480)
        assert source.wait_for_frame(timeout=10.0)
        frame = source.newest()
        assert frame is not None
        assert frame.pixels.shape == (480, 640)
    finally:
        source.close()


def test_close_stops_the_capture_thread_and_the_camera(fake_modules: list[FakePicamera2]) -> None:
    source = Picamera2Source()
    source.close()
    source.close()  # twice is harmless

    (camera,) = fake_modules
    assert camera.closed
    assert not any(thread.name == "picamera2-capture" for thread in threading.enumerate())


def test_failed_configuration_closes_the_camera(
    fake_modules: list[FakePicamera2], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(camera: FakePicamera2, config: dict[str, Any]) -> None:
        raise RuntimeError("Invalid camera configuration")

    monkeypatch.setattr(FakePicamera2, "configure", refuse)
    with pytest.raises(RuntimeError, match="Invalid camera configuration"):
        Picamera2Source()
    assert fake_modules[0].closed


def test_missing_camera_says_what_to_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_camera(camera_num: int) -> None:
        raise RuntimeError("Camera __init__ sequence did not complete.")

    picamera2 = types.ModuleType("picamera2")
    picamera2.Picamera2 = no_camera  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", picamera2)
    with pytest.raises(RuntimeError, match=r"cannot open camera 0.*ribbon cable"):
        Picamera2Source()


def test_missing_picamera2_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes the import fail
    with pytest.raises(RuntimeError) as raised:
        Picamera2Source()
    assert INSTALL_HINT in str(raised.value)
    assert "apt" in INSTALL_HINT
    assert "--system-site-packages" in INSTALL_HINT


@pytest.mark.parametrize("size", [(641, 480), (640, 0), (-2, 480)])
def test_size_must_be_even_and_positive(size: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="even and positive"):
        Picamera2Source(size=size)


# --- on a Pi --------------------------------------------------------------------------------


@pytest.mark.hardware
def test_real_camera_delivers_a_grayscale_frame() -> None:
    source = Picamera2Source()
    try:
        assert source.wait_for_frame(timeout=10.0), "no frame within 10 s"
        frame = source.newest()
        assert frame is not None
        width, height = source.size
        assert frame.pixels.shape == (height, width)
        assert frame.pixels.dtype == np.uint8
        assert frame.pixels.flags.c_contiguous
    finally:
        source.close()
