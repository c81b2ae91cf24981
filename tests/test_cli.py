"""The ``ticket-scanner`` commands, as a user runs them."""

import json
import random
import sys
from pathlib import Path

import pytest

from device.cli import main
from device.demo import run_demo
from device.sandbox import DEMO_TOKEN, SandboxServer
from tests.fakes import FakeClock
from tests.frames import qr_picture, write_frames


def config_file(tmp_path: Path, base_url: str, extra: str = "") -> Path:
    token = tmp_path / "token"
    token.write_text(DEMO_TOKEN + "\n")
    path = tmp_path / "config.toml"
    path.write_text(
        f'[api]\nbase_url = "{base_url}"\ntoken_file = "{token}"\ntimeout_s = 0.5\n'
        f'[offline]\njournal = "{tmp_path / "journal.db"}"\n'
        f'[device]\nid = "gate-cli"\n{extra}',
        encoding="utf-8",
    )
    return path


def test_decode_json_gives_text_and_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "ticket.png"
    qr_picture("Grüße \x1b[2J").save(image)
    empty = tmp_path / "empty.png"
    qr_picture(None).save(empty)
    assert main(["decode", "--json", str(image), str(empty)]) == 0
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["file"] == str(image)
    assert [code["text"] for code in first["codes"]] == ["Grüße \x1b[2J"]
    assert len(first["codes"][0]["position"]) == 4
    assert second == {"file": str(empty), "codes": []}


def test_decode_never_prints_control_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "evil.png"
    qr_picture("\x1b]0;pwned\x07").save(image)
    assert main(["decode", "--decoder", "zbar", str(image)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b]0;pwned\\x07" in out


def test_decode_says_which_file_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    assert main(["decode", str(bad)]) == 1
    assert f"{bad}: cannot read image" in capsys.readouterr().err


def test_device_id_prints_the_id_the_scans_carry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["device-id", "--config", str(config_file(tmp_path, "https://x"))]) == 0
    assert capsys.readouterr().out == "gate-cli\n"


def test_a_bad_config_is_refused_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file(tmp_path, "http://api.example.com")
    assert main(["run", "--config", str(path)]) == 2
    assert f"{path}: [api] base_url: expected an https:// URL" in capsys.readouterr().err


def test_scan_and_verify_from_the_shell(
    tmp_path: Path,
    sandbox: SandboxServer,
    codes: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = config_file(tmp_path, sandbox.url)
    assert main(["verify", codes["admitted"], "--config", str(path)]) == 0
    assert main(["scan", codes["admitted"], "--config", str(path)]) == 0
    assert main(["scan", codes["admitted"], "--config", str(path)]) == 0
    out = capsys.readouterr().out
    verdicts = [line.split(":")[0] for line in out.splitlines() if not line.startswith(" ")]
    assert verdicts == ["valid", "admitted", "already_scanned"]
    assert DEMO_TOKEN not in out


def test_run_plays_an_images_folder_and_exits_zero(
    tmp_path: Path,
    sandbox: SandboxServer,
    codes: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    frames = write_frames(tmp_path / "frames", [(codes["admitted"], 2), (None, 2)])
    events = tmp_path / "events.jsonl"
    extra = (
        f'[camera]\nsource = "images:{frames}"\nfps = 100\n'
        f'[hardware]\nbackend = "sim"\nevents = "{events}"\nresult_hold_s = 0.05\n'
    )
    assert main(["run", "--config", str(config_file(tmp_path, sandbox.url, extra))]) == 0
    assert "admitted" in capsys.readouterr().out
    verdict = [json.loads(line) for line in events.read_text().splitlines() if '"verdict"' in line]
    assert [event["verdict"] for event in verdict] == ["admitted"]


def test_screens_renders_every_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["screens", "--out", str(tmp_path)]) == 0
    names = {path.name for path in tmp_path.glob("*.png")}
    for verdict in ("admitted", "already_scanned", "valid", "canceled", "too_early", "too_late"):
        assert f"{verdict}-128x64.png" in names
    assert {"invalid-128x32.png", "unreachable-128x32.png", "accepted_offline-128x64.png"} <= names


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("ticket-scanner ")


def test_the_demo_plays_every_verdict_and_checks_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = FakeClock()
    events = tmp_path / "events.jsonl"
    assert run_demo(__import__("sys").stdout, clock=clock, sleep=clock.sleep, events=events) == 0
    out = capsys.readouterr().out
    assert "demo finished: 11 verdicts, each as expected; the queue synced" in out
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    shown = [line["verdict"] for line in lines if line["event"] == "verdict"]
    assert shown == [
        "admitted",
        "already_scanned",
        "already_scanned",
        "canceled",
        "too_early",
        "too_late",
        "invalid",
        "valid",
        "admitted",
        "accepted_offline",
        "already_scanned",  # offline: this device let that ticket in a moment ago
    ]
    (synced,) = [line for line in lines if line["event"] == "sync"]
    assert (synced["verdict"], synced["conflict"]) == ("admitted", False)


@pytest.mark.parametrize("late_s", [0.12, 0.45])
def test_the_demo_plays_the_same_when_the_loop_runs_late(
    late_s: float, capsys: pytest.CaptureFixture[str]
) -> None:
    """A busy machine (or emulation) wakes the loop late: every press and every guest is still
    seen, the long press still switches modes. Each sleep here oversleeps by up to ``late_s``."""
    clock = FakeClock()
    jitter = random.Random(7)

    def late_sleep(seconds: float) -> None:
        clock.sleep(seconds + jitter.uniform(0, late_s))

    assert run_demo(sys.stdout, clock=clock, sleep=late_sleep) == 0
    out = capsys.readouterr().out
    assert "demo finished: 11 verdicts, each as expected; the queue synced" in out
    assert out.count("\n> ") == 11  # each scene narrated before its guest
