"""luma.oled adapter: an SSD1306 or SH1106 OLED as the ``Display`` port.

Example::

    display = open_luma_display("ssd1306", height=32)
    display.show(render(screen, display.size), screen.text)
    display.close()
"""

from __future__ import annotations

import logging
from typing import Any

from PIL import Image

log = logging.getLogger(__name__)

SUPPORTED_DRIVERS = ("ssd1306", "sh1106")


class LumaDisplay:
    """The ``Display`` port on any luma device (a real OLED, or ``luma.core.device.dummy``)."""

    def __init__(self, device: Any) -> None:
        self._device = device

    @property
    def size(self) -> tuple[int, int]:
        """Width and height in pixels, after the device's rotation."""
        width, height = self._device.size
        return (int(width), int(height))

    def show(self, image: Image.Image, text: str) -> None:
        """Send a 1-bit image of exactly ``size`` to the panel; ``text`` goes to the debug log."""
        if image.size != self.size or image.mode != "1":
            raise ValueError(
                f'display expects a mode "1" image of {self.size}, got mode {image.mode!r} '
                f"of {image.size}"
            )
        log.debug("display show text=%r", text)
        self._device.display(image)

    def close(self) -> None:
        """Blank and switch off the panel, and release the bus."""
        self._device.cleanup()


def open_luma_display(
    driver: str,
    *,
    port: int = 1,
    address: int = 0x3C,
    width: int = 128,
    height: int = 64,
    rotate: int = 0,
) -> LumaDisplay:
    """Open an OLED on I2C bus ``port``, e.g. ``open_luma_display("sh1106", address=0x3D)``."""
    if driver not in SUPPORTED_DRIVERS:
        raise ValueError(
            f"unknown OLED driver {driver!r}: supported drivers are {', '.join(SUPPORTED_DRIVERS)}"
        )
    # Imported here, as hardware libraries are (ARCHITECTURE.md): only a real panel needs them.
    from luma.core.interface.serial import i2c  # noqa: PLC0415
    from luma.oled.device import sh1106, ssd1306  # noqa: PLC0415

    device_class = {"ssd1306": ssd1306, "sh1106": sh1106}[driver]
    serial = i2c(port=port, address=address)
    try:
        # The constructor sends the init sequence, so a wrong address fails here, not in show().
        device = device_class(serial, width=width, height=height, rotate=rotate)
    except Exception:
        serial.cleanup()
        raise
    device.persist = False  # cleanup() then blanks and switches off the panel (luma's default)
    log.info(
        "display opened driver=%s port=%d address=0x%02X size=%dx%d rotate=%d",
        driver,
        port,
        address,
        width,
        height,
        rotate,
    )
    return LumaDisplay(device)
