"""The AnyRoad Tickets API client: one keep-alive session, one deadline per call, typed replies.

Every way a request can end — a ticket, a documented problem, garbage, silence — becomes a
``Reply``; nothing raises into the scan loop. A scan is never retried here: it is not idempotent.
The one exception is a 401, which recorded nothing: with a token source that can refresh
(``device.auth``), the request is sent once more with a fresh token.

A call (its token fetch, the request and that one retry; name lookup, connect, TLS, send and
read) ends within ``timeout_s``: see ``device.net``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import requests
import urllib3

from device import net
from device.auth import Refreshable, TokenError
from device.bodies import BodyTooLargeError, json_object, post_capped
from device.tickets import log_safe
from device.version import VERSION

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # a ticket page is a few KB; anything near this is not our API
# Answers that say the scanner is set up wrong (URL or credential): a supervisor's job.
SETUP_KINDS = frozenset({"unauthorized", "setup_error"})
ReplyKind = Literal[
    "ticket", "problem", "unauthorized", "setup_error", "server_error", "unreachable"
]


@dataclass(frozen=True)
class ScanRecord:
    """One entry of a ticket's ``scans`` history."""

    device: str
    scanned_at: datetime | None  # None when the server sent a time we cannot read


@dataclass(frozen=True)
class TicketInfo:
    """The parts of an AnyRoad ticket the scanner shows or decides on."""

    id: str = ""
    type: str = ""
    slot_start: datetime | None = None
    slot_end: datetime | None = None
    scans: tuple[ScanRecord, ...] = ()


@dataclass(frozen=True)
class Reply:
    """How one API call ended. ``code`` is AnyRoad's problem code or a local reason."""

    kind: ReplyKind
    status: int | None = None
    code: str = ""
    ticket: TicketInfo | None = None
    request_id: str = ""
    server_time: datetime | None = None  # the response's Date header: the server's own clock
    detail: str = ""
    sent: bool = True  # False only when the request surely never left (refused, DNS, TLS)

    @property
    def answered(self) -> bool:
        """True when the server answered at all."""
        return self.kind != "unreachable"

    @property
    def online(self) -> bool:
        """The scanner is talking to AnyRoad: an answer, and not one that says it is set up
        wrong (a server that is not AnyRoad's, or that refuses its credential)."""
        return self.answered and self.kind not in SETUP_KINDS

    @property
    def may_have_recorded(self) -> bool:
        """A scan that may have been recorded although no usable answer came back.

        A timeout or a connection lost after sending, a 5xx, or a 2xx we could not read:
        the server may hold the scan. A refused connection or a 4xx surely does not.
        """
        if self.kind == "unreachable":
            return self.sent
        if self.kind == "server_error":
            return self.status is None or self.status >= 500 or 200 <= self.status < 300
        return False


class AnyRoadClient:
    """``AnyRoadClient("https://host/prefix", token=lambda: "…").scan("serial", "code")``."""

    def __init__(
        self,
        base_url: str,
        *,
        token: Callable[[], str],
        timeout_s: float,
        session: requests.Session | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._timeout_s = timeout_s
        self._session = net.bounded(session or requests.Session())
        self._session.trust_env = False  # no surprise proxies or .netrc credentials

    @property
    def base_url(self) -> str:
        return self._base_url

    def scan(self, device: str, qr_code: str) -> Reply:
        """Record a check-in: ``POST /tickets/scan {"device", "qr_code"}``."""
        return self._post("/tickets/scan", {"device": device, "qr_code": qr_code})

    def verify(self, qr_code: str) -> Reply:
        """Check a ticket without recording anything: ``POST /tickets/verify {"qr_code"}``."""
        return self._post("/tickets/verify", {"qr_code": qr_code})

    def close(self) -> None:
        self._session.close()

    def _post(self, path: str, body: Mapping[str, str]) -> Reply:
        try:
            payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate cannot travel as UTF-8
            return Reply(
                "problem", code="unencodable_code", detail="code is not valid Unicode", sent=False
            )
        try:
            with net.deadline(self._timeout_s):  # the token fetch and the retry are in it too
                token = self._token()
                reply = self._send(path, payload, token)
                # A 401 recorded nothing, so one retry with a fresh token is safe even for a scan.
                if reply.status == 401 and self._refreshed(token):
                    log.info("api token refused; retrying once with a fresh token path=%s", path)
                    reply = self._send(path, payload, self._token())
        except TokenError as error:
            # No token to send: this request never left (and a 401 before it recorded nothing).
            return Reply(error.kind, code=error.code, detail=error.detail, sent=False)
        return reply

    def _refreshed(self, rejected: str) -> bool:
        source = self._token
        return isinstance(source, Refreshable) and source.invalidate(rejected)

    def _send(self, path: str, payload: bytes, token: str) -> Reply:
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            "User-Agent": f"ticket-scanner/{VERSION}",
        }
        try:
            response, raw = post_capped(
                self._session,
                self._base_url + path,
                data=payload,
                headers=headers,
                timeout_s=self._timeout_s,
                limit=MAX_BODY_BYTES,
            )
            return _reply_from(response, raw)
        except BodyTooLargeError:
            log.warning("api error reason=response_too_large path=%s", path)
            return Reply("server_error", code="response_too_large")
        except requests.RequestException as error:
            return _unreachable(_reason(error), path, sent=not _never_sent(error))


# Most specific first: an SSLError is also a ConnectionError, a ConnectTimeout a Timeout. Each
# kind matches the requests exception or the urllib3 error it wraps (its MaxRetryError's reason).
_UNREACHABLE_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (net.NameResolutionTimeoutError, "dns_timeout"),
    (urllib3.exceptions.NameResolutionError, "dns_failed"),
    (requests.ConnectTimeout, "connect_timeout"),
    (requests.Timeout, "timeout"),
    (requests.exceptions.SSLError, "tls_error"),
    (requests.ConnectionError, "connection_failed"),
)


def _reply_from(response: requests.Response, raw: bytes) -> Reply:
    status = response.status_code
    body = json_object(raw)
    request_id = _request_id(body, response.headers)
    server_time = _http_date(response.headers.get("Date"))
    code = _text(body.get("code")) if body is not None else ""
    common: dict[str, Any] = {
        "status": status,
        "request_id": request_id,
        "server_time": server_time,
    }
    reply = _classify(status, body, code, common)
    if reply.kind != "ticket":
        # A setup error would repeat for every guest: device.api_health logs it once.
        level = logging.DEBUG if reply.kind in ("unauthorized", "setup_error") else logging.WARNING
        log.log(
            level,
            "api error status=%s code=%s request_id=%s detail=%s",
            status,
            log_safe(reply.code, 40),
            log_safe(request_id, 40) or "-",
            log_safe(reply.detail, 80),
        )
    return reply


# The endpoints exist only at these paths and take POST: these say the URL is wrong, whatever
# the body (the sandbox, like many frameworks, sends a problem body with its 404).
_WRONG_URL = frozenset({404, 405})


def _classify(status: int, body: dict[str, Any] | None, code: str, common: dict[str, Any]) -> Reply:
    # A 401/403 is a supervisor's job, with or without the documented body (a gateway's).
    if status in (401, 403):
        detail = _text(body.get("detail")) if body is not None else ""
        return Reply("unauthorized", code=code or f"http_{status}", detail=detail, **common)
    transient = status in (408, 429) or status >= 500 or status < 200
    if 400 <= status < 500 and not transient and not _is_problem(body, status):
        return _not_anyroad(status, body, common)
    if body is None or transient or 300 <= status < 400:
        return _server_error(status, body, code, common)
    detail = _text(body.get("detail"))
    if 200 <= status < 300:
        ticket = _ticket(body)
        if ticket is not None:
            return Reply("ticket", ticket=ticket, **common)
        return Reply("server_error", code="unexpected_shape", detail="no ticket", **common)
    ticket = _parse_ticket(body) if code.startswith("booking_") else None
    return Reply("problem", code=code, ticket=ticket, detail=detail, **common)


def _server_error(
    status: int, body: dict[str, Any] | None, code: str, common: dict[str, Any]
) -> Reply:
    """No usable answer: not JSON, a 5xx, a 408/429, a redirect."""
    if body is None:
        return Reply("server_error", code="not_json", detail=f"HTTP {status}", **common)
    detail = _text(body.get("detail"))
    return Reply("server_error", code=code or f"http_{status}", detail=detail, **common)


def _not_anyroad(status: int, body: dict[str, Any] | None, common: dict[str, Any]) -> Reply:
    """Only AnyRoad's own problem body is about the ticket; any other 4xx means a
    misconfigured base_url (a wrong prefix, another service), never NOT VALID."""
    why = "wrong_url" if status in _WRONG_URL or body is None else "not_anyroad"
    return Reply("setup_error", code=why, detail=f"HTTP {status}", **common)


def _is_problem(body: dict[str, Any] | None, status: int) -> bool:
    """AnyRoad's documented problem body: a ``code``, and the response's own ``status``.

    The contract's 400s all carry both (and type, title, detail, instance, request_id); a
    404 page, a proxy's error or another API's JSON does not. 404 and 405 never qualify.
    """
    if body is None or status in _WRONG_URL:
        return False
    code, echoed = body.get("code"), body.get("status")
    return isinstance(code, str) and bool(code) and type(echoed) is int and echoed == status


def _reason(error: requests.RequestException) -> str:
    cause = _cause(error)
    for kind, name in _UNREACHABLE_REASONS:
        if isinstance(error, kind) or isinstance(cause, kind):
            return name
    return type(error).__name__


def _cause(error: requests.RequestException) -> object:
    """The urllib3 error behind ``error``: requests wraps a MaxRetryError, whose reason says
    which phase failed (requests/adapters.py HTTPAdapter.send)."""
    wrapped = error.args[0] if error.args else None
    return getattr(wrapped, "reason", None)


def _never_sent(error: requests.RequestException) -> bool:
    """True when the request surely never reached the server: no connection was made.

    A ConnectTimeout also covers a name lookup that did not answer, a TLS handshake that did
    not finish, and a deadline that passed before the request began to go out (device.net)."""
    if isinstance(error, requests.ConnectTimeout | requests.exceptions.SSLError):
        return True
    return isinstance(_cause(error), urllib3.exceptions.NewConnectionError)


def _unreachable(reason: str, path: str, *, sent: bool) -> Reply:
    log.warning("api unreachable reason=%s sent=%s path=%s", reason, sent, path)
    return Reply("unreachable", code=reason, sent=sent)


def _ticket(envelope: dict[str, Any]) -> TicketInfo | None:
    items = envelope.get("items")
    if not isinstance(items, list) or not items or not isinstance(items[0], dict):
        return None
    return _parse_ticket(items[0])


def _parse_ticket(item: dict[str, Any]) -> TicketInfo | None:
    scans = item.get("scans", [])
    if not isinstance(scans, list) or not all(isinstance(scan, dict) for scan in scans):
        return None
    slot = item.get("time_slot")
    slot = slot if isinstance(slot, dict) else {}
    return TicketInfo(
        id=_text(item.get("id")),
        type=_text(item.get("type")),
        slot_start=_iso_time(slot.get("local_datetime_start")),
        slot_end=_iso_time(slot.get("local_datetime_end")),
        scans=tuple(
            ScanRecord(_text(scan.get("device")), _iso_time(scan.get("scanned_at")))
            for scan in scans
        ),
    )


def _text(value: object, limit: int = 200) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _request_id(body: dict[str, Any] | None, headers: Mapping[str, str]) -> str:
    from_body = _text(body.get("request_id"), 100) if body else ""
    return from_body or headers.get("X-Request-Id", "")[:100]


def _iso_time(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
