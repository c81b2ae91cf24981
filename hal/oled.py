"""luma.oled adapter: an SSD1306 or SH1106 OLED as the ``Display`` port.

``open_oled`` is what the scanner uses: a display that survives its panel. A loose wire makes
luma raise ``DeviceNotFoundError`` (at construction, or from ``command()``) or a raw ``OSError``
121 (from ``data()``, luma/core/interface/serial.py ``i2c``). The guest still gets the lights
and the buzzer, so a display fault is logged once per outage, and the panel is re-opened and
sent the current screen after a back-off on the injected clock.

Example::

    display = open_oled("ssd1306", height=32)
    display.show(render(screen, display.size), screen.text)
    display.retry()  # from the loop: re-open a failed panel once its back-off has passed
    display.close()
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from PIL import Image

log = logging.getLogger(__name__)

SUPPORTED_DRIVERS = ("ssd1306", "sh1106")
# Re-open a failed panel after 1 s, then 2, 4, 8 and 16 s, then every 30 s: a replugged panel
# is back within a second or two, and a dead one costs one I2C probe every half minute.
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0


class LumaDisplay:
    """The ``Display`` port on any luma device (a real OLED, or ``luma.core.device.dummy``)."""

    def __init__(self, device: Any, serial: Any = None) -> None:
        self._device = device
        self._serial = serial  # the I2C interface, to release without talking to the panel

    @property
    def size(self) -> tuple[int, int]:
        """Width and height in pixels, after the device's rotation."""
        width, height = self._device.size
        return (int(width), int(height))

    def show(self, image: Image.Image, text: str) -> None:
        """Send a 1-bit image of exactly ``size`` to the panel; ``text`` goes to the debug log."""
        check_image(image, self.size)
        log.debug("display show text=%r", text)
        self._device.display(image)

    def close(self) -> None:
        """Blank and switch off the panel, and release the bus."""
        self._device.cleanup()

    def abandon(self) -> None:
        """Release the bus of a panel that stopped answering, without sending it anything."""
        self._device.persist = True  # luma's atexit cleanup would try to blank it
        if self._serial is not None:
            with contextlib.suppress(Exception):
                self._serial.cleanup()


def check_image(image: Image.Image, size: tuple[int, int]) -> None:
    """Refuse what no panel of ``size`` can show (a bug in the caller, not a display fault)."""
    if image.size != size or image.mode != "1":
        raise ValueError(
            f'display expects a mode "1" image of {size}, got mode {image.mode!r} of {image.size}'
        )


class RecoveringDisplay:
    """The ``Display`` port over a panel that may fail, be missing, or come back.

    ``open_panel`` raises ``faults`` while the panel is not there. Faults are logged at ERROR
    once per outage (then DEBUG); ``show()`` keeps the newest image and ``retry()`` re-opens
    the panel and re-sends it once the back-off on ``clock`` has passed.
    """

    def __init__(
        self,
        open_panel: Callable[[], LumaDisplay],
        *,
        size: tuple[int, int],
        where: str,
        faults: tuple[type[BaseException], ...],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open_panel, self._size, self._where = open_panel, size, where
        self._faults, self._clock = faults, clock
        self._panel: LumaDisplay | None = None
        self._image: Image.Image | None = None
        self._text = ""
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._attempts = 0
        self._reopen()  # missing at start-up: logged, and the scanner starts without it

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    @property
    def working(self) -> bool:
        """True while the panel answers."""
        return self._panel is not None

    def show(self, image: Image.Image, text: str) -> None:
        """Show ``image`` now if the panel answers; otherwise keep it for when it is back."""
        check_image(image, self._size)
        self._image, self._text = image, text
        if self._panel is None:
            self.retry()
        else:
            self._send(self._panel)

    def retry(self) -> None:
        """Re-open a failed panel and re-send the current image, if its back-off has passed."""
        if self._panel is None and self._clock() >= self._retry_at:
            self._reopen()

    def close(self) -> None:
        """Blank and switch off a working panel; release the bus either way."""
        panel, self._panel = self._panel, None
        if panel is None:
            return
        try:
            panel.close()
        except self._faults:
            panel.abandon()

    def _reopen(self) -> None:
        try:
            panel = self._open_panel()
        except self._faults as error:
            self._failed(error)
            return
        self._panel = panel
        if self._image is None or self._send(panel):
            self._recovered()

    def _send(self, panel: LumaDisplay) -> bool:
        assert self._image is not None
        try:
            panel.show(self._image, self._text)
        except self._faults as error:
            self._panel = None
            panel.abandon()
            self._failed(error)
            return False
        return True

    def _failed(self, error: BaseException) -> None:
        now = self._clock()
        delay = min(RETRY_FIRST_S * 2**self._attempts, RETRY_MAX_S)
        self._attempts += 1
        self._retry_at = now + delay
        if self._down_since is None:
            self._down_since = now
            log.error(
                "display fault on %s (%s: %s): carrying on without it, lights and buzzer "
                "still work; retrying from %.0f s, then up to every %.0f s",
                self._where,
                type(error).__name__,
                error,
                delay,
                RETRY_MAX_S,
            )
        else:
            log.debug("display still failing on %s (%s)", self._where, type(error).__name__)

    def _recovered(self) -> None:
        if self._down_since is not None:
            log.warning(
                "display back on %s after %.0f s (%d retries)",
                self._where,
                self._clock() - self._down_since,
                self._attempts,
            )
        self._down_since, self._attempts = None, 0


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
    return LumaDisplay(device, serial)


def open_oled(
    driver: str,
    *,
    port: int = 1,
    address: int = 0x3C,
    width: int = 128,
    height: int = 64,
    rotate: int = 0,
    clock: Callable[[], float] = time.monotonic,
) -> RecoveringDisplay:
    """An OLED that a missing or failing panel does not stop; see ``RecoveringDisplay``.

    A wrong driver or size still fails here: that is the config, not the wiring.
    """
    from luma.core.error import DeviceNotFoundError  # noqa: PLC0415

    if driver not in SUPPORTED_DRIVERS:
        open_luma_display(driver)  # raises the ValueError naming the supported drivers
    size = (height, width) if rotate % 2 else (width, height)
    return RecoveringDisplay(
        lambda: open_luma_display(
            driver, port=port, address=address, width=width, height=height, rotate=rotate
        ),
        size=size,
        where=f"I2C bus {port} address 0x{address:02X}",
        # serial.py i2c: DeviceNotFoundError for no bus or no ACK in command(); a raw OSError
        # (121 EREMOTEIO, 5 EIO, 110 ETIMEDOUT) from data(), which maps nothing.
        faults=(DeviceNotFoundError, OSError),
        clock=clock,
    )
