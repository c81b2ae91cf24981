"""The sandbox AnyRoad server in a process of its own, so it never competes for the loop's GIL."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import BenchError

# `ticket-scanner sandbox` prints "AnyRoad sandbox: http://127.0.0.1:PORT/sandbox/v1" first.
BANNER_URL = re.compile(r"AnyRoad sandbox: (http://127\.0\.0\.1:\d+\S*)")
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0


def scanner_command() -> Path:
    """The ``ticket-scanner`` console script of the venv running the bench."""
    script = Path(sys.executable).with_name("ticket-scanner")
    if not script.is_file():
        raise BenchError(f"{script} not found: run the bench with `make bench` (it installs it)")
    return script


@contextmanager
def sandbox(log: Path) -> Iterator[str]:
    """Start ``ticket-scanner sandbox`` on 127.0.0.1 and yield its base URL; stop it after.

    Port 0 lets the kernel pick a free port without a race; the banner says which one.
    Its output goes to ``log``, shown if it fails to start.
    """
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
            [str(scanner_command()), "sandbox", "--host", "127.0.0.1", "--port", "0"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield _wait_for_url(process, log)
        if process.poll() is not None:
            raise BenchError(f"the sandbox exited during the bench ({_tail(log)})")
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_url(process: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        match = BANNER_URL.search(log.read_text(encoding="utf-8", errors="replace"))
        if match:
            return match.group(1)
        if process.poll() is not None:
            raise BenchError(f"the sandbox exited with {process.returncode}: {_tail(log)}")
        time.sleep(0.02)
    raise BenchError(f"the sandbox printed no URL within {START_TIMEOUT_S:.0f} s: {_tail(log)}")


def _tail(log: Path) -> str:
    lines = [
        line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
    ]
    return " | ".join(line for line in lines[-5:] if line) or "no output"
