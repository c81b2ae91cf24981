"""systemd notify: READY only once the scanner works, WATCHDOG only while frames arrive."""

import os
import socket
import threading
from pathlib import Path

import pytest

from device.app import build
from device.config import (
    ApiConfig,
    CameraConfig,
    Config,
    DeviceConfig,
    HardwareConfig,
    OfflineConfig,
)
from device.notify import FRAME_STALL_S, Notifier
from device.sandbox import DEMO_TOKEN, SandboxServer
from tests.fakes import FakeClock
from tests.frames import write_frames


class Sent:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, address: str, payload: bytes) -> None:
        self.messages.append(payload.decode())


def test_nothing_before_ready_then_ready_once() -> None:
    sent = Sent()
    notifier = Notifier("/run/notify", watchdog_s=30, send=sent)
    notifier.alive(0.0, 0.0)
    assert sent.messages == []  # no watchdog before the scanner is ready
    notifier.ready()
    notifier.ready()
    assert sent.messages == ["READY=1\nSTATUS=scanning"]


def test_the_watchdog_is_fed_at_half_its_interval_while_frames_arrive() -> None:
    sent = Sent()
    notifier = Notifier("/run/notify", watchdog_s=30, send=sent)
    notifier.ready()
    for now in (0.0, 5.0, 14.9, 15.0, 29.0, 30.0):
        notifier.alive(now, last_frame_at=now)
    assert sent.messages[1:] == ["WATCHDOG=1"] * 3  # at 0, 15 and 30


def test_a_stalled_camera_starves_the_watchdog() -> None:
    sent = Sent()
    notifier = Notifier("/run/notify", watchdog_s=30, send=sent)
    notifier.ready()
    notifier.alive(100.0, last_frame_at=100.0 - FRAME_STALL_S - 0.1)
    notifier.alive(100.0, last_frame_at=None)
    assert sent.messages == ["READY=1\nSTATUS=scanning"]


def test_outside_systemd_nothing_is_sent() -> None:
    notifier = Notifier.from_environment({})
    assert not notifier.enabled
    notifier.ready()  # no socket, no error


@pytest.mark.parametrize(
    ("environ", "watchdog"),
    [
        ({"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "30000000"}, True),
        ({"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, False),
        ({"NOTIFY_SOCKET": "/run/n"}, False),
    ],
)
def test_the_watchdog_is_used_only_when_systemd_asks_this_process(
    environ: dict[str, str], watchdog: bool
) -> None:
    sent = Sent()
    notifier = Notifier.from_environment(environ)
    notifier._send = sent  # the address is not a real socket here
    notifier.ready()
    notifier.alive(0.0, 0.0)
    assert ("WATCHDOG=1" in sent.messages) is watchdog


def test_the_service_says_ready_over_a_real_socket_after_its_first_frame(
    tmp_path: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        listener.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", address)
        monkeypatch.setenv("WATCHDOG_USEC", "2000000")
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
        folder = write_frames(tmp_path / "frames", [(None, 3)])
        config = Config(
            api=ApiConfig(base_url=sandbox.url),
            camera=CameraConfig(source=f"images:{folder}", fps=10),
            device=DeviceConfig(id="gate-test", profile="door"),
            hardware=HardwareConfig(backend="sim"),
            offline=OfflineConfig(journal=tmp_path / "state" / "journal.db"),
        )
        clock = FakeClock()
        with build(config, clock=clock, sleep=clock.sleep, token=DEMO_TOKEN) as running:
            running.loop.run(threading.Event())
        received = [listener.recv(100).decode() for _ in range(2)]
    assert received == ["READY=1\nSTATUS=scanning", "WATCHDOG=1"]


def test_a_code_in_view_marks_activity_for_the_updater(
    tmp_path: Path, sandbox: SandboxServer, codes: dict[str, str]
) -> None:
    folder = write_frames(tmp_path / "frames", [(None, 2), (codes["admitted"], 2), (None, 2)])
    state = tmp_path / "state"
    config = Config(
        api=ApiConfig(base_url=sandbox.url),
        camera=CameraConfig(source=f"images:{folder}", fps=10),
        device=DeviceConfig(id="gate-test", profile="door"),
        hardware=HardwareConfig(backend="sim"),
        offline=OfflineConfig(journal=state / "journal.db"),
    )
    clock = FakeClock()
    with build(config, clock=clock, sleep=clock.sleep, token=DEMO_TOKEN) as running:
        assert not (state / "activity").exists()
        running.loop.run(threading.Event())
    assert (state / "activity").exists()
