"""The OTA updater's small rules, one at a time, without a repository or a venv."""

import io
import json
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tuf.api import exceptions
from tuf.api.metadata import TargetFile

from device.cli import main
from device.update.choose import Device, choose, runs_here
from device.update.cli import loop
from device.update.contract import ReleaseInfo, in_rollout, parse_version
from device.update.guards import BUILD_FLOOR, busy, clock_floor
from device.update.outcome import (
    EXIT_OK,
    EXIT_TRY_LATER,
    Failed,
    Outcome,
    ReleaseBroken,
    TryLater,
)
from device.update.source import Release, check_repo_url
from device.update.state import Pending, State, load_state, save_state
from device.update.text import one_line
from device.update.tuf_errors import explain
from device.update.unpack import unpack, unpacked_size

PI = Device(id="10000000a1b2c3d4", machine="aarch64", glibc=(2, 36), python="3.11")


def release(version: str, **changes: object) -> Release:
    fields: dict[str, object] = {
        "version": version,
        "platform": "manylinux_2_28_aarch64",
        "python": "3.11",
        "created": datetime(2026, 11, 20, tzinfo=UTC),
        "rollout": 100,
        **changes,
    }
    info = ReleaseInfo(**fields)  # type: ignore[arg-type]
    return Release(info, TargetFile(1, {"sha256": "00" * 32}, f"ticket-scanner-{version}.tar.gz"))


def test_versions_order_numerically_and_refuse_anything_else() -> None:
    assert parse_version("1.10.0") > parse_version("1.9.3")
    for bad in ("1", "v1.0", "1.0.0rc1", "1..0", "../1.0", "1.0.0.0.0", ""):
        with pytest.raises(ValueError, match="not a release version"):
            parse_version(bad)


def test_rollout_is_stable_per_device_and_a_raise_only_adds_devices() -> None:
    devices = [f"pi-{n}" for n in range(400)]
    taken = {p: {d for d in devices if in_rollout(d, "1.2.0", p)} for p in (0, 10, 50, 100)}
    assert taken[0] == set()
    assert taken[100] == set(devices)
    assert taken[10] <= taken[50]
    assert 20 <= len(taken[10]) <= 60  # about 10% of 400
    assert 160 <= len(taken[50]) <= 240
    other = {d for d in devices if in_rollout(d, "1.3.0", 10)}
    assert other != taken[10]  # each release picks its own first devices


@pytest.mark.parametrize(
    ("tag", "device", "runs"),
    [
        ("manylinux_2_28_aarch64", PI, True),
        ("manylinux_2_39_aarch64", PI, False),  # needs a newer glibc than bookworm's 2.36
        ("manylinux_2_28_x86_64", PI, False),
        ("linux_aarch64", PI, True),
        ("any", PI, True),
        ("manylinux_2_28_aarch64", Device("x", "aarch64", (0, 0), "3.11"), False),  # musl
        ("win_amd64", PI, False),
    ],
)
def test_a_platform_tag_runs_where_its_wheels_run(tag: str, device: Device, runs: bool) -> None:
    assert runs_here(tag, device) is runs


def test_choose_takes_the_newest_eligible_release_above_the_running_one() -> None:
    releases = [
        release("1.0.0"),
        release("1.4.0"),
        release("1.3.0"),
        release("1.5.0", python="3.13"),
        release("1.6.0"),
        release("0.9.0"),
    ]
    chosen, passed_over = choose(
        releases, running="1.2.0", bad={"1.6.0": "self-test failed"}, device=PI
    )
    assert chosen is not None
    assert chosen.version == "1.4.0"
    assert passed_over == [
        "1.6.0: marked bad: self-test failed",
        "1.5.0: built for Python 3.13, this is 3.11",
    ]
    nothing, _ = choose(releases[:3], running="1.4.0", bad={}, device=PI)
    assert nothing is None  # never a downgrade


def test_release_metadata_must_be_complete() -> None:
    good = release("1.0.0").info.to_custom()
    assert ReleaseInfo.from_custom(good) == release("1.0.0").info
    for change in ({"rollout": 101}, {"rollout": True}, {"version": "1"}, {"name": "other"}):
        with pytest.raises(ValueError):
            ReleaseInfo.from_custom({**good, **change})
    with pytest.raises(ValueError):
        ReleaseInfo.from_custom({k: v for k, v in good.items() if k != "created"})


def test_only_https_or_loopback_http_repositories() -> None:
    assert check_repo_url("https://updates.example.com/ota/") == "https://updates.example.com/ota"
    assert check_repo_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    for bad in ("http://updates.example.com", "ftp://x", "https://x/?a=1", "updates.example.com"):
        with pytest.raises(ValueError, match="https://"):
            check_repo_url(bad)


NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("error", "now", "kind", "words"),
    [
        (exceptions.ExpiredMetadataError("timestamp.json is expired"), NOW, Failed, "expired"),
        (exceptions.ExpiredMetadataError("x"), BUILD_FLOOR - timedelta(days=1), TryLater, "clock"),
        (exceptions.DownloadHTTPError("busy", 503), NOW, TryLater, "unavailable"),
        (exceptions.DownloadHTTPError("gone", 404), NOW, Failed, "HTTP 404"),
        (exceptions.SlowRetrievalError("slow"), NOW, TryLater, "unreachable"),
        (exceptions.DownloadError("refused"), NOW, TryLater, "unreachable"),
        (exceptions.BadVersionNumberError("v3 < v4"), NOW, Failed, "rollback"),
    ],
)
def test_what_each_tuf_error_means(
    error: Exception, now: datetime, kind: type[Exception], words: str
) -> None:
    verdict = explain(error, now=now, floor=BUILD_FLOOR)
    assert type(verdict) is kind
    assert words in str(verdict)


def test_busy_means_a_code_was_in_view_within_the_window(tmp_path: Path) -> None:
    activity = tmp_path / "activity"
    assert not busy(activity, NOW, 60)  # never touched: no scanner activity at all
    activity.touch()
    mtime = activity.stat().st_mtime
    at = datetime.fromtimestamp(mtime, UTC)
    assert busy(activity, at + timedelta(seconds=59), 60)
    assert not busy(activity, at + timedelta(seconds=61), 60)
    assert busy(activity, at - timedelta(seconds=30), 60)  # the clock stepped back


def test_the_clock_floor_is_the_running_release_s_build_time(tmp_path: Path) -> None:
    assert clock_floor(None) == BUILD_FLOOR
    built = BUILD_FLOOR + timedelta(days=40)
    (tmp_path / "manifest.json").write_text(json.dumps({"created": "2026-12-11T00:00:00Z"}))
    assert clock_floor(tmp_path) == built


def test_the_state_file_round_trips_and_a_corrupt_one_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = State(
        committed="1.1.0",
        previous="1.0.0",
        pending=Pending("1.2.0", "switching", "1.1.0"),
        bad={"1.0.5": "self-test failed"},
        last={"result": "updated"},
    )
    save_state(path, state)
    assert load_state(path) == state
    path.write_text('{"committed": "../../etc"}')
    assert load_state(path) == State()
    assert (tmp_path / "state.json.corrupt").exists()


def test_one_line_escapes_control_characters() -> None:
    assert one_line("first\n\x1b[2Jlast \u202e line\n\n") == "\\x1b[2Jlast \\x202e line"
    assert len(one_line("x" * 500)) == 200


def test_the_loop_waits_less_after_try_later_and_hands_over_after_an_update() -> None:
    outcomes = iter(
        [
            Outcome(EXIT_TRY_LATER, "try-later", "busy"),
            Outcome(EXIT_OK, "up-to-date", "up to date"),
            Outcome(EXIT_OK, "updated", "updated 1.0.0 -> 1.1.0"),
        ]
    )
    waits: list[float] = []

    class HandOverError(Exception):
        pass

    def reexec() -> None:
        raise HandOverError  # os.execv never returns either

    with pytest.raises(HandOverError):
        loop(lambda: next(outcomes), interval_s=3600, sleep=waits.append, reexec=reexec)
    assert len(waits) == 2
    assert 270 <= waits[0] <= 330  # try later: about 5 minutes
    assert 3240 <= waits[1] <= 3960  # the interval, with jitter


@pytest.mark.parametrize(
    "name", ["../evil.whl", "/etc/passwd", "wheels/../../x.whl", "wheels/x.py", "venv/bin/python"]
)
def test_a_bundle_entry_outside_the_expected_files_is_refused(tmp_path: Path, name: str) -> None:
    bundle = tmp_path / "bundle.tar.gz"
    with tarfile.open(bundle, "w:gz") as tar:
        for entry in ("manifest.json", name):
            info = tarfile.TarInfo(entry)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"{}"))
    with pytest.raises(ReleaseBroken, match="unexpected entry"):
        unpacked_size(bundle)
    with pytest.raises(ReleaseBroken, match="unexpected entry"):
        unpack(bundle, tmp_path / ".1.0.0.partial", tmp_path / "1.0.0", after_first=lambda: None)
    assert not (tmp_path / "1.0.0").exists()
    assert not (tmp_path.parent / "evil.whl").exists()


def test_a_bundle_with_a_link_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.tar.gz"
    with tarfile.open(bundle, "w:gz") as tar:
        link = tarfile.TarInfo("wheels/x.whl")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
        tar.addfile(link)
    with pytest.raises(ReleaseBroken, match="unexpected entry"):
        unpacked_size(bundle)


def test_bad_options_are_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["update", "--once", "--install-root", str(tmp_path)]
    missing = tmp_path / "root.json"
    assert main([*common, "--repo-url", "https://x.example", "--trusted-root", str(missing)]) == 2
    assert f"{missing}: cannot read the trusted root" in capsys.readouterr().err
    missing.write_text("{}")
    plain = ["--repo-url", "http://updates.example.com", "--trusted-root", str(missing)]
    assert main([*common, *plain]) == 2
    assert "must be https://" in capsys.readouterr().err
