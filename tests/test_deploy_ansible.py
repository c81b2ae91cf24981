"""deploy/ansible: the playbook's syntax, and a real run against localhost (connection=local) on
a pretend Pi (tests/deploy_support.py), then a check-mode run that must find nothing to change."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy_support import DEPLOY, FakeSystem, release_bundles

ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
PLAYBOOK = DEPLOY / "ansible" / "playbook.yml"
INVENTORY_EXAMPLE = DEPLOY / "ansible" / "inventory.example.ini"
TOKEN = "tok-ansible-5e1f0c9d-never-print-me"
RECAP = re.compile(r"^localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=0\s+failed=0", re.M)


def ansible(tmp_path: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    if not ANSIBLE_PLAYBOOK.exists():
        pytest.fail("ansible-playbook missing: make test installs it (the deploy extra)")
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\n")
    env = {
        "PATH": os.environ["PATH"],
        "LC_ALL": "C.UTF-8",  # ansible refuses other locale encodings
        "HOME": str(tmp_path),
        "ANSIBLE_CONFIG": str(config),  # an empty one: none from the machine or the home
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
    }
    return subprocess.run(  # noqa: S603 - the venv's ansible-playbook, arguments we built
        [ANSIBLE_PLAYBOOK, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


def test_the_playbook_and_example_inventory_pass_the_syntax_check(tmp_path: Path) -> None:
    done = ansible(tmp_path, "--syntax-check", "-i", INVENTORY_EXAMPLE, PLAYBOOK)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"playbook: {PLAYBOOK}" in done.stdout
    assert "WARNING" not in done.stderr  # e.g. an inventory line it could not parse


def test_the_syntax_check_does_fail_on_a_broken_playbook(tmp_path: Path) -> None:
    copy = tmp_path / "ansible"
    shutil.copytree(PLAYBOOK.parent, copy)  # with roles/ beside it, as the real one
    broken = copy / PLAYBOOK.name
    broken.write_text(PLAYBOOK.read_text().replace("  roles:\n", "  rolez:\n"))
    done = ansible(tmp_path, "--syntax-check", "-i", INVENTORY_EXAMPLE, broken)
    assert done.returncode != 0
    assert "rolez" in done.stdout + done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="install.sh chowns files: run as root")
def test_the_playbook_installs_and_then_check_mode_finds_nothing_to_change(tmp_path: Path) -> None:
    bundle = release_bundles()["1.2.0"]
    system = FakeSystem(tmp_path / "pi")
    host = f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}"
    (tmp_path / "inventory.ini").write_text(f"[scanners]\n{host}\n")
    ota_root = tmp_path / "root.json"
    ota_root.write_text('{"signed": {"_type": "root"}, "signatures": []}\n')
    # Variables from a file, as vaulted ones would come: the token is on no command line.
    (tmp_path / "vars.json").write_text(
        json.dumps(
            {
                "ansible_become": False,  # already root; there is no sudo here
                "ticket_scanner_bundle": str(bundle),
                "ticket_scanner_token": TOKEN,
                "ticket_scanner_base_url": "https://tickets.example.org/anyroad",
                "ticket_scanner_ota_root": str(ota_root),
                "ticket_scanner_ota_url": "https://updates.example.org/ticket-scanner",
                "ticket_scanner_root": str(system.root),
                "ticket_scanner_install_env": system.environment(),
            }
        )
    )
    run = ("-i", "inventory.ini", "-e", "@vars.json", PLAYBOOK)

    first = ansible(tmp_path, *run)
    assert first.returncode == 0, first.stdout + first.stderr
    recap = RECAP.search(first.stdout)
    assert recap and int(recap[2]) >= 3, first.stdout
    assert "install.sh: done:" in first.stdout  # install.sh's own report is shown
    etc = system.root / "etc/ticket-scanner"
    assert (etc / "token").read_text() == TOKEN + "\n"
    assert (etc / "ota-root.json").read_text() == ota_root.read_text()
    assert (etc / "ota-url").read_text() == "https://updates.example.org/ticket-scanner\n"
    assert os.readlink(system.root / "opt/ticket-scanner/current") == "releases/1.2.0"
    assert any(call.startswith("useradd ") for call in system.mutating_calls())

    first_argv = system.every_argv()

    # Check mode runs install.sh --dry-run: nothing would change, and nothing did.
    system.reset_logs()
    check = ansible(tmp_path, "--check", *run)
    assert check.returncode == 0, check.stdout + check.stderr
    recap = RECAP.search(check.stdout)
    assert recap and recap[2] == "0", check.stdout
    assert "install.sh: dry run: nothing is changed" in check.stdout
    assert "nothing to change: ticket-scanner 1.2.0 is installed" in check.stdout
    assert system.mutating_calls() == []

    assert "--token-file -" in first_argv  # the recorders saw install.sh's command line
    for text in (
        first.stdout,
        first.stderr,
        check.stdout,
        check.stderr,
        first_argv,
        system.every_argv(),
    ):
        assert TOKEN not in text
