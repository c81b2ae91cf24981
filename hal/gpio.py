"""gpiozero adapters for the Lights, Beeper, Relay and Trigger ports.

Thin on purpose: no timing and no business rules (those live in ``device.feedback``).
Every adapter takes ``pin_factory`` so tests can hand in gpiozero's ``MockFactory``;
on a Pi, None lets gpiozero pick its default (lgpio on Raspberry Pi OS bookworm).

Example::

    lights = GpioLights({"green": 17, "amber": 27, "red": 22})
    lights.set("green", True)
    lights.close()
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from gpiozero import LED, Buzzer, DigitalInputDevice, OutputDevice, TonalBuzzer
from gpiozero.pins import Factory
from gpiozero.tones import Tone

from hal.ports import LED_NAMES, LedName

# TonalBuzzer plays only within ``octaves`` of ``mid_tone``. A5 (880 Hz, MIDI 81) with three
# octaves either side gives 110-7040 Hz, which covers every feedback tone (400-2000 Hz).
# The mid tone must be an exact MIDI note: gpiozero derives min/max_tone by MIDI steps.
TONE_MID_MIDI = 81
TONE_OCTAVES = 3


class GpioLights:
    """One LED per colour, each on its own GPIO pin."""

    def __init__(self, pins: Mapping[LedName, int], *, pin_factory: Factory | None = None) -> None:
        unknown = sorted(set(pins) - set(LED_NAMES))
        if unknown:
            raise ValueError(f"unknown LED colour(s) {unknown}: expected some of {list(LED_NAMES)}")
        self._leds: dict[LedName, LED] = {}
        try:
            for name, pin in pins.items():
                self._leds[name] = LED(pin, pin_factory=pin_factory)
        except BaseException:
            self.close()  # release the pins already claimed before failing
            raise

    def set(self, name: LedName, on: bool) -> None:
        """Switch the ``name`` LED on or off."""
        led = self._leds.get(name)
        if led is None:
            wired = ", ".join(self._leds) or "none"
            raise KeyError(f"no LED wired for colour {name!r} (wired: {wired})")
        if on:
            led.on()
        else:
            led.off()

    def close(self) -> None:
        """Release every LED pin."""
        for led in self._leds.values():
            led.close()


class GpioBeeper:
    """A passive piezo driven by PWM (``tonal=True``) or an active buzzer (``tonal=False``)."""

    def __init__(self, pin: int, *, tonal: bool, pin_factory: Factory | None = None) -> None:
        self._tonal = tonal
        if tonal:
            self._device = TonalBuzzer(
                pin,
                mid_tone=Tone(midi=TONE_MID_MIDI),
                octaves=TONE_OCTAVES,
                pin_factory=pin_factory,
            )
        else:
            self._device = Buzzer(pin, pin_factory=pin_factory)

    def tone(self, hz: float | None) -> None:
        """Sound at ``hz`` (clamped to what the buzzer can play), or fall silent with None."""
        if hz is not None and math.isnan(hz):
            raise ValueError("tone frequency is NaN")
        if not self._tonal:
            # An active buzzer has one pitch of its own: any hz means "on".
            self._device.value = hz is not None
        elif hz is None:
            self._device.stop()
        else:
            # from_frequency, not Tone(hz): gpiozero reads a bare number below 128 as a MIDI note.
            self._device.play(Tone.from_frequency(self._playable(hz)))

    def _playable(self, hz: float) -> float:
        """``hz`` clamped into the TonalBuzzer's range."""
        low = float(self._device.min_tone.frequency)
        high = float(self._device.max_tone.frequency)
        return min(max(hz, low), high)

    def close(self) -> None:
        """Silence the buzzer and release its pin."""
        self._device.close()


class GpioRelay:
    """A door-strike or turnstile relay on one output pin, released (off) at start."""

    def __init__(
        self, pin: int, *, active_high: bool = True, pin_factory: Factory | None = None
    ) -> None:
        self._device = OutputDevice(
            pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
        )

    def set(self, energized: bool) -> None:
        """Energize or release the relay coil."""
        if energized:
            self._device.on()
        else:
            self._device.off()

    def close(self) -> None:
        """Release the relay pin (gpiozero returns it to an input)."""
        self._device.close()


class GpioTrigger:
    """The handheld's trigger: a push button, to ground by default (internal pull-up)."""

    def __init__(
        self,
        pin: int,
        *,
        pull_up: bool = True,
        bounce_s: float | None = None,
        pin_factory: Factory | None = None,
    ) -> None:
        # DigitalInputDevice is gpiozero's Button without the hold machinery: Button starts a
        # hold thread that polls every 0.1 s and makes close() wait up to hold_time (1 s) when
        # closed while pressed. The loop polls ``pressed`` and needs neither.
        self._button = DigitalInputDevice(
            pin, pull_up=pull_up, bounce_time=bounce_s, pin_factory=pin_factory
        )

    @property
    def pressed(self) -> bool:
        """True while the trigger is held."""
        return bool(self._button.is_active)

    def close(self) -> None:
        """Release the button pin."""
        self._button.close()
