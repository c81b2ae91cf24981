"""Shared fixtures: a sandbox AnyRoad server on 127.0.0.1 and its demo tickets."""

from collections.abc import Iterator

import pytest

from device.sandbox import SandboxServer, demo_tickets


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture(scope="session")
def codes() -> dict[str, str]:
    """Demo ticket QR codes by case: "admitted", "canceled", ..."""
    return {ticket.case: ticket.qr_code for ticket in demo_tickets()}
