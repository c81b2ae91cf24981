"""Shared pieces of the OTA tests: a fake app, a signed repository on 127.0.0.1, and a device.

Building bundles and venvs is what costs time, so ``World`` does it once per session: the
bundles every test publishes, a repository with 1.0.0 published, and a device that installed
1.0.0 (its first install), kept as a template. ``world.device()`` restores that template to the
same path each time (a venv's scripts name their own absolute path, so it cannot move).
"""

from __future__ import annotations

import argparse
import ensurepip
import functools
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from deploy.otalib.bundle import build_bundle
from deploy.otalib.operations import add_release, init_repo
from deploy.otalib.repo import utc_now
from device.update.contract import ReleaseInfo
from device.update.options import add_arguments, settings_from
from device.update.outcome import Outcome
from device.update.runner import Installer

CHECKOUT = Path(__file__).resolve().parent.parent
FAKE_APP = Path(__file__).parent / "data" / "fake-app"
PLATFORM = f"manylinux_2_28_{platform.machine()}"  # this machine, as the Pi is for real ones
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
SCANNER = Path(sys.executable).with_name("ticket-scanner")
OTA = CHECKOUT / "deploy" / "ota"
DEVICE_ID = "test-device"


def pip_wheel() -> Path:
    """The pip wheel Python itself bundles (ensurepip): a wheelhouse without the network."""
    places = [Path(ensurepip.__file__).parent / "_bundled", Path("/usr/share/python-wheels")]
    for place in places:
        found = sorted(place.glob("pip-*.whl"))
        if found:
            return found[-1]
    raise AssertionError(f"no pip wheel in {places}: install python3-venv / python3-pip-whl")


def fake_app(dest: Path, *, selftest_fails: bool = False) -> Path:
    shutil.copytree(FAKE_APP, dest, ignore=shutil.ignore_patterns("*.egg-info", "build"))
    if selftest_fails:
        cli = dest / "fakescanner" / "cli.py"
        text = cli.read_text()
        assert "SELFTEST_FAILS = False" in text
        cli.write_text(text.replace("SELFTEST_FAILS = False", "SELFTEST_FAILS = True"))
    return dest


def release_info(version: str, **changes: Any) -> ReleaseInfo:
    fields: dict[str, Any] = {
        "version": version,
        "platform": PLATFORM,
        "python": PYTHON,
        "created": utc_now() - timedelta(minutes=1),
        "rollout": 100,
    }
    fields.update(changes)
    return ReleaseInfo(**fields)


class RepoServer:
    """The repository folder over HTTP on 127.0.0.1, recording each path asked for.

    ``portal = "html"`` answers every request with a captive portal's login page (200),
    ``portal = "redirect"`` with a 302 to it, as hotel and venue Wi-Fi do.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.portal = ""
        self.requests: list[str] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def _handler(self) -> type[SimpleHTTPRequestHandler]:
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(server.directory), **kwargs)

            def do_GET(self) -> None:
                server.requests.append(self.path)
                if server.portal == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "http://portal.example/login")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif server.portal == "html":
                    page = b"<html><body>Welcome to Venue Wi-Fi. Log in.</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
                else:
                    super().do_GET()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def target_requests(self) -> list[str]:
        return [path for path in self.requests if path.startswith("/targets/")]

    def __enter__(self) -> RepoServer:
        # A short poll interval: shutdown() waits for the loop to notice, 0.5 s by default.
        serve = functools.partial(self._httpd.serve_forever, poll_interval=0.02)
        threading.Thread(target=serve, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@dataclass
class Repo:
    path: Path
    keys: Path
    world: World

    def publish(self, name: str, *, rollout: int = 100, **changes: Any) -> None:
        """Add the session's bundle ``name`` ("1.1.0", "1.1.0-bad" ...) as a release."""
        bundle, info = self.world.bundles[name]
        info = ReleaseInfo(**{**info.__dict__, "rollout": rollout, **changes})
        add_release(self.path, self.keys, bundle, info)

    def latest(self, role: str) -> Path:
        """The newest served file of ``role`` (N.role.json; timestamp.json has no N)."""
        if role == "timestamp":
            return self.path / "metadata" / "timestamp.json"
        files = (self.path / "metadata").glob(f"*.{role}.json")
        return max(files, key=lambda p: int(p.name.split(".")[0]))

    def target(self, version: str) -> Path:
        (found,) = (self.path / "targets").glob(f"*.ticket-scanner-{version}.tar.gz")
        return found

    def serve(self) -> RepoServer:
        return RepoServer(self.path)


@dataclass
class Device:
    root: Path
    work: Path  # the test's own folder: restart log, activity file
    trusted_root: Path
    health: str = "true"

    @property
    def activity(self) -> Path:
        return self.work / "activity"

    def args(self, url: str, *extra: str) -> list[str]:
        restart = f'sh -c \'readlink "$0" >> "$1"\' {self.root / "current"} {self.restarts_log}'
        return [
            "--once",
            "--install-root", str(self.root),
            "--repo-url", url,
            "--trusted-root", str(self.trusted_root),
            "--device-id", DEVICE_ID,
            "--activity-file", str(self.activity),
            "--restart-command", restart,
            "--health-command", self.health,
            "--settle", "0",
            "--unit", "",  # no systemd here to ask (tests/test_ota_service.py fakes one)
            "--reserve-mb", "0",
            *extra,
        ]  # fmt: skip

    def run(self, url: str, *extra: str, **inject: Any) -> Outcome:
        """One update in this process (``inject``: now=, free= for Installer)."""
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        settings = settings_from(parser.parse_args(self.args(url, *extra)))
        return Installer(settings, **inject).run()

    def cli(
        self, url: str, *extra: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``ticket-scanner update`` as the systemd unit runs it, in its own process."""
        return subprocess.run(  # noqa: S603 - our console script, arguments we built
            [str(SCANNER), "update", *self.args(url, *extra)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **(env or {})},
            check=False,
        )

    @property
    def restarts_log(self) -> Path:
        return self.work / "restarts.log"

    def restarts(self) -> list[str]:
        log = self.restarts_log
        return log.read_text().split() if log.exists() else []

    def live(self) -> str | None:
        current = self.root / "current"
        return os.readlink(current) if current.is_symlink() else None

    def releases(self) -> list[str]:
        """Everything in releases/, hidden names too (a partial unpack would show here)."""
        folder = self.root / "releases"
        return sorted(p.name for p in folder.iterdir()) if folder.exists() else []

    def downloads(self) -> list[str]:
        folder = self.root / "downloads"
        return sorted(p.name for p in folder.iterdir()) if folder.exists() else []

    def state(self) -> dict[str, Any]:
        return json.loads((self.root / "state.json").read_text())  # type: ignore[no-any-return]

    def version(self) -> str:
        """What the live release's own ``ticket-scanner --version`` prints."""
        scanner = self.root / "current" / "venv" / "bin" / "ticket-scanner"
        done = subprocess.run(  # noqa: S603
            [str(scanner), "--version"], capture_output=True, text=True, timeout=30, check=True
        )
        return done.stdout.strip()

    def assert_untouched(self) -> None:
        """Still exactly the template: 1.0.0 live, nothing unpacked, nothing downloaded."""
        assert self.live() == "releases/1.0.0"
        assert self.releases() == ["1.0.0"]
        assert self.downloads() == []
        assert self.restarts() == []
        assert self.state()["committed"] == "1.0.0"
        assert self.state()["pending"] is None


@dataclass
class World:
    base: Path
    keys: Path = field(init=False)
    repo: Path = field(init=False)  # 1.0.0 published; never changed (tests copy it)
    wheelhouse: Path = field(init=False)
    bundles: dict[str, tuple[Path, ReleaseInfo]] = field(default_factory=dict)
    _made: ClassVar[World | None] = None

    @classmethod
    def get(cls, factory: pytest.TempPathFactory) -> World:
        if cls._made is None:
            cls._made = cls(factory.mktemp("ota"))
            cls._made._build()
        return cls._made

    def _build(self) -> None:
        self.keys = self.base / "keys"
        self.repo = self.base / "repo"
        self.wheelhouse = self.base / "wheelhouse"
        self.wheelhouse.mkdir()
        shutil.copy2(pip_wheel(), self.wheelhouse)
        init_repo(self.repo, self.keys)
        good = fake_app(self.base / "app")
        bad = fake_app(self.base / "app-bad", selftest_fails=True)
        for name, source, version in (
            ("1.0.0", good, "1.0.0"),
            ("1.1.0", good, "1.1.0"),
            ("1.2.0", good, "1.2.0"),
            ("1.1.0-bad", bad, "1.1.0"),
        ):
            info = release_info(version)
            out = self.base / "bundles" / name
            self.bundles[name] = (build_bundle(source, info, out, wheelhouse=self.wheelhouse), info)
        Repo(self.repo, self.keys, self).publish("1.0.0")

    def repo_copy(self, dest: Path) -> Repo:
        shutil.copytree(self.repo, dest)
        return Repo(dest, self.keys, self)

    @property
    def trusted_root(self) -> Path:
        return self.repo / "metadata" / "1.root.json"

    @functools.cached_property
    def first_install(self) -> tuple[Outcome, list[str], str]:
        """A fresh device installs 1.0.0: the template every device() starts from."""
        device = Device(self.base / "device", self.base / "first", self.trusted_root)
        device.work.mkdir()
        with RepoServer(self.repo) as server:
            outcome = device.run(server.url)
        shutil.copytree(device.root, self.base / "device-template", symlinks=True)
        return outcome, device.restarts(), device.version()

    def device(self, work: Path, *, health: str = "true") -> Device:
        """The device as it was after its first install (1.0.0 live), at its fixed path."""
        assert self.first_install[0].code == 0, self.first_install
        root = self.base / "device"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(self.base / "device-template", root, symlinks=True)
        return Device(root, work, self.trusted_root, health)

    def fresh_device(self, root: Path, work: Path) -> Device:
        return Device(root, work, self.trusted_root)
