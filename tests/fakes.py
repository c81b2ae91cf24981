"""Test doubles shared by the loop and feedback tests: a clock that only moves when told."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class FakeClock:
    """``clock()`` reads it; ``sleep(s)`` moves it on at once, so nothing really waits."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.slept.append(seconds)
        self.now += seconds


class Recorder:
    """An events sink that keeps what it was given."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: Mapping[str, Any]) -> None:
        self.events.append(dict(event))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["event"] == kind]
