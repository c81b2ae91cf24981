"""AnyRoad-compatible sandbox server: the Tickets API for the demo, the tests and staff training.

Example:
    with SandboxServer() as sandbox:
        code = demo_tickets()[0].qr_code
        requests.post(f"{sandbox.url}/tickets/scan", json={"device": "gate-1", "qr_code": code},
                      headers={"Authorization": f"Bearer {DEMO_TOKEN}"}, timeout=5)

Besides the fixed DEMO_TOKEN, the ticket endpoints take tokens from an OAuth 2.0 client-credentials
endpoint, ``POST {url}/oauth/token`` (``sandbox.token_url``): HTTP Basic with DEMO_CLIENT_ID and
DEMO_CLIENT_SECRET, form body ``grant_type=client_credentials``. Its tokens expire after
``token_lifetime_s`` on the sandbox's monotonic ``clock``, or at once with ``expire_tokens()``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import hmac
import json
import logging
import secrets
import signal
import socket
import socketserver
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO
from urllib.parse import parse_qs, unquote_plus, urlsplit

if TYPE_CHECKING:
    from hal.ports import GrayPixels

_log = logging.getLogger(__name__)

DEMO_TOKEN = "sandbox-demo-token"  # noqa: S105 - public, sandbox-only; `serve` prints it
DEMO_CLIENT_ID = "sandbox-demo-client"
DEMO_CLIENT_SECRET = "sandbox-demo-secret"  # noqa: S105 - public, sandbox-only; `serve` prints it
TOKEN_LIFETIME_S = 3600  # AnyRoad's dashboard keys last 60 minutes
OAUTH_PATH = "/oauth/token"  # under the prefix, beside /tickets
MAX_BODY = 64 * 1024
EARLY_ENTRY = timedelta(minutes=30)
_DRAIN_MAX = 1024 * 1024  # drop an oversized body up to this size so the client reads the 413
_HUGE_PAD = 2 * 1024 * 1024
_SITE = "https://sandbox.anyroad.invalid"
_MALFORMED_TITLE = "Incorrect parameters provided"
_HOUR, _DAY = timedelta(hours=1), timedelta(days=1)
_CAPTIVE_PORTAL = (
    b"<!doctype html><html><head><title>Guest Wi-Fi</title></head>"
    b"<body><h1>Welcome! Accept the terms to get online.</h1>"
    b'<form method="post" action="/login"><button>Accept</button></form></body></html>'
)
_BOOKING_ERRORS = {
    "booking_canceled": ("Booking canceled", "the booking for this ticket was canceled"),
    "booking_in_past": ("Booking in the past", "this ticket's time slot has ended"),
    "booking_in_future": ("Booking in the future", "this ticket's time slot has not started yet"),
}
# Codes for the errors http.server itself raises (anything else is a 400 invalid_request).
_PROTOCOL_CODES = {414: "request_too_large", 431: "request_too_large", 501: "method_not_allowed"}
_NO_STORE = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))  # RFC 6749 5.1
_FORM = "application/x-www-form-urlencoded"
Endpoint = Literal["tickets", "token"]


class Fault(StrEnum):
    """A misbehaviour played instead of the normal answer to one ticket (or token) request."""

    SERVER_ERROR = "server_error"  # 500 with the documented server_error body
    HTML = "html"  # 200 text/html: a Wi-Fi captive portal
    GARBAGE = "garbage"  # 200 application/json that is not JSON
    WRONG_SHAPE = "wrong_shape"  # 200 JSON object without `items`
    EMPTY = "empty"  # 200 with an empty body
    REDIRECT = "redirect"  # 302 to another URL on this server
    RESET = "reset"  # connection reset, no answer at all
    LOST_ANSWER = "lost_answer"  # handled as usual (a scan is recorded), then reset: no answer
    SLOW = "slow"  # waits delay_s, then answers normally (a scan is recorded even if nobody waits)
    UNAUTHORIZED = "unauthorized"  # 401 as for a wrong token (token endpoint: invalid_client)
    HUGE = "huge"  # 200 page envelope padded to ~2 MB


@dataclass(frozen=True)
class DemoTicket:
    """A ticket the sandbox knows: `case` names what scanning it shows."""

    case: str
    qr_code: str
    description: str


@dataclass(frozen=True)
class SeenRequest:
    """One request as the sandbox received it, for tests to assert on."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass(frozen=True)
class _Spec:
    case: str
    description: str
    ids: tuple[int, int, int]  # booking_id, ticket_id, guest_id
    start: timedelta  # slot start, relative to now
    length: timedelta = 4 * _HOUR
    kind: str = "guest"
    canceled: bool = False
    scanned_ago: timedelta | None = None  # one earlier scan, by gate-2

    @property
    def qr_code(self) -> str:
        """AnyRoad's QR payload: a data URI of compact JSON ids."""
        keys = ("booking_id", "ticket_id", "guest_id")
        raw = json.dumps(dict(zip(keys, self.ids, strict=True)), separators=(",", ":"))
        return "data:application/json;base64," + base64.b64encode(raw.encode()).decode("ascii")


_SPECS = (
    _Spec("admitted", "valid now, not scanned yet", (1001, 2001, 3001), -_HOUR),
    _Spec("admitted_2", "2nd guest of the same booking, not scanned", (1001, 2002, 3002), -_HOUR),
    _Spec("admitted_3", "3rd guest of the same booking, not scanned", (1001, 2003, 3003), -_HOUR),
    _Spec(
        "already_scanned",
        "valid, scanned by gate-2 25 min ago",
        (1002, 2004, 3004),
        -_HOUR,
        scanned_ago=timedelta(minutes=25),
    ),
    _Spec("canceled", "booking canceled", (1003, 2005, 3005), -_HOUR, canceled=True),
    _Spec("too_early", "time slot starts tomorrow", (1004, 2006, 3006), _DAY),
    _Spec("too_late", "time slot ended yesterday", (1005, 2007, 3007), -26 * _HOUR, 2 * _HOUR),
    _Spec("addon", "valid add-on ticket, not scanned", (1001, 2008, 3001), -_HOUR, kind="addon"),
)


def demo_tickets() -> tuple[DemoTicket, ...]:
    """The sandbox's tickets; codes are fixed, so they can be printed once for training."""
    return tuple(DemoTicket(s.case, s.qr_code, s.description) for s in _SPECS)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return _as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Ticket:
    spec: _Spec
    start: datetime
    end: datetime
    booked: datetime
    canceled: datetime | None
    scans: list[tuple[str, datetime]]
    updated: datetime

    @classmethod
    def build(cls, spec: _Spec, now: datetime) -> _Ticket:
        start, booked = now + spec.start, now - 7 * _DAY
        scans = [("gate-2", now - spec.scanned_ago)] if spec.scanned_ago else []
        canceled = now - _DAY if spec.canceled else None
        updated = scans[-1][1] if scans else canceled or booked
        return cls(spec, start, start + spec.length, booked, canceled, scans, updated)

    def refusal(self, now: datetime) -> str | None:
        """The 400 code AnyRoad would answer at `now`, or None when the ticket is good."""
        if self.canceled is not None:
            return "booking_canceled"
        if now > self.end:
            return "booking_in_past"
        if now < self.start - EARLY_ENTRY:
            return "booking_in_future"
        return None

    def to_json(self) -> dict[str, Any]:
        """The TicketItemResource."""
        booking_id, ticket_id, guest_id = self.spec.ids
        return {
            "type": self.spec.kind,
            "qr_code": self.spec.qr_code,
            "experience": f"{_SITE}/experiences/1",
            "booking": f"{_SITE}/bookings/{booking_id}",
            "guest": f"{_SITE}/guests/{guest_id}",
            "time_slot": {
                "local_datetime_start": _iso(self.start),
                "local_datetime_end": _iso(self.end),
            },
            "scans": [{"device": d, "scanned_at": _iso(at)} for d, at in self.scans],
            "id": str(ticket_id),
            "created": _iso(self.booked),
            "updated": _iso(self.updated),
        }


def _problem(
    status: int, code: str, detail: str, instance: str, rid: str, *, title: str = ""
) -> dict[str, Any]:
    return {
        "type": f"{_SITE}/problems/{code}",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": instance,
        "request_id": rid,
    }


def _booking_problem(ticket: _Ticket, code: str, instance: str, rid: str) -> dict[str, Any]:
    title, detail = _BOOKING_ERRORS[code]
    item = ticket.to_json()
    body = {"type": item["type"], "title": title, "status": 400, "detail": detail, "code": code}
    body |= {"instance": instance, "request_id": rid, "booking_date": _iso(ticket.booked)}
    if code == "booking_canceled" and ticket.canceled is not None:
        body["canceled_date"] = _iso(ticket.canceled)
    keys = ("booking", "qr_code", "experience", "guest", "time_slot", "scans")
    return body | {key: item[key] for key in keys}


def _page(url: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    # The contract types the paging links as strings, so "no page" is "" rather than null.
    return {"url": url, "next_url": "", "previous_url": "", "first_url": url, "items": items}


class _BadRequestError(ValueError):
    """The request body is not what the endpoint takes; the message says why."""


def _parse_body(action: str, body: bytes) -> tuple[str, str]:
    """Return (qr_code, device) from a request body, or raise _BadRequestError."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise _BadRequestError("body must be a JSON object") from exc
    if not isinstance(data, dict):
        raise _BadRequestError("body must be a JSON object")
    qr_code, device = data.get("qr_code"), data.get("device", "")
    if not isinstance(qr_code, str):
        raise _BadRequestError("qr_code must be a string")
    if action == "scan" and not (isinstance(device, str) and device):
        raise _BadRequestError("device must be a non-empty string")
    return qr_code, device if isinstance(device, str) else ""


class _Issuer:
    """The OAuth side: checks client credentials and issues opaque tokens that expire."""

    def __init__(
        self, client_id: str, secret: str, lifetime_s: int, clock: Callable[[], float]
    ) -> None:
        self.lifetime_s, self.clock = lifetime_s, clock
        self._client = f"{client_id}:{secret}".encode()
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}

    def client_ok(self, authorization: str | None) -> bool:
        """HTTP Basic with the client's id and secret, each form-encoded (RFC 6749 2.3.1)."""
        scheme, _, encoded = (authorization or "").partition(" ")
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        client_id, colon, secret = decoded.partition(":")
        given = f"{unquote_plus(client_id)}:{unquote_plus(secret)}".encode()
        matches = hmac.compare_digest(given, self._client)
        return scheme.lower() == "basic" and bool(colon) and matches

    def issue(self) -> str:
        token, now = secrets.token_urlsafe(32), self.clock()
        with self._lock:
            self._expiry = {t: at for t, at in self._expiry.items() if at > now}
            self._expiry[token] = now + self.lifetime_s
        return token

    def valid(self, token: str) -> bool:
        with self._lock:
            return self.clock() < self._expiry.get(token, -1.0)

    def expire_all(self) -> None:
        with self._lock:
            self._expiry.clear()


class _State:
    """What the handler threads share: settings, the catalog, queued faults, seen requests."""

    def __init__(
        self, token: str, prefix: str, now: Callable[[], datetime], issuer: _Issuer
    ) -> None:
        self.token, self.prefix, self.now, self.issuer = token, prefix, now, issuer
        self.on_request: Callable[[SeenRequest], None] | None = None
        self._lock = threading.Lock()
        self._tickets = self._catalog()
        self._faults: dict[Endpoint, deque[tuple[Fault, float]]] = {
            "tickets": deque(),
            "token": deque(),
        }
        self._seen: list[SeenRequest] = []

    def _catalog(self) -> dict[str, _Ticket]:
        now = _as_utc(self.now())
        return {spec.qr_code: _Ticket.build(spec, now) for spec in _SPECS}

    def reset(self) -> None:
        with self._lock:
            self._tickets = self._catalog()
            for queue in self._faults.values():
                queue.clear()
            self._seen.clear()

    def inject(self, fault: Fault, count: int, delay_s: float, endpoint: Endpoint) -> None:
        with self._lock:
            self._faults[endpoint].extend([(fault, delay_s)] * count)

    def next_fault(self, endpoint: Endpoint) -> tuple[Fault, float] | None:
        with self._lock:
            queue = self._faults[endpoint]
            return queue.popleft() if queue else None

    def record(self, request: SeenRequest) -> None:
        with self._lock:
            self._seen.append(request)
        if self.on_request is not None:
            self.on_request(request)  # before the answer: tests look at the client's state

    def seen(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._seen)

    def route(self, path: str) -> str | None:
        """'scan', 'verify' or 'token' for the paths under the prefix, else None."""
        if path == self.prefix + OAUTH_PATH:
            return "token"
        for action in ("scan", "verify"):
            if path == f"{self.prefix}/tickets/{action}":
                return action
        return None

    def authorized(self, authorization: str | None) -> bool:
        """The fixed token, or an issued one that has not expired."""
        if authorization == f"Bearer {self.token}":
            return True
        scheme, _, token = (authorization or "").partition(" ")
        return scheme == "Bearer" and self.issuer.valid(token)

    def answer(self, action: str, body: bytes, instance: str, url: str, rid: str) -> _Reply:
        """Check (and for a scan, record) a ticket; the reply AnyRoad would give."""
        try:
            qr_code, device = _parse_body(action, body)
        except _BadRequestError as exc:
            problem = _problem(
                400, "invalid_request", str(exc), instance, rid, title=_MALFORMED_TITLE
            )
            return _Reply.of_json(400, problem)
        now = _as_utc(self.now())
        with self._lock:
            ticket = self._tickets.get(qr_code)
            if ticket is None:
                # AnyRoad documents no "unknown ticket" error; we answer it as a malformed request.
                detail = "no ticket matches this qr_code"
                problem = _problem(
                    400, "ticket_not_found", detail, instance, rid, title=_MALFORMED_TITLE
                )
                return _Reply.of_json(400, problem)
            refusal = ticket.refusal(now)
            if refusal is not None:
                return _Reply.of_json(400, _booking_problem(ticket, refusal, instance, rid))
            if action == "scan":
                ticket.scans.append((device, now))
                ticket.updated = now
            return _Reply.of_json(200, _page(url, [ticket.to_json()]))


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of_json(cls, status: int, payload: Any, *headers: tuple[str, str]) -> _Reply:
        return cls(status, json.dumps(payload).encode(), headers=headers)


def _hang_up(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)


class _HTTPServer(ThreadingHTTPServer):
    """Threaded HTTP server that can hang up its keep-alive connections when it stops."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: _State) -> None:
        self.state = state
        self.stopping = threading.Event()
        self.accepted = 0
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, _Handler)
        self.origin = f"http://{address[0]}:{self.server_port}"

    def server_bind(self) -> None:
        # Skip HTTPServer's socket.getfqdn(): a reverse DNS lookup that can stall offline.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: object, client_address: object) -> None:
        # Quiet: tests make clients misbehave on purpose.
        _log.debug("sandbox connection failed", exc_info=True)

    def track(self, conn: socket.socket) -> None:
        with self._conn_lock:
            self.accepted += 1
            self._connections.add(conn)
            if not self.stopping.is_set():
                return
        _hang_up(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._conn_lock:
            self._connections.discard(conn)

    def hang_up_all(self) -> None:
        self.stopping.set()
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            _hang_up(conn)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.1"  # answer garbage with a status line, never as HTTP/0.9
    timeout = 60  # close idle keep-alive connections eventually
    disable_nagle_algorithm = True  # headers and body go out in two writes; don't delay the body
    server: _HTTPServer
    rid = ""
    answered = False

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: object) -> None:
        """Print nothing: the demo and the tests own the terminal."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer http.server's own protocol errors (bad request line, huge headers) in JSON."""
        self.rid, self.close_connection = str(uuid.uuid4()), True
        detail = (message or HTTPStatus(code).phrase)[:200]
        code_name = _PROTOCOL_CODES.get(code, "invalid_request")
        self._write(_Reply.of_json(code, _problem(code, code_name, detail, "", self.rid)))

    def do_POST(self) -> None:
        """Answer any method: the ticket paths take POST, the rest is a JSON problem."""
        self.rid, self.answered = str(uuid.uuid4()), False
        try:
            reply = self._respond()
            if reply is not None:
                self._write(reply)
        except OSError:
            self.close_connection = True  # the client went away
        except Exception:  # a client must never kill a handler thread
            _log.debug("sandbox handler failed", exc_info=True)
            self.close_connection = True
            if not self.answered:
                with contextlib.suppress(OSError):
                    self._write(self._error(500, "server_error", "please try again later"))

    # http.server dispatches on do_<METHOD>; every method gets a JSON answer.
    do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_POST  # noqa: N815

    def _respond(self) -> _Reply | None:
        """The reply to this request, or None when nothing is to be sent."""
        state, path = self.server.state, urlsplit(self.path).path
        body = self._read_body()
        if body is None or isinstance(body, _Reply):
            return body
        state.record(SeenRequest(self.command, self.path, dict(self.headers.items()), body))
        action = state.route(path)
        if action is None or self.command != "POST":
            return self._misrouted(action)
        endpoint: Endpoint = "token" if action == "token" else "tickets"
        fault, delay_s = state.next_fault(endpoint) or (None, 0.0)
        if fault is Fault.SLOW:
            if self.server.stopping.wait(delay_s):
                self.close_connection = True  # stopping: abandon the request
                return None
        elif fault is not None:
            return self._play(fault, endpoint, lambda: self._ticket_answer(action, body, path))
        if action == "token":
            return self._issue_token(body)
        return self._ticket_answer(action, body, path)

    def _ticket_answer(self, action: str, body: bytes, path: str) -> _Reply:
        state = self.server.state
        if not state.authorized(self.headers.get("Authorization")):
            return self._unauthorized()
        return state.answer(action, body, path, self.server.origin + self.path, self.rid)

    def _issue_token(self, body: bytes) -> _Reply:
        """RFC 6749 4.4: the client-credentials grant, client authenticated by HTTP Basic."""
        issuer = self.server.state.issuer
        if not issuer.client_ok(self.headers.get("Authorization")):
            return self._invalid_client()
        form_type = self.headers.get("Content-Type", "").partition(";")[0].strip().lower()
        try:
            form = parse_qs(body.decode("ascii"), max_num_fields=10) if form_type == _FORM else None
        except (UnicodeDecodeError, ValueError):
            form = None
        if form is None:
            return _oauth_error(400, "invalid_request", f"send {_FORM}")
        grant = form.get("grant_type", [])
        if len(grant) != 1:
            return _oauth_error(400, "invalid_request", "send one grant_type")
        if grant != ["client_credentials"]:
            return _oauth_error(400, "unsupported_grant_type", "only client_credentials")
        answer = {
            "access_token": issuer.issue(),
            "token_type": "Bearer",
            "expires_in": issuer.lifetime_s,
        }
        return _Reply.of_json(200, answer, *_NO_STORE)

    def _invalid_client(self) -> _Reply:
        challenge = ("WWW-Authenticate", 'Basic realm="AnyRoad sandbox"')
        return _oauth_error(401, "invalid_client", "client authentication failed", challenge)

    def _misrouted(self, action: str | None) -> _Reply:
        if action is None:
            return self._error(404, "not_found", "no such endpoint")
        return self._error(405, "method_not_allowed", "use POST", ("Allow", "POST"))

    def _read_body(self) -> bytes | _Reply | None:
        """The body; or the reply when its framing is unusable; None if the client left."""
        lengths = set(self.headers.get_all("Content-Length") or ["0"])
        raw = lengths.pop().strip() if len(lengths) == 1 else ""
        if "Transfer-Encoding" in self.headers or not (raw.isascii() and raw.isdigit()):
            self.close_connection = True  # the body's end is unknown, so the connection is lost
            return self._error(400, "invalid_request", "send one valid Content-Length")
        length = int(raw)
        if length > MAX_BODY:
            self._drain(length)
            return self._error(413, "request_too_large", f"body over {MAX_BODY} bytes")
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            return None
        return body

    def _drain(self, length: int) -> None:
        # Reading the body lets the client finish sending and see the 413 rather than a reset.
        left = length if length <= _DRAIN_MAX else 0
        while left > 0 and (chunk := self.rfile.read(min(left, MAX_BODY))):
            left -= len(chunk)
        self.close_connection = self.close_connection or length > _DRAIN_MAX or left > 0

    def _play(
        self, fault: Fault, endpoint: Endpoint, answer: Callable[[], _Reply]
    ) -> _Reply | None:
        """The fault's reply, or None when nothing is to be sent. ``answer`` handles the request."""
        reply: _Reply | None = None
        match fault:
            case Fault.SLOW:
                pass  # _respond waits, then answers normally
            case Fault.RESET:
                self._reset()
            case Fault.LOST_ANSWER:
                if endpoint == "tickets":
                    answer()  # recorded at AnyRoad; the answer never arrives
                self._reset()
            case Fault.SERVER_ERROR:
                reply = self._error(500, "server_error", "please try again later")
            case Fault.UNAUTHORIZED:
                reply = self._invalid_client() if endpoint == "token" else self._unauthorized()
            case Fault.HTML:
                reply = _Reply(200, _CAPTIVE_PORTAL, "text/html; charset=utf-8")
            case Fault.GARBAGE:
                reply = _Reply(200, b'{"url": "\x00\xff\xfe<<<not json')
            case Fault.WRONG_SHAPE:
                reply = _Reply.of_json(200, {"status": "ok", "message": "ticket accepted"})
            case Fault.EMPTY:
                reply = _Reply(200)
            case Fault.REDIRECT:
                reply = _Reply(302, headers=(("Location", f"{self.server.origin}/portal/login"),))
            case Fault.HUGE:
                page = _page(self.server.origin + self.path, [])
                reply = _Reply.of_json(200, page | {"padding": "x" * _HUGE_PAD})
        return reply

    def _reset(self) -> None:
        # SO_LINGER 0 makes close() send RST; rfile holds a socket reference, so close it first.
        linger = struct.pack("ii", 1, 0)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        self.close_connection = True
        self.rfile.close()
        self.connection.close()

    def _error(self, status: int, code: str, detail: str, *headers: tuple[str, str]) -> _Reply:
        instance = urlsplit(self.path).path
        return _Reply.of_json(status, _problem(status, code, detail, instance, self.rid), *headers)

    def _unauthorized(self) -> _Reply:
        detail = "please verify your authorization token is correct and has not expired"
        instance = urlsplit(self.path).path
        title = "Authorization token invalid"
        problem = _problem(401, "invalid_bearer_token", detail, instance, self.rid, title=title)
        return _Reply.of_json(401, problem, ("WWW-Authenticate", "Bearer"))

    def _write(self, reply: _Reply) -> None:
        self.answered = True
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("X-Request-Id", self.rid)
        for name, value in reply.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)


def _oauth_error(status: int, error: str, description: str, *headers: tuple[str, str]) -> _Reply:
    """An RFC 6749 5.2 error body."""
    body = {"error": error, "error_description": description}
    return _Reply.of_json(status, body, *_NO_STORE, *headers)


class SandboxServer:
    """An AnyRoad Tickets API stand-in on a daemon thread; see the module docstring.

    ``now`` is the wall clock the tickets' time slots follow; ``clock`` is the monotonic one
    issued tokens expire on. Tests fake either.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: str = DEMO_TOKEN,
        prefix: str = "/sandbox/v1",
        now: Callable[[], datetime] = _utc_now,
        client_id: str = DEMO_CLIENT_ID,
        client_secret: str = DEMO_CLIENT_SECRET,
        token_lifetime_s: int = TOKEN_LIFETIME_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        path = prefix.strip("/")
        issuer = _Issuer(client_id, client_secret, token_lifetime_s, clock)
        self._state = _State(token, f"/{path}" if path else "", now, issuer)
        self._httpd = _HTTPServer((host, port), self._state)
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def url(self) -> str:
        """Base URL, prefix included: clients append /tickets/scan."""
        return self._httpd.origin + self._state.prefix

    @property
    def token_url(self) -> str:
        """The OAuth token endpoint: ``{url}/oauth/token``."""
        return self.url + OAUTH_PATH

    @property
    def token_requests(self) -> int:
        """Requests to the token endpoint received so far (since the last reset)."""
        path = self._state.prefix + OAUTH_PATH
        return sum(urlsplit(seen.path).path == path for seen in self._state.seen())

    def expire_tokens(self) -> None:
        """Expire every token issued so far; the fixed token keeps working."""
        self._state.issuer.expire_all()

    @property
    def requests_seen(self) -> list[SeenRequest]:
        """A copy of the requests received so far, oldest first."""
        return self._state.seen()

    def seen(self) -> list[SeenRequest]:
        """A copy of the requests received so far, oldest first."""
        return self._state.seen()

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted so far (keep-alive reuses one)."""
        return self._httpd.accepted

    def start(self) -> SandboxServer:
        """Serve on a daemon thread; returns self."""
        if self._stopped:
            raise RuntimeError("a stopped SandboxServer cannot be restarted")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, name="anyroad-sandbox", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, hang up open connections and release the port; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._httpd.hang_up_all()
        if self._thread is not None:
            # Shutting the listener down wakes serve_forever now rather than at its next poll.
            with contextlib.suppress(OSError):
                self._httpd.socket.shutdown(socket.SHUT_RDWR)
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()

    def on_request(self, hook: Callable[[SeenRequest], None] | None) -> None:
        """Call ``hook`` with each request as it arrives, before it is answered."""
        self._state.on_request = hook

    def inject(
        self,
        fault: Fault,
        *,
        count: int = 1,
        delay_s: float = 0.0,
        endpoint: Endpoint = "tickets",
    ) -> None:
        """Queue `count` faults; each request to `endpoint` takes the oldest of its queue."""
        self._state.inject(fault, count, delay_s, endpoint)

    def reset(self) -> None:
        """Restore the catalog (from now()), and clear queued faults and seen requests.

        Issued tokens stay valid: a client's cached token survives a reset.
        """
        self._state.reset()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _shorten(qr_code: str) -> str:
    head, _, payload = qr_code.partition(",")
    return f"{head},{payload[:4]}...{payload[-8:]}"


def _write_banner(url: str, token: str, out: TextIO, client_id: str, client_secret: str) -> None:
    if token == DEMO_TOKEN:
        auth_note = f"{DEMO_TOKEN}  (the public demo token: sandbox only, not an AnyRoad key)"
    else:
        auth_note = "a custom token (not shown)"
    client_note = "a custom secret (not shown)"
    if client_secret == DEMO_CLIENT_SECRET:
        client_note = f"{DEMO_CLIENT_SECRET}  (the public demo secret: sandbox only)"
    width = max(len(spec.description) for spec in _SPECS)
    lines = [
        f"AnyRoad sandbox: {url}",
        f"  token: {auth_note}",
        f"  OAuth client credentials (HTTP Basic): token_url = {url}{OAUTH_PATH}",
        f"    client_id: {client_id}",
        f"    client_secret: {client_note}",
        "",
    ]
    lines.append(f"  {'case':<16} {'description':<{width}}  booking/ticket/guest  qr_code")
    for spec in _SPECS:
        ids = "/".join(map(str, spec.ids))
        row = f"{spec.case:<16} {spec.description:<{width}}  {ids:<20}  {_shorten(spec.qr_code)}"
        lines.append("  " + row)
    lines += [
        "",
        "  (codes shortened: ticket-scanner sandbox --codes prints them whole)",
        "",
        "Ctrl-C stops the sandbox.",
    ]
    out.write("\n".join(lines) + "\n")
    out.flush()


def _wait_forever() -> None:
    threading.Event().wait()


class SandboxError(Exception):
    """The sandbox cannot start or write what it was asked to; the message says why."""


@contextlib.contextmanager
def _interrupt_once() -> Iterator[None]:
    """Ctrl-C (or SIGTERM) interrupts once; any later one is ignored, to the process's end.

    A second KeyboardInterrupt landing inside threading's shutdown leaves a traceback
    ("release unlocked lock"), and one landing after Python's own handler is back (or during
    interpreter exit) kills the process with SIGINT: neither is a clean stop.
    Only the main thread can set handlers; elsewhere (tests) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    fired = False

    def first(signum: int, frame: object) -> None:
        nonlocal fired
        fired = True
        for each in signals:
            signal.signal(each, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous = {each: signal.signal(each, first) for each in signals}
    try:
        yield
    finally:
        if not fired:  # never interrupted (an error, or a test): put things back as they were
            for each, handler in previous.items():
                signal.signal(each, handler)


def _listening(host: str, port: int, **options: Any) -> SandboxServer:
    """A bound SandboxServer, or SandboxError naming the host and port it could not have."""
    try:
        return SandboxServer(host, port, **options)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise SandboxError(f"port {port} on {host} is in use") from None
        why = error.strerror or str(error)
        raise SandboxError(f"cannot listen on {host} port {port}: {why}") from None


def serve(
    host: str,
    port: int,
    token: str,
    out: TextIO,
    *,
    client_id: str = DEMO_CLIENT_ID,
    client_secret: str = DEMO_CLIENT_SECRET,
) -> None:
    """Run a sandbox in the foreground until Ctrl-C, after writing its URL and tickets to `out`.

    Raises SandboxError when ``host:port`` cannot be listened on (in use, not this machine's).
    """
    server = _listening(host, port, token=token, client_id=client_id, client_secret=client_secret)
    # The handlers go in before the server stops: a Ctrl-C while it stops is ignored.
    with _interrupt_once(), server as sandbox, contextlib.suppress(KeyboardInterrupt):
        _write_banner(sandbox.url, token, out, client_id, client_secret)
        _wait_forever()


def write_codes(out: TextIO) -> None:
    """Every demo ticket's case and its whole QR code, one per line, for pasting into ``scan``."""
    for ticket in demo_tickets():
        out.write(f"{ticket.case:<16} {ticket.qr_code}\n")
    out.flush()


def write_frames(folder: Path) -> list[Path]:
    """A camera folder for ``images:``: 01-admitted.png, ... one demo ticket's code in each.

    Refuses (SandboxError) a folder that exists and is not empty: nothing is overwritten.
    """
    if folder.exists() and not folder.is_dir():
        raise SandboxError(f"{folder} is not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise SandboxError(f"{folder} is not empty; give a new or empty folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return [
            _write_frame(folder / f"{number:02d}-{ticket.case}.png", ticket.qr_code)
            for number, ticket in enumerate(demo_tickets(), start=1)
        ]
    except OSError as error:
        raise SandboxError(f"{folder}: cannot write frames: {error.strerror or error}") from None


def camera_frame(code: str) -> GrayPixels:
    """A grey 640x480 camera frame with ``code`` as a QR symbol in its middle."""
    import numpy as np  # noqa: PLC0415 - only --frames and selftest draw
    import zxingcpp  # noqa: PLC0415

    symbol = zxingcpp.create_barcode(code, zxingcpp.BarcodeFormat.QRCode)
    tile = np.asarray(zxingcpp.write_barcode_to_image(symbol, scale=4), dtype=np.uint8)
    frame = np.full((480, 640), 120, dtype=np.uint8)
    top, left = (480 - tile.shape[0]) // 2, (640 - tile.shape[1]) // 2
    frame[top : top + tile.shape[0], left : left + tile.shape[1]] = tile
    return frame


def _write_frame(path: Path, code: str) -> Path:
    from PIL import Image  # noqa: PLC0415 - only --frames draws

    Image.fromarray(camera_frame(code)).save(path)
    return path
