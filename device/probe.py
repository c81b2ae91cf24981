"""Does the configured API answer as AnyRoad? A harmless probe, for selftest and install.sh.

The probe verifies a code that cannot exist: a verify records nothing, and AnyRoad answers
an unknown code with its documented problem body. The outcome names what an operator must
fix: ``ok``, ``wrong_url`` (a 404, or a body that is not AnyRoad's), ``unauthorized`` (the
token or the OAuth client), ``unreachable`` (which of name lookup, connection, TLS or
timeout), or ``server_error`` (AnyRoad itself failing).

Example::

    result = probe_api(config.api)
    print(result.outcome, result.detail)
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from device.api import SETUP_KINDS, AnyRoadClient, Reply
from device.api_health import ApiProof, SetupAlarm, anyroad_answered
from device.auth import TokenError, TokenSource, token_source
from device.config import ApiConfig
from device.tickets import log_safe

log = logging.getLogger(__name__)
PROBE_CODE = "ticket-scanner-probe: not a ticket"
Outcome = Literal["ok", "wrong_url", "unauthorized", "unreachable", "server_error"]

_WHY_UNREACHABLE = {
    "dns_failed": "the name lookup failed",
    "dns_timeout": "the name lookup timed out",
    "connect_timeout": "the connection timed out",
    "timeout": "no answer in time",
    "tls_error": "TLS failed (certificate or protocol)",
    "connection_failed": "the connection was refused or lost",
    "token_timeout": "the token endpoint timed out",
    "token_tls_error": "TLS to the token endpoint failed",
    "token_unreachable": "the token endpoint cannot be reached",
}


@dataclass(frozen=True)
class ProbeResult:
    outcome: Outcome
    detail: str  # one line, terminal-safe, never a secret

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def probe_api(api: ApiConfig, *, token: TokenSource | None = None) -> ProbeResult:
    """Verify ``PROBE_CODE`` at ``api.base_url`` (fetching an OAuth token first, if set)."""
    bearer = token or token_source(api)
    try:
        if api.oauth:
            token_result = _probe_token(bearer, api.token_url)
            if token_result is not None:
                return token_result
        client = AnyRoadClient(api.base_url, token=bearer, timeout_s=api.timeout_s)
        try:
            with _quiet(logging.getLogger("device.api")):  # its 400 is the answer hoped for
                reply = client.verify(PROBE_CODE)
        finally:
            client.close()
    finally:
        if token is None:
            bearer.close()
    return result_for(reply, api.base_url)


@contextlib.contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """``logger``'s warnings from this thread held back: the result line says what the reply
    was. Other threads (the scan loop beside a start-up probe) still log as usual."""
    here = threading.get_ident()

    def others_only(record: logging.LogRecord) -> bool:
        return record.thread != here or record.levelno >= logging.ERROR

    logger.addFilter(others_only)
    try:
        yield
    finally:
        logger.removeFilter(others_only)


def first_contact(client: AnyRoadClient, proof: ApiProof, alarm: SetupAlarm) -> Reply | None:
    """Probe once at start when AnyRoad has never answered this configuration; None if it has.

    So the status line says "online" (or the setup error is logged) before the first guest,
    and the proof that allows offline acceptance is there before the network first fails.
    """
    if proof.proven:
        return None
    with _quiet(logging.getLogger("device.api")):
        reply = client.verify(PROBE_CODE)
    alarm.saw(reply)
    proof.saw(reply)
    if not anyroad_answered(reply) and reply.kind not in SETUP_KINDS:
        log.warning("first contact: %s", result_for(reply, client.base_url).detail)
    return reply


def _probe_token(bearer: TokenSource, token_url: str) -> ProbeResult | None:
    try:
        bearer()
    except TokenError as error:
        where = f"token endpoint {log_safe(token_url, 120)}"
        if error.kind == "unreachable":
            return ProbeResult("unreachable", f"{where}: {_why(error.code)}")
        return ProbeResult(
            "unauthorized", f"{where} refused the client ({log_safe(error.code, 40)})"
        )
    return None


def result_for(reply: Reply, base_url: str) -> ProbeResult:
    at = log_safe(base_url, 120)
    status = f"HTTP {reply.status}" if reply.status else "no HTTP answer"
    request_id = f", request_id {log_safe(reply.request_id, 40)}" if reply.request_id else ""
    if anyroad_answered(reply):
        return ProbeResult("ok", f"AnyRoad answered at {at} ({status}{request_id})")
    if reply.kind == "setup_error":
        return ProbeResult(
            "wrong_url", f"{at} answered {status}, not as AnyRoad's Tickets API: check base_url"
        )
    if reply.kind == "unauthorized":
        code = log_safe(reply.code, 40)
        return ProbeResult("unauthorized", f"{at} refused the credential ({status}, {code})")
    if reply.kind == "unreachable":
        return ProbeResult("unreachable", f"{at}: {_why(reply.code)}")
    if reply.status is not None and 200 <= reply.status < 400:
        # A 2xx that is no ticket page, or a redirect: a captive portal, another service,
        # or http:// where the API wants https://.
        return ProbeResult("wrong_url", f"{at} answered {status}, not with AnyRoad's JSON")
    code = log_safe(reply.code, 40)
    return ProbeResult("server_error", f"{at} answered {status} ({code}{request_id})")


def _why(code: str) -> str:
    return _WHY_UNREACHABLE.get(code, log_safe(code, 40))
