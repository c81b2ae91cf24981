"""The loop end to end: images: source + sim backend + sandbox server over real HTTP."""

import contextlib
import json
import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from device import decode
from device.app import build
from device.config import (
    ApiConfig,
    CameraConfig,
    Config,
    DeviceConfig,
    HardwareConfig,
    OfflineConfig,
    ScanConfig,
)
from device.loop import LONG_PRESS_S, Report, TriggerTracker
from device.sandbox import DEMO_TOKEN, Fault, SandboxServer, SeenRequest
from hal.sim import SimTrigger
from tests.fakes import FakeClock, NetworkDelay, prove
from tests.frames import Shot, write_frames

FPS = 10.0


def play(
    tmp_path: Path,
    sandbox: SandboxServer,
    shots: Sequence[Shot],
    *,
    profile: str = "door",
    mode: str = "scan",
    trigger: SimTrigger | None = None,
    clock: FakeClock | None = None,
    decoder: str = "auto",
    proven: bool = True,
    network_delay_s: float | None = None,
    base_url: str | None = None,
) -> tuple[list[Report], list[dict[str, Any]]]:
    """Run the loop over ``shots`` until the frames end; the reports and the events file.

    ``proven``: AnyRoad has answered this configuration before (as on a scanner in service).
    ``network_delay_s``: every answer takes this long on the fake clock (``clock`` required).
    """
    folder = write_frames(tmp_path / "frames", shots)
    events = tmp_path / "events.jsonl"
    config = Config(
        api=ApiConfig(base_url=base_url or sandbox.url, timeout_s=0.5, mode=mode),  # type: ignore[arg-type]
        camera=CameraConfig(source=f"images:{folder}", fps=FPS),
        scan=ScanConfig(repeat_window_s=1.0, decoder=decoder),  # type: ignore[arg-type]
        device=DeviceConfig(id="gate-test", profile=profile),  # type: ignore[arg-type]
        hardware=HardwareConfig(
            backend="sim", events=str(events), result_hold_s=0.5, relay_pulse_s=1.0
        ),
        offline=OfflineConfig(journal=tmp_path / "journal.db"),
    )
    if proven:
        prove(config.offline.journal, config.api, token=DEMO_TOKEN)
    clock = clock or FakeClock()
    dispatch = NetworkDelay(clock, network_delay_s) if network_delay_s is not None else None
    reports: list[Report] = []
    with build(
        config,
        observers=[reports.append],
        clock=clock,
        sleep=clock.sleep,
        token=DEMO_TOKEN,
        trigger=trigger,
        dispatch=dispatch,
    ) as running:
        running.loop.run(threading.Event())
    lines = events.read_text(encoding="ascii").splitlines()
    return reports, [json.loads(line) for line in lines]


def verdicts(events: list[dict[str, Any]]) -> list[str]:
    return [event["verdict"] for event in events if event["event"] == "verdict"]


def test_a_guest_is_admitted_and_the_events_say_so(
    tmp_path: Path, sandbox: SandboxServer, codes: dict[str, str]
) -> None:
    reports, events = play(tmp_path, sandbox, [(None, 3), (codes["admitted"], 5), (None, 10)])
    (verdict,) = [event for event in events if event["event"] == "verdict"]
    assert verdict["verdict"] == "admitted"
    assert verdict["qr_code"] == codes["admitted"]
    assert verdict["mode"] == "scan"
    assert verdict["latency_ms"] >= 0
    kinds = [(event["event"], event.get("name"), event.get("on")) for event in events]
    assert ("led", "green", True) in kinds
    assert ("relay", None, True) in kinds  # a door unit opens for an admitted guest
    assert ("relay", None, False) in kinds
    displays = [event["text"] for event in events if event["event"] == "display"]
    assert displays[0].startswith("READY")
    assert displays[1].startswith("WELCOME")
    assert displays[2].startswith("READY")  # the ready screen comes back by itself
    assert json.loads(sandbox.seen()[0].body) == {
        "device": "gate-test",
        "qr_code": codes["admitted"],
    }
    assert reports[0].decision.verdict == "admitted"


def test_a_code_held_in_view_is_one_scan_and_shown_again_later_is_a_second(
    tmp_path: Path, sandbox: SandboxServer, codes: dict[str, str]
) -> None:
    held = int(FPS * 6)  # six seconds in view: far longer than the 1 s repeat window
    _, events = play(
        tmp_path,
        sandbox,
        [(codes["admitted"], held), (None, 15), (codes["admitted"], 3), (None, 10)],
    )
    assert verdicts(events) == ["admitted", "already_scanned"]
    assert len(sandbox.seen()) == 2


def test_every_ticket_case_gets_its_verdict(
    tmp_path: Path, sandbox: SandboxServer, codes: dict[str, str]
) -> None:
    cases = ["admitted", "already_scanned", "canceled", "too_early", "too_late", "addon"]
    shots: list[Shot] = []
    for case in [*cases, "not-a-ticket"]:
        shots += [(codes.get(case, case), 3), (None, 3)]
    _, events = play(tmp_path, sandbox, shots)
    assert verdicts(events) == [
        "admitted",
        "already_scanned",
        "canceled",
        "too_early",
        "too_late",
        "admitted",
        "invalid",
    ]
    opened = [event["on"] for event in events if event["event"] == "relay"]
    assert opened == [True, False, True, False]  # only the two admitted guests


def test_an_unauthorized_answer_does_not_stop_the_next_guest(
    tmp_path: Path, sandbox: SandboxServer, codes: dict[str, str]
) -> None:
    sandbox.inject(Fault.UNAUTHORIZED)
    sandbox.inject(Fault.HTML)
    shots: list[Shot] = [
        (codes["admitted"], 2),
        (None, 2),
        (codes["admitted_2"], 2),
        (None, 2),
        (codes["admitted_3"], 2),
        (None, 8),
    ]
    _, events = play(tmp_path, sandbox, shots)
    assert verdicts(events) == ["unauthorized", "server_error", "admitted"]


def test_a_dead_server_is_no_connection_and_the_status_line_says_offline(
    tmp_path: Path, codes: dict[str, str]
) -> None:
    server = SandboxServer().start()
    server.stop()
    _, events = play(tmp_path, server, [(codes["admitted"], 2), (None, 10)], profile="handheld")
    assert verdicts(events) == ["accepted_offline"]  # this configuration has worked before
    ready = [event["text"] for event in events if event["event"] == "display" and event["text"]][-1]
    assert ready.startswith("READY") and ready.endswith("SCAN OFFLINE Q1")


def test_a_configuration_that_never_reached_anyroad_accepts_nobody_offline(
    tmp_path: Path, codes: dict[str, str]
) -> None:
    server = SandboxServer().start()
    server.stop()  # a base_url nothing answers: a typo, or a scanner set up off-site
    shots = [(codes["admitted"], 2), (None, 10), (codes["canceled"], 2), (None, 10)]
    _, events = play(tmp_path, server, shots, profile="handheld", proven=False)
    assert verdicts(events) == ["unreachable", "unreachable"]  # NO CONNECTION, not ACCEPTED
    texts = [event["text"] for event in events if event["event"] == "display" and event["text"]]
    assert texts[0] == "READY | show ticket | SCAN  never online"
    assert "NO CONNECTION" in texts[1]
    assert texts[-1].endswith("SCAN  never online")


def test_the_first_anyroad_answer_is_the_proof_and_it_survives_a_restart(
    tmp_path: Path, sandbox: SandboxServer, codes: dict[str, str]
) -> None:
    first = tmp_path / "first"
    first.mkdir()
    _, events = play(first, sandbox, [(codes["admitted"], 2), (None, 10)], proven=False)
    assert verdicts(events) == ["admitted"]
    texts = [event["text"] for event in events if event["event"] == "display" and event["text"]]
    assert texts[0].endswith("SCAN  never online") and texts[-1].endswith("SCAN  online")
    sandbox.stop()  # the network goes; the scanner restarts with the same journal
    again = tmp_path / "again"
    again.mkdir()
    (again / "journal.db").write_bytes((first / "journal.db").read_bytes())
    shots = [(codes["admitted_2"], 2), (None, 10)]
    _, events = play(again, sandbox, shots, profile="handheld", proven=False)
    assert verdicts(events) == ["accepted_offline"]


def test_verify_mode_checks_without_checking_in(
    tmp_path: Path, sandbox: SandboxServer, codes: dict[str, str]
) -> None:
    _, events = play(
        tmp_path, sandbox, [(codes["admitted"], 2), (None, 10)], mode="verify", profile="handheld"
    )
    assert verdicts(events) == ["valid"]
    assert sandbox.seen()[0].path.endswith("/tickets/verify")
    assert not [event for event in events if event["event"] == "relay"]


def test_a_handheld_scans_only_after_the_trigger_and_a_long_press_switches_mode(
    tmp_path: Path, sandbox: SandboxServer, codes: dict[str, str]
) -> None:
    clock = FakeClock()
    trigger = SimTrigger()
    script = {  # frame index -> trigger state, applied as the loop reaches that frame
        10: True,
        12: False,  # click: the next code is scanned
        30: True,
        30 + int(LONG_PRESS_S * FPS) + 2: False,  # long press: verify mode
        50: True,
        52: False,
    }
    start, advance = clock.now, clock.sleep

    def sleep(seconds: float) -> None:
        advance(seconds)
        frame = int((clock.now - start) * FPS)
        for index in [i for i in script if i <= frame]:
            trigger.pressed = script.pop(index)

    clock.sleep = sleep  # type: ignore[method-assign]
    shots: list[Shot] = [
        (codes["admitted"], 5),
        (None, 10),
        (codes["admitted_2"], 5),
        (None, 35),
        (codes["admitted_3"], 5),
        (None, 10),
    ]
    _, events = play(tmp_path, sandbox, shots, profile="handheld", trigger=trigger, clock=clock)
    # admitted (frames 0-4) is ignored: nobody pressed the trigger.
    assert [
        (event["verdict"], event["mode"]) for event in events if event["event"] == "verdict"
    ] == [
        ("admitted", "scan"),
        ("valid", "verify"),
    ]
    assert {"event": "mode", "mode": "verify"} in events
    assert [request.path.rsplit("/", 1)[1] for request in sandbox.seen()] == ["scan", "verify"]


def test_hostile_codes_are_one_clear_verdict_and_never_reach_the_log_raw(
    tmp_path: Path, sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    hostile = ["\x1b]0;pwned\x07\x1b[2J", "\u202egnp.exe", '{"qr_code":"x"}', "Z" * 600]
    shots: list[Shot] = []
    for text in hostile:
        shots += [(text, 2), (None, 2)]
    _, events = play(tmp_path, sandbox, shots)
    assert verdicts(events) == ["invalid"] * len(hostile)
    assert [json.loads(request.body)["qr_code"] for request in sandbox.seen()] == hostile
    assert (
        "\x1b" not in caplog.text and "\u202e" not in caplog.text and "Z" * 100 not in caplog.text
    )


def test_a_decoder_that_fails_on_a_frame_does_not_stop_the_loop(
    tmp_path: Path, sandbox: SandboxServer, codes: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = decode.ZxingDecoder.decode
    calls = {"n": 0}

    def flaky(self: decode.ZxingDecoder, pixels: Any) -> list[decode.Decoded]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("decoder bug")
        return real(self, pixels)

    monkeypatch.setattr(decode.ZxingDecoder, "decode", flaky)
    _, events = play(tmp_path, sandbox, [(codes["admitted"], 3), (None, 8)])
    assert verdicts(events) == ["admitted"]


def test_the_zbar_decoder_runs_the_same_loop(
    tmp_path: Path, sandbox: SandboxServer, codes: dict[str, str]
) -> None:
    _, events = play(tmp_path, sandbox, [(codes["canceled"], 3), (None, 8)], decoder="zbar")
    assert verdicts(events) == ["canceled"]


@pytest.mark.parametrize("start", [0.0, 1000.0])
def test_a_long_press_is_seen_whatever_the_clock_reads(start: float) -> None:
    tracker = TriggerTracker()
    assert tracker.update(True, start) is None
    assert tracker.armed(start)
    assert tracker.update(True, start + LONG_PRESS_S) == "long_press"
    assert tracker.update(False, start + LONG_PRESS_S + 0.1) is None
    assert not tracker.armed(start + LONG_PRESS_S + 0.1)  # a long press switches, it does not scan


def test_the_events_mark_the_first_frame_and_count_frames_at_the_end(
    tmp_path: Path, sandbox: SandboxServer, codes: dict[str, str]
) -> None:
    _, events = play(tmp_path, sandbox, [(None, 2), (codes["admitted"], 3), (None, 5)])
    kinds = [event["event"] for event in events if event["event"] != "display"]
    assert kinds.index("first_frame") < kinds.index("verdict")
    assert kinds.count("first_frame") == 1
    (stopped,) = [event for event in events if event["event"] == "stopped"]
    assert stopped == {"event": "stopped", "frames": 10, "dropped": 0}


class LiveCamera:
    """A camera whose frames land when they land: the loop must wait on it, not sleep."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def newest(self) -> None:
        return None

    def next_due(self) -> None:
        return None

    def wait_for_frame(self, timeout: float) -> bool:
        self.waits.append(timeout)
        return False

    finished = False
    dropped = 0

    def close(self) -> None:
        pass


def test_with_a_live_camera_the_idle_loop_waits_for_the_next_frame_instead_of_sleeping(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    camera, clock = LiveCamera(), FakeClock()
    config = Config(
        api=ApiConfig(base_url=sandbox.url),
        camera=CameraConfig(source=f"images:{tmp_path}"),
        device=DeviceConfig(id="gate-test", profile="door"),
        hardware=HardwareConfig(backend="sim"),
        offline=OfflineConfig(journal=tmp_path / "journal.db"),
    )
    with build(config, clock=clock, sleep=clock.sleep, token=DEMO_TOKEN, source=camera) as running:
        for _ in range(3):
            assert running.loop.step()
    assert clock.slept == []
    assert camera.waits == [0.01, 0.01, 0.01]  # bounded, so a stop request is seen


def test_a_guest_accepted_offline_shows_on_the_status_line_until_synced(
    tmp_path: Path, sandbox: SandboxServer, codes: dict[str, str]
) -> None:
    sandbox.inject(Fault.RESET)  # the answer never comes
    _, events = play(tmp_path, sandbox, [(codes["admitted"], 3), (None, 8)], profile="handheld")
    (verdict,) = [event for event in events if event["event"] == "verdict"]
    assert (verdict["verdict"], verdict["admits"]) == ("accepted_offline", True)
    displays = [event["text"] for event in events if event["event"] == "display"]
    assert displays[1].startswith("ACCEPTED")
    assert displays[1].endswith("SCAN OFFLINE Q1")
    assert displays[-2].endswith("SCAN OFFLINE Q1")  # the ready screen keeps saying so


# --- feedback within 150 ms, whatever the network does ----------------------------------


def displays(events: list[dict[str, Any]]) -> list[str]:
    return [event["text"].split(" | ")[0] for event in events if event["event"] == "display"]


def test_a_slow_answer_shows_checking_150_ms_after_the_decode_then_the_verdict(
    tmp_path: Path, sandbox: SandboxServer, codes: dict[str, str]
) -> None:
    shots = [(None, 2), (codes["admitted"], 30), (None, 10)]
    reports, events = play(tmp_path, sandbox, shots, clock=FakeClock(), network_delay_s=2.0)
    assert displays(events)[:3] == ["READY", "CHECKING", "WELCOME"]
    (checking,) = [event for event in events if event["event"] == "checking"]
    assert checking["after_ms"] == pytest.approx(150, abs=1)
    (report,) = reports
    assert report.first_feedback_ms == pytest.approx(150, abs=1)
    assert report.verdict_ms == pytest.approx(2000, abs=1)
    assert report.checking_shown
    tones = [event["hz"] for event in events if event["event"] == "buzzer"]
    assert tones[:3] == [2400, None, 880]  # one short tick, silence, then the verdict's chirp


def test_a_fast_answer_never_flashes_checking(
    tmp_path: Path, sandbox: SandboxServer, codes: dict[str, str]
) -> None:
    shots = [(None, 2), (codes["admitted"], 30), (None, 10)]
    reports, events = play(tmp_path, sandbox, shots, clock=FakeClock(), network_delay_s=0.12)
    assert "CHECKING" not in displays(events)
    assert not [event for event in events if event["event"] == "checking"]
    assert reports[0].first_feedback_ms == pytest.approx(120, abs=1)
    assert reports[0].verdict_ms == reports[0].first_feedback_ms
    assert not reports[0].checking_shown


def test_a_code_still_in_view_after_a_slow_answer_is_not_scanned_again(
    tmp_path: Path, sandbox: SandboxServer, codes: dict[str, str]
) -> None:
    # The answer takes 2.5 s; the repeat window is 1 s; the ticket stays in view 2 s more.
    shots = [(None, 2), (codes["admitted"], 45), (None, 10)]
    _, events = play(tmp_path, sandbox, shots, clock=FakeClock(), network_delay_s=2.5)
    assert verdicts(events) == ["admitted"]
    assert len([seen for seen in sandbox.seen() if seen.path.endswith("/scan")]) == 1


# --- a misconfigured scanner never passes for a working one ----------------------------


def test_a_wrong_path_prefix_shows_setup_error_to_every_guest_and_logs_it_once(
    tmp_path: Path, sandbox: SandboxServer, codes: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    wrong = sandbox.url.replace("/sandbox/v1", "/sandbox/v2")
    shots = [(codes["admitted"], 2), (None, 10), (codes["canceled"], 2), (None, 10)]
    _, events = play(tmp_path, sandbox, shots, profile="handheld", base_url=wrong, proven=False)
    assert verdicts(events) == ["setup_error", "setup_error"]  # never NOT VALID
    shown = [event["text"] for event in events if event["event"] == "display"]
    assert [text for text in shown if text.startswith("SETUP ERROR")] == [
        "SETUP ERROR | wrong API URL | call supervisor | SCAN  never online"
    ] * 2
    red = [event["on"] for event in events if event["event"] == "led" and event["name"] == "red"]
    assert red[:4] == [
        True,
        False,
        True,
        False,
    ]  # blinking: the scanner's problem, not the ticket's
    alarms = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(alarms) == 1
    assert "check [api] base_url" in alarms[0].getMessage()
    assert "HTTP 404" in alarms[0].getMessage()


# --- the journal comes first ------------------------------------------------------------


def test_the_attempt_is_on_disk_before_the_request_reaches_anyroad(
    tmp_path: Path, sandbox: SandboxServer, codes: dict[str, str]
) -> None:
    journal = tmp_path / "journal.db"
    found: list[tuple[object, ...] | None] = []

    def the_journal_when_the_request_arrives(request: SeenRequest) -> None:
        code = request.json()["qr_code"]
        with contextlib.closing(sqlite3.connect(journal)) as reader:  # another process's view
            found.append(
                reader.execute(
                    "SELECT a.mode, a.verdict, COUNT(u.id) FROM attempts a "
                    "LEFT JOIN unanswered u ON u.attempt_id = a.id WHERE a.qr_code = ? "
                    "GROUP BY a.id",
                    (code,),
                ).fetchone()
            )

    sandbox.on_request(the_journal_when_the_request_arrives)
    shots = [(codes["admitted"], 2), (None, 10), (codes["admitted_2"], 2), (None, 10)]
    _, events = play(tmp_path, sandbox, shots)
    assert verdicts(events) == ["admitted", "admitted"]
    # Each attempt, untold yet, with its request noted as in flight: a power cut now loses
    # nothing, and a scan recorded at AnyRoad without an answer is known to be ours.
    assert found == [("scan", None, 1), ("scan", None, 1)]
