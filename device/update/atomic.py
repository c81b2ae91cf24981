"""Writes a power cut cannot leave half done: temporary name, fsync, rename, fsync the folder."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Readers (and the next boot) see the old file or the new one, never a torn one."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    fsync_dir(path.parent)


def switch_symlink(link: Path, target: str, *, before_rename: Callable[[], None]) -> None:
    """Point ``link`` at ``target`` (relative) in one rename(2): no moment without a link."""
    temp = link.with_name(f".{link.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()
    os.symlink(target, temp)
    before_rename()
    os.replace(temp, link)
    fsync_dir(link.parent)


def remove_link(link: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    fsync_dir(link.parent)


def remove_tree(path: Path, *, after_rename: Callable[[], None] = lambda: None) -> None:
    """Rename away first, so a half-deleted tree never keeps a name that means 'complete'."""
    if not path.exists():
        return
    doomed = path.with_name(f".{path.name}.deleting")
    if doomed.exists():
        shutil.rmtree(doomed)
    os.replace(path, doomed)
    fsync_dir(path.parent)
    after_rename()
    shutil.rmtree(doomed)
