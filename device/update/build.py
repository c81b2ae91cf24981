"""Build a release's venv from its own wheels, offline, and self-test it.

    python3 -m venv --without-pip --system-site-packages releases/V/venv
    releases/V/venv/bin/python -m pip install --no-index --find-links wheels \
        --require-hashes --ignore-installed -r requirements.txt      (pip from the bundle)
    releases/V/venv/bin/ticket-scanner selftest

--system-site-packages: the Pi's camera library (picamera2) only comes from apt.
--ignore-installed: the venv gets exactly the bundle's versions even where apt has others.
Without pip in the venv, creating it takes 0.1 s instead of 3 s; pip runs from the bundle's
own pip wheel, unzipped beside the venv for the install and deleted after.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

from device.update.contract import REQUIREMENTS, WHEELS
from device.update.crashpoint import checkpoint
from device.update.outcome import Failed, ReleaseBroken
from device.update.text import one_line
from device.update.unpack import Manifest

VENV_TIMEOUT_S = 120
INSTALL_TIMEOUT_S = 1800  # a Pi Zero unpacking numpy is slow
SELFTEST_TIMEOUT_S = 120
_NO_SPACE = ("No space left on device", "[Errno 28]")


def build_venv(release: Path, manifest: Manifest, python: Path) -> None:
    """Create release/venv and install the bundle's wheels into it (replacing any old try)."""
    venv = release / "venv"
    installer = release / ".installer"
    for leftover in (venv, installer):
        if leftover.exists():
            shutil.rmtree(leftover)
    _run(
        [str(python), "-m", "venv", "--without-pip", "--system-site-packages", str(venv)],
        VENV_TIMEOUT_S,
        "creating the venv",
        release_at_fault=False,  # python3-venv missing, say: no reason to blame the release
    )
    checkpoint("building")
    try:
        with zipfile.ZipFile(release / WHEELS / manifest.installer) as wheel:
            wheel.extractall(installer)
    except zipfile.BadZipFile as error:
        raise ReleaseBroken(f"installer {manifest.installer} unreadable: {error}") from None
    env = {**_clean_env(), "PYTHONPATH": str(installer)}
    _run(
        [
            str(venv / "bin" / "python"), "-m", "pip", "install",
            "--no-index", "--find-links", str(release / WHEELS),
            "--require-hashes", "--ignore-installed", "--no-cache-dir",
            "--disable-pip-version-check", "--no-input", "--no-warn-script-location",
            "--requirement", str(release / REQUIREMENTS),
        ],
        INSTALL_TIMEOUT_S,
        "installing the wheels",
        env=env,
    )  # fmt: skip
    shutil.rmtree(installer)


def selftest(release: Path) -> None:
    """The release's own ``ticket-scanner selftest`` must pass before anything points at it."""
    _run(
        [str(release / "venv" / "bin" / "ticket-scanner"), "selftest"],
        SELFTEST_TIMEOUT_S,
        "self-test",
    )


def _clean_env() -> dict[str, str]:
    # The device's pip.conf (Pi OS points it at piwheels) and user site must not leak in.
    keep = ("PATH", "LANG", "LC_ALL", "HOME", "TMPDIR")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.update(PIP_CONFIG_FILE=os.devnull, PYTHONNOUSERSITE="1")
    return env


def _run(
    command: list[str],
    timeout_s: float,
    what: str,
    *,
    env: dict[str, str] | None = None,
    release_at_fault: bool = True,
) -> None:
    blame = ReleaseBroken if release_at_fault else Failed
    try:
        done = subprocess.run(  # noqa: S603 - our own files and fixed arguments
            command,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            env=env if env is not None else _clean_env(),
        )
    except subprocess.TimeoutExpired:
        raise blame(f"{what} took over {timeout_s:g} s") from None
    except OSError as error:
        raise blame(f"{what}: cannot run {command[0]}: {error.strerror}") from None
    if done.returncode != 0:
        output = done.stderr + done.stdout
        detail = one_line(done.stderr or done.stdout)
        if any(sign in output for sign in _NO_SPACE):
            # Not the release's fault: do not mark it bad.
            raise Failed(f"{what} ran out of disk space: {detail}")
        raise blame(f"{what} failed (exit {done.returncode})" + (f": {detail}" if detail else ""))


def python_version(python: Path) -> str:
    """``3.11`` for the interpreter that will run the venvs."""
    try:
        done = subprocess.run(  # noqa: S603 - the configured interpreter, fixed arguments
            [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=VENV_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Failed(f"cannot run {python}: {error}") from None
    if done.returncode != 0:
        raise Failed(f"cannot run {python}: {one_line(done.stderr)}")
    return done.stdout.strip()
