"""Part 2: how many sample photos each decoder reads, and what it "reads" where there is no code.

A read is the exact expected text among the texts decoded from a photo; a false positive is
any code at all on a photo that holds none. Photos are decoded at their own size with the
generous budget ``ticket-scanner decode`` gives still images.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import BenchError
from bench.samples import Photo
from device.autodecode import AutoDecoder, SecondLookStats
from device.cli import STILL_IMAGE_BUDGET_S
from device.decode import DECODER_NAMES, make_decoder


@dataclass
class Tally:
    """One folder: its photos, and the reads (code folders) or false positives (others)."""

    hits: int = 0
    photos: int = 0


@dataclass(frozen=True)
class DecoderReads:
    decoder: str
    read: int
    with_code: int
    false_positives: int
    without_code: int
    seconds: float
    by_folder: dict[str, Tally] = field(default_factory=dict)

    @property
    def read_rate(self) -> float:
        return self.read / self.with_code


@dataclass(frozen=True)
class ReadRates:
    budget_s: float
    decoders: list[DecoderReads]
    auto_second_look: SecondLookStats  # AutoDecoder.stats over the photos
    missed_by_auto: list[str]  # photos zxing-cpp alone reads and auto does not (target: none)


def measure(photos: Sequence[Photo]) -> ReadRates:
    """Every decoder over every photo."""
    images = [(photo, photo.pixels()) for photo in photos]
    results: list[DecoderReads] = []
    second_look: SecondLookStats | None = None
    read_paths: dict[str, set[Path]] = {}
    for name in DECODER_NAMES:
        decoder = make_decoder(name, budget_s=STILL_IMAGE_BUDGET_S)
        by_folder: dict[str, Tally] = {}
        read = false_positives = 0
        started = time.perf_counter()
        for photo, pixels in images:
            texts = [code.text for code in decoder.decode(pixels)]
            tally = by_folder.setdefault(photo.folder, Tally())
            tally.photos += 1
            if photo.expected is None and texts:
                false_positives += 1
                tally.hits += 1
            elif photo.expected is not None and photo.expected in texts:
                read += 1
                tally.hits += 1
                read_paths.setdefault(name, set()).add(photo.path)
        seconds = time.perf_counter() - started
        with_code = sum(photo.expected is not None for photo in photos)
        results.append(
            DecoderReads(
                name,
                read,
                with_code,
                false_positives,
                len(photos) - with_code,
                seconds,
                by_folder,
            )
        )
        if isinstance(decoder, AutoDecoder):
            second_look = decoder.stats
    if second_look is None:
        raise BenchError("make_decoder('auto') is no longer an AutoDecoder: update the bench")
    missed = read_paths.get("zxing", set()) - read_paths.get("auto", set())
    return ReadRates(STILL_IMAGE_BUDGET_S, results, second_look, sorted(map(str, missed)))
