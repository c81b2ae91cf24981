"""The journal: durable, honest about what it knows, and loud about a damaged file."""

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from device.api import Reply
from device.journal import Journal, JournalError

ANSWERED = Reply("ticket", status=200)
TIMED_OUT = Reply("unreachable", code="timeout", sent=True)
REFUSED = Reply("unreachable", code="connection_failed", sent=False)
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class Wall:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def wall() -> Wall:
    return Wall()


@pytest.fixture
def journal(tmp_path: Path, wall: Wall) -> Journal:
    return Journal.open(tmp_path / "state" / "journal.db", wall=wall)


def test_what_a_guest_was_told_is_on_disk_for_another_reader(journal: Journal) -> None:
    pending = journal.begin("CODE-1", "scan", "pi-1")
    journal.finish(pending, verdict="admitted", admitted=True, reply=ANSWERED, queued=False)
    # A second connection, as after a crash: it sees the committed row.
    other = sqlite3.connect(journal.path)
    rows = other.execute("SELECT qr_code, verdict, admitted FROM attempts").fetchall()
    assert rows == [("CODE-1", "admitted", 1)]
    assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    other.close()


def test_commits_wait_for_the_disk_and_the_file_checks_out(journal: Journal) -> None:
    # synchronous is per connection: read the journal's own. 2 is FULL: fsync on commit.
    assert journal._db.execute("PRAGMA synchronous").fetchone() == (2,)
    assert journal.integrity() == "ok"


def test_an_attempt_the_process_died_in_is_kept_untold(tmp_path: Path, wall: Wall) -> None:
    journal = Journal.open(tmp_path / "journal.db", wall=wall)
    journal.begin("CODE-1", "scan", "pi-1")  # and then nothing: killed mid-request
    reopened = Journal.open(tmp_path / "journal.db", wall=wall)
    assert reopened.unanswered_times("CODE-1", "pi-1") == [T0]  # may be at AnyRoad
    assert reopened.admitted_before("CODE-1", "pi-1") is None  # nobody was let in


def test_a_damaged_file_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match=r"journal\.db: not a usable journal"):
        Journal.open(path)


def test_a_journal_where_no_directory_can_be_made_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(JournalError, match="cannot open the journal"):
        Journal.open(tmp_path / "file" / "journal.db")


def test_only_requests_that_may_have_arrived_unanswered_are_kept(
    journal: Journal, wall: Wall
) -> None:
    for reply in (ANSWERED, TIMED_OUT, REFUSED):
        wall.now += timedelta(minutes=1)
        pending = journal.begin("CODE-1", "scan", "pi-1")
        journal.finish(pending, verdict="x", admitted=False, reply=reply, queued=False)
    assert journal.unanswered_times("CODE-1", "pi-1") == [T0 + timedelta(minutes=2)]


def test_an_unanswered_request_that_let_the_guest_in_counts_only_for_its_own_presentation(
    journal: Journal,
) -> None:
    pending = journal.begin("CODE-1", "scan", "pi-1")
    journal.finish(pending, verdict="accepted_offline", admitted=True, reply=TIMED_OUT, queued=True)
    assert journal.unanswered_times("CODE-1", "pi-1") == []  # a later guest: a real entry
    mine = journal.unanswered_times("CODE-1", "pi-1", presentation=pending.attempt_id)
    assert mine == [T0]  # delivering that acceptance: its own lost request


def test_the_request_just_answered_is_not_an_excuse(journal: Journal) -> None:
    pending = journal.begin("CODE-1", "scan", "pi-1")
    assert journal.unanswered_times("CODE-1", "pi-1", exclude=pending.request_id) == []


def test_verify_attempts_record_nothing_that_could_be_at_anyroad(journal: Journal) -> None:
    pending = journal.begin("CODE-1", "verify", "pi-1")
    journal.finish(pending, verdict="unreachable", admitted=False, reply=TIMED_OUT, queued=False)
    assert journal.unanswered_times("CODE-1", "pi-1") == []


def test_the_queue_is_oldest_first_and_counted(journal: Journal, wall: Wall) -> None:
    for code in ("A", "B", "C"):
        wall.now += timedelta(seconds=1)
        pending = journal.begin(code, "scan", "pi-1")
        journal.finish(
            pending, verdict="accepted_offline", admitted=True, reply=REFUSED, queued=True
        )
    assert [attempt.qr_code for attempt in journal.queue()] == ["A", "B", "C"]
    assert journal.state().queued == 3
    first = journal.queue()[0]
    request = journal.sending(first)
    journal.delivered(first, request, server_verdict="canceled", reply=ANSWERED, conflict=True)
    assert [attempt.qr_code for attempt in journal.queue()] == ["B", "C"]
    assert (journal.state().queued, journal.state().conflicts) == (2, 1)


def test_a_code_that_is_not_valid_unicode_is_still_journaled(journal: Journal) -> None:
    code = "ticket-\udc80"  # a lone surrogate: no UTF-8 form
    pending = journal.begin(code, "scan", "pi-1")
    journal.finish(pending, verdict="invalid", admitted=False, reply=REFUSED, queued=False)
    assert journal.admitted_before(code, "pi-1") is None
    assert journal.state().queued == 0
