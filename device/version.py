"""The version this installation reports (``ticket-scanner --version``)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("ticket-scanner")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0+unknown"
