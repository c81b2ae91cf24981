"""``ticket-scanner demo``: the whole product in one command, checking itself as it goes.

A sandbox AnyRoad server on 127.0.0.1, a handheld scanner on the sim backend, and a scripted
camera: staff press the trigger, show a ticket, and the scanner answers. Every verdict in the
vocabulary that a sandbox can produce is played, including verify mode and a server that dies.
It prints a story a gate lead can follow: each guest (``>``), the scanner's verdict in words
(screen, light, sound, latency), and what staff and the server do (``*``); ``screens`` adds the
OLED drawn in the terminal.
"""

from __future__ import annotations

import sys
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

from device.app import build
from device.config import (
    ApiConfig,
    CameraConfig,
    Config,
    DeviceConfig,
    HardwareConfig,
    Mode,
    OfflineConfig,
    ScanConfig,
)
from device.loop import Report
from device.narration import VerdictPrinter
from device.sandbox import DEMO_TOKEN, SandboxServer, demo_tickets
from device.sync import Round, SyncWorker
from device.verdicts import Verdict
from hal.files import frames_due
from hal.ports import Frame, GrayPixels

FPS = 30
FRAME_SIZE = (640, 480)
DEMO_DEVICE_ID = "demo-gate-1"  # the demo needs no real id (an image or container has none)
SHORT_PRESS_S = 0.1
LONG_PRESS_S = 2.0  # past the scanner's long-press threshold (1.5 s)
GAP_S = 1.5  # after each verdict: its screen, then ready again, past the repeat window
# The demo's output marks who acts: a guest (the story), the scanner (indented), staff or the world.
GUEST, SCANNER, STAFF = "> ", "  ", "* "
MODE_WORDS: dict[Mode, str] = {
    "verify": "verify mode: tickets are checked, guests are not checked in",
    "scan": "scan mode: each guest is checked in",
}


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
    menu = "https://example.com/menu?table=7"
    return [
        Scene("a guest with a valid ticket", codes["admitted"], Verdict.ADMITTED),
        Scene("the same guest shows it again", codes["admitted"], Verdict.ALREADY_SCANNED),
        Scene("a ticket already used at gate-2", codes["already_scanned"], Verdict.ALREADY_SCANNED),
        Scene("a guest whose booking was canceled", codes["canceled"], Verdict.CANCELED),
        Scene("a guest with tomorrow's ticket", codes["too_early"], Verdict.TOO_EARLY),
        Scene("a guest with yesterday's ticket", codes["too_late"], Verdict.TOO_LATE),
        Scene("a guest shows a restaurant menu QR", menu, Verdict.INVALID),
        Scene(
            "a guest asks if their ticket is good",
            codes["admitted_2"],
            Verdict.VALID,
            long_press=True,
        ),
        Scene("the same guest goes in", codes["admitted_2"], Verdict.ADMITTED, long_press=True),
        Scene(
            "a guest arrives while AnyRoad is down",
            codes["admitted_3"],
            Verdict.ACCEPTED_OFFLINE,
            server_down=True,
        ),
        Scene("the same guest shows it again", codes["admitted_3"], Verdict.ALREADY_SCANNED),
    ]


class StaffTrigger:
    """The trigger as staff press it: held for a time measured from when the scanner saw it.

    Scripted presses tied to wall-clock times or frame numbers can be missed by a loop that
    runs late on a busy machine (a press and its release inside one pass). Here a press lasts
    until the loop has read it pressed at least ``hold_s`` after its first read, so every press
    is seen, and a long press is seen long, however late the loop runs.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._hold_s: float | None = None  # a press under way
        self._first_read: float | None = None
        self._held_long_enough = False

    def press(self, hold_s: float) -> None:
        self._hold_s, self._first_read, self._held_long_enough = hold_s, None, False

    @property
    def seen(self) -> bool:
        """The scanner has read the current (or last) press."""
        return self._first_read is not None

    @property
    def released(self) -> bool:
        return self._hold_s is None

    @property
    def pressed(self) -> bool:
        if self._hold_s is None:
            return False
        now = self._clock()
        if self._first_read is None:
            self._first_read = now
        elif self._held_long_enough:
            self._hold_s = None  # the scanner saw it held for hold_s: let go
            return False
        if now - self._first_read >= self._hold_s:
            self._held_long_enough = True
        return True

    def close(self) -> None:
        """Nothing to release."""


class SceneCamera:
    """A simulated camera playing the script at ``FPS``: staff act, the guest shows a ticket.

    Each scene waits for the scanner, not for the clock: the ticket comes into view once the
    trigger press was seen and leaves when its verdict is shown (``shown``), then ``GAP_S`` of
    empty frames. So the demo plays the same on a loaded machine or under emulation.
    ``narrate`` gets the story's lines: staff actions and each guest, as they happen.
    """

    def __init__(
        self,
        script: list[Scene],
        trigger: StaffTrigger,
        *,
        clock: Callable[[], float],
        stop_server: Callable[[], None],
        narrate: Callable[[str], None],
    ) -> None:
        self._script = list(script)
        self._trigger = trigger
        self._clock = clock
        self._stop_server = stop_server
        self._narrate = narrate
        self._pictures = {code: _camera_view(code) for code in {s.code for s in script} if code}
        self._blank = _camera_view(None)
        self._start: float | None = None
        self._next = 0  # the next frame's index
        self._dropped = 0
        self._scene = -1
        self._phase = "gap"
        self._phase_until = 0.0  # the end of a gap
        self._mode: Callable[[], Mode] = lambda: "scan"

    def watch_mode(self, mode: Callable[[], Mode]) -> None:
        """Read the scanner's mode after a long press, to say what it did, not what was meant."""
        self._mode = mode

    def shown(self, report: Report) -> None:
        """An observer of the loop: the current scene's guest has had a verdict."""
        if self._phase == "show":
            self._phase, self._phase_until = "gap", self._clock() + GAP_S

    def newest(self) -> Frame | None:
        now = self._clock()
        if self._start is None:
            self._start, self._phase_until = now, now + GAP_S / 3
        due = frames_due(self._start, FPS, now, limit=sys.maxsize)
        if due <= self._next or self.finished:
            return None
        self._advance(now)
        index = due - 1
        self._dropped += index - self._next
        self._next = due
        pixels = self._blank
        if self._phase == "show":
            code = self._script[self._scene].code
            pixels = self._pictures[code] if code else self._blank
        return Frame(pixels=pixels, captured_at=self._start + index / FPS, index=index)

    def _advance(self, now: float) -> None:
        """Move the script on as far as what the scanner has done allows."""
        scene = self._script[self._scene] if self._scene >= 0 else None
        if self._phase == "gap" and now >= self._phase_until:
            self._scene += 1
            if self._scene >= len(self._script):
                self._phase = "done"
                return
            scene = self._script[self._scene]
            self._start_scene(scene)
        if self._phase == "long_press" and self._trigger.released and scene is not None:
            self._narrate(
                f"{STAFF}staff hold the trigger {LONG_PRESS_S:g} s; now in {self._mode_words()}"
            )
            self._show_guest(scene)
        if self._phase == "press" and self._trigger.seen and scene is not None:
            self._phase = "show" if scene.code is not None else "gap"
            self._phase_until = now + GAP_S

    def _start_scene(self, scene: Scene) -> None:
        if scene.server_down:
            self._narrate(f"{STAFF}the AnyRoad server goes down")
            self._stop_server()
        if scene.long_press:
            self._phase = "long_press"
            self._trigger.press(LONG_PRESS_S)
        else:
            self._show_guest(scene)

    def _show_guest(self, scene: Scene) -> None:
        """The guest steps up and staff press the trigger for their ticket."""
        self._narrate(GUEST + scene.label)
        self._phase = "press"
        self._trigger.press(SHORT_PRESS_S)

    def _mode_words(self) -> str:
        mode = self._mode()
        return MODE_WORDS.get(mode, f"{mode} mode")

    def next_due(self) -> float | None:
        if self.finished:
            return None
        if self._start is None:
            return self._clock()
        return self._start + self._next / FPS

    def wait_for_frame(self, timeout: float) -> bool:
        return False  # paced on the loop's clock, which sleeps until next_due()

    @property
    def finished(self) -> bool:
        return self._phase == "done"

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def skipped(self) -> int:
        return 0  # every frame it delivers was readable

    def close(self) -> None:
        """Nothing to release."""


def camera_picture(code: str | None) -> Image.Image:
    """A grey scene with, optionally, a phone screen showing the code, as the camera sees it."""
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


def _camera_view(code: str | None) -> GrayPixels:
    return np.asarray(camera_picture(code), dtype=np.uint8)


def run_demo(
    out: TextIO,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    events: Path | None = None,
    screens: bool = False,
) -> int:
    """Play the script; 0 when every verdict was the expected one.

    ``screens``: also draw the OLED for every verdict.
    """
    script = scenes()
    reports: list[Report] = []
    with tempfile.TemporaryDirectory(prefix="ticket-scanner-demo-") as tmp:
        folder = Path(tmp)
        sandbox = SandboxServer().start()
        try:
            config = Config(
                api=ApiConfig(base_url=sandbox.url, token_file=folder / "unused", timeout_s=1.0),
                camera=CameraConfig(fps=FPS),
                scan=ScanConfig(repeat_window_s=1.0),
                device=DeviceConfig(id=DEMO_DEVICE_ID),
                hardware=HardwareConfig(backend="sim", events=str(events or ""), result_hold_s=1.2),
                offline=OfflineConfig(journal=folder / "journal.db"),
                path=Path("<demo>"),
            )
            trigger = StaffTrigger(clock)
            camera = SceneCamera(
                script,
                trigger,
                clock=clock,
                stop_server=sandbox.stop,
                narrate=lambda line: print(line, file=out, flush=True),
            )
            printer = VerdictPrinter(out, screens=screens, indent=SCANNER)
            with build(
                config,
                observers=[printer, reports.append, camera.shown],
                clock=clock,
                sleep=sleep,
                token=DEMO_TOKEN,
                source=camera,
                trigger=trigger,
            ) as running:
                _introduce(out, sandbox.url, running.loop.settings.device_id)
                camera.watch_mode(lambda: running.loop.mode)
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
        f"{STAFF}the AnyRoad server is back: {result.delivered} queued scan delivered, "
        f"{result.conflicts} conflicts, {result.remaining} still queued",
        file=out,
    )
    return result


def _introduce(out: TextIO, url: str, device: str) -> None:
    """Who is who in the lines that follow, for someone who has not read the code."""
    print(f"sandbox AnyRoad server on {url}", file=out)
    print(
        f"scanner {device}: a handheld on the sim backend, its trigger pressed for each guest",
        file=out,
    )
    # Neither starts with GUEST: every line that does is a guest.
    print(
        f"Each guest ({GUEST.strip()}), then the scanner's verdict: screen, light, sound, "
        "time taken.",
        file=out,
    )
    print(f"In between ({STAFF.strip()}), what staff and the server do.", file=out)


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
