"""Verdict -> screen, light, tone and relay patterns, and the player that runs them on the clock.

Patterns are data (cues at offsets in seconds), so tests assert the sequence of output calls and
nothing waits: the loop calls ``FeedbackPlayer.tick(now)`` and sleeps until ``next_due()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo

from PIL import Image

from device.api import ScanRecord, TicketInfo
from device.config import Reentry
from device.screens import Screen
from device.tickets import display_safe
from device.verdict import Decision
from device.verdicts import Verdict
from hal.ports import LED_NAMES, Beeper, Display, LedName, Lights, Relay

V = Verdict
Tone = tuple[float | None, float]  # (hz, or None for a rest; seconds)

TONES: dict[Verdict, tuple[Tone, ...]] = {
    V.ADMITTED: ((880, 0.07), (1320, 0.07), (1760, 0.12)),  # rising chirp
    V.ALREADY_SCANNED: ((1000, 0.12), (None, 0.08), (1000, 0.12)),  # double beep
    V.VALID: ((1320, 0.1),),
    V.CANCELED: ((220, 0.5),),  # low buzz
    V.TOO_EARLY: ((220, 0.5),),
    V.TOO_LATE: ((220, 0.5),),
    V.INVALID: ((220, 0.5),),
    V.UNAUTHORIZED: ((220, 0.2), (None, 0.1), (220, 0.2), (None, 0.1), (220, 0.2)),
    V.SETUP_ERROR: ((220, 0.2), (None, 0.1), (220, 0.2), (None, 0.1), (220, 0.2)),
    V.SERVER_ERROR: ((220, 0.2), (None, 0.1), (220, 0.2)),
    V.UNREACHABLE: ((440, 0.15), (None, 0.1), (330, 0.25)),
    V.ACCEPTED_OFFLINE: ((880, 0.1), (None, 0.08), (880, 0.1)),
}
# No answer this long after the decode: say the scanner is on it, so nobody re-presents.
CHECKING_AFTER_S = 0.15
TICK: Tone = (2400, 0.03)  # short and high: "busy", not a verdict
BLINK_S = 0.25  # half-period of a blinking light: unmistakable, not a strobe

# (colour, blinks): blinking means "the scanner has a problem", steady means "this ticket".
LIGHTS: dict[Verdict, tuple[LedName, bool]] = {
    V.ADMITTED: ("green", False),
    V.ALREADY_SCANNED: ("amber", False),
    V.VALID: ("green", False),
    V.CANCELED: ("red", False),
    V.TOO_EARLY: ("red", False),
    V.TOO_LATE: ("red", False),
    V.INVALID: ("red", False),
    V.UNAUTHORIZED: ("red", True),
    V.SETUP_ERROR: ("red", True),
    V.SERVER_ERROR: ("red", True),
    V.UNREACHABLE: ("amber", True),
    V.ACCEPTED_OFFLINE: ("green", False),  # the guest goes in: green, as for every admission
}


@dataclass(frozen=True)
class LedCue:
    at_s: float
    name: LedName
    on: bool


@dataclass(frozen=True)
class ToneCue:
    at_s: float
    hz: float | None


@dataclass(frozen=True)
class RelayCue:
    at_s: float
    energized: bool


@dataclass(frozen=True)
class ScreenCue:
    at_s: float
    screen: Screen | None  # None: back to the ready screen, as it is by then


Cue = LedCue | ToneCue | RelayCue | ScreenCue


def cues_for(
    decision: Decision,
    screen: Screen,
    *,
    hold_s: float,
    relay_pulse_s: float | None,
    reentry: Reentry = "warn",
) -> tuple[Cue, ...]:
    """Everything one verdict does, in time order; ``relay_pulse_s`` None: no relay (handheld).

    An already-scanned ticket is green with ``reentry`` "allow" (the guest goes in), amber
    with "warn" (staff decide), red with a refusal's buzz with "deny".
    """
    verdict = decision.verdict
    colour, blinks = LIGHTS[verdict]
    tones = TONES[verdict]
    if verdict is V.ALREADY_SCANNED and decision.admits:
        colour = "green"  # re-entry allowed: the guest goes in
    elif verdict is V.ALREADY_SCANNED and reentry == "deny":
        colour, tones = "red", TONES[V.INVALID]
    cues: list[Cue] = [ScreenCue(0.0, screen)]
    cues += _light(colour, blinks, hold_s)
    cues += _tones(tones)
    if decision.admits and relay_pulse_s is not None:
        cues += [RelayCue(0.0, True), RelayCue(relay_pulse_s, False)]
    cues.append(ScreenCue(hold_s, None))
    return tuple(sorted(cues, key=lambda cue: cue.at_s))


def _light(colour: LedName, blinks: bool, hold_s: float) -> list[Cue]:
    if not blinks:
        return [LedCue(0.0, colour, True), LedCue(hold_s, colour, False)]
    cues: list[Cue] = []
    at = 0.0
    while at < hold_s:
        cues += [LedCue(at, colour, True), LedCue(min(at + BLINK_S, hold_s), colour, False)]
        at += 2 * BLINK_S
    return cues


def _tones(tones: Iterable[Tone]) -> list[Cue]:
    cues: list[Cue] = []
    at = 0.0
    for hz, seconds in tones:
        cues.append(ToneCue(at, hz))
        at += seconds
    cues.append(ToneCue(at, None))
    return cues


def screen_for(
    decision: Decision, status: str, tz: tzinfo | None = None, *, now: datetime | None = None
) -> Screen:
    """The screen for a verdict; times shown in ``tz`` (the device's local time by default).

    ``now`` (default: the clock) decides which times are today and so shown without a date.
    """
    ticket = decision.ticket or TicketInfo()
    slot = _slot(ticket, tz)
    first_scan = _when_where(decision.first_scan, tz, now)
    verdict = decision.verdict
    screens: dict[Verdict, Screen] = {
        V.ADMITTED: Screen("admitted", "WELCOME", (slot, display_safe(ticket.type.upper(), 12))),
        V.ALREADY_SCANNED: Screen("already_scanned", "ALREADY SCANNED", first_scan),
        V.VALID: Screen("valid", "VALID", ("not checked in", slot), style="outlined"),
        V.CANCELED: Screen("canceled", "CANCELED", ("booking canceled", slot), style="inverted"),
        V.TOO_EARLY: Screen(
            "too_early", "TOO EARLY", (f"starts {_time(ticket.slot_start, tz, now)}",)
        ),
        V.TOO_LATE: Screen("too_late", "TOO LATE", (f"ended {_time(ticket.slot_end, tz, now)}",)),
        V.INVALID: Screen("invalid", "NOT VALID", ("not a valid ticket",), style="inverted"),
        # Both are a supervisor's job, never the guest's ticket: the same words, the cause below.
        V.UNAUTHORIZED: Screen(
            "unauthorized", "SETUP ERROR", ("token refused", "call supervisor"), style="inverted"
        ),
        V.SETUP_ERROR: Screen(
            "setup_error", "SETUP ERROR", ("wrong API URL", "call supervisor"), style="inverted"
        ),
        V.SERVER_ERROR: Screen("server_error", "SYSTEM ERROR", ("try again",), style="inverted"),
        V.UNREACHABLE: Screen("unreachable", "NO CONNECTION", ("try again",)),
        V.ACCEPTED_OFFLINE: Screen("accepted_offline", "ACCEPTED", ("offline - will sync",)),
    }
    screen = screens[verdict]
    if verdict in (V.TOO_EARLY, V.TOO_LATE):
        screen = replace(screen, style="inverted")
    if verdict is V.VALID and first_scan:
        screen = replace(screen, lines=first_scan)  # used already: when and where, not the slot
    if verdict is V.ALREADY_SCANNED and decision.admits:
        screen = replace(screen, title="WELCOME BACK")
    lines = tuple(line for line in screen.lines if line)
    return replace(screen, lines=lines, status=status)


def checking_screen(status: str) -> Screen:
    """Shown when AnyRoad has not answered ``CHECKING_AFTER_S`` after the decode."""
    return Screen("checking", "CHECKING", ("one moment",), status)


def checking_cues(screen: Screen) -> tuple[Cue, ...]:
    """The checking screen and one tick; it stays until the verdict replaces it."""
    hz, seconds = TICK
    return (ScreenCue(0.0, screen), ToneCue(0.0, hz), ToneCue(seconds, None))


def ready_screen(status: str, armed: bool = True) -> Screen:
    """The idle screen: what to do next, and the status line."""
    return Screen("ready", "READY", ("show ticket" if armed else "press trigger",), status)


def status_line(
    mode: str,
    online: bool | None,
    *,
    queued: int = 0,
    conflicts: int = 0,
    proven: bool = True,
) -> str:
    """Mode and connection, then disputed syncs and queued scans: "SCAN OFFLINE !1 Q3".

    ``proven`` False: AnyRoad has never answered this configuration, so nothing is accepted
    offline ("never online"). About 20 characters fit; conflicts come before the queue
    because they need a person.
    """
    connection = {None: "...", True: "online", False: "OFFLINE"}[online]
    if not proven and online is not True:
        connection = "never online"
    extras = [
        f"!{_capped(conflicts)}" if conflicts else "",
        f"Q{_capped(queued)}" if queued else "",
    ]
    if not any(extras):
        return f"{mode.upper()}  {connection}"
    return " ".join(part for part in (mode.upper(), connection, *extras) if part)


def _capped(count: int) -> str:
    return str(count) if count < 1000 else "999+"


def _slot(ticket: TicketInfo, tz: tzinfo | None) -> str:
    if ticket.slot_start is None:
        return ""
    end = f"-{_hhmm(ticket.slot_end, tz)}" if ticket.slot_end else ""
    return f"{_hhmm(ticket.slot_start, tz)}{end}"


def _when_where(
    scan: ScanRecord | None, tz: tzinfo | None, now: datetime | None
) -> tuple[str, ...]:
    """Where and when first scanned, "first scan 10:32, gate-2", in lines that fit every screen.

    Not "10:32 - gate-2" nor "in 10:32": those read like a countdown.
    """
    if scan is None:
        return ()
    where = display_safe(scan.device, 16) or "?"
    width = 20  # characters between the outlined screen's frame: 122 px / 6 px
    words = f"first scan {_time(scan.scanned_at, tz, now)}, {where}".split(" ")
    lines = [words[0]]
    for word in words[1:]:
        if len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return tuple(lines)


def _time(when: datetime | None, tz: tzinfo | None, now: datetime | None = None) -> str:
    """HH:MM today (by ``now``, default the clock), else "DD Mon HH:MM"."""
    if when is None:
        return "?"
    local = _local(when, tz)
    today = _local(now, tz).date() if now else datetime.now(local.tzinfo).date()
    return local.strftime("%H:%M") if local.date() == today else local.strftime("%d %b %H:%M")


def _hhmm(when: datetime | None, tz: tzinfo | None) -> str:
    return _local(when, tz).strftime("%H:%M") if when else "?"


def _local(when: datetime, tz: tzinfo | None) -> datetime:
    # AnyRoad's slot times are local times that carry a "Z"; naive ones are shown as given.
    try:
        return when.astimezone(tz) if when.tzinfo else when
    except OverflowError:  # a server's 0001-01-01T00:00+14:00: show it as sent
        return when


class FeedbackPlayer:
    """Runs cues on the outputs. A new verdict cuts the previous one short, except a door pulse."""

    def __init__(
        self,
        *,
        display: Display,
        lights: Lights,
        beeper: Beeper,
        relay: Relay | None,
        render: Callable[[Screen, tuple[int, int]], Image.Image],
        ready: Callable[[], Screen],
    ) -> None:
        self._display, self._lights, self._beeper, self._relay = display, lights, beeper, relay
        self._render, self._ready = render, ready
        self._pending: list[tuple[float, Cue]] = []  # indicator cues, absolute times
        self._relay_pending: list[tuple[float, RelayCue]] = []
        self._leds: dict[LedName, bool] = dict.fromkeys(LED_NAMES, False)
        self._tone: float | None = None
        self._energized = False
        self._shown: Screen | None = None

    @property
    def showing_ready(self) -> bool:
        return self._shown is None or self._shown.kind == "ready"

    def play(self, cues: Iterable[Cue], now: float) -> None:
        """Start a verdict's cues at ``now``, silencing whatever was still playing."""
        self._apply_led_tone_off()
        cues = tuple(cues)
        relay_cues = [cue for cue in cues if isinstance(cue, RelayCue)]
        if relay_cues:
            self._relay_pending = [(now + cue.at_s, cue) for cue in relay_cues]
        self._pending = [(now + cue.at_s, cue) for cue in cues if not isinstance(cue, RelayCue)]
        self.tick(now)

    def interrupt(self) -> None:
        """Stop the sound and the scheduled changes: a new ticket is being checked."""
        self._pending.clear()
        self._set_tone(None)

    def show(self, screen: Screen) -> None:
        """Show a screen now, unless it is already showing (an OLED write costs ~20 ms)."""
        if screen != self._shown:
            self._display.show(self._render(screen, self._display.size), screen.text)
            self._shown = screen

    def refresh_ready(self) -> None:
        """Redraw the ready screen when idle (the status line may have changed)."""
        if self.showing_ready and not self._pending:
            self.show(self._ready())

    def tick(self, now: float) -> None:
        """Apply every cue that is due."""
        due: list[Cue] = [cue for at, cue in self._relay_pending if at <= now]
        due += [cue for at, cue in self._pending if at <= now]
        self._relay_pending = [(at, cue) for at, cue in self._relay_pending if at > now]
        self._pending = [(at, cue) for at, cue in self._pending if at > now]
        for cue in due:
            self._apply(cue)

    def next_due(self) -> float | None:
        times = [at for at, _ in self._pending] + [at for at, _ in self._relay_pending]
        return min(times) if times else None

    def _apply(self, cue: Cue) -> None:
        if isinstance(cue, ScreenCue):
            self.show(cue.screen or self._ready())
        elif isinstance(cue, LedCue):
            self._set_led(cue.name, cue.on)
        elif isinstance(cue, ToneCue):
            self._set_tone(cue.hz)
        elif self._relay is not None and cue.energized != self._energized:
            self._relay.set(cue.energized)
            self._energized = cue.energized

    def _apply_led_tone_off(self) -> None:
        for name in LED_NAMES:
            self._set_led(name, False)
        self._set_tone(None)

    def _set_led(self, name: LedName, on: bool) -> None:
        if self._leds[name] != on:
            self._lights.set(name, on)
            self._leds[name] = on

    def _set_tone(self, hz: float | None) -> None:
        if self._tone != hz:
            self._beeper.tone(hz)
            self._tone = hz
