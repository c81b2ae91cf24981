"""LumaDisplay on luma's dummy device; open_luma_display and open_oled on a fake I2C bus.

``tests/fake_luma.py`` records what the driver sends and fails like luma's ``i2c``: no bus,
no panel at construction (DeviceNotFoundError), a panel gone mid-run (OSError 121 in data()).
"""

from __future__ import annotations

import logging

import pytest
from luma.core.device import dummy
from luma.core.error import DeviceDisplayModeError
from PIL import Image, ImageChops

from device.screens import Screen, render
from hal.oled import RETRY_MAX_S, LumaDisplay, open_luma_display, open_oled
from tests.fake_luma import FakeI2C, I2CWorld
from tests.fakes import FakeClock

SCREEN = Screen("admitted", "WELCOME", ("10:00-11:00", "General Admission"), "SCAN  gate-1")
DISPLAYOFF = 0xAE  # the same command byte on the SSD1306 and the SH1106

# luma.oled 3.16's ssd1306/sh1106 display() calls Image.getdata(), deprecated in Pillow 13.
LUMA_GETDATA = "ignore:Image.Image.getdata is deprecated:DeprecationWarning"


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
def world(monkeypatch: pytest.MonkeyPatch) -> I2CWorld:
    """Replace luma's i2c with the fake bus; ``world.opened`` holds every bus opened."""
    fake = I2CWorld()
    monkeypatch.setattr("luma.core.interface.serial.i2c", fake.i2c)
    return fake


@pytest.fixture
def buses(world: I2CWorld) -> list[FakeI2C]:
    return world.opened


def test_open_refuses_an_unknown_driver_before_touching_i2c(buses: list[FakeI2C]) -> None:
    with pytest.raises(ValueError, match=r"'ssd1309'.*ssd1306, sh1106"):
        open_luma_display("ssd1309")

    assert buses == []


@pytest.mark.filterwarnings(LUMA_GETDATA)
@pytest.mark.parametrize("driver", ["ssd1306", "sh1106"])
@pytest.mark.parametrize("size", [(128, 64), (128, 32)])
def test_open_builds_the_driver_on_i2c_and_close_blanks_and_switches_it_off(
    buses: list[FakeI2C], driver: str, size: tuple[int, int]
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
    buses: list[FakeI2C],
) -> None:
    with pytest.raises(DeviceDisplayModeError, match="128 x 48"):
        open_luma_display("ssd1306", height=48)

    assert buses[0].closed


# --- a display fault is logged once, survived and retried -----------------------------------

OTHER = Screen("ready", "READY", ("show ticket",), "SCAN  online")
FRAME_BYTES = 128 * 64 // 8


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """What hal.oled logs during the test, from INFO up."""
    caplog.set_level(logging.INFO, logger="hal.oled")
    return caplog


def error_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def frame_of(screen: Screen) -> bytes:
    """The bytes an SSD1306 gets for ``screen``, taken from a healthy panel."""
    quiet = I2CWorld()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("luma.core.interface.serial.i2c", quiet.i2c)
        display = open_luma_display("ssd1306")
        display.show(render(screen, display.size), screen.text)
    return bytes(quiet.live.sent[-FRAME_BYTES:])


def show(display: object, screen: Screen) -> None:
    display.show(render(screen, (128, 64)), screen.text)  # type: ignore[attr-defined]


@pytest.mark.filterwarnings(LUMA_GETDATA)
def test_a_panel_unplugged_while_running_is_logged_once_and_the_scanner_carries_on(
    world: I2CWorld, clock: FakeClock, errors: pytest.LogCaptureFixture
) -> None:
    display = open_oled("ssd1306", clock=clock)
    show(display, SCREEN)
    world.panel_present = False  # a loose wire: data() now raises OSError 121

    for step in range(100):  # a hundred verdicts and ready screens during the outage
        clock.now += 0.1
        show(display, SCREEN if step % 2 else OTHER)

    (line,) = error_lines(errors)
    assert "I2C bus 1 address 0x3C" in line
    display.close()


@pytest.mark.filterwarnings(LUMA_GETDATA)
def test_the_panel_comes_back_with_the_current_screen_after_the_back_off(
    world: I2CWorld, clock: FakeClock, errors: pytest.LogCaptureFixture
) -> None:
    display = open_oled("ssd1306", clock=clock)
    show(display, SCREEN)
    world.panel_present = False
    show(display, OTHER)  # fails: the panel is gone
    world.panel_present = True  # replugged
    opened = len(world.opened)

    clock.now += 0.5
    display.retry()
    assert len(world.opened) == opened  # still backing off: no bus traffic

    clock.now += 0.5
    display.retry()
    assert len(world.opened) == opened + 1  # re-opened: init sequence, then the screen again
    assert bytes(world.live.sent[-FRAME_BYTES:]) == frame_of(OTHER)
    assert "display back on I2C bus 1 address 0x3C" in errors.text
    assert len(error_lines(errors)) == 1
    display.close()


@pytest.mark.filterwarnings(LUMA_GETDATA)
def test_retries_back_off_to_a_ceiling_and_log_nothing_more(
    world: I2CWorld, clock: FakeClock, errors: pytest.LogCaptureFixture
) -> None:
    display = open_oled("ssd1306", clock=clock)
    world.panel_present = False
    show(display, SCREEN)
    attempts: list[float] = []
    start = clock.now
    for _ in range(2000):  # 200 s of loop passes, 0.1 s apart
        clock.now += 0.1
        before = len(world.opened)
        display.retry()
        if len(world.opened) > before:
            attempts.append(round(clock.now - start, 1))

    gaps = [b - a for a, b in zip([0.0, *attempts], attempts, strict=False)]
    assert gaps[:5] == pytest.approx([1.0, 2.0, 4.0, 8.0, 16.0], abs=0.11)  # 0.1 s passes
    assert max(gaps) == pytest.approx(RETRY_MAX_S, abs=0.11)
    assert len(error_lines(errors)) == 1
    assert all(bus.closed for bus in world.opened)  # no file descriptor left open per retry
    display.close()


@pytest.mark.filterwarnings(LUMA_GETDATA)
def test_a_panel_missing_at_start_up_is_an_error_naming_the_bus_not_a_crash(
    world: I2CWorld, clock: FakeClock, errors: pytest.LogCaptureFixture
) -> None:
    world.panel_present = False  # DeviceNotFoundError from the driver's init sequence
    display = open_oled("sh1106", port=1, address=0x3D, height=32, clock=clock)

    assert display.size == (128, 32)  # the loop renders at the configured size regardless
    show32 = render(SCREEN, (128, 32))
    display.show(show32, SCREEN.text)
    (line,) = error_lines(errors)
    assert "I2C bus 1 address 0x3D" in line
    assert "DeviceNotFoundError" in line

    world.panel_present = True  # plugged in later
    clock.now += 1.0
    display.retry()
    assert world.live.data_bytes >= 2 * 128 * 32 // 8  # cleared at init, then the screen
    display.close()


def test_i2c_not_enabled_is_survived_and_says_which_device(
    world: I2CWorld, clock: FakeClock, errors: pytest.LogCaptureFixture
) -> None:
    world.bus_exists = False
    display = open_oled("ssd1306", clock=clock)
    (line,) = error_lines(errors)
    assert "/dev/i2c-1" in line
    display.close()


def test_a_wrong_panel_size_is_still_a_start_up_error(world: I2CWorld, clock: FakeClock) -> None:
    with pytest.raises(DeviceDisplayModeError, match="128 x 48"):
        open_oled("ssd1306", height=48, clock=clock)


@pytest.mark.filterwarnings(LUMA_GETDATA)
def test_close_during_an_outage_does_not_raise(world: I2CWorld, clock: FakeClock) -> None:
    display = open_oled("ssd1306", clock=clock)
    world.panel_present = False
    display.close()  # luma's cleanup would talk to the panel; the bus is still released
    assert world.live.closed


@pytest.mark.filterwarnings(LUMA_GETDATA)
def test_the_pi_outputs_open_without_the_panel_and_pick_it_up_between_passes(
    world: I2CWorld, clock: FakeClock, errors: pytest.LogCaptureFixture
) -> None:
    from gpiozero import Device  # noqa: PLC0415
    from gpiozero.pins.mock import MockFactory  # noqa: PLC0415

    from device.config import HardwareConfig  # noqa: PLC0415
    from hal.factory import open_outputs  # noqa: PLC0415
    from tests.fake_pins import LgpioLikePin  # noqa: PLC0415

    previous, Device.pin_factory = Device.pin_factory, MockFactory(pin_class=LgpioLikePin)
    world.panel_present = False
    try:
        outputs = open_outputs(HardwareConfig(), "handheld", clock=clock)
        try:
            outputs.lights.set("green", True)  # the guest still gets the light
            show(outputs.display, SCREEN)
            world.panel_present = True
            clock.now += 1.0
            outputs.maintain()  # what the loop's after-pass hook calls
            assert bytes(world.live.sent[-FRAME_BYTES:]) == frame_of(SCREEN)
        finally:
            outputs.close()
    finally:
        Device.pin_factory.close()
        Device.pin_factory = previous
    assert "I2C bus 1 address 0x3C" in error_lines(errors)[0]
