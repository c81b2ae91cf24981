"""What only a Raspberry Pi can show: run there with ``.venv/bin/pytest -m hardware -s``.

They are deselected everywhere else (pyproject: ``-m 'not hardware'``). Parts and wiring as in
the README; some need a person (plug a cable, press the trigger, hold a ticket) and say so
through an environment variable, and skip without it. Real hardware needs real time, so unlike
the rest of the suite these wait on the wall clock.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from device.screens import Screen, render
from hal.picam import (
    Picamera2Source,
    centre_crop,
    configure_camera,
    full_field_binned,
)

pytestmark = pytest.mark.hardware

SCREEN = Screen("admitted", "WELCOME", ("10:00-11:00", "General Admission"), "SCAN  gate-1")
LUMA_GETDATA = "ignore:Image.Image.getdata is deprecated:DeprecationWarning"
BUZZER_PIN = int(os.environ.get("BUZZER_PIN", "18"))
TRIGGER_PIN = int(os.environ.get("TRIGGER_PIN", "23"))
UNIT = Path(__file__).resolve().parent.parent / "deploy" / "systemd" / "ticket-scanner.service"


def wanted(variable: str) -> str:
    """The value of ``variable``, or skip: the test needs someone at the bench."""
    value = os.environ.get(variable, "")
    if not value:
        pytest.skip(f"set {variable} to run this one (it needs a person at the Pi)")
    return value


@pytest.fixture
def camera() -> Iterator[Any]:
    """The real Picamera2 on camera 0, closed after the test."""
    picamera2 = pytest.importorskip("picamera2")
    cam = picamera2.Picamera2(0)
    try:
        yield cam
    finally:
        cam.close()


def settled_metadata(cam: Any, frames: int = 10) -> dict[str, Any]:
    """Metadata of a frame after ``frames`` more, so controls sent at start have landed."""
    metadata: dict[str, Any] = {}
    for _ in range(frames):
        metadata = cam.capture_metadata()
    return metadata


# --- 8: zoom is the centred crop, on the full-field binned mode -------------------------------


@pytest.mark.parametrize("zoom", [1.0, 2.0])
def test_frame_metadata_shows_the_centred_crop_on_the_binned_full_field_mode(
    camera: Any, zoom: float
) -> None:
    configure_camera(camera, (640, 480), zoom=zoom, fps=30)
    camera.start()
    pixel_array = tuple(camera.camera_properties["PixelArraySize"])
    expected = centre_crop((0, 0, *pixel_array), (640, 480), zoom)
    crop = tuple(settled_metadata(camera)["ScalerCrop"])
    # libcamera rounds to whole mode pixels: 2 sensor pixels in a 2x2 binned mode.
    assert all(abs(got - want) <= 4 for got, want in zip(crop, expected, strict=True)), (
        f"frames show {crop}, the config asks for {expected}"
    )
    assert tuple(camera.camera_configuration()["sensor"]["output_size"]) == full_field_binned(
        pixel_array
    )
    assert tuple(camera.camera_properties["ScalerCropMaximum"]) == (0, 0, *pixel_array)


# --- 9: no camera is a clear error -------------------------------------------------------------


def test_with_the_camera_unplugged_opening_says_what_to_check() -> None:
    wanted("NO_CAMERA")  # power the Pi off, take the ribbon cable out, boot, run with NO_CAMERA=1
    with pytest.raises(RuntimeError, match=r"cannot open camera 0.*ribbon cable"):
        Picamera2Source()


# --- 10: autofocus finds a ticket at the working distance --------------------------------------


def test_autofocus_locks_on_a_ticket_at_the_working_distance(camera: Any) -> None:
    distance_cm = float(wanted("TICKET_CM"))  # hold a printed ticket this far away, e.g. 35
    if "AfMode" not in camera.camera_controls:
        pytest.skip("this camera has no autofocus (Camera Module 3 has)")
    configure_camera(camera, (640, 480), zoom=2.0, fps=30)
    camera.start()
    metadata = settled_metadata(camera, frames=90)  # 3 s of continuous AF
    from libcamera import controls  # type: ignore[import-not-found]  # noqa: PLC0415 - Pi only

    assert metadata["AfState"] == controls.AfStateEnum.Focused
    # LensPosition is in dioptres: 1 / metres. The module's calibration is not exact.
    assert metadata["LensPosition"] == pytest.approx(100 / distance_cm, abs=0.8)


# --- 11: the buzzer line is low after a tone ---------------------------------------------------


def test_the_buzzer_line_reads_low_after_every_tone() -> None:
    from gpiozero import Device  # noqa: PLC0415

    from hal.gpio import GpioBeeper  # noqa: PLC0415

    beeper = GpioBeeper(BUZZER_PIN, tonal=True)
    try:
        levels = []
        for hz, seconds in [(880, 0.07), (1320, 0.07), (1760, 0.12), (220, 0.5), (1000, 0.013)]:
            beeper.tone(hz)
            time.sleep(seconds)  # real PWM: stop it somewhere in a cycle
            beeper.tone(None)
            levels.append(Device.pin_factory.pin(BUZZER_PIN).state)  # lgpio.gpio_read
        assert levels == [0] * 5  # before the fix about half of them read 1
    finally:
        beeper.close()


# --- 12: the polled trigger is debounced -------------------------------------------------------


def test_each_press_of_the_trigger_counts_once() -> None:
    presses = int(wanted("TRIGGER_PRESSES"))  # press the trigger this many times within 20 s
    from hal.gpio import GpioTrigger  # noqa: PLC0415

    trigger = GpioTrigger(TRIGGER_PIN)
    counted, raw_edges, was, was_raw = 0, 0, False, False
    print(f"\npress the trigger {presses} times")
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline and counted < presses:
            now_pressed = trigger.pressed
            raw = trigger._raw()  # the undebounced read, for comparison
            counted += now_pressed and not was
            raw_edges += raw and not was_raw
            was, was_raw = now_pressed, raw
            time.sleep(0.001)  # poll far faster than the loop does, to catch every bounce
    finally:
        trigger.close()
    assert counted == presses, f"counted {counted} presses, raw reads saw {raw_edges}"


# --- 13: the OLED unplugged and plugged back ---------------------------------------------------


@pytest.mark.filterwarnings(LUMA_GETDATA)
def test_the_oled_can_be_unplugged_and_plugged_back_while_running() -> None:
    wanted("OLED_REPLUG")  # unplug the OLED's SDA wire when asked, plug it back when asked
    from hal.oled import open_oled  # noqa: PLC0415

    display = open_oled(os.environ.get("OLED_DRIVER", "ssd1306"))
    image = render(SCREEN, display.size)
    try:
        for prompt, want in [("UNPLUG the OLED now", False), ("PLUG the OLED back now", True)]:
            print(f"\n{prompt} (30 s)")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and display.working != want:
                display.show(image, SCREEN.text)  # never raises
                display.retry()
                time.sleep(0.05)
            assert display.working == want, f"display.working stayed {display.working}"
    finally:
        display.close()


@pytest.mark.filterwarnings(LUMA_GETDATA)
def test_real_oled_shows_a_screen() -> None:
    """On a Pi with an OLED on I2C bus 1 (OLED_DRIVER / OLED_HEIGHT override the defaults)."""
    from hal.oled import open_luma_display  # noqa: PLC0415

    height = int(os.environ.get("OLED_HEIGHT", "64"))
    display = open_luma_display(os.environ.get("OLED_DRIVER", "ssd1306"), height=height)
    try:
        display.show(render(SCREEN, display.size), SCREEN.text)
    finally:
        display.close()


# --- 14: gpiozero on lgpio, or a loud failure --------------------------------------------------


def test_the_units_pin_factory_loads_lgpio_and_nothing_else() -> None:
    assert "Environment=GPIOZERO_PIN_FACTORY=lgpio" in UNIT.read_text().splitlines()
    probe = (
        "from gpiozero import Device; Device.ensure_pin_factory(); "
        "print(type(Device.pin_factory).__name__)"
    )
    env = os.environ | {"GPIOZERO_PIN_FACTORY": "lgpio"}
    done = subprocess.run(  # noqa: S603 - our own interpreter, a fixed program
        [sys.executable, "-W", "error", "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "LGPIOFactory"


# --- 15: one YUV420 stream, its Y plane ---------------------------------------------------------


def test_real_camera_delivers_a_grayscale_frame_from_its_one_stream() -> None:
    source = Picamera2Source()
    try:
        assert source.wait_for_frame(timeout=10.0), "no frame within 10 s"
        frame = source.newest()
        assert frame is not None
        width, height = source.size
        assert frame.pixels.shape == (height, width)
        assert frame.pixels.dtype == np.uint8
        assert frame.pixels.flags.c_contiguous
        assert int(frame.pixels.max()) > int(frame.pixels.min())  # a picture, not a fill
        configuration = source._camera.camera_configuration()  # inspection only
        assert configuration["lores"] is None
        assert configuration["main"]["format"] == "YUV420"
    finally:
        source.close()
