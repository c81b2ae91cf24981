"""The exit codes of ticket-scanner's commands, by class of outcome, and their --help text.

Example::

    sys.exit(for_verdict(decision.verdict, admits=decision.admits))
"""

from __future__ import annotations

from device.verdicts import Verdict

OK = 0  # admitted, valid; or the command did what it was asked
REFUSED = 1  # the ticket was refused (decode: an image could not be read)
USAGE = 2  # a bad option, config, file or folder, or a port in use
SETUP = 3  # the API refused this scanner: the token or the URL is wrong
UNREACHABLE = 4  # no answer, or the server failed: try again later
INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)

# Total over Verdict (a test checks), so a new verdict cannot fall through to 0 unnoticed.
_BY_VERDICT = {
    Verdict.ADMITTED: OK,
    Verdict.VALID: OK,
    Verdict.ACCEPTED_OFFLINE: OK,
    Verdict.ALREADY_SCANNED: REFUSED,
    Verdict.CANCELED: REFUSED,
    Verdict.TOO_EARLY: REFUSED,
    Verdict.TOO_LATE: REFUSED,
    Verdict.INVALID: REFUSED,
    Verdict.UNAUTHORIZED: SETUP,
    Verdict.SETUP_ERROR: SETUP,
    Verdict.SERVER_ERROR: UNREACHABLE,
    Verdict.UNREACHABLE: UNREACHABLE,
}

VERDICT_EPILOG = """\
exit codes:
  0    admitted or valid
  1    ticket refused: already_scanned (not admitted), canceled, too_early,
       too_late, invalid
  2    usage or config error
  3    setup: unauthorized (token refused) or setup_error (not an AnyRoad URL)
  4    unreachable or server_error: try again later
  130  interrupted (Ctrl-C)"""

EPILOG = """\
exit codes (each command's --help says what its own mean):
  0    done; scan and verify: admitted or valid
  1    scan and verify: ticket refused; decode: an image could not be read;
       sync: scans still queued; selftest: a check failed
  2    usage or config error: a bad option, config, file or folder; a port in use
  3    setup: the API refused this scanner (unauthorized, setup_error)
  4    unreachable or server_error: try again later
  130  interrupted (Ctrl-C)"""


def for_verdict(verdict: Verdict, *, admits: bool) -> int:
    """The exit code of ``scan`` or ``verify``; an admitted re-entry (reentry=allow) is 0."""
    return OK if admits else _BY_VERDICT[verdict]
