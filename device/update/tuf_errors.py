"""What a python-tuf error means for this run: refuse (exit 1) or try later (75).

Anything that failed verification is refused: tampered, unsigned, rolled back, expired,
truncated, or not metadata at all (a captive portal). A network that is down or a server
that is busy is 'try later', and so is 'expired' while the clock is before what it can be.
"""

from __future__ import annotations

import errno
from datetime import datetime
from typing import NoReturn

from tuf.api import exceptions
from tuf.api.serialization import DeserializationError

from device.update.contract import iso
from device.update.outcome import Failed, TryLater
from device.update.text import one_line

# First match wins: subclasses before their bases.
_REFUSED: tuple[tuple[type[Exception], str], ...] = (
    (exceptions.ExpiredMetadataError, "repository metadata expired; the publisher must re-sign"),
    (
        exceptions.BadVersionNumberError,
        "the repository offered older metadata than this device has seen (a rollback)",
    ),
    (exceptions.UnsignedMetadataError, "metadata not signed by the trusted keys"),
    (DeserializationError, "the repository sent something that is not TUF metadata (a portal?)"),
    (
        exceptions.LengthOrHashMismatchError,
        "the download does not match its signed metadata (tampered or truncated)",
    ),
    (
        exceptions.DownloadLengthMismatchError,
        "the download does not match its signed metadata (longer than signed)",
    ),
    (exceptions.RepositoryError, "metadata failed verification"),
)


def explain(error: Exception, *, now: datetime, floor: datetime) -> Exception:
    """The TryLater or Failed to raise for ``error`` (other exceptions come back as they are)."""
    detail = one_line(str(error)) or type(error).__name__
    if isinstance(error, exceptions.ExpiredMetadataError) and now < floor:
        return TryLater(f"metadata looks expired, but the clock ({iso(now)}) is wrong")
    if isinstance(error, exceptions.DownloadHTTPError):
        return _http(error.status_code, detail)
    meaning = next((text for kind, text in _REFUSED if isinstance(error, kind)), None)
    if meaning is not None:
        return Failed(f"refused: {meaning}: {detail}")
    if isinstance(error, exceptions.DownloadError):
        return TryLater(f"the repository is unreachable ({detail})")
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return Failed("disk full while saving metadata; nothing was changed")
    return error


def raise_verdict(error: Exception, *, now: datetime, floor: datetime) -> NoReturn:
    """Raise what ``error`` means (explain()); an error it does not know is re-raised."""
    verdict = explain(error, now=now, floor=floor)
    if verdict is error:
        raise error
    raise verdict from error


def _http(status: int, detail: str) -> Exception:
    if status >= 500 or status == 429:
        return TryLater(f"the repository is unavailable ({detail})")
    return Failed(
        f"refused: the repository answered HTTP {status} ({detail}); "
        "is the URL right, or is this a captive portal?"
    )
