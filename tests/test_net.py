"""One deadline for a whole HTTP request (device.net): name lookup, connect, TLS, send, read.

A resolver that never answers is an injected getaddrinfo that blocks on an Event until the
test ends (or HANG_S, the most a real one would take), and servers that drip on 127.0.0.1 pace
themselves; the tests themselves never sleep. Times are real: time.monotonic around the call.
"""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tuf.api import exceptions

from device import net
from device.api import AnyRoadClient, Reply
from device.auth import ClientCredentials
from device.sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TOKEN, Fault, SandboxServer
from device.update.source import _Fetcher

DEVICE = "10000000a1b2c3d4"
TIMEOUT_S = 0.5
MARGIN_S = 0.4  # thread start-up and a busy shared CI core; far below any real stall
HANG_S = 5.0  # how long a blocked lookup or a dripping server holds on before giving up
HOST = "api.scanner.test"


# Resolvers


@dataclass
class DeadDNS:
    """A getaddrinfo that never answers in time: it waits for ``released``, then fails as
    glibc does when its servers are silent (EAI_AGAIN)."""

    released: threading.Event = field(default_factory=threading.Event)
    called: threading.Event = field(default_factory=threading.Event)
    calls: list[str] = field(default_factory=list)

    def __call__(self, host: str, port: None, family: int, kind: int) -> list[net.AddrInfo]:
        self.calls.append(host)
        self.called.set()
        self.released.wait(HANG_S)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")


@dataclass
class Loopback:
    """A getaddrinfo that answers 127.0.0.1 for every name, once ``ready`` is set."""

    ready: threading.Event = field(default_factory=threading.Event)
    calls: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ready.set()

    def __call__(self, host: str, port: None, family: int, kind: int) -> list[net.AddrInfo]:
        self.calls.append(host)
        self.ready.wait(HANG_S)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", 0))]


@pytest.fixture
def dead_dns() -> Iterator[DeadDNS]:
    dns = DeadDNS()
    yield dns
    dns.released.set()


def timed(call: Any, *args: Any) -> tuple[Any, float]:
    start = time.monotonic()
    result = call(*args)
    return result, time.monotonic() - start


# Servers that never finish


class DripServer:
    """Accepts one connection on 127.0.0.1, reads what the client sends first, answers
    ``prefix`` and then one byte every 20 ms: never silent long enough for a read timeout."""

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        give_up = time.monotonic() + HANG_S
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(self.prefix)
                while not self.stop.wait(0.02) and time.monotonic() < give_up:
                    conn.sendall(b" ")
            except OSError:
                return  # the client hung up: what the deadline is for

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self.thread.join(HANG_S)


@pytest.fixture
def drip() -> Iterator[Any]:
    servers: list[DripServer] = []

    def start(prefix: bytes) -> DripServer:
        servers.append(DripServer(prefix))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


JSON_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 99999\r\n\r\n"
HEADERS_HEAD = b"HTTP/1.1 200 OK\r\nX-Drip: "
TLS_RECORD_HEAD = bytes([0x16, 0x03, 0x03, 0x40, 0x00])  # a 16 KB handshake record, then drips


# The API client


def test_a_dead_resolver_is_offline_within_the_timeout(
    dead_dns: DeadDNS, codes: dict[str, str]
) -> None:
    session = net.session(net.Resolver(dead_dns))
    api = AnyRoadClient(
        f"http://{HOST}/v1", token=lambda: DEMO_TOKEN, timeout_s=TIMEOUT_S, session=session
    )
    reply, elapsed = timed(api.scan, DEVICE, codes["admitted"])
    api.close()
    assert (reply.kind, reply.code, reply.sent) == ("unreachable", "dns_timeout", False)
    assert not reply.may_have_recorded  # nothing left: the journal need not keep it
    assert elapsed < TIMEOUT_S + MARGIN_S


@pytest.mark.parametrize("head", [JSON_HEAD, HEADERS_HEAD], ids=["body", "headers"])
def test_a_server_that_drips_is_cut_at_the_timeout(
    drip: Any, codes: dict[str, str], head: bytes
) -> None:
    server = drip(head)
    api = AnyRoadClient(
        f"http://127.0.0.1:{server.port}/v1", token=lambda: DEMO_TOKEN, timeout_s=TIMEOUT_S
    )
    reply, elapsed = timed(api.scan, DEVICE, codes["admitted"])
    api.close()
    assert (reply.kind, reply.code, reply.sent) == ("unreachable", "timeout", True)
    assert reply.may_have_recorded  # the scan went out: AnyRoad may hold it
    assert elapsed < TIMEOUT_S + MARGIN_S


def test_a_tls_handshake_that_drips_is_cut_and_never_sent(drip: Any, codes: dict[str, str]) -> None:
    server = drip(TLS_RECORD_HEAD)
    session = net.session(net.Resolver(Loopback()))
    api = AnyRoadClient(
        f"https://{HOST}:{server.port}/v1",
        token=lambda: DEMO_TOKEN,
        timeout_s=TIMEOUT_S,
        session=session,
    )
    reply, elapsed = timed(api.scan, DEVICE, codes["admitted"])
    api.close()
    assert (reply.kind, reply.code, reply.sent) == ("unreachable", "connect_timeout", False)
    assert elapsed < TIMEOUT_S + MARGIN_S


def test_many_scans_wait_on_one_lookup(dead_dns: DeadDNS, codes: dict[str, str]) -> None:
    host = f"many.{HOST}"  # its lookup thread's name is this test's alone
    resolver = net.Resolver(dead_dns)
    start = threading.Barrier(8)

    def scan(_: int) -> tuple[Reply, float]:
        api = AnyRoadClient(
            f"https://{host}/v1",
            token=lambda: DEMO_TOKEN,
            timeout_s=TIMEOUT_S,
            session=net.session(resolver),
        )
        start.wait()
        try:
            return timed(api.scan, DEVICE, codes["admitted"])
        finally:
            api.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(scan, range(8)))
    assert {reply.code for reply, _ in results} == {"dns_timeout"}
    assert max(elapsed for _, elapsed in results) < TIMEOUT_S + MARGIN_S
    assert dead_dns.calls == [host]  # one lookup, one thread, however many wait
    lookups = [thread for thread in threading.enumerate() if thread.name == f"resolve {host}"]
    assert len(lookups) == 1


def test_the_token_fetch_and_the_scan_share_one_timeout(codes: dict[str, str]) -> None:
    with SandboxServer() as server:
        server.inject(Fault.SLOW, endpoint="token", delay_s=0.3)
        server.inject(Fault.SLOW, delay_s=0.3)  # alone, each fits; together they do not
        source = ClientCredentials(
            server.token_url, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, timeout_s=TIMEOUT_S
        )
        api = AnyRoadClient(server.url, token=source, timeout_s=TIMEOUT_S)
        reply, elapsed = timed(api.scan, DEVICE, codes["admitted"])
        api.close()
        source.close()
    assert (reply.kind, reply.code, reply.sent) == ("unreachable", "timeout", True)
    assert elapsed < TIMEOUT_S + MARGIN_S


# The token endpoint


def test_a_token_endpoint_that_cannot_resolve_is_offline_within_the_timeout(
    dead_dns: DeadDNS, sandbox: SandboxServer, codes: dict[str, str]
) -> None:
    source = ClientCredentials(
        f"https://auth.{HOST}/oauth/token",
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        timeout_s=TIMEOUT_S,
        session=net.session(net.Resolver(dead_dns)),
    )
    api = AnyRoadClient(sandbox.url, token=source, timeout_s=TIMEOUT_S)
    reply, elapsed = timed(api.scan, DEVICE, codes["admitted"])
    api.close()
    source.close()
    assert (reply.kind, reply.code, reply.sent) == ("unreachable", "token_timeout", False)
    assert elapsed < TIMEOUT_S + MARGIN_S
    assert sandbox.seen() == []  # no scan without a token


def test_a_scan_waits_for_another_threads_token_fetch_no_longer_than_its_timeout(
    dead_dns: DeadDNS, sandbox: SandboxServer, codes: dict[str, str]
) -> None:
    source = ClientCredentials(
        f"https://auth.{HOST}/oauth/token",
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        timeout_s=3 * TIMEOUT_S,  # the sync worker's fetch, say, holds the token lock this long
        session=net.session(net.Resolver(dead_dns)),
    )
    patient = AnyRoadClient(sandbox.url, token=source, timeout_s=3 * TIMEOUT_S)
    api = AnyRoadClient(sandbox.url, token=source, timeout_s=TIMEOUT_S)
    with ThreadPoolExecutor(max_workers=1) as pool:
        other = pool.submit(patient.scan, DEVICE, codes["admitted"])
        assert dead_dns.called.wait(HANG_S)  # its fetch is under way, holding the lock
        reply, elapsed = timed(api.scan, DEVICE, codes["admitted"])
        assert other.result().code == "token_timeout"
    for client in (patient, api):
        client.close()
    source.close()
    assert (reply.kind, reply.code, reply.sent) == ("unreachable", "token_timeout", False)
    assert elapsed < TIMEOUT_S + MARGIN_S


# The updater's fetcher


def test_the_updater_bounds_lookup_and_connect_by_its_connect_timeout(
    dead_dns: DeadDNS, tmp_path: Path
) -> None:
    connect_s = 0.3
    fetcher = _Fetcher(tmp_path, resolver=net.Resolver(dead_dns), connect_timeout_s=connect_s)
    start = time.monotonic()
    with (
        pytest.raises(exceptions.DownloadError),
        fetcher.download_file(f"https://repo.{HOST}/targets/bundle.tar", 1000),
    ):
        pass
    elapsed = time.monotonic() - start
    fetcher.close()
    # Three tries (urllib3's Retry(total=2)) and its one 0.5 s back-off; one lookup for all.
    assert elapsed < 3 * connect_s + 0.5 + MARGIN_S
    assert dead_dns.calls == [f"repo.{HOST}"]


def test_the_updater_bounds_a_metadata_file_as_a_whole(drip: Any, tmp_path: Path) -> None:
    server = drip(JSON_HEAD)
    fetcher = _Fetcher(tmp_path, metadata_timeout_s=TIMEOUT_S)
    url = f"http://127.0.0.1:{server.port}/metadata/timestamp.json"
    start = time.monotonic()
    with pytest.raises(exceptions.DownloadError, match="not received within"):
        fetcher.download_bytes(url, 100_000)
    elapsed = time.monotonic() - start
    fetcher.close()
    assert elapsed < TIMEOUT_S + MARGIN_S


# TLS through the resolver: the certificate and SNI name the host, never 127.0.0.1


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    cert_file: Path
    key_file: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA and a server certificate for HOST only."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        _certificate("test CA", ca_key, None)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        _certificate(HOST, key, ca)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    pki.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    pki.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pki


class _TicketHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"items": [{"id": "t-1", "type": "adult", "scans": []}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


class TLSServer(ThreadingHTTPServer):
    """An HTTPS server on 127.0.0.1 that records the SNI name of each connection."""

    # server_close() joins the handler threads, so no connection outlives its test: under
    # emulation a handler still running at teardown left its SSLSocket to be collected (and
    # warned about) in a later test.
    daemon_threads = False
    block_on_close = True

    def __init__(self, pki: Pki) -> None:
        super().__init__(("127.0.0.1", 0), _TicketHandler)
        self.names: list[str | None] = []
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(pki.cert_file, pki.key_file)
        self.context.sni_callback = lambda _sock, name, _context: self.names.append(name)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        return self.context.wrap_socket(sock, server_side=True), address


@pytest.fixture
def tls_server(pki: Pki) -> Iterator[TLSServer]:
    server = TLSServer(pki)
    yield server
    server.shutdown()
    server.server_close()


def tls_client(server: TLSServer, pki: Pki, host: str) -> AnyRoadClient:
    session = net.session(net.Resolver(Loopback()))
    session.verify = str(pki.ca_file)
    port = server.server_address[1]
    return AnyRoadClient(
        f"https://{host}:{port}/v1", token=lambda: DEMO_TOKEN, timeout_s=2.0, session=session
    )


def test_tls_checks_and_names_the_host_and_keeps_the_connection(
    tls_server: TLSServer, pki: Pki, codes: dict[str, str]
) -> None:
    api = tls_client(tls_server, pki, HOST)
    replies = [api.verify(codes["admitted"]) for _ in range(3)]
    api.close()
    assert [reply.kind for reply in replies] == ["ticket"] * 3
    assert tls_server.names == [HOST]  # SNI is the host name; one connection for all three


def test_tls_refuses_a_certificate_for_another_host(
    tls_server: TLSServer, pki: Pki, codes: dict[str, str]
) -> None:
    api = tls_client(tls_server, pki, f"other.{HOST}")  # resolves to the same 127.0.0.1
    reply = api.verify(codes["admitted"])
    api.close()
    assert (reply.kind, reply.code, reply.sent) == ("unreachable", "tls_error", False)


# The pieces


def test_a_lookup_answers_every_waiter_and_is_kept_a_while() -> None:
    dns = Loopback()
    dns.ready.clear()
    resolver = net.Resolver(dns)
    by = time.monotonic() + HANG_S

    def resolve(_: int) -> list[net.AddrInfo]:
        return resolver.resolve(HOST, 443, by=by)

    with ThreadPoolExecutor(max_workers=4) as pool:
        waiting = [pool.submit(resolve, n) for n in range(4)]
        dns.ready.set()
        answers = [future.result() for future in waiting]
    assert {answer[0][4] for answer in answers} == {("127.0.0.1", 443)}
    assert resolver.resolve(HOST, 80, by=by)[0][4] == ("127.0.0.1", 80)  # any port, from cache
    assert dns.calls == [HOST]


def test_a_failed_lookup_is_not_kept(dead_dns: DeadDNS) -> None:
    resolver = net.Resolver(dead_dns)
    dead_dns.released.set()  # it answers at once now, with a failure
    for _ in range(2):
        with pytest.raises(socket.gaierror):
            resolver.resolve(HOST, 443, by=time.monotonic() + HANG_S)
    assert dead_dns.calls == [HOST, HOST]


def test_an_address_is_never_looked_up(dead_dns: DeadDNS) -> None:
    resolver = net.Resolver(dead_dns)
    assert resolver.resolve("127.0.0.1", 8080, by=time.monotonic())[0][4] == ("127.0.0.1", 8080)
    assert dead_dns.calls == []


def test_the_watchdog_wakes_a_blocked_recv_at_the_deadline() -> None:
    near, far = socket.socketpair()
    with near, far:
        near.settimeout(HANG_S)
        with net.deadline(TIMEOUT_S) as deadline:
            deadline.watch(near)
            data, elapsed = timed(near.recv, 1)
            assert deadline.cut
        assert data == b""
        assert TIMEOUT_S - 0.05 < elapsed < TIMEOUT_S + MARGIN_S


def test_an_inner_deadline_never_outlives_the_outer_one() -> None:
    with net.deadline(TIMEOUT_S) as outer:
        with net.deadline(60.0) as inner:
            assert inner.at == outer.at
            assert net.current() is inner
        assert net.current() is outer
    assert net.current() is None
