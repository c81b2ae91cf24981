"""The two PNGs: scan latency distribution, and read rates with false positives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bench.latency import Latency
from bench.read_rates import ReadRates
from bench.targets import LATENCY_P95_MAX_MS

DPI = 120


def latency_plot(latency: Latency, path: Path) -> None:
    """Histogram of whole-loop scan latencies, median and p95 marked, the target beside them."""
    figure = Figure(figsize=(6.4, 3.6), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    timing = latency.timing
    right = max(LATENCY_P95_MAX_MS, timing.max_ms) * 1.05
    # Fixed-width bins from 0, so the spread reads against the target, not just its own range.
    bins = [float(edge) for edge in np.linspace(0, right, 64)]
    axes.hist(latency.latencies_ms, bins=bins, color="#4c78a8")
    axes.axvline(timing.median_ms, color="black", label=f"median {timing.median_ms:.1f} ms")
    axes.axvline(timing.p95_ms, color="black", linestyle="--", label=f"p95 {timing.p95_ms:.1f} ms")
    axes.axvline(
        LATENCY_P95_MAX_MS,
        color="#d62728",
        linestyle=":",
        label=f"p95 target {LATENCY_P95_MAX_MS:g} ms",
    )
    axes.set_xlim(left=0, right=right)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("frame captured -> feedback started (ms)")
    axes.set_ylabel("verdicts")
    axes.set_title(f"Scan latency through the loop ({latency.verdicts} guests, 30 fps)")
    axes.legend(frameon=False)
    _save(figure, path)


def read_rates_plot(rates: ReadRates, path: Path) -> None:
    """Bars per decoder: share of code photos read, and false positives on no-code photos."""
    figure = Figure(figsize=(7.2, 3.2), dpi=DPI, layout="constrained")
    reads, false = figure.subplots(1, 2)
    names = [row.decoder for row in rates.decoders]
    rate_bars = reads.bar(names, [100 * row.read_rate for row in rates.decoders], color="#4c78a8")
    reads.bar_label(rate_bars, labels=[f"{row.read}/{row.with_code}" for row in rates.decoders])
    reads.set_ylim(0, 110)
    reads.set_ylabel("photos read (%)")
    reads.set_title("Read rate (exact text)")
    false_bars = false.bar(names, [row.false_positives for row in rates.decoders], color="#d62728")
    false.bar_label(
        false_bars, labels=[f"{row.false_positives}/{row.without_code}" for row in rates.decoders]
    )
    worst = max(row.false_positives for row in rates.decoders)
    false.set_ylim(0, max(5, worst * 1.3))
    false.yaxis.set_major_locator(MaxNLocator(integer=True))
    false.set_ylabel("photos with a code reported")
    false.set_title("False positives")
    _save(figure, path)


def _save(figure: Figure, path: Path) -> None:
    FigureCanvasAgg(figure)  # render with Agg whatever backend the environment names
    figure.savefig(path)
