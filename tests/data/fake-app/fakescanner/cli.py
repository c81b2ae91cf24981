"""``ticket-scanner --version`` and ``ticket-scanner selftest``, as the real app answers them."""

import sys
from importlib.metadata import version

# The tests publish a copy with this set to True: a release whose self-test fails.
SELFTEST_FAILS = False


def main() -> int:
    args = sys.argv[1:]
    if args == ["--version"]:
        print(f"ticket-scanner {version('ticket-scanner')}")
        return 0
    if args == ["selftest"]:
        if SELFTEST_FAILS:
            print("selftest: camera not found (fake failure)", file=sys.stderr)
            return 1
        print("selftest: ok")
        return 0
    print(f"fake ticket-scanner: unsupported arguments {args}", file=sys.stderr)
    return 2
