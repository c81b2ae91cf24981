"""A gpiozero mock pin that behaves like a real pin on lgpio, where MockPWMPin does not.

It models gpiozero/pins/lgpio.py (``LGPIOPin``) over joan2937/lg:

- Stopping PWM. ``LGPIOPin._set_frequency(None)`` calls ``lgpio.tx_pwm(handle, gpio, 0, 0)``;
  lg's ``lgTxPwm`` -> ``lgTxPulse`` -> ``xSetAsPwm`` (lgGpio.c) then only marks the transmit
  record inactive (``p->active = 0``) and writes nothing. The line keeps the level the PWM
  thread (lgPthTx.c, ``xWrite(p->chip, p->gpio, 1)`` at the start of each cycle) last wrote:
  high for half of every cycle at 50 % duty. gpiozero's own ``MockPWMPin._set_frequency(None)``
  (gpiozero/pins/mock.py) drives the pin to 0 instead, which no real pin does.
- Writing without PWM. ``LGPIOPin._set_state`` calls ``lgpio.gpio_write``: the level follows.
- Reading. ``LGPIOPin._get_state`` calls ``lgpio.gpio_read`` (``lgGpioRead``: one
  ``GPIO_V2_LINE_GET_VALUES_IOCTL``), the raw line, contact bounce and all.
  ``LGPIOPin._set_bounce`` calls ``lgpio.gpio_set_debounce_micros``, and ``lgGpioSetDebounce``
  only stores ``debounce_nanos`` on the alert record that lgPthAlerts.c consults for edge
  callbacks: polled reads are never debounced. MockPin's reads are raw too, so tests make a
  contact bounce by driving the pin high and low between clock steps.
"""

from __future__ import annotations

from gpiozero.pins.mock import MockPWMPin


class LgpioLikePin(MockPWMPin):  # type: ignore[misc]  # gpiozero ships no type hints
    """MockPWMPin, except that stopping PWM leaves the line where the last cycle left it."""

    # Where a 50 % square wave is when it is stopped depends on timing; the tests take the
    # case that matters, the high half (a passive buzzer's transistor left switched on).
    level_when_pwm_stops = True
    _frequency: float | None  # set by MockPWMPin.__init__

    def _set_frequency(self, value: float | None) -> None:
        was_driving = self._frequency is not None and float(self._state) > 0
        self._frequency = value
        if value is not None:
            assert self._function == "output"  # LGPIOPin raises PinPWMFixedValue otherwise
            return
        # lgpio: nothing is written. The pin reads as a plain digital line again (gpio_read).
        self._change_state(self.level_when_pwm_stops if was_driving else bool(self._state))
