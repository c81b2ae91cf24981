"""From an API reply to what the guest is told: the verdict, and whether it lets them in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from device.api import Reply, ScanRecord, TicketInfo
from device.config import Mode, Reentry
from device.verdicts import Verdict

# How far the server's record of *this* scan may sit from the server's own clock (its Date
# header): covers the request's own duration and a server that stamps before it answers.
THIS_SCAN_TOLERANCE = timedelta(seconds=120)

_PROBLEM_VERDICTS = {
    "booking_canceled": Verdict.CANCELED,
    "booking_in_future": Verdict.TOO_EARLY,
    "booking_in_past": Verdict.TOO_LATE,
}
_KIND_VERDICTS = {
    "unauthorized": Verdict.UNAUTHORIZED,
    "setup_error": Verdict.SETUP_ERROR,
    "server_error": Verdict.SERVER_ERROR,
    "unreachable": Verdict.UNREACHABLE,
}


@dataclass(frozen=True)
class Decision:
    """A verdict with what the feedback needs to show it."""

    verdict: Verdict
    admits: bool  # green light and (door unit) the relay
    ticket: TicketInfo | None = None
    first_scan: ScanRecord | None = None  # the earlier check-in, for already_scanned


def decide(
    reply: Reply,
    *,
    mode: Mode,
    device: str,
    reentry: Reentry,
    now: datetime | None = None,
    unanswered: Sequence[datetime] = (),
) -> Decision:
    """The verdict for ``reply``: ``decide(reply, mode="scan", device="abc", reentry="warn")``.

    ``now`` is this device's clock; ``unanswered`` are the times (same clock) of this
    device's own requests for this code that may have been recorded without an answer and
    cannot stand for a real entry (the journal knows them): their scans do not count.
    """
    if reply.kind == "ticket" and reply.ticket is not None:
        ticket = reply.ticket
        if mode == "verify":
            return Decision(
                Verdict.VALID, admits=False, ticket=ticket, first_scan=_first(ticket.scans)
            )
        local_now = now or datetime.now(UTC)
        server_now = reply.server_time or local_now
        earlier = earlier_scans(ticket.scans, device, server_now)
        # The server's clock may differ from ours: move our times onto its clock.
        skew = _aware(server_now) - _aware(local_now)
        earlier = excuse(earlier, device, [_aware(at) + skew for at in unanswered])
        if not earlier:
            return Decision(Verdict.ADMITTED, admits=True, ticket=ticket)
        return Decision(
            Verdict.ALREADY_SCANNED,
            admits=reentry == "allow",
            ticket=ticket,
            first_scan=_first(earlier),
        )
    if reply.kind == "problem":
        verdict = _PROBLEM_VERDICTS.get(reply.code, Verdict.INVALID)
        return Decision(verdict, admits=False, ticket=reply.ticket)
    return Decision(_KIND_VERDICTS.get(reply.kind, Verdict.SERVER_ERROR), admits=False)


def earlier_scans(
    scans: Sequence[ScanRecord], device: str, server_now: datetime
) -> tuple[ScanRecord, ...]:
    """The scans other than the one this request just recorded.

    AnyRoad's reply includes the scan it has just recorded. That entry is the newest one by
    this device stamped near the server's clock; a server that does not echo it simply has
    no such entry, and every scan it lists is an earlier one.
    """
    recent_here = [
        (_aware(scan.scanned_at), index)
        for index, scan in enumerate(scans)
        if scan.device == device
        and scan.scanned_at is not None
        and abs(_aware(scan.scanned_at) - _aware(server_now)) <= THIS_SCAN_TOLERANCE
    ]
    this_scan = max(recent_here)[1] if recent_here else None
    return tuple(scan for index, scan in enumerate(scans) if index != this_scan)


def excuse(
    scans: Sequence[ScanRecord], device: str, unanswered: Sequence[datetime]
) -> tuple[ScanRecord, ...]:
    """``scans`` without one scan by ``device`` near each unanswered request's time."""
    remaining = list(scans)
    for sent in unanswered:
        near = [
            (abs(_aware(scan.scanned_at) - sent), index)
            for index, scan in enumerate(remaining)
            if scan.device == device
            and scan.scanned_at is not None
            and abs(_aware(scan.scanned_at) - sent) <= THIS_SCAN_TOLERANCE
        ]
        if near:
            remaining.pop(min(near)[1])
    return tuple(remaining)


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _first(scans: Sequence[ScanRecord]) -> ScanRecord | None:
    """The earliest scan; the list order where times are missing."""
    if not scans:
        return None
    dated = [scan for scan in scans if scan.scanned_at is not None]
    if not dated:
        return scans[0]
    return min(dated, key=lambda scan: _aware(scan.scanned_at or datetime.min))
