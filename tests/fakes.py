"""Test doubles shared by the loop and feedback tests: a clock that only moves when told."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

from device.api_health import ApiProof, api_identity
from device.config import ApiConfig, load_config
from device.journal import Journal

T = TypeVar("T")


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


def proven(journal: Journal, identity: str = "test-api") -> ApiProof:
    """Proof that AnyRoad has answered this configuration before (offline acceptance allowed)."""
    journal.note_answered_by(identity)
    return ApiProof(journal, identity)


def prove(journal_path: Path, api: ApiConfig, *, token: str | None = None) -> None:
    """Record in the journal at ``journal_path`` that AnyRoad once answered ``api``."""
    journal = Journal.open(journal_path)
    try:
        journal.note_answered_by(api_identity(api, token=token))
    finally:
        journal.close()


def prove_config(config_path: Path) -> None:
    """``prove`` for the journal and API a config file names."""
    config = load_config(config_path)
    prove(config.offline.journal, config.api)


class Recorder:
    """An events sink that keeps what it was given."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: Mapping[str, Any]) -> None:
        self.events.append(dict(event))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["event"] == kind]


class NetworkDelay:
    """A ``Dispatch`` whose check-ins take ``delay_s`` of the fake clock to answer.

    The loop waits on it as on a real request in flight: ``wait(t)`` moves the clock on by
    ``t`` (or to the answer, if that comes first), so CHECKING and verdict times are exact.
    """

    def __init__(self, clock: FakeClock, delay_s: float) -> None:
        self.clock, self.delay_s = clock, delay_s
        self.waits: list[float | None] = []

    def __call__(self, work: Callable[[], T]) -> _Delayed[T]:
        return _Delayed(self, work, self.clock.now + self.delay_s)


class _Delayed(Generic[T]):
    def __init__(self, network: NetworkDelay, work: Callable[[], T], ready_at: float) -> None:
        self._network, self._work, self._ready_at = network, work, ready_at
        self._result: list[T] = []

    def wait(self, timeout_s: float | None) -> bool:
        clock = self._network.clock
        self._network.waits.append(timeout_s)
        if timeout_s is not None and clock.now + timeout_s < self._ready_at:
            clock.now += timeout_s
            return False
        clock.now = max(clock.now, self._ready_at)
        if not self._result:
            self._result.append(self._work())  # the work runs "on the server's time"
        return True

    def result(self) -> T:
        return self._result[0]
