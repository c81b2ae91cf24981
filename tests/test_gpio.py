"""gpiozero adapters against mock pins that act like lgpio's: observable pin states, no sleeps.

``LgpioLikePin`` (tests/fake_pins.py) is gpiozero's MockPWMPin with lgpio's behaviour where the
two differ: stopping PWM writes nothing, and polled reads are raw (never debounced).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import pytest
from gpiozero import Device, GPIOPinInUse
from gpiozero.pins.mock import MockFactory

from hal.gpio import DEBOUNCE_S, GpioBeeper, GpioLights, GpioRelay, GpioTrigger
from hal.ports import LedName
from tests.fake_pins import LgpioLikePin
from tests.fakes import FakeClock


class _Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)


class Opened:
    """Remembers the adapters a test opens and closes them all at teardown."""

    def __init__(self) -> None:
        self._adapters: list[_Closable] = []

    def __call__(self, adapter: C) -> C:
        self._adapters.append(adapter)
        return adapter

    def close_all(self) -> None:
        for adapter in reversed(self._adapters):
            adapter.close()


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    """lgpio-like mock pins installed as gpiozero's default, the old factory restored after."""
    previous = Device.pin_factory
    mock = MockFactory(pin_class=LgpioLikePin)
    Device.pin_factory = mock
    try:
        yield mock
    finally:
        mock.close()
        Device.pin_factory = previous


@pytest.fixture
def opened(factory: MockFactory) -> Iterator[Opened]:
    """Adapters registered here are closed before the factory is torn down."""
    tracker = Opened()
    try:
        yield tracker
    finally:
        tracker.close_all()


PINS: dict[LedName, int] = {"green": 17, "amber": 27, "red": 22}


# --- lights ---------------------------------------------------------------------------------


def test_lights_start_off_and_switch_each_colour_alone(
    factory: MockFactory, opened: Opened
) -> None:
    lights = opened(GpioLights(PINS, pin_factory=factory))
    assert [factory.pin(pin).state for pin in PINS.values()] == [0, 0, 0]

    lights.set("amber", True)
    assert factory.pin(27).state == 1
    assert factory.pin(17).state == 0
    assert factory.pin(22).state == 0

    lights.set("amber", False)
    assert factory.pin(27).state == 0


def test_lights_unknown_colour_is_a_key_error_naming_the_wired_ones(
    factory: MockFactory, opened: Opened
) -> None:
    lights = opened(GpioLights({"green": 17}, pin_factory=factory))
    with pytest.raises(KeyError, match=r"'red'.*wired: green"):
        lights.set("red", True)


def test_lights_reject_a_colour_the_ports_do_not_know(factory: MockFactory) -> None:
    with pytest.raises(ValueError, match="blue"):
        GpioLights({"blue": 5}, pin_factory=factory)  # type: ignore[dict-item]


def test_lights_use_the_installed_default_factory(factory: MockFactory, opened: Opened) -> None:
    lights = opened(GpioLights({"red": 22}))
    lights.set("red", True)
    assert factory.pin(22).state == 1


def test_lights_close_releases_the_pins(factory: MockFactory) -> None:
    lights = GpioLights(PINS, pin_factory=factory)
    lights.set("green", True)
    lights.close()

    assert factory.pin(17).function == "input"
    again = GpioLights(PINS, pin_factory=factory)  # would raise GPIOPinInUse if still held
    again.close()


def test_lights_that_fail_halfway_release_what_they_claimed(
    factory: MockFactory, opened: Opened
) -> None:
    opened(GpioRelay(22, pin_factory=factory))
    with pytest.raises(GPIOPinInUse):
        GpioLights(PINS, pin_factory=factory)  # red's pin 22 is taken by the relay

    # green (17) and amber (27) were claimed, then given back
    opened(GpioLights({"green": 17, "amber": 27}, pin_factory=factory))


# --- beeper ---------------------------------------------------------------------------------


def test_tonal_beeper_sets_the_pwm_frequency_and_silences_with_none(
    factory: MockFactory, opened: Opened
) -> None:
    beeper = opened(GpioBeeper(18, tonal=True, pin_factory=factory))
    pin = factory.pin(18)
    assert pin.frequency is None
    assert pin.state == 0

    beeper.tone(1000.0)
    assert pin.frequency == pytest.approx(1000.0)
    assert pin.state == pytest.approx(0.5)  # 50 % duty: a square wave

    beeper.tone(None)
    assert pin.frequency is None
    # lgpio stops PWM wherever the wave is; a line left high keeps a buzzer's transistor on.
    assert pin.state == 0


def test_tonal_beeper_is_low_after_each_of_several_tones(
    factory: MockFactory, opened: Opened
) -> None:
    beeper = opened(GpioBeeper(18, tonal=True, pin_factory=factory))
    pin = factory.pin(18)
    for hz in (880.0, 1320.0, 1760.0):  # the admitted chirp, then silence
        beeper.tone(hz)
    beeper.tone(None)
    assert (pin.frequency, pin.state) == (None, 0)
    beeper.tone(440.0)  # and it still plays afterwards
    assert (pin.frequency, pin.state) == (pytest.approx(440.0), pytest.approx(0.5))


@pytest.mark.parametrize("hz", [400.0, 880.0, 1234.5, 2000.0])
def test_tonal_beeper_plays_the_feedback_range_exactly(
    factory: MockFactory, opened: Opened, hz: float
) -> None:
    beeper = opened(GpioBeeper(18, tonal=True, pin_factory=factory))
    beeper.tone(hz)
    assert factory.pin(18).frequency == pytest.approx(hz)


def test_tonal_beeper_treats_low_numbers_as_hertz_not_midi_notes(
    factory: MockFactory, opened: Opened
) -> None:
    beeper = opened(GpioBeeper(18, tonal=True, pin_factory=factory))
    beeper.tone(120.0)  # Tone(120) alone would mean MIDI note 120 (about 8.4 kHz)
    assert factory.pin(18).frequency == pytest.approx(120.0)


@pytest.mark.parametrize(("hz", "played"), [(20.0, 110.0), (0.0, 110.0), (15000.0, 7040.0)])
def test_tonal_beeper_clamps_into_the_playable_range(
    factory: MockFactory, opened: Opened, hz: float, played: float
) -> None:
    beeper = opened(GpioBeeper(18, tonal=True, pin_factory=factory))
    beeper.tone(hz)
    assert factory.pin(18).frequency == pytest.approx(played)


def test_beeper_rejects_nan(factory: MockFactory, opened: Opened) -> None:
    beeper = opened(GpioBeeper(18, tonal=True, pin_factory=factory))
    with pytest.raises(ValueError, match="NaN"):
        beeper.tone(float("nan"))


def test_active_beeper_is_on_for_any_pitch_and_off_for_none(
    factory: MockFactory, opened: Opened
) -> None:
    beeper = opened(GpioBeeper(23, tonal=False, pin_factory=factory))
    pin = factory.pin(23)
    assert pin.state == 0

    beeper.tone(440.0)
    assert pin.state == 1
    beeper.tone(2000.0)
    assert pin.state == 1
    assert pin.frequency is None  # no PWM: the buzzer makes its own pitch

    beeper.tone(None)
    assert pin.state == 0


@pytest.mark.parametrize("tonal", [True, False])
def test_beeper_close_silences_and_releases_the_pin(factory: MockFactory, tonal: bool) -> None:
    beeper = GpioBeeper(18, tonal=tonal, pin_factory=factory)
    beeper.tone(1000.0)
    pin = factory.pin(18)
    pin.clear_states()
    beeper.close()

    assert pin.frequency is None
    assert pin.function == "input"
    assert pin.states[-1].state == 0  # driven low before the pin was let go
    GpioBeeper(18, tonal=tonal, pin_factory=factory).close()


# --- relay ----------------------------------------------------------------------------------


def test_relay_active_high_starts_released_and_drives_high_when_energized(
    factory: MockFactory, opened: Opened
) -> None:
    relay = opened(GpioRelay(24, pin_factory=factory))
    pin = factory.pin(24)
    assert pin.state == 0

    relay.set(True)
    assert pin.state == 1
    relay.set(False)
    assert pin.state == 0


def test_relay_active_low_inverts_the_pin_level(factory: MockFactory, opened: Opened) -> None:
    relay = opened(GpioRelay(24, active_high=False, pin_factory=factory))
    pin = factory.pin(24)
    assert pin.state == 1  # released: a low-triggered relay board needs the pin high

    relay.set(True)
    assert pin.state == 0
    relay.set(False)
    assert pin.state == 1


def test_relay_close_releases_the_pin(factory: MockFactory) -> None:
    relay = GpioRelay(24, pin_factory=factory)
    relay.set(True)
    relay.close()

    assert factory.pin(24).function == "input"
    GpioRelay(24, pin_factory=factory).close()


# --- trigger --------------------------------------------------------------------------------


def test_trigger_with_pull_up_is_pressed_once_the_pin_has_been_low_for_the_debounce_time(
    factory: MockFactory, opened: Opened
) -> None:
    clock = FakeClock()
    trigger = opened(GpioTrigger(5, clock=clock, pin_factory=factory))
    pin = factory.pin(5)
    assert trigger.pressed is False  # the pull-up holds it high

    pin.drive_low()
    assert trigger.pressed is False  # not yet: it could be a bounce
    clock.now += DEBOUNCE_S
    assert trigger.pressed is True

    pin.drive_high()
    assert trigger.pressed is True
    clock.now += DEBOUNCE_S
    assert trigger.pressed is False


def test_trigger_with_pull_down_is_pressed_when_the_pin_is_driven_high(
    factory: MockFactory, opened: Opened
) -> None:
    clock = FakeClock()
    trigger = opened(
        GpioTrigger(5, pull_up=False, debounce_s=0.01, clock=clock, pin_factory=factory)
    )
    pin = factory.pin(5)
    assert trigger.pressed is False

    pin.drive_high()
    assert trigger.pressed is False
    clock.now += 0.01
    assert trigger.pressed is True


def test_a_bouncing_press_counts_once_it_has_settled(factory: MockFactory, opened: Opened) -> None:
    clock = FakeClock()
    trigger = opened(GpioTrigger(5, debounce_s=0.02, clock=clock, pin_factory=factory))
    pin = factory.pin(5)
    readings = []
    # The contact closes, bounces open twice within 10 ms, then stays closed.
    for step, low in [(0.0, True), (0.003, False), (0.003, True), (0.004, False), (0.0, True)]:
        clock.now += step
        pin.drive_low() if low else pin.drive_high()
        readings.append(trigger.pressed)
    clock.now += 0.019
    readings.append(trigger.pressed)
    clock.now += 0.001
    readings.append(trigger.pressed)

    assert readings == [False] * 6 + [True]  # one press, 20 ms after the last bounce


def test_a_glitch_while_held_is_not_a_release(factory: MockFactory, opened: Opened) -> None:
    """A chattering contact must not look like let go and pulled again: one pull, one ticket."""
    clock = FakeClock()
    trigger = opened(GpioTrigger(5, clock=clock, pin_factory=factory))
    pin = factory.pin(5)
    pin.drive_low()
    assert trigger.pressed is False  # the loop polls all the time: it sees the first contact
    clock.now += DEBOUNCE_S
    assert trigger.pressed is True

    seen = []
    for _ in range(50):  # a second of polling every 20 ms with a 5 ms glitch in each
        pin.drive_high()
        clock.now += 0.005
        seen.append(trigger.pressed)
        pin.drive_low()
        clock.now += 0.015
        seen.append(trigger.pressed)
    assert all(seen)


def test_trigger_leaves_lgpio_debounce_alone(factory: MockFactory, opened: Opened) -> None:
    # lgpio debounces only edge callbacks, which nothing here uses; the polled read is raw.
    opened(GpioTrigger(5, pin_factory=factory))
    assert factory.pin(5).bounce is None


def test_trigger_close_releases_the_pin(factory: MockFactory) -> None:
    GpioTrigger(5, pin_factory=factory).close()
    GpioTrigger(5, pin_factory=factory).close()


# --- the service pins gpiozero to lgpio ------------------------------------------------------

UNIT = Path(__file__).resolve().parent.parent / "deploy" / "systemd" / "ticket-scanner.service"


def test_the_service_pins_gpiozero_to_lgpio() -> None:
    """gpiozero falls back to other pin factories silently; a broken lgpio must fail loudly."""
    service = [line.strip() for line in UNIT.read_text().splitlines()]
    assert "Environment=GPIOZERO_PIN_FACTORY=lgpio" in service
