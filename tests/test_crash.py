"""kill -9 of a real `ticket-scanner run`: nothing a guest was told is lost, the queue resumes.

The scanner runs as its own process on the sim backend, with the API down, so every guest
is accepted offline and queued. Its console prints one line per verdict as the guest sees
it; after the k-th line the process is killed with SIGKILL. No waiting on a clock: the test
reads the child's output as it comes.
"""

import base64
import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from device.cli import main
from device.sandbox import DEMO_TOKEN, SandboxServer
from device.verdicts import Verdict
from tests.fakes import prove_config
from tests.frames import Shot, write_frames

GUESTS = 20
SCANNER = Path(sys.executable).with_name("ticket-scanner")
VERDICTS = tuple(verdict.value for verdict in Verdict)


def ticket(number: int) -> str:
    ids = {"booking_id": 9000 + number, "ticket_id": 8000 + number, "guest_id": 7000 + number}
    raw = json.dumps(ids, separators=(",", ":")).encode()
    return "data:application/json;base64," + base64.b64encode(raw).decode()


def config_file(tmp_path: Path, url: str, frames: Path | None = None) -> Path:
    token = tmp_path / "token"
    token.write_text(DEMO_TOKEN)
    path = tmp_path / f"config-{len(list(tmp_path.glob('config-*')))}.toml"
    source = f'[camera]\nsource = "images:{frames}"\nfps = 30\n' if frames else ""
    path.write_text(
        f'[api]\nbase_url = "{url}"\ntoken_file = "{token}"\ntimeout_s = 0.5\n'
        + source
        + '[device]\nid = "pi-crash"\nprofile = "handheld"\n'
        + f'[hardware]\nbackend = "sim"\nevents = "{tmp_path / "events.jsonl"}"\n'
        + f'[offline]\npolicy = "accept"\njournal = "{tmp_path / "journal.db"}"\n'
    )
    return path


def run_and_kill(config: Path, after_verdicts: int) -> list[str]:
    """Start the scanner, read its console until ``after_verdicts`` verdicts, kill -9."""
    shown: list[str] = []
    with subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
        [str(SCANNER), "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            for line in child.stdout:
                if line.startswith(VERDICTS):
                    shown.append(line.split()[0])
                    if len(shown) == after_verdicts:
                        break
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
    assert child.returncode == -signal.SIGKILL, "the scanner ended before it was killed"
    return shown


def journal_rows(path: Path) -> tuple[str, list[tuple[int, str, str | None, int]]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        (integrity,) = db.execute("PRAGMA integrity_check").fetchone()
        rows = db.execute("SELECT id, qr_code, verdict, queued FROM attempts ORDER BY id")
        return integrity, rows.fetchall()


@pytest.mark.parametrize("kill_after", [1, 6, 13])
def test_kill_9_loses_nothing_a_guest_was_told_and_the_queue_resumes(
    tmp_path: Path, kill_after: int
) -> None:
    shots: list[Shot] = [(None, 2)]
    for number in range(GUESTS):
        shots += [(ticket(number), 3), (None, 3)]
    frames = write_frames(tmp_path / "frames", shots)
    with SandboxServer() as gone:
        dead_url = gone.url

    config = config_file(tmp_path, dead_url, frames)
    prove_config(config)  # this configuration reached AnyRoad before the network went
    shown = run_and_kill(config, kill_after)

    assert shown == ["accepted_offline"] * kill_after
    integrity, rows = journal_rows(tmp_path / "journal.db")
    assert integrity == "ok"
    told = [row for row in rows if row[2] is not None]
    assert len(told) >= kill_after  # every verdict shown is in the journal ...
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    for event in (event for event in events if event["event"] == "verdict"):
        (row,) = [row for row in rows if row[0] == event["attempt"]]  # ... under its own id
        assert (row[1], row[2]) == (event["qr_code"], event["verdict"])
    queued = [row[1] for row in told if row[3]]
    assert queued == [ticket(number) for number in range(len(queued))]

    with SandboxServer() as sandbox:  # the API is back; the scanner restarts its sync
        assert main(["sync", "--config", str(config_file(tmp_path, sandbox.url))]) == 0
        delivered = [json.loads(request.body)["qr_code"] for request in sandbox.seen()]
    assert delivered == queued  # in order, each exactly once
    assert journal_rows(tmp_path / "journal.db") == ("ok", [(*row[:3], 0) for row in rows])
