"""``ticket-scanner update`` against a signed repository on 127.0.0.1: installs, updates, and the
reasons it waits (a guest at the scanner, a wrong clock) or passes a release over."""

import hashlib
import json
import logging
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from device.update.outcome import EXIT_OK, EXIT_TRY_LATER
from tests.ota_world import PYTHON, RepoServer, World


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World.get(tmp_path_factory)


def test_first_install_runs_the_version_it_was_published_as(world: World) -> None:
    outcome, restarts, version = world.first_install
    assert (outcome.code, outcome.result) == (EXIT_OK, "updated")
    assert outcome.message == "installed 1.0.0 (first install)"
    assert restarts == ["releases/1.0.0"]  # restarted once, with current already switched
    assert version == "ticket-scanner 1.0.0"
    template = world.base / "device-template"
    assert os.readlink(template / "current") == "releases/1.0.0"  # relative: the root can move
    assert (template / "releases" / "1.0.0" / ".ready").is_file()


def test_nothing_newer_downloads_nothing(world: World, tmp_path: Path) -> None:
    device = world.device(tmp_path)
    with world.repo_copy(tmp_path / "repo").serve() as server:
        outcome = device.run(server.url)
        assert server.target_requests() == []
    assert (outcome.code, outcome.message) == (EXIT_OK, "up to date: running 1.0.0")
    device.assert_untouched()
    assert device.state()["last"]["result"] == "up-to-date"


def test_update_keeps_the_previous_release_and_prunes_older(world: World, tmp_path: Path) -> None:
    device = world.device(tmp_path)
    repo = world.repo_copy(tmp_path / "repo")
    repo.publish("1.1.0")
    with repo.serve() as server:
        first = device.run(server.url)
        assert (first.code, first.message) == (EXIT_OK, "updated 1.0.0 -> 1.1.0")
        assert device.version() == "ticket-scanner 1.1.0"
        assert device.releases() == ["1.0.0", "1.1.0"]  # the previous one stays for a rollback
        repo.publish("1.2.0")
        second = device.run(server.url)
    assert (second.code, second.message) == (EXIT_OK, "updated 1.1.0 -> 1.2.0")
    assert device.live() == "releases/1.2.0"
    assert device.releases() == ["1.1.0", "1.2.0"]  # 1.0.0 deleted
    assert device.downloads() == []
    assert device.restarts() == ["releases/1.1.0", "releases/1.2.0"]
    state = device.state()
    assert (state["committed"], state["previous"], state["pending"]) == ("1.2.0", "1.1.0", None)


def test_the_update_command_is_registered(world: World, tmp_path: Path) -> None:
    """The console script the systemd unit runs, in its own process."""
    device = world.device(tmp_path)
    with world.repo_copy(tmp_path / "repo").serve() as server:
        done = device.cli(server.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ticket-scanner update: up to date: running 1.0.0"


def test_a_guest_at_the_scanner_means_try_later_with_the_release_ready(
    world: World, tmp_path: Path
) -> None:
    device = world.device(tmp_path)
    repo = world.repo_copy(tmp_path / "repo")
    repo.publish("1.1.0")
    device.activity.touch()  # a code is in view right now
    with repo.serve() as server:
        busy = device.run(server.url)
        assert busy.code == EXIT_TRY_LATER
        assert "a guest is being scanned; 1.1.0 is ready" in busy.message
        assert device.live() == "releases/1.0.0"
        assert device.restarts() == []
        built = (device.root / "releases" / "1.1.0" / "venv").stat().st_ino
        quiet = time.time() - 61  # the last code was seen 61 s ago
        os.utime(device.activity, (quiet, quiet))
        idle = device.run(server.url)
        assert len(server.target_requests()) == 1  # downloaded once, not again
    assert (idle.code, idle.message) == (EXIT_OK, "updated 1.0.0 -> 1.1.0")
    assert (device.root / "releases" / "1.1.0" / "venv").stat().st_ino == built  # not rebuilt


def test_a_clock_before_the_build_floor_means_try_later(world: World, tmp_path: Path) -> None:
    device = world.device(tmp_path)
    repo = world.repo_copy(tmp_path / "repo")
    repo.publish("1.1.0")
    with repo.serve() as server:
        outcome = device.run(server.url, now=lambda: datetime(2020, 1, 1, tzinfo=UTC))
        assert server.requests == []  # not even metadata: its expiry cannot be judged
    assert outcome.code == EXIT_TRY_LATER
    assert "the clock says 2020-01-01T00:00:00Z" in outcome.message
    device.assert_untouched()


def test_a_clock_before_the_release_was_built_means_try_later(world: World, tmp_path: Path) -> None:
    device = world.device(tmp_path)
    repo = world.repo_copy(tmp_path / "repo")
    built = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    repo.publish("1.1.0", created=built)  # this device's clock is 2 days behind the publisher
    with repo.serve() as server:
        outcome = device.run(server.url)
        assert server.target_requests() == []
    assert outcome.code == EXIT_TRY_LATER
    assert "before 1.1.0 was built" in outcome.message
    device.assert_untouched()


def in_rollout(device_id: str, version: str, percent: int) -> bool:
    """The documented rule, written out again: sha256(device id, newline, version) % 100."""
    digest = hashlib.sha256(f"{device_id}\n{version}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < percent


def test_a_partial_rollout_takes_only_the_devices_it_names(world: World, tmp_path: Path) -> None:
    ids = [f"pi-{n}" for n in range(40)]
    inside = next(i for i in ids if in_rollout(i, "1.1.0", 30))
    outside = next(i for i in ids if not in_rollout(i, "1.1.0", 30))
    repo = world.repo_copy(tmp_path / "repo")
    repo.publish("1.1.0", rollout=30)
    with repo.serve() as server:
        device = world.device(tmp_path)
        left_out = device.run(server.url, "--device-id", outside)
        assert (left_out.code, left_out.message) == (EXIT_OK, "up to date: running 1.0.0")
        device.assert_untouched()
        device = world.device(tmp_path)
        taken = device.run(server.url, "--device-id", inside)
    assert (taken.code, taken.message) == (EXIT_OK, "updated 1.0.0 -> 1.1.0")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"platform": "manylinux_2_28_riscv64"}, "built for manylinux_2_28_riscv64"),
        ({"platform": f"manylinux_2_99_{platform.machine()}"}, "glibc"),
        ({"python": "3.99"}, f"built for Python 3.99, this is {PYTHON}"),
        ({"rollout": 0}, "rollout at 0%"),
    ],
    ids=["other-cpu", "newer-glibc", "other-python", "rollout-0"],
)
def test_a_release_not_meant_for_this_device_is_passed_over(
    world: World,
    tmp_path: Path,
    change: dict[str, Any],
    why: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    device = world.device(tmp_path)
    repo = world.repo_copy(tmp_path / "repo")
    repo.publish("1.1.0", **change)
    with repo.serve() as server:
        outcome = device.run(server.url)
        assert server.target_requests() == []
    assert (outcome.code, outcome.message) == (EXIT_OK, "up to date: running 1.0.0")
    assert any(why in record.getMessage() for record in caplog.records)
    device.assert_untouched()


def test_an_unreachable_repository_means_try_later(world: World, tmp_path: Path) -> None:
    device = world.device(tmp_path)
    with RepoServer(tmp_path) as server:
        url = server.url  # a port that nothing listens on once the server is gone
    outcome = device.run(url)
    assert outcome.code == EXIT_TRY_LATER
    assert "unreachable" in outcome.message
    device.assert_untouched()


# The device's bundle has no `cryptography` (tuf needs only securesystemslib, whose ed25519
# check falls back to pure Python): the same verification must hold without it.
WITHOUT_CRYPTOGRAPHY = """
import json, sys
from pathlib import Path
sys.modules["cryptography"] = None  # any import of it now fails, as on the device
from device.update.source import ReleaseSource
url, root, work = sys.argv[1:]
for name in ("tuf", "spool"):
    (Path(work) / name).mkdir(parents=True, exist_ok=True)
source = ReleaseSource(url, Path(root).read_bytes(), Path(work) / "tuf", Path(work) / "spool")
try:
    source.refresh()
    print(json.dumps(sorted(r.version for r in source.releases())))
except Exception as error:
    print(json.dumps(type(error).__name__))
"""


def test_signatures_are_checked_without_the_cryptography_library(
    world: World, tmp_path: Path
) -> None:
    repo = world.repo_copy(tmp_path / "repo")
    with repo.serve() as server:
        good = subprocess.run(  # noqa: S603 - our interpreter, our script
            [sys.executable, "-c", WITHOUT_CRYPTOGRAPHY, server.url, str(world.trusted_root),
             str(tmp_path / "good")],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        served = repo.latest("targets")
        raw = json.loads(served.read_text())
        raw["signed"]["targets"]["ticket-scanner-1.0.0.tar.gz"]["custom"]["rollout"] = 99
        served.write_text(json.dumps(raw))
        bad = subprocess.run(  # noqa: S603
            [sys.executable, "-c", WITHOUT_CRYPTOGRAPHY, server.url, str(world.trusted_root),
             str(tmp_path / "bad")],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
    assert json.loads(good.stdout) == ["1.0.0"]
    assert json.loads(bad.stdout) == "UnsignedMetadataError"
