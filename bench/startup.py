"""Part 4: start-up time and peak memory of the real command, ``ticket-scanner run``.

The command plays a folder of frames (``images:DIR`` at 30 fps) on the sim backend against
the sandbox and exits by itself when the frames end. Start-up is the time from just before
the process is spawned to the ``first_frame`` event, which the loop writes to the events file
once it has decoded its first frame; peak RSS is the kernel's ``ru_maxrss`` for the process,
which ``bench.spawn`` starts so that the figure is the command's own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from bench import REPO, BenchError
from bench.latency import CODE_FRAMES, FPS
from bench.samples import Photo
from bench.sandbox import scanner_command
from bench.scenes import Reel, Shot, backgrounds, guest_reel, unknown_code
from bench.stats import median
from device.sandbox import DEMO_TOKEN

POLL_S = 0.002  # how often the events file is read while waiting for first_frame
FIRST_FRAME_TIMEOUT_S = 30.0
EXIT_GRACE_S = 30.0  # on top of the frames' own play time
FRAMES_PER_GUEST = 30  # one guest a second: the code in view, then nobody


@dataclass(frozen=True)
class StartupRun:
    first_frame_s: float
    peak_rss_mb: float  # ru_maxrss, in MB of 10^6 bytes
    exit_code: int
    frames_decoded: int


@dataclass(frozen=True)
class Startup:
    frames: int
    runs: list[StartupRun]
    median_first_frame_s: float
    max_peak_rss_mb: float


def measure(
    base_url: str, photos: Sequence[Photo], *, runs: int, frames: int, work: Path
) -> Startup:
    """``runs`` runs of ``ticket-scanner run`` over ``frames`` frames, each from a cold process."""
    guests = max(1, frames // FRAMES_PER_GUEST)
    reel = guest_reel(
        [unknown_code(number) for number in range(guests)],  # same verdicts on every run
        backgrounds(photos),
        code_frames=CODE_FRAMES,
        gap_frames=FRAMES_PER_GUEST - CODE_FRAMES,
    )
    folder = write_frames(reel, work / "frames")
    token_file = work / "token"
    token_file.write_text(DEMO_TOKEN + "\n", encoding="utf-8")
    results = []
    for number in range(runs):
        events = work / f"events-{number}.jsonl"
        config = work / f"config-{number}.toml"
        config.write_text(config_toml(base_url, token_file, folder, events), encoding="utf-8")
        results.append(_run_once(config, events, play_s=len(reel) / FPS))
    return Startup(
        frames=len(reel),
        runs=results,
        median_first_frame_s=median([run.first_frame_s for run in results]),
        max_peak_rss_mb=max(run.peak_rss_mb for run in results),
    )


def write_frames(reel: Reel, folder: Path) -> Path:
    """frame00000.png ...: one PNG per distinct picture, hard-linked for repeats."""
    folder.mkdir(parents=True)
    pictures: dict[Shot, Path] = {}
    for index, shot in enumerate(reel.shots):
        if shot not in pictures:
            pictures[shot] = folder.parent / f"picture{len(pictures):04d}.png"
            Image.fromarray(reel.frame(index)).save(pictures[shot])
        os.link(pictures[shot], folder / f"frame{index:05d}.png")
    return folder


def config_toml(base_url: str, token_file: Path, frames: Path, events: Path) -> str:
    """A door unit on the sim backend; strings as JSON, which TOML basic strings accept."""
    return "\n".join(
        [
            "[api]",
            f"base_url = {json.dumps(base_url)}",
            f"token_file = {json.dumps(str(token_file))}",
            "[camera]",
            f"source = {json.dumps('images:' + str(frames))}",
            f"fps = {FPS:g}",
            "[device]",
            'id = "bench-startup"',
            'profile = "door"',
            "[hardware]",
            'backend = "sim"',
            f"events = {json.dumps(str(events))}",
            "[offline]",
            f"journal = {json.dumps(str(events.with_suffix('.journal.db')))}",
            "",
        ]
    )


def _run_once(config: Path, events: Path, *, play_s: float) -> StartupRun:
    command = [str(scanner_command()), "run", "--config", str(config)]
    # Through the small launcher, so ru_maxrss is the command's own (see bench.spawn).
    launcher = subprocess.Popen(  # noqa: S603 - this package's launcher, fixed arguments
        [sys.executable, "-m", "bench.spawn", *command],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    pid: int | None = None
    try:
        assert launcher.stdout is not None
        spawned = json.loads(launcher.stdout.readline() or "null")
        if spawned is None:
            raise BenchError(f"the launcher could not start `{' '.join(command)}` (error above)")
        pid, t0 = int(spawned["pid"]), float(spawned["t0"])
        first_frame_s = _wait_for_first_frame(launcher, events, t0)
        rest, _ = launcher.communicate(timeout=play_s + EXIT_GRACE_S)
        ended = json.loads(rest)
    except subprocess.TimeoutExpired:
        raise BenchError(
            f"`{' '.join(command)}` did not exit within {play_s + EXIT_GRACE_S:.0f} s"
        ) from None
    finally:
        if launcher.poll() is None:
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
            launcher.kill()
            launcher.wait()
    if ended["exit_code"] != 0:
        raise BenchError(f"`{' '.join(command)}` exited with {ended['exit_code']} (expected 0)")
    stopped = [event for event in _events(events) if event["event"] == "stopped"]
    if not stopped:
        raise BenchError(f"{events} has no stopped event: the run did not end normally")
    return StartupRun(
        first_frame_s=first_frame_s,
        peak_rss_mb=int(ended["max_rss_kib"]) * 1024 / 1e6,
        exit_code=int(ended["exit_code"]),
        frames_decoded=int(stopped[0]["frames"]),
    )


def _wait_for_first_frame(launcher: subprocess.Popen[str], events: Path, t0: float) -> float:
    """Seconds from ``t0`` (monotonic) until the events file holds the first_frame event."""
    deadline = t0 + FIRST_FRAME_TIMEOUT_S
    while time.monotonic() < deadline:
        if events.exists() and any(e["event"] == "first_frame" for e in _events(events)):
            return time.monotonic() - t0
        if launcher.poll() is not None:
            raise BenchError("ticket-scanner run exited before its first frame")
        time.sleep(POLL_S)
    raise BenchError(f"no first_frame event within {FIRST_FRAME_TIMEOUT_S:.0f} s in {events}")


def _events(path: Path) -> list[dict[str, Any]]:
    """The complete lines of an events file (the last may still be being written)."""
    text = path.read_text(encoding="ascii")
    complete = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines()]
