"""A full disk: the install root on a small tmpfs, mounted in a private mount namespace
(``unshare``; as a normal user with ``--user --map-root-user``) so nothing leaks onto this
machine. The update is refused with a clear message and nothing is left half written."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from device.update.outcome import EXIT_FAILED
from device.update.space import DOWNLOAD_FACTOR, UNPACK_FACTOR
from tests.ota_world import RepoServer, World

# Runs inside the namespace, after the mount: one update, then what is left on the tmpfs
# (the tmpfs vanishes with the namespace). With "--no-space-check" the free space checks
# are told the disk is huge, to show what happens when the disk fills anyway.
DRIVER = """
import argparse, json, os, sys
from device.update.options import add_arguments, settings_from
from device.update.runner import Installer
parser = argparse.ArgumentParser()
add_arguments(parser)
parser.add_argument("--no-space-check", action="store_true")
args = parser.parse_args(sys.argv[1:])
inject = {"free": lambda path: 1 << 40} if args.no_space_check else {}
outcome = Installer(settings_from(args), **inject).run()
root = args.install_root
left = sorted(
    os.path.relpath(os.path.join(top, name), root)
    for top, dirs, files in os.walk(root)
    for name in dirs + files
    if not os.path.relpath(top, root).startswith("tuf")
)
state = json.loads(open(os.path.join(root, "state.json")).read())
print(json.dumps({"code": outcome.code, "message": outcome.message, "left": left, "state": state}))
"""


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World.get(tmp_path_factory)


def on_tmpfs(world: World, tmp_path: Path, size: str, *extra: str) -> dict[str, Any]:
    """A fresh device whose install root is a ``size`` tmpfs installs 1.0.0."""
    root = tmp_path / "root"
    root.mkdir()
    namespace = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        namespace[1:1] = ["--user", "--map-root-user"]
    device = world.fresh_device(root, tmp_path)
    with RepoServer(world.repo) as server:
        done = subprocess.run(  # noqa: S603 - fixed programs, arguments we built
            [
                *namespace, "sh", "-c",
                'mount -t tmpfs -o size="$0" tmpfs "$1" && shift && exec "$@"',
                size, str(root), sys.executable, "-c", DRIVER,
                *device.args(server.url), *extra,
            ],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert os.listdir(root) == []  # the tmpfs was private to the namespace
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_too_little_space_to_download_is_refused_before_downloading(
    world: World, tmp_path: Path
) -> None:
    # The bundle is 2 MB (mostly the pip wheel); downloading needs twice that.
    result = on_tmpfs(world, tmp_path, "2m")
    assert result["code"] == EXIT_FAILED
    assert result["message"].startswith(f"not enough free space on {tmp_path}/root/downloads")
    needs = DOWNLOAD_FACTOR * world.bundles["1.0.0"][0].stat().st_size
    assert f"to download 1.0.0: needs {needs / 1e6:.1f} MB" in result["message"]
    assert result["left"] == [".lock", "downloads", "releases", "state.json", "tuf"]
    assert result["state"]["pending"] is None
    assert result["state"]["bad"] == {}  # the disk's fault, not the release's


def test_too_little_space_to_unpack_and_build_is_refused_before_unpacking(
    world: World, tmp_path: Path
) -> None:
    result = on_tmpfs(world, tmp_path, "6m")  # enough to download, not for 6x the unpacked
    assert result["code"] == EXIT_FAILED
    with tarfile.open(world.bundles["1.0.0"][0]) as tar:
        needs = UNPACK_FACTOR * sum(member.size for member in tar)
    assert f"to unpack and build 1.0.0: needs {needs / 1e6:.1f} MB" in result["message"]
    assert result["left"] == [".lock", "downloads", "releases", "state.json", "tuf"]
    assert result["state"]["pending"] is None


def test_a_disk_that_fills_anyway_leaves_nothing_half_written(world: World, tmp_path: Path) -> None:
    result = on_tmpfs(world, tmp_path, "6m", "--no-space-check")
    assert result["code"] == EXIT_FAILED
    assert "disk full" in result["message"] or "out of disk space" in result["message"]
    assert result["left"] == [".lock", "downloads", "releases", "state.json", "tuf"]
    assert result["state"]["pending"] is None
    assert result["state"]["bad"] == {}
