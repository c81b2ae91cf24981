"""What the VM tests put around the VM: signed releases, an HTTPS update server, camera frames.

- ``Releases``: a TUF repository and keys made with ``deploy/ota`` (the real publisher), and
  ``publish()`` of the real app for x86_64, from this checkout or a patched copy of it. The
  dependency wheels are downloaded from PyPI once into a wheelhouse in ``cache_dir()``;
  later publishes use ``--wheelhouse`` and need no network.
- ``make_tls()`` and ``HttpsServer``: a throwaway CA and a certificate for the update host's
  name, and a threaded HTTPS file server on 127.0.0.1 (the VM reaches it through a guestfwd).
- ``write_frames()``: an ``images:`` camera folder of AnyRoad-shaped ticket codes drawn the way
  ``device/demo.py`` draws them, with a long blank tail so the scanner keeps running.
"""

# ruff: noqa: S603 - fixed commands (deploy/ota, tar) with our own arguments

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.server
import json
import os
import re
import shutil
import ssl
import subprocess
import tarfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from PIL import Image

from device.demo import camera_picture
from tests.system.cache import cache_dir, recipe_key
from tests.system.vm import log, phase

CHECKOUT = Path(__file__).resolve().parents[2]
OTA = CHECKOUT / "deploy" / "ota"
PLATFORM = "manylinux_2_28_x86_64"
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "__pycache__", "*.pyc", "*.egg-info",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis", "tests", "bench", "docs",
)  # fmt: skip


# -- releases -------------------------------------------------------------------------------


def _dependencies_key() -> str:
    """The wheelhouse holds what pyproject's dependencies resolve to: key it by them."""
    text = (CHECKOUT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r"^dependencies = \[(.*?)^\]", text, re.DOTALL | re.MULTILINE)
    return recipe_key("wheelhouse-1", PLATFORM, match.group(1) if match else text)


def wheelhouse() -> Path:
    return cache_dir() / f"wheels-{PLATFORM}-{_dependencies_key()}"


class Releases:
    """One key set; repositories under ``folder`` signed with it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.keys = folder / "keys"
        self.repo = folder / "repo"
        subprocess.run([str(OTA), "init-repo", str(self.repo), "--keys", str(self.keys)],
                       check=True, capture_output=True)  # fmt: skip
        self.root_json = self.repo / "metadata" / "1.root.json"

    def publish(
        self, version: str, *, source: Path | None = None, repo: Path | None = None
    ) -> Path:
        """Publish ``version`` (of ``source``, default this checkout); the bundle's path."""
        repo = repo or self.repo
        house = wheelhouse()
        command = [str(OTA), "publish", str(repo), "--keys", str(self.keys),
                   "--version", version, "--platform", PLATFORM]  # fmt: skip
        if source is not None:
            command += ["--source", str(source)]
        if (house / ".complete").exists():
            command += ["--wheelhouse", str(house)]
        with phase(f"publish {version}{' (patched)' if source else ''}"):
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise AssertionError(f"deploy/ota publish {version} failed:\n{done.stderr}")
        bundles = sorted((repo / "targets").glob(f"*.ticket-scanner-{version}.tar.gz"))
        assert len(bundles) == 1, bundles
        if not (house / ".complete").exists():
            _fill_wheelhouse(bundles[0], house)
        return bundles[0]

    def copy_repo(self, name: str) -> Path:
        """A second repository with what this one has now, signed by the same keys."""
        copy = self.folder / name
        shutil.copytree(self.repo, copy)
        return copy


def _fill_wheelhouse(bundle: Path, house: Path) -> None:
    """Every wheel of a bundle except the app's: the next publishes need no network."""
    temp = house.with_name(house.name + ".partial")
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    with tarfile.open(bundle) as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if member.isfile() and name.endswith(".whl") and not name.startswith("ticket_scanner"):
                extracted = tar.extractfile(member)
                assert extracted is not None
                (temp / name).write_bytes(extracted.read())
    (temp / ".complete").write_text("from " + bundle.name + "\n", encoding="utf-8")
    shutil.rmtree(house, ignore_errors=True)
    temp.rename(house)
    log(f"wheelhouse cached: {house}")


def source_copy(dest: Path, patch: Callable[[Path], None]) -> Path:
    """A copy of the project (what a release is built from), changed by ``patch(copy)``."""
    shutil.copytree(CHECKOUT, dest, ignore=_NOT_SOURCE, symlinks=True)
    patch(dest)
    return dest


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{path}: expected one {old!r}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def break_selftest(copy: Path) -> None:
    """The release's `ticket-scanner selftest` fails (its checks are not even run)."""
    with (copy / "device" / "selftest.py").open("a", encoding="utf-8") as module:
        module.write(
            "\n\ndef run_selftest(out: TextIO, config: Path | None = None) -> int:  # broken\n"
            '    print("FAIL injected: this release\'s self-test fails on purpose", file=out)\n'
            "    return 1\n"
        )


def break_run(copy: Path) -> None:
    """The release's `ticket-scanner run` exits 1 at once (its self-test still passes)."""
    replace_once(
        copy / "device" / "cli.py",
        "def _run(args: argparse.Namespace) -> int:\n",
        "def _run(args: argparse.Namespace) -> int:\n"
        '    print("ticket-scanner: cannot start: broken on purpose", file=sys.stderr)\n'
        "    return 1\n",
    )


# -- TLS and the update server --------------------------------------------------------------


@dataclass(frozen=True)
class Tls:
    ca_pem: Path
    cert_pem: Path
    key_pem: Path


def make_tls(folder: Path, hostname: str) -> Tls:
    """A throwaway CA and a server certificate for ``hostname`` that it signed."""
    from cryptography import x509  # noqa: PLC0415 - the publisher's venv has it
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ticket-scanner system-test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls = Tls(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    tls.ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tls


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, format: str, *args: object) -> None:
        type(self).requests.append(format % args)


class HttpsServer:
    """Serves ``root`` over HTTPS on 127.0.0.1 (a random port) until ``close()``."""

    def __init__(self, root: Path, tls: Tls) -> None:
        self.root = root
        handler = type("Handler", (_QuietHandler,), {"requests": []})
        self.requests: list[str] = handler.requests
        self._server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), partial(handler, directory=str(root))
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.cert_pem, tls.key_pem)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def serve(self, name: str, repo: Path) -> None:
        """``https://HOST/<name>/`` is ``repo`` from now on."""
        link = self.root / name
        temp = self.root / f".{name}.tmp"
        temp.unlink(missing_ok=True)
        temp.symlink_to(repo)
        os.replace(temp, link)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# -- camera frames --------------------------------------------------------------------------


def ticket_code(number: int) -> str:
    """An AnyRoad-shaped QR payload (as device/sandbox.py makes them), unique per number."""
    ids = {
        "booking_id": 7000 + number // 4,
        "ticket_id": 80000 + number,
        "guest_id": 90000 + number,
    }
    raw = json.dumps(ids, separators=(",", ":"))
    return "data:application/json;base64," + base64.b64encode(raw.encode()).decode("ascii")


def write_frames(
    pictures: Path,
    codes: list[str],
    *,
    lead_frames: int,
    show_frames: int,
    gap_frames: int,
    tail_frames: int,
) -> list[str]:
    """The distinct pictures in ``pictures``, and which one each frame shows (the plan).

    Blank, then each code for ``show_frames`` with gaps, then a blank tail. ``FRAME_LINKER``
    makes the frames in the guest as hard links, so a tail of hours costs inodes, not copies.
    """
    pictures.mkdir(parents=True, exist_ok=True)
    # Small: an empty view costs the decoder next to nothing, even under TCG.
    Image.new("L", (160, 120), 96).save(pictures / "blank.png")
    plan = ["blank.png"] * lead_frames
    for number, code in enumerate(codes):
        name = f"code{number:04d}.png"
        camera_picture(code).save(pictures / name)
        plan += [name] * show_frames + ["blank.png"] * gap_frames
    plan += ["blank.png"] * tail_frames
    (pictures / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    return plan


# Run in the guest: python3 -c FRAME_LINKER PICTURES FRAMES
FRAME_LINKER = """
import json, os, shutil, sys
pictures, frames = sys.argv[1], sys.argv[2]
shutil.rmtree(frames, ignore_errors=True)
os.makedirs(frames + "/.pictures")
for name in os.listdir(pictures):
    if name.endswith(".png"):
        shutil.copy(os.path.join(pictures, name), frames + "/.pictures/" + name)
with open(os.path.join(pictures, "plan.json")) as f:
    plan = json.load(f)
for index, name in enumerate(plan):
    os.link(frames + "/.pictures/" + name, f"{frames}/frame{index:06d}.png")
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
