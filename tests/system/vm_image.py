"""The Debian bookworm x86_64 image the VM tests boot: built once, cached, never loop-mounted.

``base_image()`` returns the cached image, building it when it is missing:

1. ``mmdebstrap`` makes a root tree with systemd, openssh-server, python3 and Debian's kernel
   (its initramfs is made inside the tree by initramfs-tools), plus the empty stand-ins for
   Raspberry Pi OS's ``python3-picamera2`` and ``python3-lgpio`` (``standins.py``), so
   ``install.sh``'s apt step finds everything installed and never needs the network;
2. the kernel and initrd are copied out of ``/boot`` for qemu's ``-kernel``/``-initrd``;
3. ``mke2fs -d TREE`` writes the tree into a raw ext4 file (no loop device, no mount).

The folder is named by ``recipe_key`` of everything above, so changing the recipe builds a
new image; it is made under a temporary name and renamed, so a stopped build leaves nothing
that looks finished.
"""

# ruff: noqa: S603, S607 - fixed commands (qemu, ssh, mmdebstrap) with our own arguments

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tests.system import standins
from tests.system.cache import cache_dir, recipe_key

SUITE = "bookworm"
MIRRORS = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "udev",
    "dbus",
    "openssh-server",
    "python3",
    "python3-venv",
    "libzbar0",
    "i2c-tools",
    "ca-certificates",
    "sqlite3",
    "procps",
    "linux-image-amd64",
    "initramfs-tools",
)
DISK_SIZE = "4G"
HOSTNAME = "scanner-vm"

# Run on the host with the tree as $1 (mmdebstrap --customize-hook).
CUSTOMIZE = r"""
set -eu
root=$1
echo scanner-vm > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 scanner-vm\n' > "$root/etc/hosts"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' > "$root/etc/fstab"
mkdir -p "$root/etc/systemd/network"
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n' \
    > "$root/etc/systemd/network/20-wired.network"
chroot "$root" systemctl enable systemd-networkd.service
# Nothing that wakes up on its own and competes for the two CPUs, or wants the network.
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
    man-db.timer systemd-networkd-wait-online.service; do
    chroot "$root" systemctl mask "$unit" >/dev/null 2>&1 || true
done
mkdir -p "$root/root/.ssh" "$root/var/log/journal"
chmod 700 "$root/root/.ssh"
cp "$SSH_PUBKEY" "$root/root/.ssh/authorized_keys"
chmod 600 "$root/root/.ssh/authorized_keys"
printf 'UseDNS no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n' \
    > "$root/etc/ssh/sshd_config.d/10-system-test.conf"
# A root shell on the serial console, for debugging a VM that does not answer ssh.
mkdir -p "$root/etc/systemd/system/serial-getty@ttyS0.service.d"
printf '[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --noclear %%I 115200 %s\n' \
    linux \
    > "$root/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf"
rm -f "$root/etc/machine-id" && touch "$root/etc/machine-id"
"""


@dataclass(frozen=True)
class BaseImage:
    folder: Path

    @property
    def disk(self) -> Path:
        return self.folder / "disk.raw"

    @property
    def kernel(self) -> Path:
        return self.folder / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.folder / "initrd.img"

    @property
    def ssh_key(self) -> Path:
        return self.folder / "id_ed25519"


def image_key() -> str:
    return recipe_key(
        "vm-image-1",
        SUITE,
        *MIRRORS,
        " ".join(PACKAGES),
        DISK_SIZE,
        CUSTOMIZE,
        Path(standins.__file__).read_bytes(),
    )


def base_image() -> BaseImage:
    """The cached image, built first if it is missing (about 4 minutes with a warm network)."""
    folder = cache_dir() / f"vm-bookworm-amd64-{image_key()}"
    image = BaseImage(folder)
    if (folder / ".complete").exists():
        return image
    started = time.monotonic()
    work = folder.with_name(folder.name + ".building")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    try:
        _build(work)
        (work / ".complete").write_text("built\n", encoding="ascii")
        if folder.exists():
            shutil.rmtree(folder)
        work.rename(folder)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    print(f"[vm] image built in {time.monotonic() - started:.0f} s: {folder}", flush=True)
    return image


def _build(work: Path) -> None:
    tree = work / "tree"
    debs = standins.build_debs(work / "standins", "amd64")
    key = work / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "system-test", "-f", str(key)],
        check=True,
    )
    hook = work / "customize.sh"
    hook.write_text(CUSTOMIZE, encoding="utf-8")
    env = dict(os.environ, SSH_PUBKEY=str(key.with_suffix(".pub")))
    with (work.parent / (work.name + ".log")).open("w") as log:
        _mmdebstrap(tree, debs, hook, env, log)
    _finish(work, tree)


def _mmdebstrap(
    tree: Path, debs: list[Path], hook: Path, env: dict[str, str], log: IO[str]
) -> None:
    subprocess.run(
        [
            "mmdebstrap",
            "--mode=root",
            "--variant=apt",
            "--format=directory",
            "--include=" + ",".join(PACKAGES),
            "--aptopt=APT::Install-Recommends false",
            "--aptopt=Acquire::Retries 3",
            "--dpkgopt=path-exclude=/usr/share/man/*",
            "--dpkgopt=path-exclude=/usr/share/doc/*",
            "--dpkgopt=path-exclude=/usr/share/locale/*",
            "--dpkgopt=path-include=/usr/share/doc/*/copyright",
            '--customize-hook=mkdir -p "$1/tmp/standins"',
            "--customize-hook=copy-in " + " ".join(str(deb) for deb in debs) + " /tmp/standins",
            '--customize-hook=chroot "$1" sh -c "dpkg -i /tmp/standins/*.deb"',
            '--customize-hook=rm -rf "$1/tmp/standins"',
            f'--customize-hook=sh "{hook}" "$1"',
            SUITE,
            str(tree),
            *MIRRORS,
        ],
        check=True,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _finish(work: Path, tree: Path) -> None:
    boot = tree / "boot"
    kernels = sorted(boot.glob("vmlinuz-*"))
    initrds = sorted(boot.glob("initrd.img-*"))
    if not kernels or not initrds:
        raise RuntimeError(f"no kernel or initrd in {boot}: {sorted(os.listdir(boot))}")
    shutil.copy2(kernels[-1], work / "vmlinuz")
    shutil.copy2(initrds[-1], work / "initrd.img")
    subprocess.run(
        ["mke2fs", "-q", "-t", "ext4", "-L", "root", "-d", str(tree), "-F",
         str(work / "disk.raw"), DISK_SIZE],
        check=True,
    )  # fmt: skip
    shutil.rmtree(tree)
