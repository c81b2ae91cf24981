"""selftest: what the updater runs in a new release before switching to it."""

import logging
from pathlib import Path

import pytest

from device import selftest
from device.api import Reply
from device.cli import main
from device.probe import PROBE_CODE
from device.probe import result_for as probe_result
from device.sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TOKEN, Fault, SandboxServer


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


def write_config(
    tmp_path: Path, base_url: str, *extra: str, token: str | None = DEMO_TOKEN
) -> Path:
    token_file = tmp_path / "token"
    if token is not None:
        token_file.write_text(token + "\n")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[api]\nbase_url = "{base_url}"\ntoken_file = "{token_file}"\ntimeout_s = 1.0\n'
        + "".join(line + "\n" for line in extra)
        + f'[offline]\njournal = "{tmp_path / "journal.db"}"\n'
    )
    return config


def selftest_lines(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    status = main(["selftest", "--config", str(config)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return status, captured.out.splitlines()


def test_a_missing_token_is_one_clear_line_and_no_traceback(
    tmp_path: Path,
    sandbox: SandboxServer,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = write_config(tmp_path, sandbox.url, token=None)
    status, lines = selftest_lines(config, capsys)
    assert status == 1
    (fail,) = [line for line in lines if line.startswith("FAIL config:")]
    assert f"{tmp_path / 'token'}: cannot read the API token" in fail
    assert lines[-1] == "selftest FAILED: 2 check(s)"  # the API cannot be probed without it
    (tmp_path / "token").write_text(DEMO_TOKEN)
    caplog.clear()
    status, lines = selftest_lines(config, capsys)
    assert status == 0
    assert any(line.startswith("ok   API: AnyRoad answered at " + sandbox.url) for line in lines)
    warnings = [
        r for r in caplog.records if r.levelno >= logging.WARNING and r.name != "device.sandbox"
    ]
    assert not warnings  # the probe's expected 400 is the answer hoped for, not a warning


def test_the_probe_is_a_verify_of_a_code_that_cannot_exist(
    tmp_path: Path, sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    selftest_lines(write_config(tmp_path, sandbox.url), capsys)
    probes = [seen for seen in sandbox.seen() if seen.path.startswith("/sandbox/v1/")]
    assert [seen.path for seen in probes] == ["/sandbox/v1/tickets/verify"]  # records nothing
    assert probes[0].json() == {"qr_code": PROBE_CODE}


def dead_url() -> str:
    with SandboxServer() as gone:
        return gone.url


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("wrong prefix", "FAIL API: wrong url: {url} answered HTTP 404, not as AnyRoad's"),
        ("wrong token", "FAIL API: unauthorized: {url} refused the credential (HTTP 401"),
        ("nothing listening", "FAIL API: unreachable: {url}: the connection was refused"),
        ("slow", "FAIL API: unreachable: {url}: no answer in time"),
        ("not TLS", "FAIL API: unreachable: {url}: TLS failed"),
        ("captive portal", "FAIL API: wrong url: {url} answered HTTP 200, not with AnyRoad's JSON"),
        ("server error", "FAIL API: server error: {url} answered HTTP 500 (server_error"),
    ],
)
def test_the_probe_names_what_is_wrong(
    tmp_path: Path,
    sandbox: SandboxServer,
    capsys: pytest.CaptureFixture[str],
    where: str,
    expected: str,
) -> None:
    url, token = sandbox.url, DEMO_TOKEN
    if where == "wrong prefix":
        url = url.replace("/sandbox/v1", "/sandbox/v2")
    elif where == "wrong token":
        token = "not-the-token"
    elif where == "nothing listening":
        url = dead_url()
    elif where == "slow":
        sandbox.inject(Fault.SLOW, delay_s=1.5)
    elif where == "not TLS":
        url = url.replace("http://", "https://")
    elif where == "captive portal":
        sandbox.inject(Fault.HTML)
    else:
        sandbox.inject(Fault.SERVER_ERROR)
    status, lines = selftest_lines(write_config(tmp_path, url, token=token), capsys)
    assert status == 1
    (fail,) = [line for line in lines if line.startswith("FAIL")]
    assert fail.startswith(expected.format(url=url)), fail
    assert token not in "\n".join(lines) or token == DEMO_TOKEN  # never a secret


def test_the_probe_fetches_an_oauth_token_first_and_names_a_refused_client(
    tmp_path: Path, sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("wrong-secret\n")
    oauth = (
        f'token_url = "{sandbox.token_url}"',
        f'client_id = "{DEMO_CLIENT_ID}"',
        f'client_secret_file = "{secret}"',
    )
    config = write_config(tmp_path, sandbox.url, *oauth)
    status, lines = selftest_lines(config, capsys)
    assert status == 1
    (fail,) = [line for line in lines if line.startswith("FAIL")]
    assert fail.startswith(f"FAIL API: unauthorized: token endpoint {sandbox.token_url} refused")
    assert "wrong-secret" not in "\n".join(lines)
    secret.write_text(DEMO_CLIENT_SECRET + "\n")
    status, lines = selftest_lines(config, capsys)
    assert status == 0
    assert sandbox.token_requests == 2


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("dns_failed", "the name lookup failed"),
        ("dns_timeout", "the name lookup timed out"),
        ("connect_timeout", "the connection timed out"),
    ],
)
def test_each_way_of_not_reaching_the_api_has_its_words(code: str, words: str) -> None:
    result = probe_result(Reply("unreachable", code=code, sent=False), "https://api.example.com")
    assert (result.outcome, result.detail) == ("unreachable", f"https://api.example.com: {words}")
