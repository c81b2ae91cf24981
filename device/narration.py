"""Each verdict in words: what the screen says, which light, which sound, and how fast.

The words are derived from the feedback patterns themselves (``cues_for`` for the light,
``TONES`` for the sound), so a change to a pattern changes its description too:

    admitted: screen "WELCOME | 14:00-15:00 | ADULT", green light, rising chirp, 6.3 ms
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from device.feedback import BLINK_S, TONES, LedCue, Tone, cues_for
from device.loop import Report
from device.screens import Screen, render, terminal_art
from device.verdict import Decision
from hal.ports import LedName

LOW_HZ = 400.0  # under this a tone sounds like a buzz, not a beep
SHORT_S = 0.1  # a beep this long or shorter sounds "short"
COUNTS = {2: "two", 3: "three", 4: "four", 5: "five"}
# Long enough for a blinking light to go on twice, so one read of the cues tells it from steady.
PROBE_HOLD_S = 4 * BLINK_S
OLED_SIZE = (128, 64)


def light_for(decision: Decision) -> tuple[LedName | None, bool]:
    """The light the feedback turns on for ``decision`` and whether it blinks.

    Read from ``cues_for`` rather than ``LIGHTS`` so its rules (re-entry shows green) hold here.
    """
    cues = cues_for(decision, Screen("", ""), hold_s=PROBE_HOLD_S, relay_pulse_s=None)
    lit = [cue.name for cue in cues if isinstance(cue, LedCue) and cue.on]
    return (lit[0] if lit else None), len(lit) > 1


def sound_name(tones: Iterable[Tone]) -> str:
    """A tone pattern as a person hears it: "rising chirp", "two beeps", "low buzz"."""
    notes = [(hz, seconds) for hz, seconds in tones if hz is not None]
    if not notes:
        return "silent"
    pitches = [hz for hz, _ in notes]
    if len(set(pitches)) > 1:
        return _melody(pitches)
    low = pitches[0] < LOW_HZ
    short = all(seconds <= SHORT_S for _, seconds in notes)
    noun = "buzz" if low else "beep"
    words = ["short" if short else "", "low" if low else ""]
    if len(notes) > 1:
        words.insert(0, COUNTS.get(len(notes), str(len(notes))))
        noun += "es" if low else "s"
    return " ".join(word for word in (*words, noun) if word)


def _melody(pitches: list[float]) -> str:
    if pitches == sorted(pitches):
        shape = "rising"
    elif pitches == sorted(pitches, reverse=True):
        shape = "falling"
    else:
        shape = "warbling"
    return f"{shape} {'two-tone' if len(pitches) == 2 else 'chirp'}"


def describe(decision: Decision) -> str:
    """The light and the sound for ``decision``: "blinking red light, three low buzzes"."""
    colour, blinks = light_for(decision)
    light = f"{'blinking ' if blinks else ''}{colour} light" if colour else "no light"
    return f"{light}, {sound_name(TONES[decision.verdict])}"


def screen_words(screen: Screen) -> str:
    """The screen's title and detail lines; the status bar is left out (the demo says it)."""
    return " | ".join(part for part in (screen.title, *screen.lines) if part)


def verdict_line(report: Report) -> str:
    """One line for one verdict: the word, the screen, the light, the sound, the latency."""
    return (
        f'{report.decision.verdict.value}: screen "{screen_words(report.screen)}", '
        f"{describe(report.decision)}, {report.latency_ms:.1f} ms"
    )


class VerdictPrinter:
    """An observer of the loop: one line per verdict and, with ``screens``, the OLED drawn."""

    def __init__(self, out: TextIO, *, screens: bool = False, indent: str = "") -> None:
        self._out = out
        self._screens = screens
        self._indent = indent

    def __call__(self, report: Report) -> None:
        print(self._indent + verdict_line(report), file=self._out, flush=True)
        if self._screens:
            print(terminal_art(render(report.screen, OLED_SIZE)), file=self._out, flush=True)
