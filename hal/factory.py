"""Config -> the hardware bundle: the Pi's real parts, or the sim backend's recorded ones."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from device.config import CameraConfig, HardwareConfig, Profile
from device.events import Emit, ignore
from hal.ports import Beeper, Display, FrameSource, LedName, Lights, Relay, Trigger
from hal.sim import SimBeeper, SimDisplay, SimLights, SimRelay


@dataclass
class Outputs:
    """Everything the loop drives, and the trigger it reads (None: scan continuously)."""

    display: Display
    lights: Lights
    beeper: Beeper
    relay: Relay | None
    trigger: Trigger | None
    # Between loop passes: a display that lost its panel tries to get it back (set where the
    # display is hal.oled's RecoveringDisplay; nothing to do for the others).
    maintain: Callable[[], None] = lambda: None

    def close(self) -> None:
        """Switch everything off and release it, even if one part fails to."""
        parts = (self.display, self.lights, self.beeper, self.relay, self.trigger)
        for part in parts:
            if part is not None:
                with contextlib.suppress(Exception):
                    part.close()


def open_source(camera: CameraConfig, clock: Callable[[], float]) -> FrameSource:
    """The configured camera: ``picamera2`` or ``images:DIR``.

    A folder that cannot be played raises hal.files.ImageFolderError, naming it.
    """
    if camera.source.startswith("images:"):
        from hal.files import ImagesSource  # noqa: PLC0415 - adapters load only when chosen

        return ImagesSource(
            Path(camera.source.removeprefix("images:")), fps=camera.fps, clock=clock
        )
    from hal.picam import Picamera2Source  # noqa: PLC0415 - picamera2 exists only on a Pi

    return Picamera2Source(camera.size, zoom=camera.zoom, fps=camera.fps, clock=clock)


def open_outputs(
    hardware: HardwareConfig,
    profile: Profile,
    emit: Emit = ignore,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> Outputs:
    """The configured outputs; a door unit gets the relay, a handheld the trigger.

    ``clock`` (the loop's) times the trigger's debounce and the display's retries.
    """
    if hardware.backend == "sim":
        return Outputs(
            display=SimDisplay(emit, (128, hardware.display_height)),
            lights=SimLights(emit),
            beeper=SimBeeper(emit),
            relay=SimRelay(emit) if profile == "door" else None,
            trigger=None,  # nobody to press it: the sim scans continuously
        )
    return _open_gpio_outputs(hardware, profile, clock)


def _open_gpio_outputs(
    hardware: HardwareConfig, profile: Profile, clock: Callable[[], float]
) -> Outputs:
    from hal.gpio import GpioBeeper, GpioLights, GpioRelay, GpioTrigger  # noqa: PLC0415
    from hal.oled import open_oled  # noqa: PLC0415

    display: Display
    maintain = _nothing
    if hardware.display == "none":
        display = SimDisplay(ignore, (128, hardware.display_height))
    else:
        # A missing or failing panel is logged and retried, never fatal: the lights and the
        # buzzer still tell the guest.
        display = oled = open_oled(
            hardware.display,
            port=hardware.i2c_port,
            address=hardware.i2c_address,
            height=hardware.display_height,
            clock=clock,
        )
        maintain = oled.retry
    pins: dict[LedName, int] = {
        "green": hardware.led_green,
        "amber": hardware.led_amber,
        "red": hardware.led_red,
    }
    return Outputs(
        display=display,
        lights=GpioLights(pins),
        beeper=GpioBeeper(hardware.buzzer, tonal=hardware.buzzer_tonal),
        relay=GpioRelay(hardware.relay, active_high=hardware.relay_active_high)
        if profile == "door"
        else None,
        trigger=GpioTrigger(hardware.trigger, clock=clock) if profile == "handheld" else None,
        maintain=maintain,
    )


def _nothing() -> None:
    """No display to look after."""
