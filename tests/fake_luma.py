"""A recording stand-in for luma's I2C interface, with a panel that can be unplugged.

It follows rm-hull/luma.core luma/core/interface/serial.py, class ``i2c`` (luma.core 2.6.0,
the version in the venv), failure paths included:

- ``i2c.__init__`` opens ``smbus2.SMBus(port)``; a missing /dev/i2c-N (I2C not enabled) is
  ENOENT, re-raised as ``DeviceNotFoundError('I2C device not found: /dev/i2c-N')``.
- ``i2c.command`` is ``write_i2c_block_data``; EREMOTEIO (121, no ACK: nothing at the address)
  or EIO is re-raised as ``DeviceNotFoundError('I2C device not found on address: 0x3C')``.
  A driver's constructor (luma.oled.device ssd1306/sh1106 ``__init__``) sends its init
  sequence through it, so an absent panel fails at construction.
- ``i2c.data`` is ``i2c_rdwr`` (managed smbus2) with no error mapping: an unplugged panel
  raises the raw ``OSError(121, 'Remote I/O error')`` from ``display()``.
- ``i2c.cleanup`` closes the bus and never talks to the panel.
"""

from __future__ import annotations

import errno
import os

from luma.core.error import DeviceNotFoundError


class I2CWorld:
    """The I2C bus as it is right now: does /dev/i2c-N exist, does the panel answer."""

    def __init__(self) -> None:
        self.bus_exists = True
        self.panel_present = True
        self.opened: list[FakeI2C] = []

    def i2c(self, port: int = 1, address: int = 0x3C) -> FakeI2C:
        """Patched in for ``luma.core.interface.serial.i2c``."""
        bus = FakeI2C(self, port=port, address=address)
        self.opened.append(bus)
        return bus

    @property
    def live(self) -> FakeI2C:
        """The bus most recently opened."""
        return self.opened[-1]


class FakeI2C:
    """Records what the driver sends; fails the way luma's ``i2c`` does."""

    def __init__(self, world: I2CWorld, *, port: int, address: int) -> None:
        if not world.bus_exists:
            raise DeviceNotFoundError(f"I2C device not found: /dev/i2c-{port}")
        self._world = world
        self.opened_with = {"port": port, "address": address}
        self.commands: list[int] = []
        self.sent = bytearray()  # every data byte, in order
        self.closed = False

    @property
    def data_bytes(self) -> int:
        return len(self.sent)

    def command(self, *cmd: int) -> None:
        assert len(cmd) <= 32  # luma asserts the SMBus block limit too
        if not self._world.panel_present:
            address = self.opened_with["address"]
            raise DeviceNotFoundError(f"I2C device not found on address: 0x{address:02X}")
        self.commands.extend(cmd)

    def data(self, data: list[int]) -> None:
        if not self._world.panel_present:
            raise OSError(errno.EREMOTEIO, os.strerror(errno.EREMOTEIO))
        self.sent.extend(data)

    def cleanup(self) -> None:
        self.closed = True
