"""Part 3: scan latency through the whole loop, capture to feedback, against the sandbox.

Guests walk up at the camera's 30 fps: each shows a distinct code for a few frames and steps
away. The first guests hold the sandbox's demo tickets, the rest codes it does not know (a
400, verdict ``invalid``), so every guest costs one real HTTP round trip.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from bench import BenchError
from bench.loop import run_loop
from bench.replay import ReplayCamera
from bench.samples import Photo
from bench.scenes import backgrounds, guest_reel, unknown_code
from bench.stats import Spread, spread_ms
from device.loop import Report
from device.sandbox import demo_tickets

FPS = 30.0
CODE_FRAMES = 4  # a ticket in view for ~0.13 s
GAP_FRAMES = 4  # then nobody for ~0.13 s
LEAD_FRAMES = 15  # half a second of empty scene while the loop settles


@dataclass(frozen=True)
class Latency:
    guests: int
    verdicts: int
    timing: Spread
    verdict_counts: dict[str, int]
    frames_captured: int
    frames_decoded: int
    frames_dropped: int
    seconds: float
    latencies_ms: list[float]


def guest_codes(guests: int) -> list[str]:
    """The sandbox's demo tickets first, then unknown codes, ``guests`` in all."""
    demo = [ticket.qr_code for ticket in demo_tickets()][:guests]
    return demo + [unknown_code(number) for number in range(guests - len(demo))]


def measure(base_url: str, photos: Sequence[Photo], *, guests: int) -> Latency:
    reel = guest_reel(
        guest_codes(guests),
        backgrounds(photos),
        code_frames=CODE_FRAMES,
        gap_frames=GAP_FRAMES,
        lead_frames=LEAD_FRAMES,
    )
    reports: list[Report] = []
    run = run_loop(base_url, ReplayCamera(reel, fps=FPS), reports.append)
    latencies = [report.latency_ms for report in reports]
    if not latencies:
        raise BenchError(f"no verdict for any of {guests} guests: the loop read none of the codes")
    counts = Counter(report.decision.verdict.value for report in reports)
    return Latency(
        guests=guests,
        verdicts=run.verdicts,
        timing=spread_ms(latencies),
        verdict_counts=dict(sorted(counts.items())),
        frames_captured=run.frames_captured,
        frames_decoded=run.frames_decoded,
        frames_dropped=run.frames_dropped,
        seconds=run.seconds,
        latencies_ms=latencies,
    )
