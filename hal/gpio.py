"""gpiozero adapters for the Lights, Beeper, Relay and Trigger ports.

Thin on purpose: no business rules (those live in ``device.feedback``) and no sleeps. The one
timing rule here is the trigger's contact debounce, on an injected clock, because lgpio does not
debounce a polled read. Every adapter takes ``pin_factory`` so tests can hand in gpiozero's
``MockFactory``; on a Pi, None lets gpiozero pick its default, and the systemd unit pins that to
lgpio (``GPIOZERO_PIN_FACTORY=lgpio``) so a broken lgpio fails instead of falling back.

Example::

    lights = GpioLights({"green": 17, "amber": 27, "red": 22})
    lights.set("green", True)
    lights.close()
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping

from gpiozero import LED, Buzzer, DigitalInputDevice, OutputDevice, TonalBuzzer
from gpiozero.pins import Factory
from gpiozero.tones import Tone

from hal.ports import LED_NAMES, LedName

# TonalBuzzer plays only within ``octaves`` of ``mid_tone``. A5 (880 Hz, MIDI 81) with three
# octaves either side gives 110-7040 Hz, which covers every feedback tone (400-2000 Hz).
# The mid tone must be an exact MIDI note: gpiozero derives min/max_tone by MIDI steps.
TONE_MID_MIDI = 81
TONE_OCTAVES = 3
# A push button's contacts bounce for a few milliseconds; 20 ms of one level is a real change
# and still well under a frame (33 ms at 30 fps), so a pull is not noticeably later.
DEBOUNCE_S = 0.02
# Clock readings are floats: 1000.00 + 0.02 - 1000.00 is a hair under 0.02.
_CLOCK_SLACK_S = 1e-6


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
            self._stop_tone()
        else:
            # from_frequency, not Tone(hz): gpiozero reads a bare number below 128 as a MIDI note.
            self._device.play(Tone.from_frequency(self._playable(hz)))

    def _playable(self, hz: float) -> float:
        """``hz`` clamped into the TonalBuzzer's range."""
        low = float(self._device.min_tone.frequency)
        high = float(self._device.max_tone.frequency)
        return min(max(hz, low), high)

    def _stop_tone(self) -> None:
        """Stop PWM, then drive the line low.

        On lgpio, ``TonalBuzzer.stop()`` -> ``LGPIOPin._set_frequency(None)`` ->
        ``lgpio.tx_pwm(h, gpio, 0, 0)`` only deactivates the PWM (lg, lgGpio.c ``xSetAsPwm``)
        and leaves the line where the wave was: high half the time. Without PWM,
        ``pwm_device.off()`` is a plain ``lgpio.gpio_write(h, gpio, 0)``.
        """
        self._device.stop()
        self._device.pwm_device.off()

    def close(self) -> None:
        """Silence the buzzer, drive its line low, and release the pin."""
        if self._tonal:
            self._stop_tone()
        else:
            self._device.off()
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
    """The handheld's trigger: a push button, to ground by default (internal pull-up).

    ``pressed`` is debounced in software: a new level counts once the line has read it for
    ``debounce_s`` on ``clock``. lgpio's own debounce (gpiozero ``LGPIOPin._set_bounce`` ->
    ``lgpio.gpio_set_debounce_micros``) applies only to edge callbacks (lg, lgPthAlerts.c);
    ``is_active`` -> ``lgpio.gpio_read`` is the raw line, so a bounce while held would
    otherwise look like a release and a second pull.
    """

    def __init__(
        self,
        pin: int,
        *,
        pull_up: bool = True,
        debounce_s: float = DEBOUNCE_S,
        clock: Callable[[], float] = time.monotonic,
        pin_factory: Factory | None = None,
    ) -> None:
        if debounce_s < 0:
            raise ValueError(f"trigger debounce must be 0 or more seconds, got {debounce_s}")
        # DigitalInputDevice is gpiozero's Button without the hold machinery: Button starts a
        # hold thread that polls every 0.1 s and makes close() wait up to hold_time (1 s) when
        # closed while pressed. The loop polls ``pressed`` and needs neither.
        self._button = DigitalInputDevice(pin, pull_up=pull_up, pin_factory=pin_factory)
        self._clock = clock
        self._level = Debounced(self._raw(), debounce_s)

    def _raw(self) -> bool:
        return bool(self._button.is_active)

    @property
    def pressed(self) -> bool:
        """True while the trigger is held (once it has settled)."""
        return self._level.update(self._raw(), self._clock())

    def close(self) -> None:
        """Release the button pin."""
        self._button.close()


class Debounced:
    """A polled level that changes only after reading the new value for ``settle_s``."""

    def __init__(self, level: bool, settle_s: float) -> None:
        self._level = level
        self._settle_s = settle_s
        self._changing_since: float | None = None  # first reading of the other level

    def update(self, reading: bool, now: float) -> bool:
        """Feed one reading taken at ``now``; returns the settled level."""
        if reading == self._level:
            self._changing_since = None  # a bounce back: start over next time
        elif self._changing_since is None:
            self._changing_since = now
        since = self._changing_since
        if since is not None and now - since >= self._settle_s - _CLOCK_SLACK_S:
            self._level, self._changing_since = reading, None
        return self._level
