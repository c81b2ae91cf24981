"""Other programs' output, made safe for one journal line."""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^\x20-\x7e]")


def one_line(output: str, limit: int = 200) -> str:
    """The last non-empty line, control characters escaped, at most ``limit`` characters."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        return ""
    text = _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}", lines[-1])
    return text if len(text) <= limit else text[: limit - 3] + "..."
