"""``ticket-scanner sandbox`` as a real process: what Ctrl-C and a taken port look like."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def start_sandbox(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module, fixed arguments
        [sys.executable, "-m", "device.cli", "sandbox", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def serving() -> Iterator[subprocess.Popen[str]]:
    """A sandbox on a free port, past its banner's first line: it is listening."""
    process = start_sandbox("--port", "0")
    assert process.stdout is not None
    try:
        assert process.stdout.readline().startswith("AnyRoad sandbox: http://127.0.0.1:")
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


@pytest.mark.parametrize(
    "signals",
    [[signal.SIGINT], [signal.SIGINT, signal.SIGINT], [signal.SIGTERM]],
    ids=["ctrl-c", "ctrl-c-twice", "sigterm"],
)
def test_a_signal_stops_the_sandbox_cleanly(
    serving: subprocess.Popen[str], signals: list[signal.Signals]
) -> None:
    for signum in signals:  # back to back: the second lands while the server stops
        serving.send_signal(signum)
    _, err = serving.communicate(timeout=10)
    assert "Traceback" not in err
    assert err == ""
    assert serving.returncode == 0


def test_a_port_in_use_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = start_sandbox("--port", str(port))
        out, err = process.communicate(timeout=10)
    assert err == f"ticket-scanner: sandbox: port {port} on 127.0.0.1 is in use\n"
    assert out == ""
    assert process.returncode == 2
