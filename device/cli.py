"""``ticket-scanner``: the scanner and its field tools."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import textwrap
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from device import exitcodes
from device.config import ConfigError, load_config
from device.decode import DECODER_NAMES
from device.identity import NoDeviceIdError
from device.version import VERSION

DESCRIPTION = "ticket-scanner: the scanner and its field tools."
DEFAULT_CONFIG = Path("/etc/ticket-scanner/config.toml")
CONFIG_HELP = "config file (TOML; default: %(default)s)"
DECODE_EPILOG = """\
Codes are printed as decoded; control characters are shown escaped (\\x1b).

exit codes:
  0  every image was read (with or without a code in it)
  1  an image could not be read: no such file, is a folder, not an image,
     truncated or damaged image (one line each on stderr)
  2  usage error"""
SANDBOX_EPILOG = """\
exit codes:
  0    stopped by Ctrl-C (or SIGTERM); --codes, --frames: written
  2    the port is in use, the address is not this machine's,
       or the --frames folder is not empty
  130  interrupted before it was serving"""
# A still image is nobody waiting at a gate: let ``auto`` try everything it has.
STILL_IMAGE_BUDGET_S = 2.0
log = logging.getLogger("ticket_scanner")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.handler(args))
    except ConfigError as error:
        print(f"ticket-scanner: config error: {error}", file=sys.stderr)
        return exitcodes.USAGE
    except NoDeviceIdError as error:  # device-id without a config
        print(f"ticket-scanner: {error}", file=sys.stderr)
        return exitcodes.USAGE
    except KeyboardInterrupt:
        return exitcodes.INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ticket-scanner",
        description=DESCRIPTION,
        epilog=exitcodes.EPILOG,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ticket-scanner {VERSION}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(
        name: str, handler: object, help_text: str, epilog: str | None = None
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=epilog,
            formatter_class=_HelpFormatter,
        )
        sub.set_defaults(handler=handler)
        return sub

    run = command("run", _run, "run the scan loop")
    run.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, metavar="FILE", help=CONFIG_HELP
    )
    demo = command("demo", _demo, "the whole product against the sandbox, in the terminal")
    demo.add_argument("--events", type=Path, help="also write the events (JSON lines) here")
    demo.add_argument("--screens", action="store_true", help="also draw the OLED for each verdict")
    decode = command("decode", _decode, "decode QR codes in image files", DECODE_EPILOG)
    decode.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files")
    decode.add_argument("--json", action="store_true", help="one JSON object per image")
    decode.add_argument(
        "--decoder", choices=DECODER_NAMES, default="auto", help="decoder (default: %(default)s)"
    )
    command("device-id", _device_id, "print the device id sent with every scan").add_argument(
        "--config", type=Path, help="config file whose [device] id overrides the serial"
    )
    _add_sandbox(
        command("sandbox", _sandbox, "run the sandbox AnyRoad server alone", SANDBOX_EPILOG)
    )
    for name, help_text in (("scan", "check a guest in"), ("verify", "check without checking in")):
        summary = f"{help_text}: one request, print the verdict"
        one = command(name, _one_request, summary, exitcodes.VERDICT_EPILOG)
        one.add_argument("qr_code", metavar="QR", help="the ticket's QR code text, whole")
        one.add_argument(
            "--config", type=Path, default=DEFAULT_CONFIG, metavar="FILE", help=CONFIG_HELP
        )
        one.set_defaults(mode=name)
    sync = command("sync", _sync, "deliver the scans accepted offline, once; 0 when none is left")
    sync.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, metavar="FILE", help=CONFIG_HELP
    )
    selftest = command(
        "selftest",
        _selftest,
        "check this installation can scan (no hardware)",
        "exit codes:\n  0    every check passed\n  1    a check failed (its FAIL line says which)",
    )
    selftest.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="also check this config, its secret and its journal, and probe its API",
    )
    from device.update import options as update  # noqa: PLC0415 - argparse only, no tuf

    update.add_arguments(command("update", update.handle, "install the newest signed release"))
    screens = command("screens", _screens, "render every screen to PNG files")
    target = screens.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, metavar="DIR", help="a new folder for one PNG each")
    target.add_argument(
        "--sheet", type=Path, metavar="FILE", help="one PNG of every screen at 128x64 and 128x32"
    )
    return parser


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Epilog tables kept as written; a path in an option's help never split at its hyphen."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def _add_sandbox(sandbox: argparse.ArgumentParser) -> None:
    sandbox.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")
    sandbox.add_argument("--host", default="127.0.0.1", help="address (default: %(default)s)")
    what = sandbox.add_mutually_exclusive_group()
    what.add_argument(
        "--codes", action="store_true", help="print every demo ticket's whole QR code, then exit"
    )
    what.add_argument(
        "--frames",
        type=Path,
        metavar="DIR",
        help="write a camera folder (one PNG per demo ticket) for [camera] source, then exit",
    )


def _run(args: argparse.Namespace) -> int:
    from device.app import ConsolePrinter, build  # noqa: PLC0415 - keep --help fast

    config = load_config(args.config)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    sim = config.hardware.backend == "sim"
    observers = [ConsolePrinter(sys.stdout, draw_screen=True)] if sim else []
    with build(config, observers=observers) as running:
        log.info(
            "scanning device=%s mode=%s profile=%s source=%s",
            running.loop.settings.device_id,
            config.api.mode,
            config.device.profile,
            config.camera.source,
        )
        with running.syncing():
            running.loop.run(stop)
        log.info(
            "stopped frames_decoded=%d dropped=%d skipped=%d",
            running.loop.frames_decoded,
            running.source.dropped,
            running.source.skipped,
        )
    return 0


def _sync(args: argparse.Namespace) -> int:
    from device.app import sync_once  # noqa: PLC0415
    from device.tickets import log_safe  # noqa: PLC0415

    config = load_config(args.config)
    result = sync_once(config)
    print(
        f"delivered {result.delivered}, conflicts {result.conflicts}, "
        f"still queued {result.remaining}"
    )
    if result.remaining:
        stopped_by = result.stopped_by
        why = log_safe(stopped_by.code or stopped_by.kind, 40) if stopped_by else "busy"
        print(f"ticket-scanner: sync stopped: {why}; run it again later", file=sys.stderr)
        return 1
    return 0


def _selftest(args: argparse.Namespace) -> int:
    from device.selftest import run_selftest  # noqa: PLC0415

    return run_selftest(sys.stdout, config=args.config)


def _demo(args: argparse.Namespace) -> int:
    from device.demo import run_demo  # noqa: PLC0415
    from device.events import EventLog, EventsError  # noqa: PLC0415

    if not args.verbose:  # one printed line per verdict; -v shows the field log beside it
        logging.getLogger().setLevel(logging.ERROR)  # 4xx and offline warnings are the show
    try:
        if args.events:  # before the show starts, not as a config error of the demo's own
            EventLog.open(args.events).close()
        return run_demo(sys.stdout, events=args.events, screens=args.screens)
    except EventsError as error:
        print(f"ticket-scanner: demo: --events {error}", file=sys.stderr)
        return exitcodes.USAGE


def _decode(args: argparse.Namespace) -> int:
    from device.decode import make_decoder  # noqa: PLC0415
    from device.tickets import terminal_safe  # noqa: PLC0415

    decoder = make_decoder(args.decoder, budget_s=STILL_IMAGE_BUDGET_S)
    failed = False
    for path in args.images:
        shown = terminal_safe(str(path))
        try:
            pixels = _gray_image(path)
        except _UnreadableImageError as error:
            print(f"{shown}: {error}", file=sys.stderr)
            failed = True
            continue
        codes = decoder.decode(pixels)
        if args.json:
            found = [
                {"text": code.text, "position": [list(p) for p in code.position]} for code in codes
            ]
            print(json.dumps({"file": str(path), "codes": found}, ensure_ascii=True))
        else:
            # As decoded (a code's backslash is one backslash), but no terminal escapes.
            texts = ", ".join(terminal_safe(code.text) for code in codes) or "(no code)"
            print(f"{shown}: {texts}")
    return exitcodes.REFUSED if failed else exitcodes.OK


class _UnreadableImageError(Exception):
    """Why an image file gave no pixels, in the words decode prints."""


def _gray_image(path: Path) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """The file's pixels as 8-bit gray, or _UnreadableImageError saying what is wrong."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("L"), dtype=np.uint8)
    except FileNotFoundError:
        why = "no such file"
    except IsADirectoryError:
        why = "is a folder"
    except PermissionError:
        why = "permission denied"
    except UnidentifiedImageError:  # before OSError: it is one
        why = "not an image"
    # OSError: "image file is truncated"; SyntaxError: a damaged PNG chunk; ValueError: odd modes
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        why = "truncated or damaged image"
    raise _UnreadableImageError(why)


def _device_id(args: argparse.Namespace) -> int:
    from device.app import configured_device_id  # noqa: PLC0415
    from device.identity import device_id  # noqa: PLC0415

    print(configured_device_id(load_config(args.config)) if args.config else device_id())
    return 0


def _sandbox(args: argparse.Namespace) -> int:
    from device import sandbox  # noqa: PLC0415

    try:
        if args.codes:
            sandbox.write_codes(sys.stdout)
        elif args.frames:
            for path in sandbox.write_frames(args.frames):
                print(path)
        else:
            sandbox.serve(args.host, args.port, sandbox.DEMO_TOKEN, sys.stdout)
    except sandbox.SandboxError as error:
        print(f"ticket-scanner: sandbox: {error}", file=sys.stderr)
        return exitcodes.USAGE
    return exitcodes.OK


def _one_request(args: argparse.Namespace) -> int:
    from device.api import AnyRoadClient  # noqa: PLC0415
    from device.app import configured_device_id, make_check  # noqa: PLC0415
    from device.auth import token_source  # noqa: PLC0415
    from device.feedback import screen_for, status_line  # noqa: PLC0415
    from device.tickets import describe_code, log_safe  # noqa: PLC0415
    from device.verdict import decide  # noqa: PLC0415

    config = load_config(args.config)
    device = configured_device_id(config)
    bearer = token_source(config.api)
    client = AnyRoadClient(config.api.base_url, token=bearer, timeout_s=config.api.timeout_s)
    try:
        reply = make_check(client, device)(args.qr_code, args.mode)
    finally:
        client.close()
        bearer.close()
    decision = decide(reply, mode=args.mode, device=device, reentry=config.scan.reentry)
    screen = screen_for(decision, status_line(args.mode, reply.online))
    print(f"{decision.verdict.value}: {screen.text}")
    print(
        f"  ticket={describe_code(args.qr_code)} status={reply.status or '-'} "
        f"code={log_safe(reply.code, 40) or '-'} request_id={log_safe(reply.request_id, 40) or '-'}"
    )
    return exitcodes.for_verdict(decision.verdict, admits=decision.admits)


def _screens(args: argparse.Namespace) -> int:
    from device.gallery import GalleryError, write_gallery, write_sheet  # noqa: PLC0415

    try:
        written = [write_sheet(args.sheet)] if args.sheet else write_gallery(args.out)
    except GalleryError as error:
        print(f"ticket-scanner: screens: {error}", file=sys.stderr)
        return exitcodes.USAGE
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
