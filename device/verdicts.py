"""The verdict vocabulary: one word per outcome, the same in events, logs, screens and tests."""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    """What the guest is told. See ARCHITECTURE.md for when each applies."""

    ADMITTED = "admitted"
    ALREADY_SCANNED = "already_scanned"
    VALID = "valid"
    CANCELED = "canceled"
    TOO_EARLY = "too_early"
    TOO_LATE = "too_late"
    INVALID = "invalid"
    UNAUTHORIZED = "unauthorized"
    SETUP_ERROR = "setup_error"  # the URL answers, but not as AnyRoad: wrong base_url
    SERVER_ERROR = "server_error"
    UNREACHABLE = "unreachable"
    ACCEPTED_OFFLINE = "accepted_offline"
