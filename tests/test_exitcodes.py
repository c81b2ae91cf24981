"""scan and verify exit by class of verdict, so a shell script can tell a refused ticket from
a scanner that is set up wrong or cannot reach AnyRoad."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from device import exitcodes
from device.cli import main
from device.sandbox import Fault, SandboxServer
from device.verdicts import Verdict
from tests.test_cli import config_file


@pytest.fixture
def refusing_url() -> Iterator[str]:
    """A loopback URL whose port is held but never listened on: connection refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}/sandbox/v1"


@pytest.mark.parametrize(
    ("command", "case", "expected"),
    [
        ("scan", "admitted", 0),
        ("verify", "admitted", 0),
        ("scan", "already_scanned", 1),
        ("scan", "canceled", 1),
        ("scan", "too_early", 1),
        ("scan", "too_late", 1),
        ("verify", "too_late", 1),
    ],
)
def test_a_ticket_verdict_sets_the_exit_code(
    tmp_path: Path,
    sandbox: SandboxServer,
    codes: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    command: str,
    case: str,
    expected: int,
) -> None:
    path = config_file(tmp_path, sandbox.url)
    assert main([command, codes[case], "--config", str(path)]) == expected
    verdict = capsys.readouterr().out.split(":")[0]
    assert verdict == ("valid" if command == "verify" and expected == 0 else case)


def test_an_unknown_code_is_invalid_and_refused(
    tmp_path: Path, sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file(tmp_path, sandbox.url)
    assert main(["scan", "not-a-ticket", "--config", str(path)]) == exitcodes.REFUSED
    assert capsys.readouterr().out.startswith("invalid: ")


def test_a_re_entry_let_in_exits_zero(
    tmp_path: Path,
    sandbox: SandboxServer,
    codes: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = config_file(tmp_path, sandbox.url, '[scan]\nreentry = "allow"\n')
    assert main(["scan", codes["already_scanned"], "--config", str(path)]) == exitcodes.OK
    assert capsys.readouterr().out.startswith("already_scanned: ")


def test_a_refused_token_is_a_setup_error(
    tmp_path: Path,
    sandbox: SandboxServer,
    codes: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox.inject(Fault.UNAUTHORIZED)
    path = config_file(tmp_path, sandbox.url)
    assert main(["scan", codes["admitted"], "--config", str(path)]) == exitcodes.SETUP == 3
    assert capsys.readouterr().out.startswith("unauthorized: ")


def test_a_server_error_means_try_later(
    tmp_path: Path,
    sandbox: SandboxServer,
    codes: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox.inject(Fault.SERVER_ERROR, count=5)  # however often the client retries
    path = config_file(tmp_path, sandbox.url)
    assert main(["verify", codes["admitted"], "--config", str(path)]) == exitcodes.UNREACHABLE
    assert capsys.readouterr().out.startswith("server_error: ")


def test_no_server_means_try_later(
    tmp_path: Path, refusing_url: str, codes: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file(tmp_path, refusing_url)
    assert main(["scan", codes["admitted"], "--config", str(path)]) == exitcodes.UNREACHABLE == 4
    assert capsys.readouterr().out.startswith("unreachable: ")


def test_a_bad_config_is_a_usage_error(
    tmp_path: Path, codes: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.toml"
    assert main(["scan", codes["admitted"], "--config", str(missing)]) == exitcodes.USAGE == 2
    assert (
        capsys.readouterr().err == f"ticket-scanner: config error: {missing}: no such config file\n"
    )


def test_every_verdict_has_an_exit_class() -> None:
    assert {verdict: exitcodes.for_verdict(verdict, admits=False) for verdict in Verdict} == {
        Verdict.ADMITTED: 0,
        Verdict.VALID: 0,
        Verdict.ACCEPTED_OFFLINE: 0,
        Verdict.ALREADY_SCANNED: 1,
        Verdict.CANCELED: 1,
        Verdict.TOO_EARLY: 1,
        Verdict.TOO_LATE: 1,
        Verdict.INVALID: 1,
        Verdict.UNAUTHORIZED: 3,
        Verdict.SETUP_ERROR: 3,  # a URL that answers, but not as AnyRoad
        Verdict.SERVER_ERROR: 4,
        Verdict.UNREACHABLE: 4,
    }
    assert exitcodes.for_verdict(Verdict.ALREADY_SCANNED, admits=True) == 0


def test_a_url_that_is_not_anyroad_is_a_setup_error(
    tmp_path: Path,
    sandbox: SandboxServer,
    codes: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = sandbox.url.replace("/sandbox/v1", "/not-the-api/v1")  # answers 404, not AnyRoad's
    path = config_file(tmp_path, wrong)
    assert main(["scan", codes["admitted"], "--config", str(path)]) == exitcodes.SETUP
    out = capsys.readouterr().out
    assert out.startswith(
        "setup_error: SETUP ERROR | wrong API URL | call supervisor | SCAN  OFFLINE"
    )
