"""``deploy/ota``: make the signing keys and the repository, publish releases, steer rollouts.

    deploy/ota init-repo REPO --keys KEYS
    deploy/ota publish REPO --keys KEYS --version V [--source DIR] [--platform P]
                       [--wheelhouse DIR] [--rollout PERCENT]
    deploy/ota rollout REPO --keys KEYS --version V --percent PERCENT
    deploy/ota resign REPO --keys KEYS [--root]        (daily, from cron)
    deploy/ota status REPO

REPO is a folder to upload to any static HTTPS host as is; KEYS holds the private keys and
stays off that host. Exit status: 0 done, 1 refused or failed (the reason on stderr).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from deploy.otalib.errors import OtaError

CHECKOUT = Path(__file__).resolve().parents[2]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except OtaError as error:
        print(f"ota: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deploy/ota", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, handler: object, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        sub.add_argument("repo", type=Path, metavar="REPO", help="the repository folder")
        return sub

    def keys(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--keys", type=Path, required=True, help="the private keys folder")

    keys(command("init-repo", _init_repo, "new keys and a new, empty repository"))
    publish = command("publish", _publish, "build a release bundle and publish it")
    keys(publish)
    publish.add_argument("--version", required=True, help="the release version, e.g. 1.4.0")
    publish.add_argument("--source", type=Path, default=CHECKOUT, help="project to build")
    publish.add_argument("--platform", default=None, help="target wheel platform tag")
    publish.add_argument("--python", default=None, help="target Python, e.g. 3.11")
    publish.add_argument("--wheelhouse", type=Path, help="take wheels from here, not PyPI")
    publish.add_argument("--rollout", type=int, default=100, help="percent of devices (100)")
    rollout = command("rollout", _rollout, "change the share of devices that may install V")
    keys(rollout)
    rollout.add_argument("--version", required=True)
    rollout.add_argument("--percent", type=int, required=True, help="0 halts the rollout")
    resign = command("resign", _resign, "re-sign the timestamp (and whatever expires soon)")
    keys(resign)
    resign.add_argument("--root", action="store_true", help="also sign a new root version")
    command("status", _status, "the roles' expiry and the published releases")
    return parser


def _init_repo(args: argparse.Namespace) -> int:
    from deploy.otalib.operations import init_repo  # noqa: PLC0415 - keep --help fast

    root = init_repo(args.repo, args.keys)
    print(f"keys written to {args.keys} (keep them off the web host; back them up offline)")
    print(f"repository created in {args.repo}: upload it as is to an HTTPS host")
    print(f"devices trust {root}: install it as each device's --trusted-root")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from deploy.otalib.bundle import DEFAULT_PLATFORM, DEFAULT_PYTHON, build_bundle  # noqa: PLC0415
    from deploy.otalib.operations import add_release, open_repo  # noqa: PLC0415
    from deploy.otalib.repo import utc_now  # noqa: PLC0415
    from device.update.contract import ReleaseInfo, bundle_name, parse_version  # noqa: PLC0415

    try:
        parse_version(args.version)
    except ValueError as error:
        raise OtaError(str(error)) from None
    if not 0 <= args.rollout <= 100:
        raise OtaError(f"--rollout must be 0 to 100, got {args.rollout}")
    # Check the keys and the version before a build that can take minutes.
    files = open_repo(args.repo, args.keys, ("targets", "snapshot", "timestamp"))
    if bundle_name(args.version) in files.targets().targets:
        raise OtaError(f"version {args.version} is already published; publish a new version")
    info = ReleaseInfo(
        version=args.version,
        platform=args.platform or DEFAULT_PLATFORM,
        python=args.python or DEFAULT_PYTHON,
        created=utc_now(),
        rollout=args.rollout,
    )
    with tempfile.TemporaryDirectory(prefix="ota-publish-") as out:
        bundle = build_bundle(args.source, info, Path(out), wheelhouse=args.wheelhouse)
        stored = add_release(args.repo, args.keys, bundle, info)
    print(f"published {info.version} for {info.platform} to {info.rollout}% of devices: {stored}")
    return 0


def _rollout(args: argparse.Namespace) -> int:
    from deploy.otalib.operations import set_rollout  # noqa: PLC0415

    set_rollout(args.repo, args.keys, args.version, args.percent)
    print(f"{args.version}: rollout {args.percent}%")
    return 0


def _resign(args: argparse.Namespace) -> int:
    from deploy.otalib.operations import resign  # noqa: PLC0415

    signed = resign(args.repo, args.keys, roles=("root",) if args.root else ())
    print("signed anew: " + ", ".join(signed))
    return 0


def _status(args: argparse.Namespace) -> int:
    from deploy.otalib.operations import status  # noqa: PLC0415

    for line in status(args.repo):
        print(line)
    return 0
