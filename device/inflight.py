"""A check-in in flight: run off the scan loop's thread, so the loop can say CHECKING meanwhile.

``Dispatch`` starts one check-in and returns its ``InFlight``; the loop waits on it in slices
(to play the CHECKING cue on time) and takes the result. ``inline`` runs it there and then,
for tools and tests that need no CHECKING; ``BackgroundCheckIns`` runs it on one worker
thread, so check-ins stay one at a time and in order, as the journal's sequence requires.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class InFlight(Protocol[T_co]):
    def wait(self, timeout_s: float | None) -> bool:
        """Block up to ``timeout_s`` (None: until done); True once the result is there."""
        ...

    def result(self) -> T_co:
        """The result (or the exception the work raised); only after ``wait`` said True."""
        ...


class Dispatch(Protocol):
    def __call__(self, work: Callable[[], T]) -> InFlight[T]: ...


class _Done(Generic[T]):
    def __init__(self, value: T) -> None:
        self._value = value

    def wait(self, timeout_s: float | None) -> bool:
        return True

    def result(self) -> T:
        return self._value


def inline(work: Callable[[], T]) -> InFlight[T]:
    """Run ``work`` now, on the caller's thread."""
    return _Done(work())


class _Pending(Generic[T]):
    def __init__(self, future: concurrent.futures.Future[T]) -> None:
        self._future = future

    def wait(self, timeout_s: float | None) -> bool:
        concurrent.futures.wait([self._future], timeout=timeout_s)
        return self._future.done()

    def result(self) -> T:
        return self._future.result()


class BackgroundCheckIns:
    """One worker thread for check-ins: ``dispatch = BackgroundCheckIns(); dispatch(work)``."""

    def __init__(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="checkin")

    def __call__(self, work: Callable[[], T]) -> InFlight[T]:
        return _Pending(self._pool.submit(work))

    def close(self) -> None:
        """Wait for a check-in in flight (it ends by its own timeout), then stop the thread."""
        self._pool.shutdown(wait=True)
