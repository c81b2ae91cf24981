"""How a run ends: exit codes, and the two ways it stops early."""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0  # updated, or nothing to do
EXIT_FAILED = 1  # rejected, rolled back or broken: needs a person (or a new release)
EXIT_TRY_LATER = 75  # EX_TEMPFAIL: busy, clock wrong, offline; nothing is wrong with the release


class TryLater(Exception):  # noqa: N818 - it is an outcome, not an error
    """Stop for now and leave everything as it is; the next run picks up from here."""


class Failed(Exception):  # noqa: N818
    """The update is refused; what is running stays running."""


class ReleaseBroken(Failed):
    """This release can never work here (it does not install, or fails its self-test):
    mark it bad so it is not tried again."""


@dataclass(frozen=True)
class Outcome:
    code: int
    result: str  # updated | up-to-date | try-later | rejected | rolled-back
    message: str
