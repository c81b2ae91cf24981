"""Sync: queued scans reach AnyRoad in order, disputes surface, and nothing is hammered."""

import fcntl
import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.api import AnyRoadClient
from device.app import make_check
from device.checkin import CheckIn
from device.cli import main
from device.feedback import status_line
from device.journal import Journal, QueueState
from device.sandbox import DEMO_TOKEN, SandboxServer
from device.sync import Backoff, SyncWorker
from device.verdicts import Verdict
from tests.fakes import Recorder, proven

DEVICE = "pi-gate-1"


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    journal = Journal.open(tmp_path / "journal.db")
    yield journal
    journal.close()


@pytest.fixture
def dead_url() -> str:
    with SandboxServer() as server:
        return server.url


def client(url: str) -> AnyRoadClient:
    return AnyRoadClient(url, token=lambda: DEMO_TOKEN, timeout_s=0.5)


def accept_offline(journal: Journal, url: str, *codes: str) -> None:
    """Scan ``codes`` on a handheld while ``url`` does not answer: each is queued."""
    scanner = CheckIn(
        make_check(client(url), DEVICE),
        journal,
        device=DEVICE,
        reentry="warn",
        policy="accept",
        door=False,
        proof=proven(journal),
    )
    for code in codes:
        assert scanner(code, "scan").decision.verdict == Verdict.ACCEPTED_OFFLINE


def worker(journal: Journal, url: str, **kwargs: object) -> SyncWorker:
    return SyncWorker(journal, client(url), reentry="warn", **kwargs)  # type: ignore[arg-type]


def test_queued_scans_are_delivered_oldest_first_and_leave_the_queue(
    sandbox: SandboxServer, dead_url: str, journal: Journal, codes: dict[str, str]
) -> None:
    order = [codes["admitted_2"], codes["admitted"], codes["admitted_3"]]
    accept_offline(journal, dead_url, *order)
    events = Recorder()
    result = worker(journal, sandbox.url, emit=events).deliver_round()
    assert (result.delivered, result.conflicts, result.remaining) == (3, 0, 0)
    assert [json.loads(seen.body)["qr_code"] for seen in sandbox.seen()] == order
    assert [json.loads(seen.body)["device"] for seen in sandbox.seen()] == [DEVICE] * 3
    assert [event["verdict"] for event in events.of("sync")] == ["admitted"] * 3
    assert journal.state().queued == 0


def test_a_queued_ticket_the_server_refuses_is_a_conflict_everyone_can_see(
    sandbox: SandboxServer, dead_url: str, journal: Journal, codes: dict[str, str]
) -> None:
    accept_offline(journal, dead_url, codes["canceled"], codes["already_scanned"])
    events = Recorder()
    result = worker(journal, sandbox.url, emit=events).deliver_round()
    assert (result.delivered, result.conflicts) == (2, 2)
    synced = events.of("sync")
    assert [(event["verdict"], event["conflict"]) for event in synced] == [
        ("canceled", True),
        ("already_scanned", True),  # gate-2 let that ticket in before we did
    ]
    assert journal.state().conflicts == 2


def test_a_server_still_down_keeps_the_queue_and_the_worker_backs_off(
    dead_url: str, journal: Journal, codes: dict[str, str]
) -> None:
    accept_offline(journal, dead_url, codes["admitted"])
    waits: list[float] = []
    stop = threading.Event()

    def wait(_: threading.Event, seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 4:
            stop.set()

    sync = worker(
        journal, dead_url, wait=wait, rng=random.Random(1), backoff=Backoff(first_s=2, max_s=5)
    )
    sync.run(stop)
    assert journal.state().queued == 1
    bounds = [2, 4, 5, 5]  # doubling, capped
    assert all(bound / 2 <= seconds <= bound for seconds, bound in zip(waits, bounds, strict=True))
    assert journal.queue()[0].tries == 4


@pytest.mark.parametrize("failures", range(1, 12))
def test_backoff_stays_within_its_bounds(failures: int) -> None:
    backoff = Backoff(first_s=2, max_s=120)
    delays = [backoff.delay(failures, random.Random(seed)) for seed in range(50)]
    bound = min(120, 2 * 2 ** (failures - 1))
    assert all(bound / 2 <= delay <= bound for delay in delays)
    assert len(set(delays)) > 1  # jittered: a fleet does not retry in step


def test_an_answer_to_the_loop_wakes_the_worker_at_once(
    dead_url: str, journal: Journal, codes: dict[str, str]
) -> None:
    accept_offline(journal, dead_url, codes["admitted"])
    stop = threading.Event()
    woken: list[bool] = []

    def wait(event: threading.Event, _: float) -> None:
        woken.append(event.is_set())
        stop.set()

    sync = worker(journal, dead_url, wait=wait)
    sync.wake()  # as CheckIn does when AnyRoad answers a live scan
    sync.run(stop)
    assert woken == [False]  # the wake before a round is consumed by that round


def test_only_one_process_delivers_a_journal_at_a_time(
    sandbox: SandboxServer, dead_url: str, journal: Journal, codes: dict[str, str]
) -> None:
    accept_offline(journal, dead_url, codes["admitted"])
    lock_path = journal.path.with_name(journal.path.name + ".sync-lock")
    with lock_path.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as `ticket-scanner sync` in another process
        result = worker(journal, sandbox.url).deliver_round()
        assert (result.delivered, result.remaining) == (0, 1)
    assert sandbox.seen() == []
    assert worker(journal, sandbox.url).deliver_round().delivered == 1


def write_config(tmp_path: Path, url: str, journal: Path) -> Path:
    token = tmp_path / "token"
    token.write_text(DEMO_TOKEN)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[api]\nbase_url = "{url}"\ntoken_file = "{token}"\ntimeout_s = 0.5\n'
        f'[offline]\njournal = "{journal}"\n'
        f'[hardware]\nevents = "{tmp_path / "events.jsonl"}"\n'
    )
    return config


def test_the_sync_command_delivers_everything_and_exits_0(
    tmp_path: Path,
    sandbox: SandboxServer,
    dead_url: str,
    journal: Journal,
    codes: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    accept_offline(journal, dead_url, codes["admitted"], codes["canceled"])
    assert main(["sync", "--config", str(write_config(tmp_path, sandbox.url, journal.path))]) == 0
    assert capsys.readouterr().out == "delivered 2, conflicts 1, still queued 0\n"
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["sync", "sync"]


def test_the_sync_command_says_what_is_left_when_the_server_is_down(
    tmp_path: Path,
    dead_url: str,
    journal: Journal,
    codes: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    accept_offline(journal, dead_url, codes["admitted"])
    assert main(["sync", "--config", str(write_config(tmp_path, dead_url, journal.path))]) == 1
    captured = capsys.readouterr()
    assert captured.out == "delivered 0, conflicts 0, still queued 1\n"
    assert "sync stopped: connection_failed" in captured.err


def test_after_each_round_the_status_line_hears_the_queue_and_the_conflicts(
    sandbox: SandboxServer, dead_url: str, journal: Journal, codes: dict[str, str]
) -> None:
    accept_offline(journal, dead_url, codes["canceled"], codes["admitted"])
    states: list[QueueState] = []
    worker(journal, sandbox.url, on_change=states.append).deliver_round()
    assert states == [QueueState(queued=0, conflicts=1)]
    assert status_line("scan", True, queued=0, conflicts=1) == "SCAN online !1"
