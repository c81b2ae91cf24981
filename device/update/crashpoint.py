"""Test hook: SIGKILL this process right after a named step, to prove every step restartable.

Inert unless the environment names a step (tests/test_ota_crash.py sets it for one child
process); nothing in production sets TICKET_SCANNER_UPDATE_KILL_AFTER.
"""

from __future__ import annotations

import os
import signal

KILL_AFTER_ENV = "TICKET_SCANNER_UPDATE_KILL_AFTER"
STEPS = (
    "downloaded",  # bundle verified and saved in downloads/
    "unpacking",  # half the files are in releases/.V.partial
    "unpacked",  # releases/V complete, no venv yet
    "building",  # venv created, packages not installed
    "built",  # venv installed and self-tested, marked ready
    "switching",  # temporary symlink made, `current` not yet replaced
    "switched",  # `current` -> releases/V, service not restarted
    "restarted",  # service restarted, health not checked
    "committed",  # state says V is committed, older releases not pruned
    "pruning",  # an old release renamed away, not yet deleted
)
# On the way back from an unhealthy release:
ROLLBACK_STEPS = ("marked-bad",)  # the release is marked bad, `current` still points at it


def checkpoint(step: str) -> None:
    if os.environ.get(KILL_AFTER_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)
