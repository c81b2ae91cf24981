"""How big a bench run is: the full run (about 2.5 minutes) or ``--quick`` (about 30 s)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Size:
    decode_repetitions: int  # passes over every frame per contender
    decode_qr_photos: int | None  # None: every code photo
    guests: int  # latency: one verdict each
    slow_guests: int  # first feedback: guests per network delay
    startup_runs: int
    startup_frames: int
    memory_frames: int


FULL = Size(
    decode_repetitions=3,
    decode_qr_photos=None,
    guests=130,
    slow_guests=10,
    startup_runs=3,
    startup_frames=300,
    memory_frames=10_000,
)
# Small enough to check the bench itself, big enough that every figure is still computed.
# The memory part keeps its full length (10 s): in a shorter run a one-time step of the
# allocator (~36 KiB, seen around frame 2,500-3,000 here) looks like growth.
QUICK = Size(
    decode_repetitions=1,
    decode_qr_photos=30,
    guests=20,
    slow_guests=3,
    startup_runs=1,
    startup_frames=90,
    memory_frames=10_000,
)
