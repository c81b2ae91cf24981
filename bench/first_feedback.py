"""Part 3b: decode to first feedback while the network is slow.

Staff re-present a ticket when the scanner seems to do nothing. The loop therefore shows
CHECKING when AnyRoad has not answered 150 ms after the decode (``CHECKING_AFTER_S``), and
the verdict when the answer comes. This part delays every answer of an in-process sandbox
(``Fault.SLOW``: the server waits, then answers as usual) and measures, per delay, the time
from the decode to the first thing shown (CHECKING or the verdict) and to the verdict.
The sandbox thread only sleeps while it delays, so it takes nothing from the loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bench import BenchError
from bench.loop import run_loop
from bench.replay import ReplayCamera
from bench.samples import Photo
from bench.scenes import backgrounds, guest_reel, unknown_code
from bench.stats import Spread, spread_ms
from device.loop import Report
from device.sandbox import Fault, SandboxServer
from hal.ports import GrayPixels

FPS = 30.0
CODE_FRAMES = 4
DELAYS_S = (0.05, 0.3, 1.0, 2.0)


@dataclass(frozen=True)
class DelayRow:
    delay_s: float
    first_feedback: Spread  # decode -> CHECKING or the verdict
    verdict: Spread  # decode -> the verdict
    checking_shown: int  # guests who saw CHECKING first


@dataclass(frozen=True)
class FirstFeedback:
    guests_per_delay: int
    rows: list[DelayRow]

    @property
    def worst_p95_ms(self) -> float:
        return max(row.first_feedback.p95_ms for row in self.rows)


def measure(photos: Sequence[Photo], *, guests: int) -> FirstFeedback:
    scenery = backgrounds(photos)
    return FirstFeedback(guests, [_one_delay(delay, scenery, guests) for delay in DELAYS_S])


def _one_delay(delay_s: float, scenery: Sequence[GrayPixels], guests: int) -> DelayRow:
    # The loop waits for each answer; the next guest comes after it (a new code cuts the
    # verdict's screen short), so every guest is decoded on arrival.
    gap = math.ceil((delay_s + 0.3) * FPS)
    codes = [unknown_code(1000 + number) for number in range(guests)]
    reel = guest_reel(codes, scenery, code_frames=CODE_FRAMES, gap_frames=gap, lead_frames=15)
    reports: list[Report] = []
    with SandboxServer() as sandbox:
        sandbox.inject(Fault.SLOW, count=guests, delay_s=delay_s)
        run_loop(sandbox.url, ReplayCamera(reel, fps=FPS), reports.append)
    if len(reports) != guests:
        raise BenchError(f"{len(reports)} verdicts for {guests} guests at {delay_s} s delay")
    return DelayRow(
        delay_s=delay_s,
        first_feedback=spread_ms([report.first_feedback_ms for report in reports]),
        verdict=spread_ms([report.verdict_ms for report in reports]),
        checking_shown=sum(report.checking_shown for report in reports),
    )
