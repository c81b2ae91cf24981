"""Offline: what the guest is told when AnyRoad does not answer, and what the journal knows."""

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.api import AnyRoadClient
from device.app import make_check
from device.checkin import CheckIn
from device.config import OfflinePolicy
from device.journal import Journal
from device.sandbox import DEMO_TOKEN, Fault, SandboxServer
from device.sync import SyncWorker
from device.verdicts import Verdict
from tests.fakes import Recorder, proven

DEVICE = "pi-gate-1"


@pytest.fixture
def dead_url() -> str:
    """The address of a server that has gone away: connections are refused."""
    with SandboxServer() as server:
        return server.url


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    journal = Journal.open(tmp_path / "journal.db")
    yield journal
    journal.close()


def checkin(
    url: str, journal: Journal, policy: OfflinePolicy, *, door: bool = False, reentry: str = "warn"
) -> CheckIn:
    client = AnyRoadClient(url, token=lambda: DEMO_TOKEN, timeout_s=0.5)
    return CheckIn(
        make_check(client, DEVICE),
        journal,
        device=DEVICE,
        reentry=reentry,  # type: ignore[arg-type]
        policy=policy,
        door=door,
        proof=proven(journal),
    )


def test_accept_policy_admits_and_queues_when_the_server_is_gone(
    dead_url: str, journal: Journal, codes: dict[str, str]
) -> None:
    outcome = checkin(dead_url, journal, "accept")(codes["admitted"], "scan")
    assert outcome.decision.verdict == Verdict.ACCEPTED_OFFLINE
    assert outcome.decision.admits
    assert [attempt.qr_code for attempt in journal.queue()] == [codes["admitted"]]


def test_reject_policy_says_no_connection_and_queues_nothing(
    dead_url: str, journal: Journal, codes: dict[str, str]
) -> None:
    outcome = checkin(dead_url, journal, "reject")(codes["admitted"], "scan")
    assert (outcome.decision.verdict, outcome.decision.admits) == (Verdict.UNREACHABLE, False)
    assert journal.queue() == []


def test_a_door_accepts_offline_only_codes_shaped_like_anyroad_tickets(
    dead_url: str, journal: Journal, codes: dict[str, str]
) -> None:
    door = checkin(dead_url, journal, "accept", door=True)
    assert door("https://example.com/menu", "scan").decision.verdict == Verdict.UNREACHABLE
    assert door(codes["admitted"], "scan").decision.verdict == Verdict.ACCEPTED_OFFLINE


@pytest.mark.parametrize("fault", [Fault.HTML, Fault.SERVER_ERROR])
def test_a_captive_portal_or_a_server_error_counts_as_offline(
    sandbox: SandboxServer, journal: Journal, codes: dict[str, str], fault: Fault
) -> None:
    sandbox.inject(fault)
    outcome = checkin(sandbox.url, journal, "accept")(codes["admitted"], "scan")
    assert outcome.decision.verdict == Verdict.ACCEPTED_OFFLINE


def test_an_unauthorised_scanner_never_accepts_offline(
    sandbox: SandboxServer, journal: Journal, codes: dict[str, str]
) -> None:
    sandbox.inject(Fault.UNAUTHORIZED)
    outcome = checkin(sandbox.url, journal, "accept")(codes["admitted"], "scan")
    assert outcome.decision.verdict == Verdict.UNAUTHORIZED
    assert journal.queue() == []


@pytest.mark.parametrize(("reentry", "admits"), [("warn", False), ("allow", True)])
def test_offline_a_ticket_this_device_let_in_is_already_scanned(
    sandbox: SandboxServer,
    dead_url: str,
    journal: Journal,
    codes: dict[str, str],
    reentry: str,
    admits: bool,
) -> None:
    code = codes["admitted"]
    assert checkin(sandbox.url, journal, "accept")(code, "scan").decision.verdict == "admitted"
    again = checkin(dead_url, journal, "accept", reentry=reentry)(code, "scan").decision
    assert (again.verdict, again.admits) == (Verdict.ALREADY_SCANNED, admits)
    assert again.first_scan is not None and again.first_scan.device == DEVICE
    assert journal.queue() == []  # nothing new to deliver


def test_while_its_offline_acceptance_is_queued_a_ticket_is_already_scanned_without_asking(
    sandbox: SandboxServer, dead_url: str, journal: Journal, codes: dict[str, str]
) -> None:
    code = codes["admitted"]
    checkin(dead_url, journal, "accept")(code, "scan")
    outcome = checkin(sandbox.url, journal, "accept")(code, "scan")  # back online
    assert outcome.decision.verdict == Verdict.ALREADY_SCANNED
    assert not outcome.asked
    assert sandbox.seen() == []  # AnyRoad hears of it once, from the sync


def test_verify_mode_never_accepts_offline(
    dead_url: str, journal: Journal, codes: dict[str, str]
) -> None:
    outcome = checkin(dead_url, journal, "accept")(codes["admitted"], "verify")
    assert outcome.decision.verdict == Verdict.UNREACHABLE
    assert journal.queue() == []


def test_without_a_journal_record_nobody_is_accepted_offline(
    dead_url: str, journal: Journal, codes: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(*_: object, **__: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(journal, "finish", disk_full)
    outcome = checkin(dead_url, journal, "accept")(codes["admitted"], "scan")
    assert (outcome.decision.verdict, outcome.decision.admits) == (Verdict.UNREACHABLE, False)


def test_every_attempt_is_journaled_with_what_the_guest_was_told(
    sandbox: SandboxServer, journal: Journal, codes: dict[str, str]
) -> None:
    scanner = checkin(sandbox.url, journal, "accept")
    told = [scanner(codes[case], "scan").decision.verdict for case in ("admitted", "canceled")]
    with contextlib.closing(sqlite3.connect(journal.path)) as db:
        rows = db.execute("SELECT verdict FROM attempts ORDER BY id").fetchall()
    assert [verdict for (verdict,) in rows] == told == ["admitted", "canceled"]


# --- a request that went out and never came back ------------------------------------------


def scans_at_anyroad(url: str, code: str) -> list[str]:
    reply = AnyRoadClient(url, token=lambda: DEMO_TOKEN, timeout_s=0.5).verify(code)
    assert reply.ticket is not None
    return [scan.device for scan in reply.ticket.scans]


def test_a_scan_recorded_but_never_answered_is_delivered_later_without_a_false_conflict(
    sandbox: SandboxServer, journal: Journal, codes: dict[str, str]
) -> None:
    code = codes["admitted"]
    sandbox.inject(Fault.LOST_ANSWER)  # AnyRoad records the scan; its answer is lost
    first = checkin(sandbox.url, journal, "accept")(code, "scan")
    assert first.decision.verdict == Verdict.ACCEPTED_OFFLINE
    events = Recorder()
    result = SyncWorker(
        journal,
        AnyRoadClient(sandbox.url, token=lambda: DEMO_TOKEN, timeout_s=0.5),
        reentry="warn",
        emit=events,
    ).deliver_round()
    (synced,) = events.of("sync")
    assert (synced["verdict"], synced["conflict"], result.conflicts) == ("admitted", False, 0)
    assert scans_at_anyroad(sandbox.url, code) == [DEVICE, DEVICE]  # both reached AnyRoad


def test_after_no_connection_the_same_guest_retrying_is_admitted_not_already_scanned(
    sandbox: SandboxServer, journal: Journal, codes: dict[str, str]
) -> None:
    code = codes["admitted"]
    sandbox.inject(Fault.LOST_ANSWER)
    scanner = checkin(sandbox.url, journal, "reject")
    assert scanner(code, "scan").decision.verdict == Verdict.UNREACHABLE
    retry = scanner(code, "scan").decision
    assert (retry.verdict, retry.admits) == (Verdict.ADMITTED, True)


def test_a_real_second_entry_at_this_same_device_is_still_already_scanned(
    sandbox: SandboxServer, journal: Journal, codes: dict[str, str]
) -> None:
    code = codes["admitted"]
    sandbox.inject(Fault.LOST_ANSWER)
    scanner = checkin(sandbox.url, journal, "accept")
    assert scanner(code, "scan").decision.verdict == Verdict.ACCEPTED_OFFLINE  # let in
    SyncWorker(
        journal,
        AnyRoadClient(sandbox.url, token=lambda: DEMO_TOKEN, timeout_s=0.5),
        reentry="warn",
    ).deliver_round()
    again = scanner(code, "scan").decision  # the ticket comes back: a second entry
    assert again.verdict == Verdict.ALREADY_SCANNED
    assert again.first_scan is not None and again.first_scan.device == DEVICE


def test_a_lost_answer_is_kept_but_a_refused_connection_is_not(
    sandbox: SandboxServer, dead_url: str, journal: Journal, codes: dict[str, str]
) -> None:
    sandbox.inject(Fault.LOST_ANSWER)
    checkin(sandbox.url, journal, "reject")(codes["admitted"], "scan")
    checkin(dead_url, journal, "reject")(codes["admitted_2"], "scan")
    assert len(journal.unanswered_times(codes["admitted"], DEVICE)) == 1
    assert journal.unanswered_times(codes["admitted_2"], DEVICE) == []
