"""Properties that hold for any input: payloads, safe text, what is sent and what comes back.

Every test here is derandomized: the same examples run on every machine, every time.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import requests
import urllib3
from hypothesis import example, given, settings
from hypothesis import strategies as st
from requests.adapters import HTTPAdapter

from device.api import MAX_BODY_BYTES, AnyRoadClient, Reply
from device.config import Mode
from device.feedback import screen_for, status_line
from device.sandbox import DEMO_TOKEN, SandboxServer
from device.screens import render
from device.tickets import (
    ANYROAD_PREFIX,
    TicketPayload,
    describe_code,
    display_safe,
    log_safe,
    parse_payload,
)
from device.verdict import decide
from device.verdicts import Verdict

DEVICE = "10000000a1b2c3d4"
deterministic = settings(derandomize=True, database=None, deadline=None, max_examples=100)

# What must never reach a terminal raw: escapes, line breaks, bidi controls, NUL, C1 CSI.
DANGEROUS = frozenset(
    "\x00\x07\x08\x1b\r\n\x85\x9b\u2028\u2029\u200e\u200f\u061c"
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
TERMINAL_TRICKS = [
    "\x1b",
    "\x1b[2J",
    "\x1b]0;pwned\x07",
    "\x9b31m",
    "\r\n",
    "\x00",
    "\x7f",
    "\x08",
    "\t",
    "\u202e",
    "\u2066",
    "\u200f",
    "\ufeff",
    "\u2028",
]
JSON_TRICKS = [
    '"',
    "\\",
    '\\"',
    "\\u0000",
    "\\ud800",
    "{",
    "}",
    '{"device":"x"}',
    '","device":"evil',
]


def hostile_text(*, surrogates: bool = False, max_size: int = 40) -> st.SearchStrategy[str]:
    """Text a hostile QR code could carry: any characters, mixed with known tricks."""
    char = st.characters(exclude_categories=()) if surrogates else st.characters()
    piece = st.one_of(char, st.sampled_from(TERMINAL_TRICKS + JSON_TRICKS))
    return st.one_of(
        st.text(char, max_size=max_size), st.lists(piece, max_size=max_size).map("".join)
    )


def long_text(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    """A long run of one troublesome unit, ``min_size`` to ``max_size`` characters."""
    units = st.sampled_from(["x", "Z", "\x1b[2J", "é", "🎫", '"', "\\", "\u202e", "\x00"])
    return st.builds(
        lambda unit, size: (unit * size)[:size], units, st.integers(min_size, max_size)
    )


def codes(*, surrogates: bool = False) -> st.SearchStrategy[str]:
    return st.one_of(hostile_text(surrogates=surrogates), long_text(5000, 6000))


# --- tickets.parse_payload ----------------------------------------------------------------


def anyroad(raw: bytes) -> str:
    return ANYROAD_PREFIX + base64.b64encode(raw).decode("ascii")


def compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


ASCII_ALNUM = string.ascii_letters + string.digits
ids = st.one_of(st.integers(0, 10**32 - 1), st.text(ASCII_ALNUM, min_size=1, max_size=32))
id_sets = st.tuples(ids, ids, st.none() | ids)


def payload_of(booking: object, ticket: object, guest: object = None) -> dict[str, object]:
    data = {"booking_id": booking, "ticket_id": ticket}
    return data if guest is None else data | {"guest_id": guest}


def nested(depth: int) -> bytes:
    return b"[" * depth


# Near the C JSON parser's recursion limit (~1000) and up to what one QR code holds.
depths = st.one_of(st.integers(1, 2190), st.sampled_from([998, 999, 1000, 1001, 1500, 2190]))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)
near_payloads = st.one_of(
    st.text(st.characters(exclude_categories=())).map(lambda tail: ANYROAD_PREFIX + tail),
    st.binary(max_size=200).map(anyroad),
    json_values.map(compact).map(anyroad),
    depths.map(nested).map(anyroad),
    depths.map(lambda depth: b'{"a":' * depth).map(anyroad),
    st.integers(4000, 100_000).map(lambda size: ANYROAD_PREFIX + "A" * size),
)


@deterministic
@given(code=st.one_of(codes(surrogates=True), near_payloads))
def test_no_code_makes_payload_parsing_fail(code: str) -> None:
    payload = parse_payload(code)
    if payload is not None:
        for value in (payload.booking_id, payload.ticket_id):
            assert 0 < len(value) <= 32 and value.isalnum()
        assert payload.guest_id == "" or payload.guest_id.isalnum()


def test_a_deeply_nested_payload_is_not_a_ticket_and_does_not_crash() -> None:
    # Found by the property above: json.loads raised RecursionError, which the loop's log
    # line (describe_code) let through and which stopped the scan loop.
    code = anyroad(nested(1500))
    assert len(code) < 2953  # fits in one QR code
    assert parse_payload(code) is None
    assert describe_code(code).endswith(f"...({len(code)} chars)")


@deterministic
@given(id_set=id_sets, order=st.permutations(["booking_id", "ticket_id", "guest_id"]))
def test_every_valid_anyroad_code_gives_back_its_ids(
    id_set: tuple[int | str, int | str, int | str | None], order: list[str]
) -> None:
    booking, ticket, guest = id_set
    data = payload_of(booking, ticket, guest)
    code = anyroad(compact({key: data[key] for key in order if key in data}))
    expected = TicketPayload(str(booking), str(ticket), "" if guest is None else str(guest))
    assert parse_payload(code) == expected
    assert describe_code(code) == f"B{booking} T{ticket}"


def _break_base64(code: str, position: int, junk: str) -> str:
    body = code[len(ANYROAD_PREFIX) :]
    at = position % (len(body) + 1)
    return ANYROAD_PREFIX + body[:at] + junk + body[at:]


@deterministic
@given(id_set=id_sets, position=st.integers(0, 200), junk=st.sampled_from(list("!-_ \n.:*$")))
def test_a_code_with_broken_base64_is_not_a_ticket(
    id_set: tuple[int | str, int | str, int | str | None], position: int, junk: str
) -> None:
    good = anyroad(compact(payload_of(*id_set)))
    assert parse_payload(good) is not None
    assert parse_payload(_break_base64(good, position, junk)) is None
    assert parse_payload(good[:-1]) is None  # truncated: its padding no longer adds up


not_an_id = st.one_of(
    st.booleans(),
    st.none(),
    st.floats(),
    st.integers(max_value=-1),
    st.integers(min_value=10**32),  # 33 digits
    st.text(ASCII_ALNUM, min_size=33, max_size=40),
    st.text(max_size=10).filter(lambda text: not text.isalnum()),
    st.lists(ids, max_size=2),
    st.dictionaries(st.just("id"), ids),
)


@deterministic
@given(id_set=id_sets, bad=not_an_id, slot=st.sampled_from(["booking_id", "ticket_id"]))
def test_a_code_whose_booking_or_ticket_id_is_not_a_short_alphanumeric_is_not_a_ticket(
    id_set: tuple[int | str, int | str, int | str | None], bad: object, slot: str
) -> None:
    data = payload_of(*id_set) | {slot: bad}
    assert parse_payload(anyroad(compact(data))) is None


@deterministic
@given(id_set=id_sets, shape=st.sampled_from(["array", "wrapped", "list_of_one", "string"]))
def test_json_that_is_not_a_flat_object_is_not_a_ticket(
    id_set: tuple[int | str, int | str, int | str | None], shape: str
) -> None:
    data = payload_of(*id_set)
    value: object = {
        "array": list(data.values()),
        "wrapped": {"ticket": data},
        "list_of_one": [data],
        "string": json.dumps(data),
    }[shape]
    assert parse_payload(anyroad(compact(value))) is None


@deterministic
@given(id_set=id_sets)
def test_a_valid_payload_behind_another_prefix_is_not_a_ticket(
    id_set: tuple[int | str, int | str, int | str | None],
) -> None:
    body = anyroad(compact(payload_of(*id_set)))[len(ANYROAD_PREFIX) :]
    for prefix in (
        "DATA:application/json;base64,",
        "data:text/plain;base64,",
        " " + ANYROAD_PREFIX,
    ):
        assert parse_payload(prefix + body) is None


@deterministic
@given(id_set=id_sets, excess=st.integers(-40, 40))
def test_a_code_over_4096_characters_is_not_a_ticket_and_one_at_the_limit_is(
    id_set: tuple[int | str, int | str, int | str | None], excess: int
) -> None:
    data = payload_of(*id_set)
    wanted_raw = (4096 + excess - len(ANYROAD_PREFIX)) * 3 // 4  # base64: 4 chars per 3 bytes
    padding = wanted_raw - len(compact(data | {"note": ""}))
    code = anyroad(compact(data | {"note": "x" * padding}))
    assert abs(len(code) - (4096 + excess)) <= 4
    assert (parse_payload(code) is None) == (len(code) > 4096)


# --- log_safe, display_safe, describe_code ---------------------------------------------

_ESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|[tnr])")


def unescape(logged: str) -> str:
    """The text log_safe escaped, back again."""

    def one(match: re.Match[str]) -> str:
        escape = match.group(1)
        if escape == "\\":
            return "\\"
        if escape in "tnr":
            return {"t": "\t", "n": "\n", "r": "\r"}[escape]
        return chr(int(escape[1:], 16))

    return _ESCAPE.sub(one, logged)


@deterministic
@given(text=st.one_of(hostile_text(surrogates=True), long_text(90, 400)), limit=st.integers(1, 200))
def test_log_text_is_printable_bounded_and_the_same_every_time(text: str, limit: int) -> None:
    safe = log_safe(text, limit)
    assert all(char.isprintable() for char in safe)
    assert not DANGEROUS & set(safe)
    assert len(safe) <= limit + len(f"...({len(text)} chars)")
    assert log_safe(text, limit) == safe


@deterministic
@given(text=hostile_text(surrogates=True, max_size=8))
def test_a_short_code_is_logged_exactly_so_staff_can_read_what_was_scanned(text: str) -> None:
    room = 10 * max(len(text), 1)  # enough for every character escaped as \U0010ffff
    assert unescape(log_safe(text, room)) == text


@deterministic
@given(text=st.text(st.characters(min_codepoint=32, max_codepoint=126).filter(lambda c: c != "\\")))
def test_ordinary_printable_text_is_logged_unchanged(text: str) -> None:
    assert log_safe(text, max(len(text), 1)) == text


@deterministic
@given(text=st.one_of(hostile_text(surrogates=True), long_text(100, 400)), limit=st.integers(1, 60))
def test_screen_text_is_printable_ascii_bounded_and_the_same_every_time(
    text: str, limit: int
) -> None:
    safe = display_safe(text, limit)
    assert all(" " <= char <= "~" for char in safe)
    assert len(safe) <= limit
    assert display_safe(text, limit) == safe
    if text.isascii() and text.isprintable() and len(text) <= limit:
        assert safe == text


@deterministic
@given(
    code=st.one_of(
        codes(surrogates=True),
        near_payloads,
        id_sets.map(lambda id_set: compact(payload_of(*id_set))),
    )
)
def test_a_code_is_named_in_printable_text_of_bounded_length(code: str | bytes) -> None:
    text = anyroad(code) if isinstance(code, bytes) else code
    name = describe_code(text)
    assert all(char.isprintable() for char in name)
    assert not DANGEROUS & set(name)
    assert len(name) <= max(len("B T") + 2 * 32, 24 + len(f"...({len(text)} chars)"))
    assert describe_code(text) == name


# --- what the API client sends -------------------------------------------------------


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture(scope="module")
def client(shared_sandbox: SandboxServer) -> Iterator[AnyRoadClient]:
    api = AnyRoadClient(shared_sandbox.url, token=lambda: DEMO_TOKEN, timeout_s=5.0)
    yield api
    api.close()


def _headers_but_length(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name != "Content-Length"}


@pytest.fixture(scope="module")
def usual_headers(shared_sandbox: SandboxServer, client: AnyRoadClient) -> dict[str, str]:
    """The headers of a request for an ordinary code: a hostile one must not change them."""
    shared_sandbox.reset()
    client.scan(DEVICE, "ordinary")
    (request,) = shared_sandbox.seen()
    return _headers_but_length(request.headers)


def _pairs(body: bytes) -> list[tuple[str, Any]]:
    """The body's top-level key/value pairs, duplicates kept: exactly what a server may read."""
    pairs: list[tuple[str, Any]] = json.loads(body.decode("utf-8"), object_pairs_hook=list)
    return sorted(pairs)


@settings(deterministic, max_examples=60)
@given(code=codes(), mode=st.sampled_from(["scan", "verify"]))
def test_a_code_is_sent_only_as_the_qr_code_string_of_the_documented_body(
    shared_sandbox: SandboxServer,
    client: AnyRoadClient,
    usual_headers: dict[str, str],
    code: str,
    mode: Mode,
) -> None:
    shared_sandbox.reset()
    reply = client.scan(DEVICE, code) if mode == "scan" else client.verify(code)
    (request,) = shared_sandbox.seen()
    assert (request.method, request.path) == ("POST", f"/sandbox/v1/tickets/{mode}")
    expected = {"device": DEVICE, "qr_code": code} if mode == "scan" else {"qr_code": code}
    assert _pairs(request.body) == sorted(expected.items())
    assert _headers_but_length(request.headers) == usual_headers
    assert int(request.headers["Content-Length"]) == len(request.body)
    assert (reply.kind, reply.code) == ("problem", "ticket_not_found")
    assert decide(reply, mode=mode, device=DEVICE, reentry="warn").verdict is Verdict.INVALID


@settings(deterministic, max_examples=50)
@given(
    before=hostile_text(max_size=10),
    surrogate=st.characters(categories=["Cs"]),
    after=hostile_text(surrogates=True, max_size=10),
)
def test_a_code_with_a_lone_surrogate_is_refused_on_the_device_and_nothing_is_sent(
    shared_sandbox: SandboxServer, client: AnyRoadClient, before: str, surrogate: str, after: str
) -> None:
    shared_sandbox.reset()
    code = before + surrogate + after
    replies: list[tuple[Mode, Reply]] = [
        ("scan", client.scan(DEVICE, code)),
        ("verify", client.verify(code)),
    ]
    for mode, reply in replies:
        assert (reply.kind, reply.code) == ("problem", "unencodable_code")
        assert not reply.may_have_recorded
        assert decide(reply, mode=mode, device=DEVICE, reentry="warn").verdict is Verdict.INVALID
    assert shared_sandbox.seen() == []


# --- whatever the server answers ----------------------------------------------------


class OneAnswer(HTTPAdapter):
    """A transport that answers every request with one scripted response, and keeps them."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        super().__init__()
        self.answer = (status, dict(headers), body)
        self.sent: list[requests.PreparedRequest] = []

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        self.sent.append(request)
        status, headers, body = self.answer
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(body),
            headers=headers,
            status=status,
            preload_content=False,
            decode_content=False,
        )
        return self.build_response(request, raw)


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def logged() -> Iterator[list[logging.LogRecord]]:
    """Every log record, at every level, while the block runs."""
    root, keep = logging.getLogger(), _Keep()
    level = root.level
    root.addHandler(keep)
    root.setLevel(logging.DEBUG)
    try:
        yield keep.records
    finally:
        root.removeHandler(keep)
        root.setLevel(level)


def assert_clean_log(records: list[logging.LogRecord]) -> None:
    for record in records:
        message = record.getMessage()
        assert message.isprintable(), ascii(message)
        assert len(message) <= 300, ascii(message)


server_text = hostile_text(max_size=12)
leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), server_text)
any_json = st.recursive(
    leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
offsets = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])
# Any year, the calendar's edges included: a server may send 0001-01-01T00:00:00+14:00.
times = st.one_of(
    st.datetimes(timezones=st.one_of(st.none(), offsets)).map(datetime.isoformat),
    st.sampled_from(["", "yesterday", "2024-02-30T10:00:00Z", "2024-05-01T25:00:00", "9" * 41]),
    leaf,
)
slots = st.fixed_dictionaries(
    {}, optional={"local_datetime_start": times, "local_datetime_end": times}
)
scans = st.fixed_dictionaries(
    {}, optional={"device": st.sampled_from([DEVICE, "gate-2"]) | leaf, "scanned_at": times}
)
tickets = st.fixed_dictionaries(
    {},
    optional={
        "id": leaf,
        "type": leaf,
        "time_slot": slots | leaf,
        "scans": st.lists(scans | leaf, max_size=3) | leaf,
    },
)
pages = st.fixed_dictionaries({"items": st.lists(tickets | leaf, max_size=2) | leaf})
problem_codes = st.sampled_from(
    ["booking_canceled", "booking_in_future", "booking_in_past", "ticket_not_found", ""]
)
problems = st.fixed_dictionaries(
    {},
    optional={
        "code": problem_codes | leaf,
        "status": st.sampled_from([400, 404, 409, 422]) | leaf,  # AnyRoad echoes its status
        "detail": leaf,
        "request_id": leaf,
        "time_slot": slots | leaf,
        "scans": st.lists(scans | leaf, max_size=3) | leaf,
    },
)


@dataclass(frozen=True)
class PaddedPage:
    """An empty page padded with spaces to ``size`` bytes (kept small in failure reports)."""

    size: int

    def body(self) -> bytes:
        head = b'{"items": []'
        return head + b" " * (self.size - len(head) - 1) + b"}"


bodies = st.one_of(
    pages.map(compact),
    problems.map(compact),
    any_json.map(compact),
    st.binary(max_size=64),
    st.sampled_from([b"", b"<html>portal</html>", b"null", b"[]", b"\xff\xfe{", b'{"a":1}{"b":2}']),
    st.integers(1, 5000).map(nested),
    st.sampled_from([PaddedPage(MAX_BODY_BYTES), PaddedPage(MAX_BODY_BYTES + 1)]),
)
statuses = st.one_of(
    st.sampled_from([200, 201, 204, 301, 302, 307, 400, 401, 403, 404, 408, 409, 422, 429, 500]),
    st.integers(100, 999),
)
latin1_text = st.text(st.characters(max_codepoint=255), max_size=30)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Content-Type": st.sampled_from(["application/json", "text/html", "application/x-evil"]),
        "Date": st.sampled_from(
            ["Wed, 01 May 2024 10:00:00 GMT", "Mon, 01 Jan 0001 00:00:00 +1400"]
        )
        | latin1_text,
        "X-Request-Id": latin1_text,
        "Location": st.just("http://anyroad.test/portal/login"),
    },
)


def _verdicts_for(status: int, body: bytes) -> set[Verdict]:
    """The verdicts the README's table allows for this answer."""
    if len(body) > MAX_BODY_BYTES:
        return {Verdict.SERVER_ERROR}
    if 200 <= status < 300:
        return {Verdict.ADMITTED, Verdict.ALREADY_SCANNED, Verdict.VALID, Verdict.SERVER_ERROR}
    if status < 400 or status >= 500 or status in (408, 429):
        return {Verdict.SERVER_ERROR}
    if status in (401, 403):
        return {Verdict.UNAUTHORIZED}
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        parsed = None
    is_problem = (
        isinstance(parsed, dict)
        and isinstance(parsed.get("code"), str)
        and parsed["code"] != ""
        and type(parsed.get("status")) is int
        and parsed["status"] == status
        and status not in (404, 405)
    )
    if not is_problem:
        # Not AnyRoad's problem body: the URL is not the API's, never a refused ticket.
        return {Verdict.SETUP_ERROR}
    return {Verdict.CANCELED, Verdict.TOO_EARLY, Verdict.TOO_LATE, Verdict.INVALID}


@deterministic
@example(status=404, answer_headers={}, body=PaddedPage(MAX_BODY_BYTES + 1), mode="scan")
@example(status=200, answer_headers={}, body=PaddedPage(MAX_BODY_BYTES), mode="scan")
@example(status=302, answer_headers={"Location": "http://x.test/"}, body=b"", mode="scan")
@example(status=200, answer_headers={}, body=nested(5000), mode="verify")
@given(
    status=statuses,
    answer_headers=headers,
    body=bodies,
    mode=st.sampled_from(["scan", "verify"]),
)
def test_any_server_answer_is_one_request_one_verdict_and_a_screen_that_draws(
    status: int, answer_headers: dict[str, str], body: bytes | PaddedPage, mode: Mode
) -> None:
    if isinstance(body, PaddedPage):
        body = body.body()
    if status < 200 or status in (204, 304):
        body = b""  # HTTP gives these no body: a real client never reads one
    transport = OneAnswer(status, answer_headers, body)
    session = requests.Session()
    session.mount("http://", transport)
    client = AnyRoadClient(
        "http://anyroad.test/v1", token=lambda: DEMO_TOKEN, timeout_s=5.0, session=session
    )
    with logged() as records:
        reply = client.scan(DEVICE, "code") if mode == "scan" else client.verify("code")
        decision = decide(reply, mode=mode, device=DEVICE, reentry="warn")
        screen = screen_for(decision, status_line(mode, reply.answered))
        for size in ((128, 64), (128, 32)):
            assert render(screen, size).size == size
    client.close()
    assert len(transport.sent) == 1  # never retried, and a redirect is never followed
    assert decision.verdict in _verdicts_for(status, body)
    if decision.admits:  # only a readable 2xx ticket opens the door
        assert 200 <= status < 300 and reply.kind == "ticket"
    if len(body) > MAX_BODY_BYTES:
        assert (reply.kind, reply.code) == ("server_error", "response_too_large")
    assert_clean_log(records)
