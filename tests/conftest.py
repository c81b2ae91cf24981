"""Shared fixtures: a sandbox AnyRoad server on 127.0.0.1 and its demo tickets."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from device.config import OfflineConfig
from device.journal import Journal
from device.sandbox import SandboxServer, demo_tickets


@pytest.fixture(autouse=True)
def no_journal_outside_the_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that forgets [offline] journal must fail, not write to /var/lib on this machine."""
    real_open = Journal.open.__func__  # type: ignore[attr-defined]

    def guarded(cls: type[Journal], path: Path, **kwargs: Any) -> Journal:
        assert path != OfflineConfig().journal, "set [offline] journal to a temporary file"
        return real_open(cls, path, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(Journal, "open", classmethod(guarded))


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture(scope="session")
def codes() -> dict[str, str]:
    """Demo ticket QR codes by case: "admitted", "canceled", ..."""
    return {ticket.case: ticket.qr_code for ticket in demo_tickets()}


# These build real venvs, publish real bundles or kill real processes: minutes, not seconds.
# `pytest -m "not slow"` is the fast suite (CI also runs it on the lowest versions pyproject
# allows, and under arm64 emulation on bookworm's own Python).
SLOW_MODULES = frozenset(
    {
        "test_crash.py",
        "test_deploy_ansible.py",
        "test_deploy_install.py",
        "test_ota_attacks.py",
        "test_ota_crash.py",
        "test_ota_disk.py",
        "test_ota_publish.py",
        "test_ota_rollback.py",
        "test_ota_units.py",
        "test_ota_update.py",
    }
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--regen-golden",
        action="store_true",
        help="rewrite tests/golden/*.png from the current drawings (those tests then fail: look "
        "at the pictures and commit them); refused when CI is set",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
