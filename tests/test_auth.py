"""OAuth 2.0 client credentials and the fixed token file, against the sandbox on 127.0.0.1.

One fake clock drives both the client's token cache and the sandbox's token expiry, so nothing
sleeps: moving ``clock.now`` is time passing for both.
"""

import base64
import io
import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
import requests

from device.api import AnyRoadClient
from device.auth import (
    ClientCredentials,
    Refreshable,
    StaticToken,
    TokenError,
    token_source,
)
from device.config import ApiConfig, ConfigError
from device.sandbox import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TOKEN,
    Fault,
    SandboxServer,
    demo_tickets,
)
from tests.fakes import FakeClock

DEVICE = "10000000a1b2c3d4"
CODES = {ticket.case: ticket.qr_code for ticket in demo_tickets()}
LIFETIME_S = 600  # refreshed 60 s (10%) before it expires
TOKEN_PATH = "/sandbox/v1/oauth/token"
SCAN_PATH = "/sandbox/v1/tickets/scan"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def oauth(clock: FakeClock) -> Iterator[SandboxServer]:
    with SandboxServer(clock=clock, token_lifetime_s=LIFETIME_S) as server:
        yield server


@pytest.fixture
def source(oauth: SandboxServer, clock: FakeClock) -> Iterator[ClientCredentials]:
    credentials = ClientCredentials(
        oauth.token_url, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, timeout_s=2.0, clock=clock
    )
    yield credentials
    credentials.close()


@pytest.fixture
def client(oauth: SandboxServer, source: ClientCredentials) -> Iterator[AnyRoadClient]:
    api = AnyRoadClient(oauth.url, token=source, timeout_s=2.0)
    yield api
    api.close()


def paths(server: SandboxServer) -> list[str]:
    return [seen.path for seen in server.seen()]


def bearers(server: SandboxServer) -> list[str]:
    """The tokens the ticket requests carried, in order."""
    return [
        seen.headers["Authorization"].removeprefix("Bearer ")
        for seen in server.seen()
        if seen.path != TOKEN_PATH
    ]


# Fetching and caching


def test_one_token_serves_many_scans(client: AnyRoadClient, oauth: SandboxServer) -> None:
    replies = [client.verify(CODES["admitted"]) for _ in range(5)]
    assert [reply.kind for reply in replies] == ["ticket"] * 5
    assert oauth.token_requests == 1
    assert paths(oauth)[0] == TOKEN_PATH
    issued = set(bearers(oauth))
    assert len(issued) == 1
    assert DEMO_TOKEN not in issued  # the ticket requests carry the issued token


def test_the_token_request_is_client_credentials_with_basic_auth(
    source: ClientCredentials, oauth: SandboxServer
) -> None:
    source()
    (request,) = oauth.seen()
    assert (request.method, request.path) == ("POST", TOKEN_PATH)
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.body == b"grant_type=client_credentials"
    scheme, _, encoded = request.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == f"{DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET}"


def test_the_token_is_refreshed_before_it_expires(
    client: AnyRoadClient, oauth: SandboxServer, clock: FakeClock
) -> None:
    assert client.verify(CODES["admitted"]).kind == "ticket"
    clock.now += LIFETIME_S - 61  # more than 60 s left: keep it
    assert client.verify(CODES["admitted"]).kind == "ticket"
    assert oauth.token_requests == 1
    clock.now += 2  # less than 60 s left, still valid: replace it now, not after a 401
    assert client.verify(CODES["admitted"]).kind == "ticket"
    assert oauth.token_requests == 2
    first, same, fresh = bearers(oauth)
    assert first == same != fresh


# 401 from the API


def test_an_expired_token_is_refreshed_once_and_the_scan_recorded_once(
    client: AnyRoadClient, oauth: SandboxServer, clock: FakeClock
) -> None:
    assert client.scan(DEVICE, CODES["admitted"]).kind == "ticket"
    oauth.expire_tokens()
    clock.now += 60
    reply = client.scan(DEVICE, CODES["admitted_2"])
    assert reply.kind == "ticket"
    assert paths(oauth) == [TOKEN_PATH, SCAN_PATH, SCAN_PATH, TOKEN_PATH, SCAN_PATH]
    assert reply.ticket is not None
    assert [scan.device for scan in reply.ticket.scans] == [DEVICE]  # the 401 recorded nothing
    stale, refused, fresh = bearers(oauth)
    assert stale == refused != fresh


def test_a_second_401_is_returned_as_unauthorized(
    client: AnyRoadClient, oauth: SandboxServer, clock: FakeClock
) -> None:
    assert client.verify(CODES["admitted"]).kind == "ticket"
    clock.now += 60
    oauth.inject(Fault.UNAUTHORIZED, count=2)
    reply = client.scan(DEVICE, CODES["admitted"])
    assert (reply.kind, reply.status, reply.code) == ("unauthorized", 401, "invalid_bearer_token")
    assert not reply.may_have_recorded
    assert paths(oauth).count(SCAN_PATH) == 2  # retried exactly once
    assert oauth.token_requests == 2
    assert client.scan(DEVICE, CODES["admitted"]).kind == "ticket"  # the fresh token is kept


def test_a_token_refused_as_soon_as_issued_is_not_refetched(
    client: AnyRoadClient, oauth: SandboxServer, clock: FakeClock
) -> None:
    oauth.inject(Fault.UNAUTHORIZED)
    assert client.scan(DEVICE, CODES["admitted"]).kind == "unauthorized"
    assert (oauth.token_requests, paths(oauth).count(SCAN_PATH)) == (1, 1)
    clock.now += 5  # old enough to have expired: worth one fresh token
    oauth.inject(Fault.UNAUTHORIZED)
    assert client.scan(DEVICE, CODES["admitted"]).kind == "ticket"
    assert (oauth.token_requests, paths(oauth).count(SCAN_PATH)) == (2, 3)


def test_clients_refused_together_fetch_one_new_token(
    source: ClientCredentials, oauth: SandboxServer, clock: FakeClock
) -> None:
    old = source()
    clock.now += 60
    assert source.invalidate(old)  # the scan loop's client saw a 401
    new = source()
    assert source.invalidate(old)  # the sync worker's client saw one with the same old token
    assert source() == new != old
    assert oauth.token_requests == 2


def test_a_fixed_token_is_never_retried(sandbox: SandboxServer, tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(DEMO_TOKEN + "\n")
    fixed = token_source(ApiConfig(base_url=sandbox.url, token_file=path))
    assert isinstance(fixed, StaticToken)
    assert not isinstance(fixed, Refreshable)
    api = AnyRoadClient(sandbox.url, token=fixed, timeout_s=1.0)
    assert api.scan(DEVICE, CODES["admitted"]).kind == "ticket"
    sandbox.inject(Fault.UNAUTHORIZED)
    assert api.scan(DEVICE, CODES["admitted_2"]).kind == "unauthorized"
    api.close()
    assert len(sandbox.seen()) == 2


# Failures of the token endpoint


def test_a_wrong_secret_is_unauthorized_and_backs_off(
    oauth: SandboxServer, clock: FakeClock
) -> None:
    wrong = ClientCredentials(oauth.token_url, DEMO_CLIENT_ID, "wrong", timeout_s=1.0, clock=clock)
    api = AnyRoadClient(oauth.url, token=wrong, timeout_s=1.0)
    reply = api.scan(DEVICE, CODES["admitted"])
    assert (reply.kind, reply.code, reply.sent) == ("unauthorized", "token_refused", False)
    assert "invalid_client" in reply.detail
    assert not reply.may_have_recorded
    assert api.scan(DEVICE, CODES["admitted"]).code == "token_refused"
    assert paths(oauth) == [TOKEN_PATH]  # remembered: no second request, no ticket request
    clock.now += 5
    assert api.scan(DEVICE, CODES["admitted"]).code == "token_refused"
    assert paths(oauth) == [TOKEN_PATH, TOKEN_PATH]
    api.close()
    wrong.close()


class CountingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        self.sent += 1
        return super().request(*args, **kwargs)


def test_an_unreachable_token_endpoint_means_offline_and_never_sent(clock: FakeClock) -> None:
    with SandboxServer() as gone:
        api_url, token_url = gone.url, gone.token_url
    session = CountingSession()
    source = ClientCredentials(
        token_url, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, timeout_s=0.5, clock=clock, session=session
    )
    api = AnyRoadClient(api_url, token=source, timeout_s=0.5)
    reply = api.scan(DEVICE, CODES["admitted"])
    assert (reply.kind, reply.code) == ("unreachable", "token_unreachable")
    assert (reply.sent, reply.may_have_recorded, reply.answered) == (False, False, False)
    api.scan(DEVICE, CODES["admitted"])
    assert session.sent == 1  # the failure is remembered for a few seconds
    clock.now += 5
    api.scan(DEVICE, CODES["admitted"])
    assert session.sent == 2
    api.close()
    source.close()


def test_a_failed_refresh_keeps_the_token_until_it_expires(
    client: AnyRoadClient, oauth: SandboxServer, clock: FakeClock
) -> None:
    assert client.verify(CODES["admitted"]).kind == "ticket"
    clock.now += LIFETIME_S - 55  # due for refresh, still valid
    oauth.inject(Fault.SERVER_ERROR, endpoint="token")
    assert client.verify(CODES["admitted"]).kind == "ticket"
    clock.now += 4
    assert client.verify(CODES["admitted"]).kind == "ticket"
    assert oauth.token_requests == 2  # no new attempt within the backoff
    clock.now += 1
    assert client.verify(CODES["admitted"]).kind == "ticket"
    assert oauth.token_requests == 3
    assert len(set(bearers(oauth))) == 2


def test_a_token_that_expired_while_the_endpoint_fails_is_not_used(
    client: AnyRoadClient, oauth: SandboxServer, clock: FakeClock
) -> None:
    assert client.verify(CODES["admitted"]).kind == "ticket"
    clock.now += LIFETIME_S
    oauth.inject(Fault.SERVER_ERROR, endpoint="token")
    reply = client.verify(CODES["admitted"])
    assert (reply.kind, reply.code, reply.sent) == ("unreachable", "token_server_error", False)
    assert paths(oauth) == [TOKEN_PATH, "/sandbox/v1/tickets/verify", TOKEN_PATH]


def test_a_token_endpoint_failing_during_the_retry_is_a_reply(
    client: AnyRoadClient, oauth: SandboxServer, clock: FakeClock
) -> None:
    assert client.verify(CODES["admitted"]).kind == "ticket"
    clock.now += 60
    oauth.inject(Fault.UNAUTHORIZED)
    oauth.inject(Fault.RESET, endpoint="token")
    reply = client.scan(DEVICE, CODES["admitted"])
    assert (reply.kind, reply.code) == ("unreachable", "token_unreachable")
    assert not reply.may_have_recorded  # the one scan that left was refused with a 401


@pytest.mark.parametrize(
    ("fault", "kind", "code"),
    [
        (Fault.REDIRECT, "unauthorized", "token_bad_response"),
        (Fault.HUGE, "unauthorized", "token_bad_response"),
        (Fault.HTML, "unauthorized", "token_bad_response"),
        (Fault.GARBAGE, "unauthorized", "token_bad_response"),
        (Fault.WRONG_SHAPE, "unauthorized", "token_bad_response"),
        (Fault.EMPTY, "unauthorized", "token_bad_response"),
        (Fault.UNAUTHORIZED, "unauthorized", "token_refused"),
        (Fault.SERVER_ERROR, "unreachable", "token_server_error"),
        (Fault.RESET, "unreachable", "token_unreachable"),
        (Fault.SLOW, "unreachable", "token_timeout"),
    ],
)
def test_a_misbehaving_token_endpoint_becomes_a_reply(
    oauth: SandboxServer, clock: FakeClock, fault: Fault, kind: str, code: str
) -> None:
    oauth.inject(fault, endpoint="token", delay_s=2.0)
    source = ClientCredentials(
        oauth.token_url, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, timeout_s=0.3, clock=clock
    )
    api = AnyRoadClient(oauth.url, token=source, timeout_s=0.3)
    reply = api.scan(DEVICE, CODES["admitted"])
    api.close()
    source.close()
    assert (reply.kind, reply.code, reply.sent) == (kind, code, False)
    assert paths(oauth) == [TOKEN_PATH]  # no redirect followed, no scan sent


def test_concurrent_callers_fetch_one_token(
    oauth: SandboxServer, source: ClientCredentials
) -> None:
    # The first fetch is slow, so the other threads ask while it is under way.
    oauth.inject(Fault.SLOW, delay_s=0.3, endpoint="token")
    start = threading.Barrier(8)

    def verify(_: int) -> str:
        api = AnyRoadClient(oauth.url, token=source, timeout_s=2.0)
        start.wait()
        try:
            return api.verify(CODES["admitted"]).kind
        finally:
            api.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        kinds = list(pool.map(verify, range(8)))
    assert kinds == ["ticket"] * 8
    assert oauth.token_requests == 1


def test_the_secret_and_tokens_never_reach_the_logs(
    oauth: SandboxServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "s3cret/Grüße+=:%"  # form-encoded before Basic (RFC 6749 2.3.1)
    with SandboxServer(clock=clock, token_lifetime_s=LIFETIME_S, client_secret=secret) as server:
        source = ClientCredentials(
            server.token_url, DEMO_CLIENT_ID, secret, timeout_s=1.0, clock=clock
        )
        api = AnyRoadClient(server.url, token=source, timeout_s=1.0)
        assert api.scan(DEVICE, CODES["admitted"]).kind == "ticket"
        server.expire_tokens()
        clock.now += 60
        assert api.scan(DEVICE, CODES["admitted_2"]).kind == "ticket"  # 401, refresh, retry
        wrong = ClientCredentials(server.token_url, DEMO_CLIENT_ID, secret + "x", timeout_s=1.0)
        with pytest.raises(TokenError):
            wrong()
        api.close()
        source.close()
        wrong.close()
        basic = {seen.headers["Authorization"] for seen in server.seen() if seen.path == TOKEN_PATH}
        tokens = set(bearers(server))
    assert "api token fetched" in caplog.text
    assert "token_refused" in caplog.text
    assert len(tokens) == 2
    for hidden in {secret, secret + "x", *tokens, *basic}:
        assert hidden not in caplog.text
        assert hidden.removeprefix("Basic ") not in caplog.text
    assert secret not in repr(source)


# Token responses, from a stub session


def answer(status: int, body: object) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.raw = io.BytesIO(body if isinstance(body, bytes) else json.dumps(body).encode())
    return response


class StubSession(requests.Session):
    """Answers every POST with the same token response, and keeps what it was asked."""

    def __init__(self, body: object, status: int = 200) -> None:
        super().__init__()
        self.body, self.status = body, status
        self.calls: list[dict[str, Any]] = []

    def post(self, url: Any, data: Any = None, json: Any = None, **kwargs: Any) -> Any:
        self.calls.append({"url": url, "data": data, **kwargs})
        return answer(self.status, self.body)


def stub_source(session: StubSession, clock: FakeClock, secret: str) -> ClientCredentials:
    return ClientCredentials(
        "https://auth.example/token", "id", secret, timeout_s=1.5, clock=clock, session=session
    )


def test_the_token_request_is_strict(clock: FakeClock) -> None:
    session = StubSession({"access_token": "abc", "token_type": "bearer", "expires_in": 60})
    session.trust_env = True
    assert stub_source(session, clock, "p@ss word:+")() == "abc"  # bearer, any case
    (call,) = session.calls
    assert call["allow_redirects"] is False
    assert call["timeout"] == 1.5
    assert call["stream"] is True  # read with a size cap
    assert call.get("verify", True) is True and session.verify is True
    assert session.trust_env is False
    basic = call["headers"]["Authorization"].removeprefix("Basic ")
    user, _, password = base64.b64decode(basic).decode("ascii").partition(":")
    assert (user, password) == ("id", "p%40ss+word%3A%2B")
    assert unquote_plus(password) == "p@ss word:+"


@pytest.mark.parametrize(
    "body",
    [
        {"access_token": "abc", "token_type": "mac", "expires_in": 60},
        {"access_token": "abc", "expires_in": 60},
        {"access_token": "", "token_type": "Bearer"},
        {"access_token": 42, "token_type": "Bearer"},
        {"access_token": "a b", "token_type": "Bearer"},
        {"access_token": "abc\r\nX-Evil: 1", "token_type": "Bearer"},
        {"access_token": "tök", "token_type": "Bearer"},
        {"access_token": "abc", "token_type": "Bearer", "expires_in": 0},
        {"access_token": "abc", "token_type": "Bearer", "expires_in": -60},
        {"access_token": "abc", "token_type": "Bearer", "expires_in": "soon"},
        {"access_token": "abc", "token_type": "Bearer", "expires_in": True},
        {"access_token": "abc", "token_type": "Bearer", "expires_in": float("nan")},
        [{"access_token": "abc", "token_type": "Bearer"}],
        b"access_token=abc&token_type=bearer",
    ],
)
def test_unusable_token_responses_are_refused(clock: FakeClock, body: object) -> None:
    with pytest.raises(TokenError) as raised:
        stub_source(StubSession(body), clock, "s")()
    assert (raised.value.kind, raised.value.code) == ("unauthorized", "token_bad_response")


@pytest.mark.parametrize(
    ("expires_in", "refresh_after_s"),
    [
        (None, 270),  # missing: 300 s, refreshed 30 s before
        (3600, 3240),  # 10% before
        ("3600", 3240),  # some servers send a string
        (100, 70),  # at least 30 s before
        (20, 10),  # but never before half its life: not one fetch per scan
        (10**9, 86400 - 8640),  # a day at most
    ],
)
def test_refresh_follows_expires_in(
    clock: FakeClock, expires_in: object, refresh_after_s: int
) -> None:
    body = {"access_token": "abc", "token_type": "Bearer"}
    session = StubSession(body if expires_in is None else body | {"expires_in": expires_in})
    source = stub_source(session, clock, "s")
    start = clock.now
    source()
    clock.now = start + refresh_after_s - 0.5
    source()
    assert len(session.calls) == 1
    clock.now = start + refresh_after_s
    source()
    assert len(session.calls) == 2


# token_source: what the app calls


def test_token_source_reads_a_fixed_token_file(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("  tok-123  \nsecond line\n")
    source = token_source(ApiConfig(base_url="https://x", token_file=path))
    assert source() == "tok-123"
    assert "tok-123" not in repr(source)
    source.close()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the API token"),
        (b"", "the first line must hold the API token"),
        (b"\nDEMO\n", "the first line must hold the API token"),
        (b"\xff\xfe\x00", "the first line must hold the API token"),
        ("tök".encode(), "the first line must hold the API token"),
    ],
)
def test_a_bad_token_file_is_a_config_error(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        token_source(ApiConfig(base_url="https://x", token_file=path))


def oauth_config(server: SandboxServer, secret_file: Path) -> ApiConfig:
    return ApiConfig(
        base_url=server.url,
        token_file=secret_file.parent / "no-such-token",  # not read with OAuth
        token_url=server.token_url,
        client_id=DEMO_CLIENT_ID,
        client_secret_file=secret_file,
    )


def test_token_source_uses_client_credentials_when_configured(
    oauth: SandboxServer, tmp_path: Path
) -> None:
    secret_file = tmp_path / "client_secret"
    secret_file.write_text(DEMO_CLIENT_SECRET + "\n")
    source = token_source(oauth_config(oauth, secret_file))
    assert isinstance(source, ClientCredentials)
    assert oauth.token_requests == 0  # nothing fetched until the first request
    api = AnyRoadClient(oauth.url, token=source, timeout_s=1.0)
    assert api.verify(CODES["admitted"]).kind == "ticket"
    api.close()
    source.close()
    assert DEMO_CLIENT_SECRET not in repr(source)


def test_a_missing_client_secret_file_is_a_config_error(
    oauth: SandboxServer, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="cannot read the OAuth client secret"):
        token_source(oauth_config(oauth, tmp_path / "missing"))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="the first line must hold the OAuth client secret"):
        token_source(oauth_config(oauth, tmp_path / "empty"))
