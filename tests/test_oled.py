"""LumaDisplay on luma's dummy device, and open_luma_display wired to a recording bus."""

from __future__ import annotations

import os
from typing import Any

import pytest
from luma.core.device import dummy
from luma.core.error import DeviceDisplayModeError
from PIL import Image, ImageChops

from device.screens import Screen, render
from hal.oled import LumaDisplay, open_luma_display

SCREEN = Screen("admitted", "WELCOME", ("10:00-11:00", "General Admission"), "SCAN  gate-1")
DISPLAYOFF = 0xAE  # the same command byte on the SSD1306 and the SH1106

# luma.oled 3.16's ssd1306/sh1106 display() calls Image.getdata(), deprecated in Pillow 13.
LUMA_GETDATA = "ignore:Image.Image.getdata is deprecated:DeprecationWarning"


class RecordingSerial:
    """Stands in for luma's i2c interface: keeps what the driver sends."""

    def __init__(self, **kwargs: Any) -> None:
        self.opened_with = kwargs
        self.commands: list[int] = []
        self.data_bytes = 0
        self.closed = False

    def command(self, *cmd: int) -> None:
        self.commands.extend(cmd)

    def data(self, data: list[int]) -> None:
        self.data_bytes += len(data)

    def cleanup(self) -> None:
        self.closed = True


@pytest.mark.parametrize("size", [(128, 64), (128, 32)])
def test_show_hands_the_rendered_image_to_the_device(size: tuple[int, int]) -> None:
    device = dummy(width=size[0], height=size[1], mode="1")
    display = LumaDisplay(device)
    image = render(SCREEN, display.size)

    display.show(image, SCREEN.text)

    assert display.size == size
    assert device.image.mode == "1"
    assert ImageChops.difference(device.image, image).getbbox() is None


def test_size_follows_the_device_rotation() -> None:
    assert LumaDisplay(dummy(width=128, height=64, rotate=1, mode="1")).size == (64, 128)


@pytest.mark.parametrize(
    "image",
    [Image.new("1", (128, 32)), Image.new("1", (64, 128)), Image.new("L", (128, 64))],
    ids=["too-short", "rotated", "greyscale"],
)
def test_show_refuses_an_image_of_the_wrong_size_or_mode(image: Image.Image) -> None:
    device = dummy(width=128, height=64, mode="1")

    with pytest.raises(ValueError, match=r"mode \"1\" image of \(128, 64\)"):
        LumaDisplay(device).show(image, "wrong")

    assert device.image is None  # nothing reached the panel


def test_close_cleans_up_and_blanks_the_panel() -> None:
    device = dummy(width=128, height=64, mode="1")
    display = LumaDisplay(device)
    display.show(render(SCREEN, display.size), SCREEN.text)

    display.close()

    # dummy.cleanup() runs luma's real cleanup: hide, then clear (persist is False).
    assert device.image.getbbox() is None


@pytest.fixture
def buses(monkeypatch: pytest.MonkeyPatch) -> list[RecordingSerial]:
    """Replace luma's i2c with RecordingSerial; the list holds every bus opened."""
    opened: list[RecordingSerial] = []

    def recording_i2c(**kwargs: Any) -> RecordingSerial:
        opened.append(RecordingSerial(**kwargs))
        return opened[-1]

    monkeypatch.setattr("luma.core.interface.serial.i2c", recording_i2c)
    return opened


def test_open_refuses_an_unknown_driver_before_touching_i2c(buses: list[RecordingSerial]) -> None:
    with pytest.raises(ValueError, match=r"'ssd1309'.*ssd1306, sh1106"):
        open_luma_display("ssd1309")

    assert buses == []


@pytest.mark.filterwarnings(LUMA_GETDATA)
@pytest.mark.parametrize("driver", ["ssd1306", "sh1106"])
@pytest.mark.parametrize("size", [(128, 64), (128, 32)])
def test_open_builds_the_driver_on_i2c_and_close_blanks_and_switches_it_off(
    buses: list[RecordingSerial], driver: str, size: tuple[int, int]
) -> None:
    frame_bytes = size[0] * size[1] // 8
    display = open_luma_display(driver, port=3, address=0x3D, width=size[0], height=size[1])
    display.show(render(SCREEN, display.size), SCREEN.text)
    (bus,) = buses
    commands_before_close = len(bus.commands)

    display.close()

    assert bus.opened_with == {"port": 3, "address": 0x3D}
    assert display.size == size
    assert DISPLAYOFF in bus.commands[commands_before_close:]
    # luma clears the panel at start-up, we send one frame, and cleanup sends a blank one.
    assert bus.data_bytes == 3 * frame_bytes
    assert bus.closed


def test_open_releases_the_bus_when_the_driver_refuses_the_size(
    buses: list[RecordingSerial],
) -> None:
    with pytest.raises(DeviceDisplayModeError, match="128 x 48"):
        open_luma_display("ssd1306", height=48)

    assert buses[0].closed


@pytest.mark.hardware
@pytest.mark.filterwarnings(LUMA_GETDATA)
def test_real_oled_shows_a_screen() -> None:
    """On a Pi with an OLED on I2C bus 1 (OLED_DRIVER / OLED_HEIGHT override the defaults)."""
    height = int(os.environ.get("OLED_HEIGHT", "64"))
    display = open_luma_display(os.environ.get("OLED_DRIVER", "ssd1306"), height=height)
    try:
        display.show(render(SCREEN, display.size), SCREEN.text)
    finally:
        display.close()
