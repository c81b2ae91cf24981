"""Wiring: a Config becomes a running scan loop (used by ``run`` and ``demo``)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from device.activity import ActivityMarker
from device.api import AnyRoadClient, Reply
from device.api_health import ApiProof, SetupAlarm, api_identity
from device.auth import StaticToken, TokenSource, token_source
from device.checkin import CheckIn
from device.config import Config, ConfigError, Mode
from device.decode import make_decoder
from device.events import Emit, EventLog, ignore
from device.feedback import FeedbackPlayer
from device.identity import NoDeviceIdError, device_id
from device.inflight import BackgroundCheckIns, Dispatch
from device.journal import Journal, JournalError
from device.loop import LoopSettings, Report, ScanLoop
from device.notify import Notifier
from device.probe import first_contact
from device.screens import render, terminal_art
from device.sync import Round, SyncWorker
from device.tickets import describe_code
from hal.factory import Outputs, open_outputs, open_source
from hal.files import ImageFolderError
from hal.ports import FrameSource, Trigger

SYNC_STOP_TIMEOUT_S = 5.0


def make_check(client: AnyRoadClient, device: str) -> Callable[[str, Mode], Reply]:
    """Scan or verify, as the loop's current mode says."""

    def check(code: str, mode: Mode) -> Reply:
        return client.scan(device, code) if mode == "scan" else client.verify(code)

    return check


class ConsolePrinter:
    """One printed line per verdict, and (sim) the OLED drawn in the terminal."""

    def __init__(self, out: TextIO, *, draw_screen: bool) -> None:
        self._out = out
        self._draw_screen = draw_screen

    def __call__(self, report: Report) -> None:
        if self._draw_screen:
            print(terminal_art(render(report.screen, (128, 64))), file=self._out)
        line = (
            f"{report.decision.verdict.value:<16} {report.mode:<6} "
            f"{describe_code(report.code)[:24]:<24} {report.screen.title:<15} "
            f"{report.latency_ms:6.1f} ms"
        )
        print(line, file=self._out, flush=True)


@dataclass
class Running:
    """A built loop, its sync worker, and what must be closed after them."""

    loop: ScanLoop
    source: FrameSource
    outputs: Outputs
    client: AnyRoadClient
    journal: Journal
    sync: SyncWorker
    # Before the first guest, on the sync thread: probe AnyRoad if it never answered this config.
    first_contact: Callable[[], None] = lambda: None

    @contextlib.contextmanager
    def syncing(self) -> Iterator[None]:
        """Run the first contact, then the sync worker, on a thread of their own for the block."""
        stop = threading.Event()

        def work() -> None:
            self.first_contact()
            self.sync.run(stop)

        thread = threading.Thread(target=work, name="sync", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            self.sync.wake()
            thread.join(SYNC_STOP_TIMEOUT_S)  # a request in flight ends by its own timeout


@contextlib.contextmanager
def build(
    config: Config,
    *,
    observers: Sequence[Callable[[Report], None]] = (),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    token: str | None = None,
    source: FrameSource | None = None,
    trigger: Trigger | None = None,
    dispatch: Dispatch | None = None,
) -> Iterator[Running]:
    """Open everything ``config`` names, yield the loop, and close it all afterwards.

    ``source`` and ``trigger`` replace the configured ones (the demo scripts both);
    ``dispatch`` where check-ins run (a worker thread; tests give a fake network delay).
    """
    device = configured_device_id(config)
    # One token source for both clients: one OAuth token, one refresh.
    bearer: TokenSource = StaticToken(token) if token else token_source(config.api)
    client = AnyRoadClient(config.api.base_url, token=bearer, timeout_s=config.api.timeout_s)
    # The sync worker has a client (a requests.Session) of its own: sessions are not
    # shared between threads.
    sync_client = AnyRoadClient(config.api.base_url, token=bearer, timeout_s=config.api.timeout_s)
    with contextlib.ExitStack() as stack:
        stack.callback(bearer.close)
        stack.callback(client.close)
        stack.callback(sync_client.close)
        journal = open_journal(config)
        stack.callback(journal.close)
        emit = _open_events(config, stack)
        decoder = make_decoder(config.scan.decoder, budget_s=config.scan.decode_budget_s)
        outputs = open_outputs(config.hardware, config.device.profile, emit, clock=clock)
        stack.callback(outputs.close)
        outputs.trigger = trigger or outputs.trigger
        source = source or _open_camera(config, clock)
        stack.callback(source.close)
        door = config.device.profile == "door"
        settings = LoopSettings(
            device_id=device,
            mode=config.api.mode,
            reentry=config.scan.reentry,
            repeat_window_s=config.scan.repeat_window_s,
            hold_s=config.hardware.result_hold_s,
            relay_pulse_s=config.hardware.relay_pulse_s if door else None,
        )
        loop: ScanLoop
        player = FeedbackPlayer(
            display=outputs.display,
            lights=outputs.lights,
            beeper=outputs.beeper,
            relay=outputs.relay,
            render=render,
            ready=lambda: loop.ready(),  # noqa: PLW0108 - loop is bound just below
        )
        sync = SyncWorker(
            journal,
            sync_client,
            reentry=config.scan.reentry,
            emit=emit,
            on_change=lambda state: setattr(loop, "queue", state),
        )
        checkin = CheckIn(
            make_check(client, device),
            journal,
            device=device,
            reentry=config.scan.reentry,
            policy=config.offline.policy_for(config.device.profile),
            door=door,
            # A fixed token's hash names the credential: the one token_source already read.
            proof=ApiProof(journal, api_identity(config.api, token=_fixed_token(bearer))),
            alarm=SetupAlarm(config.api.base_url),
            on_answered=sync.wake,
        )
        if dispatch is None:
            background = BackgroundCheckIns()
            stack.callback(background.close)
            dispatch = background
        loop = ScanLoop(
            source=source,
            decoder=decoder,
            checkin=checkin,
            dispatch=dispatch,
            api_proven=lambda: checkin.proof.proven,
            queue_state=journal.state,
            on_pass=_supervision(
                Notifier.from_environment(), ActivityMarker(activity_file(config)), outputs
            ),
            player=player,
            settings=settings,
            clock=clock,
            sleep=sleep,
            trigger=outputs.trigger,
            emit=emit,
            observers=observers,
        )

        def contact() -> None:
            reply = first_contact(sync_client, checkin.proof, checkin.alarm)
            if reply is not None and loop.online is None:  # a guest's answer knows better
                loop.online = reply.online

        yield Running(loop, source, outputs, client, journal, sync, contact)


def _fixed_token(bearer: TokenSource) -> str | None:
    """The token of a StaticToken (no I/O); None for OAuth, named by its client instead."""
    return bearer() if isinstance(bearer, StaticToken) else None


def _open_camera(config: Config, clock: Callable[[], float]) -> FrameSource:
    """The configured frame source; an images: folder that cannot play names its key."""
    try:
        return open_source(config.camera, clock)
    except ImageFolderError as error:
        raise ConfigError(f"{config.path}: [camera] source: {error}") from None


def configured_device_id(config: Config) -> str:
    """The device id, or a config error naming ``[device] id`` when nothing names this machine."""
    try:
        return device_id(config.device.id)
    except NoDeviceIdError as error:
        raise ConfigError(f"{config.path}: [device] id: {error}") from None


def _supervision(
    notifier: Notifier, activity: ActivityMarker, outputs: Outputs
) -> Callable[[ScanLoop], None]:
    """After each loop pass: a failed display retried, READY once a frame was decoded, the
    watchdog, the activity file."""

    def after_pass(loop: ScanLoop) -> None:
        outputs.maintain()
        if loop.frames_decoded:
            notifier.ready()
        notifier.alive(loop.clock(), loop.last_frame_at)
        activity.saw(loop.last_code_at)

    return after_pass


def activity_file(config: Config) -> Path:
    """Beside the journal, in the service's state directory: where the updater looks."""
    return config.offline.journal.parent / "activity"


def sync_once(config: Config, *, token: str | None = None) -> Round:
    """``ticket-scanner sync``: one delivery round over the configured journal.

    Waits for the service's own worker if it is delivering right now.
    """
    bearer: TokenSource = StaticToken(token) if token else token_source(config.api)
    journal = open_journal(config)
    client = AnyRoadClient(config.api.base_url, token=bearer, timeout_s=config.api.timeout_s)
    with contextlib.ExitStack() as stack:
        stack.callback(bearer.close)
        stack.callback(journal.close)
        stack.callback(client.close)
        emit = _open_events(config, stack)
        worker = SyncWorker(journal, client, reentry=config.scan.reentry, emit=emit)
        return worker.deliver_round(wait_for_lock=True)


def _open_events(config: Config, stack: contextlib.ExitStack) -> Emit:
    """The configured events file's emitter, closed with ``stack``; or one that ignores."""
    if not config.hardware.events:
        return ignore
    from device.events import EventsError  # noqa: PLC0415 - only the error path needs it

    try:
        events = EventLog.open(Path(config.hardware.events))
    except EventsError as error:
        raise ConfigError(f"{config.path}: [hardware] events: {error}") from None
    stack.callback(events.close)
    return events.emit


def open_journal(config: Config) -> Journal:
    """The configured journal; a file that cannot be used is a config-time error."""
    try:
        return Journal.open(config.offline.journal)
    except JournalError as error:
        raise ConfigError(f"{config.path}: [offline] journal: {error}") from None
