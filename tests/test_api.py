"""The API client over real HTTP on 127.0.0.1: exact requests, and a Reply for every ending."""

import json
import logging
from collections.abc import Iterator

import pytest

from device.api import AnyRoadClient
from device.sandbox import DEMO_TOKEN, Fault, SandboxServer

DEVICE = "10000000a1b2c3d4"


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[AnyRoadClient]:
    api = AnyRoadClient(sandbox.url, token=lambda: DEMO_TOKEN, timeout_s=0.5)
    yield api
    api.close()


def test_scan_posts_exactly_the_documented_body(
    client: AnyRoadClient, sandbox: SandboxServer, codes: dict[str, str]
) -> None:
    reply = client.scan(DEVICE, codes["admitted"])
    (request,) = sandbox.seen()
    assert request.path == "/sandbox/v1/tickets/scan"  # the base URL's path is kept
    assert json.loads(request.body) == {"device": DEVICE, "qr_code": codes["admitted"]}
    assert request.headers["Authorization"] == f"Bearer {DEMO_TOKEN}"
    assert request.headers["Content-Type"].startswith("application/json")
    assert reply.kind == "ticket"
    assert reply.ticket is not None
    assert [scan.device for scan in reply.ticket.scans] == [DEVICE]
    assert reply.server_time is not None


def test_verify_posts_only_the_code(
    client: AnyRoadClient, sandbox: SandboxServer, codes: dict[str, str]
) -> None:
    assert client.verify(codes["admitted"]).kind == "ticket"
    (request,) = sandbox.seen()
    assert request.path == "/sandbox/v1/tickets/verify"
    assert json.loads(request.body) == {"qr_code": codes["admitted"]}


@pytest.mark.parametrize(
    "text", ["Grüße 東京 🎫", '"},"device":"other', "\x00\x1b[2J\u202e", "x" * 3000]
)
def test_hostile_codes_travel_only_as_a_json_string(
    client: AnyRoadClient, sandbox: SandboxServer, text: str
) -> None:
    reply = client.scan(DEVICE, text)
    (request,) = sandbox.seen()
    assert json.loads(request.body.decode("utf-8")) == {"device": DEVICE, "qr_code": text}
    assert (reply.kind, reply.code) == ("problem", "ticket_not_found")


def test_one_connection_serves_many_scans(
    client: AnyRoadClient, sandbox: SandboxServer, codes: dict[str, str]
) -> None:
    for _ in range(3):
        client.verify(codes["admitted"])
    assert sandbox.connections_accepted == 1


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("canceled", "booking_canceled"),
        ("too_early", "booking_in_future"),
        ("too_late", "booking_in_past"),
    ],
)
def test_booking_problems_keep_their_code_and_ticket(
    client: AnyRoadClient, codes: dict[str, str], case: str, code: str
) -> None:
    reply = client.scan(DEVICE, codes[case])
    assert (reply.kind, reply.status, reply.code) == ("problem", 400, code)
    assert reply.request_id
    assert reply.ticket is not None
    assert reply.ticket.slot_start is not None


def test_a_wrong_token_is_unauthorized_and_never_logged(
    sandbox: SandboxServer, codes: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = AnyRoadClient(sandbox.url, token=lambda: "wrong-secret-token", timeout_s=0.5)
    reply = client.scan(DEVICE, codes["admitted"])
    client.close()
    assert (reply.kind, reply.status, reply.code) == ("unauthorized", 401, "invalid_bearer_token")
    assert reply.request_id in caplog.text  # the request_id is logged with every error
    assert "wrong-secret-token" not in caplog.text


@pytest.mark.parametrize(
    ("fault", "kind", "code"),
    [
        (Fault.SERVER_ERROR, "server_error", "server_error"),
        (Fault.HTML, "server_error", "not_json"),
        (Fault.GARBAGE, "server_error", "not_json"),
        (Fault.WRONG_SHAPE, "server_error", "unexpected_shape"),
        (Fault.EMPTY, "server_error", "not_json"),
        (Fault.REDIRECT, "server_error", "not_json"),
        (Fault.UNAUTHORIZED, "unauthorized", "invalid_bearer_token"),
        (Fault.HUGE, "server_error", "response_too_large"),
        (Fault.RESET, "unreachable", "connection_failed"),
    ],
)
def test_every_misbehaviour_becomes_a_reply(
    client: AnyRoadClient,
    sandbox: SandboxServer,
    codes: dict[str, str],
    fault: Fault,
    kind: str,
    code: str,
) -> None:
    sandbox.inject(fault)
    reply = client.scan(DEVICE, codes["admitted"])
    assert (reply.kind, reply.code) == (kind, code)
    assert len(sandbox.seen()) == 1  # never retried


def test_redirects_are_not_followed(
    client: AnyRoadClient, sandbox: SandboxServer, codes: dict[str, str]
) -> None:
    sandbox.inject(Fault.REDIRECT)
    reply = client.scan(DEVICE, codes["admitted"])
    assert reply.status == 302
    assert [request.path for request in sandbox.seen()] == ["/sandbox/v1/tickets/scan"]


def test_a_slow_server_times_out(
    client: AnyRoadClient, sandbox: SandboxServer, codes: dict[str, str]
) -> None:
    sandbox.inject(Fault.SLOW, delay_s=2.0)
    reply = client.scan(DEVICE, codes["admitted"])
    assert (reply.kind, reply.code) == ("unreachable", "timeout")
    assert reply.may_have_recorded  # the request went out: the server may hold the scan


@pytest.mark.parametrize(
    ("fault", "may_have_recorded"),
    [
        (Fault.RESET, True),  # hung up after reading the request
        (Fault.SERVER_ERROR, True),  # a 500 may come after the write
        (Fault.WRONG_SHAPE, True),  # a 2xx we cannot read
        (Fault.UNAUTHORIZED, False),  # refused before anything was recorded
        (Fault.REDIRECT, False),
    ],
)
def test_which_failures_may_have_recorded_the_scan(
    client: AnyRoadClient,
    sandbox: SandboxServer,
    codes: dict[str, str],
    fault: Fault,
    may_have_recorded: bool,
) -> None:
    sandbox.inject(fault)
    assert client.scan(DEVICE, codes["admitted"]).may_have_recorded is may_have_recorded


def test_a_server_that_is_gone_is_unreachable(codes: dict[str, str]) -> None:
    with SandboxServer() as server:
        url = server.url
    client = AnyRoadClient(url, token=lambda: DEMO_TOKEN, timeout_s=0.5)
    reply = client.scan(DEVICE, codes["admitted"])
    client.close()
    assert (reply.kind, reply.code, reply.answered) == ("unreachable", "connection_failed", False)
    assert not reply.may_have_recorded  # refused: the request never left


# --- a 4xx is about the ticket only when AnyRoad says so ------------------------------------

ANYROAD_400 = {
    "type": "https://example.com/error-type",
    "title": "Incorrect parameters provided",
    "status": 400,
    "detail": "no such ticket",
    "code": "ticket_not_found",
    "instance": "/tickets/scan",
    "request_id": "5f7e0797",
}


def test_a_wrong_path_prefix_is_a_setup_error_not_an_invalid_ticket(
    sandbox: SandboxServer, codes: dict[str, str]
) -> None:
    # The sandbox answers a wrong path with a 404 whose body even looks like AnyRoad's.
    wrong = AnyRoadClient(sandbox.url.replace("/v1", "/v2"), token=lambda: DEMO_TOKEN, timeout_s=1)
    try:
        reply = wrong.scan(DEVICE, codes["admitted"])
    finally:
        wrong.close()
    assert (reply.kind, reply.status, reply.code) == ("setup_error", 404, "wrong_url")


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (400, ANYROAD_400, "problem", "ticket_not_found"),
        (422, ANYROAD_400 | {"status": 422}, "problem", "ticket_not_found"),
        (404, ANYROAD_400 | {"status": 404}, "setup_error", "wrong_url"),
        (405, ANYROAD_400 | {"status": 405}, "setup_error", "wrong_url"),
        (400, b"<html><body>Bad Request</body></html>", "setup_error", "wrong_url"),
        (400, {"detail": "Not Found"}, "setup_error", "not_anyroad"),  # another framework's
        (400, ANYROAD_400 | {"status": "400"}, "setup_error", "not_anyroad"),
        (400, ANYROAD_400 | {"status": 404}, "setup_error", "not_anyroad"),
        (400, ANYROAD_400 | {"code": ""}, "setup_error", "not_anyroad"),
        (410, {"error": "gone"}, "setup_error", "not_anyroad"),
        (429, {"error": "slow down"}, "server_error", "http_429"),
    ],
)
def test_only_anyroads_problem_body_makes_a_4xx_a_ticket_verdict(
    status: int, body: object, kind: str, code: str
) -> None:
    from tests.test_hostile import RawServer, http  # noqa: PLC0415

    with RawServer([http(status, body)]) as server:
        client = AnyRoadClient(server.url, token=lambda: DEMO_TOKEN, timeout_s=2)
        try:
            reply = client.verify("anything")
        finally:
            client.close()
    assert (reply.kind, reply.status, reply.code) == (kind, status, code)
