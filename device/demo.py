"""``ticket-scanner demo``: the whole product in one command, checking itself as it goes.

A sandbox AnyRoad server on 127.0.0.1, a handheld scanner on the sim backend, and a scripted
camera: staff press the trigger, show a ticket, and the scanner answers. Every verdict in the
vocabulary that a sandbox can produce is played, including verify mode and a server that dies.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

from device.app import ConsolePrinter, build
from device.config import (
    ApiConfig,
    CameraConfig,
    Config,
    HardwareConfig,
    OfflineConfig,
    ScanConfig,
)
from device.loop import Report
from device.sandbox import DEMO_TOKEN, SandboxServer, demo_tickets
from device.sync import Round, SyncWorker
from device.verdicts import Verdict
from hal.files import ImagesSource
from hal.ports import Frame
from hal.sim import SimTrigger

FPS = 30
FRAME_SIZE = (640, 480)
SHOW_FRAMES = 12  # the ticket is in view 0.4 s
GAP_FRAMES = 45  # 1.5 s between guests: the last verdict's screen, then ready again
LONG_PRESS_FRAMES = 60  # 2 s: past the scanner's long-press threshold


@dataclass(frozen=True)
class Scene:
    """One guest (or one staff action) and the verdict the scanner must give."""

    label: str
    code: str | None
    expect: Verdict | None
    long_press: bool = False  # hold the trigger first: switch scan <-> verify
    server_down: bool = False  # stop the sandbox first


def scenes() -> list[Scene]:
    """The script: every verdict a guest can get from the sandbox, then a dead server.

    After the last scene the server comes back and the queued scan is delivered.
    """
    codes = {ticket.case: ticket.qr_code for ticket in demo_tickets()}
    return [
        Scene("a guest with a valid ticket", codes["admitted"], Verdict.ADMITTED),
        Scene("the same ticket again", codes["admitted"], Verdict.ALREADY_SCANNED),
        Scene("a ticket used at gate-2", codes["already_scanned"], Verdict.ALREADY_SCANNED),
        Scene("a canceled booking", codes["canceled"], Verdict.CANCELED),
        Scene("tomorrow's ticket", codes["too_early"], Verdict.TOO_EARLY),
        Scene("yesterday's ticket", codes["too_late"], Verdict.TOO_LATE),
        Scene("a restaurant menu QR", "https://example.com/menu?table=7", Verdict.INVALID),
        Scene("verify mode (long press)", codes["admitted_2"], Verdict.VALID, long_press=True),
        Scene("back to scan mode", codes["admitted_2"], Verdict.ADMITTED, long_press=True),
        Scene(
            "the server goes down: accepted offline, queued",
            codes["admitted_3"],
            Verdict.ACCEPTED_OFFLINE,
            server_down=True,
        ),
        Scene("the same ticket again, offline", codes["admitted_3"], Verdict.ALREADY_SCANNED),
    ]


class ScriptedSource:
    """Plays the frames and, as each scene's first frame comes up, does what the scene says."""

    def __init__(self, frames: ImagesSource, actions: dict[int, Callable[[], None]]) -> None:
        self._frames = frames
        self._actions = dict(sorted(actions.items()))

    def newest(self) -> Frame | None:
        frame = self._frames.newest()
        if frame is not None:
            for index in [i for i in self._actions if i <= frame.index]:
                self._actions.pop(index)()
        return frame

    def next_due(self) -> float | None:
        return self._frames.next_due()

    def wait_for_frame(self, timeout: float) -> bool:
        return self._frames.wait_for_frame(timeout)

    @property
    def finished(self) -> bool:
        return self._frames.finished

    @property
    def dropped(self) -> int:
        return self._frames.dropped

    def close(self) -> None:
        self._frames.close()


def write_frames(folder: Path, script: list[Scene]) -> dict[int, Scene]:
    """One PNG per distinct picture, hard-linked into the frame sequence; scene start indexes."""
    blank = folder / "blank.png"
    _camera_view(None).save(blank)
    starts: dict[int, Scene] = {}
    index = 0

    def add(picture: Path, count: int) -> None:
        nonlocal index
        for _ in range(count):
            os.link(picture, folder / f"frame{index:05d}.png")
            index += 1

    add(blank, GAP_FRAMES // 3)
    for number, scene in enumerate(script):
        starts[index] = scene
        if scene.long_press:
            add(blank, LONG_PRESS_FRAMES)
        if scene.code is not None:
            picture = folder / f"ticket{number:02d}.png"
            _camera_view(scene.code).save(picture)
            add(picture, SHOW_FRAMES)
        add(blank, GAP_FRAMES)
    blank.unlink()
    return starts


def _camera_view(code: str | None) -> Image.Image:
    """A grey scene with, optionally, a phone screen showing the code."""
    import zxingcpp  # noqa: PLC0415 - only the demo draws codes

    view = Image.new("L", FRAME_SIZE, 96)
    if code is not None:
        symbol = zxingcpp.create_barcode(code, zxingcpp.BarcodeFormat.QRCode)
        pixels = np.asarray(zxingcpp.write_barcode_to_image(symbol, scale=6))
        tile = Image.fromarray(pixels.astype(np.uint8))
        screen = Image.new("L", (tile.width + 40, tile.height + 80), 250)
        screen.paste(tile, (20, 40))
        view.paste(
            screen, ((FRAME_SIZE[0] - screen.width) // 2, (FRAME_SIZE[1] - screen.height) // 2)
        )
    return view


def run_demo(
    out: TextIO,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    events: Path | None = None,
) -> int:
    """Play the script; 0 when every verdict was the expected one."""
    script = scenes()
    reports: list[Report] = []
    with tempfile.TemporaryDirectory(prefix="ticket-scanner-demo-") as tmp:
        folder = Path(tmp)
        starts = write_frames(folder, script)
        sandbox = SandboxServer().start()
        try:
            config = Config(
                api=ApiConfig(base_url=sandbox.url, token_file=folder / "unused", timeout_s=1.0),
                camera=CameraConfig(source=f"images:{folder}", fps=FPS),
                scan=ScanConfig(repeat_window_s=1.0),
                hardware=HardwareConfig(backend="sim", events=str(events or ""), result_hold_s=1.2),
                offline=OfflineConfig(journal=folder / "journal.db"),
                path=Path("<demo>"),
            )
            print(f"sandbox AnyRoad server on {sandbox.url}", file=out)
            trigger = SimTrigger()
            frames = ImagesSource(folder, fps=FPS, clock=clock)
            source = ScriptedSource(frames, _actions(starts, trigger, sandbox))
            printer = ConsolePrinter(out, draw_screen=True)
            with build(
                config,
                observers=[printer, reports.append],
                clock=clock,
                sleep=sleep,
                token=DEMO_TOKEN,
                source=source,
                trigger=trigger,
            ) as running:
                _narrate(out, running.loop.settings.device_id)
                running.loop.run(threading.Event())
                delivered = _server_comes_back(out, sandbox, running.sync)
        finally:
            sandbox.stop()
    return _summary(out, script, reports, delivered)


def _server_comes_back(out: TextIO, sandbox: SandboxServer, sync: SyncWorker) -> Round:
    """A sandbox on the old address again (fresh state), and one delivery round."""
    port = urlsplit(sandbox.url).port or 0
    back = SandboxServer(port=port).start()
    try:
        result = sync.deliver_round()
    finally:
        back.stop()
    print(
        f"server back: {result.delivered} queued scan delivered, {result.conflicts} conflicts, "
        f"{result.remaining} still queued",
        file=out,
    )
    return result


def _actions(
    starts: dict[int, Scene], trigger: SimTrigger, sandbox: SandboxServer
) -> dict[int, Callable[[], None]]:
    """At each scene's start: maybe stop the server or hold the trigger; then a short press."""
    actions: dict[int, Callable[[], None]] = {}

    def press(down: bool) -> Callable[[], None]:
        def act() -> None:
            trigger.pressed = down

        return act

    for start, scene in starts.items():
        at = start
        if scene.server_down:
            actions[at - 1] = sandbox.stop
        if scene.long_press:
            actions[at] = press(True)
            actions[at + LONG_PRESS_FRAMES - 2] = press(False)
            at += LONG_PRESS_FRAMES
        actions[at] = press(True)
        actions[at + 2] = press(False)
    return actions


def _narrate(out: TextIO, device: str) -> None:
    print(
        f"device id {device}; a handheld on the sim backend, trigger pressed for each guest",
        file=out,
    )
    print("verdict          mode   ticket                   screen          latency", file=out)


def _summary(out: TextIO, script: list[Scene], reports: list[Report], sync: Round) -> int:
    expected = [scene.expect for scene in script if scene.expect is not None]
    shown = [report.decision.verdict for report in reports]
    if shown != expected:
        print(
            "demo FAILED: expected " + ", ".join(expected) + " but got " + ", ".join(shown),
            file=out,
        )
        return 1
    if (sync.delivered, sync.conflicts, sync.remaining) != (1, 0, 0):
        print("demo FAILED: the queued scan was not delivered cleanly", file=out)
        return 1
    print(f"demo finished: {len(shown)} verdicts, each as expected; the queue synced", file=out)
    return 0
