"""Each verdict's screen, light, tone and relay pattern, played on a clock that tests move."""

from datetime import UTC, datetime

import pytest

from device.api import ScanRecord, TicketInfo
from device.config import Reentry
from device.feedback import (
    TONES,
    FeedbackPlayer,
    LedCue,
    RelayCue,
    Tone,
    ToneCue,
    cues_for,
    ready_screen,
    screen_for,
    status_line,
)
from device.screens import Screen, render
from device.verdict import Decision
from device.verdicts import Verdict
from hal.sim import SimBeeper, SimDisplay, SimLights, SimRelay
from tests.fakes import Recorder

SLOT = TicketInfo(
    type="guest",
    slot_start=datetime(2026, 11, 27, 14, 0, tzinfo=UTC),
    slot_end=datetime(2026, 11, 27, 17, 0, tzinfo=UTC),
)
READY = ready_screen("SCAN  online")


def player(events: Recorder, relay: bool = False) -> FeedbackPlayer:
    return FeedbackPlayer(
        display=SimDisplay(events),
        lights=SimLights(events),
        beeper=SimBeeper(events),
        relay=SimRelay(events) if relay else None,
        render=render,
        ready=lambda: READY,
    )


def test_every_verdict_has_its_own_look_and_sound() -> None:
    patterns = set()
    for verdict in Verdict:
        decision = Decision(verdict, admits=verdict is Verdict.ADMITTED, ticket=SLOT)
        screen = screen_for(decision, "SCAN  online", UTC)
        cues = cues_for(decision, screen, hold_s=2.0, relay_pulse_s=None)
        patterns.add((screen.title, tuple(cue for cue in cues if not isinstance(cue, LedCue))))
    assert len(patterns) == len(Verdict)


def test_admitted_shows_welcome_slot_and_type_green_with_a_rising_chirp() -> None:
    decision = Decision(Verdict.ADMITTED, admits=True, ticket=SLOT)
    screen = screen_for(decision, "SCAN  online", UTC)
    assert (screen.title, screen.lines) == ("WELCOME", ("14:00-17:00", "GUEST"))
    events = Recorder()
    feedback = player(events)
    feedback.play(cues_for(decision, screen, hold_s=2.0, relay_pulse_s=None), now=0.0)
    assert events.of("led") == [{"event": "led", "name": "green", "on": True}]
    for moment in (0.07, 0.14, 0.26, 2.0):
        feedback.tick(moment)
    assert [event["hz"] for event in events.of("buzzer")] == [880, 1320, 1760, None]
    assert events.of("led")[-1] == {"event": "led", "name": "green", "on": False}
    assert [event["text"] for event in events.of("display")] == [screen.text, READY.text]
    assert feedback.next_due() is None


def test_already_scanned_says_when_and_where() -> None:
    first = ScanRecord("gate-2", datetime(2026, 1, 5, 10, 32, tzinfo=UTC))
    decision = Decision(Verdict.ALREADY_SCANNED, admits=False, ticket=SLOT, first_scan=first)
    screen = screen_for(decision, "SCAN  online", UTC)
    assert (screen.title, screen.lines) == (
        "ALREADY SCANNED",
        ("first scan 05 Jan", "10:32, gate-2"),
    )


def test_a_door_pulses_the_relay_only_for_admitted_guests() -> None:
    admitted = Decision(Verdict.ADMITTED, admits=True)
    refused = Decision(Verdict.CANCELED, admits=False)
    blank = Screen("x", "X")
    assert [
        cue
        for cue in cues_for(admitted, blank, hold_s=2, relay_pulse_s=3)
        if isinstance(cue, RelayCue)
    ] == [
        RelayCue(0.0, True),
        RelayCue(3, False),
    ]
    assert not [
        cue
        for cue in cues_for(refused, blank, hold_s=2, relay_pulse_s=3)
        if isinstance(cue, RelayCue)
    ]


def test_the_next_guest_cuts_the_sound_short_but_not_the_open_door() -> None:
    events = Recorder()
    feedback = player(events, relay=True)
    admitted = Decision(Verdict.ADMITTED, admits=True)
    feedback.play(cues_for(admitted, Screen("a", "A"), hold_s=2, relay_pulse_s=3), now=0.0)
    feedback.tick(0.1)
    feedback.interrupt()
    assert events.events[-1] == {"event": "buzzer", "hz": None}
    refused = Decision(Verdict.INVALID, admits=False)
    feedback.play(cues_for(refused, Screen("b", "B"), hold_s=2, relay_pulse_s=3), now=0.2)
    assert {"event": "led", "name": "green", "on": False} in events.events
    feedback.tick(3.0)
    assert events.of("relay") == [{"event": "relay", "on": True}, {"event": "relay", "on": False}]


@pytest.mark.parametrize(
    "verdict", [Verdict.UNAUTHORIZED, Verdict.SERVER_ERROR, Verdict.UNREACHABLE]
)
def test_problems_with_the_scanner_blink(verdict: Verdict) -> None:
    events = Recorder()
    feedback = player(events)
    decision = Decision(verdict, admits=False)
    feedback.play(cues_for(decision, screen_for(decision, ""), hold_s=2.0, relay_pulse_s=None), 0.0)
    while (due := feedback.next_due()) is not None:
        feedback.tick(due)
    switches = [event["on"] for event in events.of("led")]
    assert switches[:4] == [True, False, True, False]
    assert switches[-1] is False


def test_an_unchanged_screen_is_not_sent_again() -> None:
    events = Recorder()
    feedback = player(events)
    feedback.show(READY)
    feedback.refresh_ready()
    assert len(events.of("display")) == 1


@pytest.mark.parametrize(
    ("online", "queued", "conflicts", "line"),
    [
        (True, 0, 0, "SCAN  online"),
        (None, 0, 0, "SCAN  ..."),
        (False, 3, 0, "SCAN OFFLINE Q3"),
        (True, 2, 1, "SCAN online !1 Q2"),  # a dispute needs a person: it comes first
        (False, 5000, 0, "SCAN OFFLINE Q999+"),
    ],
)
def test_the_status_line_says_connection_then_disputes_then_the_queue(
    online: bool | None, queued: int, conflicts: int, line: str
) -> None:
    assert status_line("scan", online, queued=queued, conflicts=conflicts) == line


@pytest.mark.parametrize("verdict", list(Verdict))
def test_green_means_the_guest_goes_in_and_nothing_else_is_green(verdict: Verdict) -> None:
    # Staff at a busy gate read the colour first: green for every admission (offline too),
    # never for a refusal or a scanner problem. VALID (verify mode) admits nobody but is green:
    # the ticket is good.
    admits = verdict in (Verdict.ADMITTED, Verdict.ACCEPTED_OFFLINE)
    decision = Decision(verdict, admits=admits)
    lit = {
        cue.name
        for cue in cues_for(decision, Screen("x", "X"), hold_s=1, relay_pulse_s=None)
        if isinstance(cue, LedCue) and cue.on
    }
    assert (lit == {"green"}) == (admits or verdict is Verdict.VALID)


@pytest.mark.parametrize(
    ("reentry", "admits", "colour", "tones"),
    [
        ("allow", True, "green", TONES[Verdict.ALREADY_SCANNED]),
        ("warn", False, "amber", TONES[Verdict.ALREADY_SCANNED]),
        ("deny", False, "red", TONES[Verdict.INVALID]),  # a refusal, heard as one
    ],
)
def test_reentry_sets_the_colour_and_sound_of_a_ticket_already_scanned(
    reentry: Reentry, admits: bool, colour: str, tones: tuple[Tone, ...]
) -> None:
    decision = Decision(Verdict.ALREADY_SCANNED, admits=admits)
    cues = cues_for(decision, Screen("x", "X"), hold_s=1, relay_pulse_s=None, reentry=reentry)
    assert {cue.name for cue in cues if isinstance(cue, LedCue) and cue.on} == {colour}
    heard = [cue.hz for cue in cues if isinstance(cue, ToneCue) and cue.hz is not None]
    assert heard == [hz for hz, _ in tones if hz is not None]
