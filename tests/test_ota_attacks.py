"""What a network attacker, a broken mirror or a captive portal can do to the device, and that
each is refused with nothing unpacked, nothing downloaded kept, `current` unchanged, and the
release not marked bad (the fault is the delivery, not the release)."""

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata

from deploy.otalib.operations import resign, set_rollout
from device.update.outcome import EXIT_FAILED, EXIT_OK
from device.update.source import ReleaseSource
from tests.ota_world import Repo, World


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World.get(tmp_path_factory)


def refused(world: World, tmp_path: Path, repo: Repo, expected: str, portal: str = "") -> None:
    device = world.device(tmp_path)
    with repo.serve() as server:
        server.portal = portal
        outcome = device.run(server.url)
    assert outcome.code == EXIT_FAILED, outcome
    assert expected in outcome.message
    device.assert_untouched()
    assert device.state()["bad"] == {}
    assert device.state()["last"]["result"] == "rejected"


def test_a_tampered_bundle_is_refused(world: World, tmp_path: Path) -> None:
    repo = world.repo_copy(tmp_path / "repo")
    repo.publish("1.1.0")
    bundle = repo.target("1.1.0")
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, same length
    bundle.write_bytes(bytes(data))
    refused(world, tmp_path, repo, "does not match its signed metadata")


def test_a_truncated_bundle_is_refused(world: World, tmp_path: Path) -> None:
    repo = world.repo_copy(tmp_path / "repo")
    repo.publish("1.1.0")
    bundle = repo.target("1.1.0")
    bundle.write_bytes(bundle.read_bytes()[:-1000])
    refused(world, tmp_path, repo, "does not match its signed metadata")


def test_a_bundle_swapped_for_another_signed_one_is_refused(world: World, tmp_path: Path) -> None:
    """A mirror serving 1.1.0's bytes (a real, signed bundle) under 1.2.0's name."""
    repo = world.repo_copy(tmp_path / "repo")
    repo.publish("1.1.0", rollout=0)
    repo.publish("1.2.0")
    shutil.copyfile(repo.target("1.1.0"), repo.target("1.2.0"))
    refused(world, tmp_path, repo, "does not match its signed metadata")


def test_tampered_targets_metadata_is_refused(world: World, tmp_path: Path) -> None:
    repo = world.repo_copy(tmp_path / "repo")
    repo.publish("1.1.0", rollout=0)
    served = repo.latest("targets")
    raw = json.loads(served.read_text())
    raw["signed"]["targets"]["ticket-scanner-1.1.0.tar.gz"]["custom"]["rollout"] = 100
    served.write_text(json.dumps(raw))  # the old signature stays
    refused(world, tmp_path, repo, "not signed by the trusted keys")


def test_unsigned_timestamp_is_refused(world: World, tmp_path: Path) -> None:
    repo = world.repo_copy(tmp_path / "repo")
    repo.publish("1.1.0")
    served = repo.latest("timestamp")
    raw = json.loads(served.read_text())
    raw["signatures"] = []
    served.write_text(json.dumps(raw))
    refused(world, tmp_path, repo, "not signed by the trusted keys")


def test_metadata_signed_with_a_key_the_root_does_not_trust_is_refused(
    world: World, tmp_path: Path
) -> None:
    repo = world.repo_copy(tmp_path / "repo")
    repo.publish("1.1.0")
    served = repo.latest("timestamp")
    forged = Metadata.from_file(str(served))
    forged.signed.version += 1
    forged.sign(CryptoSigner.generate_ed25519())  # the attacker's own key
    served.write_bytes(forged.to_bytes())
    refused(world, tmp_path, repo, "not signed by the trusted keys")


def test_an_expired_timestamp_is_refused(world: World, tmp_path: Path) -> None:
    """Freeze attack: a mirror keeps serving old (validly signed) metadata, past its expiry."""
    repo = world.repo_copy(tmp_path / "repo")
    repo.publish("1.1.0")
    resign(repo.path, repo.keys, expiry={"timestamp": timedelta(seconds=-1)})
    refused(world, tmp_path, repo, "repository metadata expired")


def test_replayed_older_metadata_is_refused(world: World, tmp_path: Path) -> None:
    """Rollback attack: 1.1.0's rollout was halted (0%), and the attacker replays the older,
    validly signed metadata that still offered it to every device."""
    repo = world.repo_copy(tmp_path / "repo")
    repo.publish("1.1.0")
    offered = tmp_path / "offered-metadata"
    shutil.copytree(repo.path / "metadata", offered)
    set_rollout(repo.path, repo.keys, "1.1.0", 0)
    device = world.device(tmp_path)
    with repo.serve() as server:
        assert device.run(server.url).code == EXIT_OK  # sees the halt: nothing to install
    shutil.rmtree(repo.path / "metadata")
    shutil.copytree(offered, repo.path / "metadata")
    # The replayed metadata is genuine and offers 1.1.0 to all: only its version gives it away.
    fresh = tmp_path / "fresh"
    for folder in ("tuf", "spool"):
        (fresh / folder).mkdir(parents=True)
    with repo.serve() as server:
        source = ReleaseSource(
            server.url, world.trusted_root.read_bytes(), fresh / "tuf", fresh / "spool"
        )
        source.refresh()
        assert {r.version: r.info.rollout for r in source.releases()}["1.1.0"] == 100
        outcome = device.run(server.url)
    assert outcome.code == EXIT_FAILED
    assert "older metadata than this device has seen" in outcome.message
    assert device.live() == "releases/1.0.0"
    assert device.releases() == ["1.0.0"]
    assert device.downloads() == []


@pytest.mark.parametrize(
    ("portal", "expected"),
    [("html", "not TUF metadata"), ("redirect", "HTTP 302")],
)
def test_a_captive_portal_is_refused(
    world: World, tmp_path: Path, portal: str, expected: str
) -> None:
    repo = world.repo_copy(tmp_path / "repo")
    repo.publish("1.1.0")
    refused(world, tmp_path, repo, expected, portal=portal)
