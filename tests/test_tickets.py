"""Payload parsing and the text that reaches screens and logs."""

import base64
import json

from hypothesis import given
from hypothesis import strategies as st

from device.tickets import describe_code, display_safe, log_safe, parse_payload


def anyroad(payload: object) -> str:
    raw = json.dumps(payload).encode()
    return "data:application/json;base64," + base64.b64encode(raw).decode()


def test_an_anyroad_code_gives_its_ids() -> None:
    payload = parse_payload(anyroad({"booking_id": 1001, "ticket_id": 5001, "guest_id": 7}))
    assert payload is not None
    assert (payload.booking_id, payload.ticket_id, payload.guest_id) == ("1001", "5001", "7")
    assert describe_code(anyroad({"booking_id": 1001, "ticket_id": 5001})) == "B1001 T5001"


def test_other_codes_are_not_payloads() -> None:
    assert parse_payload("https://example.com") is None
    assert parse_payload("data:application/json;base64,!!!") is None
    assert parse_payload(anyroad([1, 2])) is None
    assert parse_payload(anyroad({"booking_id": "1\x1b[2J", "ticket_id": 1})) is None


def test_escape_sequences_never_reach_a_log_raw() -> None:
    assert log_safe("\x1b[31mRED\x1b[0m") == "\\x1b[31mRED\\x1b[0m"
    assert log_safe("a\u202eb") == "a\\u202eb"


def test_long_codes_are_shortened_with_their_length() -> None:
    text = log_safe("x" * 5000, 10)
    assert text == "xxxxxxxxxx...(5000 chars)"


@given(st.text())
def test_log_text_is_always_printable(text: str) -> None:
    safe = log_safe(text)
    assert safe.isprintable()
    assert len(safe) <= 48 + len("...(") + len(str(len(text))) + len(" chars)")


@given(st.text())
def test_display_text_is_always_printable_ascii(text: str) -> None:
    assert all(" " <= char <= "~" for char in display_safe(text))


def test_display_text_folds_accents() -> None:
    assert display_safe("Zoë Ångström") == "Zoe Angstrom"
