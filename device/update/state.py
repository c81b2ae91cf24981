"""The updater's memory between runs, one JSON file written atomically.

    {"committed": "1.1.0", "previous": "1.0.0",
     "pending": {"version": "1.2.0", "step": "switching", "previous": "1.1.0"},
     "bad": {"1.1.5": "self-test failed (exit 1): camera not found"},
     "last": {"at": "2026-11-27T13:00:00Z", "result": "updated", "code": 0, "message": "..."}}

``pending`` is written before each step starts, so the next run knows what was under way.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from device.update.atomic import write_atomic
from device.update.contract import is_version

_log = logging.getLogger(__name__)

# Steps a pending release can be in; "switching" is the only one after which `current`
# may already point at it.
STEPS = ("downloading", "unpacking", "building", "ready", "switching")


@dataclass
class Pending:
    version: str
    step: str
    previous: str | None  # what `current` pointed at when this update began


@dataclass
class State:
    committed: str | None = None
    previous: str | None = None
    pending: Pending | None = None
    bad: dict[str, str] = field(default_factory=dict)
    last: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode() + b"\n"


def load_state(path: Path) -> State:
    """The saved state; a missing file is a fresh device. An unreadable one is set aside
    (state.json.corrupt) rather than stopping updates for good."""
    try:
        raw = json.loads(path.read_bytes())
        return _parse(raw)
    except FileNotFoundError:
        return State()
    except (OSError, ValueError, TypeError, KeyError) as error:
        _log.warning("state file %s unreadable (%s); starting afresh", path, error)
        path.replace(path.with_name(path.name + ".corrupt"))
        return State()


def save_state(path: Path, state: State) -> None:
    write_atomic(path, state.to_json())


def _parse(raw: Any) -> State:
    if not isinstance(raw, dict):
        raise TypeError("not an object")
    pending = raw.get("pending")
    state = State(
        committed=_version_or_none(raw.get("committed")),
        previous=_version_or_none(raw.get("previous")),
        pending=None,
        bad={str(k): str(v) for k, v in dict(raw.get("bad") or {}).items() if is_version(k)},
        last=dict(raw.get("last") or {}),
    )
    if pending is not None:
        step = pending["step"]
        if step not in STEPS or not is_version(pending["version"]):
            raise ValueError(f"bad pending entry {pending!r}")
        state.pending = Pending(pending["version"], step, _version_or_none(pending["previous"]))
    return state


def _version_or_none(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not is_version(value):
        raise ValueError(f"not a version: {value!r}")
    return value
