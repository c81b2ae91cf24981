"""What the guest is told when AnyRoad gives no usable answer, and what this device already knows.

The journal remembers every code this device let in. Offline, such a code is
``already_scanned``; so is a code whose offline acceptance is still waiting to be delivered,
even online, because AnyRoad does not know of that entry yet. Otherwise the policy decides:
``accept`` admits and queues the scan (``accepted_offline``), ``reject`` tells the guest
there is no connection. An unattended door accepts offline only codes shaped like AnyRoad
tickets, so a random QR code held to the camera never opens it.
"""

from __future__ import annotations

from device.api import Reply, ScanRecord
from device.config import Mode, OfflinePolicy, Reentry
from device.journal import Attempt
from device.tickets import parse_payload
from device.verdict import Decision
from device.verdicts import Verdict

# The answers that leave the scanner without a verdict from AnyRoad: no network, a captive
# portal's HTML, a 5xx. A 401 is not among them: that is for a supervisor to fix.
NO_USABLE_ANSWER = frozenset({"unreachable", "server_error"})


def already_let_in(attempt: Attempt, device: str, reentry: Reentry) -> Decision:
    """``already_scanned`` from this device's own record of letting the code in."""
    return Decision(
        Verdict.ALREADY_SCANNED,
        admits=reentry == "allow",
        first_scan=ScanRecord(device, attempt.at),
    )


def offline_decision(
    reply: Reply,
    *,
    qr_code: str,
    mode: Mode,
    policy: OfflinePolicy,
    door: bool,
    device: str,
    reentry: Reentry,
    let_in_before: Attempt | None,
) -> Decision | None:
    """The decision for a scan AnyRoad did not answer usably; None to show ``reply`` as it is."""
    if mode != "scan" or reply.kind not in NO_USABLE_ANSWER:
        return None
    if let_in_before is not None:
        return already_let_in(let_in_before, device, reentry)
    if policy == "accept" and (not door or parse_payload(qr_code) is not None):
        return Decision(Verdict.ACCEPTED_OFFLINE, admits=True)
    return None
