"""The TOML config file as frozen dataclasses; errors name the file, key and expected value."""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, cast
from urllib.parse import urlsplit

from device.decode import DECODER_NAMES, DEFAULT_BUDGET_S, DecoderName

Mode = Literal["scan", "verify"]
Reentry = Literal["allow", "warn", "deny"]
Profile = Literal["handheld", "door"]
Backend = Literal["pi", "sim"]
OfflinePolicy = Literal["accept", "reject"]

T = TypeVar("T")


class ConfigError(ValueError):
    """The config file is missing, unreadable or holds a bad value."""


@dataclass(frozen=True)
class ApiConfig:
    base_url: str
    token_file: Path = Path("/etc/ticket-scanner/token")
    timeout_s: float = 3.0
    mode: Mode = "scan"
    # OAuth 2.0 client credentials (AnyRoad production): all three, or none and token_file.
    token_url: str = ""
    client_id: str = ""
    client_secret_file: Path | None = None

    @property
    def oauth(self) -> bool:
        return bool(self.token_url)


@dataclass(frozen=True)
class CameraConfig:
    source: str = "picamera2"
    fps: float = 30.0
    # picamera2 only: the frames' size, and how much of the sensor's centre they show.
    # 640x480 at zoom 2 puts 3 to 4 pixels on each module of a 4 cm ticket code at 30 cm
    # (hal/picam.py), for the decode cost of 640x480.
    size: tuple[int, int] = (640, 480)
    zoom: float = 2.0


@dataclass(frozen=True)
class ScanConfig:
    repeat_window_s: float = 3.0
    reentry: Reentry = "warn"
    decoder: DecoderName = "auto"
    decode_budget_s: float = DEFAULT_BUDGET_S


@dataclass(frozen=True)
class DeviceConfig:
    id: str = ""
    profile: Profile = "handheld"


@dataclass(frozen=True)
class HardwareConfig:
    backend: Backend = "pi"
    events: str = ""
    display: Literal["ssd1306", "sh1106", "none"] = "ssd1306"
    display_height: Literal[64, 32] = 64
    i2c_port: int = 1
    i2c_address: int = 0x3C
    led_green: int = 17
    led_amber: int = 27
    led_red: int = 22
    buzzer: int = 18
    buzzer_tonal: bool = True
    trigger: int = 23
    relay: int = 24
    relay_active_high: bool = True
    relay_pulse_s: float = 3.0
    result_hold_s: float = 2.0


@dataclass(frozen=True)
class OfflineConfig:
    # None: the profile decides. A handheld has staff beside it to judge a guest, so it
    # accepts; an unattended door rejects rather than open for any code.
    policy: OfflinePolicy | None = None
    journal: Path = Path("/var/lib/ticket-scanner/journal.db")

    def policy_for(self, profile: Profile) -> OfflinePolicy:
        if self.policy is not None:
            return self.policy
        return "accept" if profile == "handheld" else "reject"


@dataclass(frozen=True)
class Config:
    api: ApiConfig
    camera: CameraConfig = field(default_factory=CameraConfig)
    scan: ScanConfig = field(default_factory=ScanConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    offline: OfflineConfig = field(default_factory=OfflineConfig)
    path: Path = Path("config.toml")


def load_config(path: Path) -> Config:
    """Read and check a config file: ``load_config(Path("/etc/ticket-scanner/config.toml"))``."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the config file: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    return parse_config(raw, path)


def parse_config(raw: Mapping[str, Any], path: Path) -> Config:
    """Turn parsed TOML into a Config, refusing unknown sections/keys and bad values."""
    reader = _Reader(raw, path)
    config = Config(
        api=reader.section(
            "api",
            ApiConfig,
            base_url=reader.value("api", "base_url", _base_url, required=True),
            token_file=reader.value("api", "token_file", _path),
            timeout_s=reader.value("api", "timeout_s", _positive_float),
            mode=reader.value("api", "mode", _choice("scan", "verify")),
            token_url=reader.value("api", "token_url", _base_url),
            client_id=reader.value("api", "client_id", _client_id),
            client_secret_file=reader.value("api", "client_secret_file", _path),
        ),
        camera=reader.section(
            "camera",
            CameraConfig,
            source=reader.value("camera", "source", _camera_source),
            fps=reader.value("camera", "fps", _positive_float),
            size=reader.value("camera", "size", _frame_size),
            zoom=reader.value("camera", "zoom", _float_range(1.0, 8.0)),
        ),
        scan=reader.section(
            "scan",
            ScanConfig,
            repeat_window_s=reader.value("scan", "repeat_window_s", _non_negative_float),
            reentry=reader.value("scan", "reentry", _choice("allow", "warn", "deny")),
            decoder=reader.value("scan", "decoder", _choice(*DECODER_NAMES)),
            decode_budget_s=reader.value("scan", "decode_budget_s", _positive_float),
        ),
        device=reader.section(
            "device",
            DeviceConfig,
            id=reader.value("device", "id", _device_id),
            profile=reader.value("device", "profile", _choice("handheld", "door")),
        ),
        hardware=reader.section("hardware", HardwareConfig, **_hardware_values(reader)),
        offline=reader.section(
            "offline",
            OfflineConfig,
            policy=reader.value("offline", "policy", _choice("accept", "reject")),
            journal=reader.value("offline", "journal", _path),
        ),
        path=path,
    )
    reader.refuse_unknown()
    _check_oauth(config.api, path)
    return config


def _check_oauth(api: ApiConfig, path: Path) -> None:
    """OAuth needs all three keys; a half-configured one must not fall back to token_file."""
    given = {
        "token_url": bool(api.token_url),
        "client_id": bool(api.client_id),
        "client_secret_file": api.client_secret_file is not None,
    }
    if any(given.values()) and not all(given.values()):
        missing = ", ".join(key for key, present in given.items() if not present)
        raise ConfigError(
            f"{path}: [api] {missing}: required with the other OAuth keys "
            "(token_url, client_id, client_secret_file), but missing"
        )


def _hardware_values(reader: _Reader) -> dict[str, Any]:
    pins = ("led_green", "led_amber", "led_red", "buzzer", "trigger", "relay")
    values: dict[str, Any] = {
        "backend": reader.value("hardware", "backend", _choice("pi", "sim")),
        "events": reader.value("hardware", "events", _string),
        "display": reader.value("hardware", "display", _choice("ssd1306", "sh1106", "none")),
        "display_height": reader.value("hardware", "display_height", _choice(64, 32)),
        "i2c_port": reader.value("hardware", "i2c_port", _int_range(0, 32)),
        "i2c_address": reader.value("hardware", "i2c_address", _int_range(0x03, 0x77)),
        "buzzer_tonal": reader.value("hardware", "buzzer_tonal", _bool),
        "relay_active_high": reader.value("hardware", "relay_active_high", _bool),
        "relay_pulse_s": reader.value("hardware", "relay_pulse_s", _positive_float),
        "result_hold_s": reader.value("hardware", "result_hold_s", _positive_float),
    }
    for pin in pins:
        values[pin] = reader.value("hardware", pin, _int_range(0, 27))
    return values


class _Reader:
    """Walks the raw TOML, remembering which keys were understood."""

    def __init__(self, raw: Mapping[str, Any], path: Path) -> None:
        self.raw = raw
        self.path = path
        self.known: dict[str, set[str]] = {}

    def fail(self, where: str, expected: str, got: object) -> ConfigError:
        shown = repr(got) if len(repr(got)) <= 60 else repr(got)[:57] + "..."
        return ConfigError(f"{self.path}: {where}: expected {expected}, got {shown}")

    def table(self, section: str) -> Mapping[str, Any]:
        table = self.raw.get(section, {})
        if not isinstance(table, Mapping):
            raise self.fail(f"[{section}]", "a table", table)
        return table

    def value(
        self,
        section: str,
        key: str,
        check: Callable[[Any], tuple[bool, str, Any]],
        *,
        required: bool = False,
    ) -> Any:
        self.known.setdefault(section, set()).add(key)
        table = self.table(section)
        if key not in table:
            if required:
                raise ConfigError(f"{self.path}: [{section}] {key}: required, but missing")
            return _MISSING
        ok, expected, converted = check(table[key])
        if not ok:
            raise self.fail(f"[{section}] {key}", expected, table[key])
        return converted

    def section(self, section: str, cls: Callable[..., T], **values: Any) -> T:
        return cls(**{k: v for k, v in values.items() if v is not _MISSING})

    def refuse_unknown(self) -> None:
        for section, table in self.raw.items():
            if section not in self.known:
                known = ", ".join(f"[{name}]" for name in self.known)
                raise ConfigError(f"{self.path}: [{section}]: unknown section (known: {known})")
            for key in cast(Mapping[str, Any], table):
                if key not in self.known[section]:
                    known = ", ".join(sorted(self.known[section]))
                    raise ConfigError(
                        f"{self.path}: [{section}] {key}: unknown key (known: {known})"
                    )


_MISSING = object()

Check = tuple[bool, str, Any]


def _string(value: Any) -> Check:
    return isinstance(value, str), "a string", value


def _bool(value: Any) -> Check:
    return isinstance(value, bool), "true or false", value


def _path(value: Any) -> Check:
    return isinstance(value, str) and value != "", "a file path", Path(str(value))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive_float(value: Any) -> Check:
    return _number(value) and value > 0, "a number above 0", float(value) if _number(value) else 0


def _non_negative_float(value: Any) -> Check:
    ok = _number(value) and value >= 0
    return ok, "a number of 0 or more", float(value) if ok else 0


def _float_range(low: float, high: float) -> Callable[[Any], Check]:
    def check(value: Any) -> Check:
        ok = _number(value) and low <= value <= high
        return ok, f"a number from {low:g} to {high:g}", float(value) if ok else 0

    return check


def _frame_size(value: Any) -> Check:
    expected = "[width, height]: even whole numbers from 160x120 to 1920x1080"
    if not (isinstance(value, list) and len(value) == 2):
        return False, expected, value
    width, height = value
    whole = all(isinstance(side, int) and not isinstance(side, bool) for side in value)
    ok = whole and 160 <= width <= 1920 and 120 <= height <= 1080 and not (width % 2 or height % 2)
    return ok, expected, (width, height)


def _int_range(low: int, high: int) -> Callable[[Any], Check]:
    def check(value: Any) -> Check:
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return ok, f"a whole number from {low} to {high}", value

    return check


def _choice(*options: object) -> Callable[[Any], Check]:
    def check(value: Any) -> Check:
        shown = " | ".join(repr(option).replace("'", '"') for option in options)
        ok = type(value) is type(options[0]) and value in options
        return ok, f"one of {shown}", value

    return check


def _device_id(value: Any) -> Check:
    ok = isinstance(value, str) and len(value) <= 64 and value.isprintable()
    return ok, "printable text of at most 64 characters", value


def _client_id(value: Any) -> Check:
    ok = isinstance(value, str) and 0 < len(value) <= 200 and value.isprintable()
    return ok, "printable text of at most 200 characters", value


def _camera_source(value: Any) -> Check:
    expected = '"picamera2" or "images:DIR"'
    if value == "picamera2":
        return True, expected, value
    ok = isinstance(value, str) and value.startswith("images:") and len(value) > len("images:")
    return ok, expected, value


def _base_url(value: Any) -> Check:
    expected = "an https:// URL (http:// only for 127.0.0.1, ::1 or localhost)"
    if not isinstance(value, str):
        return False, expected, value
    parts = urlsplit(value)
    if parts.query or parts.fragment or not parts.hostname:
        return False, expected, value
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname)):
        return True, expected, value.rstrip("/")
    return False, expected, value


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses, where plain HTTP cannot be snooped."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
