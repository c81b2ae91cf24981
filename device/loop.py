"""The scan loop: newest frame, decode, debounce, decide, feedback. ``step()`` is one pass."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from device.api import Reply
from device.checkin import Outcome
from device.config import Mode, Reentry
from device.decode import Decoded, Decoder
from device.events import Emit, ignore
from device.feedback import (
    CHECKING_AFTER_S,
    FeedbackPlayer,
    checking_cues,
    checking_screen,
    cues_for,
    ready_screen,
    screen_for,
    status_line,
)
from device.inflight import Dispatch, InFlight, inline
from device.journal import QueueState
from device.screens import Screen
from device.tickets import describe_code, log_safe
from device.verdict import Decision
from hal.ports import Frame, FrameSource, Trigger

log = logging.getLogger(__name__)

CheckIn = Callable[[str, Mode], Outcome]
LONG_PRESS_S = 1.5  # hold the trigger this long to switch between scan and verify
ARMED_AFTER_RELEASE_S = 5.0  # a short press keeps the camera looking this long


@dataclass(frozen=True)
class Report:
    """One verdict as it was shown, for observers (console, tests)."""

    code: str
    mode: Mode
    decision: Decision
    reply: Reply
    screen: Screen
    latency_ms: float  # capture to verdict feedback
    attempt: int | None = None  # the journal row
    first_feedback_ms: float = 0.0  # decode to the first thing shown: CHECKING or the verdict
    verdict_ms: float = 0.0  # decode to the verdict
    checking_shown: bool = False  # CHECKING came first: AnyRoad took over CHECKING_AFTER_S


@dataclass(frozen=True)
class LoopSettings:
    device_id: str
    mode: Mode = "scan"
    reentry: Reentry = "warn"
    repeat_window_s: float = 3.0
    hold_s: float = 2.0
    relay_pulse_s: float | None = None  # set on a door unit
    idle_poll_s: float = 0.01  # how often to look again when nothing says when to


class Debouncer:
    """A code seen again within ``window_s`` of its last sighting is the same presentation."""

    def __init__(self, window_s: float) -> None:
        self._window_s = window_s
        self._last_seen: dict[str, float] = {}

    def new_codes(self, codes: Iterable[str], now: float) -> list[str]:
        """Record sightings; return the codes that start a new presentation."""
        self._forget_older_than(now - self._window_s)
        fresh = [code for code in dict.fromkeys(codes) if code not in self._last_seen]
        self.touch(codes, now)
        return fresh

    def touch(self, codes: Iterable[str], now: float) -> None:
        for code in codes:
            self._last_seen[code] = now

    def _forget_older_than(self, horizon: float) -> None:
        self._last_seen = {code: t for code, t in self._last_seen.items() if t >= horizon}


@dataclass
class TriggerTracker:
    """Turns a polled button into "armed" (look for tickets) and long presses (switch mode)."""

    pressed_since: float | None = None
    armed_until: float = 0.0
    long_press_done: bool = False

    def update(self, pressed: bool, now: float) -> Literal["long_press"] | None:
        if pressed and self.pressed_since is None:
            self.pressed_since, self.long_press_done = now, False
        elif not pressed and self.pressed_since is not None:
            self.pressed_since = None
            if not self.long_press_done:
                self.armed_until = now + ARMED_AFTER_RELEASE_S
        since = self.pressed_since
        if since is not None and not self.long_press_done and now - since >= LONG_PRESS_S:
            self.long_press_done = True
            return "long_press"
        return None

    def armed(self, now: float) -> bool:
        holding = self.pressed_since is not None and not self.long_press_done
        return holding or now < self.armed_until

    def disarm(self) -> None:
        """One ticket per pull of the trigger."""
        self.armed_until = 0.0
        if self.pressed_since is not None:
            self.long_press_done = True


@dataclass
class ScanLoop:
    """Reads frames and answers each new code with a verdict, forever or until a source ends."""

    source: FrameSource
    decoder: Decoder
    checkin: CheckIn
    player: FeedbackPlayer
    settings: LoopSettings
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    trigger: Trigger | None = None  # handheld: scan only when the trigger says so
    emit: Emit = ignore
    observers: Sequence[Callable[[Report], None]] = ()
    queue_state: Callable[[], QueueState] = lambda: QueueState(0, 0)
    # Called after every pass: systemd's watchdog and readiness, the updater's activity file.
    on_pass: Callable[[ScanLoop], None] = lambda _: None
    online: bool | None = None
    # Has AnyRoad ever answered this configuration? If not, the status line says so.
    api_proven: Callable[[], bool] = lambda: True
    # Where check-ins run: off this thread in the product, so CHECKING can show meanwhile.
    dispatch: Dispatch = inline
    mode: Mode = field(init=False)

    def __post_init__(self) -> None:
        self.mode = self.settings.mode
        self._debounce = Debouncer(self.settings.repeat_window_s)
        self._trigger_state = TriggerTracker()
        self.frames_decoded = 0
        self.last_frame_at: float | None = None  # loop clock: when the newest frame was captured
        self.last_code_at: float | None = None  # and the newest one with a code in view
        self.queue = self.queue_state()  # replaced whole by the sync worker's thread too

    def ready(self) -> Screen:
        """The idle screen as it should look right now."""
        armed = self.trigger is None or self._trigger_state.armed(self.clock())
        return ready_screen(self._status(), armed=armed)

    def run(self, stop: threading.Event) -> None:
        """Step until ``stop`` is set or a finite source has been played to the end."""
        self.player.show(self.ready())
        while not stop.is_set() and self.step():
            pass
        self.emit(
            {
                "event": "stopped",
                "frames": self.frames_decoded,
                "dropped": self.source.dropped,
                # A folder of images counts the files it could not read (hal.files); 0 left out.
                **({"skipped": n} if (n := self.source.skipped) else {}),
            }
        )

    def step(self) -> bool:
        """One pass; False once the source is finished and the last feedback has played."""
        going = self._pass()
        self.on_pass(self)
        return going

    def _pass(self) -> bool:
        now = self.clock()
        self.player.tick(now)
        self._poll_trigger(now)
        frame = self.source.newest()
        if frame is None:
            if self.source.finished and self.player.next_due() is None:
                return False
            self._idle(now)
            return True
        self.last_frame_at = frame.captured_at
        if self.trigger is None or self._trigger_state.armed(now):
            self._look_at(frame)
        return True

    def _look_at(self, frame: Frame) -> None:
        codes = [found.text for found in self._decode(frame)]
        if codes:
            self.last_code_at = frame.captured_at
        if self.frames_decoded == 0:  # start-up time is measured up to here (make bench)
            self.emit({"event": "first_frame", "index": frame.index})
            log.info("first frame decoded index=%d", frame.index)
        self.frames_decoded += 1
        fresh = self._debounce.new_codes(codes, frame.captured_at)
        if fresh:
            self._answer(fresh[0], frame)
            # A slow answer must not turn the code still in view into a second scan.
            self._debounce.touch(codes, self.clock())

    def _decode(self, frame: Frame) -> list[Decoded]:
        try:
            return self.decoder.decode(frame.pixels)
        except Exception:  # a decoder bug on one frame must not stop the gate
            log.exception("decode failed frame=%d", frame.index)
            return []

    def _status(self) -> str:
        queue = self.queue
        return status_line(
            self.mode,
            self.online,
            queued=queue.queued,
            conflicts=queue.conflicts,
            proven=self.api_proven(),
        )

    def _answer(self, code: str, frame: Frame) -> None:
        self.player.interrupt()
        decoded_at, mode = self.clock(), self.mode
        in_flight = self.dispatch(lambda: self.checkin(code, mode))  # journaled before shown
        outcome, checking_at = self._await(in_flight, decoded_at)
        reply, decision = outcome.reply, outcome.decision
        if outcome.asked:
            self.online = reply.online
        self.queue = self.queue_state()
        screen = screen_for(decision, self._status())
        cues = cues_for(
            decision,
            screen,
            hold_s=self.settings.hold_s,
            relay_pulse_s=self.settings.relay_pulse_s,
            reentry=self.settings.reentry,
        )
        started = self.clock()
        self.player.play(cues, started)
        self._trigger_state.disarm()
        latency_ms = (started - frame.captured_at) * 1000
        verdict_ms = (started - decoded_at) * 1000
        first_feedback_ms = verdict_ms if checking_at is None else (checking_at - decoded_at) * 1000
        report = Report(
            code,
            mode,
            decision,
            reply,
            screen,
            latency_ms,
            outcome.attempt,
            first_feedback_ms=first_feedback_ms,
            verdict_ms=verdict_ms,
            checking_shown=checking_at is not None,
        )
        self._publish(report)

    def _await(
        self, in_flight: InFlight[Outcome], decoded_at: float
    ) -> tuple[Outcome, float | None]:
        """The outcome, with CHECKING shown if it takes longer than ``CHECKING_AFTER_S``.

        Waits in slices so the checking cue starts on time and its tick stops on time.
        Returns when CHECKING was shown (loop clock), None if the answer came first.
        """
        checking_at: float | None = None
        while True:
            now = self.clock()
            if checking_at is None and now >= decoded_at + CHECKING_AFTER_S:
                checking_at = now
                self.player.play(checking_cues(checking_screen(self._status())), now)
                self.emit({"event": "checking", "after_ms": round((now - decoded_at) * 1000, 3)})
            wake = [self.player.next_due()]
            if checking_at is None:
                wake.append(decoded_at + CHECKING_AFTER_S)
            due = [at for at in wake if at is not None]
            if in_flight.wait(max(0.0, min(due) - now) if due else None):
                return in_flight.result(), checking_at
            self.player.tick(self.clock())

    def _publish(self, report: Report) -> None:
        decision, reply = report.decision, report.reply
        self.emit(
            {
                "event": "verdict",
                "verdict": decision.verdict.value,
                "qr_code": report.code,
                "mode": report.mode,
                "latency_ms": round(report.latency_ms, 3),
                "first_feedback_ms": round(report.first_feedback_ms, 3),
                "admits": decision.admits,
                "status": reply.status,
                "code": reply.code,
                "request_id": reply.request_id,
                "attempt": report.attempt,
            }
        )
        log.info(
            "verdict=%s mode=%s ticket=%s status=%s code=%s request_id=%s latency_ms=%.1f",
            decision.verdict.value,
            report.mode,
            describe_code(report.code),
            reply.status or "-",
            log_safe(reply.code, 40) or "-",
            log_safe(reply.request_id, 40) or "-",
            report.latency_ms,
        )
        for observer in self.observers:
            observer(report)

    def _poll_trigger(self, now: float) -> None:
        if self.trigger is None:
            return
        if self._trigger_state.update(self.trigger.pressed, now) == "long_press":
            self.mode = "verify" if self.mode == "scan" else "scan"
            self.emit({"event": "mode", "mode": self.mode})
            log.info("mode=%s (long press)", self.mode)
        self.player.refresh_ready()

    def _idle(self, now: float) -> None:
        self.player.refresh_ready()
        frame_due = self.source.next_due()
        wake = [due for due in (self.player.next_due(), frame_due) if due is not None]
        if self.trigger is not None:
            wake.append(now + self.settings.idle_poll_s)  # a button: poll it
        delay = max(0.0, min(wake) - now) if wake else self.settings.idle_poll_s
        if frame_due is None and not self.source.finished:
            # A live camera: wake the moment its next frame lands, not a poll later.
            self.source.wait_for_frame(delay)
        else:
            self.sleep(delay)
