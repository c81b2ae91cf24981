"""The device id: Pi serial first, then cpuinfo, then machine-id (prefixed); config overrides."""

from pathlib import Path

import pytest

from device import identity
from device.app import configured_device_id
from device.cli import main
from device.config import ApiConfig, Config, DeviceConfig
from device.demo import DEMO_DEVICE_ID
from device.identity import device_id


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "devicetree_serial": tmp_path / "serial-number",
        "cpuinfo": tmp_path / "cpuinfo",
        "machine_id": tmp_path / "machine-id",
    }


def test_the_devicetree_serial_wins(files: dict[str, Path]) -> None:
    files["devicetree_serial"].write_bytes(b"10000000a1b2c3d4\x00")
    files["cpuinfo"].write_text("Serial\t\t: 00000000ffffffff\n")
    assert device_id(**files) == "10000000a1b2c3d4"


def test_cpuinfo_serial_when_no_devicetree(files: dict[str, Path]) -> None:
    files["cpuinfo"].write_text(
        "processor\t: 0\nHardware\t: BCM2835\nSerial\t\t: 00000000A1B2C3D4\n"
    )
    assert device_id(**files) == "00000000a1b2c3d4"


def test_machine_id_is_prefixed_so_nobody_takes_it_for_a_serial(files: dict[str, Path]) -> None:
    files["cpuinfo"].write_text("processor\t: 0\n")
    files["machine_id"].write_text("0123456789abcdef0123456789abcdef\n")
    assert device_id(**files) == "machine-id:0123456789abcdef0123456789abcdef"


def test_an_all_zero_serial_is_not_a_serial(files: dict[str, Path]) -> None:
    files["cpuinfo"].write_text("Serial\t\t: 0000000000000000\n")
    files["machine_id"].write_text("abc\n")
    assert device_id(**files) == "machine-id:abc"


def test_the_config_overrides(files: dict[str, Path]) -> None:
    files["devicetree_serial"].write_text("10000000a1b2c3d4")
    assert device_id("gate-7", **files) == "gate-7"


def test_nothing_readable_is_an_error_that_says_what_to_do(files: dict[str, Path]) -> None:
    with pytest.raises(RuntimeError, match=r"set \[device\] id"):
        device_id(**files)


@pytest.fixture
def nameless_machine(monkeypatch: pytest.MonkeyPatch, files: dict[str, Path]) -> None:
    """An image before its first boot, or a container: no serial, an empty machine-id."""
    files["machine_id"].write_text("")
    monkeypatch.setattr(identity, "DEVICETREE_SERIAL", files["devicetree_serial"])
    monkeypatch.setattr(identity, "CPUINFO", files["cpuinfo"])
    monkeypatch.setattr(identity, "MACHINE_ID", files["machine_id"])


@pytest.mark.usefixtures("nameless_machine")
def test_device_id_on_a_nameless_machine_says_to_set_it_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["device-id"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("ticket-scanner: no device id: ")
    assert "set [device] id in the config" in err


@pytest.mark.usefixtures("nameless_machine")
@pytest.mark.parametrize("command", ["device-id", "run"])
def test_with_a_config_the_error_names_the_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    token = tmp_path / "token"
    token.write_text("tok\n")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[api]\nbase_url = "http://127.0.0.1:9"\ntoken_file = "{token}"\n'
        f'[hardware]\nbackend = "sim"\n[camera]\nsource = "images:{tmp_path}"\n'
        f'[offline]\njournal = "{tmp_path / "journal.db"}"\n'
    )
    assert main([command, "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"ticket-scanner: config error: {config}: [device] id: no device id")


@pytest.mark.usefixtures("nameless_machine")
def test_the_demo_needs_no_device_id(tmp_path: Path) -> None:
    config = Config(
        api=ApiConfig(base_url="http://127.0.0.1:9", token_file=tmp_path / "t", timeout_s=1.0),
        device=DeviceConfig(id=DEMO_DEVICE_ID),
    )
    assert configured_device_id(config) == DEMO_DEVICE_ID
