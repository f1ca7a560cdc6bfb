"""Keeps a camera running: reads it in its own thread, keeps only the newest frame,
and reopens a failed camera with exponential backoff.

Frames are never queued: when inference is slower than the camera, a frame nobody
took is replaced by the next one and counted in ``dropped``. While the camera is
down, ``status`` says why (the daemon keeps the door locked and reports it).

Everything the thread does is one call to :meth:`CameraSupervisor.poll_once`, which
tests drive directly, without a thread; backoff waits go through the injected
clock, so under a FakeClock they take no time.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from ..clock import Clock
from ..errors import CameraError
from ..types import CameraState, Frame
from . import CameraConfig, EndOfStream, FrameSource

log = logging.getLogger(__name__)

# Backoff waits are cut into slices this long so that stop() is answered promptly.
_STOP_CHECK_S = 0.25


@dataclass(frozen=True)
class CameraStatus:
    """Where the camera stands.

    ``reason`` says why it is not ok (empty when ok); ``since`` is the clock time of
    the last change of state.
    """

    state: CameraState
    reason: str
    since: float

    @property
    def ok(self) -> bool:
        return self.state == CameraState.OK


class CameraSupervisor:
    """Owns a FrameSource: opens it, reads it, reopens it after failures.

    Use ``start()``/``stop()`` (or ``with supervisor:``) to run the reader thread,
    and ``latest()``/``wait()`` to take the newest frame. The source is opened by
    the supervisor, so pass it unopened.
    """

    def __init__(
        self,
        source: FrameSource,
        clock: Clock,
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        stop_timeout: float = 5.0,
    ):
        if not 0 < backoff_initial <= backoff_max:
            raise ValueError("backoff needs 0 < backoff_initial <= backoff_max")
        self._source = source
        self._clock = clock
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._stop_timeout = stop_timeout
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._is_open = False
        self._failures = 0  # consecutive failures since the last good frame
        self._latest: Frame | None = None
        self._taken_seq = 0  # newest seq handed to a consumer
        self._delivered = 0
        self._dropped = 0
        self._status = CameraStatus(CameraState.STARTING, "not opened yet", clock.now())

    @classmethod
    def from_config(
        cls, source: FrameSource, config: CameraConfig, clock: Clock
    ) -> CameraSupervisor:
        return cls(
            source, clock, backoff_initial=config.backoff_initial, backoff_max=config.backoff_max
        )

    # --- what consumers read -------------------------------------------------------

    @property
    def status(self) -> CameraStatus:
        with self._cond:
            return self._status

    @property
    def delivered(self) -> int:
        """Frames read from the camera since the start."""
        with self._cond:
            return self._delivered

    @property
    def dropped(self) -> int:
        """Frames replaced by a newer one before anybody took them."""
        with self._cond:
            return self._dropped

    def latest(self, after_seq: int = 0) -> Frame | None:
        """The newest frame if its seq is above ``after_seq``, else None; never blocks."""
        with self._cond:
            return self._take(after_seq)

    def wait(self, after_seq: int = 0, timeout: float | None = None) -> Frame | None:
        """The newest frame above ``after_seq``, waiting up to ``timeout`` seconds for one.

        Returns None on timeout or stop. Raises EndOfStream once a finite source has
        ended and every frame it gave has been taken.
        """
        with self._cond:
            self._cond.wait_for(
                lambda: (
                    self._newer(after_seq)
                    or self._status.state in (CameraState.ENDED, CameraState.STOPPED)
                ),
                timeout,
            )
            frame = self._take(after_seq)
            if frame is None and self._status.state == CameraState.ENDED:
                raise EndOfStream(self._status.reason)
            return frame

    def _newer(self, after_seq: int) -> bool:
        return self._latest is not None and self._latest.seq > after_seq

    def _take(self, after_seq: int) -> Frame | None:
        latest = self._latest
        if latest is None or not latest.seq > after_seq:
            return None
        self._taken_seq = max(self._taken_seq, latest.seq)
        return latest

    # --- the reader ----------------------------------------------------------------

    def backoff_delay(self) -> float:
        """Seconds to wait before the next reopen: doubles per failure, up to the max."""
        if self._failures == 0:
            return 0.0
        # The exponent is capped: a camera down for days fails thousands of times,
        # and 2.0 ** 1024 overflows.
        doublings = min(self._failures - 1, 64)
        return min(self._backoff_initial * 2.0**doublings, self._backoff_max)

    def poll_once(self) -> Frame | None:
        """One step of the reader: (re)open after backoff if needed, read one frame.

        Returns the frame read, or None when the camera is down, has ended or the
        supervisor is stopping. Never raises for camera trouble: it lands in status.
        """
        if self._stopping.is_set() or self.status.state == CameraState.ENDED:
            return None
        if not self._is_open:
            self._sleep_backoff()
            if self._stopping.is_set():
                return None
            try:
                self._source.open()
            except Exception as exc:
                self._failed(exc)
                return None
            self._is_open = True
        try:
            frame = self._source.read()
        except EndOfStream as exc:
            self._close_source()
            self._set_status(CameraState.ENDED, str(exc))
            return None
        except Exception as exc:
            self._close_source()
            self._failed(exc)
            return None
        self._failures = 0
        self._publish(frame)
        return frame

    def _sleep_backoff(self) -> None:
        deadline = self._clock.now() + self.backoff_delay()
        while not self._stopping.is_set():
            remaining = deadline - self._clock.now()
            if remaining <= 0:
                return
            self._clock.sleep(min(remaining, _STOP_CHECK_S))

    def _failed(self, exc: Exception) -> None:
        self._failures += 1
        expected = isinstance(exc, CameraError)
        # A bug or an unexpected driver error is failed safe too, with its trace logged.
        reason = str(exc) if expected else f"unexpected {type(exc).__name__}: {exc}"
        status = self.status
        # once per change, not per retry
        if status.state != CameraState.DOWN or status.reason != reason:
            log.warning(
                "camera down: %s (retrying, up to every %.1f s)",
                reason,
                self._backoff_max,
                exc_info=None if expected else exc,
            )
        self._set_status(CameraState.DOWN, reason)

    def _publish(self, frame: Frame) -> None:
        with self._cond:
            if self._latest is not None and self._latest.seq > self._taken_seq:
                self._dropped += 1
            self._latest = frame
            self._delivered += 1
            if self._status.state != CameraState.OK:
                self._status = CameraStatus(CameraState.OK, "", self._clock.now())
                log.info("camera ok")
            self._cond.notify_all()

    def _set_status(self, state: CameraState, reason: str) -> None:
        with self._cond:
            # ``since`` dates the state, not the latest reason: "down since 12:00".
            since = self._status.since if state == self._status.state else self._clock.now()
            self._status = CameraStatus(state, reason, since)
            self._cond.notify_all()

    def _close_source(self) -> None:
        self._is_open = False
        try:
            self._source.close()
        except Exception as exc:  # closing a dead camera may fail; it is gone either way
            log.debug("camera close failed: %s", exc)

    # --- the thread ------------------------------------------------------------------

    def start(self) -> None:
        """Start the reader thread (once)."""
        if self._thread is not None:
            raise RuntimeError("camera supervisor already started")
        self._thread = threading.Thread(target=self._run, name="camera", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopping.is_set() and self.status.state != CameraState.ENDED:
                try:
                    self.poll_once()
                except Exception as exc:  # a bug here must not leave a dead thread and status ok
                    self._close_source()
                    self._failed(exc)
        finally:
            self._close_source()

    def stop(self) -> None:
        """Stop reading, join the thread and close the camera."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(self._stop_timeout)
            if self._thread.is_alive():
                log.warning("camera thread did not stop within %.1f s", self._stop_timeout)
        else:
            self._close_source()
        if self.status.state != CameraState.ENDED:
            self._set_status(CameraState.STOPPED, "stopped")

    def __enter__(self) -> CameraSupervisor:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
