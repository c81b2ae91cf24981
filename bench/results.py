"""Everything one bench run measured, and its JSON form."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.decode_cost import DecodeCost
from bench.degraded import DegradedReads
from bench.first_feedback import FirstFeedback
from bench.latency import Latency
from bench.machine import Machine
from bench.memory import Memory
from bench.read_rates import ReadRates
from bench.settings import Size
from bench.startup import Startup


@dataclass
class Results:
    machine: Machine
    quick: bool
    size: Size
    samples: str
    decode_cost: DecodeCost | None = None
    read_rates: ReadRates | None = None
    degraded: list[DegradedReads] | None = None
    latency: Latency | None = None
    first_feedback: FirstFeedback | None = None
    startup: Startup | None = None
    memory: Memory | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each part
    errors: dict[str, str] = field(default_factory=dict)  # part -> why it failed

    def to_json(self, targets: list[dict[str, Any]]) -> str:
        record = asdict(self)
        record["targets"] = targets
        return json.dumps(record, indent=2, ensure_ascii=False, allow_nan=False) + "\n"

    def write(self, path: Path, targets: list[dict[str, Any]]) -> None:
        path.write_text(self.to_json(targets), encoding="utf-8")
