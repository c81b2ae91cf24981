"""Bearer tokens for the API client: a fixed token file, or OAuth 2.0 client credentials.

``token_source(config.api)`` picks one. The client calls the source before every request. The
client-credentials source (RFC 6749 section 4.4) fetches a token once, reuses it until shortly
before it expires, and is shared safely by threads. Neither the token nor the client secret is
ever logged.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import quote_plus

import requests

from device import net
from device.bodies import BodyTooLargeError, json_object, post_capped
from device.config import ApiConfig, ConfigError
from device.tickets import log_safe
from device.version import VERSION

log = logging.getLogger(__name__)

MAX_TOKEN_BODY_BYTES = 64 * 1024  # a token response is a few hundred bytes, a JWT a few KB
DEFAULT_LIFETIME_S = 300.0  # expires_in is optional (RFC 6749 5.1); assume a short life
MAX_LIFETIME_S = 86400.0  # refetch at least daily, whatever the server claims
MIN_MARGIN_S = 30.0  # refresh this long (or 10% of the lifetime) before expiry
RETRY_AFTER_S = 5.0  # a failed fetch is remembered this long, so scans do not hammer the endpoint
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]{1,8192}")  # printable ASCII, no space: fits a header


class TokenError(Exception):
    """No token to send. ``kind`` is how the request ends; ``code`` says why, for the field log."""

    def __init__(
        self, kind: Literal["unauthorized", "unreachable"], code: str, detail: str = ""
    ) -> None:
        super().__init__(code)
        self.kind = kind
        self.code = code
        self.detail = detail


class TokenSource(Protocol):
    """What ``token_source`` returns: the token for the next request, and a ``close``."""

    def __call__(self) -> str: ...

    def close(self) -> None: ...


@runtime_checkable
class Refreshable(Protocol):
    """A token source that can replace a token the API refused."""

    def __call__(self) -> str: ...

    def invalidate(self, rejected: str) -> bool: ...


def token_source(
    api: ApiConfig,
    *,
    clock: Callable[[], float] = time.monotonic,
    session: requests.Session | None = None,
) -> TokenSource:
    """The configured source: OAuth client credentials, or else the fixed ``token_file``.

    Files are read now, so a missing or empty one stops the start with a ConfigError.
    """
    if not api.oauth:
        return StaticToken(read_token(api.token_file))
    if api.client_secret_file is None:  # config.py refuses this; checked again for the type
        raise ConfigError("[api] client_secret_file: required with token_url, but missing")
    return ClientCredentials(
        api.token_url,
        api.client_id,
        read_secret(api.client_secret_file),
        timeout_s=api.timeout_s,
        clock=clock,
        session=session,
    )


def read_token(path: Path) -> str:
    """The bearer token: the first line of ``path``. Never logged."""
    return _first_line(path, "API token")


def read_secret(path: Path) -> str:
    """The OAuth client secret: the first line of ``path``. Never logged."""
    return _first_line(path, "OAuth client secret")


def _first_line(path: Path, what: str) -> str:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the {what} ({error.strerror})") from None
    except UnicodeDecodeError:
        lines = []
    value = lines[0].strip() if lines else ""
    # ASCII only: http.client cannot send other characters in a header, and would raise.
    if not value or not value.isprintable() or not value.isascii():
        raise ConfigError(f"{path}: the first line must hold the {what}")
    return value


class StaticToken:
    """A fixed token from ``token_file``. It cannot be refreshed, so a 401 is final."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self) -> str:
        return self._token

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return "StaticToken(<hidden>)"


@dataclass(frozen=True)
class _Token:
    value: str
    fetched_at: float
    refresh_at: float
    expires_at: float

    def __repr__(self) -> str:
        return f"_Token(<hidden>, expires_at={self.expires_at})"


class ClientCredentials:
    """OAuth 2.0 client credentials: one cached token, shared by every thread.

    ``ClientCredentials(url, "scanner-fleet", secret, timeout_s=3.0)()`` returns the token. A
    failure raises TokenError, which the API client turns into a Reply; it is remembered for
    ``retry_after_s``, so a broken endpoint gets at most one request per that interval.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
        retry_after_s: float = RETRY_AFTER_S,
    ) -> None:
        self._url = token_url
        # RFC 6749 2.3.1: each part form-encoded, then HTTP Basic. Kept only in this form.
        pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode("ascii")
        self._basic = "Basic " + base64.b64encode(pair).decode("ascii")
        self._timeout_s = timeout_s
        self._clock = clock
        self._session = net.bounded(session or requests.Session())
        self._session.trust_env = False  # no surprise proxies or .netrc credentials
        self._retry_after_s = retry_after_s
        self._lock = threading.Lock()  # held while fetching: other callers wait for that token
        self._token: _Token | None = None
        self._failure: TokenError | None = None
        self._failed_at = -math.inf

    def __repr__(self) -> str:
        return f"ClientCredentials({self._url!r})"

    def __call__(self) -> str:
        """The current token, fetched first if there is none or it is due for refresh.

        A caller waits for another thread's fetch no longer than its own deadline allows.
        """
        with self._locked():
            now = self._clock()
            held = self._token
            if held is not None and now < held.refresh_at:
                return held.value
            failure = self._failure
            if failure is None or now - self._failed_at >= self._retry_after_s:
                try:
                    self._token = self._fetch(now)
                except TokenError as error:
                    failure, self._failure, self._failed_at = error, error, now
                else:
                    self._failure = None
                    return self._token.value
            # The endpoint failed lately; a token that has not expired yet still serves.
            if held is not None and now < held.expires_at:
                return held.value
            raise failure

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        scope = net.current()
        wait = -1.0 if scope is None else max(0.0, scope.remaining())  # -1: no limit
        if not self._lock.acquire(timeout=wait):
            raise _failed("unreachable", "token_timeout", "another token fetch is under way")
        try:
            yield
        finally:
            self._lock.release()

    def invalidate(self, rejected: str) -> bool:
        """The API refused ``rejected`` (a 401). True when the request is worth one retry."""
        with self._lock:
            held = self._token
            if held is None or held.value != rejected:
                return True  # another thread has already dropped or replaced it
            if self._clock() - held.fetched_at < self._retry_after_s:
                # Refused although just issued: the API does not take our tokens, and
                # fetching another on every scan would only hammer the token endpoint.
                log.warning("api refused a token issued moments ago; not fetching another yet")
                return False
            self._token = None
            return True

    def close(self) -> None:
        self._session.close()

    def _fetch(self, now: float) -> _Token:
        headers = {
            "Authorization": self._basic,
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
            "User-Agent": f"ticket-scanner/{VERSION}",
        }
        try:
            response, raw = post_capped(
                self._session,
                self._url,
                data="grant_type=client_credentials",
                headers=headers,
                timeout_s=self._timeout_s,
                limit=MAX_TOKEN_BODY_BYTES,
            )
            status = response.status_code
        except BodyTooLargeError:
            raise _failed("unauthorized", "token_bad_response", "response too large") from None
        except requests.RequestException as error:
            raise _failed("unreachable", _unreachable_code(error), type(error).__name__) from None
        token = _parse(status, raw, now)
        log.info("api token fetched expires_in=%.0fs", token.expires_at - now)
        return token


def _parse(status: int, raw: bytes, sent_at: float) -> _Token:
    """The token in a 200 (RFC 6749 5.1), or the TokenError any other answer means."""
    body = json_object(raw)
    if status in (400, 401, 403):  # RFC 6749 5.2: invalid_client, unauthorized_client, ...
        error = _oauth_error(body)
        raise _failed("unauthorized", "token_refused", f"HTTP {status} {error}".strip())
    if status >= 500 or status in (408, 429):
        # The scan never left and nothing was recorded: offline, not a server error the
        # journal would have to treat as "may have been recorded".
        raise _failed("unreachable", "token_server_error", f"HTTP {status}")
    if status != 200 or body is None:
        raise _failed("unauthorized", "token_bad_response", f"HTTP {status}")
    value, token_type = body.get("access_token"), body.get("token_type")
    if not (isinstance(value, str) and _TOKEN_CHARS.fullmatch(value)):
        raise _failed("unauthorized", "token_bad_response", "no usable access_token")
    if not (isinstance(token_type, str) and token_type.lower() == "bearer"):
        raise _failed("unauthorized", "token_bad_response", "token_type is not Bearer")
    lifetime = _lifetime(body.get("expires_in", DEFAULT_LIFETIME_S))
    if lifetime is None:
        raise _failed("unauthorized", "token_bad_response", "expires_in is not a positive number")
    # Never closer than half the lifetime, so a short-lived token is not refetched per scan.
    margin = min(max(MIN_MARGIN_S, lifetime / 10), lifetime / 2)
    return _Token(value, sent_at, sent_at + lifetime - margin, sent_at + lifetime)


def _lifetime(value: object) -> float | None:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)  # some servers send "3600"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not (value > 0 and math.isfinite(value)):
        return None
    return min(float(value), MAX_LIFETIME_S)


def _oauth_error(body: dict[str, Any] | None) -> str:
    error = body.get("error") if body else None
    return log_safe(error, 40) if isinstance(error, str) else ""


def _failed(kind: Literal["unauthorized", "unreachable"], code: str, detail: str) -> TokenError:
    log.warning("api token failed code=%s detail=%s", code, detail)
    return TokenError(kind, code, detail)


def _unreachable_code(error: requests.RequestException) -> str:
    # Timeout first: a ConnectTimeout is also a ConnectionError, as an SSLError is.
    if isinstance(error, requests.Timeout):
        return "token_timeout"
    if isinstance(error, requests.exceptions.SSLError):
        return "token_tls_error"
    return "token_unreachable"
