"""The decision state machine: pure, driven by the times passed in."""

from __future__ import annotations

import pytest

from edge.access.decision import DecisionConfig, DecisionMachine, Deny, Grant, Observation
from edge.errors import ConfigError
from edge.schema import build_section
from edge.types import Refusal

WALL = 1_700_000_000.0
ALICE, BOB = 1, 2
NAMES = {ALICE: "alice", BOB: "bob"}

CONFIG = DecisionConfig(
    votes_required=3,
    vote_frames=5,
    vote_window_seconds=2.0,
    cooldown_seconds=10.0,
    denial_log_seconds=10.0,
    lockout_failures=3,
    lockout_window_seconds=60.0,
    lockout_seconds=30.0,
)


def seen(
    t: float,
    pid: int | None,
    liveness: str | None = "live",
    sim: float = 0.6,
    reasons: tuple[str, ...] = (),
) -> Observation:
    return Observation(t, pid, NAMES.get(pid), sim if pid else 0.2, liveness, reasons)


class Harness:
    def __init__(
        self,
        config: DecisionConfig = CONFIG,
        schedule: dict | None = None,
        require_liveness: bool = True,
    ):
        self.schedule = schedule or {}
        self.checked: list[tuple[int, float]] = []
        self.machine = DecisionMachine(config, self.access_check, require_liveness)

    def access_check(self, pid: int, wall_time: float):
        self.checked.append((pid, wall_time))
        return self.schedule.get(pid)

    def feed(self, *observations: Observation) -> list:
        out = []
        for obs in observations:
            out.extend(self.machine.observe(obs, WALL + obs.time))
        return out


def frames(start: float, n: int, pid: int | None, step: float = 0.1, **kw) -> list[Observation]:
    return [seen(start + i * step, pid, **kw) for i in range(n)]


def kinds(commands) -> list[str]:
    return [c.kind for c in commands]


def test_k_agreeing_frames_grant_once_with_the_mean_similarity():
    h = Harness()
    assert h.feed(seen(0.0, ALICE, sim=0.5), seen(0.1, ALICE, sim=0.6)) == []
    out = h.feed(seen(0.2, ALICE, sim=0.7))
    assert out == [Grant(ALICE, "alice", pytest.approx(0.6), 3, 0.2)]
    assert h.checked == [(ALICE, WALL + 0.2)]


def test_k_of_n_tolerates_other_frames_in_between():
    h = Harness()
    out = h.feed(
        seen(0.0, ALICE), seen(0.1, BOB), seen(0.2, ALICE), seen(0.3, None), seen(0.4, ALICE)
    )
    assert kinds(out) == ["granted"] and out[0].person_id == ALICE


def test_agreement_outside_the_last_n_frames_does_not_count():
    h = Harness()
    out = h.feed(
        seen(0.0, ALICE),
        seen(0.1, ALICE),
        seen(0.2, BOB),
        seen(0.3, BOB),
        seen(0.4, BOB),
        seen(0.5, None),
        seen(0.6, ALICE),
    )
    # the last five hold only one ALICE frame; BOB won at 0.4
    assert kinds(out) == ["granted"] and out[0].person_id == BOB


def test_votes_older_than_the_window_expire():
    h = Harness()
    assert h.feed(seen(0.0, ALICE), seen(1.0, ALICE), seen(3.5, ALICE), seen(4.0, ALICE)) == []
    assert kinds(h.feed(seen(4.1, ALICE))) == ["granted"]


def test_liveness_must_be_live_when_required():
    h = Harness()
    assert h.feed(*frames(0.0, 5, ALICE, liveness="inconclusive")) == []
    assert h.feed(*frames(1.0, 5, ALICE, liveness=None)) == []
    assert kinds(h.feed(*frames(2.0, 3, ALICE))) == ["granted"]


def test_liveness_is_ignored_when_not_required():
    config = DecisionConfig()
    h = Harness(config, require_liveness=False)
    assert kinds(h.feed(*frames(0.0, 3, ALICE, liveness=None))) == ["granted"]
    h2 = Harness(config, require_liveness=False)
    assert kinds(h2.feed(*frames(0.0, 3, ALICE, liveness="spoof"))) == ["granted"]


def test_spoof_is_denied_with_its_reasons_and_never_granted():
    h = Harness()
    out = h.feed(*frames(0.0, 5, ALICE, liveness="spoof", reasons=("moire", "no_blink")))
    assert out == [Deny("denied_spoof", 0.2, ALICE, "alice", 0.6, "moire, no_blink")]


def test_one_visit_one_grant_and_lingering_extends_the_cooldown():
    h = Harness()
    assert kinds(h.feed(*frames(0.0, 3, ALICE))) == ["granted"]
    # ALICE stays in view for 30 s: still one grant
    assert h.feed(*frames(0.3, 300, ALICE)) == []
    # leaves; back 9.9 s after last seen: same visit; back after 10 s unseen: a new visit
    last = 0.3 + 299 * 0.1
    assert h.feed(seen(last + 9.9, ALICE)) == []
    t = last + 9.9 + 10.0
    assert kinds(h.feed(*frames(t, 3, ALICE))) == ["granted"]


def test_a_followed_face_renews_a_running_cooldown_and_never_votes():
    h = Harness(DecisionConfig(cooldown_seconds=1.0))
    assert not h.machine.seen_again(ALICE, 0.0)  # no cooldown: observe them in full
    assert kinds(h.feed(*frames(0.1, 3, ALICE))) == ["granted"]
    assert h.machine.concluded and h.machine.cooling_down(ALICE)
    for i in range(30):  # 3 s followed by a tracker, never observed: still one visit
        assert h.machine.seen_again(ALICE, 0.4 + 0.1 * i)
    assert h.feed(seen(3.4, ALICE)) == []
    assert not h.machine.concluded and h.machine.cooling_down(ALICE)
    # unseen past the cooldown, it is over: following the face cannot bring it back
    assert not h.machine.seen_again(ALICE, 5.0) and not h.machine.cooling_down(ALICE)


def test_a_rate_limited_failure_still_concludes():
    h = Harness(DecisionConfig(lockout_failures=100))
    assert kinds(h.feed(*frames(0.0, 3, None))) == ["denied_unknown"]
    assert h.feed(*frames(0.3, 2, None)) == [] and not h.machine.concluded
    assert h.feed(seen(0.5, None)) == [] and h.machine.concluded  # decided, not logged


def test_cooldown_is_per_person():
    h = Harness()
    assert kinds(h.feed(*frames(0.0, 3, ALICE))) == ["granted"]
    assert kinds(h.feed(*frames(0.5, 3, BOB))) == ["granted"]


@pytest.mark.parametrize(
    "refusal,kind",
    [
        (Refusal.DISABLED, "denied_disabled"),
        (Refusal.NOT_YET_VALID, "denied_schedule"),
        (Refusal.EXPIRED, "denied_schedule"),
        (Refusal.OUTSIDE_SCHEDULE, "denied_schedule"),
    ],
)
def test_schedule_refusals_deny_with_the_reason_once_per_visit(refusal, kind):
    h = Harness(schedule={ALICE: refusal})
    out = h.feed(*frames(0.0, 10, ALICE))
    assert out == [Deny(kind, 0.2, ALICE, "alice", pytest.approx(0.6), refusal)]


def test_unknown_faces_are_denied_with_throttling():
    h = Harness(DecisionConfig(lockout_failures=100))
    out = h.feed(*frames(0.0, 50, None))  # 5 s of an unknown face
    assert kinds(out) == ["denied_unknown"] and out[0].time == 0.2
    assert h.feed(*frames(5.0, 50, None)) == []  # until 10 s after the logged one
    out = h.feed(*frames(10.2, 3, None))
    assert kinds(out) == ["denied_unknown"]


def test_a_single_unknown_frame_is_not_a_denial():
    h = Harness()
    assert h.feed(seen(0.0, None), seen(0.1, ALICE), seen(0.2, ALICE)) == []
    assert kinds(h.feed(seen(0.3, ALICE))) == ["granted"]


def test_repeated_failures_lock_out_and_block_grants():
    h = Harness()  # 3 failures within 60 s -> 30 s lockout
    out = []
    for start in (0.0, 10.5, 21.0):
        out += h.feed(*frames(start, 3, None))
    assert kinds(out) == ["denied_unknown", "denied_unknown", "denied_unknown", "denied_lockout"]
    assert out[-1].time == 21.2
    assert h.machine.locked_out
    # a known, live person during the lockout: nothing, and nothing more logged
    assert h.feed(*frames(22.0, 30, ALICE)) == []
    assert h.feed(*frames(40.0, 30, None)) == []
    assert h.checked == []
    # after it: fresh votes grant
    assert kinds(h.feed(*frames(51.2, 3, ALICE))) == ["granted"]
    assert not h.machine.locked_out


def test_spoof_and_unknown_failures_both_count_towards_lockout():
    h = Harness()
    out = h.feed(*frames(0.0, 3, None))
    out += h.feed(*frames(1.0, 3, ALICE, liveness="spoof"))
    out += h.feed(*frames(11.0, 3, None))
    assert kinds(out) == ["denied_unknown", "denied_spoof", "denied_unknown", "denied_lockout"]


def test_failures_outside_the_lockout_window_are_forgotten():
    h = Harness()
    out = []
    for start in (0.0, 40.0, 80.0, 120.0):
        out += h.feed(*frames(start, 3, None))
    assert "denied_lockout" not in kinds(out)


def test_camera_down_splits_the_votes():
    h = Harness()
    assert h.feed(seen(0.0, ALICE), seen(0.1, ALICE)) == []
    h.machine.camera_down(0.15, "no frames for 5 s")
    assert h.feed(seen(0.2, ALICE), seen(0.3, ALICE)) == []
    assert kinds(h.feed(seen(0.4, ALICE))) == ["granted"]


def test_time_going_backwards_is_refused():
    h = Harness()
    h.feed(seen(5.0, ALICE))
    with pytest.raises(ValueError, match="older than the previous"):
        h.feed(seen(4.0, ALICE))


def test_bad_liveness_verdict_is_refused():
    with pytest.raises(ValueError, match="liveness must be one of"):
        Observation(0.0, ALICE, "alice", 0.6, "alive")


def test_decision_section_bounds_and_k_not_above_n():
    section = build_section(DecisionConfig, {"votes_required": 2, "vote_frames": 2}, "decision")
    assert (section.votes_required, section.vote_frames) == (2, 2)
    with pytest.raises(ConfigError, match="decision.votes_required: 4 is more than"):
        build_section(DecisionConfig, {"votes_required": 4, "vote_frames": 3}, "decision")
    with pytest.raises(ConfigError, match="decision.votes_required: 0 is below the minimum 1"):
        build_section(DecisionConfig, {"votes_required": 0}, "decision")
    with pytest.raises(ConfigError, match="decision.cooldown_seconds: expected a number"):
        build_section(DecisionConfig, {"cooldown_seconds": "yes"}, "decision")
