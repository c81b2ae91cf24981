"""The AnyRoad sandbox over real HTTP on 127.0.0.1, with a fixed clock."""

from __future__ import annotations

import base64
import io
import json
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from device import sandbox
from device.sandbox import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TOKEN,
    Fault,
    SandboxServer,
    demo_tickets,
)
from tests.fakes import FakeClock

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
CODES = {t.case: t.qr_code for t in demo_tickets()}
PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "instance", "request_id"}
TICKET_KEYS = {"booking", "qr_code", "experience", "guest", "time_slot", "scans"}
BOOKING_ERROR_KEYS = PROBLEM_KEYS | TICKET_KEYS | {"booking_date"}
ITEM_KEYS = TICKET_KEYS | {"type", "id", "created", "updated"}
SCAN_PATH = "/sandbox/v1/tickets/scan"


class Clock:
    """A settable clock for the sandbox."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer(now=lambda: NOW) as srv:
        yield srv


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # no proxies for loopback
        session.headers["Authorization"] = f"Bearer {DEMO_TOKEN}"
        yield session


def scan(
    http: requests.Session, server: SandboxServer, case: str, device: str = "gate-1"
) -> requests.Response:
    body = {"device": device, "qr_code": CODES[case]}
    return http.post(f"{server.url}/tickets/scan", json=body, timeout=5)


def verify(http: requests.Session, server: SandboxServer, case: str) -> requests.Response:
    return http.post(f"{server.url}/tickets/verify", json={"qr_code": CODES[case]}, timeout=5)


def item(response: requests.Response) -> Any:
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert len(items) == 1
    return items[0]


def assert_problem(response: requests.Response, status: int, code: str) -> Any:
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["request_id"] == response.headers["X-Request-Id"]
    uuid.UUID(body["request_id"])
    return body


def port_of(server: SandboxServer) -> int:
    return int(server.url.split(":")[2].split("/")[0])


def raw_exchange(server: SandboxServer, data: bytes) -> bytes:
    """Send raw bytes and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# Demo tickets


def test_demo_codes_are_anyroad_data_uris_with_ids() -> None:
    tickets = demo_tickets()
    assert tickets == demo_tickets()
    assert {"admitted", "admitted_2", "admitted_3", "already_scanned", "canceled"} <= set(CODES)
    assert {"too_early", "too_late", "addon"} <= set(CODES)
    assert len(set(CODES.values())) == len(tickets)
    prefix = "data:application/json;base64,"
    for ticket in tickets:
        assert ticket.qr_code.startswith(prefix)
        ids = json.loads(base64.b64decode(ticket.qr_code.removeprefix(prefix)))
        assert set(ids) == {"booking_id", "ticket_id", "guest_id"}
        assert all(isinstance(value, int) for value in ids.values())
    booking = json.loads(base64.b64decode(CODES["admitted_2"].removeprefix(prefix)))["booking_id"]
    first = json.loads(base64.b64decode(CODES["admitted"].removeprefix(prefix)))["booking_id"]
    assert booking == first


# 200 answers


def test_scan_admits_and_records_the_scan(server: SandboxServer, http: requests.Session) -> None:
    response = scan(http, server, "admitted", device="gate-7")
    assert response.headers["Content-Type"] == "application/json"
    uuid.UUID(response.headers["X-Request-Id"])
    page = response.json()
    url = f"{server.url}/tickets/scan"
    assert page == {**page, "url": url, "first_url": url, "next_url": "", "previous_url": ""}
    ticket = item(response)
    assert set(ticket) == ITEM_KEYS
    assert ticket["type"] == "guest"
    assert ticket["qr_code"] == CODES["admitted"]
    assert ticket["experience"].startswith("https://sandbox.anyroad.invalid/experiences/")
    assert ticket["time_slot"] == {
        "local_datetime_start": "2024-06-01T11:00:00Z",
        "local_datetime_end": "2024-06-01T15:00:00Z",
    }
    assert ticket["scans"] == [{"device": "gate-7", "scanned_at": "2024-06-01T12:00:00Z"}]
    assert ticket["updated"] == "2024-06-01T12:00:00Z"


def test_second_scan_shows_both_scans(server: SandboxServer, http: requests.Session) -> None:
    scan(http, server, "admitted", device="gate-1")
    scans = item(scan(http, server, "admitted", device="gate-3"))["scans"]
    assert [s["device"] for s in scans] == ["gate-1", "gate-3"]


def test_verify_records_nothing(server: SandboxServer, http: requests.Session) -> None:
    assert item(verify(http, server, "admitted"))["scans"] == []
    assert item(verify(http, server, "admitted"))["scans"] == []
    assert len(item(scan(http, server, "admitted"))["scans"]) == 1
    assert len(item(verify(http, server, "admitted"))["scans"]) == 1


def test_already_scanned_shows_the_earlier_scan(
    server: SandboxServer, http: requests.Session
) -> None:
    earlier = {"device": "gate-2", "scanned_at": "2024-06-01T11:35:00Z"}
    assert item(verify(http, server, "already_scanned"))["scans"] == [earlier]
    scans = item(scan(http, server, "already_scanned"))["scans"]
    assert scans == [earlier, {"device": "gate-1", "scanned_at": "2024-06-01T12:00:00Z"}]


def test_training_guests_share_a_booking(server: SandboxServer, http: requests.Session) -> None:
    tickets = [item(scan(http, server, case)) for case in ("admitted", "admitted_2", "admitted_3")]
    assert len({t["booking"] for t in tickets}) == 1
    assert len({t["guest"] for t in tickets}) == 3
    assert all(len(t["scans"]) == 1 for t in tickets)


def test_concurrent_scans_are_all_recorded(server: SandboxServer) -> None:
    def scan_once(n: int) -> int:
        with requests.Session() as session:
            session.trust_env = False
            session.headers["Authorization"] = f"Bearer {DEMO_TOKEN}"
            return scan(session, server, "admitted", device=f"gate-{n}").status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(scan_once, range(8))) == {200}
    assert len(server.seen()) == 8
    with requests.Session() as http:
        http.trust_env = False
        http.headers["Authorization"] = f"Bearer {DEMO_TOKEN}"
        scans = item(verify(http, server, "admitted"))["scans"]
    assert sorted(s["device"] for s in scans) == [f"gate-{n}" for n in range(8)]


def test_addon_is_a_valid_addon_ticket(server: SandboxServer, http: requests.Session) -> None:
    assert item(scan(http, server, "addon"))["type"] == "addon"


# 400 answers


@pytest.mark.parametrize("action", ["scan", "verify"])
@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("canceled", "booking_canceled"),
        ("too_early", "booking_in_future"),
        ("too_late", "booking_in_past"),
    ],
)
def test_booking_errors(
    server: SandboxServer, http: requests.Session, action: str, case: str, code: str
) -> None:
    send = scan if action == "scan" else verify
    body = assert_problem(send(http, server, case), 400, code)
    extra = {"canceled_date"} if case == "canceled" else set()
    assert set(body) == BOOKING_ERROR_KEYS | extra
    assert body["type"] == "guest"
    assert body["instance"] == f"/sandbox/v1/tickets/{action}"
    assert body["qr_code"] == CODES[case]
    assert body["scans"] == []
    assert body["booking_date"] == "2024-05-25T12:00:00Z"
    assert set(body["time_slot"]) == {"local_datetime_start", "local_datetime_end"}
    assert send(http, server, case).json()["scans"] == []  # a refused scan records nothing


def test_booking_error_dates(server: SandboxServer, http: requests.Session) -> None:
    assert scan(http, server, "canceled").json()["canceled_date"] == "2024-05-31T12:00:00Z"
    slot = scan(http, server, "too_early").json()["time_slot"]
    assert slot["local_datetime_start"] == "2024-06-02T12:00:00Z"
    slot = scan(http, server, "too_late").json()["time_slot"]
    assert slot["local_datetime_end"] == "2024-05-31T12:00:00Z"


def test_unknown_code_is_a_malformed_problem(server: SandboxServer, http: requests.Session) -> None:
    body = {"device": "gate-1", "qr_code": "PAPER-LIST-0042"}
    response = http.post(f"{server.url}/tickets/scan", json=body, timeout=5)
    problem = assert_problem(response, 400, "ticket_not_found")
    assert set(problem) == PROBLEM_KEYS
    assert problem["title"] == "Incorrect parameters provided"
    assert problem["instance"] == SCAN_PATH


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("scan", b"not json"),
        ("scan", b""),
        ("scan", b"\xff\xfe\x00garbage"),
        ("scan", b'["gate-1", "code"]'),
        ("scan", b"[" * 30_000),
        ("scan", b'{"qr_code": "x"}'),
        ("scan", b'{"device": "", "qr_code": "x"}'),
        ("scan", b'{"device": 7, "qr_code": "x"}'),
        ("scan", b'{"device": "gate-1"}'),
        ("scan", b'{"device": "gate-1", "qr_code": 12}'),
        ("verify", b'{"qr_code": null}'),
        ("verify", b"{}"),
    ],
)
def test_malformed_bodies(
    server: SandboxServer, http: requests.Session, path: str, body: bytes
) -> None:
    url = f"{server.url}/tickets/{path}"
    response = http.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=5)
    problem = assert_problem(response, 400, "invalid_request")
    assert set(problem) == PROBLEM_KEYS
    assert problem["title"] == "Incorrect parameters provided"


def test_verify_needs_no_device(server: SandboxServer, http: requests.Session) -> None:
    body = {"qr_code": CODES["admitted"], "device": 7}
    assert http.post(f"{server.url}/tickets/verify", json=body, timeout=5).status_code == 200


# Early entry and slot boundaries


def test_rules_follow_the_clock() -> None:
    clock = Clock()
    with SandboxServer(now=clock) as server, requests.Session() as http:
        http.trust_env = False
        http.headers["Authorization"] = f"Bearer {DEMO_TOKEN}"
        clock.now = NOW + timedelta(days=1) - timedelta(minutes=31)
        assert_problem(verify(http, server, "too_early"), 400, "booking_in_future")
        clock.now = NOW + timedelta(days=1) - timedelta(minutes=30)
        assert verify(http, server, "too_early").status_code == 200
        clock.now = NOW + timedelta(hours=3)
        assert verify(http, server, "admitted").status_code == 200
        clock.now = NOW + timedelta(hours=3, seconds=1)
        assert_problem(verify(http, server, "admitted"), 400, "booking_in_past")
        assert_problem(verify(http, server, "canceled"), 400, "booking_canceled")


# Auth and routing


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", f"bearer {DEMO_TOKEN}", f"Bearer  {DEMO_TOKEN}", f"Basic {DEMO_TOKEN}"],
)
def test_bad_token_is_401(
    server: SandboxServer, http: requests.Session, authorization: str | None
) -> None:
    http.headers.pop("Authorization")
    headers = {"Authorization": authorization} if authorization else {}
    body = {"device": "gate-1", "qr_code": CODES["admitted"]}
    response = http.post(f"{server.url}/tickets/scan", json=body, headers=headers, timeout=5)
    problem = assert_problem(response, 401, "invalid_bearer_token")
    assert set(problem) == PROBLEM_KEYS
    assert problem["title"] == "Authorization token invalid"
    assert problem["instance"] == SCAN_PATH
    assert verify(http, server, "admitted").status_code == 401


def test_custom_token() -> None:
    with SandboxServer(token="t0ken", now=lambda: NOW) as server, requests.Session() as http:
        http.trust_env = False
        http.headers["Authorization"] = "Bearer t0ken"
        assert verify(http, server, "admitted").status_code == 200
        http.headers["Authorization"] = f"Bearer {DEMO_TOKEN}"
        assert verify(http, server, "admitted").status_code == 401


def test_request_ids_are_fresh(server: SandboxServer, http: requests.Session) -> None:
    first = scan(http, server, "canceled").json()["request_id"]
    assert scan(http, server, "canceled").json()["request_id"] != first


def test_prefix_is_required(server: SandboxServer, http: requests.Session) -> None:
    origin = server.url.removesuffix("/sandbox/v1")
    response = http.post(f"{origin}/tickets/scan", json={"qr_code": "x"}, timeout=5)
    assert assert_problem(response, 404, "not_found")["instance"] == "/tickets/scan"


def test_custom_prefix() -> None:
    with SandboxServer(prefix="/api/v2/", now=lambda: NOW) as server:
        assert server.url == f"http://127.0.0.1:{port_of(server)}/api/v2"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_are_405(server: SandboxServer, http: requests.Session, method: str) -> None:
    response = http.request(method, f"{server.url}/tickets/scan", timeout=5)
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "POST"


def test_head_gets_headers_only(server: SandboxServer, http: requests.Session) -> None:
    response = http.head(f"{server.url}/tickets/verify", timeout=5)
    assert response.status_code == 405
    assert response.content == b""


def test_oversized_body_is_413(server: SandboxServer, http: requests.Session) -> None:
    big = {"device": "gate-1", "qr_code": "x" * (64 * 1024)}
    response = http.post(f"{server.url}/tickets/scan", json=big, timeout=5)
    assert_problem(response, 413, "request_too_large")
    assert item(verify(http, server, "admitted"))["scans"] == []  # the connection still works


def test_garbage_request_line_gets_json_and_server_survives(
    server: SandboxServer, http: requests.Session, capfd: pytest.CaptureFixture[str]
) -> None:
    answer = raw_exchange(server, b"\x00\x01 garbage\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"Content-Type: application/json" in head
    assert json.loads(body)["code"] == "invalid_request"
    assert raw_exchange(server, b"BREW /pot HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 501")
    assert verify(http, server, "admitted").status_code == 200
    assert capfd.readouterr() == ("", "")  # quiet: nothing printed per request


@pytest.mark.parametrize("length", [b"abc", b"-1", b"1_0", b"5, 6"])
def test_bad_content_length_is_400(server: SandboxServer, length: bytes) -> None:
    request = b"POST /sandbox/v1/tickets/scan HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n\r\n{}"
    answer = raw_exchange(server, request % length)
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"Connection: close" in answer


def test_truncated_body_does_not_hang_the_server(
    server: SandboxServer, http: requests.Session
) -> None:
    request = b"POST /sandbox/v1/tickets/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{"
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=5) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1024) == b""
    assert verify(http, server, "admitted").status_code == 200


# Faults


def test_fault_server_error_then_normal(server: SandboxServer, http: requests.Session) -> None:
    server.inject(Fault.SERVER_ERROR)
    problem = assert_problem(scan(http, server, "admitted"), 500, "server_error")
    assert set(problem) == PROBLEM_KEYS
    assert item(scan(http, server, "admitted"))["scans"][0]["device"] == "gate-1"


def test_faults_are_fifo_with_counts(server: SandboxServer, http: requests.Session) -> None:
    server.inject(Fault.EMPTY, count=2)
    server.inject(Fault.UNAUTHORIZED)
    statuses = [verify(http, server, "admitted") for _ in range(4)]
    assert [(r.status_code, r.content == b"") for r in statuses] == [
        (200, True),
        (200, True),
        (401, False),
        (200, False),
    ]
    assert statuses[2].json()["code"] == "invalid_bearer_token"


def test_faults_wait_for_a_ticket_request(server: SandboxServer, http: requests.Session) -> None:
    server.inject(Fault.SERVER_ERROR)
    assert http.get(f"{server.url}/elsewhere", timeout=5).status_code == 404
    assert verify(http, server, "admitted").status_code == 500


def test_fault_html(server: SandboxServer, http: requests.Session) -> None:
    server.inject(Fault.HTML)
    response = verify(http, server, "admitted")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert b"<html>" in response.content


def test_fault_garbage(server: SandboxServer, http: requests.Session) -> None:
    server.inject(Fault.GARBAGE)
    response = verify(http, server, "admitted")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError, match=r".*"):
        json.loads(response.content)


def test_fault_wrong_shape(server: SandboxServer, http: requests.Session) -> None:
    server.inject(Fault.WRONG_SHAPE)
    response = verify(http, server, "admitted")
    assert response.status_code == 200
    assert isinstance(response.json(), dict)
    assert "items" not in response.json()


def test_fault_redirect(server: SandboxServer, http: requests.Session) -> None:
    server.inject(Fault.REDIRECT)
    response = http.post(
        f"{server.url}/tickets/verify", json={"qr_code": "x"}, allow_redirects=False, timeout=5
    )
    assert response.status_code == 302
    origin = server.url.removesuffix("/sandbox/v1")
    assert response.headers["Location"].startswith(origin + "/")
    assert not response.headers["Location"].startswith(server.url)


def test_fault_reset(server: SandboxServer, http: requests.Session) -> None:
    server.inject(Fault.RESET)
    with pytest.raises(requests.ConnectionError):
        scan(http, server, "admitted")
    assert item(scan(http, server, "admitted"))["scans"][0]["device"] == "gate-1"


def test_fault_slow_times_out_then_answers(server: SandboxServer, http: requests.Session) -> None:
    server.inject(Fault.SLOW, delay_s=0.5)
    with pytest.raises(requests.Timeout):
        http.post(f"{server.url}/tickets/verify", json={"qr_code": "x"}, timeout=0.1)
    server.inject(Fault.SLOW, delay_s=0.05)
    assert verify(http, server, "admitted").status_code == 200


def test_stop_ends_a_slow_answer_promptly(http: requests.Session) -> None:
    server = SandboxServer(now=lambda: NOW).start()
    server.inject(Fault.SLOW, delay_s=60)
    with pytest.raises(requests.Timeout):
        http.post(f"{server.url}/tickets/verify", json={"qr_code": "x"}, timeout=0.1)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 5


def test_fault_unauthorized(server: SandboxServer, http: requests.Session) -> None:
    server.inject(Fault.UNAUTHORIZED)
    problem = assert_problem(scan(http, server, "admitted"), 401, "invalid_bearer_token")
    assert set(problem) == PROBLEM_KEYS


def test_fault_huge(server: SandboxServer, http: requests.Session) -> None:
    server.inject(Fault.HUGE)
    response = verify(http, server, "admitted")
    assert response.status_code == 200
    assert len(response.content) >= 2_000_000
    assert {"url", "next_url", "previous_url", "first_url", "items"} <= set(response.json())


# The OAuth token endpoint

DEMO_CLIENT = (DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)


def fetch_token(
    server: SandboxServer,
    auth: tuple[str, str] | None = DEMO_CLIENT,
    data: dict[str, str] | None = None,
) -> requests.Response:
    with requests.Session() as session:
        session.trust_env = False
        form = {"grant_type": "client_credentials"} if data is None else data
        return session.post(server.token_url, data=form, auth=auth, timeout=5)


def test_token_endpoint_issues_tokens_the_ticket_endpoints_take(
    server: SandboxServer, http: requests.Session
) -> None:
    response = fetch_token(server)
    assert response.status_code == 200
    assert server.token_url == f"{server.url}/oauth/token"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3600)
    assert body["access_token"] != fetch_token(server).json()["access_token"]
    assert verify(http, server, "admitted").status_code == 200  # the fixed token still works
    http.headers["Authorization"] = f"Bearer {body['access_token']}"
    assert verify(http, server, "admitted").status_code == 200
    assert server.token_requests == 2


@pytest.mark.parametrize(
    "auth", [None, (DEMO_CLIENT_ID, "wrong"), ("other-client", DEMO_CLIENT_SECRET)]
)
def test_token_endpoint_refuses_bad_client_credentials(
    server: SandboxServer, auth: tuple[str, str] | None
) -> None:
    response = fetch_token(server, auth=auth)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "password", "username": "a", "password": "b"}, "unsupported_grant_type"),
    ],
)
def test_token_endpoint_takes_only_client_credentials(
    server: SandboxServer, data: dict[str, str], error: str
) -> None:
    response = fetch_token(server, data=data)
    assert response.status_code == 400
    assert response.json()["error"] == error


def test_token_endpoint_takes_only_a_form_post(server: SandboxServer) -> None:
    with requests.Session() as session:
        session.trust_env = False
        body = {"grant_type": "client_credentials"}
        response = session.post(server.token_url, json=body, auth=DEMO_CLIENT, timeout=5)
        assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
        response = session.get(server.token_url, auth=DEMO_CLIENT, timeout=5)
        assert_problem(response, 405, "method_not_allowed")


def test_issued_tokens_expire_on_the_sandbox_clock(http: requests.Session) -> None:
    clock = FakeClock()
    with SandboxServer(now=lambda: NOW, clock=clock, token_lifetime_s=60) as server:
        body = fetch_token(server).json()
        assert body["expires_in"] == 60
        http.headers["Authorization"] = f"Bearer {body['access_token']}"
        clock.now += 59.9
        assert verify(http, server, "admitted").status_code == 200
        clock.now += 0.1
        assert_problem(verify(http, server, "admitted"), 401, "invalid_bearer_token")
        http.headers["Authorization"] = f"Bearer {fetch_token(server).json()['access_token']}"
        assert verify(http, server, "admitted").status_code == 200
        server.expire_tokens()
        assert_problem(verify(http, server, "admitted"), 401, "invalid_bearer_token")
        http.headers["Authorization"] = f"Bearer {DEMO_TOKEN}"
        assert verify(http, server, "admitted").status_code == 200


def test_custom_client_credentials() -> None:
    with SandboxServer(client_id="fleet", client_secret="p@ss word:+") as server:
        assert fetch_token(server, auth=DEMO_CLIENT).status_code == 401
        # RFC 6749 2.3.1: each part form-encoded before HTTP Basic.
        assert fetch_token(server, auth=("fleet", "p%40ss+word%3A%2B")).status_code == 200


def test_token_faults_and_ticket_faults_are_separate(
    server: SandboxServer, http: requests.Session
) -> None:
    server.inject(Fault.SERVER_ERROR, endpoint="token")
    server.inject(Fault.UNAUTHORIZED)
    assert_problem(verify(http, server, "admitted"), 401, "invalid_bearer_token")
    assert fetch_token(server).status_code == 500
    server.inject(Fault.UNAUTHORIZED, endpoint="token")
    response = fetch_token(server)
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    assert fetch_token(server).status_code == 200
    assert verify(http, server, "admitted").status_code == 200


# Connections, recording, lifecycle


def test_keep_alive_reuses_one_connection(server: SandboxServer, http: requests.Session) -> None:
    first = verify(http, server, "admitted")
    second = scan(http, server, "canceled")
    assert "close" not in first.headers.get("Connection", "")
    assert second.status_code == 400
    assert server.connections_accepted == 1


def test_seen_requests_hold_what_the_client_sent(
    server: SandboxServer, http: requests.Session
) -> None:
    scan(http, server, "admitted", device="gate-9")
    (seen,) = server.seen()
    assert seen.method == "POST"
    assert seen.path == SCAN_PATH
    assert seen.headers["Authorization"] == f"Bearer {DEMO_TOKEN}"
    assert seen.json() == {"device": "gate-9", "qr_code": CODES["admitted"]}
    assert server.requests_seen == [seen]


def test_reset_restores_everything(server: SandboxServer, http: requests.Session) -> None:
    scan(http, server, "admitted")
    server.inject(Fault.SERVER_ERROR)
    server.reset()
    assert server.seen() == []
    assert item(scan(http, server, "admitted"))["scans"] == [
        {"device": "gate-1", "scanned_at": "2024-06-01T12:00:00Z"}
    ]


def test_lifecycle() -> None:
    server = SandboxServer(now=lambda: NOW)
    assert server.url.startswith("http://127.0.0.1:")
    assert server.url.endswith("/sandbox/v1")
    assert not server.url.startswith("http://127.0.0.1:0/")
    server.stop()
    server.stop()
    with pytest.raises(RuntimeError):
        server.start()


def test_stop_hangs_up_idle_keep_alive_connections(http: requests.Session) -> None:
    server = SandboxServer(now=lambda: NOW).start()
    assert verify(http, server, "admitted").status_code == 200
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1
    with pytest.raises(requests.ConnectionError):
        verify(http, server, "admitted")


# serve()


def test_serve_prints_url_token_and_tickets(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sandbox, "_wait_forever", interrupt)
    out = io.StringIO()
    sandbox.serve("127.0.0.1", 0, DEMO_TOKEN, out)
    text = out.getvalue()
    assert "http://127.0.0.1:" in text
    assert "/sandbox/v1" in text
    assert DEMO_TOKEN in text
    assert "/sandbox/v1/oauth/token" in text
    assert DEMO_CLIENT_ID in text
    assert DEMO_CLIENT_SECRET in text
    for ticket in demo_tickets():
        assert ticket.case in text
        assert ticket.qr_code[:30] in text


def test_serve_never_prints_a_custom_token(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sandbox, "_wait_forever", interrupt)
    out = io.StringIO()
    sandbox.serve("127.0.0.1", 0, "s3cret-value", out, client_secret="client-s3cret")
    assert "s3cret-value" not in out.getvalue()
    assert "client-s3cret" not in out.getvalue()
