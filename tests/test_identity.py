"""The device id: Pi serial first, then cpuinfo, then machine-id (prefixed); config overrides."""

from pathlib import Path

import pytest

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
