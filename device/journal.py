"""The journal: every scan attempt and what the guest was told, in SQLite, before they see it.

It is also the offline queue (attempts accepted while the API did not answer) and the record
of requests that may have reached AnyRoad without an answer coming back ("unanswered"), which
later deliveries need so that the scanner's own lost request is not taken for a second entry.

WAL with ``synchronous=FULL``: a commit is on disk before ``finish()`` returns, so a guest is
never told something a power cut can take back. One connection, serialised by a lock, is
shared by the scan loop and the sync worker; another process (``ticket-scanner sync``) may
open the same file, and SQLite's own locking keeps the two apart (``busy_timeout``).

Example::

    journal = Journal.open(Path("journal.db"))
    pending = journal.begin("data:...", "scan", "serial")
    ... ask the API, decide ...
    journal.finish(pending, verdict="admitted", admitted=True, reply=reply, queued=False)
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from device.api import Reply
from device.config import Mode

SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,               -- when the code was presented (UTC, this device's clock)
    qr_code TEXT NOT NULL,
    mode TEXT NOT NULL,             -- scan | verify
    device TEXT NOT NULL,
    verdict TEXT,                   -- what the guest was told; NULL: the process died first
    admitted INTEGER,               -- 1 if the guest was let in
    status INTEGER,
    code TEXT NOT NULL DEFAULT '',
    request_id TEXT NOT NULL DEFAULT '',
    queued INTEGER NOT NULL DEFAULT 0,      -- accepted offline, waiting for delivery
    tries INTEGER NOT NULL DEFAULT 0,       -- delivery attempts
    last_error TEXT NOT NULL DEFAULT '',
    delivered_at TEXT,
    server_verdict TEXT,
    server_request_id TEXT NOT NULL DEFAULT '',
    conflict INTEGER NOT NULL DEFAULT 0     -- the server disagreed with what the guest was told
);
CREATE INDEX IF NOT EXISTS attempts_code ON attempts (qr_code, device);
CREATE INDEX IF NOT EXISTS attempts_queue ON attempts (queued, id);
CREATE INDEX IF NOT EXISTS attempts_conflict ON attempts (conflict);
CREATE TABLE IF NOT EXISTS unanswered (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    attempt_id INTEGER NOT NULL REFERENCES attempts (id),
    at TEXT NOT NULL                -- when the request left (UTC, this device's clock)
);
CREATE INDEX IF NOT EXISTS unanswered_attempt ON unanswered (attempt_id);
CREATE TABLE IF NOT EXISTS answered_by (
    api TEXT PRIMARY KEY,           -- a hash of base_url and the credential (never the secret)
    first_at TEXT NOT NULL          -- AnyRoad's first answer to it (UTC, this device's clock)
);
"""
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 5000  # another process syncing: wait for it rather than fail a guest


class JournalError(RuntimeError):
    """The journal cannot be opened or is damaged; the message names the file."""


@dataclass(frozen=True)
class Pending:
    """An attempt begun but not finished: its row and the row of its request in flight."""

    attempt_id: int
    request_id: int | None  # None for verify: a verify records nothing at AnyRoad


@dataclass(frozen=True)
class Attempt:
    id: int
    at: datetime
    qr_code: str
    mode: str
    device: str
    verdict: str | None
    admitted: bool
    queued: bool
    tries: int
    conflict: bool


@dataclass(frozen=True)
class QueueState:
    queued: int
    conflicts: int


class Journal:
    """``Journal.open(path)``; every method is one transaction and is thread-safe."""

    def __init__(
        self, connection: sqlite3.Connection, path: Path, wall: Callable[[], datetime]
    ) -> None:
        self._db = connection
        self._path = path
        self._wall = wall
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path, *, wall: Callable[[], datetime] | None = None) -> Journal:
        """Open (or create) the journal at ``path``; refuses a damaged file."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as error:
            raise JournalError(f"{path}: cannot open the journal: {error}") from error
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA foreign_keys=ON")
            (check,) = connection.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                raise JournalError(
                    f"{path}: the journal is damaged ({check}); keep it for "
                    "inspection and move it aside to start a new one"
                )
            connection.executescript(SCHEMA)
            connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as error:
            connection.close()
            raise JournalError(f"{path}: not a usable journal: {error}") from error
        except JournalError:
            connection.close()
            raise
        return cls(connection, path, wall or (lambda: datetime.now(UTC)))

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def now(self) -> datetime:
        return self._wall()

    # --- the scan loop ---------------------------------------------------------------------

    def begin(self, qr_code: str, mode: Mode, device: str) -> Pending:
        """Note an attempt and, for a scan, its request as in flight; before the request."""
        at = _iso(self._wall())
        with self._transaction() as db:
            attempt_id = _insert(
                db,
                "INSERT INTO attempts (at, qr_code, mode, device) VALUES (?, ?, ?, ?)",
                (at, storable(qr_code), mode, device),
            )
            request_id = (
                _insert(
                    db, "INSERT INTO unanswered (attempt_id, at) VALUES (?, ?)", (attempt_id, at)
                )
                if mode == "scan"
                else None
            )
        return Pending(attempt_id, request_id)

    def finish(
        self, pending: Pending, *, verdict: str, admitted: bool, reply: Reply, queued: bool
    ) -> None:
        """What the guest is about to be told; on disk before it is shown."""
        with self._transaction() as db:
            db.execute(
                "UPDATE attempts SET verdict = ?, admitted = ?, status = ?, code = ?, "
                "request_id = ?, queued = ? WHERE id = ?",
                (
                    verdict,
                    int(admitted),
                    reply.status,
                    reply.code,
                    reply.request_id,
                    int(queued),
                    pending.attempt_id,
                ),
            )
            if pending.request_id is not None and not reply.may_have_recorded:
                db.execute("DELETE FROM unanswered WHERE id = ?", (pending.request_id,))

    def admitted_before(self, qr_code: str, device: str) -> Attempt | None:
        """The first attempt at which this device let ``qr_code`` in, if any."""
        with self._lock:
            row = self._db.execute(
                _SELECT_ATTEMPTS + " WHERE qr_code = ? AND device = ? "
                "AND mode = 'scan' AND admitted = 1 ORDER BY id LIMIT 1",
                (storable(qr_code), device),
            ).fetchone()
        return _attempt(row) if row else None

    def queued_admission(self, qr_code: str, device: str) -> Attempt | None:
        """An offline acceptance of ``qr_code`` still waiting to be delivered."""
        with self._lock:
            row = self._db.execute(
                _SELECT_ATTEMPTS
                + " WHERE qr_code = ? AND device = ? AND queued = 1 ORDER BY id LIMIT 1",
                (storable(qr_code), device),
            ).fetchone()
        return _attempt(row) if row else None

    def unanswered_times(
        self,
        qr_code: str,
        device: str,
        *,
        presentation: int | None = None,
        exclude: int | None = None,
    ) -> list[datetime]:
        """When this device's own requests for ``qr_code`` left without an answer.

        Only those that cannot stand for a real entry: attempts that did not let the guest
        in (or died before telling them), and any request of ``presentation`` itself.
        ``exclude`` is the request just answered: its scan is this one, not an earlier one.
        """
        with self._lock:
            rows = self._db.execute(
                "SELECT u.at FROM unanswered u JOIN attempts a ON a.id = u.attempt_id "
                "WHERE a.qr_code = ? AND a.device = ? AND u.id IS NOT ? "
                "AND (a.admitted IS NOT 1 OR a.id IS ?) ORDER BY u.id",
                (storable(qr_code), device, exclude, presentation),
            ).fetchall()
        return [datetime.fromisoformat(at) for (at,) in rows]

    # --- proof that a configuration has worked (device.api_health) ---------------------------

    def answered_by(self, api: str) -> datetime | None:
        """When AnyRoad first answered the configuration ``api`` names; None: never."""
        with self._lock:
            row = self._db.execute(
                "SELECT first_at FROM answered_by WHERE api = ?", (api,)
            ).fetchone()
        return datetime.fromisoformat(row[0]) if row else None

    def note_answered_by(self, api: str) -> None:
        """Keep the first AnyRoad answer to ``api``; later ones change nothing."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO answered_by (api, first_at) VALUES (?, ?)",
                (api, _iso(self._wall())),
            )

    # --- the sync worker -------------------------------------------------------------------

    def queue(self, limit: int = 100) -> list[Attempt]:
        """Attempts waiting for delivery, oldest first."""
        with self._lock:
            rows = self._db.execute(
                _SELECT_ATTEMPTS + " WHERE queued = 1 ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [_attempt(row) for row in rows]

    def sending(self, attempt: Attempt) -> int:
        """Note a delivery request as in flight; returns its row for ``delivered``/``failed``."""
        with self._transaction() as db:
            return _insert(
                db,
                "INSERT INTO unanswered (attempt_id, at) VALUES (?, ?)",
                (attempt.id, _iso(self._wall())),
            )

    def delivered(
        self, attempt: Attempt, request: int, *, server_verdict: str, reply: Reply, conflict: bool
    ) -> None:
        """AnyRoad answered a delivery: the attempt leaves the queue with its verdict."""
        with self._transaction() as db:
            db.execute("DELETE FROM unanswered WHERE id = ?", (request,))
            db.execute(
                "UPDATE attempts SET queued = 0, tries = tries + 1, delivered_at = ?, "
                "server_verdict = ?, server_request_id = ?, conflict = ? WHERE id = ?",
                (
                    _iso(self._wall()),
                    server_verdict,
                    reply.request_id,
                    int(conflict),
                    attempt.id,
                ),
            )

    def failed(self, attempt: Attempt, request: int, *, reply: Reply) -> None:
        """A delivery got no usable answer; it stays queued. Keep the request if it may count."""
        with self._transaction() as db:
            if not reply.may_have_recorded:
                db.execute("DELETE FROM unanswered WHERE id = ?", (request,))
            db.execute(
                "UPDATE attempts SET tries = tries + 1, last_error = ? WHERE id = ?",
                (reply.code or reply.kind, attempt.id),
            )

    def state(self) -> QueueState:
        """How many scans wait for delivery, and how many deliveries were disputed."""
        with self._lock:
            # Two index lookups: the journal keeps every attempt, so no scan of the table.
            queued, conflicts = self._db.execute(
                "SELECT (SELECT COUNT(*) FROM attempts WHERE queued = 1), "
                "(SELECT COUNT(*) FROM attempts WHERE conflict = 1)"
            ).fetchone()
        return QueueState(int(queued), int(conflicts))

    def integrity(self) -> str:
        """``PRAGMA integrity_check``: "ok" for a sound file."""
        with self._lock:
            (result,) = self._db.execute("PRAGMA integrity_check").fetchone()
        return str(result)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")


_SELECT_ATTEMPTS = (
    "SELECT id, at, qr_code, mode, device, verdict, admitted, queued, tries, conflict FROM attempts"
)


def _attempt(row: tuple[object, ...]) -> Attempt:
    id_, at, qr_code, mode, device, verdict, admitted, queued, tries, conflict = row
    return Attempt(
        id=int(str(id_)),
        at=datetime.fromisoformat(str(at)),
        qr_code=str(qr_code),
        mode=str(mode),
        device=str(device),
        verdict=None if verdict is None else str(verdict),
        admitted=admitted == 1,
        queued=queued == 1,
        tries=int(str(tries)),
        conflict=conflict == 1,
    )


def _insert(db: sqlite3.Connection, sql: str, values: tuple[object, ...]) -> int:
    row_id = db.execute(sql, values).lastrowid
    assert row_id is not None
    return row_id


def storable(qr_code: str) -> str:
    """``qr_code`` as SQLite can hold it: a lone surrogate (no valid UTF-8) is escaped."""
    try:
        qr_code.encode("utf-8")
    except UnicodeEncodeError:
        return qr_code.encode("utf-8", "backslashreplace").decode("utf-8")
    return qr_code


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()
