"""selftest: what the updater runs in a new release before switching to it."""

from pathlib import Path

import pytest

from device import selftest
from device.cli import main
from device.sandbox import DEMO_TOKEN


def test_a_working_installation_passes_every_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["selftest"]) == 0
    out = capsys.readouterr().out
    for check in ("decode", "screen", "journal", "scan over HTTP"):
        assert f"ok   {check}:" in out
    assert out.rstrip().endswith("selftest passed")


def test_a_broken_part_fails_the_selftest_and_names_itself(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> str:
        raise ImportError("libzxing missing")

    monkeypatch.setattr(selftest, "_decode", broken)
    assert main(["selftest"]) == 1
    out = capsys.readouterr().out
    assert "FAIL decode: ImportError: libzxing missing" in out
    assert "ok   journal:" in out  # the other checks still ran
    assert out.rstrip().endswith("selftest FAILED: 1 check(s)")


def test_with_a_config_its_secret_and_journal_are_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[api]\nbase_url = "https://api.example.com"\n'
        f'token_file = "{tmp_path / "missing-token"}"\n'
        f'[offline]\njournal = "{tmp_path / "journal.db"}"\n'
    )
    assert main(["selftest", "--config", str(config)]) == 1
    assert "FAIL config:" in capsys.readouterr().out
    (tmp_path / "missing-token").write_text(DEMO_TOKEN)
    assert main(["selftest", "--config", str(config)]) == 0
