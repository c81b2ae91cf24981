"""kill -9 of a real ``ticket-scanner update`` after each of its steps, then a normal run.

A power cut at the same moment is the same story plus the page cache: each step fsyncs what it
wrote before the next begins (atomic.py, unpack.py, layout.mark_ready), which only a real
power cut on a Pi can show. Here: at every point `current` names a complete release that runs,
and the next run finishes the update with nothing left behind.
"""

import shutil
import signal
from pathlib import Path

import pytest

from deploy.otalib.operations import set_rollout
from device.update.crashpoint import KILL_AFTER_ENV, ROLLBACK_STEPS, STEPS
from device.update.outcome import EXIT_FAILED, EXIT_OK
from tests.ota_world import World


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World.get(tmp_path_factory)


@pytest.mark.parametrize("step", STEPS)
def test_killed_after_each_step_the_next_run_finishes_cleanly(
    world: World, tmp_path: Path, step: str
) -> None:
    device = world.device(tmp_path)
    # An older release left from before, so that the commit has something to prune.
    stale = device.root / "releases" / "0.9.0"
    shutil.copytree(device.root / "releases" / "1.0.0", stale, ignore=lambda *_: ["venv"])
    repo = world.repo_copy(tmp_path / "repo")
    repo.publish("1.1.0")
    with repo.serve() as server:
        killed = device.cli(server.url, env={KILL_AFTER_ENV: step})
        assert killed.returncode == -signal.SIGKILL, killed.stderr

        live = device.live()
        assert live in ("releases/1.0.0", "releases/1.1.0")
        assert (device.root / live / ".ready").is_file()
        assert device.version() == f"ticket-scanner {live.split('/')[1]}"

        finished = device.run(server.url)
    committed = STEPS.index(step) >= STEPS.index("committed")
    expected = "up to date: running 1.1.0" if committed else "updated 1.0.0 -> 1.1.0"
    assert (finished.code, finished.message) == (EXIT_OK, expected)
    assert device.live() == "releases/1.1.0"
    assert device.version() == "ticket-scanner 1.1.0"
    # No partial unpack, half-deleted release, stray link or download is left over.
    assert device.releases() == ["1.0.0", "1.1.0"]
    assert device.downloads() == []
    assert sorted(p.name for p in device.root.iterdir()) == [
        ".lock", "current", "downloads", "releases", "state.json", "tuf",
    ]  # fmt: skip
    state = device.state()
    assert (state["committed"], state["previous"], state["pending"]) == ("1.1.0", "1.0.0", None)
    # Restarted with 1.1.0 live (twice if the kill came after the first restart); never
    # with anything else.
    assert set(device.restarts()) == {"releases/1.1.0"}


def test_a_release_withdrawn_after_a_kill_leaves_nothing_behind(
    world: World, tmp_path: Path
) -> None:
    device = world.device(tmp_path)
    repo = world.repo_copy(tmp_path / "repo")
    repo.publish("1.1.0")
    with repo.serve() as server:
        killed = device.cli(server.url, env={KILL_AFTER_ENV: "unpacking"})
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert device.releases() == [".1.1.0.partial", "1.0.0"]
        set_rollout(repo.path, repo.keys, "1.1.0", 0)  # the operator halts the rollout
        outcome = device.run(server.url)
    assert (outcome.code, outcome.message) == (EXIT_OK, "up to date: running 1.0.0")
    device.assert_untouched()


def test_killed_while_switching_back_the_next_run_finishes_the_rollback(
    world: World, tmp_path: Path
) -> None:
    device = world.device(tmp_path, health="false")
    repo = world.repo_copy(tmp_path / "repo")
    repo.publish("1.1.0")
    with repo.serve() as server:
        killed = device.cli(server.url, env={KILL_AFTER_ENV: ROLLBACK_STEPS[0]})
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert device.live() == "releases/1.1.0"  # complete and self-tested, just unhealthy
        device.health = "true"  # healthy now: it must still not be confirmed
        finished = device.run(server.url)
    assert finished.code == EXIT_FAILED
    assert finished.message == (
        "rolled back 1.1.0: health check failed (exit 1); running 1.0.0; 1.1.0 marked bad"
    )
    assert device.live() == "releases/1.0.0"
    assert device.releases() == ["1.0.0"]
    assert device.restarts() == ["releases/1.1.0", "releases/1.0.0"]
    assert device.state()["bad"] == {"1.1.0": "health check failed (exit 1)"}
