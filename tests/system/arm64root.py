"""A Debian bookworm arm64 root (the Pi's architecture), run on this machine through qemu-user.

``ensure_binfmt()`` makes the kernel hand aarch64 ELF binaries to ``qemu-aarch64-static``
(binfmt_misc, flag ``F`` so the interpreter works inside a chroot). ``root_tarball()`` builds
the root with mmdebstrap from Debian's archive, once, into the system-test cache, keyed by the
recipe (packages, options, stand-ins); ``Chroot`` unpacks it and runs commands in it with
/proc, /sys and /dev mounted, unmounting everything when it is closed.

Run as a script (``python -m tests.system.arm64root``) it only builds the cached root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from tests.system import cache, standins

SUITE = "bookworm"
ARCH = "arm64"
MIRROR = "http://deb.debian.org/debian"
# What deploy/install.sh installs with apt (its stand-ins come from tests/system/standins.py),
# what the scanner needs at run time, and what a Raspberry Pi OS image brings along.
PACKAGES = (
    "python3",
    "python3-venv",
    "libzbar0",
    "i2c-tools",
    "ca-certificates",
    "passwd",
    "procps",
    # install.sh enables its units with systemctl; in a chroot systemd is installed but not
    # running (not PID 1), as in an image being prepared.
    "systemd",
)
MMDEBSTRAP_OPTIONS = (
    "--variant=apt",
    f"--architectures={ARCH}",
    "--format=tar",
    "--mode=root",
    "--aptopt=Acquire::Retries 3",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
)
# Bookworm with its updates and security suites, as a Pi runs it.
MIRRORS = (
    f"deb {MIRROR} {SUITE} main",
    f"deb {MIRROR} {SUITE}-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
BUILD_TIMEOUT_S = 40 * 60

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
QEMU = Path("/usr/bin/qemu-aarch64-static")
# The register line Debian's qemu-user-static uses for aarch64 (flags F: the interpreter is
# opened now, so it works in a chroot without a copy of qemu inside; P: argv[0] is kept).
AARCH64_MAGIC = r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00"
AARCH64_MASK = r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"


def print_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# Where progress lines go; the tests point it at pytest's terminal, past output capture.
sink: Callable[[str], None] = print_line


def log(message: str) -> None:
    """A progress line: ``system-test arm64: MESSAGE``."""
    sink(f"system-test arm64: {message}")


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Print how long the block took: ``system-test arm64: <name> took N s``."""
    start = time.monotonic()
    log(f"{name} ...")
    try:
        yield
    finally:
        log(f"{name} took {time.monotonic() - start:.0f} s")


def ensure_binfmt() -> None:
    """binfmt_misc mounted and qemu-aarch64 registered and enabled, or a clear error."""
    if not (BINFMT_DIR / "register").exists():
        subprocess.run(  # noqa: S603
            ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_DIR)],  # noqa: S607
            check=True,
        )
    entry = BINFMT_DIR / "qemu-aarch64"
    if not entry.exists() and shutil.which("update-binfmts"):
        subprocess.run(
            ["update-binfmts", "--enable", "qemu-aarch64"],  # noqa: S607
            check=False,
            capture_output=True,
        )
    if not entry.exists():
        if not QEMU.exists():
            raise RuntimeError(f"{QEMU} is missing: apt-get install qemu-user-static")
        line = f":qemu-aarch64:M::{AARCH64_MAGIC}:{AARCH64_MASK}:{QEMU}:FP"
        (BINFMT_DIR / "register").write_text(line, encoding="ascii")
    if entry.read_text(encoding="ascii").splitlines()[0] != "enabled":
        entry.write_text("1", encoding="ascii")


def recipe() -> str:
    """The cache key: everything that decides what the root holds."""
    return cache.recipe_key(
        SUITE,
        ARCH,
        *PACKAGES,
        *MMDEBSTRAP_OPTIONS,
        *MIRRORS,
        *standins.STANDINS,
        "standins-as-include-1",
    )


def root_tarball() -> Path:
    """The cached arm64 root (a tarball), built with mmdebstrap when missing."""
    tarball = cache.cache_dir() / f"arm64-{SUITE}-{recipe()}.tar"
    if tarball.exists():
        log(f"root: cached {tarball}")
        return tarball
    ensure_binfmt()
    with tempfile.TemporaryDirectory(prefix="arm64root-") as tmp, phase("build arm64 root"):
        debs = standins.build_debs(Path(tmp) / "standins", ARCH)
        partial = tarball.with_suffix(".partial")
        command = [
            "mmdebstrap",
            *MMDEBSTRAP_OPTIONS,
            f"--include={','.join(PACKAGES)}",
            # The stand-ins for Raspberry Pi OS's python3-picamera2 and python3-lgpio.
            *(f"--include={deb}" for deb in debs),
            # ... which apt, chrooted, reads through bind mounts of their paths.
            "--hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount",
            SUITE,
            str(partial),
            *MIRRORS,
        ]
        subprocess.run(command, check=True, timeout=BUILD_TIMEOUT_S)  # noqa: S603
        partial.rename(tarball)
    return tarball


class Chroot:
    """The arm64 root unpacked in a folder, with /proc, /sys and /dev mounted while open."""

    def __init__(self, tarball: Path, folder: Path) -> None:
        self.path = folder
        self._mounts: list[Path] = []
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(  # noqa: S603
            ["tar", "-xpf", str(tarball), "-C", str(folder), "--numeric-owner"],  # noqa: S607
            check=True,
        )
        # The host's resolver, so pip in the root reaches PyPI as the host does.
        resolv = folder / "etc" / "resolv.conf"
        resolv.unlink(missing_ok=True)
        shutil.copyfile("/etc/resolv.conf", resolv)

    def trust_local_cas(self) -> None:
        """Trust the CA certificates this machine's admin added (a TLS-inspecting proxy's), too.

        Debian keeps them in /usr/local/share/ca-certificates; they are appended to the root's
        bundle, /etc/ssl/certs/ca-certificates.crt (what update-ca-certificates would do, in
        a moment instead of two minutes of emulated openssl), so the root's pip reaches PyPI
        as the host's does.
        """
        local = Path("/usr/local/share/ca-certificates")
        certificates = sorted(local.glob("**/*.crt")) if local.is_dir() else []
        bundle = self.host_path("/etc/ssl/certs/ca-certificates.crt")
        with bundle.open("a", encoding="ascii") as out:
            for certificate in certificates:
                out.write("\n" + certificate.read_text(encoding="ascii").strip() + "\n")

    def __enter__(self) -> Chroot:
        try:
            self._mount("proc", "proc", ["-t", "proc"])
            self._mount("sys", "/sys", ["--rbind"])
            self._mount("dev", "/dev", ["--rbind"])
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _mount(self, where: str, what: str, how: list[str]) -> None:
        target = self.path / where
        target.mkdir(exist_ok=True)
        subprocess.run(["mount", *how, what, str(target)], check=True)  # noqa: S603,S607
        self._mounts.append(target)
        if "--rbind" in how:
            # Unmounts inside it must not reach the host's /sys or /dev.
            subprocess.run(["mount", "--make-rslave", str(target)], check=True)  # noqa: S603,S607

    def bind(self, host: Path, inside: str) -> None:
        """Bind-mount the host folder HOST at INSIDE (e.g. a pip cache kept between runs)."""
        host.mkdir(parents=True, exist_ok=True)
        target = self.host_path(inside)
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "--bind", str(host), str(target)], check=True)  # noqa: S603,S607
        self._mounts.append(target)

    def close(self) -> None:
        """Unmount what was mounted, innermost first (lazily: a process may still hold one)."""
        while self._mounts:
            target = self._mounts.pop()
            subprocess.run(["umount", "-R", "-l", str(target)], check=False)  # noqa: S603,S607

    def run(
        self,
        command: Sequence[str],
        *,
        timeout: float,
        env: dict[str, str] | None = None,
        cwd: str = "/",
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run COMMAND in the root (as root, a clean environment), capturing its output."""
        environment = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "TERM": "dumb",
        }
        environment.update(env or {})
        return subprocess.run(  # noqa: S603
            ["chroot", str(self.path), "/usr/bin/env", "-C", cwd, *command],  # noqa: S607
            env=environment,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def host_path(self, inside: str) -> Path:
        """Where a path inside the root is on this machine."""
        return self.path / inside.lstrip("/")


def mounted_under(folder: Path) -> list[str]:
    """Mount points at or below FOLDER (what a test checks is gone after cleanup)."""
    prefix = str(folder.resolve())
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        points = [line.split()[4] for line in info]
    return [p for p in points if p == prefix or p.startswith(prefix + os.sep)]


if __name__ == "__main__":
    root_tarball()
