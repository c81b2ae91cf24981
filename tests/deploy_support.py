"""Helpers for the deploy/ tests: a pretend Raspberry Pi for install.sh, and release bundles.

``FakeSystem`` runs deploy/install.sh with ``--root`` on a temporary folder. The system commands
it uses are stubs (tests/data/fake-system/fake-system) that record every call and keep a little
state, and every other command on PATH, and its Python, is wrapped so that each argv is
recorded too: a test can then show that a secret never appeared on any command line.
"""

from __future__ import annotations

import atexit
import ensurepip
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
INSTALL_SH = DEPLOY / "install.sh"
FAKE_SYSTEM = REPO / "tests" / "data" / "fake-system" / "fake-system"
FAKE_APP = REPO / "tests" / "data" / "fake-app"
BASH = shutil.which("bash") or "/bin/bash"

STUBBED = (
    *("apt-get", "apt-cache", "dpkg", "dpkg-query", "getent", "groupadd", "useradd", "usermod"),
    *("systemctl", "raspi-config", "runuser"),
)
# Stub calls that change the pretend system (queries like `getent` or `is-active` do not).
MUTATING = re.compile(
    r"^(apt-get |groupadd |useradd |usermod |raspi-config nonint do_"
    r"|systemctl (daemon-reload|enable|disable|start|restart|stop))"
)


@dataclass
class FakeSystem:
    """A temporary root, the stubs and their state; ``run`` runs install.sh against it."""

    base: Path
    arch: str = "arm64"
    codename: str = "bookworm"
    groups: tuple[str, ...] = ("video",)  # gpio and i2c are missing, so install.sh adds them
    raspi_config: bool = True
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = self.base / "root"
        self.state = self.base / "state"
        self.stubs = self.base / "stubs"
        self.log = self.base / "calls.log"
        self.argv_log = self.base / "argv.log"
        for folder in (self.root / "etc", self.state, self.stubs):
            folder.mkdir(parents=True)
        (self.root / "etc" / "os-release").write_text(
            f'PRETTY_NAME="Debian GNU/Linux 12"\nVERSION_CODENAME={self.codename}\n'
        )
        (self.state / "group").write_text(
            "".join(f"{g}:x:{44 + i}:\n" for i, g in enumerate(self.groups))
        )
        for name in STUBBED:
            if name != "raspi-config" or self.raspi_config:
                (self.stubs / name).symlink_to(FAKE_SYSTEM)
        self.python = _recorder(self.stubs / "python-for-install", sys.executable)

    def environment(self) -> dict[str, str]:
        """What install.sh needs to run against this pretend system."""
        return {
            "PATH": f"{self.stubs}:{argv_recorders()}:{os.environ['PATH']}",
            "FAKE_STATE": str(self.state),
            "FAKE_ROOT": str(self.root),
            "FAKE_LOG": str(self.log),
            "FAKE_ARCH": self.arch,
            "ARGV_LOG": str(self.argv_log),
            "TICKET_SCANNER_PYTHON": str(self.python),
            "PIP_NO_INDEX": "1",  # the bundle is installed offline; never reach for an index
            "LC_ALL": "C.UTF-8",
            "HOME": str(self.base),
            **self.env,
        }

    def run(
        self, *args: str | Path, stdin: str = "", check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(  # noqa: S603 - our own script, arguments the test built
            [BASH, str(INSTALL_SH), "--root", str(self.root), *map(str, args)],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.environment(),
            timeout=120,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"install.sh exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def mutating_calls(self) -> list[str]:
        return [call for call in self.calls() if MUTATING.match(call)]

    def every_argv(self) -> str:
        """Everything any recorded command was given: stub calls and wrapped commands."""
        parts = [self.log, self.argv_log]
        return "\n".join(p.read_text() for p in parts if p.exists())

    def gid(self, group: str) -> int:
        for line in (self.state / "group").read_text().splitlines():
            name, _, gid, _ = line.split(":")
            if name == group:
                return int(gid)
        raise KeyError(group)

    def reset_logs(self) -> None:
        self.log.unlink(missing_ok=True)
        self.argv_log.unlink(missing_ok=True)


def _recorder(wrapper: Path, real: str) -> Path:
    """A script that appends its arguments to $ARGV_LOG and then runs ``real`` with them."""
    wrapper.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$*" >>"$ARGV_LOG"\nexec {shlex.quote(real)} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


_RECORDERS: list[Path] = []


def argv_recorders() -> Path:
    """One recorder for every command on PATH (made once per test process): with this folder
    after the stubs in PATH, whatever install.sh runs, its argv lands in $ARGV_LOG."""
    if not _RECORDERS:
        folder = Path(tempfile.mkdtemp(prefix="argv-recorders-"))
        atexit.register(shutil.rmtree, folder, True)
        for entry in os.environ["PATH"].split(os.pathsep):
            if not Path(entry).is_dir():
                continue
            for command in Path(entry).iterdir():
                wrapper = folder / command.name
                if command.name in STUBBED or wrapper.exists():
                    continue  # the stubs come first; and the first on PATH wins
                if command.is_file() and os.access(command, os.X_OK):
                    _recorder(wrapper, str(command))
        _RECORDERS.append(folder)
    return _RECORDERS[0]


def build_app_wheel(work: Path, version: str, *, selftest_fails: bool = False) -> Path:
    """The fake app (tests/data/fake-app) as a wheel at ``version``, built offline."""
    source = work / f"fake-app-{version}"
    shutil.copytree(FAKE_APP, source)
    if selftest_fails:
        cli = source / "fakescanner" / "cli.py"
        cli.write_text(cli.read_text().replace("SELFTEST_FAILS = False", "SELFTEST_FAILS = True"))
    pyproject = source / "pyproject.toml"
    text = re.sub(r'(?m)^version = ".*"$', f'version = "{version}"', pyproject.read_text())
    pyproject.write_text(text)
    out = work / f"wheel-{version}"
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1"}
    subprocess.run(  # noqa: S603 - our own interpreter's pip
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--wheel-dir",
            str(out),
            str(source),
        ],
        check=True,
        env=env,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = out.glob("ticket_scanner-*.whl")
    return wheel


def pip_wheel() -> Path:
    """The pip wheel that ships inside Python (ensurepip): the bundle's installer."""
    bundled = Path(ensurepip.__file__).parent / "_bundled"
    found = sorted(bundled.glob("pip-*.whl")) + sorted(
        Path("/usr/share/python-wheels").glob("pip-*.whl")
    )
    assert found, "no pip wheel found (ensurepip's bundle or python3-pip-whl)"
    return found[0]


def write_bundle(out: Path, version: str, app_wheel: Path) -> Path:
    """ticket-scanner-V.tar.gz in the layout deploy/otalib/bundle.py writes (device/update/
    contract.py): manifest.json, hash-locked requirements.txt, wheels/ with pip beside the app."""
    installer = pip_wheel()
    digest = hashlib.sha256(app_wheel.read_bytes()).hexdigest()
    manifest = {
        "name": "ticket-scanner",
        "version": version,
        "platform": "manylinux_2_28_aarch64",
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "created": "2026-11-27T12:00:00Z",
        "installer": installer.name,
        "wheels": [app_wheel.name, installer.name],
    }
    # The app wheel's own version is in its file name; the manifest may claim another (a test
    # of what install.sh believes).
    app_version = app_wheel.name.split("-")[1]
    members = {
        "manifest.json": json.dumps(manifest, indent=2).encode() + b"\n",
        "requirements.txt": f"ticket-scanner=={app_version} --hash=sha256:{digest}\n".encode(),
        f"wheels/{app_wheel.name}": app_wheel.read_bytes(),
        f"wheels/{installer.name}": installer.read_bytes(),
    }
    bundle = out / f"ticket-scanner-{version}.tar.gz"
    with tarfile.open(bundle, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return bundle


_BUNDLES: dict[str, Path] = {}


def release_bundles() -> dict[str, Path]:
    """Bundles of the fake app, built once per test process: "1.2.0", "1.1.0" (which holds
    the same 1.2.0 wheel: it is only ever refused as older, never installed), and "1.3.0", whose
    self-test fails."""
    if not _BUNDLES:
        work = Path(tempfile.mkdtemp(prefix="release-bundles-"))
        atexit.register(shutil.rmtree, work, True)
        wheel = build_app_wheel(work, "1.2.0")
        _BUNDLES.update({v: write_bundle(work, v, wheel) for v in ("1.2.0", "1.1.0")})
        broken = build_app_wheel(work / "broken", "1.3.0", selftest_fails=True)
        _BUNDLES["1.3.0"] = write_bundle(work, "1.3.0", broken)
    return dict(_BUNDLES)


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every path under ``root`` with its type, mode, owner, size, mtime and link target."""
    seen: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        target = os.readlink(path) if path.is_symlink() else ""
        seen[str(path.relative_to(root))] = (st.st_mode, st.st_uid, st.st_gid, st.st_size)
        seen[str(path.relative_to(root))] += (st.st_mtime_ns, target)
    return seen
