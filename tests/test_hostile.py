"""Hostile codes and broken servers, end to end: camera frame to verdict, logs, console, events.

A hostile code or answer must get one clear verdict, must not stop the loop, must leave the next
guest unaffected, and must never reach a log, the console or the events file raw.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import socket
import threading
import tracemalloc
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zxingcpp
from PIL import Image

from device.api import MAX_BODY_BYTES, AnyRoadClient
from device.app import ConsolePrinter, build
from device.cli import main
from device.config import (
    ApiConfig,
    CameraConfig,
    Config,
    DeviceConfig,
    HardwareConfig,
    OfflineConfig,
    ScanConfig,
)
from device.loop import Report
from device.sandbox import DEMO_TOKEN, Fault, SandboxServer
from device.tickets import ANYROAD_PREFIX
from device.verdict import decide
from device.verdicts import Verdict
from tests.fakes import FakeClock
from tests.frames import write_frames

FPS = 10.0
DEVICE = "gate-test"


# --- QR frames, including raw bytes --------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """Bytes in a QR byte segment; ``eci_utf8`` declares them UTF-8 (ECI 26) whatever they are."""

    data: bytes
    eci_utf8: bool = False


Content = str | Raw
Shot = tuple[Content | None, int]  # (code in view or None, how many frames)


def qr_frame(content: Content | None) -> Image.Image:
    """A grey camera view with the code in the middle; big enough for a version-40 symbol."""
    if content is None:
        return Image.new("L", (320, 240), 110)
    if isinstance(content, Raw):
        options = {"eci": 26} if content.eci_utf8 else {}
        symbol = zxingcpp.create_barcode(content.data, zxingcpp.BarcodeFormat.QRCode, **options)
    else:
        symbol = zxingcpp.create_barcode(content, zxingcpp.BarcodeFormat.QRCode)
    pixels = np.asarray(zxingcpp.write_barcode_to_image(symbol, scale=3), dtype=np.uint8)
    tile = Image.fromarray(pixels)
    view = Image.new("L", (max(320, tile.width + 40), max(240, tile.height + 40)), 110)
    view.paste(tile, ((view.width - tile.width) // 2, (view.height - tile.height) // 2))
    return view


# --- the whole loop, and everything it writes ---------------------------------------------


@dataclass
class Run:
    reports: list[Report] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    events_bytes: bytes = b""
    console: str = ""

    @property
    def verdicts(self) -> list[str]:
        return [event["verdict"] for event in self.events if event["event"] == "verdict"]

    @property
    def relay(self) -> list[bool]:
        return [event["on"] for event in self.events if event["event"] == "relay"]


def play(tmp_path: Path, base_url: str, shots: Sequence[Shot], *, timeout_s: float = 2.0) -> Run:
    """A door unit on the sim backend plays ``shots`` to the end against ``base_url``."""
    folder = write_frames(tmp_path / "frames", shots, qr_frame)
    events = tmp_path / "events.jsonl"
    config = Config(
        api=ApiConfig(base_url=base_url, timeout_s=timeout_s),
        camera=CameraConfig(source=f"images:{folder}", fps=FPS),
        scan=ScanConfig(repeat_window_s=1.0),
        device=DeviceConfig(id=DEVICE, profile="door"),
        hardware=HardwareConfig(
            backend="sim", events=str(events), result_hold_s=0.5, relay_pulse_s=1.0
        ),
        offline=OfflineConfig(journal=tmp_path / "journal.db"),
    )
    clock, run, console = FakeClock(), Run(), io.StringIO()
    printer = ConsolePrinter(console, draw_screen=True)
    observers: list[Callable[[Report], None]] = [run.reports.append, printer]
    with build(
        config, observers=observers, clock=clock, sleep=clock.sleep, token=DEMO_TOKEN
    ) as running:
        running.loop.run(threading.Event())
    run.events_bytes = events.read_bytes()
    run.events = [json.loads(line) for line in run.events_bytes.decode("ascii").splitlines()]
    run.console = console.getvalue()
    return run


def assert_nothing_raw(
    run: Run, logs: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """No log line, console line, terminal output or events byte carries a raw control."""
    for record in logs.records:
        if record.name.startswith("device.sandbox"):
            continue  # the test's server, not the scanner
        message = record.getMessage()
        assert message.isprintable(), ascii(message)
        assert len(message) <= 300, ascii(message)
        alarm = record.name == "device.api_health" and message.startswith("setup error: ")
        assert alarm or record.levelno < logging.ERROR, ascii(message)  # the alarm is meant
        assert record.exc_info is None, ascii(message)
    for line in run.console.splitlines():
        assert line.isprintable(), ascii(line)
    names = {verdict.value for verdict in Verdict}
    verdict_lines = [line for line in run.console.splitlines() if line.split(" ", 1)[0] in names]
    assert len(verdict_lines) == len(run.verdicts)  # one console line per verdict
    assert all(32 <= byte < 127 or byte == 10 for byte in run.events_bytes)
    out, err = capsys.readouterr()
    for line in (out + err).splitlines():
        assert line.isprintable(), ascii(line)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every log record, at every level (read ``.records`` after the run)."""
    caplog.set_level(logging.DEBUG)
    return caplog


# --- hostile codes through the whole loop -----------------------------------------------

DEEP_NESTING = ANYROAD_PREFIX + base64.b64encode(b"[" * 1500).decode("ascii")  # 2029 chars
RAW_BYTES = b"\x00\xff\xfe\x80\x9b[2J\x1b]0;pwned\x07"
BAD_UTF8 = b"\xc3\x28\xff\x1b[2J"

# (name, what the code holds, the text the decoder must hand the loop)
HOSTILE: list[tuple[str, Content, str]] = [
    ("window_title_escape", "\x1b]0;pwned\x07", "\x1b]0;pwned\x07"),
    ("clear_screen_escape", "\x1b[2J\x1b[H", "\x1b[2J\x1b[H"),
    ("c1_csi_escape", "\x9b31mred", "\x9b31mred"),
    ("bidi_override", "\u202egnp.exe\u202c", "\u202egnp.exe\u202c"),
    ("bidi_isolates", "\u2066\u2067abc\u2069\u2069", "\u2066\u2067abc\u2069\u2069"),
    ("fake_log_line", "x\r\nverdict=admitted mode=scan", "x\r\nverdict=admitted mode=scan"),
    ("nul", "nul\x00byte", "nul\x00byte"),
    ("json_look_alike", '{"device":"gate-x","qr_code":"y"}', '{"device":"gate-x","qr_code":"y"}'),
    ("json_break_out", '","device":"evil', '","device":"evil'),
    ("three_thousand_chars", "Z" * 3000, "Z" * 3000),
    ("deeply_nested_payload", DEEP_NESTING, DEEP_NESTING),
    ("raw_bytes", Raw(RAW_BYTES), RAW_BYTES.decode("latin-1")),  # zxing-cpp guesses ISO-8859-1
    ("bad_utf8_declared_utf8", Raw(BAD_UTF8, eci_utf8=True), BAD_UTF8.decode("utf-8", "replace")),
]


@pytest.mark.parametrize(("content", "text"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_a_hostile_code_gets_one_invalid_verdict_and_the_next_guest_is_admitted(
    tmp_path: Path,
    sandbox: SandboxServer,
    codes: dict[str, str],
    logs: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    content: Content,
    text: str,
) -> None:
    shots: list[Shot] = [(content, 2), (None, 2), (codes["admitted"], 2), (None, 8)]
    run = play(tmp_path, sandbox.url, shots)
    assert run.verdicts == ["invalid", "admitted"]
    assert run.reports[0].code == text  # the hostile text really reached the loop
    assert [request.json() for request in sandbox.seen()] == [
        {"device": DEVICE, "qr_code": text},
        {"device": DEVICE, "qr_code": codes["admitted"]},
    ]
    assert run.events[[e["event"] for e in run.events].index("verdict")]["qr_code"] == text
    assert run.relay == [True, False]  # the door opened for the real guest only
    assert_nothing_raw(run, logs, capsys)


# --- broken answers through the whole loop -----------------------------------------------

FAULT_VERDICTS = {
    Fault.SERVER_ERROR: "server_error",
    Fault.HTML: "server_error",
    Fault.GARBAGE: "server_error",
    Fault.WRONG_SHAPE: "server_error",
    Fault.EMPTY: "server_error",
    Fault.REDIRECT: "server_error",
    Fault.RESET: "unreachable",
    Fault.LOST_ANSWER: "unreachable",
    Fault.SLOW: "unreachable",
    Fault.UNAUTHORIZED: "unauthorized",
    Fault.HUGE: "server_error",
}


@pytest.mark.parametrize("fault", list(Fault))  # a new Fault fails here until it is listed above
def test_after_any_broken_answer_the_next_guest_is_still_admitted(
    tmp_path: Path,
    sandbox: SandboxServer,
    codes: dict[str, str],
    logs: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    fault: Fault,
) -> None:
    sandbox.inject(fault, delay_s=5.0)  # SLOW: far past the timeout; the sandbox drops it at stop
    shots: list[Shot] = [(codes["admitted_2"], 2), (None, 2), (codes["admitted"], 2), (None, 8)]
    run = play(tmp_path, sandbox.url, shots, timeout_s=0.3 if fault is Fault.SLOW else 2.0)
    assert run.verdicts == [FAULT_VERDICTS[fault], "admitted"]
    assert run.relay == [True, False]  # a broken answer never opens the door
    ticket_paths = [r.path for r in sandbox.seen() if r.path.startswith("/sandbox/v1/tickets/")]
    assert ticket_paths == ["/sandbox/v1/tickets/scan"] * 2  # never retried, no redirect followed
    assert_nothing_raw(run, logs, capsys)


# --- a server under someone else's control ----------------------------------------------

Answer = bytes | Callable[[socket.socket], None]


def http(status: int, body: object, *headers: tuple[str, str]) -> bytes:
    """One raw HTTP/1.1 answer; ``body`` as JSON unless it is bytes already."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    lines = [
        f"HTTP/1.1 {status} Whatever",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


class RawServer:
    """An HTTP server on 127.0.0.1 that answers each request with the next scripted bytes."""

    def __init__(self, answers: Sequence[Answer]) -> None:
        self._answers = deque(answers)
        self.bodies: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        while self._answers:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.settimeout(5)
                self.bodies.append(_read_request(conn))
                answer = self._answers.popleft()
                if callable(answer):
                    answer(conn)
                else:
                    conn.sendall(answer)
                conn.shutdown(socket.SHUT_WR)


def _read_request(conn: socket.socket) -> bytes:
    """The request's body; all of it is read, so closing afterwards never resets the answer."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("the client left mid-request")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("the client left mid-request")
        body += chunk
    return body


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def page(**ticket: Any) -> dict[str, Any]:
    """AnyRoad's page envelope around one ticket."""
    now = datetime.now(UTC)
    item = {
        "id": "2001",
        "type": "guest",
        "time_slot": {
            "local_datetime_start": _iso(now - timedelta(hours=1)),
            "local_datetime_end": _iso(now + timedelta(hours=3)),
        },
        "scans": [],
    }
    return {
        "url": "",
        "next_url": "",
        "previous_url": "",
        "first_url": "",
        "items": [item | ticket],
    }


ESCAPES = "\x1b]0;pwned\x07\x1b[2J\u202e\r\nverdict=admitted"
HOSTILE_TICKET = page(
    id=ESCAPES,
    type=ESCAPES,
    scans=[{"device": ESCAPES, "scanned_at": _iso(datetime.now(UTC) - timedelta(minutes=25))}],
)
HOSTILE_TICKET["request_id"] = ESCAPES
HOSTILE_PROBLEM = {
    "status": 400,
    "code": "\x1b[2J\r\nbooking_canceled",
    "detail": ESCAPES,
    "request_id": ESCAPES,
}


def test_control_characters_in_a_servers_answer_never_reach_log_console_or_events(
    tmp_path: Path, logs: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = [
        http(200, HOSTILE_TICKET, ("X-Request-Id", "\x1b[2J\x00\x9b")),
        http(400, HOSTILE_PROBLEM, ("X-Request-Id", "\x1b[2J")),
        http(200, page()),
    ]
    shots: list[Shot] = [("guest-1", 2), (None, 2), ("guest-2", 2), (None, 2), ("guest-3", 2)]
    with RawServer(answers) as server:
        run = play(tmp_path, server.url, [*shots, (None, 8)])
    assert run.verdicts == ["already_scanned", "invalid", "admitted"]
    assert len(server.bodies) == 3
    assert run.relay == [True, False]
    assert_nothing_raw(run, logs, capsys)


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_ticket_time_at_the_edge_of_the_calendar_does_not_stop_the_loop(
    tmp_path: Path, moment: str
) -> None:
    slot = {"local_datetime_start": moment, "local_datetime_end": moment}
    answers = [http(200, page(time_slot=slot)), http(200, page())]
    with RawServer(answers) as server:
        run = play(tmp_path, server.url, [("guest-1", 2), (None, 2), ("guest-2", 2), (None, 8)])
    assert len(run.verdicts) == 2
    assert run.verdicts[-1] == "admitted"


def test_the_scan_command_never_prints_a_servers_control_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = tmp_path / "token"
    token.write_text(DEMO_TOKEN + "\n")
    with RawServer([http(200, page(type=ESCAPES))]) as server:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[api]\nbase_url = "{server.url}"\ntoken_file = "{token}"\ntimeout_s = 2.0\n'
            f'[device]\nid = "{DEVICE}"\n',
            encoding="utf-8",
        )
        assert main(["scan", "guest-1", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("admitted: WELCOME")
    for line in out.splitlines():
        assert line.isprintable(), ascii(line)


# --- answers that are huge, endless, compressed or not HTTP at all ------------------------


def _client(url: str) -> AnyRoadClient:
    return AnyRoadClient(url, token=lambda: DEMO_TOKEN, timeout_s=2.0)


def padded_page(size: int) -> bytes:
    body = json.dumps(page()).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


def test_an_answer_of_exactly_the_size_cap_is_read_and_one_byte_more_is_refused() -> None:
    answers = [http(200, padded_page(MAX_BODY_BYTES)), http(200, padded_page(MAX_BODY_BYTES + 1))]
    with RawServer(answers) as server:
        client = _client(server.url)
        at_cap, over_cap = client.scan(DEVICE, "guest-1"), client.scan(DEVICE, "guest-2")
        client.close()
    assert at_cap.kind == "ticket"
    assert (over_cap.kind, over_cap.code) == ("server_error", "response_too_large")


def _endless(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    conn.sendall(b"Content-Length: 10000000000\r\n\r\n")
    while True:
        conn.sendall(b" " * 65536)  # until the client hangs up


def _gzip(data_size: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    chunk = b" " * (1 << 20)
    return b"".join(packer.compress(chunk) for _ in range(data_size >> 20)) + packer.flush()


def test_an_endless_answer_is_cut_off_at_the_size_cap() -> None:
    with RawServer([_endless]) as server:
        client = _client(server.url)
        reply = client.scan(DEVICE, "guest-1")
        client.close()
    assert (reply.kind, reply.code) == ("server_error", "response_too_large")


def test_a_compressed_bomb_is_refused_by_its_inflated_size_without_inflating_it_all() -> None:
    bomb = _gzip(64 << 20)  # 64 MiB of spaces in ~65 KB
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
    answer += f"Content-Length: {len(bomb)}\r\nConnection: close\r\n\r\n".encode() + bomb
    with RawServer([answer]) as server:
        client = _client(server.url)
        tracemalloc.start()
        try:
            reply = client.scan(DEVICE, "guest-1")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        client.close()
    assert (reply.kind, reply.code) == ("server_error", "response_too_large")
    assert peak < 16 << 20  # a few chunks past the 1 MiB cap, not the 64 MiB inside


MALFORMED: list[tuple[str, bytes]] = [
    ("not_http", b"garbage\r\n\r\n"),
    ("bare_json_without_status_line", b'{"items": []}'),
    ("hang_up_without_a_byte", b""),
    ("unreadable_status", b"HTTP/1.1 abc\r\n\r\n"),
    ("truncated_body", b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"items"'),
    ("broken_chunking", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n"),
    ("corrupt_gzip", b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope"),
    ("two_lengths", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"),
    ("negative_length", b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n{}"),
    ("two_hundred_headers", b"HTTP/1.1 200 OK\r\n" + b"X-A: 1\r\n" * 200 + b"\r\n"),
    ("seventy_kb_header", b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 70_000 + b"\r\n\r\n"),
    ("status_999", http(999, {"code": "\x1b[2J"})),
    ("controls_in_headers", http(500, b"", ("X-Request-Id", "\x1b[2J\x00\xff\x9b"))),
]


@pytest.mark.parametrize("answer", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_a_malformed_http_answer_is_one_clear_failure_verdict_and_logged_safely(
    logs: pytest.LogCaptureFixture, answer: bytes
) -> None:
    with RawServer([answer]) as server:
        client = _client(server.url)
        reply = client.scan(DEVICE, "guest-1")
        client.close()
        assert len(server.bodies) == 1  # never retried
    decision = decide(reply, mode="scan", device=DEVICE, reentry="warn")
    assert decision.verdict in {Verdict.SERVER_ERROR, Verdict.UNREACHABLE}
    assert not decision.admits
    for record in logs.records:
        assert record.getMessage().isprintable(), ascii(record.getMessage())


@pytest.mark.parametrize("status", [401, 403])
def test_a_gateways_bare_401_still_says_call_a_supervisor(status: int) -> None:
    with RawServer([http(status, b"<html>denied</html>")]) as server:
        reply = _client(server.url).scan(DEVICE, "guest-1")
    assert (reply.kind, reply.code) == ("unauthorized", f"http_{status}")
