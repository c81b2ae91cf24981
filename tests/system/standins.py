"""Empty stand-ins for Raspberry Pi OS's own packages, which Debian does not have.

``deploy/install.sh`` installs ``python3-picamera2`` and ``python3-lgpio`` with apt; on plain
Debian (the system tests' arm64 root and VM) they do not exist. These packages have the same
names and no files, so apt is satisfied and the scanner runs on its sim backend; nothing in
them pretends to be a camera or GPIO. ``repository()`` makes a flat apt repository of them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

STANDINS = ("python3-picamera2", "python3-lgpio")


def build_debs(out: Path, arch: str) -> list[Path]:
    """One empty ``.deb`` per stand-in for ``arch`` (``arm64``, ``amd64``) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    debs = []
    for name in STANDINS:
        tree = out / f"{name}-tree"
        (tree / "DEBIAN").mkdir(parents=True, exist_ok=True)
        (tree / "DEBIAN" / "control").write_text(
            f"Package: {name}\n"
            "Version: 0.0~standin\n"
            f"Architecture: {arch}\n"
            "Maintainer: ticket-scanner system tests <noreply@localhost>\n"
            f"Description: empty stand-in for Raspberry Pi OS's {name}\n"
            " Installed only by ticket-scanner's system tests, on plain Debian.\n",
            encoding="ascii",
        )
        deb = out / f"{name}_0.0~standin_{arch}.deb"
        subprocess.run(  # noqa: S603 - fixed arguments, our own files
            ["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)],  # noqa: S607
            check=True,
            capture_output=True,
        )
        debs.append(deb)
    return debs


def repository(out: Path, arch: str) -> Path:
    """A flat apt repository (``deb [trusted=yes] file:OUT ./``) holding the stand-ins."""
    build_debs(out, arch)
    packages = subprocess.run(
        ["dpkg-scanpackages", "--multiversion", "."],  # noqa: S607 - from dpkg-dev
        cwd=out,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (out / "Packages").write_text(packages, encoding="utf-8")
    return out
