"""What a QR code says, made safe: AnyRoad payload parsing and text fit for screens and logs."""

from __future__ import annotations

import base64
import binascii
import json
import unicodedata
from dataclasses import dataclass

ANYROAD_PREFIX = "data:application/json;base64,"
LOG_LIMIT = 48


@dataclass(frozen=True)
class TicketPayload:
    """The ids an AnyRoad ticket code carries. Useful for display and logs; proves nothing."""

    booking_id: str
    ticket_id: str
    guest_id: str = ""

    @property
    def label(self) -> str:
        """A short human label, e.g. "B1001 T5001"."""
        return f"B{self.booking_id} T{self.ticket_id}"


def parse_payload(qr_code: str) -> TicketPayload | None:
    """The ids in an AnyRoad ``data:application/json;base64,…`` code, or None for other codes."""
    if not qr_code.startswith(ANYROAD_PREFIX) or len(qr_code) > 4096:
        return None
    try:
        raw = base64.b64decode(qr_code[len(ANYROAD_PREFIX) :], validate=True)
        data = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):  # "[[[[…" nests past the C stack limit
        return None
    if not isinstance(data, dict):
        return None
    booking, ticket = _id(data.get("booking_id")), _id(data.get("ticket_id"))
    if not booking or not ticket:
        return None
    return TicketPayload(booking, ticket, _id(data.get("guest_id")))


def _id(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return ""
    text = str(value)
    return text if 0 < len(text) <= 32 and text.isalnum() else ""


def log_safe(text: str, limit: int = LOG_LIMIT) -> str:
    """Text fit for a log line: control and invisible characters escaped, long text shortened."""
    escaped = "".join(_escape(char) for char in text[: limit * 2])
    if len(escaped) > limit or len(text) > limit * 2:
        return f"{escaped[:limit]}...({len(text)} chars)"
    return escaped


def _escape(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if char.isprintable():
        return char
    # Escape sequences, bidi overrides, NULs: shown, never interpreted by a terminal.
    return char.encode("unicode_escape").decode("ascii")


def terminal_safe(text: str) -> str:
    """Text whole and as decoded, for a terminal: control and invisible characters escaped.

    Unlike log_safe, a backslash stays one backslash, so a printed code can be copied back.
    """
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def display_safe(text: str, limit: int = 40) -> str:
    """Printable ASCII for the OLED's bitmap font: accents folded, anything else as "?"."""
    folded = unicodedata.normalize("NFKD", text[: limit * 4])
    ascii_only = "".join(
        char if " " <= char <= "~" else "?" for char in folded if not unicodedata.combining(char)
    )
    return ascii_only[:limit]


def describe_code(qr_code: str) -> str:
    """How the code is named in logs and on screen: its AnyRoad ids, or a shortened safe text."""
    payload = parse_payload(qr_code)
    return payload.label if payload else log_safe(qr_code, 24)
