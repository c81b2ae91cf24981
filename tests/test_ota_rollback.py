"""A release that does not work here: refused before the switch (self-test) or switched back
after it (health check), marked bad, and never tried again."""

from pathlib import Path

import pytest

from device.update.outcome import EXIT_FAILED, EXIT_OK
from tests.ota_world import World


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World.get(tmp_path_factory)


def test_a_release_failing_its_selftest_is_never_switched_in_nor_retried(
    world: World, tmp_path: Path
) -> None:
    device = world.device(tmp_path)
    repo = world.repo_copy(tmp_path / "repo")
    repo.publish("1.1.0-bad")  # selftest exits 1: "camera not found (fake failure)"
    with repo.serve() as server:
        outcome = device.run(server.url)
        assert outcome.code == EXIT_FAILED
        assert outcome.message == (
            "release 1.1.0 refused: self-test failed (exit 1): selftest: camera not found "
            "(fake failure); marked bad"
        )
        device.assert_untouched()  # never switched, never restarted, its folder deleted
        assert device.state()["bad"] == {
            "1.1.0": "self-test failed (exit 1): selftest: camera not found (fake failure)"
        }
        again = device.run(server.url)
        assert len(server.target_requests()) == 1  # not even downloaded a second time
        assert (again.code, again.message) == (EXIT_OK, "up to date: running 1.0.0")
        device.assert_untouched()
        repo.publish("1.2.0")  # the fix, as a new version: a bad one blocks nothing newer
        fixed = device.run(server.url)
    assert (fixed.code, fixed.message) == (EXIT_OK, "updated 1.0.0 -> 1.2.0")
    assert "1.1.0" in device.state()["bad"]


def test_an_unhealthy_release_is_switched_back_and_never_retried(
    world: World, tmp_path: Path
) -> None:
    device = world.device(tmp_path, health="sh -c 'echo inactive >&2; exit 3'")
    repo = world.repo_copy(tmp_path / "repo")
    repo.publish("1.1.0")
    with repo.serve() as server:
        outcome = device.run(server.url)
        assert outcome.code == EXIT_FAILED
        assert outcome.result == "rolled-back"
        assert outcome.message == (
            "rolled back 1.1.0: health check failed (exit 3): inactive; running 1.0.0; "
            "1.1.0 marked bad"
        )
        # Switched in and restarted, then switched back and restarted again.
        assert device.restarts() == ["releases/1.1.0", "releases/1.0.0"]
        assert device.live() == "releases/1.0.0"
        assert device.version() == "ticket-scanner 1.0.0"
        assert device.releases() == ["1.0.0"]
        state = device.state()
        assert state["bad"] == {"1.1.0": "health check failed (exit 3): inactive"}
        assert (state["committed"], state["pending"]) == ("1.0.0", None)
        assert state["last"]["result"] == "rolled-back"
        device.health = "true"  # even once the service would be healthy: 1.1.0 stays bad
        again = device.run(server.url)
    assert (again.code, again.message) == (EXIT_OK, "up to date: running 1.0.0")
    assert device.restarts() == ["releases/1.1.0", "releases/1.0.0"]
