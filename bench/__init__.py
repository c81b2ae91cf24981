"""``make bench``: what the scanner costs, measured apart from the tests.

``python -m bench`` runs six parts and writes ``bench/out/``: ``bench.json``, ``latency.png``
and ``read_rates.png``; it prints a table. Each part is one module:

- ``decode_cost``: per-frame decode time of each decoder beside the bare library calls,
- ``read_rates``: reads and false positives on the sample photos,
- ``degraded``: the same on the photos made harder (glare, low contrast, blur, JPEG, small, noise),
- ``latency``: capture-to-feedback time through the whole loop against the sandbox,
- ``startup``: time to the first decoded frame and peak RSS of ``ticket-scanner run``,
- ``memory``: RSS over 10,000 frames through the loop, in a process of its own.

``--quick`` runs the same parts smaller, to check the bench itself in about 30 s.
"""

from __future__ import annotations

import logging
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def configure_logging() -> None:
    """Warnings and errors on stderr, but not the API client's warning for each 4xx answer.

    The bench shows the sandbox codes it does not know on purpose: a 400 every time.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("device.api").setLevel(logging.ERROR)


class BenchError(RuntimeError):
    """A part of the bench could not measure what it should; the message says why."""
