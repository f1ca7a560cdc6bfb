"""The service loop: camera -> pipeline -> matcher -> decisions -> door and event log.

One ``step`` is one pass of the loop: sample the door inputs, take the newest
frame (older ones were dropped by the camera supervisor), decide, act, log, and
ping the systemd watchdog. The door is locked whenever the camera is down, on
every stop signal, on any exception and at exit; only a Grant opens it, for one
pulse, and only once the grant is in the event log.

Local tools (the web app, the broker client) reach the loop through the control socket
(``control.py``): each step first applies the commands they sent (an unlock pulse, logged
before the relay moves, refused during a lockout or when it cannot be logged; a capture
of the face at the door for an enrolment), and publishes a status snapshot and every
outcome for them, and, only while someone watches the preview, a reference to the frame
with what was seen in it; the loop never waits on them.

With ``[tracking]`` on, faces are followed from frame to frame (``vision.track_cache``):
a face is embedded on its good frames until the decision machine has decided about
it; after that its frames cost detection only (a known person's cooldown is renewed
from the track, which never votes) until it must be checked again: every
``reverify_s``, or at any sign that the face in the box may be another. Liveness keeps
one history per track.

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
from typing import Any

from .access.decision import Command, DecisionMachine, Grant, Observation
from .access.door import DoorController, DoorEvent
from .access.gpio import GpioBackend, open_backend
from .camera import EndOfStream, FrameSource, create_source
from .camera.supervisor import CameraSupervisor
from .clock import Clock
from .config import Config
from .control import CaptureFeed, ControlHub, ControlServer
from .control import Command as ControlCommand
from .errors import FacegateError, GalleryUnavailableError, RefusedError
from .gallery import sync
from .gallery.enrolment import EnrolmentSession, enrol, guidance, templates_to_json
from .gallery.matcher import Matcher
from .gallery.store import Gallery
from .liveness.calibration import active_head
from .liveness.policy import LivenessChecker
from .notify import Notifier
from .types import (
    NO_SIMILARITY,
    CameraState,
    DoorSignal,
    EnrolmentState,
    EventKind,
    Face,
    FaceAnalysis,
    Frame,
    Liveness,
    Match,
    Notice,
    Subject,
    Verdict,
)
from .vision.pipeline import Pipeline, person_at_the_door
from .vision.track_cache import COOLED, TrackCache

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
class Outcome:
    """One printable outcome of the loop: a grant, a denial, a door event, or a notice
    (an enrolment at the door, events lost at exit)."""

    time: float
    kind: EventKind | Notice
    person_id: int | None = None
    name: str | None = None
    similarity: float | None = None
    liveness: str = "off"
    liveness_score: float | None = None
    action: str = ""
    reason: str = ""


@dataclass(frozen=True)
class _Sight:
    """One face in a frame, for the preview: its track (None: faces are not tracked) and
    its analysis (None: its track is decided, this frame only detected it)."""

    face: Face
    track: int | None
    analysis: FaceAnalysis | None = None


def _untracked(results: list[FaceAnalysis]) -> list[_Sight]:
    """Every face of a fully analysed frame, biggest first (the face at the door)."""
    ordered = sorted(results, key=lambda r: -(r.face.width * r.face.height))
    return [_Sight(r.face, None, r) for r in ordered]


def _reported(similarity: float | None) -> float | None:
    """A similarity as the loop reports it (log, decisions, preview): none where there was
    nobody to compare with, rather than -1.00."""
    return None if similarity is None or similarity == NO_SIMILARITY else float(similarity)


def _person_note(match: Match | None, liveness: Liveness | None) -> dict[str, Any]:
    return {
        "similarity": None if match is None else _reported(match.similarity),
        "person_id": None if match is None else match.person_id,
        "liveness": None if liveness is None else float(liveness.score),
        "verdict": None if liveness is None else liveness.verdict.value,
    }


@dataclass(frozen=True)
class _Seen:
    """What one frame showed of the person at the door."""

    observation: Observation
    liveness: Liveness | None
    track: int | None = None  # the tracked face it was, when faces are tracked


@dataclass(frozen=True)
class _Record:
    """One entry for the event log, stamped (wall time) when it happened."""

    kind: EventKind
    wall: float
    person_id: int | None
    score: float | None
    liveness: float | None
    reason: str | None


@dataclass(frozen=True)
class _PendingGrant:
    outcome: Outcome
    record: _Record
    deadline: float  # clock time after which the grant is refused


@dataclass
class RunSummary:
    frames: int = 0
    kinds: Counter[str] = field(default_factory=Counter)

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
        enrolment: EnrolmentSession,
        notifier: Notifier,
        clock: Clock,
        liveness: LivenessChecker | None = None,
        tracks: TrackCache[tuple[int | None, bool]] | None = None,
        threaded: bool = True,
        report: Callable[[Outcome], None] | None = None,
        control: ControlHub | None = None,
        control_server: ControlServer | None = None,
    ):
        self.pipeline = pipeline
        self.matcher = matcher
        self.gallery = gallery
        self.decision = decision
        self.door = door
        self.camera = camera
        self.enrolment = enrolment
        self.notifier = notifier
        self.clock = clock
        self.liveness = liveness
        self.tracks = tracks
        self.threaded = threaded
        self._report = report or (lambda outcome: None)
        self.control = control
        self.control_server = control_server
        self.summary = RunSummary()
        self._last_seq = 0
        self._last_frame_time: float | None = None
        self._stop = False
        self._ended = False
        self._closed = False
        self._status = ""
        self._camera_was_ok = True
        self._pending: _PendingGrant | None = None
        self._backlog: deque[_Record] = deque(maxlen=BACKLOG_EVENTS)
        self._capture: CaptureFeed | None = None  # a local tool's enrolment capture
        self._notes: dict[int, dict[str, Any]] = {}  # per track, for the preview (_noted)
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
        """Loop until stopped or a finite camera (replay) ends; always locks on the way
        out, and closes everything.

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
            self.close()

    def close(self) -> None:
        """Stop the camera, lock and release the door, close the gallery and the control
        socket. Idempotent; ``run`` ends with it, and whoever only steps calls it."""
        if self._closed:
            return
        self._closed = True
        try:
            self.camera.stop()
        finally:
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
        if not camera.ok and camera.state != CameraState.ENDED:
            if self._camera_was_ok:
                self.door.lock_now()
                if self._last_frame_time is not None:
                    # Dated in frame time, the decision machine's only time base: the
                    # clock may be ahead of the frames (a replay stamps its own).
                    self.decision.camera_down(self._last_frame_time, camera.reason)
                self._forget_tracks()
                if self.liveness is not None:
                    self.liveness.reset()
            self._camera_was_ok = False
            self._set_status(f"camera {camera.state}: {camera.reason}; door locked")
            frame = None  # read before the failure; nothing is decided while it is down
        else:
            self._camera_was_ok = True
        if frame is not None:
            try:
                self.summary.frames += 1
                seen = self._observe(frame)
                if seen is not None:
                    self._apply(seen)
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
            if frame is None and self.camera.status.state == CameraState.ENDED:
                self._ended = True
        if frame is not None:
            self._last_seq = frame.seq
            self._last_frame_time = frame.timestamp
        return frame

    def _observe(self, frame: Frame) -> _Seen | None:
        """What the frame shows of the person at the door: matched, and judged live when
        liveness is on. None when nobody is there, when the face at the door is a
        tracked face already decided about, or when an enrolment takes the frame."""
        if self.enrolment.state == EnrolmentState.COLLECTING:
            self._offer_to_enrolment(frame)
            return None
        if self.enrolment.state in (EnrolmentState.COMPLETE, EnrolmentState.TIMED_OUT):
            self._finish_enrolment(frame.timestamp)
        track = None
        if self.tracks is None:
            results = self.pipeline.analyse(frame)
            sights = _untracked(results)
            subject = person_at_the_door(results)
        else:
            sights, tracked = self._tracked_subject(frame)
            subject, track = tracked if tracked is not None else (None, None)
        if subject is None:
            self._show(frame, sights, None, None, None)
            return None
        liveness = self._liveness(frame, subject, track)
        match = self.matcher.match(subject.embedding)
        if track is not None:
            self._noted(track)["person"] = (match, liveness)  # made a note only when shown
        self._show(frame, sights, subject, match, liveness)
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
        return _Seen(observation, liveness, track)

    def _offer_to_enrolment(self, frame: Frame) -> None:
        """An enrolment takes the frame: the person at the door is offered to it (with
        their liveness), and the capture's guidance and the preview are updated."""
        self._forget_tracks()  # frames taken by the enrolment are not followed
        results = self.pipeline.analyse(frame)
        subject = person_at_the_door(results)
        liveness = self._liveness(frame, subject) if subject is not None else None
        verdict = self.enrolment.offer(results, liveness)
        if self._capture is not None:
            needed = self.enrolment.config.frames
            self._capture.progress(guidance(verdict), self.enrolment.collected, needed)
        self._show(frame, _untracked(results), subject, None, liveness)

    def _liveness(
        self, frame: Frame, subject: Subject, track: int | None = None
    ) -> Liveness | None:
        """The liveness check of the person at the door; None when liveness is off."""
        if self.liveness is None:
            return None
        return self.liveness.check(frame, subject.face, subject.mesh, track)

    def _tracked_subject(self, frame: Frame) -> tuple[list[_Sight], tuple[Subject, int] | None]:
        """Every face with its track (and its analysis where this frame made one), and the
        person at the door when faces are tracked, with their track: the biggest face that
        passes the quality gate, embedded; None when there is none, or when a bigger
        face's track is decided and holds (nothing to observe)."""
        assert self.tracks is not None
        glance = self.tracks.glance(frame.size)
        faces = self.pipeline.detect(frame.image, frame.lores, glance)
        sightings, ended = self.tracks.update(frame.timestamp, faces)
        for track in ended:
            self._forget_face(track)
        by_size = sorted(
            zip(faces, sightings, strict=True), key=lambda p: -(p[0].width * p[0].height)
        )
        sights = [_Sight(face, sighting.track) for face, sighting in by_size]
        for i, (face, sighting) in enumerate(by_size):
            track = sighting.track
            if self.tracks.due(track, frame.timestamp) is None and self._still_holds(
                track, frame.timestamp
            ):
                return sights, None
            analysis = self.pipeline.analyse_face(frame, face)
            sights[i] = _Sight(face, track, analysis)
            self._noted(track)["quality"] = analysis.quality
            if analysis.embedding is None or analysis.mesh is None:
                continue
            if self.tracks.embedded(track, analysis.embedding) and self.liveness is not None:
                self.liveness.forget(track)  # another face: its history is not this one's
            subject = Subject(analysis.face, analysis.embedding, analysis.mesh)
            return sights, (subject, track)
        return sights, None

    def _still_holds(self, track: int, time: float) -> bool:
        """Whether what the track was settled as holds on this frame without an
        embedding: a known person's cooldown is renewed from it, and when none runs
        any more the face must be observed in full."""
        assert self.tracks is not None
        settled = self.tracks.settled(track)
        if settled is None:
            return False
        person_id, spoof = settled
        if person_id is None or spoof or self.decision.seen_again(person_id, time):
            return True
        self.tracks.unsettle(track, COOLED)
        return False

    def _forget_tracks(self) -> None:
        """No track carries over: the camera was lost, or an enrolment takes frames the
        tracks do not follow."""
        if self.tracks is not None:
            for track in self.tracks.reset():
                self._forget_face(track)

    def _forget_face(self, track: int) -> None:
        self._notes.pop(track, None)
        if self.liveness is not None:
            self.liveness.forget(track)

    def _noted(self, track: int) -> dict[str, Any]:
        """What the preview last learnt of a tracked face ('quality', 'person'): shown
        on the frames where its track is decided and it is not analysed."""
        return self._notes.setdefault(track, {})

    def _show(
        self,
        frame: Frame,
        sights: list[_Sight],
        subject: Subject | None,
        match: Match | None,
        liveness: Liveness | None,
    ) -> None:
        """Hand the frame (by reference) and what was seen in it to the preview, only
        while someone watches; the control server's threads encode it. A tracked face
        not analysed on this frame shows what its track last showed ('tracked')."""
        if self.control is None or not self.control.preview_wanted:
            return
        person = None
        if subject is not None:
            person = {**_person_note(match, liveness), "tracked": False}
            person["box"] = [float(v) for v in subject.face.bbox]
        elif sights and sights[0].analysis is None and sights[0].track is not None:
            # the face at the door, decided: its box now, what its last check saw
            last = self._notes.get(sights[0].track, {}).get("person")
            if last is not None:
                box = [float(v) for v in sights[0].face.bbox]
                person = {**_person_note(*last), "tracked": True, "box": box}
        faces = []
        for sight in sights:
            quality = sight.analysis.quality if sight.analysis is not None else None
            if quality is None and sight.track is not None:
                quality = self._notes.get(sight.track, {}).get("quality")
            faces.append(
                {
                    "box": [float(v) for v in sight.face.bbox],
                    "passed": quality is not None and quality.passed,
                    "reasons": [] if quality is None else list(quality.reasons),
                    "tracked": sight.analysis is None,
                }
            )
        capturing = self.enrolment.state == EnrolmentState.COLLECTING
        info = {"faces": faces, "person": person, "capturing": capturing}
        self.control.publish_preview(frame.image, info)

    def _apply(self, seen: _Seen) -> None:
        """Give the decision machine what was seen; open for a grant, log a denial; tell
        the face's track what was decided about it."""
        obs = seen.observation
        commands = self.decision.observe(obs, self.clock.wall())
        if self.tracks is not None and seen.track is not None:
            known = obs.person_id is not None and self.decision.cooling_down(obs.person_id)
            key = (obs.person_id, obs.liveness is Verdict.SPOOF)
            self.tracks.checked(seen.track, key, obs.time, self.decision.concluded or known)
        for command in commands:
            if isinstance(command, Grant):
                self._grant(self._outcome(command, seen, "unlock"))
            else:
                self._log(self._outcome(command, seen, "stay locked", command.reason))

    @staticmethod
    def _outcome(command: Command, seen: _Seen, action: str, reason: str = "") -> Outcome:
        liveness = seen.liveness
        return Outcome(
            command.time,
            command.kind,
            command.person_id,
            command.name or seen.observation.name,
            _reported(command.similarity),
            liveness=liveness.verdict.value if liveness else "off",
            liveness_score=liveness.score if liveness else None,
            action=action,
            reason=reason,
        )

    # --- side effects ---------------------------------------------------------------

    def _grant(self, outcome: Outcome) -> None:
        """Record first, then pulse: the door never opens without its audit record."""
        if self._stop:
            return  # a stop signal came: nothing opens the door any more
        if self._pending is not None:
            self._refuse(self._pending, "another grant came before it was recorded")
        deadline = self.clock.now() + RECORD_WAIT_S
        self._pending = _PendingGrant(outcome, self._record(outcome), deadline)
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
            self._count(pending.outcome)

    def _wind_up(self) -> None:
        """At the end of a run: refuse a grant still waiting for its record, and give
        the backlog a last chance; say what could not be written."""
        if self._pending is not None:
            self._refuse(self._pending, "the service stopped first")
        try:
            self._flush()
        except GalleryUnavailableError as exc:
            self._tell(
                Outcome(
                    self.clock.now(),
                    Notice.EVENTS_LOST,
                    action="-",
                    reason=f"{len(self._backlog)} event(s) never written: {exc}",
                )
            )

    def _refuse(self, pending: _PendingGrant, why: str) -> None:
        self._pending = None
        self._log(
            replace(
                pending.outcome,
                kind=EventKind.DENIED_UNRECORDED,
                action="stay locked",
                reason=f"the grant could not be recorded: {why}",
            )
        )

    def _log(self, outcome: Outcome) -> None:
        """Record an outcome in the event log (or the backlog) and the summary; report it."""
        self._backlog.append(self._record(outcome))
        try:
            self._flush()
        except GalleryUnavailableError as exc:
            note = f"not in the event log yet: {exc}"
            outcome = replace(
                outcome, reason=f"{outcome.reason}; {note}" if outcome.reason else note
            )
        self._count(outcome)

    def _record(self, outcome: Outcome) -> _Record:
        return _Record(
            EventKind(outcome.kind),  # a Notice is never logged: this refuses one
            self.clock.wall(),
            outcome.person_id,
            outcome.similarity,
            outcome.liveness_score,
            outcome.reason or None,
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

    def _count(self, outcome: Outcome) -> None:
        self.summary.kinds[outcome.kind] += 1
        self._tell(outcome)

    def _tell(self, outcome: Outcome) -> None:
        """Report an outcome to the log line and to the control socket's listeners."""
        self._report(outcome)
        if self.control is not None:
            self.control.publish_decision(
                {**dataclasses.asdict(outcome), "wall": self.clock.wall()}
            )

    def _publish_status(self) -> None:
        if self.control is None:
            return
        camera = self.camera.status
        self.control.publish_status(
            {
                "door": self.door.state.value,
                "camera": camera.state.value,
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
        if self._capture is not None and self._capture.cancelled:  # its tool hung up
            self._capture = None
            self.enrolment = self.enrolment.renewed()
        for command in self.control.commands():
            if command.op == "unlock":
                self._remote_unlock(command)
            elif command.op == "capture":
                self._start_capture(command)
            else:
                command.finish(error=f"the door loop does not know {command.op!r}")

    def _remote_unlock(self, command: ControlCommand) -> None:
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
        outcome = Outcome(
            self.clock.now(),
            EventKind.REMOTE_UNLOCK,
            action="unlock",
            reason=f"{asked}: {reason}" if reason else asked,
        )
        try:
            self._flush()  # what waits first, so that the log stays in order
            self._write(self._record(outcome))
        except GalleryUnavailableError as exc:
            command.finish(error=f"the unlock could not be recorded ({exc}); the door stays locked")
            return
        self.door.grant(self.clock.now())
        self._count(outcome)
        command.finish({"unlocked": True})

    def _start_capture(self, command: ControlCommand) -> None:
        """Collect the face at the door for a local tool, which enrols it."""
        if self._stop:
            command.finish(error="the service is stopping")
            return
        try:
            self.enrolment.start()
        except FacegateError as exc:
            command.finish(error=str(exc))
            return
        self._capture = command.args["feed"]
        self._set_status(f"capturing a face for {command.args['by']}")
        command.finish({"needed": self.enrolment.config.frames})

    def _door_event(self, event: DoorEvent) -> None:
        if event.kind is DoorSignal.ENROL_PRESSED:
            try:
                self.enrolment.button_pressed()
                self._set_status("enrolling: look at the camera")
                self._tell(Outcome(event.time, Notice.ENROLMENT_STARTED, action="collecting"))
            except FacegateError as exc:
                self._tell(Outcome(event.time, Notice.ENROLMENT_REFUSED, reason=str(exc)))
            return
        action = "unlock" if event.kind is EventKind.EXIT_REQUEST else "alarm"
        self._log(Outcome(event.time, event.kind, action=action, reason=event.detail))

    def _maybe_authorise(self, person_id: int) -> None:
        # The matcher's copy is current: any change to people reloads it.
        person = self.matcher.person(person_id)
        if person is not None and person.is_enabled_admin:
            self.enrolment.authorise(person)

    def _finish_enrolment(self, now: float) -> None:
        session, admin = self.enrolment, self.enrolment.authorised_by
        self.enrolment = session.renewed()
        feed, self._capture = self._capture, None
        if feed is not None:  # a local tool's capture: it enrols the templates itself
            try:
                if session.state == EnrolmentState.TIMED_OUT:
                    raise RefusedError(
                        f"timed out with {session.collected} of {session.config.frames} "
                        "good captures"
                    )
                feed.finish(templates_to_json(session.templates()))
            except FacegateError as exc:
                feed.fail(str(exc))
            return
        if session.state == EnrolmentState.TIMED_OUT:
            self._tell(Outcome(now, Notice.ENROLMENT_FAILED, reason="timed out"))
            return
        try:
            name = f"enrolled-{int(self.clock.wall())}"
            person_id = enrol(self.gallery, self.matcher, name, "user", session.templates())
        except FacegateError as exc:
            self._tell(Outcome(now, Notice.ENROLMENT_FAILED, reason=str(exc)))
            return
        self.summary.kinds[EventKind.ENROLLED] += 1
        self._tell(
            Outcome(
                now,
                EventKind.ENROLLED,
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
    pipeline: Pipeline | None = None,
    source: FrameSource | None = None,
    gpio: GpioBackend | None = None,
    notifier: Notifier | None = None,
    threaded: bool = True,
    report: Callable[[Outcome], None] | None = None,
) -> Daemon:
    """Wire a Daemon from the config; the door is locked before anything else loads.

    Each seam defaults to what the config names: ``pipeline`` (loaded models),
    ``source`` (the camera), ``gpio`` (the backend: never a silent fallback to the
    mock), ``notifier`` (systemd's, from the environment). Tests and the demo pass
    their own. The control socket is served from here on when ``[control] socket``
    names one.
    """
    backend = gpio if gpio is not None else open_backend(config.gpio, clock)
    door = DoorController(config.door, backend, clock.now())
    try:
        if pipeline is None:
            pipeline = Pipeline.from_config(config)
        gallery = Gallery.from_config(config.gallery, busy_timeout=GALLERY_WAIT_S, clock=clock)
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
        try:
            if config.mqtt.enabled:
                sync.configure(gallery, config.mqtt.terminal_id, config.mqtt.outbox_retention_s)
            else:
                sync.configure(gallery, "", 0.0)
        except GalleryUnavailableError as exc:  # the broker client sets it up as well
            log.warning("could not set up the outbox now: %s", exc)
        access = sync.access_check(gallery, config.mqtt.max_offline_seconds)
        decision = DecisionMachine(config.decision, access, liveness is not None)
        # What a track is settled as: who (None: unknown), and whether a spoof.
        tracks = (
            TrackCache[tuple[int | None, bool]](config.tracking)
            if config.tracking.enabled
            else None
        )
        if source is None:
            source = create_source(config.camera, clock)
        camera = CameraSupervisor.from_config(source, config.camera, clock)
        enrolment = EnrolmentSession(config.enrolment, clock, liveness is not None)
        control = server = None
        if config.control.socket:  # last: nothing after it can fail and leave it open
            control = ControlHub(config.control.allow_remote_unlock)
            server = ControlServer(config.control.socket, control)
            server.start()
            log.info("serving local tools on %s", server.path)
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
        enrolment=enrolment,
        notifier=notifier if notifier is not None else Notifier(),
        clock=clock,
        liveness=liveness,
        tracks=tracks,
        threaded=threaded,
        report=report,
        control=control,
        control_server=server,
    )
