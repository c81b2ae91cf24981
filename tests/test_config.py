"""Config: defaults, and errors that name the file, the key and what was expected."""

from pathlib import Path

import pytest

from device.config import (
    CameraConfig,
    ConfigError,
    DeviceConfig,
    HardwareConfig,
    OfflineConfig,
    ScanConfig,
    load_config,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_only_the_base_url_is_required_and_its_path_is_kept(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[api]\nbase_url = "https://api.example.com/v1/x/"\n'))
    assert config.api.base_url == "https://api.example.com/v1/x"
    assert config.api.mode == "scan"
    assert config.api.timeout_s == 3.0
    assert config.camera.source == "picamera2"
    assert config.scan.repeat_window_s == 3.0
    assert config.scan.reentry == "warn"
    assert config.device.profile == "handheld"
    assert config.hardware.backend == "pi"


def test_every_documented_key_is_read(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
[api]
base_url = "http://127.0.0.1:8080/sandbox/v1"
token_file = "/run/token"
timeout_s = 1.5
mode = "verify"
[camera]
source = "images:frames"
fps = 15
size = [1280, 720]
zoom = 1
[scan]
repeat_window_s = 2
reentry = "deny"
decoder = "zbar"
decode_budget_s = 0.25
[device]
id = "gate-7"
profile = "door"
[hardware]
backend = "sim"
events = "events.jsonl"
""",
        )
    )
    assert config.api.token_file == Path("/run/token")
    assert (config.api.timeout_s, config.api.mode) == (1.5, "verify")
    assert (config.camera.source, config.camera.fps) == ("images:frames", 15.0)
    assert (config.camera.size, config.camera.zoom) == ((1280, 720), 1.0)
    assert (config.scan.repeat_window_s, config.scan.reentry) == (2.0, "deny")
    assert (config.scan.decoder, config.scan.decode_budget_s) == ("zbar", 0.25)
    assert (config.device.id, config.device.profile) == ("gate-7", "door")
    assert (config.hardware.backend, config.hardware.events) == ("sim", "events.jsonl")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[api]\n", "[api] base_url: required, but missing"),
        (
            '[api]\nbase_url = "http://api.example.com"\n',
            "[api] base_url: expected an https:// URL",
        ),
        ('[api]\nbase_url = "ftp://x"\n', "[api] base_url: expected an https:// URL"),
        (
            '[api]\nbase_url = "https://x"\ntimeout_s = 0\n',
            "[api] timeout_s: expected a number above 0, got 0",
        ),
        (
            '[api]\nbase_url = "https://x"\nmode = "scanning"\n',
            '[api] mode: expected one of "scan" | "verify"',
        ),
        (
            '[api]\nbase_url = "https://x"\n[scan]\nreentry = true\n',
            "[scan] reentry: expected one of",
        ),
        (
            '[api]\nbase_url = "https://x"\n[camera]\nsource = "usb"\n',
            '[camera] source: expected "picamera2" or "images:DIR"',
        ),
        (
            '[api]\nbase_url = "https://x"\n[camera]\nfps = "30"\n',
            "[camera] fps: expected a number above 0, got '30'",
        ),
        (
            '[api]\nbase_url = "https://x"\n[camera]\nsize = [641, 480]\n',
            "[camera] size: expected [width, height]: even whole numbers",
        ),
        (
            '[api]\nbase_url = "https://x"\n[camera]\nzoom = 0.5\n',
            "[camera] zoom: expected a number from 1 to 8, got 0.5",
        ),
        (
            '[api]\nbase_url = "https://x"\n[scan]\ndecoder = "opencv"\n',
            '[scan] decoder: expected one of "auto" | "zxing" | "zbar"',
        ),
        (
            '[api]\nbase_url = "https://x"\n[hardware]\nled_red = 40\n',
            "[hardware] led_red: expected a whole number from 0 to 27",
        ),
        ('[api]\nbase_url = "https://x"\ntoken = "abc"\n', "[api] token: unknown key"),
        ('[api]\nbase_url = "https://x"\n[scaner]\n', "[scaner]: unknown section"),
        ('[api\nbase_url = "https://x"\n', "not valid TOML"),
    ],
)
def test_bad_values_name_the_file_and_key(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "http://localhost/x", "http://[::1]:8080"])
def test_plain_http_is_allowed_only_on_loopback(tmp_path: Path, url: str) -> None:
    assert load_config(write(tmp_path, f'[api]\nbase_url = "{url}"\n')).api.base_url == url


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: no such config file"):
        load_config(tmp_path / "nope.toml")


def test_a_secret_in_a_bad_value_is_not_echoed_whole(tmp_path: Path) -> None:
    secret = "s3cr3t" * 30
    path = write(tmp_path, f'[api]\nbase_url = "{secret}"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert secret not in str(caught.value)


def test_the_shipped_example_config_is_valid_and_says_the_defaults() -> None:
    example = load_config(Path(__file__).parents[1] / "deploy" / "config.example.toml")
    assert example.api.base_url == "https://api.example.com/anyroad"
    assert (example.camera, example.scan) == (CameraConfig(), ScanConfig())
    assert (example.device, example.hardware) == (DeviceConfig(), HardwareConfig())


def test_oauth_and_offline_keys_are_read(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
[api]
base_url = "https://api.example.com/anyroad"
token_url = "https://auth.example.com/oauth/token"
client_id = "fleet-1"
client_secret_file = "/etc/ticket-scanner/client_secret"
[offline]
policy = "reject"
journal = "/srv/scanner/journal.db"
""",
        )
    )
    assert config.api.oauth
    assert (config.api.token_url, config.api.client_id) == (
        "https://auth.example.com/oauth/token",
        "fleet-1",
    )
    assert config.api.client_secret_file == Path("/etc/ticket-scanner/client_secret")
    assert config.offline.policy_for("handheld") == "reject"
    assert config.offline.journal == Path("/srv/scanner/journal.db")


def test_half_an_oauth_setup_is_refused_not_ignored(tmp_path: Path) -> None:
    body = '[api]\nbase_url = "https://x"\ntoken_url = "https://auth/token"\nclient_id = "a"\n'
    path = write(tmp_path, body)
    with pytest.raises(ConfigError, match=r"\[api\] client_secret_file: required with the other"):
        load_config(path)


def test_a_token_url_must_be_https(tmp_path: Path) -> None:
    body = '[api]\nbase_url = "https://x"\ntoken_url = "http://auth.example.com/token"\n'
    with pytest.raises(ConfigError, match=r"\[api\] token_url: expected an https:// URL"):
        load_config(write(tmp_path, body))


@pytest.mark.parametrize(("profile", "policy"), [("handheld", "accept"), ("door", "reject")])
def test_the_offline_policy_follows_the_profile_unless_set(profile: str, policy: str) -> None:
    assert OfflineConfig().policy_for(profile) == policy  # type: ignore[arg-type]
    assert OfflineConfig(policy="accept").policy_for(profile) == "accept"  # type: ignore[arg-type]
