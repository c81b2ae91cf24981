"""One update run, in order. Each step is recorded before it starts, so any run can be killed
at any point and the next one finishes it or undoes it:

    recover     delete half unpacks and stray links; finish a switch that was never confirmed
    check       refresh TUF metadata; choose the newest release meant for this device
    download    (space checked) the bundle, written only once its signed hash matched
    unpack      (space checked) into releases/.V.partial, renamed to releases/V when complete
    build       venv from the bundled wheels, offline; self-test; mark ready
    switch      only when no guest is being scanned: `current` -> releases/V in one rename
    confirm     restart the service; healthy: commit. Not: switch back, restart, mark V bad
    prune       keep the running and the previous release, delete the rest
"""

from __future__ import annotations

import contextlib
import errno
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from device.update import build
from device.update.atomic import remove_link, remove_tree, switch_symlink
from device.update.build import python_version
from device.update.choose import Device, choose
from device.update.contract import bundle_name, iso
from device.update.crashpoint import checkpoint
from device.update.guards import busy, clock_floor
from device.update.layout import InstallRoot
from device.update.options import Settings
from device.update.outcome import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TRY_LATER,
    Failed,
    Outcome,
    ReleaseBroken,
    TryLater,
)
from device.update.service import Service
from device.update.source import Release, ReleaseSource
from device.update.space import DOWNLOAD_FACTOR, UNPACK_FACTOR, FreeSpace, free_bytes, require
from device.update.state import Pending, State, load_state, save_state
from device.update.text import one_line
from device.update.tuf_errors import raise_verdict
from device.update.unpack import read_manifest, unpack, unpacked_size

_log = logging.getLogger("ticket_scanner.update")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Installer:
    """``Installer(settings).run()`` -> Outcome. Clock, disk and sleep are injectable for tests."""

    def __init__(
        self,
        settings: Settings,
        *,
        now: Callable[[], datetime] = utc_now,
        free: FreeSpace = free_bytes,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.root = InstallRoot(settings.install_root)
        self.service = Service(
            settings.restart, settings.health, settings.settle_s, sleep, unit=settings.unit
        )
        self.now = now
        self.free = free
        self._closing = contextlib.ExitStack()  # what this run opened (connections)

    def run(self) -> Outcome:
        try:
            self.root.create()
            with self.root.lock(), contextlib.ExitStack() as self._closing:
                state = load_state(self.root.state_file)
                outcome = self._attempt(state)
                state.last = {
                    "at": iso(self.now()),
                    "result": outcome.result,
                    "code": outcome.code,
                    "message": outcome.message,
                }
                save_state(self.root.state_file, state)
                return outcome
        except TryLater as later:  # the lock is held by another run
            return Outcome(EXIT_TRY_LATER, "try-later", str(later))
        except OSError as error:  # unexpected: the traceback goes to the journal too
            _log.exception("update failed")
            where = f"{error.filename}: " if error.filename else ""
            return Outcome(EXIT_FAILED, "failed", f"{where}{error.strerror}")

    def _attempt(self, state: State) -> Outcome:
        try:
            return self._update(state)
        except TryLater as later:
            return Outcome(EXIT_TRY_LATER, "try-later", f"try later: {later}")
        except Failed as failure:
            return Outcome(EXIT_FAILED, "rejected", str(failure))

    # -- the steps ---------------------------------------------------------------------------

    def _update(self, state: State) -> Outcome:
        for stray in self.root.clean_strays():
            _log.info("removed %s, left by an interrupted run", stray)
        live = self.root.live()
        pending = state.pending
        if pending is not None and pending.step == "switching":
            if pending.version in state.bad:  # killed while switching back: finish that
                return self._roll_back(state, pending, state.bad[pending.version])
            if live == pending.version:
                _log.info("%s was switched in but never confirmed: confirming now", live)
                return self._confirm(state, pending, check_busy=True)
            _log.info("the switch to %s never happened; trying it again", pending.version)
            self._step(state, "ready")

        now = self.now()
        floor = clock_floor(self.root.release(live) if live else None)
        if now < floor:
            raise TryLater(f"the clock says {iso(now)}, before {iso(floor)}: it must be wrong")
        source, release = self._check(state, live, floor)
        if release is None:
            if state.pending is not None:  # withdrawn (or halted) since: drop what is left
                _log.info(
                    "%s is no longer offered; deleting what was prepared", state.pending.version
                )
                self._discard(state, state.pending.version)
            self._prune(state)
            return Outcome(EXIT_OK, "up-to-date", f"up to date: running {live or 'nothing'}")
        if now < release.info.created:
            raise TryLater(
                f"the clock says {iso(now)}, before {release.version} was built "
                f"({iso(release.info.created)}): it must be wrong"
            )
        self._prepare(state, source, release, live)
        if busy(self.settings.activity_file, self.now(), self.settings.busy_window_s):
            raise TryLater(f"a guest is being scanned; {release.version} is ready to switch in")
        return self._switch(state, release.version, live)

    def _source(self) -> ReleaseSource:
        return ReleaseSource(
            self.settings.repo_url,
            self.settings.trusted_root,
            self.root.metadata,
            self.root.downloads,
        )

    def _check(
        self, state: State, live: str | None, floor: datetime
    ) -> tuple[ReleaseSource, Release | None]:
        device = Device.this(self.settings.device_id, python_version(self.settings.python))
        try:
            source = self._closing.enter_context(contextlib.closing(self._source()))
            source.refresh()
            releases = source.releases()
        except Exception as error:  # tuf's errors become a verdict
            raise_verdict(error, now=self.now(), floor=floor)
        release, passed_over = choose(releases, running=live, bad=state.bad, device=device)
        for reason in passed_over:
            _log.info("not installing %s", reason)
        return source, release

    def _prepare(
        self, state: State, source: ReleaseSource, release: Release, live: str | None
    ) -> None:
        """releases/V downloaded, unpacked, built and self-tested (or ReleaseBroken/Failed)."""
        version = release.version
        if self.root.is_ready(version):
            _log.info("%s is already built and self-tested", version)
            return
        state.pending = Pending(version, "downloading", live)
        save_state(self.root.state_file, state)
        try:
            if not self.root.release(version).is_dir():
                bundle = self._download(source, release)
                checkpoint("downloaded")
                self._step(state, "unpacking")
                self._unpack(bundle, release)
                bundle.unlink()
                checkpoint("unpacked")
            self._step(state, "building")
            self._build(release)
        except ReleaseBroken as broken:
            self._forget(state, version, f"{broken}")
            raise Failed(f"release {version} refused: {broken}; marked bad") from None
        except (Failed, OSError) as error:
            # Not the release's fault (disk, network): free the space, try it all again later.
            self._discard(state, version)
            if isinstance(error, OSError) and error.errno == errno.ENOSPC:
                raise Failed(f"disk full while preparing {version}; nothing was changed") from None
            raise

    def _download(self, source: ReleaseSource, release: Release) -> Path:
        destination = self.root.downloads / bundle_name(release.version)
        self._clean_downloads(keep=destination)
        have = destination.stat().st_size if destination.exists() else 0
        need = release.size * DOWNLOAD_FACTOR + self.settings.reserve_bytes - have
        require(self.root.downloads, need, f"download {release.version}", self.free)
        _log.info("downloading %s (%.1f MB)", release.version, release.size / 1e6)
        try:
            return source.download(release, destination)
        except OSError:
            raise  # disk trouble: _prepare cleans up
        except Exception as error:  # tuf's errors become a verdict
            destination.unlink(missing_ok=True)
            raise_verdict(error, now=self.now(), floor=datetime.min.replace(tzinfo=UTC))

    def _unpack(self, bundle: Path, release: Release) -> None:
        size = unpacked_size(bundle)
        need = size * UNPACK_FACTOR + self.settings.reserve_bytes
        require(self.root.releases, need, f"unpack and build {release.version}", self.free)
        partial = self.root.partial(release.version)
        try:
            unpack(bundle, partial, self.root.release(release.version),
                   after_first=lambda: checkpoint("unpacking"))  # fmt: skip
        except BaseException:
            if partial.exists():
                remove_tree(partial)
            raise

    def _build(self, release: Release) -> None:
        folder = self.root.release(release.version)
        manifest = read_manifest(folder, release.info)
        _log.info("building %s's venv", release.version)
        build.build_venv(folder, manifest, self.settings.python)
        build.selftest(folder)
        self.root.mark_ready(release.version)
        checkpoint("built")

    def _switch(self, state: State, version: str, live: str | None) -> Outcome:
        state.pending = Pending(version, "switching", live)
        save_state(self.root.state_file, state)
        switch_symlink(
            self.root.current,
            self.root.link_target(version),
            before_rename=lambda: checkpoint("switching"),
        )
        checkpoint("switched")
        _log.info("current -> %s; restarting the scanner", version)
        return self._confirm(state, state.pending, check_busy=False)

    def _confirm(self, state: State, pending: Pending, *, check_busy: bool) -> Outcome:
        if check_busy and busy(
            self.settings.activity_file, self.now(), self.settings.busy_window_s
        ):
            raise TryLater(f"a guest is being scanned; {pending.version} will be confirmed later")
        problem = self.service.restart()
        checkpoint("restarted")
        if problem is None:
            problem = self.service.unhealthy()
        if problem is not None:
            return self._roll_back(state, pending, problem)
        state.committed, state.previous, state.pending = pending.version, pending.previous, None
        save_state(self.root.state_file, state)
        checkpoint("committed")
        self._prune(state)
        if pending.previous is None:
            return Outcome(EXIT_OK, "updated", f"installed {pending.version} (first install)")
        return Outcome(EXIT_OK, "updated", f"updated {pending.previous} -> {pending.version}")

    def _roll_back(self, state: State, pending: Pending, problem: str) -> Outcome:
        # Marked bad first: if this is killed, the next run finishes the rollback rather than
        # confirming the release again.
        state.bad[pending.version] = one_line(problem, 300)
        save_state(self.root.state_file, state)
        checkpoint("marked-bad")
        back = (
            pending.previous if pending.previous and self.root.is_ready(pending.previous) else None
        )
        _log.error("%s is not healthy (%s): switching back to %s", pending.version, problem, back)
        also = ""
        if back is not None:
            switch_symlink(
                self.root.current, self.root.link_target(back), before_rename=lambda: None
            )
            restart_problem = self.service.restart()
            if restart_problem:
                also = f" (restarting {back} failed too: {restart_problem})"
        else:
            remove_link(self.root.current)  # a first install: there is nothing to go back to
        self._forget(state, pending.version, state.bad[pending.version])
        return Outcome(
            EXIT_FAILED,
            "rolled-back",
            f"rolled back {pending.version}: {problem}; running {back or 'nothing'}{also}; "
            f"{pending.version} marked bad",
        )

    def _discard(self, state: State, version: str) -> None:
        """Delete what was prepared of ``version`` (not marking it bad) and its download."""
        self._clean_downloads(keep=None)
        for folder in (self.root.partial(version), self.root.release(version)):
            if folder.exists() and self.root.live() != version:
                remove_tree(folder)
        state.pending = None

    def _forget(self, state: State, version: str, reason: str) -> None:
        """Mark ``version`` bad (never tried again) and delete what was built of it."""
        state.bad[version] = one_line(reason, 300)
        state.pending = None
        save_state(self.root.state_file, state)
        self._clean_downloads(keep=None)
        if self.root.live() != version:
            remove_tree(self.root.release(version))

    def _prune(self, state: State) -> None:
        keep = {state.committed, state.previous, self.root.live()}
        if state.pending is not None:
            keep.add(state.pending.version)
        for version in self.root.installed():
            if version not in keep:
                _log.info("deleting old release %s", version)
                remove_tree(self.root.release(version), after_rename=lambda: checkpoint("pruning"))

    def _clean_downloads(self, keep: Path | None) -> None:
        if not self.root.downloads.is_dir():
            return
        for entry in self.root.downloads.iterdir():
            if entry != keep and entry.is_file():
                entry.unlink()

    def _step(self, state: State, step: str) -> None:
        assert state.pending is not None
        state.pending.step = step
        save_state(self.root.state_file, state)
