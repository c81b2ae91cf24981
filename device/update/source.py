"""The release repository as python-tuf's ngclient sees it: verified metadata, verified bundles.

Nothing from the network is used before TUF has checked it: signatures against the trusted
root, versions against the cached metadata (no rollback), expiry against the clock, and a
bundle's length and sha256 against the signed targets metadata. The fetcher only moves bytes:
https (plain http only to a loopback address, for tests), no redirects, no proxies, and
downloads spool inside the install root, where the free space was checked. Name lookup and
connect together take at most CONNECT_TIMEOUT_S, each silence at most READ_TIMEOUT_S, and a
metadata file (small) at most METADATA_TIMEOUT_S in all (``device.net``); a bundle may take
as long as it keeps arriving.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import urllib3
from tuf.api import exceptions
from tuf.api.metadata import TargetFile
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface

from device import net
from device.config import is_loopback
from device.update.contract import APP_NAME, BUNDLE_SUFFIX, ReleaseInfo, bundle_name
from device.version import VERSION

_log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 10.0  # name lookup and connect (each of the retries)
READ_TIMEOUT_S = 30.0  # the longest silence mid-download
METADATA_TIMEOUT_S = 60.0  # one metadata file, all of it: retries, lookup, connect, every read


@dataclass(frozen=True)
class Release:
    info: ReleaseInfo
    target: TargetFile

    @property
    def version(self) -> str:
        return self.info.version

    @property
    def size(self) -> int:
        return self.target.length


def check_repo_url(url: str) -> str:
    """https only; http only to 127.0.0.1, ::1 or localhost. Returns the URL without '/'."""
    parts = urlsplit(url)
    secure = parts.scheme == "https" or (
        parts.scheme == "http" and is_loopback(parts.hostname or "")
    )
    if not secure or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(
            f"repository URL must be https:// (http:// only for a loopback address), got {url!r}"
        )
    return url.rstrip("/")


class ReleaseSource:
    """``refresh()``, then ``releases()`` and ``download()``. Raises tuf's exceptions."""

    def __init__(self, url: str, trusted_root: bytes, metadata_dir: Path, spool: Path) -> None:
        base = check_repo_url(url)
        self._metadata_dir = metadata_dir
        self._fetcher = _Fetcher(spool)
        self._updater = Updater(
            metadata_dir=str(metadata_dir),
            metadata_base_url=f"{base}/metadata/",
            target_base_url=f"{base}/targets/",
            fetcher=self._fetcher,
            bootstrap=trusted_root,
        )

    def close(self) -> None:
        """Close the kept-alive connections."""
        self._fetcher.close()

    def refresh(self) -> None:
        self._updater.refresh()

    def releases(self) -> list[Release]:
        """Every well-formed release the signed targets metadata lists."""
        found = []
        for path in self._listed_paths():
            target = self._updater.get_targetinfo(path)  # the trusted copy, not the file
            if target is None:
                continue
            try:
                info = ReleaseInfo.from_custom(target.custom)
                if bundle_name(info.version) != path:
                    raise ValueError(f"its metadata says version {info.version}")
            except ValueError as error:
                _log.warning("ignoring target %s: %s", path, error)
                continue
            found.append(Release(info, target))
        return found

    def _listed_paths(self) -> list[str]:
        # ngclient has no "list targets" call. After refresh() the cached targets.json is the
        # verified copy; it only says which names to ask get_targetinfo() about.
        raw = json.loads((self._metadata_dir / "targets.json").read_bytes())
        names = raw["signed"]["targets"]
        return sorted(
            name
            for name in names
            if isinstance(name, str)
            and name.startswith(f"{APP_NAME}-")
            and name.endswith(BUNDLE_SUFFIX)
        )

    def download(self, release: Release, destination: Path) -> Path:
        """The bundle at ``destination``, written only after its length and hash matched."""
        cached = self._updater.find_cached_target(release.target, str(destination))
        if cached is not None:
            return Path(cached)
        return Path(self._updater.download_target(release.target, str(destination)))


class _Fetcher(FetcherInterface):
    def __init__(
        self,
        spool: Path,
        *,
        resolver: net.Resolver | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        read_timeout_s: float = READ_TIMEOUT_S,
        metadata_timeout_s: float = METADATA_TIMEOUT_S,
    ) -> None:
        self._spool = spool
        self._metadata_timeout_s = metadata_timeout_s
        self._pool = net.PoolManager(
            headers={"User-Agent": f"{APP_NAME}/{VERSION} (update)"},
            retries=urllib3.Retry(total=2, redirect=False, backoff_factor=0.25),
            timeout=urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s),
            resolver=resolver,
        )

    def close(self) -> None:
        self._pool.clear()

    def _fetch(self, url: str) -> Iterator[bytes]:
        check_repo_url(url)
        # A redirect is not followed: a captive portal's answer is refused here, or by TUF.
        response = self._pool.request("GET", url, preload_content=False, redirect=False)
        if response.status != 200:
            response.close()
            raise exceptions.DownloadHTTPError(f"HTTP {response.status} for {url}", response.status)
        return self._chunks(response)

    @staticmethod
    def _chunks(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
        try:
            yield from response.stream(64 * 1024)
        except urllib3.exceptions.HTTPError as error:
            raise exceptions.DownloadError(f"download interrupted: {error}") from error
        finally:
            response.close()  # also when abandoned half read (too long): never back in the pool

    def download_bytes(self, url: str, max_length: int) -> bytes:
        """As FetcherInterface.download_bytes (ngclient fetches metadata with it), all of it
        within ``metadata_timeout_s``: a server that drips metadata cannot hold the update."""
        with net.deadline(self._metadata_timeout_s) as deadline:
            try:
                data = super().download_bytes(url, max_length)
                deadline.close()
            except exceptions.DownloadError as error:
                if deadline.cut:
                    raise self._too_slow(url) from error
                raise
            if deadline.cut:  # it may have ended early, at the connection's shutdown
                raise self._too_slow(url)
        return data

    def _too_slow(self, url: str) -> exceptions.DownloadError:
        return exceptions.DownloadError(f"{url}: not received within {self._metadata_timeout_s:g}s")

    @contextlib.contextmanager
    def download_file(self, url: str, max_length: int) -> Iterator[IO[bytes]]:
        """As FetcherInterface.download_file, but spooled in the install root (not /tmp, which
        may be small, or RAM) and unlinked at once, so a killed run leaves nothing behind."""
        received = 0
        with tempfile.TemporaryFile(dir=self._spool) as spooled:
            chunks = self.fetch(url)
            try:
                for chunk in chunks:
                    received += len(chunk)
                    if received > max_length:
                        raise exceptions.DownloadLengthMismatchError(
                            f"{url}: more than the {max_length} bytes its metadata allows"
                        )
                    spooled.write(chunk)
            finally:
                if isinstance(chunks, Generator):
                    chunks.close()  # closes the response now, not whenever it is collected
            spooled.seek(0)
            yield spooled
