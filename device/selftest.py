"""``ticket-scanner selftest``: does this installation scan? Run before a release goes live.

The updater runs it inside a freshly built release's venv before switching to it, so each
check exercises a real part of the scan path without touching what the running service owns
(camera, GPIO, display, the live journal): decoding a generated ticket, drawing a screen,
a journal in a temporary folder, and one scan over HTTP against a sandbox on 127.0.0.1.
With ``--config`` it also checks that the config, its secret and its state folder are usable,
and probes the configured API (device.probe): it names a wrong URL, a refused credential or
an unreachable server before a guest meets it. Each check prints one line; exit 1 if any failed.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from device.config import ConfigError, load_config
from device.tickets import log_safe
from device.version import VERSION

log = logging.getLogger(__name__)
Check = Callable[[], str]  # returns a short detail; raises on failure


class CheckFailedError(Exception):
    """A check's expected failure: its message is the whole story, no traceback needed."""


def run_selftest(out: TextIO, config: Path | None = None) -> int:
    """Run every check, print one line each; 0 when all pass."""
    checks: list[tuple[str, Check]] = [
        ("decode", _decode),
        ("screen", _screen),
        ("journal", _journal),
        ("scan over HTTP", _scan),
    ]
    if config is not None:
        checks.append(("config", lambda: _config(config)))
        checks.append(("API", lambda: _api(config)))
    failed = 0
    print(f"ticket-scanner {VERSION} selftest", file=out)
    for name, check in checks:
        try:
            detail = check()
        except (CheckFailedError, ConfigError) as error:
            failed += 1
            print(f"FAIL {name}: {log_safe(str(error), 300)}", file=out)
        except Exception as error:  # report every failing part, not only the first
            failed += 1
            print(f"FAIL {name}: {type(error).__name__}: {log_safe(str(error), 300)}", file=out)
            log.debug("selftest check %s failed", name, exc_info=True)  # -v shows where
        else:
            print(f"ok   {name}: {detail}", file=out)
    print("selftest passed" if not failed else f"selftest FAILED: {failed} check(s)", file=out)
    return 1 if failed else 0


def _ticket_code() -> str:
    from device.sandbox import demo_tickets  # noqa: PLC0415

    return demo_tickets()[0].qr_code


def _decode() -> str:
    from device.decode import make_decoder  # noqa: PLC0415
    from device.sandbox import camera_frame  # noqa: PLC0415

    code = _ticket_code()
    found = [decoded.text for decoded in make_decoder("auto").decode(camera_frame(code))]
    if found != [code]:
        raise CheckFailedError(f"expected the ticket's text, got {len(found)} code(s)")
    return "auto decoder reads a generated ticket"


def _screen() -> str:
    from device.feedback import ready_screen, status_line  # noqa: PLC0415
    from device.screens import render  # noqa: PLC0415

    image = render(ready_screen(status_line("scan", True)), (128, 64))
    if image.size != (128, 64) or image.getbbox() is None:
        raise CheckFailedError("the ready screen drew nothing")
    return "ready screen drawn at 128x64"


def _journal() -> str:
    from device.api import Reply  # noqa: PLC0415
    from device.journal import Journal  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="ticket-scanner-selftest-") as folder:
        journal = Journal.open(Path(folder) / "journal.db")
        try:
            pending = journal.begin("selftest", "scan", "selftest")
            reply = Reply("ticket", status=200)
            journal.finish(pending, verdict="admitted", admitted=True, reply=reply, queued=False)
            result = journal.integrity()
        finally:
            journal.close()
    if result != "ok":
        raise CheckFailedError(f"integrity_check said {result}")
    return "SQLite journal written and checked"


def _scan() -> str:
    from device.api import AnyRoadClient  # noqa: PLC0415
    from device.sandbox import DEMO_TOKEN, SandboxServer  # noqa: PLC0415
    from device.verdict import decide  # noqa: PLC0415

    with SandboxServer() as sandbox:
        client = AnyRoadClient(sandbox.url, token=lambda: DEMO_TOKEN, timeout_s=5.0)
        try:
            reply = client.scan("selftest", _ticket_code())
        finally:
            client.close()
    verdict = decide(reply, mode="scan", device="selftest", reentry="warn").verdict
    if verdict != "admitted":
        raise CheckFailedError(f"the sandbox scan gave {verdict}")
    return "admitted by a sandbox on 127.0.0.1"


def _config(path: Path) -> str:
    from device.app import open_journal  # noqa: PLC0415
    from device.auth import token_source  # noqa: PLC0415

    config = load_config(path)
    token_source(config.api).close()  # reads the token or client secret file
    state = config.offline.journal.parent
    if state.exists() and not os.access(state, os.W_OK):
        raise CheckFailedError(f"{state} is not writable")
    open_journal(config).close()
    return f"{path} and its secret read, journal at {config.offline.journal} usable"


def _api(path: Path) -> str:
    from device.probe import probe_api  # noqa: PLC0415

    result = probe_api(load_config(path).api)
    if not result.ok:
        raise CheckFailedError(f"{result.outcome.replace('_', ' ')}: {result.detail}")
    return result.detail
