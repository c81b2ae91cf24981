"""First contact: a scanner whose configuration never reached AnyRoad asks once, at start."""

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.api import AnyRoadClient
from device.api_health import ApiProof, SetupAlarm
from device.app import build
from device.config import (
    ApiConfig,
    CameraConfig,
    Config,
    DeviceConfig,
    HardwareConfig,
    OfflineConfig,
)
from device.journal import Journal
from device.probe import PROBE_CODE, first_contact
from device.sandbox import DEMO_TOKEN, SandboxServer
from tests.fakes import FakeClock, prove
from tests.frames import write_frames


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    opened = Journal.open(tmp_path / "journal.db")
    yield opened
    opened.close()


def contact(url: str, journal: Journal) -> tuple[ApiProof, object]:
    proof = ApiProof(journal, "this-config")
    client = AnyRoadClient(url, token=lambda: DEMO_TOKEN, timeout_s=1.0)
    try:
        return proof, first_contact(client, proof, SetupAlarm(url))
    finally:
        client.close()


def test_an_unproven_configuration_is_proven_by_one_harmless_verify(
    sandbox: SandboxServer, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    proof, reply = contact(sandbox.url, journal)
    assert reply is not None and proof.proven
    assert journal.answered_by("this-config") is not None  # kept for the next start
    (request,) = sandbox.seen()
    assert request.path.endswith("/tickets/verify")  # records nothing at AnyRoad
    assert request.json() == {"qr_code": PROBE_CODE}
    scanner = [r for r in caplog.records if not r.name.startswith("device.sandbox")]
    assert not [
        r for r in scanner if r.levelno >= logging.WARNING
    ]  # its 400 is the answer hoped for


def test_a_proven_configuration_asks_nothing(sandbox: SandboxServer, journal: Journal) -> None:
    journal.note_answered_by("this-config")
    _, reply = contact(sandbox.url, journal)
    assert reply is None
    assert sandbox.seen() == []


def test_a_wrong_url_is_a_setup_error_logged_at_start_and_proves_nothing(
    sandbox: SandboxServer, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    proof, reply = contact(sandbox.url.replace("/sandbox/v1", "/nope"), journal)
    assert getattr(reply, "kind", None) == "setup_error"
    assert not proof.proven
    (alarm,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "check [api] base_url" in alarm.getMessage()


def test_an_unreachable_api_is_a_warning_naming_why(
    journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # whatever an earlier test left the root logger at
    with SandboxServer() as gone:
        url = gone.url
    proof, reply = contact(url, journal)
    assert getattr(reply, "kind", None) == "unreachable" and not proof.proven
    messages = [r.getMessage() for r in caplog.records if r.name == "device.probe"]
    assert messages == [f"first contact: {url}: the connection was refused or lost"]


def scanner_config(tmp_path: Path, api: ApiConfig) -> Config:
    """A handheld on the sim backend with one blank camera frame."""
    frames = write_frames(tmp_path / "frames", [(None, 1)])
    return Config(
        api=api,
        camera=CameraConfig(source=f"images:{frames}"),
        device=DeviceConfig(id="gate-test"),
        hardware=HardwareConfig(backend="sim"),
        offline=OfflineConfig(journal=tmp_path / "journal.db"),
    )


@pytest.mark.parametrize(
    ("prefix", "status"), [("/sandbox/v1", "SCAN  online"), ("/nope", "SCAN  never online")]
)
def test_the_ready_screen_knows_before_the_first_guest(
    tmp_path: Path, sandbox: SandboxServer, prefix: str, status: str
) -> None:
    config = scanner_config(
        tmp_path, ApiConfig(base_url=sandbox.url.replace("/sandbox/v1", prefix))
    )
    clock = FakeClock()
    with build(config, clock=clock, sleep=clock.sleep, token=DEMO_TOKEN) as running:
        assert running.loop.ready().status == "SCAN  never online"
        running.first_contact()
        assert running.loop.ready().status == status


def test_a_scanner_in_service_does_not_probe_at_start(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    api = ApiConfig(base_url=sandbox.url)
    prove(tmp_path / "journal.db", api, token=DEMO_TOKEN)
    config = scanner_config(tmp_path, api)
    with build(config, token=DEMO_TOKEN) as running:
        running.first_contact()
        assert running.loop.ready().status == "SCAN  ..."  # unknown until a guest's answer
    assert sandbox.seen() == []


def test_the_service_makes_first_contact_on_its_sync_thread_at_start(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    asked = threading.Event()
    sandbox.on_request(lambda request: asked.set())
    with build(
        scanner_config(tmp_path, ApiConfig(base_url=sandbox.url)), token=DEMO_TOKEN
    ) as running:
        with running.syncing():
            assert asked.wait(10), "no first contact"
        assert running.loop.ready().status == "SCAN  online"  # before any guest
    assert [request.json() for request in sandbox.seen()] == [{"qr_code": PROBE_CODE}]
