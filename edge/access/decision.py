"""Deciding over several frames: who gets in, who is denied, and who is locked out.

A pure state machine. It reads no clock and touches no hardware: observations come
in with their monotonic ``time``, commands (Grant or Deny) come out, and the daemon
turns them into a door pulse and event-log entries. ``access_check`` is injected to
apply each person's schedule (disabled, valid from, valid until).

Rules, in the order they apply to each observation:

1. During a lockout nothing is decided.
2. A person in cooldown (granted or denied by schedule a moment ago) is ignored,
   and seeing them again restarts their cooldown: one visit, one decision. A face
   the daemon follows from an observed frame (``seen_again``) restarts a running
   cooldown too, and nothing else: it never votes.
3. The observation joins the last ``vote_frames`` observations no older than
   ``vote_window_seconds``. When ``votes_required`` of them agree, a decision is made:
   the same person (with liveness 'live' when liveness is checked, and a finite
   similarity) -> access_check -> Grant
   or Deny(denied_schedule / denied_disabled); spoof -> Deny(denied_spoof);
   unknown face -> Deny(denied_unknown).
4. Denials of unknown faces and spoofs are failures; at most one of each kind is
   logged (and counted) per ``denial_log_seconds``, so a lingering face is one
   failure, not one per frame. ``lockout_failures`` failures within
   ``lockout_window_seconds`` start a lockout of ``lockout_seconds``, logged once as
   denied_lockout.

Every comparison is written to fail closed: a NaN time or similarity never opens
the door, never ends a cooldown or a lockout early.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from ..errors import ConfigError
from ..schema import setting
from ..types import EventKind, Refusal, Verdict

# access_check(person_id, wall_time) -> None when access is allowed now, else why not.
AccessCheck = Callable[[int, float], Refusal | None]
# The denial each refusal is logged as; the rest are about when the person may enter.
_DENIALS = {Refusal.DISABLED: EventKind.DENIED_DISABLED, Refusal.OFFLINE: EventKind.DENIED_OFFLINE}


@dataclass(frozen=True)
class DecisionConfig:
    """How many frames must agree, and how failures are rate-limited."""

    votes_required: int = setting(
        3,
        "K: frames that must agree on the same person (or on unknown/spoof) to decide",
        min=1,
        max=30,
    )
    vote_frames: int = setting(
        5, "N: the K agreeing frames are counted among the last N observations", min=1, max=60
    )
    vote_window_seconds: float = setting(
        2.0, "observations older than this no longer vote", min=0.1, max=30.0
    )
    cooldown_seconds: float = setting(
        10.0,
        "after a decision about a person, ignore them until unseen this long",
        min=0.0,
        max=3600.0,
    )
    denial_log_seconds: float = setting(
        10.0,
        "at most one denied_unknown and one denied_spoof per this many seconds; "
        "each logged one counts as a failure",
        min=0.0,
        max=3600.0,
    )
    lockout_failures: int = setting(
        5,
        "this many failures (unknown or spoof) within lockout_window_seconds lock out",
        min=1,
        max=1000,
    )
    lockout_window_seconds: float = setting(
        60.0, "failures older than this are forgotten", min=1.0, max=86400.0
    )
    lockout_seconds: float = setting(
        30.0, "how long a lockout lasts; nobody is granted meanwhile", min=1.0, max=86400.0
    )

    def validate(self) -> None:
        if self.votes_required > self.vote_frames:
            raise ConfigError(
                f"decision.votes_required: {self.votes_required} is more than "
                f"decision.vote_frames ({self.vote_frames})"
            )


@dataclass(frozen=True)
class Observation:
    """One processed face: the matcher's answer and the liveness verdict.

    ``person_id`` is set only when the matcher's threshold was passed; ``liveness``
    is None when liveness checking is disabled.
    """

    time: float
    person_id: int | None
    name: str | None
    similarity: float
    liveness: Verdict | None
    reasons: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.liveness is None:
            return
        try:
            object.__setattr__(self, "liveness", Verdict(self.liveness))
        except ValueError:
            raise ValueError(
                f"liveness must be one of {', '.join(Verdict)} or None, got {self.liveness!r}"
            ) from None


@dataclass(frozen=True)
class Grant:
    """Open the door for this person; ``similarity`` is the mean over the agreeing votes."""

    kind: ClassVar[EventKind] = EventKind.GRANTED
    person_id: int
    name: str | None
    similarity: float
    votes: int
    time: float


@dataclass(frozen=True)
class Deny:
    """A logged refusal: denied_unknown, _spoof, _schedule, _disabled or _lockout."""

    kind: EventKind
    time: float
    person_id: int | None = None
    name: str | None = None
    similarity: float | None = None
    reason: str = ""


Command = Grant | Deny


class DecisionMachine:
    """Observations in, Grant/Deny commands out (see the module rules).

    ``require_liveness`` is true whenever a liveness level is configured: then only
    'live' frames vote for a grant and 'spoof' frames vote for denied_spoof.
    """

    def __init__(
        self, config: DecisionConfig, access_check: AccessCheck, require_liveness: bool
    ) -> None:
        self._config = config
        self._require_liveness = require_liveness
        self._access_check = access_check
        self._votes: deque[Observation] = deque(maxlen=config.vote_frames)
        self._cooldown_until: dict[int, float] = {}
        self._last_logged: dict[EventKind, float] = {}
        self._failures: deque[float] = deque()
        self._lockout_until = -math.inf
        self._last_time = -math.inf
        self._concluded = False

    @property
    def concluded(self) -> bool:
        """True when the last observation completed a decision: a grant or a refusal, or
        a failure whether or not it was logged (a tracked face needs no more frames)."""
        return self._concluded

    def cooling_down(self, person_id: int) -> bool:
        """True while this person's cooldown runs (as of the last input)."""
        return self._last_time < self._cooldown_until.get(person_id, -math.inf)

    def seen_again(self, person_id: int, time: float) -> bool:
        """A face known to be this person (followed from a frame that was observed) is
        still in view: their cooldown restarts, as an observation of them would restart
        it, and nothing is decided. False when no cooldown runs: the face must then be
        observed in full, since this never votes."""
        self._advance(time)
        if self.locked_out:
            return True  # nothing is decided meanwhile: a full observation would be ignored
        if not self.cooling_down(person_id):
            return False
        self._cooldown_until[person_id] = time + self._config.cooldown_seconds
        return True

    @property
    def locked_out(self) -> bool:
        """True while a lockout started by repeated failures lasts (as of the last input)."""
        return not self._last_time >= self._lockout_until

    def observe(self, obs: Observation, wall_time: float) -> list[Command]:
        """Feed one processed face; ``wall_time`` (unix seconds) is for schedules."""
        self._advance(obs.time)
        self._concluded = False
        if self.locked_out:
            return []
        pid = obs.person_id
        if pid is not None and not obs.time >= self._cooldown_until.get(pid, -math.inf):
            self._cooldown_until[pid] = obs.time + self._config.cooldown_seconds
            return []
        self._votes.append(obs)
        window = self._config.vote_window_seconds
        while self._votes and not obs.time - self._votes[0].time <= window:
            self._votes.popleft()
        if self._is_spoof(obs):
            if self._count(self._is_spoof) >= self._config.votes_required:
                return self._fail(EventKind.DENIED_SPOOF, obs, ", ".join(obs.reasons) or "spoof")
            return []
        if pid is None:
            if self._count(self._is_unknown) >= self._config.votes_required:
                return self._fail(EventKind.DENIED_UNKNOWN, obs, "no match")
            return []
        agreeing = [
            o
            for o in self._votes
            if o.person_id == pid and self._is_live(o) and math.isfinite(o.similarity)
        ]
        if len(agreeing) >= self._config.votes_required:
            return [self._decide(pid, obs, agreeing, wall_time)]
        return []

    def camera_down(self, time: float, reason: str) -> None:
        """The camera stopped: frames before the gap never combine with frames after it.

        ``reason`` is the caller's to log; the rules depend only on the gap.
        """
        self._advance(time)
        self._votes.clear()

    # -- helpers --------------------------------------------------------------

    def _advance(self, time: float) -> None:
        if not time >= self._last_time:  # NaN included
            raise ValueError(
                f"decision input at {time} is older than the previous one at {self._last_time}"
            )
        self._last_time = time
        self._cooldown_until = {p: t for p, t in self._cooldown_until.items() if t > time}

    def _is_live(self, obs: Observation) -> bool:
        return not self._require_liveness or obs.liveness is Verdict.LIVE

    def _is_spoof(self, obs: Observation) -> bool:
        return self._require_liveness and obs.liveness is Verdict.SPOOF

    def _is_unknown(self, obs: Observation) -> bool:
        return obs.person_id is None and not self._is_spoof(obs)

    def _count(self, predicate: Callable[[Observation], bool]) -> int:
        return sum(1 for o in self._votes if predicate(o))

    def _decide(
        self, pid: int, obs: Observation, agreeing: list[Observation], wall_time: float
    ) -> Command:
        self._votes.clear()
        self._concluded = True
        self._cooldown_until[pid] = obs.time + self._config.cooldown_seconds
        refusal = self._access_check(pid, wall_time)
        similarity = sum(o.similarity for o in agreeing) / len(agreeing)
        if refusal is None:
            return Grant(pid, obs.name, similarity, len(agreeing), obs.time)
        kind = _DENIALS.get(refusal, EventKind.DENIED_SCHEDULE)
        return Deny(kind, obs.time, pid, obs.name, similarity, refusal.value)

    def _fail(self, kind: EventKind, obs: Observation, reason: str) -> list[Command]:
        self._votes.clear()
        self._concluded = True
        t = obs.time
        if t - self._last_logged.get(kind, -math.inf) < self._config.denial_log_seconds:
            return []
        self._last_logged[kind] = t
        commands: list[Command] = [Deny(kind, t, obs.person_id, obs.name, obs.similarity, reason)]
        self._failures.append(t)
        while self._failures and t - self._failures[0] > self._config.lockout_window_seconds:
            self._failures.popleft()
        if len(self._failures) >= self._config.lockout_failures:
            self._lockout_until = t + self._config.lockout_seconds
            reason = (
                f"{len(self._failures)} failures within "
                f"{self._config.lockout_window_seconds:g} s; "
                f"no grants for {self._config.lockout_seconds:g} s"
            )
            self._failures.clear()
            commands.append(Deny(EventKind.DENIED_LOCKOUT, t, reason=reason))
        return commands
