"""``ticket-scanner demo`` as a gate lead reads it: each guest, then what the scanner did."""

import io
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from device import demo
from device.demo import run_demo, scenes
from device.feedback import LIGHTS, TONES
from device.narration import sound_name
from device.verdicts import Verdict
from tests.fakes import FakeClock

VERDICT_LINE = re.compile(r'^  (?P<verdict>[a-z_]+): screen "(?P<screen>[^"]*)", (?P<rest>.*)$')
OLED_TOP = "┌"


@dataclass(frozen=True)
class Played:
    code: int
    out: str
    events: list[dict[str, object]]

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    def marked(self) -> list[str]:
        """The story: guests (>), staff and server (*), and verdicts, in order."""
        return [line for line in self.lines if line.startswith(("> ", "* ")) or is_verdict(line)]


def is_verdict(line: str) -> bool:
    return VERDICT_LINE.match(line) is not None


def verdict_of(line: str) -> str:
    found = VERDICT_LINE.match(line)
    assert found is not None, line
    return found["verdict"]


def play(tmp_path: Path, *, screens: bool = False) -> Played:
    clock = FakeClock()
    out = io.StringIO()
    events = tmp_path / "events.jsonl"
    code = run_demo(out, clock=clock, sleep=clock.sleep, events=events, screens=screens)
    lines = events.read_text(encoding="utf-8").splitlines()
    return Played(code, out.getvalue(), [json.loads(line) for line in lines])


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Played:
    return play(tmp_path_factory.mktemp("demo"))


def test_each_guest_is_introduced_just_before_their_verdict(played: Played) -> None:
    assert played.code == 0
    story = [line for line in played.marked() if not line.startswith("* ")]
    pairs = list(zip(story[::2], story[1::2], strict=True))
    expected = [(f"> {scene.label}", scene.expect) for scene in scenes()]
    assert [(guest, verdict_of(line)) for guest, line in pairs] == expected


def test_each_verdict_line_names_the_light_and_sound_the_scanner_plays(played: Played) -> None:
    verdicts = [VERDICT_LINE.match(line) for line in played.lines if is_verdict(line)]
    assert len(verdicts) == 11
    lit = iter(last_light_before_each_verdict(played.events))
    for found in verdicts:
        assert found is not None
        verdict = Verdict(found["verdict"])
        colour, blinks = LIGHTS[verdict]  # no re-entry in the demo: LIGHTS as they stand
        light = f"{'blinking ' if blinks else ''}{colour} light"
        assert re.fullmatch(rf"{light}, {sound_name(TONES[verdict])}, \d+\.\d ms", found["rest"])
        assert colour == next(lit)  # and it is the LED the sim backend really lit


def last_light_before_each_verdict(events: list[dict[str, object]]) -> list[object]:
    lit: list[object] = []
    last = None
    for event in events:
        if event["event"] == "led" and event["on"]:
            last = event["name"]
        elif event["event"] == "verdict":
            lit.append(last)
    return lit


def test_each_verdict_line_quotes_what_the_oled_showed(played: Played) -> None:
    shown = [str(event["text"]) for event in played.events if event["event"] == "display"]
    for line in played.lines:
        found = VERDICT_LINE.match(line)
        if found:
            assert any(text.startswith(found["screen"] + " | ") for text in shown), line


def test_the_long_presses_and_the_server_are_announced_where_they_happen(
    played: Played,
) -> None:
    announced = [line for line in played.marked() if not is_verdict(line)]
    assert announced == [
        "> a guest with a valid ticket",
        "> the same guest shows it again",
        "> a ticket already used at gate-2",
        "> a guest whose booking was canceled",
        "> a guest with tomorrow's ticket",
        "> a guest with yesterday's ticket",
        "> a guest shows a restaurant menu QR",
        "* staff hold the trigger 2 s; now in verify mode: tickets are checked, guests are not "
        "checked in",
        "> a guest asks if their ticket is good",
        "* staff hold the trigger 2 s; now in scan mode: each guest is checked in",
        "> the same guest goes in",
        "* the AnyRoad server goes down",
        "> a guest arrives while AnyRoad is down",
        "> the same guest shows it again",
        "* the AnyRoad server is back: 1 queued scan delivered, 0 conflicts, 0 still queued",
    ]


def test_the_demo_is_short_and_draws_no_oled_unless_asked(played: Played) -> None:
    assert len(played.lines) <= 32
    assert OLED_TOP not in played.out
    assert played.lines[-1] == "demo finished: 11 verdicts, each as expected; the queue synced"


def test_with_screens_each_verdict_line_is_followed_by_its_oled(tmp_path: Path) -> None:
    drawn = play(tmp_path, screens=True)
    assert drawn.code == 0
    lines = drawn.lines
    after = [lines[index + 1] for index, line in enumerate(lines) if is_verdict(line)]
    assert len(after) == 11
    assert all(line.startswith(OLED_TOP) for line in after)
    assert drawn.out.count(OLED_TOP) == 11


def test_the_mode_announced_is_the_scanner_s_not_the_script_s(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A press too short to switch modes is told as such, and the demo then fails."""
    monkeypatch.setattr(demo, "LONG_PRESS_S", 1.0)  # under the scanner's 1.5 s
    short = play(tmp_path)
    assert short.code == 1
    assert "* staff hold the trigger 1 s; now in scan mode: each guest is checked in" in short.lines
    assert "now in verify mode" not in short.out
    assert short.lines[-1].startswith("demo FAILED: expected admitted,")


def test_a_wrong_verdict_fails_the_demo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    script = scenes()
    script[3] = replace(script[3], expect=Verdict.ADMITTED)  # the canceled booking
    monkeypatch.setattr(demo, "scenes", lambda: script)
    wrong = play(tmp_path)
    assert wrong.code == 1
    assert "but got admitted, already_scanned, already_scanned, canceled," in wrong.lines[-1]
