"""python -m bench: decode cost, read rates, scan latency, start-up and memory of the scanner.

Prints a table and writes bench.json, latency.png and read_rates.png to the output folder.
Exits 1 if any part could not measure (the others still run and are reported).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

from bench import (
    REPO,
    BenchError,
    configure_logging,
    decode_cost,
    degraded,
    first_feedback,
    latency,
    memory,
    read_rates,
    startup,
)
from bench.machine import describe
from bench.results import Results
from bench.samples import Photo, load_photos
from bench.sandbox import sandbox
from bench.settings import FULL, QUICK, Size
from bench.table import render
from bench.targets import check

DEFAULT_SAMPLES = Path("tests/data/qr-samples")
DEFAULT_OUT = Path("bench/out")
SERVER_PARTS = ("latency", "startup", "memory")  # the parts that need the sandbox
T = TypeVar("T")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging()
    size = QUICK if args.quick else FULL
    # Defaults live in the repository; paths given on the command line are taken as given.
    samples = (args.samples or REPO / DEFAULT_SAMPLES).resolve()
    out = (args.out or REPO / DEFAULT_OUT).resolve()
    started = time.monotonic()
    try:
        photos = load_photos(samples)
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    results = Results(machine=describe(), quick=args.quick, size=size, samples=_shown(samples))
    _measure(results, photos, samples, size)
    results.seconds["total"] = round(time.monotonic() - started, 1)
    targets = check(results)
    results.write(out / "bench.json", [{**asdict(t), "met": t.met} for t in targets])
    _plot(results, out)
    print(render(results, targets))
    total = results.seconds["total"]
    print(f"\nwrote {_shown(out / 'bench.json')} and the plots beside it; {total:.0f} s in all")
    if results.errors:
        print(f"bench: failed: {', '.join(results.errors)} (see above)", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--samples",
        type=Path,
        metavar="DIR",
        help="sample photos: qrcode-N folders (each image with a .txt of its exact text) and "
        f"falsepositives-N folders (photos without codes); default: {DEFAULT_SAMPLES}",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help=f"where the JSON and plots go; default: {DEFAULT_OUT}",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run with fewer repetitions, guests and frames, to check the bench (~30 s)",
    )
    return parser


def _measure(results: Results, photos: list[Photo], samples: Path, size: Size) -> None:
    part = _Parts(results)
    results.decode_cost = part.run(
        "decode_cost",
        lambda: decode_cost.measure(
            photos, repetitions=size.decode_repetitions, qr_photos=size.decode_qr_photos
        ),
    )
    results.read_rates = part.run("read_rates", lambda: read_rates.measure(photos))
    results.degraded = part.run("degraded", lambda: degraded.measure(photos))
    results.first_feedback = part.run(
        "first_feedback", lambda: first_feedback.measure(photos, guests=size.slow_guests)
    )
    try:
        with tempfile.TemporaryDirectory(prefix="ticket-scanner-bench-") as folder:
            work = Path(folder)
            with sandbox(work / "sandbox.log") as url:
                results.latency = part.run(
                    "latency", lambda: latency.measure(url, photos, guests=size.guests)
                )
                results.startup = part.run(
                    "startup",
                    lambda: startup.measure(
                        url,
                        photos,
                        runs=size.startup_runs,
                        frames=size.startup_frames,
                        work=work / "startup",
                    ),
                )
                results.memory = part.run(
                    "memory", lambda: memory.measure(url, samples, frames=size.memory_frames)
                )
    except BenchError as error:  # the sandbox would not start, or died under the parts
        print(f"bench: sandbox: {error}", file=sys.stderr)
        results.errors["sandbox"] = str(error)
        for name in SERVER_PARTS:
            if getattr(results, name) is None:
                results.errors.setdefault(name, "not measured: the sandbox failed")


def _shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it, for short messages."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


class _Parts:
    """Runs one part at a time: progress on stderr, its wall time, its error if it fails."""

    def __init__(self, results: Results) -> None:
        self._results = results

    def run(self, name: str, measure: Callable[[], T]) -> T | None:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            value = measure()
        except Exception as error:
            # Keep going: the other parts still say something. The run exits 1 at the end.
            traceback.print_exc()
            self._results.errors[name] = f"{type(error).__name__}: {error}"
            print(f"bench: {name} FAILED: {error}", file=sys.stderr, flush=True)
            return None
        seconds = time.monotonic() - started
        self._results.seconds[name] = round(seconds, 1)
        print(f"bench: {name} done in {seconds:.1f} s", file=sys.stderr, flush=True)
        return value


def _plot(results: Results, out: Path) -> None:
    # Imported here: matplotlib takes a while to load and only this step needs it.
    from bench.plots import latency_plot, read_rates_plot  # noqa: PLC0415

    part = _Parts(results)
    if results.latency is not None:
        latency_result = results.latency
        part.run("latency_plot", lambda: latency_plot(latency_result, out / "latency.png"))
    if results.read_rates is not None:
        rates = results.read_rates
        part.run("read_rates_plot", lambda: read_rates_plot(rates, out / "read_rates.png"))


if __name__ == "__main__":
    sys.exit(main())
