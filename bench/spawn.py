"""Start a command from a small process and report its exit and its own peak RSS.

Linux's ``ru_maxrss`` for a child counts the memory of the process it was forked from: the
high-water mark of the parent's address space is carried over at fork and exec. Spawned
straight from the bench (hundreds of MB of frames), ``ticket-scanner run`` would "peak" at the
bench's size. This launcher is a bare Python with a few MB, so the figure it reports is the
command's own (or this launcher's ~10 MB, whichever is larger).

Run as ``python -m bench.spawn COMMAND...``; it prints two JSON lines to stdout:
``{"pid": PID, "t0": MONOTONIC}`` just after spawning (``t0`` taken just before, on the
system-wide monotonic clock), then ``{"exit_code": N, "max_rss_kib": KIB}`` once it has exited.
The command's own output goes to /dev/null.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(command: list[str]) -> int:
    if not command:
        print("usage: python -m bench.spawn COMMAND [ARG...]", file=sys.stderr)
        return 2
    quiet = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    t0 = time.monotonic()
    pid = os.posix_spawn(command[0], command, os.environ, file_actions=quiet)
    print(json.dumps({"pid": pid, "t0": t0}), flush=True)
    _, status, usage = os.wait4(pid, 0)
    exit_code = os.waitstatus_to_exitcode(status)
    print(json.dumps({"exit_code": exit_code, "max_rss_kib": usage.ru_maxrss}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
