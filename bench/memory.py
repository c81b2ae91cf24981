"""Part 5: does the loop's memory grow? RSS over many frames, in a fresh process.

``measure`` runs this module as a child process (``python -m bench.memory``), so nothing
the other parts allocated pollutes the figures. The child plays mostly empty 640x480 frames
with a new code every 100 frames (so decode, HTTP and feedback all run) through the real loop
as fast as it goes, sampling its own RSS as frames are captured.

Growth is the least-squares slope of RSS over the samples after the warm-up (a fifth of the
frames). The limit, 8 KiB per 1,000 frames, is what adds 10 MB over a 12-hour day at 30 fps
(1.3 million frames): a tenth of the 100 MB budget. Below it stays what is not growth: RSS
moves in 4 KiB pages, and the allocator takes one step of about 36 KiB some time after
warm-up, which fits a slope of at most 1.5 x 36 / 8 = 6.75 KiB per 1,000 frames over 8,000
frames. Above it lands any leak per guest of 1 KiB or more (a code every 100 frames): keeping
each verdict's report, as an early version of this bench did, showed as 12 KiB per 1,000.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import REPO, BenchError, configure_logging
from bench.loop import run_loop
from bench.replay import ReplayCamera
from bench.samples import load_photos
from bench.scenes import backgrounds, guest_reel, unknown_code
from bench.stats import slope

FRAMES_PER_CODE = 100
CODE_FRAMES = 2
GROWTH_LIMIT_KIB_PER_1000 = 8.0
SAMPLES = 20  # RSS samples over the run: every 500 frames of 10,000
WARM_UP_SHARE = 5  # the first fifth of the frames is warm-up: 2,000 of 10,000
TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Memory:
    frames: int
    frames_decoded: int
    frames_dropped: int
    verdicts: int
    seconds: float
    samples: list[tuple[int, int]]  # (frames captured, RSS in KiB)
    early_frames: int
    early_rss_kib: int
    final_rss_kib: int
    warm_up_frames: int
    growth_kib_per_1000: float
    growth_limit_kib_per_1000: float


def measure(base_url: str, samples_dir: Path, *, frames: int) -> Memory:
    """Run the child over ``frames`` frames and fit the growth of its RSS."""
    if frames < FRAMES_PER_CODE * SAMPLES:
        raise ValueError(f"the memory part needs at least {FRAMES_PER_CODE * SAMPLES} frames")
    command = [sys.executable, "-m", "bench.memory", base_url, str(samples_dir), str(frames)]
    try:
        # stderr passes through: a warning from the loop shows up in the bench's output.
        child = subprocess.run(  # noqa: S603 - this module, fixed arguments
            command, cwd=REPO, stdout=subprocess.PIPE, text=True, timeout=TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"the memory run took longer than {TIMEOUT_S:.0f} s") from None
    if child.returncode != 0:
        raise BenchError(f"the memory run exited with {child.returncode} (its error is above)")
    result = json.loads(child.stdout)
    points = [(int(n), int(kib)) for n, kib in result["samples"]]  # every 500 frames of 10,000
    warm_up = frames // WARM_UP_SHARE
    settled = [(n, kib) for n, kib in points if n >= warm_up]
    early_frames = frames // 10
    early = min(points, key=lambda point: abs(point[0] - early_frames))
    return Memory(
        frames=frames,
        frames_decoded=result["frames_decoded"],
        frames_dropped=result["frames_dropped"],
        verdicts=result["verdicts"],
        seconds=result["seconds"],
        samples=points,
        early_frames=early[0],
        early_rss_kib=early[1],
        final_rss_kib=points[-1][1],
        warm_up_frames=warm_up,
        growth_kib_per_1000=1000 * slope([n for n, _ in settled], [kib for _, kib in settled]),
        growth_limit_kib_per_1000=GROWTH_LIMIT_KIB_PER_1000,
    )


def rss_kib() -> int:
    """This process's resident set size now, from /proc/self/statm (in pages)."""
    resident_pages = int(Path("/proc/self/statm").read_text(encoding="ascii").split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _child(base_url: str, samples_dir: Path, frames: int) -> dict[str, object]:
    photos = load_photos(samples_dir)
    codes = [unknown_code(number) for number in range(frames // FRAMES_PER_CODE)]
    reel = guest_reel(
        codes,
        backgrounds(photos),
        code_frames=CODE_FRAMES,
        gap_frames=FRAMES_PER_CODE - CODE_FRAMES,
        # One frame more, so that the sample after the last counted frame is taken, like all
        # the others, while the loop runs; after it, its teardown would move RSS.
        trail_frames=1,
    )
    every = frames // SAMPLES
    samples: list[tuple[int, int]] = []

    def sample(index: int) -> None:  # on the capture thread: the loop has had ``index`` frames
        if index and index % every == 0:
            samples.append((index, rss_kib()))

    camera = ReplayCamera(reel, fps=None, on_capture=sample)
    started = time.monotonic()
    run = run_loop(base_url, camera)
    if len(samples) != SAMPLES:
        raise BenchError(f"took {len(samples)} RSS samples instead of {SAMPLES}")
    return {
        "samples": samples,
        "frames_decoded": run.frames_decoded,
        "frames_dropped": run.frames_dropped,
        "verdicts": run.verdicts,
        "seconds": time.monotonic() - started,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("base_url")
    parser.add_argument("samples", type=Path)
    parser.add_argument("frames", type=int)
    args = parser.parse_args(argv)
    configure_logging()
    print(json.dumps(_child(args.base_url, args.samples, args.frames)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
