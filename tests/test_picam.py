"""The picamera2 source: its pure parts without picamera2, the adapter against FakePicamera2.

``tests/fake_picamera2.py`` behaves like picamera2 and libcamera where the adapter depends on
it (properties before and after configure, sensor modes, ScalerCrop(s) per platform, unknown
controls, no camera). What only a Pi can show is in ``tests/test_hardware.py``.
"""

from __future__ import annotations

import logging
import sys
import threading
import types
from collections.abc import Iterator
from types import SimpleNamespace

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
    crop_controls,
    full_field_binned,
    pixels_per_module,
    scan_controls,
    y_plane,
)
from tests.fake_picamera2 import IMX219, IMX708, FakeCameraManager, FakePicamera2, Platform


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
    AfRangeEnum=SimpleNamespace(Normal="af-normal", Macro="af-macro", Full="af-full"),
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
# imx708.json (vc4 and pisp), rpi.af "ranges", in dioptres (1 / metres):
# normal 0-12 (infinity to 8.3 cm), macro 3-15 (33 to 6.7 cm); af.cpp: full is their union.
AF_RANGES_DIOPTRES = {"af-normal": (0.0, 12.0), "af-macro": (3.0, 15.0), "af-full": (0.0, 15.0)}


def test_fast_autofocus_over_the_working_distance_short_exposure_and_a_fixed_frame_time() -> None:
    assert scan_controls(AUTOFOCUS_CAMERA, CONTROLS, fps=30) == {
        "AfMode": "af-continuous",
        "AfRange": "af-normal",
        "AfSpeed": "af-fast",
        "AeExposureMode": "ae-short",
        "FrameDurationLimits": (33_333, 33_333),
    }


@pytest.mark.parametrize("distance_cm", [10, 20, 30, 35, 40, 60, 100])
def test_the_autofocus_range_covers_where_staff_hold_a_ticket(distance_cm: int) -> None:
    low, high = AF_RANGES_DIOPTRES[str(scan_controls(AUTOFOCUS_CAMERA, CONTROLS)["AfRange"])]
    assert low <= 100 / distance_cm <= high


def test_fixed_focus_camera_gets_no_autofocus_control() -> None:
    fixed_focus = {"AeExposureMode": (0, 3, 0), "ScalerCrop": AUTOFOCUS_CAMERA["ScalerCrop"]}
    assert set(scan_controls(fixed_focus, CONTROLS, fps=30)) == {"AeExposureMode"}


def test_the_crop_goes_in_scaler_crops_where_the_camera_has_it() -> None:
    crop = (1440, 648, 1728, 1296)
    assert crop_controls({"ScalerCrop": (), "ScalerCrops": ()}, crop) == {"ScalerCrops": [crop]}
    assert crop_controls({"ScalerCrop": ()}, crop) == {"ScalerCrop": crop}
    assert crop_controls({}, crop) == {}


@pytest.mark.parametrize(
    ("pixel_array", "mode"), [((4608, 2592), (2304, 1296)), ((3280, 2464), (1640, 1232))]
)
def test_the_sensor_mode_is_the_full_field_binned_2x2(
    pixel_array: tuple[int, int], mode: tuple[int, int]
) -> None:
    assert full_field_binned(pixel_array) == mode


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


# --- the adapter against FakePicamera2 ------------------------------------------------------

PLATFORMS: list[Platform] = ["vc4", "pisp"]  # Pi Zero 2 W / 3 / 4, and Pi 5


def install(monkeypatch: pytest.MonkeyPatch, manager: FakeCameraManager) -> None:
    """Fake ``picamera2`` and ``libcamera`` modules whose Picamera2 is ``manager``'s."""
    picamera2 = types.ModuleType("picamera2")
    picamera2.Picamera2 = manager.Picamera2  # type: ignore[attr-defined]
    libcamera = types.ModuleType("libcamera")
    libcamera.controls = CONTROLS  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", picamera2)
    monkeypatch.setitem(sys.modules, "libcamera", libcamera)


@pytest.fixture(params=PLATFORMS)
def camera(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> FakePicamera2:
    """A Camera Module 3 on each platform, with one frame queued."""
    fake = FakePicamera2(IMX708, request.param)
    fake.frames.append(yuv420(640, 480, stride=fake.stride))
    install(monkeypatch, FakeCameraManager(fake))
    return fake


@pytest.fixture
def opened() -> Iterator[list[Picamera2Source]]:
    sources: list[Picamera2Source] = []
    yield sources
    for source in sources:
        source.close()


# The fake's own behaviour, from the upstream code it names: these are the two bugs users saw.


def test_fake_a_crop_from_scaler_crop_maximum_before_configure_is_the_top_left_corner() -> None:
    fake = FakePicamera2(IMX708, "vc4")
    assert fake.camera_properties["ScalerCropMaximum"] == (0, 0, 0, 0)  # until configure
    crop = centre_crop(fake.camera_properties["ScalerCropMaximum"], (640, 480), 2.0)
    config = fake.create_video_configuration(
        main={"size": (640, 480), "format": "YUV420"}, controls={"ScalerCrop": crop}
    )
    fake.configure(config)
    fake.start()
    x, y, width, _height = fake.capture_metadata()["ScalerCrop"]
    assert (x, y) == fake.camera_properties["ScalerCropMaximum"][:2]  # the mode's corner
    assert width < 100  # the ISP's minimum crop: a few pixels of the sensor, magnified


def test_fake_on_a_pi_5_two_outputs_override_a_crop_passed_with_the_configuration() -> None:
    fake = FakePicamera2(IMX708, "pisp")
    crop = (1440, 648, 1728, 1296)
    config = fake.create_video_configuration(
        main={"size": (640, 480), "format": "YUV420"},
        lores={"size": (640, 480), "format": "YUV420"},
        sensor={"output_size": (2304, 1296)},
        controls={"ScalerCrop": crop},
    )
    fake.configure(config)
    fake.start()
    assert fake.capture_metadata()["ScalerCrop"] != crop  # picamera2's ScalerCrops won
    assert "ScalerCrops" in fake.camera_controls


def test_fake_refuses_a_control_the_camera_does_not_advertise() -> None:
    fake = FakePicamera2(IMX219, "vc4")
    config = fake.create_video_configuration(controls={"AfMode": 2})
    with pytest.raises(RuntimeError, match="Control AfMode is not advertised by libcamera"):
        fake.configure(config)


def test_fake_with_no_camera_raises_index_error_like_picamera2() -> None:
    with pytest.raises(IndexError):
        FakeCameraManager().Picamera2(0)


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize(
    ("sensor", "zoom", "expected"),
    [
        (IMX708, 2.0, (1440, 648, 1728, 1296)),
        (IMX708, 1.0, (576, 0, 3456, 2592)),
        (IMX219, 2.0, (820, 616, 1640, 1230)),  # 617 is not on a binned row: libcamera rounds
        (IMX219, 1.0, (0, 2, 3280, 2460)),
    ],
)
def test_frames_show_the_centre_1_over_zoom_of_the_sensor(
    monkeypatch: pytest.MonkeyPatch,
    opened: list[Picamera2Source],
    platform: Platform,
    sensor: object,
    zoom: float,
    expected: tuple[int, int, int, int],
) -> None:
    fake = FakePicamera2(sensor, platform)  # type: ignore[arg-type]
    install(monkeypatch, FakeCameraManager(fake))
    opened.append(Picamera2Source(size=(640, 480), zoom=zoom, clock=lambda: 0.0))
    # What a captured frame's metadata says: the crop libcamera applied.
    assert fake.capture_metadata()["ScalerCrop"] == expected


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize(("sensor", "mode"), [(IMX708, (2304, 1296)), (IMX219, (1640, 1232))])
def test_the_camera_runs_its_full_field_binned_mode(
    monkeypatch: pytest.MonkeyPatch,
    opened: list[Picamera2Source],
    platform: Platform,
    sensor: object,
    mode: tuple[int, int],
) -> None:
    fake = FakePicamera2(sensor, platform)  # type: ignore[arg-type]
    install(monkeypatch, FakeCameraManager(fake))
    opened.append(Picamera2Source(size=(640, 480), clock=lambda: 0.0))
    assert fake.mode is not None
    assert fake.mode.size == mode
    assert fake.mode.crop == (0, 0, *fake.sensor.pixel_array)  # the whole sensor, binned


def test_source_configures_one_yuv420_stream_with_scan_controls(
    camera: FakePicamera2, opened: list[Picamera2Source]
) -> None:
    opened.append(Picamera2Source(size=(640, 480), zoom=2.0, fps=25.0, clock=lambda: 42.0))
    config = camera.camera_configuration()
    assert config["main"]["size"] == (640, 480)
    assert config["main"]["format"] == "YUV420"
    assert config["lores"] is None  # one stream: a second copy of the same frame costs memory
    assert camera.started_with["AfRange"] == "af-normal"
    assert camera.started_with["FrameDurationLimits"] == (40_000, 40_000)
    assert camera.started


def test_source_hands_out_the_y_plane_of_main_once(
    camera: FakePicamera2, opened: list[Picamera2Source]
) -> None:
    source = Picamera2Source(clock=lambda: 42.0)
    opened.append(source)
    assert source.wait_for_frame(timeout=10.0)
    frame = source.newest()
    assert frame is not None
    assert frame.pixels.shape == (480, 640)
    assert frame.pixels.max() < 200  # no padding (255) and no chroma rows
    assert (frame.index, frame.captured_at) == (0, 42.0)
    assert source.newest() is None
    assert source.dropped == 0
    assert not source.finished


def test_source_uses_the_size_libcamera_settled_on(
    camera: FakePicamera2, opened: list[Picamera2Source], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_configure = FakePicamera2.configure

    def adjusting(fake: FakePicamera2, config: dict[str, object]) -> None:
        real_configure(fake, config)
        fake.camera_config["main"]["size"] = (640, 480)  # validate() adjusted 642x482

    monkeypatch.setattr(FakePicamera2, "configure", adjusting)
    source = Picamera2Source(size=(642, 482))
    opened.append(source)
    assert source.size == (640, 480)
    assert source.wait_for_frame(timeout=10.0)
    frame = source.newest()
    assert frame is not None
    assert frame.pixels.shape == (480, 640)


def test_a_control_the_camera_lacks_is_never_sent(
    monkeypatch: pytest.MonkeyPatch, opened: list[Picamera2Source]
) -> None:
    # Camera Module 2 on a Pi 5: no autofocus, and picamera2 raises for any unknown control.
    fake = FakePicamera2(IMX219, "pisp")
    install(monkeypatch, FakeCameraManager(fake))
    opened.append(Picamera2Source(clock=lambda: 0.0))
    assert not {"AfMode", "AfRange", "AfSpeed"} & set(fake.started_with)


def test_close_stops_the_capture_thread_and_the_camera(camera: FakePicamera2) -> None:
    source = Picamera2Source()
    source.close()
    source.close()  # twice is harmless

    assert camera.closed
    assert not any(thread.name == "picamera2-capture" for thread in threading.enumerate())


def test_failed_configuration_closes_the_camera(
    camera: FakePicamera2, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(fake: FakePicamera2, config: dict[str, object]) -> None:
        raise RuntimeError("Invalid camera configuration")

    monkeypatch.setattr(FakePicamera2, "configure", refuse)
    with pytest.raises(RuntimeError, match="Invalid camera configuration"):
        Picamera2Source()
    assert camera.closed


def test_no_camera_attached_says_what_to_check(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeCameraManager())  # libcamera sees no camera: IndexError inside
    with pytest.raises(RuntimeError, match=r"cannot open camera 0.*ribbon cable") as raised:
        Picamera2Source()
    assert "no camera" in str(raised.value)
    assert isinstance(raised.value.__cause__, IndexError)


def test_a_camera_that_fails_to_open_says_what_to_check(monkeypatch: pytest.MonkeyPatch) -> None:
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


def test_the_chosen_sensor_mode_is_logged(
    camera: FakePicamera2, opened: list[Picamera2Source], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="hal.picam"):
        opened.append(Picamera2Source(clock=lambda: 0.0))
    assert "sensor_mode=2304x1296" in caplog.text
