"""Fusion of the liveness layers at each level, with scripted layer outputs."""

import numpy as np
import pytest

from edge.liveness.nir import NirResult
from edge.liveness.policy import LivenessChecker, LivenessConfig
from edge.types import Face, Frame, Mesh
from edge.vision.landmarks import (
    LEFT_EYE,
    MOUTH_CORNERS,
    NOSE_TIP,
    RIGHT_EYE,
    eye_openness,
    five_points,
)
from tests.liveness.test_motion import FACE_3D, TURN, flat, project


class ScriptedRgb:
    """Stands in for the RGB model: returns the scores it is given, in order."""

    model_id = "scripted"

    def __init__(self, scores):
        self.scores = list(scores)

    def score(self, image, face):
        return self.scores.pop(0)


class ScriptedNir:
    def __init__(self, result: NirResult):
        self.result = result
        self.seen = 0

    def check(self, ir_image, face):
        self.seen += 1
        return self.result


def mesh_points(five: np.ndarray, openness: float) -> np.ndarray:
    """A (468, 3) mesh whose five_points are ``five`` and whose eye_openness is ``openness``."""
    points = np.zeros((468, 3), np.float32)
    half = 0.2 * float(np.linalg.norm(five[1] - five[0]))  # half an eye's width
    for eye, centre in ((RIGHT_EYE, five[0]), (LEFT_EYE, five[1])):
        (corner_a, corner_b), lids = eye
        points[corner_a, :2], points[corner_b, :2] = centre - (half, 0), centre + (half, 0)
        for upper, lower in lids:
            points[upper, :2] = centre - (0, openness * half)
            points[lower, :2] = centre + (0, openness * half)
    points[NOSE_TIP, :2] = five[2]
    points[list(MOUTH_CORNERS), :2] = five[3:]
    return points


IMAGE = np.zeros((480, 640, 3), np.uint8)


def face_at(points: np.ndarray) -> Face:
    x1, y1 = points.min(axis=0) - 40
    x2, y2 = points.max(axis=0) + 40
    return Face((float(x1), float(y1), float(x2), float(y2)), points.astype(np.float32), 0.9)


def frames(tracks, start=0.0, step=0.1, ir=None, openness=None):
    """(frame, face, mesh) per landmark track entry; eyes open unless ``openness`` says."""
    openness = openness or [0.3] * len(tracks)
    return [
        (
            Frame(IMAGE, start + i * step, seq=i + 1, ir=ir),
            face_at(p),
            Mesh(mesh_points(p, o), presence=1.0),
        )
        for i, (p, o) in enumerate(zip(tracks, openness, strict=True))
    ]


STILL = [project(FACE_3D, 0)] * 6


def run(checker, sequence):
    return [checker.check(frame, face, mesh) for frame, face, mesh in sequence]


def test_the_scripted_mesh_has_the_geometry_it_claims():
    five = project(FACE_3D, 10)
    points = mesh_points(five, 0.27)
    np.testing.assert_allclose(five_points(points), five, atol=1e-4)
    assert eye_openness(points) == pytest.approx((0.27, 0.27))


def test_standard_passes_a_still_face_with_a_good_score():
    checker = LivenessChecker(LivenessConfig(), ScriptedRgb([0.9] * 6))
    verdicts = run(checker, frames(STILL))
    assert [v.verdict for v in verdicts] == ["live"] * 6
    assert verdicts[-1].score == pytest.approx(0.9)


def test_standard_denies_a_low_score_averaged_over_the_window():
    checker = LivenessChecker(LivenessConfig(threshold=0.5), ScriptedRgb([0.9, 0.1, 0.1, 0.1]))
    verdicts = run(checker, frames(STILL[:4]))
    assert [v.verdict for v in verdicts] == ["live", "live", "spoof", "spoof"]
    assert verdicts[2].reasons == ("rgb score 0.37 below 0.5",) and verdicts[2].cues == ("rgb",)


def test_a_turning_flat_picture_is_a_spoof_even_with_a_good_score():
    tracks = [project(flat(FACE_3D), y) for y in TURN]
    checker = LivenessChecker(LivenessConfig(), ScriptedRgb([0.95] * 6))
    verdicts = run(checker, frames(tracks))
    assert verdicts[-1].verdict == "spoof"
    assert any("flat picture" in r for r in verdicts[-1].reasons)
    assert verdicts[-1].cues == ("flat",)


def test_history_restarts_after_a_gap_so_old_scores_do_not_vouch():
    checker = LivenessChecker(
        LivenessConfig(threshold=0.5, track_gap_seconds=1.0), ScriptedRgb([0.9, 0.9, 0.9, 0.2])
    )
    first = run(checker, frames(STILL[:3]))
    later = run(checker, frames(STILL[:1], start=5.0))
    assert first[-1].verdict == "live"
    assert later[0].verdict == "spoof"  # 0.2 alone, not averaged with the 0.9s


def test_each_tracked_face_keeps_its_own_history():
    # Two faces in view at once, their frames interleaved: one blinks, one scores low.
    checker = LivenessChecker(
        LivenessConfig(level="strict", strict_threshold=0.8),
        ScriptedRgb([0.9, 0.2, 0.9, 0.2, 0.9, 0.2, 0.9, 0.2]),
    )
    blinker = frames(STILL[:4], openness=[0.3, 0.05, 0.3, 0.3])
    still = frames(STILL[:4], start=0.05)
    verdicts: dict[int, list[str]] = {1: [], 2: []}
    for a, b in zip(blinker, still, strict=True):
        verdicts[1].append(checker.check(*a, track=1).verdict)
        verdicts[2].append(checker.check(*b, track=2).verdict)
    assert verdicts[1][-1] == "live"  # its own blink and scores, not the other's 0.2s
    assert verdicts[2] == ["spoof"] * 4  # and the blink next to it vouches for nothing


def test_a_forgotten_track_starts_again_with_no_history():
    checker = LivenessChecker(
        LivenessConfig(level="strict", strict_threshold=0.8), ScriptedRgb([0.9] * 5)
    )
    sequence = frames(STILL[:5], openness=[0.3, 0.05, 0.3, 0.3, 0.3])
    assert [checker.check(*f, track=7).verdict for f in sequence[:3]][-1] == "live"
    checker.forget(7)  # another face took the track: the blink was not theirs
    assert [checker.check(*f, track=7).verdict for f in sequence[3:]] == ["inconclusive"] * 2


def test_nir_failure_is_a_spoof_and_a_missing_ir_frame_is_inconclusive():
    failing = ScriptedNir(NirResult(False, "no face in the infrared frame"))
    checker = LivenessChecker(LivenessConfig(), ScriptedRgb([0.9, 0.9]), failing)
    ir = np.zeros((480, 640), np.uint8)
    (verdict,) = run(checker, frames(STILL[:1], ir=ir))
    assert verdict.verdict == "spoof" and verdict.reasons == ("no face in the infrared frame",)
    assert verdict.cues == ("nir",)
    (verdict,) = run(checker, frames(STILL[:1], start=0.1))
    assert verdict.verdict == "inconclusive" and verdict.reasons == ("no infrared frame",)
    passing = ScriptedNir(NirResult(True))
    checker = LivenessChecker(LivenessConfig(), ScriptedRgb([0.9]), passing)
    assert run(checker, frames(STILL[:1], ir=ir))[0].verdict == "live" and passing.seen == 1


def test_strict_waits_for_a_blink():
    openness = [0.3, 0.3, 0.05, 0.3, 0.3, 0.3]
    checker = LivenessChecker(
        LivenessConfig(level="strict", strict_threshold=0.8), ScriptedRgb([0.9] * 6)
    )
    verdicts = [v.verdict for v in run(checker, frames(STILL, openness=openness))]
    assert verdicts[:3] == ["inconclusive"] * 3
    assert verdicts[3:] == ["live"] * 3


def test_strict_accepts_a_head_turn_with_depth_instead_of_a_blink():
    tracks = [project(FACE_3D, y) for y in TURN]
    checker = LivenessChecker(LivenessConfig(level="strict"), ScriptedRgb([0.9] * 6))
    verdicts = [v.verdict for v in run(checker, frames(tracks))]
    assert verdicts[0] == "inconclusive" and verdicts[-1] == "live"


def test_strict_uses_its_own_higher_threshold():
    checker = LivenessChecker(
        LivenessConfig(level="strict", threshold=0.5, strict_threshold=0.8), ScriptedRgb([0.7])
    )
    assert checker.threshold == 0.8
    assert run(checker, frames(STILL[:1]))[0].verdict == "spoof"


def test_a_frame_the_mesh_does_not_see_as_a_face_is_inconclusive_and_not_remembered():
    checker = LivenessChecker(LivenessConfig(level="strict"), ScriptedRgb([0.9] * 6))
    sequence = frames(STILL, openness=[0.3, 0.3, 0.3, 0.02, 0.3, 0.3])
    frame, face, mesh = sequence[3]  # the "blink" comes from a mesh that saw no face
    sequence[3] = (frame, face, Mesh(mesh.points, presence=0.1))
    verdicts = run(checker, sequence)
    assert verdicts[3].verdict == "inconclusive"
    assert verdicts[3].reasons == ("the face mesh sees no face",)
    assert [v.verdict for v in verdicts] == ["inconclusive"] * 6  # no blink was counted


def test_level_off_has_no_checker():
    with pytest.raises(ValueError):
        LivenessChecker(LivenessConfig(level="off"), ScriptedRgb([]))


IR = np.zeros((480, 640), np.uint8)


@pytest.mark.parametrize(
    "rgb, nir_passes, turning_flat, cues",
    [
        (0.95, False, False, ("nir",)),  # IR says spoof, RGB says live: denied
        (0.95, True, True, ("flat",)),  # moves like a picture, RGB and IR say live
        (0.10, True, False, ("rgb",)),  # RGB says spoof, IR says live
        (0.10, False, True, ("rgb", "flat", "nir")),
    ],
)
def test_any_enabled_layer_saying_spoof_denies(rgb, nir_passes, turning_flat, cues):
    tracks = [project(flat(FACE_3D), y) for y in TURN] if turning_flat else STILL
    nir = ScriptedNir(NirResult(True) if nir_passes else NirResult(False, "paper in infrared"))
    checker = LivenessChecker(LivenessConfig(), ScriptedRgb([rgb] * 6), nir)
    verdict = run(checker, frames(tracks, ir=IR))[-1]
    assert verdict.verdict == "spoof" and verdict.cues == cues


def test_a_nan_rgb_score_is_a_spoof():
    checker = LivenessChecker(LivenessConfig(), ScriptedRgb([float("nan")]))
    (verdict,) = run(checker, frames(STILL[:1]))
    assert verdict.verdict == "spoof" and verdict.cues == ("rgb",)


@pytest.mark.parametrize("level", ["standard", "strict"])
def test_a_calibrated_threshold_replaces_the_configured_one_at_both_levels(level):
    config = LivenessConfig(level=level, threshold=0.5, strict_threshold=0.8)
    checker = LivenessChecker(config, ScriptedRgb([0.3] * 6), calibrated_threshold=0.25)
    assert checker.threshold == 0.25
    verdicts = run(checker, frames(STILL))
    # Passing the score is not enough at strict: a blink or a turn is still asked for.
    assert verdicts[-1].verdict == ("live" if level == "standard" else "inconclusive")
    checker = LivenessChecker(config, ScriptedRgb([0.2]), calibrated_threshold=0.25)
    assert run(checker, frames(STILL[:1]))[0].verdict == "spoof"
