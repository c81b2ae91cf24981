"""Replies become verdicts; the scan just recorded is not mistaken for an earlier one."""

from datetime import UTC, datetime, timedelta

import pytest

from device.api import Reply, ScanRecord, TicketInfo
from device.verdict import decide, earlier_scans
from device.verdicts import Verdict

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ME = "10000000a1b2c3d4"


def ticket_reply(*scans: ScanRecord) -> Reply:
    return Reply("ticket", status=200, ticket=TicketInfo(id="t1", scans=scans), server_time=NOW)


def test_a_first_scan_admits() -> None:
    decision = decide(ticket_reply(ScanRecord(ME, NOW)), mode="scan", device=ME, reentry="warn")
    assert (decision.verdict, decision.admits) == (Verdict.ADMITTED, True)


def test_a_server_that_does_not_echo_the_new_scan_still_admits_a_first_scan() -> None:
    decision = decide(ticket_reply(), mode="scan", device=ME, reentry="warn")
    assert decision.verdict is Verdict.ADMITTED


@pytest.mark.parametrize(("reentry", "admits"), [("warn", False), ("deny", False), ("allow", True)])
def test_an_earlier_scan_elsewhere_is_already_scanned(reentry: str, admits: bool) -> None:
    earlier = ScanRecord("gate-2", NOW - timedelta(minutes=25))
    reply = ticket_reply(earlier, ScanRecord(ME, NOW))
    decision = decide(reply, mode="scan", device=ME, reentry=reentry)  # type: ignore[arg-type]
    assert decision.verdict is Verdict.ALREADY_SCANNED
    assert decision.admits is admits
    assert decision.first_scan == earlier


def test_a_second_scan_at_this_device_is_already_scanned() -> None:
    first = ScanRecord(ME, NOW - timedelta(seconds=30))
    decision = decide(
        ticket_reply(first, ScanRecord(ME, NOW)), mode="scan", device=ME, reentry="warn"
    )
    assert decision.verdict is Verdict.ALREADY_SCANNED
    assert decision.first_scan == first


def test_the_server_clock_decides_what_just_happened_not_ours() -> None:
    # The Pi's clock is a day off (no RTC, no NTP yet); the server's Date header is right.
    scans = (ScanRecord(ME, NOW),)
    assert earlier_scans(scans, ME, NOW) == ()
    decision = decide(
        ticket_reply(*scans), mode="scan", device=ME, reentry="warn", now=NOW + timedelta(days=1)
    )
    assert decision.verdict is Verdict.ADMITTED


def test_verify_never_admits_and_shows_an_earlier_check_in() -> None:
    earlier = ScanRecord("gate-2", NOW - timedelta(minutes=5))
    decision = decide(ticket_reply(earlier), mode="verify", device=ME, reentry="allow")
    assert (decision.verdict, decision.admits, decision.first_scan) == (
        Verdict.VALID,
        False,
        earlier,
    )


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        (Reply("problem", 400, "booking_canceled"), Verdict.CANCELED),
        (Reply("problem", 400, "booking_in_future"), Verdict.TOO_EARLY),
        (Reply("problem", 400, "booking_in_past"), Verdict.TOO_LATE),
        (Reply("problem", 400, "limit_out_of_range"), Verdict.INVALID),
        (Reply("problem", 404, "http_404"), Verdict.INVALID),
        (Reply("unauthorized", 401, "invalid_bearer_token"), Verdict.UNAUTHORIZED),
        (Reply("server_error", 500, "server_error"), Verdict.SERVER_ERROR),
        (Reply("server_error", 200, "not_json"), Verdict.SERVER_ERROR),
        (Reply("unreachable", code="timeout"), Verdict.UNREACHABLE),
    ],
)
def test_every_reply_kind_has_its_verdict(reply: Reply, verdict: Verdict) -> None:
    decision = decide(reply, mode="scan", device=ME, reentry="allow")
    assert (decision.verdict, decision.admits) == (verdict, False)


def test_our_own_unanswered_request_is_matched_on_the_servers_clock() -> None:
    # The Pi's clock is 10 minutes slow. Our lost request left 5 minutes ago by our clock;
    # AnyRoad stamped it by its own.
    local_now = NOW - timedelta(minutes=10)
    lost = ScanRecord(ME, NOW - timedelta(minutes=5))
    reply = ticket_reply(lost, ScanRecord(ME, NOW))
    unanswered = [local_now - timedelta(minutes=5)]
    decision = decide(
        reply, mode="scan", device=ME, reentry="warn", now=local_now, unanswered=unanswered
    )
    assert decision.verdict is Verdict.ADMITTED


def test_an_unanswered_request_excuses_one_scan_near_it_and_no_other() -> None:
    local_now = NOW
    ours = ScanRecord(ME, NOW - timedelta(minutes=5))
    real_second = ScanRecord(ME, NOW - timedelta(minutes=40))  # far from any lost request
    reply = ticket_reply(real_second, ours, ScanRecord(ME, NOW))
    decision = decide(
        reply,
        mode="scan",
        device=ME,
        reentry="warn",
        now=local_now,
        unanswered=[NOW - timedelta(minutes=5)],
    )
    assert decision.verdict is Verdict.ALREADY_SCANNED
    assert decision.first_scan == real_second
