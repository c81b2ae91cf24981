"""The project's targets, checked against a run's results."""

from __future__ import annotations

from dataclasses import dataclass

from bench.results import Results

AUTO_OVER_BARE_MAX = 1.10  # auto costs at most 10% more than bare zxing-cpp on empty frames
LATENCY_P95_MAX_MS = 30.0
FIRST_FEEDBACK_P95_MAX_MS = 200.0  # CHECKING is due at 150 ms; 50 ms for the loop to show it
FIRST_FRAME_MAX_S = 1.5
PEAK_RSS_MAX_MB = 100.0


@dataclass(frozen=True)
class Target:
    name: str
    measured: float
    limit: float
    unit: str

    @property
    def met(self) -> bool:
        return self.measured <= self.limit


def check(results: Results) -> list[Target]:
    """One Target per goal whose part ran; a part that failed has no target here."""
    targets = []
    if results.decode_cost is not None:
        ratio = results.decode_cost.auto_over_bare_zxing
        targets.append(
            Target("auto / bare zxing-cpp, empty 640x480", ratio, AUTO_OVER_BARE_MAX, "x")
        )
    if results.read_rates is not None:
        rates = results.read_rates
        missed = len(rates.missed_by_auto)
        targets.append(Target("photos zxing-cpp reads and auto misses", missed, 0, ""))
        false_positives = sum(row.false_positives for row in rates.decoders)
        targets.append(Target("false positives, any decoder", false_positives, 0, ""))
    if results.degraded is not None:
        false_positives = sum(row.false_positives for row in results.degraded)
        targets.append(Target("false positives on degraded photos", false_positives, 0, ""))
    if results.latency is not None:
        latency = results.latency
        targets.append(Target("scan latency p95", latency.timing.p95_ms, LATENCY_P95_MAX_MS, "ms"))
        missed = latency.guests - latency.verdicts
        targets.append(Target("guests without a verdict", missed, 0, ""))
    if results.first_feedback is not None:
        worst = results.first_feedback.worst_p95_ms
        targets.append(
            Target("decode to first feedback p95, slow net", worst, FIRST_FEEDBACK_P95_MAX_MS, "ms")
        )
    if results.startup is not None:
        startup = results.startup
        targets.append(
            Target("first frame (median)", startup.median_first_frame_s, FIRST_FRAME_MAX_S, "s")
        )
        targets.append(Target("peak RSS (max)", startup.max_peak_rss_mb, PEAK_RSS_MAX_MB, "MB"))
    if results.memory is not None:
        memory = results.memory
        targets.append(
            Target(
                "RSS growth after warm-up",
                memory.growth_kib_per_1000,
                memory.growth_limit_kib_per_1000,
                "KiB/1000 frames",
            )
        )
    return targets
