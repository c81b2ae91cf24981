"""Is this configuration talking to AnyRoad? The proof that it once did, and the setup alarm.

A scanner whose ``base_url`` or credential is wrong must never pass for a working one. Two
rules follow. Offline acceptance needs proof that this configuration has worked: an
AnyRoad-shaped answer (a ticket, or AnyRoad's problem body) from this ``base_url`` with this
credential, kept in the journal so it survives restarts. And a setup error (a refused
token, a URL that is not AnyRoad's) is logged once with its cause, not once per guest.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from dataclasses import dataclass, field

from device.api import SETUP_KINDS, Reply
from device.auth import read_token
from device.config import ApiConfig
from device.journal import Journal
from device.tickets import log_safe

log = logging.getLogger(__name__)

_CAUSES = {
    "unauthorized": "the API refused the credential: check [api] token_file or the OAuth client",
    "setup_error": "the URL answers, but not as AnyRoad's Tickets API: check [api] base_url",
}


def api_identity(api: ApiConfig, *, token: str | None = None) -> str:
    """A name for ``base_url`` plus credential that reveals neither the token nor the secret.

    OAuth: the token endpoint and client id (a rotated secret is the same client). A fixed
    token: a hash of the token itself, since a new token is a new credential.
    """
    if api.oauth:
        credential = f"oauth {api.token_url} {api.client_id}"
    else:
        bearer = token if token is not None else read_token(api.token_file)
        credential = "token " + hashlib.sha256(bearer.encode()).hexdigest()
    named = f"{api.base_url.rstrip('/')}\n{credential}"
    return hashlib.sha256(named.encode()).hexdigest()


def anyroad_answered(reply: Reply) -> bool:
    """A reply only AnyRoad would give: a ticket, or its problem body (not a local one)."""
    return reply.kind in ("ticket", "problem") and reply.status is not None


@dataclass
class ApiProof:
    """``ApiProof(journal, identity).proven``: AnyRoad has answered this configuration."""

    journal: Journal
    identity: str
    proven: bool = field(init=False)

    def __post_init__(self) -> None:
        self.proven = self.journal.answered_by(self.identity) is not None

    def saw(self, reply: Reply) -> None:
        """Note the first AnyRoad-shaped answer (one write, ever, per configuration)."""
        if self.proven or not anyroad_answered(reply):
            return
        try:
            self.journal.note_answered_by(self.identity)
        except sqlite3.Error:  # never stops a check-in; the next answer tries again
            log.exception("journal write failed noting AnyRoad's answer")
            return
        self.proven = True
        log.info("AnyRoad answered this configuration: offline acceptance is now allowed")


@dataclass
class SetupAlarm:
    """Logs a setup error once, with its cause; again only after AnyRoad answered in between."""

    base_url: str = ""
    _raised: tuple[str, int | None, str] | None = None

    def saw(self, reply: Reply) -> None:
        if reply.kind not in SETUP_KINDS:
            if anyroad_answered(reply):
                self._raised = None
            return
        cause = (reply.kind, reply.status, reply.code)
        if cause == self._raised:
            return
        self._raised = cause
        log.error(
            "setup error: %s (%s, code %s, base_url %s); guests see SETUP ERROR until fixed",
            _CAUSES[reply.kind],
            f"HTTP {reply.status}" if reply.status else "no HTTP status",
            log_safe(reply.code, 40) or "-",
            log_safe(self.base_url, 120) or "-",
        )
