"""``deploy/ota`` as the operator types it: keys, the repository, the release bundle."""

import json
import platform
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from tuf.api.metadata import Metadata, Targets

from deploy.otalib.bundle import compatible_platforms
from deploy.otalib.operations import resign
from deploy.otalib.repo import utc_now
from device.update.unpack import unpack
from tests.ota_world import FAKE_APP, OTA, PLATFORM, World, pip_wheel


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World.get(tmp_path_factory)


def ota(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own script
        [str(OTA), *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """init-repo, then publish 2.0.0 of the fake app from a wheelhouse: (repo, keys, bundle)."""
    base = tmp_path_factory.mktemp("publish")
    wheelhouse = base / "wheelhouse"
    wheelhouse.mkdir()
    (wheelhouse / pip_wheel().name).write_bytes(pip_wheel().read_bytes())
    repo, keys = base / "repo", base / "keys"
    made = ota("init-repo", repo, "--keys", keys)
    assert made.returncode == 0, made.stderr
    assert f"devices trust {repo}/metadata/1.root.json" in made.stdout
    done = ota(
        "publish", repo, "--keys", keys, "--version", "2.0.0", "--source", FAKE_APP,
        "--platform", PLATFORM, "--wheelhouse", wheelhouse, "--rollout", "25",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"published 2.0.0 for {PLATFORM} to 25% of devices: ")
    (bundle,) = (repo / "targets").glob("*.ticket-scanner-2.0.0.tar.gz")
    return repo, keys, bundle


def test_keys_are_private_and_never_inside_the_repository(
    published: tuple[Path, Path, Path],
) -> None:
    repo, keys, _ = published
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    names = sorted(p.name for p in keys.iterdir())
    assert names == ["root.pem", "snapshot.pem", "targets.pem", "timestamp.pem"]
    for key in keys.iterdir():
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    for path in repo.rglob("*"):
        if path.is_file() and path.suffix == ".json":
            assert b"PRIVATE KEY" not in path.read_bytes()
    assert ota("init-repo", repo / "inside", "--keys", repo / "inside" / "keys").returncode == 1


def test_the_repository_layout_is_what_the_device_fetches(
    published: tuple[Path, Path, Path],
) -> None:
    repo, _, bundle = published
    metadata = repo / "metadata"
    names = {p.name for p in metadata.iterdir()}
    assert {"1.root.json", "timestamp.json", "2.targets.json", "2.snapshot.json"} <= names
    root = Metadata.from_file(str(metadata / "1.root.json")).signed
    assert root.consistent_snapshot is True
    expires = {
        role: Metadata.from_file(str(metadata / f"{role}.json")).signed.expires - utc_now()
        for role in ("root", "targets", "snapshot", "timestamp")
    }
    assert timedelta(days=364) < expires["root"] <= timedelta(days=365)
    assert expires["targets"] >= timedelta(days=7)
    assert expires["snapshot"] >= timedelta(days=7)
    assert expires["timestamp"] <= timedelta(days=1)
    targets = Metadata[Targets].from_file(str(metadata / "2.targets.json")).signed
    target = targets.targets["ticket-scanner-2.0.0.tar.gz"]
    assert bundle.name == f"{target.hashes['sha256']}.ticket-scanner-2.0.0.tar.gz"
    assert target.custom["version"] == "2.0.0"
    assert target.custom["platform"] == PLATFORM
    assert target.custom["rollout"] == 25


def test_the_bundle_installs_with_pip_offline_and_hash_locked(
    published: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, _, bundle = published
    with tarfile.open(bundle) as tar:
        assert sorted(tar.getnames()) == [
            "manifest.json",
            "requirements.txt",
            f"wheels/{pip_wheel().name}",
            "wheels/ticket_scanner-2.0.0-py3-none-any.whl",
        ]
    # The device's own unpacker (extractall's filter= needs Python 3.11.4; bookworm has 3.11.2).
    unpacked = tmp_path / "bundle"
    unpack(bundle, tmp_path / ".bundle.partial", unpacked, after_first=lambda: None)
    manifest = json.loads((unpacked / "manifest.json").read_text())
    assert {k: manifest[k] for k in ("name", "version", "platform", "python")} == {
        "name": "ticket-scanner",
        "version": "2.0.0",
        "platform": PLATFORM,
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
    }
    assert "created" in manifest
    requirements = (unpacked / "requirements.txt").read_text()
    assert requirements.startswith("ticket_scanner==2.0.0 --hash=sha256:")

    def install(target: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our interpreter's pip, offline
            [
                sys.executable, "-m", "pip", "install", "--no-index", "--find-links", "wheels",
                "--require-hashes", "-r", "requirements.txt", "--target", target,
                "--disable-pip-version-check", "--quiet",
            ],
            cwd=unpacked, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    installed = install(str(tmp_path / "site"))
    assert installed.returncode == 0, installed.stderr
    assert (tmp_path / "site" / "ticket_scanner-2.0.0.dist-info").is_dir()
    # The lock is real: one changed hash and pip refuses.
    digest = requirements.split("sha256:")[1][:64]
    (unpacked / "requirements.txt").write_text(requirements.replace(digest, "0" * 64))
    refused = install(str(tmp_path / "site2"))
    assert refused.returncode != 0
    assert "HASHES" in refused.stderr.upper()


def test_no_key_or_repository_is_ever_overwritten(published: tuple[Path, Path, Path]) -> None:
    repo, keys, _ = published
    before = {p.name: p.read_bytes() for p in keys.iterdir()}
    again = ota("init-repo", repo, "--keys", keys)
    assert again.returncode == 1
    assert "already exists" in again.stderr
    other = ota("init-repo", repo.parent / "repo2", "--keys", keys)
    assert other.returncode == 1
    assert "a key already exists; refusing to overwrite keys" in other.stderr
    assert {p.name: p.read_bytes() for p in keys.iterdir()} == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--version", "2.1.0", "--rollout", "101"], "ota: --rollout must be 0 to 100, got 101"),
        (["--version", "v2.1.0"], "not a release version"),
        (["--version", "2.0.0"], "version 2.0.0 is already published"),
        (["--version", "2.1.0", "--source", "/nonexistent"], "no pyproject.toml"),
    ],
)
def test_bad_publish_arguments_are_refused(
    published: tuple[Path, Path, Path], args: list[str], message: str
) -> None:
    repo, keys, _ = published
    done = ota("publish", repo, "--keys", keys, *args)
    assert done.returncode == 1
    assert message in done.stderr
    assert len(list((repo / "targets").iterdir())) == 1  # nothing was added


def test_keys_of_another_repository_are_refused(
    published: tuple[Path, Path, Path], world: World
) -> None:
    repo, _, _ = published
    done = ota("rollout", repo, "--keys", world.keys, "--version", "2.0.0", "--percent", "50")
    assert done.returncode == 1
    assert "is not the targets key the repository's root trusts" in done.stderr


def test_rollout_status_and_resign(published: tuple[Path, Path, Path], tmp_path: Path) -> None:
    repo, keys, _ = published
    done = ota("rollout", repo, "--keys", keys, "--version", "2.0.0", "--percent", "60")
    assert (done.returncode, done.stdout) == (0, "2.0.0: rollout 60%\n")
    status = ota("status", repo)
    assert status.returncode == 0
    assert f"2.0.0      rollout  60%  {PLATFORM}" in status.stdout
    signed = ota("resign", repo, "--keys", keys)
    assert (signed.returncode, signed.stdout) == (0, "signed anew: timestamp\n")
    # Near their expiry, targets and snapshot are re-signed too (the daily job keeps them fresh).
    soon = utc_now() + timedelta(days=80)
    assert resign(repo, keys, now=soon) == ["targets", "snapshot", "timestamp"]


def _wheel(folder: Path, name: str, version: str, tag: str) -> Path:
    """A minimal installable wheel of ``name`` for ``tag`` (no code: a dependency stand-in)."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {tag}\n",
    }
    files[f"{dist}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{dist}/RECORD"])
    path = folder / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for member, text in files.items():
            wheel.writestr(member, text)
    return path


def test_a_dependency_built_for_an_older_manylinux_is_taken(tmp_path: Path) -> None:
    """numpy 1.26 ships only manylinux_2_17 (manylinux2014) wheels; a target of glibc 2.28
    must take them, as pip would on the device itself."""
    machine = platform.machine()
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    shutil.copy2(pip_wheel(), wheelhouse)
    py = f"cp{sys.version_info.major}{sys.version_info.minor}"
    old_tag = f"{py}-{py}-manylinux_2_17_{machine}.manylinux2014_{machine}"
    _wheel(wheelhouse, "oldglibc", "1.0", old_tag)
    app = tmp_path / "app"
    shutil.copytree(FAKE_APP, app)
    pyproject = app / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'requires-python = ">=3.11"', 'requires-python = ">=3.11"\ndependencies = ["oldglibc"]'
        )
    )
    repo, keys = tmp_path / "repo", tmp_path / "keys"
    assert ota("init-repo", repo, "--keys", keys).returncode == 0
    done = ota(
        "publish", repo, "--keys", keys, "--version", "3.0.0", "--source", app,
        "--platform", f"manylinux_2_28_{machine}", "--wheelhouse", wheelhouse,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (bundle,) = (repo / "targets").glob("*.ticket-scanner-3.0.0.tar.gz")
    assert done.stdout.rstrip().endswith(str(bundle))  # the operator copies this file
    with tarfile.open(bundle) as tar:
        assert f"wheels/oldglibc-1.0-{old_tag}.whl" in tar.getnames()


@pytest.mark.parametrize(
    ("target", "includes", "excludes"),
    [
        (
            "manylinux_2_36_aarch64",
            ["manylinux_2_36_aarch64", "manylinux_2_28_aarch64", "manylinux2014_aarch64"],
            ["manylinux_2_37_aarch64", "manylinux_2_36_x86_64", "manylinux2010_aarch64"],
        ),
        (
            "manylinux_2_28_x86_64",
            ["manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"],
            ["manylinux_2_29_x86_64", "manylinux_2_28_aarch64"],
        ),
        ("linux_aarch64", ["linux_aarch64"], ["manylinux2014_aarch64"]),
    ],
)
def test_a_target_platform_accepts_every_older_manylinux_of_its_architecture(
    target: str, includes: list[str], excludes: list[str]
) -> None:
    tags = compatible_platforms(target)
    assert tags[0] == target
    assert all(tag in tags for tag in includes)
    assert not any(tag in tags for tag in excludes)
