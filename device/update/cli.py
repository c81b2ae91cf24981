"""``ticket-scanner update``: one attempt (--once) or a check every --interval.

The last line on stderr (the journal, under systemd) says what happened and why; the state file
records it too. Exit status with --once: 0 updated or nothing to do, 75 try later, 1 failed.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from typing import NoReturn

from device.update.options import UsageError, add_arguments, settings_from
from device.update.outcome import EXIT_OK, EXIT_TRY_LATER, Outcome

_log = logging.getLogger("ticket_scanner.update")
RETRY_S = 300.0  # after 'try later' (busy, offline): sooner than the regular interval
USAGE_ERROR = 2


def run(args: argparse.Namespace) -> int:
    """The handler device/cli.py registers for ``update``."""
    try:
        settings = settings_from(args)
    except UsageError as error:
        print(f"ticket-scanner update: {error}", file=sys.stderr)
        return USAGE_ERROR
    from device.update.runner import Installer  # noqa: PLC0415 - keep --help free of tuf

    installer = Installer(settings)
    if args.once:
        return report(installer.run())
    current = settings.install_root / "current" / "venv" / "bin" / "ticket-scanner"
    loop(installer.run, interval_s=args.interval, sleep=time.sleep, reexec=lambda: _exec(current))


def report(outcome: Outcome) -> int:
    """One line: stdout when all is well, stderr (the journal's warning) otherwise."""
    line = f"ticket-scanner update: {outcome.message}"
    print(line, file=sys.stdout if outcome.code == EXIT_OK else sys.stderr, flush=True)
    return outcome.code


def loop(
    attempt: Callable[[], Outcome],
    *,
    interval_s: float,
    sleep: Callable[[float], None],
    reexec: Callable[[], None],
) -> NoReturn:
    """Attempt, report, wait, forever. After an update this process is the old release's
    code, so it hands over to the new release's updater with ``reexec``."""
    while True:
        outcome = attempt()
        report(outcome)
        if outcome.result == "updated":
            reexec()
        wait = min(RETRY_S, interval_s) if outcome.code == EXIT_TRY_LATER else interval_s
        # Jitter: a fleet that booted together does not hit the repository together.
        sleep(wait * random.uniform(0.9, 1.1))  # noqa: S311 - not security relevant


def _exec(program: os.PathLike[str]) -> None:
    os.execv(program, [os.fspath(program), *sys.argv[1:]])  # noqa: S606 - our own release


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m device.update.cli`` (the same as ``ticket-scanner update``)."""
    parser = argparse.ArgumentParser(prog="ticket-scanner update", description=__doc__)
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
