"""Small statistics over measurements: medians, percentiles, a least-squares slope."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Spread:
    """Median, 95th percentile and maximum of a set of durations, in milliseconds."""

    median_ms: float
    p95_ms: float
    max_ms: float
    n: int


def spread_ms(durations_ms: Sequence[float]) -> Spread:
    """``spread_ms([1.0, 2.0, 9.0])`` -> median 2.0, p95 8.3, max 9.0, n 3."""
    if not durations_ms:
        raise ValueError("no measurements to summarise")
    values = np.asarray(durations_ms, dtype=float)
    return Spread(
        median_ms=float(np.median(values)),
        p95_ms=float(np.percentile(values, 95)),
        max_ms=float(values.max()),
        n=len(values),
    )


def spread_ns(durations_ns: Sequence[int]) -> Spread:
    """The same, from ``time.perf_counter_ns`` differences."""
    return spread_ms([ns / 1e6 for ns in durations_ns])


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ``ys`` over ``xs`` (units of y per unit of x)."""
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError(f"a slope needs at least two (x, y) pairs, got {len(xs)} and {len(ys)}")
    fitted_slope, _intercept = np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)
    return float(fitted_slope)


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("no values for a median")
    return float(np.median(np.asarray(values, dtype=float)))
