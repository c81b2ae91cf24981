"""The ``ticket-scanner`` commands, as a user runs them."""

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from device.cli import _parser, main
from device.demo import run_demo
from device.sandbox import DEMO_TOKEN, SandboxServer, demo_tickets
from hal.files import list_images
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


def test_decode_says_why_it_cannot_read_each_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    truncated = tmp_path / "half.png"
    qr_picture("half a ticket").save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:400])
    good = tmp_path / "good.png"
    qr_picture("ok").save(good)
    missing, folder = tmp_path / "missing.png", tmp_path
    paths = [missing, folder, truncated, text, good]
    assert main(["decode", *map(str, paths)]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"{missing}: no such file",
        f"{folder}: is a folder",
        f"{truncated}: truncated or damaged image",
        f"{text}: not an image",
    ]
    assert captured.out == f"{good}: ok\n"  # the readable one is still decoded


def test_decode_prints_backslashes_as_decoded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "bookmark.png"
    code = "MEBKM:URL:http\\://example.com/a\\;b;;"  # MECARD escapes ":" and ";" with "\\"
    qr_picture(code).save(image)
    assert main(["decode", str(image)]) == 0
    assert capsys.readouterr().out == f"{image}: {code}\n"


def test_decode_escapes_invisible_characters_but_not_unicode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "tricky.png"
    qr_picture("Grüße\u202e\t\\x").save(image)  # a bidi override and a tab: never raw
    assert main(["decode", str(image)]) == 0
    assert capsys.readouterr().out == f"{image}: Grüße\\u202e\\t\\x\n"


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
    assert main(["scan", codes["admitted"], "--config", str(path)]) == 1  # refused: a re-entry
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
    lines = run_on_sim(tmp_path, sandbox.url, frames)
    assert "admitted" in capsys.readouterr().out
    assert [line["verdict"] for line in lines if line["event"] == "verdict"] == ["admitted"]


def run_on_sim(tmp_path: Path, url: str, frames: Path) -> list[dict[str, Any]]:
    """``run`` on the sim backend over ``frames``; must exit 0; its events."""
    events = tmp_path / "events.jsonl"
    extra = (
        f'[camera]\nsource = "images:{frames}"\nfps = 100\n'
        f'[hardware]\nbackend = "sim"\nevents = "{events}"\nresult_hold_s = 0.05\n'
    )
    assert main(["run", "--config", str(config_file(tmp_path, url, extra))]) == 0
    return [json.loads(line) for line in events.read_text().splitlines()]


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


# --- start-up errors: one line naming the file and key, exit 2 ------------------------------


def sim_config(tmp_path: Path, source: str, extra: str = "") -> Path:
    """A sim-backend config against a URL nobody is asked (start-up fails before any scan)."""
    hardware = f'[hardware]\nbackend = "sim"\n{extra}'
    return config_file(tmp_path, "http://127.0.0.1:9", f'[camera]\nsource = "{source}"\n{hardware}')


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda folder: None, "does not exist"),
        (lambda folder: folder.mkdir(), "is empty"),
        (
            lambda folder: (folder.mkdir(), (folder / "notes.txt").write_text("x")),
            "holds no images",
        ),
    ],
    ids=["missing", "empty", "no-images"],
)
def test_run_names_an_unplayable_images_folder_and_its_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, why: str
) -> None:
    folder = tmp_path / "frames"
    make(folder)
    path = sim_config(tmp_path, f"images:{folder}")
    assert main(["run", "--config", str(path)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"ticket-scanner: config error: {path}: [camera] source: ")
    assert f"image folder {folder} {why}" in line


def test_run_plays_on_past_a_truncated_image_and_counts_it(
    tmp_path: Path,
    sandbox: SandboxServer,
    codes: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    frames = write_frames(tmp_path / "frames", [(None, 1), (codes["admitted"], 2)])
    bad = frames / "frame00000.png"
    bad.unlink()  # a hard link: a copy of its own to cut short
    qr_picture(None).save(bad)
    bad.write_bytes(bad.read_bytes()[:300])
    lines = run_on_sim(tmp_path, sandbox.url, frames)
    assert "admitted" in capsys.readouterr().out
    assert [line["verdict"] for line in lines if line["event"] == "verdict"] == ["admitted"]
    (stopped,) = [line for line in lines if line["event"] == "stopped"]
    assert stopped["skipped"] == 1


def test_run_names_an_events_file_in_a_missing_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = write_frames(tmp_path / "frames", [(None, 1)])
    events = tmp_path / "missing" / "ev.jsonl"
    path = sim_config(tmp_path, f"images:{frames}", f'events = "{events}"\n')
    assert main(["run", "--config", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"ticket-scanner: config error: {path}: [hardware] events: {events}: "
        f"cannot create the file: folder {events.parent} does not exist"
    ]


def test_demo_names_an_events_file_in_a_missing_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "missing" / "ev.jsonl"
    assert main(["demo", "--events", str(events)]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"ticket-scanner: demo: --events {events}: "
        f"cannot create the file: folder {events.parent} does not exist"
    ]
    assert captured.out == ""  # refused before the show starts


def test_demo_refuses_a_folder_as_its_events_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--events", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"ticket-scanner: demo: --events {tmp_path}: is a folder, not a file\n"
    )


# --- the sandbox's codes and frames ------------------------------------------------------------


def test_sandbox_codes_print_every_ticket_whole(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "--codes"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows == [[ticket.case, ticket.qr_code] for ticket in demo_tickets()]


def test_a_printed_code_is_admitted_by_the_sandbox(
    tmp_path: Path, sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sandbox", "--codes"]) == 0
    printed = dict(line.split() for line in capsys.readouterr().out.splitlines())
    path = config_file(tmp_path, sandbox.url)
    assert main(["scan", printed["admitted"], "--config", str(path)]) == 0
    assert capsys.readouterr().out.startswith("admitted: ")


def test_sandbox_frames_decode_back_to_each_code_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "camera"
    assert main(["sandbox", "--frames", str(folder)]) == 0
    written = [Path(line) for line in capsys.readouterr().out.splitlines()]
    assert written == list_images(folder)  # the images: source plays them in this order
    assert main(["decode", "--json", *map(str, written)]) == 0
    found = [json.loads(line)["codes"] for line in capsys.readouterr().out.splitlines()]
    assert [[code["text"] for code in codes] for codes in found] == [
        [ticket.qr_code] for ticket in demo_tickets()
    ]
    assert [path.name for path in written][:2] == ["01-admitted.png", "02-admitted_2.png"]


def test_sandbox_frames_refuse_a_folder_that_is_not_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keep = tmp_path / "keep.png"
    keep.write_bytes(b"mine")
    assert main(["sandbox", "--frames", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"ticket-scanner: sandbox: {tmp_path} is not empty; give a new or empty folder\n"
    )
    assert [path.name for path in tmp_path.iterdir()] == ["keep.png"]


# --- --help ----------------------------------------------------------------------------------


def every_parser() -> dict[str, argparse.ArgumentParser]:
    top = _parser()
    (subcommands,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    return {"ticket-scanner": top, **subcommands.choices}


def shown(default: object) -> str:
    """How a default reads in help: 3600.0 as 3600, a path as itself."""
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


@pytest.mark.parametrize("name", list(every_parser()))
def test_help_has_no_backticks_and_every_option_says_what_and_its_default(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    parser = every_parser()[name]
    assert "`" not in parser.format_help()
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        what = action.option_strings or [action.dest]
        assert action.help, f"{name} {what}: no help"
        if action.default in (None, False, "", argparse.SUPPRESS):
            continue
        assert shown(action.default) in formatter._expand_help(action), (
            f"{name} {what}: the help does not show the default {action.default!r}"
        )


def test_run_help_names_the_default_config_whole(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["run", "--help"])
    assert done.value.code == 0
    assert "default: /etc/ticket-scanner/config.toml" in capsys.readouterr().out


def test_help_tells_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ([], ["scan"], ["verify"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        out = capsys.readouterr().out
        assert "exit codes" in out
        assert "3    setup" in out and "4    unreachable" in out
