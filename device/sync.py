"""Delivering scans accepted offline, in order, as soon as AnyRoad answers again.

The worker runs beside the scan loop on its own thread and its own API client. It delivers
the oldest queued scan first and stops at the first one that gets no usable answer, then
waits: a growing, jittered, bounded delay, cut short when the loop hears AnyRoad answer.
Each server verdict goes into the journal. When AnyRoad disagrees with what the guest was
told (the ticket was canceled, or used elsewhere first), that is a conflict: logged, written
to the events file and counted on the status line. A sync outcome is not a verdict: no guest
sees it, so it is its own event.

Two processes may sync the same journal (the service's worker and ``ticket-scanner sync``):
an advisory file lock beside the journal lets only one deliver at a time.
"""

from __future__ import annotations

import fcntl
import logging
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from device.api import AnyRoadClient, Reply
from device.config import Reentry
from device.events import Emit, ignore
from device.journal import Attempt, Journal, QueueState
from device.offline import NO_USABLE_ANSWER
from device.tickets import describe_code, log_safe
from device.verdict import decide
from device.verdicts import Verdict

log = logging.getLogger(__name__)

# What delivering a scan the guest was admitted on may turn out as without a dispute.
AGREES = frozenset({Verdict.ADMITTED})


@dataclass(frozen=True)
class Backoff:
    """Delays between delivery rounds: doubling from ``first_s`` up to ``max_s``, jittered.

    Full jitter (a random delay up to the current bound) keeps a fleet of scanners that lost
    the network together from all retrying in the same second when it returns.
    """

    first_s: float = 2.0
    max_s: float = 120.0

    def delay(self, failures: int, rng: random.Random) -> float:
        bound = min(self.max_s, self.first_s * 2 ** max(0, failures - 1))
        return rng.uniform(bound / 2, bound)


@dataclass(frozen=True)
class Round:
    """What one delivery round did."""

    delivered: int
    conflicts: int
    remaining: int
    stopped_by: Reply | None  # the reply that ended the round early, if any


class SyncWorker:
    """``SyncWorker(journal, client, ...).run(stop)`` on a thread; ``wake()`` to try now."""

    def __init__(
        self,
        journal: Journal,
        client: AnyRoadClient,
        *,
        reentry: Reentry,
        emit: Emit = ignore,
        on_change: Callable[[QueueState], None] = lambda _: None,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        wait: Callable[[threading.Event, float], None] | None = None,
    ) -> None:
        self._journal = journal
        self._client = client
        self._reentry = reentry
        self._emit = emit
        self._on_change = on_change
        self._backoff = backoff or Backoff()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._wake = threading.Event()
        self._wait = wait or _wait

    def wake(self) -> None:
        """AnyRoad just answered the loop: deliver now rather than after the backoff."""
        self._wake.set()

    def run(self, stop: threading.Event, idle_s: float = 30.0) -> None:
        """Deliver, wait, deliver again, until ``stop`` is set."""
        failures = 0
        while not stop.is_set():
            self._wake.clear()
            result = self.deliver_round()
            failures = failures + 1 if result.stopped_by is not None else 0
            if stop.is_set():
                return
            delay = self._backoff.delay(failures, self._rng) if failures else idle_s
            self._wait(self._wake, delay)

    def deliver_round(self, *, wait_for_lock: bool = False) -> Round:
        """Deliver queued scans in order until the queue is empty or AnyRoad stops answering.

        Another process delivering the same journal: skip this round, or wait for it.
        """
        delivered = conflicts = 0
        stopped_by: Reply | None = None
        with _exclusive(self._journal.path, wait=wait_for_lock) as mine:
            if not mine:  # another process is delivering this journal right now
                return Round(0, 0, self._journal.state().queued, None)
            while stopped_by is None:
                batch = self._journal.queue(limit=20)
                if not batch:
                    break
                for attempt in batch:
                    outcome = self._deliver(attempt)
                    if isinstance(outcome, Reply):
                        stopped_by = outcome
                        break
                    delivered += 1
                    conflicts += outcome
        state = self._journal.state()
        self._on_change(state)
        return Round(delivered, conflicts, state.queued, stopped_by)

    def _deliver(self, attempt: Attempt) -> Reply | bool:
        """One queued scan: True/False (conflict or not) once AnyRoad answered, else the reply."""
        request = self._journal.sending(attempt)
        reply = self._client.scan(attempt.device, attempt.qr_code)
        if reply.kind in NO_USABLE_ANSWER or reply.kind == "unauthorized":
            self._journal.failed(attempt, request, reply=reply)
            log.info(
                "sync waiting attempt=%d ticket=%s reason=%s",
                attempt.id,
                describe_code(attempt.qr_code),
                log_safe(reply.code or reply.kind, 40),
            )
            return reply
        # This delivery is the same presentation as the offline acceptance: the scan its
        # first, unanswered request may have left at AnyRoad is not a second entry.
        unanswered = self._journal.unanswered_times(
            attempt.qr_code, attempt.device, presentation=attempt.id, exclude=request
        )
        decision = decide(
            reply,
            mode="scan",
            device=attempt.device,
            reentry=self._reentry,
            now=self._journal.now(),
            unanswered=unanswered,
        )
        conflict = decision.verdict not in AGREES
        self._journal.delivered(
            attempt, request, server_verdict=decision.verdict.value, reply=reply, conflict=conflict
        )
        self._emit(
            {
                "event": "sync",
                "attempt": attempt.id,
                "qr_code": attempt.qr_code,
                "verdict": decision.verdict.value,
                "conflict": conflict,
                "status": reply.status,
                "code": reply.code,
                "request_id": reply.request_id,
            }
        )
        level = logging.WARNING if conflict else logging.INFO
        log.log(
            level,
            "sync %s attempt=%d ticket=%s verdict=%s status=%s request_id=%s",
            "CONFLICT" if conflict else "delivered",
            attempt.id,
            describe_code(attempt.qr_code),
            decision.verdict.value,
            reply.status or "-",
            log_safe(reply.request_id, 40) or "-",
        )
        return conflict


@contextmanager
def _exclusive(journal: Path, *, wait: bool) -> Iterator[bool]:
    """Hold the journal's sync lock (``wait`` for it, or only if free); yields whether held."""
    lock_path = journal.with_name(journal.name + ".sync-lock")
    with lock_path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _wait(event: threading.Event, seconds: float) -> None:
    event.wait(seconds)
