"""One code, one verdict: ask AnyRoad, decide, and journal it before anyone is told.

The order is the point. The attempt (and, for a scan, its request as "in flight") is written
before the request; what the guest will be told is written before the feedback starts. A
process killed at any moment therefore leaves either nothing told, or a record of it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field

from device.api import Reply
from device.api_health import ApiProof, SetupAlarm
from device.config import Mode, OfflinePolicy, Reentry
from device.journal import Journal, Pending
from device.offline import already_let_in, offline_decision
from device.verdict import Decision, decide
from device.verdicts import Verdict

log = logging.getLogger(__name__)

Check = Callable[[str, Mode], Reply]
# A code whose offline acceptance is still queued is answered from the journal: asking
# AnyRoad would record a second entry before the queued one is delivered.
NOT_ASKED = Reply("problem", code="accepted_offline_here", sent=False)


@dataclass(frozen=True)
class Outcome:
    reply: Reply
    decision: Decision
    attempt: int | None  # the journal row; None if the journal failed
    asked: bool  # False when the journal alone decided


@dataclass
class CheckIn:
    """``CheckIn(check, journal, ...)(code, "scan")`` -> the Outcome, journaled."""

    check: Check
    journal: Journal
    device: str
    reentry: Reentry
    policy: OfflinePolicy
    door: bool
    proof: ApiProof  # offline acceptance only once AnyRoad has answered this configuration
    alarm: SetupAlarm = field(default_factory=SetupAlarm)
    on_answered: Callable[[], None] = lambda: None  # AnyRoad answered: wake the sync worker

    def __call__(self, code: str, mode: Mode) -> Outcome:
        pending = self._begin(code, mode)
        queued = self.journal.queued_admission(code, self.device) if mode == "scan" else None
        if queued is not None:
            reply, asked = NOT_ASKED, False
            decision = already_let_in(queued, self.device, self.reentry)
        else:
            reply, asked = self.check(code, mode), True
            self._note(reply)
            decision = self._decide(code, mode, reply, pending)
        recorded = self._finish(pending, decision, reply)
        if not recorded and decision.verdict == Verdict.ACCEPTED_OFFLINE:
            # No record, no offline acceptance: it could never be delivered.
            decision = decide(reply, mode=mode, device=self.device, reentry=self.reentry)
        if asked and reply.answered:
            self.on_answered()
        return Outcome(reply, decision, pending.attempt_id if pending else None, asked)

    def _decide(self, code: str, mode: Mode, reply: Reply, pending: Pending | None) -> Decision:
        unanswered = self.journal.unanswered_times(
            code,
            self.device,
            presentation=pending.attempt_id if pending else None,
            exclude=pending.request_id if pending else None,
        )
        decision = decide(
            reply,
            mode=mode,
            device=self.device,
            reentry=self.reentry,
            now=self.journal.now(),
            unanswered=unanswered,
        )
        offline = offline_decision(
            reply,
            qr_code=code,
            mode=mode,
            # No record, or no proof this configuration ever reached AnyRoad: no offline entry.
            policy=self.policy if pending and self.proof.proven else "reject",
            door=self.door,
            device=self.device,
            reentry=self.reentry,
            let_in_before=self.journal.admitted_before(code, self.device),
        )
        return offline or decision

    def _note(self, reply: Reply) -> None:
        self.alarm.saw(reply)
        self.proof.saw(reply)

    def _begin(self, code: str, mode: Mode) -> Pending | None:
        try:
            return self.journal.begin(code, mode, self.device)
        except sqlite3.Error:
            log.exception("journal write failed before the request; no offline acceptance")
            return None

    def _finish(self, pending: Pending | None, decision: Decision, reply: Reply) -> bool:
        if pending is None:
            return False
        try:
            self.journal.finish(
                pending,
                verdict=decision.verdict.value,
                admitted=decision.admits,
                reply=reply,
                queued=decision.verdict == Verdict.ACCEPTED_OFFLINE,
            )
        except sqlite3.Error:
            log.exception("journal write failed attempt=%d", pending.attempt_id)
            return False
        return True
