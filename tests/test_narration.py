"""Each verdict in words: the light and the sound named from the feedback patterns themselves."""

import io

import pytest

from device.api import Reply
from device.feedback import LIGHTS, TONES, screen_for
from device.loop import Report
from device.narration import VerdictPrinter, describe, light_for, sound_name, verdict_line
from device.verdict import Decision
from device.verdicts import Verdict

V = Verdict


def report_for(decision: Decision, latency_ms: float = 12.34) -> Report:
    screen = screen_for(decision, "SCAN  online")
    return Report("B1 T1", "scan", decision, Reply("ticket"), screen, latency_ms)


@pytest.mark.parametrize("verdict", list(Verdict))
def test_every_verdict_is_described_with_its_light_and_its_sound(verdict: Verdict) -> None:
    colour, blinks = LIGHTS[verdict]
    words = describe(Decision(verdict, admits=False))
    assert words.startswith(f"{'blinking ' if blinks else ''}{colour} light, ")
    assert words.endswith(sound_name(TONES[verdict]))
    assert light_for(Decision(verdict, admits=False)) == (colour, blinks)


@pytest.mark.parametrize(
    ("verdict", "sound"),
    [
        (V.ADMITTED, "rising chirp"),
        (V.ALREADY_SCANNED, "two beeps"),
        (V.VALID, "short beep"),
        (V.CANCELED, "low buzz"),
        (V.INVALID, "low buzz"),
        (V.UNAUTHORIZED, "three low buzzes"),
        (V.SERVER_ERROR, "two low buzzes"),
        (V.UNREACHABLE, "falling two-tone"),
        (V.ACCEPTED_OFFLINE, "two short beeps"),
    ],
)
def test_the_sounds_have_names_a_person_would_use(verdict: Verdict, sound: str) -> None:
    assert sound_name(TONES[verdict]) == sound


@pytest.mark.parametrize(
    ("tones", "sound"),
    [
        (((220, 0.5),), "low buzz"),
        (((220, 0.1), (None, 0.1), (220, 0.1)), "two short low buzzes"),
        (((1000, 0.3),), "beep"),
        (((1000, 0.3), (None, 0.1)) * 4, "four beeps"),
        (((1760, 0.1), (880, 0.1), (440, 0.1)), "falling chirp"),
        (((440, 0.1), (880, 0.1)), "rising two-tone"),
        (((440, 0.1), (880, 0.1), (440, 0.1)), "warbling chirp"),
        (((None, 0.2),), "silent"),
    ],
)
def test_a_changed_tone_pattern_changes_its_words(
    tones: tuple[tuple[float | None, float], ...], sound: str
) -> None:
    assert sound_name(tones) == sound


def test_a_guest_allowed_back_in_is_told_green_not_amber() -> None:
    """The rule lives in cues_for: the narration must not contradict the lights."""
    assert describe(Decision(V.ALREADY_SCANNED, admits=True)) == "green light, two beeps"
    assert describe(Decision(V.ALREADY_SCANNED, admits=False)) == "amber light, two beeps"


def test_a_scanner_problem_reads_as_a_blinking_light() -> None:
    assert describe(Decision(V.UNAUTHORIZED, admits=False)).startswith("blinking red light")
    assert describe(Decision(V.UNREACHABLE, admits=False)).startswith("blinking amber light")


def test_the_verdict_line_says_word_screen_light_sound_and_latency() -> None:
    line = verdict_line(report_for(Decision(V.INVALID, admits=False)))
    assert line == 'invalid: screen "NOT VALID | not a valid ticket", red light, low buzz, 12.3 ms'


def test_the_printer_draws_the_oled_only_when_asked() -> None:
    report = report_for(Decision(V.CANCELED, admits=False))
    plain, drawn = io.StringIO(), io.StringIO()
    VerdictPrinter(plain)(report)
    VerdictPrinter(drawn, screens=True, indent="  ")(report)
    assert plain.getvalue() == verdict_line(report) + "\n"
    lines = drawn.getvalue().splitlines()
    assert lines[0] == "  " + verdict_line(report)
    assert lines[1].startswith("┌") and lines[-1].startswith("└")
    assert len(lines) == 1 + 34  # 64 px rows as 32 rows of quadrants, and the border
