"""The service loop: camera -> pipeline -> matcher -> decisions -> door and event log.

One ``step`` is one pass of the loop: sample the door inputs, take the newest
frame (older ones were dropped by the camera supervisor), decide, act, log, and
ping the systemd watchdog. The door is locked whenever the camera is down, on
every stop signal, on any exception and at exit; only a Grant opens it, for one
pulse, and only once the grant is in the event log.

Local tools (the web app, the broker client) reach the loop through the control socket
(``control.py``): each step first applies the commands they sent (an unlock pulse, logged
before the relay moves, refused during a lockout or when it cannot be logged), and
publishes a status snapshot and every outcome for them; the loop never waits on them.

The gallery may be busy (another process holds its write lock) or its disk full.
Neither stops the loop: a grant waits for its record up to RECORD_WAIT_S with the
door locked, then is refused as 'denied_unrecorded'; other events wait in memory
and are written, in order, as soon as the gallery takes them again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .access.decision import DecisionMachine, Deny, Grant, Observation
from .access.door import DoorController, DoorEvent
from .access.gpio import open_backend
from .camera import EndOfStream, create_source
from .camera.supervisor import ENDED, CameraSupervisor
from .clock import Clock
from .config import Config
from .control import Command, ControlHub, ControlServer
from .errors import FacegateError, GalleryUnavailableError
from .gallery.enrolment import COLLECTING, COMPLETE, TIMED_OUT, EnrollmentSession, enroll
from .gallery.matcher import Matcher
from .gallery.store import Gallery
from .liveness.calibration import active_head
from .liveness.policy import LivenessChecker
from .notify import Notifier
from .types import Frame
from .vision.pipeline import Pipeline, person_at_the_door

log = logging.getLogger(__name__)

# How long the threaded loop waits for a new frame before it services the door
# and the watchdog anyway: short enough for a 50 ms-debounced exit button.
FRAME_WAIT_S = 0.05
# How long one gallery call may hold up the loop waiting for another process's
# write lock, and how long a grant may wait for its record in all (door locked).
GALLERY_WAIT_S = 0.1
RECORD_WAIT_S = 2.0
# Events kept in memory while the gallery cannot take them; the oldest go first.
BACKLOG_EVENTS = 1000


@dataclass
class Decision:
    """One printable outcome of the loop (a grant, a denial or a door event)."""

    time: float
    kind: str
    person_id: int | None = None
    name: str | None = None
    similarity: float | None = None
    liveness: str = "off"
    liveness_score: float | None = None
    action: str = ""
    reason: str = ""


@dataclass(frozen=True)
class _Record:
    """One entry for the event log, stamped (wall time) when it happened."""

    kind: str
    wall: float
    person_id: int | None
    score: float | None
    liveness: float | None
    reason: str | None


@dataclass(frozen=True)
class _PendingGrant:
    decision: Decision
    record: _Record
    deadline: float  # clock time after which the grant is refused


@dataclass
class RunSummary:
    frames: int = 0
    kinds: Counter = field(default_factory=Counter)

    def line(self, dropped: int) -> str:
        counts = ", ".join(f"{k} {n}" for k, n in sorted(self.kinds.items())) or "no decisions"
        return f"{self.frames} frames analysed, {dropped} dropped; {counts}"


class Daemon:
    def __init__(
        self,
        *,
        pipeline: Pipeline,
        matcher: Matcher,
        gallery: Gallery,
        decision: DecisionMachine,
        door: DoorController,
        camera: CameraSupervisor,
        enrollment: EnrollmentSession,
        notifier: Notifier,
        clock: Clock,
        liveness: LivenessChecker | None = None,
        threaded: bool = True,
        report: Callable[[Decision], None] | None = None,
        control: ControlHub | None = None,
        control_server: ControlServer | None = None,
    ):
        self.pipeline = pipeline
        self.matcher = matcher
        self.gallery = gallery
        self.decision = decision
        self.door = door
        self.camera = camera
        self.enrollment = enrollment
        self.notifier = notifier
        self.clock = clock
        self.liveness = liveness
        self.threaded = threaded
        self._report = report or (lambda decision: None)
        self.control = control
        self.control_server = control_server
        self.summary = RunSummary()
        self._last_seq = 0
        self._last_frame_time: float | None = None
        self._stop = False
        self._ended = False
        self._status = ""
        self._camera_was_ok = True
        self._pending: _PendingGrant | None = None
        self._backlog: deque[_Record] = deque(maxlen=BACKLOG_EVENTS)
        self._publish_status()  # a tool that connects before the first step sees the door

    # --- lifecycle ----------------------------------------------------------------

    def request_stop(self) -> None:
        """Lock now, for good, and leave the loop at the end of this step (the signal
        handlers call this between any two bytecodes of the loop)."""
        self.door.lock_for_good()
        self._stop = True

    @property
    def running(self) -> bool:
        return not (self._stop or self._ended)

    def run(self, after_step: Callable[[], None] | None = None) -> None:
        """Loop until stopped or a finite camera (replay) ends; always locks on the way out.

        ``after_step`` runs after each pass (the demo advances its simulated clock).
        """
        if self.threaded:
            self.camera.start()
        self.notifier.ready()
        try:
            while self.running:
                self.step()
                if after_step is not None:
                    after_step()
            self._wind_up()
        except BaseException:
            self.door.lock_now()
            raise
        finally:
            self.notifier.stopping()
            self.camera.stop()
            self.door.close()
            self.gallery.close()
            if self.control_server is not None:
                self.control_server.close()

    # --- one pass -------------------------------------------------------------------

    def step(self) -> None:
        self._apply_commands()
        now = self.clock.now()
        for event in self.door.tick(now):
            self._door_event(event)
        self._catch_up()
        frame = self._next_frame()
        camera = self.camera.status
        if not camera.ok and camera.state != ENDED:
            if self._camera_was_ok:
                self.door.lock_now()
                if self._last_frame_time is not None:
                    # Dated in frame time, the decision machine's only time base: the
                    # clock may be ahead of the frames (a replay stamps its own).
                    self.decision.camera_down(self._last_frame_time, camera.reason)
                if self.liveness is not None:
                    self.liveness.reset()
            self._camera_was_ok = False
            self._set_status(f"camera {camera.state}: {camera.reason}; door locked")
            frame = None  # read before the failure; nothing is decided while it is down
        else:
            self._camera_was_ok = True
        if frame is not None:
            try:
                self._analyse(frame)
                if self._pending is None and not self._backlog:
                    self._set_status(f"ok; {len(self.matcher)} templates")
            except GalleryUnavailableError as exc:  # a read gave up: this frame decides nothing
                self._set_status(f"{exc}; door locked")
        self._publish_status()
        self.notifier.ping(self.clock.now())

    def _next_frame(self) -> Frame | None:
        if self.threaded:
            try:
                frame = self.camera.wait(self._last_seq, timeout=FRAME_WAIT_S)
            except EndOfStream:
                self._ended = True
                return None
        else:
            self.camera.poll_once()
            frame = self.camera.latest(self._last_seq)
            if frame is None and self.camera.status.state == ENDED:
                self._ended = True
        if frame is not None:
            self._last_seq = frame.seq
            self._last_frame_time = frame.timestamp
        return frame

    def _analyse(self, frame: Frame) -> None:
        self.summary.frames += 1
        results = self.pipeline.analyse(frame)
        subject = person_at_the_door(results)
        liveness = None
        if subject is not None and self.liveness is not None:
            liveness = self.liveness.check(frame, subject.face, subject.mesh)
        if self.enrollment.state == COLLECTING:
            self.enrollment.offer(results, liveness)
            return
        if self.enrollment.state in (COMPLETE, TIMED_OUT):
            self._finish_enrollment(frame.timestamp)
        if subject is None:
            return
        match = self.matcher.match(subject.embedding)
        if match.person_id is not None:
            self._maybe_authorise(match.person_id)
        observation = Observation(
            frame.timestamp,
            match.person_id,
            match.name,
            match.similarity,
            liveness=liveness.verdict if liveness else None,
            reasons=liveness.reasons if liveness else (),
        )
        verdict = liveness.verdict if liveness else "off"
        score = liveness.score if liveness else None
        for command in self.decision.observe(observation, self.clock.wall()):
            if isinstance(command, Grant):
                self._grant(
                    Decision(
                        command.time,
                        command.kind,
                        command.person_id,
                        command.name,
                        command.similarity,
                        liveness=verdict,
                        liveness_score=score,
                        action="unlock",
                    )
                )
            elif isinstance(command, Deny):
                self._log(
                    Decision(
                        command.time,
                        command.kind,
                        command.person_id,
                        command.name or match.name,
                        command.similarity,
                        liveness=verdict,
                        liveness_score=score,
                        action="stay locked",
                        reason=command.reason,
                    )
                )

    # --- side effects ---------------------------------------------------------------

    def _grant(self, decision: Decision) -> None:
        """Record first, then pulse: the door never opens without its audit record."""
        if self._stop:
            return  # a stop signal came: nothing opens the door any more
        if self._pending is not None:
            self._refuse(self._pending, "another grant came before it was recorded")
        deadline = self.clock.now() + RECORD_WAIT_S
        self._pending = _PendingGrant(decision, self._record(decision), deadline)
        self._catch_up()

    def _catch_up(self) -> None:
        """Write what waits for the gallery: the backlog, then a pending grant, which
        opens the door once written or is refused once past its deadline."""
        pending = self._pending
        if self._stop or (pending is None and not self._backlog):
            return  # stopping: wind_up deals with what is left
        try:
            self._flush()
            if pending is not None:
                self._write(pending.record)
        except GalleryUnavailableError as exc:
            if pending is not None and not self.clock.now() < pending.deadline:
                self._refuse(pending, str(exc))
            else:
                self._set_status(f"{exc}; door locked, events kept in memory")
            return
        if pending is not None:
            self._pending = None
            self.door.grant(self.clock.now())
            self._count(pending.decision)

    def _wind_up(self) -> None:
        """At the end of a run: refuse a grant still waiting for its record, and give
        the backlog a last chance; say what could not be written."""
        if self._pending is not None:
            self._refuse(self._pending, "the service stopped first")
        try:
            self._flush()
        except GalleryUnavailableError as exc:
            self._tell(
                Decision(
                    self.clock.now(),
                    "events_lost",
                    action="-",
                    reason=f"{len(self._backlog)} event(s) never written: {exc}",
                )
            )

    def _refuse(self, pending: _PendingGrant, why: str) -> None:
        self._pending = None
        self._log(
            replace(
                pending.decision,
                kind="denied_unrecorded",
                action="stay locked",
                reason=f"the grant could not be recorded: {why}",
            )
        )

    def _log(self, decision: Decision) -> None:
        """Record a decision in the event log (or the backlog) and the summary; report it."""
        self._backlog.append(self._record(decision))
        try:
            self._flush()
        except GalleryUnavailableError as exc:
            note = f"not in the event log yet: {exc}"
            decision = replace(
                decision, reason=f"{decision.reason}; {note}" if decision.reason else note
            )
        self._count(decision)

    def _record(self, decision: Decision) -> _Record:
        return _Record(
            decision.kind,
            self.clock.wall(),
            decision.person_id,
            decision.similarity,
            decision.liveness_score,
            decision.reason or None,
        )

    def _flush(self) -> None:
        """Write the backlog, oldest first; what cannot be written stays."""
        while self._backlog:
            self._write(self._backlog[0])
            self._backlog.popleft()

    def _write(self, record: _Record) -> None:
        self.gallery.log_event(
            record.kind,
            record.wall,
            person_id=record.person_id,
            score=record.score,
            liveness=record.liveness,
            reason=record.reason,
        )

    def _count(self, decision: Decision) -> None:
        self.summary.kinds[decision.kind] += 1
        self._tell(decision)

    def _tell(self, decision: Decision) -> None:
        """Report an outcome to the log line and to the control socket's listeners."""
        self._report(decision)
        if self.control is not None:
            self.control.publish_decision(
                {**dataclasses.asdict(decision), "wall": self.clock.wall()}
            )

    def _publish_status(self) -> None:
        if self.control is None:
            return
        camera = self.camera.status
        self.control.publish_status(
            {
                "door": self.door.state.value,
                "camera": camera.state,
                "camera_reason": camera.reason,
                "templates": len(self.matcher),
                "lockout": self.decision.locked_out,
                "liveness": "off" if self.liveness is None else self.liveness.config.level,
                "status": self._status,
                "wall": self.clock.wall(),
            }
        )

    def _apply_commands(self) -> None:
        """Apply what local tools asked for since the last step (see control.py)."""
        if self.control is None:
            return
        for command in self.control.commands():
            if command.op == "unlock":
                self._remote_unlock(command)
            else:
                command.finish(error=f"the door loop does not know {command.op!r}")

    def _remote_unlock(self, command: Command) -> None:
        """One pulse for a local tool, recorded first, as a grant is; refused while
        stopping, during a lockout, or when the event log cannot take the record."""
        if self._stop:
            command.finish(error="the service is stopping; the door stays locked")
            return
        if self.decision.locked_out:
            command.finish(
                error="a lockout after repeated failures is running; the door stays locked"
            )
            return
        asked = f"asked by {command.args['by']}"
        reason = command.args.get("reason") or ""
        decision = Decision(
            self.clock.now(),
            "remote_unlock",
            action="unlock",
            reason=f"{asked}: {reason}" if reason else asked,
        )
        try:
            self._flush()  # what waits first, so that the log stays in order
            self._write(self._record(decision))
        except GalleryUnavailableError as exc:
            command.finish(error=f"the unlock could not be recorded ({exc}); the door stays locked")
            return
        self.door.grant(self.clock.now())
        self._count(decision)
        command.finish({"unlocked": True})

    def _door_event(self, event: DoorEvent) -> None:
        if event.kind == "enrol_pressed":
            try:
                self.enrollment.button_pressed()
                self._set_status("enrolling: look at the camera")
                self._tell(Decision(event.time, "enrolment_started", action="collecting"))
            except FacegateError as exc:
                self._tell(Decision(event.time, "enrolment_refused", reason=str(exc)))
            return
        action = "unlock" if event.kind == "exit_request" else "alarm"
        self._log(Decision(event.time, event.kind, action=action, reason=event.detail))

    def _maybe_authorise(self, person_id: int) -> None:
        # The matcher's copy is current: any change to people reloads it.
        person = self.matcher.person(person_id)
        if person is not None and person.role == "admin" and person.enabled:
            self.enrollment.authorise(person)

    def _finish_enrollment(self, now: float) -> None:
        session, admin = self.enrollment, self.enrollment.authorised_by
        self.enrollment = EnrollmentSession(session.config, session.clock, session.require_liveness)
        if session.state == TIMED_OUT:
            self._tell(Decision(now, "enrolment_failed", reason="timed out"))
            return
        try:
            name = f"enrolled-{int(self.clock.wall())}"
            person_id = enroll(self.gallery, self.matcher, name, "user", session.templates())
        except FacegateError as exc:
            self._tell(Decision(now, "enrolment_failed", reason=str(exc)))
            return
        self.summary.kinds["enrolled"] += 1
        self._tell(
            Decision(
                now,
                "enrolled",
                person_id,
                name,
                action=f"person #{person_id}",
                reason=f"authorised by #{admin}; rename with 'facegate people rename'",
            )
        )

    def _set_status(self, text: str) -> None:
        if text != self._status:
            self._status = text
            self.notifier.status(text)


def build_daemon(
    config: Config,
    clock: Clock,
    *,
    threaded: bool = True,
    report: Callable[[Decision], None] | None = None,
    gpio_backend=None,
) -> Daemon:
    """Wire a Daemon from the config; the door is locked before anything else loads.

    ``gpio_backend`` lets tests pass a MockGpio they keep a handle on; otherwise the
    backend named in the config is opened (never a silent fallback to the mock). The
    control socket is served from here on when ``[control] socket`` names one.
    """
    backend = gpio_backend if gpio_backend is not None else open_backend(config.gpio, clock)
    door = DoorController(config.door, backend, clock.now())
    try:
        pipeline = Pipeline.from_config(config)
        gallery = Gallery.from_config(config.gallery, busy_timeout=GALLERY_WAIT_S)
        matcher = Matcher(gallery, config.matcher, pipeline.model_id)
        matcher.refresh()
        liveness = None
        if config.liveness.level != "off":
            liveness = LivenessChecker.from_config(
                config.liveness,
                config.models,
                pipeline.detector,
                ir_camera=config.camera.ir_camera >= 0,
                calibration=active_head(gallery),
            )
        decision = DecisionMachine(config.decision, gallery.access_status, liveness is not None)
        camera = CameraSupervisor.from_config(
            create_source(config.camera, clock), config.camera, clock
        )
        enrollment = EnrollmentSession(config.enrollment, clock, liveness is not None)
        control = server = None
        if config.control.socket:  # last: nothing after it can fail and leave it open
            control = ControlHub(config.control.allow_remote_unlock)
            server = ControlServer(config.control.socket, control)
            server.start()
    except BaseException:
        door.close()
        raise
    return Daemon(
        pipeline=pipeline,
        matcher=matcher,
        gallery=gallery,
        decision=decision,
        door=door,
        camera=camera,
        enrollment=enrollment,
        notifier=Notifier(),
        clock=clock,
        liveness=liveness,
        threaded=threaded,
        report=report,
        control=control,
        control_server=server,
    )
