"""The daemon end to end: real models, a real encrypted gallery, replayed visits
(the demo's photos: obama_1 is enrolled, obama_2 and biden_1 walk up), a mock door
and a FakeClock driven one ``step`` at a time: who gets in, and enrolment at the
door. The loop's other duties (camera loss, the event log first, systemd, door
inputs, the control socket) are in test_daemon.py on a stub pipeline; the real
service in a subprocess, stopped by signals mid-pulse, in test_daemon_faults.py.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, TimeoutError
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.control import CaptureFeed, ControlError
from edge.evaluation.demo_sequence import BACKGROUND_BGR, FRAME_SIZE, write_sequence
from edge.evaluation.visits import replay_visit
from edge.gallery.enrolment import templates_from_json
from edge.gallery.store import Gallery, create_gallery
from tests.helpers import (
    FACE_FRAMES,
    FACES,
    FPS,
    GAP_FRAMES,
    OBAMA,
    WALL_START,
    enrol_obama,
    make_config,
)

CONTACT_PIN, EXIT_PIN = 27, 22


# --- module-wide: models, replay folders, the enrolled face ---------------------------


@pytest.fixture(scope="module")
def replays(tmp_path_factory) -> Path:
    """One folder per visitor (a gap, then the face approaching) and one of empty frames."""
    root = tmp_path_factory.mktemp("replays")
    for name in ("obama_2", "biden_1"):
        write_sequence([FACES / f"{name}.jpg"], root / name, FACE_FRAMES, GAP_FRAMES)
    (root / "empty").mkdir()
    blank = np.empty((FRAME_SIZE[1], FRAME_SIZE[0], 3), np.uint8)
    blank[:] = BACKGROUND_BGR
    for i in range(3):
        cv2.imwrite(str(root / "empty" / f"frame_{i:04d}.jpg"), blank)
    return root


VISIT = GAP_FRAMES + FACE_FRAMES


# --- 1. who gets in ----------------------------------------------------------------------


def test_enrolled_person_gets_one_pulse_per_visit_and_another_after_the_cooldown(
    tmp_path, replays, pipeline, obama_template, rigs
):
    config = make_config(tmp_path, replays / "obama_2", camera={"loop": True})
    person_id = enrol_obama(config, obama_template)
    rig = rigs(config, pipeline)

    rig.steps(VISIT)
    assert len(rig.pulses()) == 1
    assert [e.person_id for e in rig.events("granted")] == [person_id]

    rig.steps(VISIT)  # the replay loops: the same person comes back after 0.8 s away
    pulses = rig.pulses()
    assert len(pulses) == 2
    for on, off in pulses:
        assert off == pytest.approx(on + config.door.unlock_seconds, abs=1.0 / FPS)
    assert pulses[1][0] - pulses[0][0] == pytest.approx(VISIT / FPS, abs=2.0 / FPS)
    granted = rig.events("granted")
    assert [(e.person_id, e.name) for e in granted] == [(person_id, OBAMA)] * 2
    assert all(e.score > 0.4 for e in granted)
    assert [d.kind for d in rig.outcomes] == ["granted", "granted"]
    assert not rig.daemon.door.unlocked


def test_unknown_person_is_denied_and_the_door_stays_locked(
    tmp_path, replays, pipeline, obama_template, rigs
):
    config = make_config(tmp_path, replays / "biden_1")
    enrol_obama(config, obama_template)
    rig = rigs(config, pipeline)
    rig.steps(VISIT)
    assert rig.relay() == []
    denied = rig.events("denied_unknown")
    assert len(denied) == 1 and denied[0].person_id is None and denied[0].reason == "no match"
    assert rig.events("granted") == []


def test_disabled_person_is_denied(tmp_path, replays, pipeline, obama_template, rigs):
    config = make_config(tmp_path, replays / "obama_2")
    person_id = enrol_obama(config, obama_template)
    rig = rigs(config, pipeline)
    rig.daemon.gallery.set_enabled(person_id, False)
    rig.steps(VISIT)
    assert rig.relay() == []
    denied = rig.events("denied_disabled")
    assert [(e.person_id, e.reason) for e in denied] == [(person_id, "disabled")]
    assert rig.events("granted") == []


@pytest.mark.parametrize(
    "validity, reason",
    [
        ({"valid_until": -3600.0}, "expired"),
        ({"valid_from": 86400.0}, "not_yet_valid"),
    ],
)
def test_person_outside_their_schedule_is_denied(
    tmp_path, replays, pipeline, obama_template, rigs, validity, reason
):
    config = make_config(tmp_path, replays / "obama_2")
    person_id = enrol_obama(
        config, obama_template, **{k: WALL_START + offset for k, offset in validity.items()}
    )
    rig = rigs(config, pipeline)
    rig.steps(VISIT)
    assert rig.relay() == []
    denied = rig.events("denied_schedule")
    assert [(e.person_id, e.reason) for e in denied] == [(person_id, reason)]
    assert [d.action for d in rig.outcomes] == ["stay locked"]


def nuaa_replay(root: Path, frames: list[Path], name: str) -> Path:
    """A replay folder of NUAA frames, in order."""
    folder = root / name
    folder.mkdir()
    for i, path in enumerate(frames):
        (folder / f"frame_{i:04d}.jpg").symlink_to(path)
    return folder


def test_with_liveness_on_a_printed_photo_is_denied_and_the_live_person_granted(
    tmp_path, shared_data, pipeline, rigs
):
    # NUAA subject 0009: frames nothing in facegate was fitted or tuned on.
    live = sorted((shared_data / "nuaa_train" / "ClientRaw" / "0009").glob("*_01_*.jpg"))
    prints = sorted((shared_data / "nuaa_train" / "ImposterRaw" / "0009").glob("*.jpg"))
    enrol_image = cv2.imread(str(live[0]))
    template = pipeline.embed(enrol_image, pipeline.detect(enrol_image)[0])
    spoof_config = make_config(
        tmp_path, nuaa_replay(tmp_path, prints[:20], "prints"), liveness={"level": "standard"}
    )
    create_gallery(spoof_config.gallery)
    with Gallery.from_config(spoof_config.gallery) as gallery:
        person_id = gallery.add_person(
            "subject 0009", "user", [template], [0.9], now=WALL_START - 1.0
        )
    rig = rigs(spoof_config, pipeline)
    rig.steps(20)
    assert rig.relay() == []
    assert rig.events("granted") == []
    spoofed = rig.events("denied_spoof")
    assert len(spoofed) == 1 and "rgb score" in spoofed[0].reason
    assert spoofed[0].liveness < spoof_config.liveness.threshold

    live_config = make_config(
        tmp_path, nuaa_replay(tmp_path, live[1:21], "live"), liveness={"level": "standard"}
    )
    rig = rigs(live_config, pipeline)
    rig.steps(20)
    granted = rig.events("granted")
    assert [e.person_id for e in granted] == [person_id]
    assert granted[0].liveness >= live_config.liveness.threshold
    assert len(rig.pulses()) == 1


@pytest.mark.parametrize("tracking", [True, False])
def test_the_demo_visit_is_decided_within_five_frames_and_tracking_embeds_little(
    tmp_path, replays, pipeline, obama_template, tracking
):
    config = make_config(tmp_path, replays / "obama_2", tracking={"enabled": tracking})
    enrol_obama(config, obama_template)
    visit = replay_visit(config, pipeline, replays / "obama_2", FPS)
    assert (visit["decisions"], visit["decided_as"]) == (["granted"], OBAMA)
    assert visit["first_sight"] == GAP_FRAMES and visit["frames_with_a_face"] == FACE_FRAMES
    assert visit["frames_to_decision"] <= 5
    if tracking:  # the deciding frames, then detection only while the face walks up
        assert visit["embedded_visit"] == visit["frames_to_decision"]
    else:
        assert visit["embedded_visit"] == FACE_FRAMES


# --- 2. enrolment at the door -----------------------------------------------------------


def test_enrol_button_after_an_admin_is_recognised_enrols_the_next_face(
    tmp_path, pipeline, obama_template, rigs
):
    """Admin recognised -> enrol button held -> the next person's frames become a new,
    separate person (never the admin's own face)."""
    enrol_pin = 23
    visits = tmp_path / "visits"
    write_sequence([FACES / "obama_2.jpg", FACES / "biden_1.jpg"], visits, FACE_FRAMES, GAP_FRAMES)
    config = make_config(
        tmp_path,
        visits,
        door={"enrol_button_pin": enrol_pin, "enrol_hold_seconds": 0.5},
        enrolment={"frames": 4, "min_templates": 2, "admin_window_s": 5.0},
    )
    create_gallery(config.gallery)
    with Gallery.from_config(config.gallery) as gallery:
        admin = gallery.add_person(OBAMA, "admin", [obama_template], [0.9], now=WALL_START - 1.0)
    rig = rigs(config, pipeline)

    def kinds() -> list[str]:
        return [d.kind for d in rig.outcomes]

    rig.gpio.drive(enrol_pin, True)  # released (active low)
    rig.step_until(lambda: "granted" in kinds())  # the administrator is recognised
    rig.steps(FACE_FRAMES)  # ... and walks away
    rig.gpio.drive(enrol_pin, False)
    rig.step_until(lambda: "enrolment_started" in kinds(), limit=10)
    rig.gpio.drive(enrol_pin, True)
    rig.step_until(lambda: "enrolled" in kinds(), limit=40)

    people = rig.daemon.gallery.people()
    (new,) = [p for p in people if p.id != admin]
    assert new.role == "user" and new.templates >= 2
    biden = cv2.imread(str(FACES / "biden_1.jpg"))
    match = rig.daemon.matcher.match(pipeline.embed(biden, pipeline.detect(biden)[0]))
    assert match.person_id == new.id
    assert [e.kind for e in rig.events("enrolled")] == ["enrolled", "enrolled"]


def test_enrol_button_without_an_admin_is_refused(
    tmp_path, replays, pipeline, obama_template, rigs
):
    enrol_pin = 23
    config = make_config(
        tmp_path,
        replays / "obama_2",
        door={"enrol_button_pin": enrol_pin, "enrol_hold_seconds": 0.5},
    )
    enrol_obama(config, obama_template)  # a user, not an administrator
    rig = rigs(config, pipeline)
    rig.gpio.drive(enrol_pin, True)
    rig.step_until(lambda: any(d.kind == "granted" for d in rig.outcomes))
    rig.gpio.drive(enrol_pin, False)
    rig.step_until(lambda: any(d.kind == "enrolment_refused" for d in rig.outcomes), limit=10)
    refused = [d for d in rig.outcomes if d.kind == "enrolment_refused"]
    assert "administrator" in refused[0].reason
    assert len(rig.daemon.gallery.people()) == 1


# --- 3. what local tools see: the preview, and a capture for the web app -----------------


def control_config(tmp_path, replay, **sections):
    return make_config(
        tmp_path,
        replay,
        camera={"loop": True},
        control={"socket": str(tmp_path / "control.sock")},
        **sections,
    )


def test_the_preview_gets_the_frame_and_what_was_seen_only_while_watched(
    tmp_path, replays, pipeline, obama_template, rigs
):
    config = control_config(tmp_path, replays / "obama_2")
    person_id = enrol_obama(config, obama_template)
    rig = rigs(config, pipeline)
    hub = rig.daemon.control
    rig.steps(VISIT)
    assert hub.next_preview(-1, timeout=0) is None  # nobody watched: nothing handed over
    with hub.watch_preview():
        rig.steps(VISIT)  # ends on a frame of the face
        frame = hub.next_preview(-1, timeout=0)
    assert frame.image.shape[:2] == (FRAME_SIZE[1], FRAME_SIZE[0])
    (face,) = frame.info["faces"]
    assert face["passed"] and face["reasons"] == []
    x1, y1, x2, y2 = face["box"]
    assert 0 <= x1 < x2 <= FRAME_SIZE[0] and 0 <= y1 < y2 <= FRAME_SIZE[1]
    person = frame.info["person"]
    assert person["person_id"] == person_id and person["similarity"] > 0.4
    assert person["liveness"] is None  # liveness is off in these rigs


@pytest.mark.parametrize("tracking", [True, False])
def test_the_preview_shows_a_decided_face_it_follows_with_what_its_last_check_saw(
    tmp_path, replays, pipeline, obama_template, rigs, tracking
):
    config = control_config(tmp_path, replays / "obama_2", tracking={"enabled": tracking})
    person_id = enrol_obama(config, obama_template)
    rig = rigs(config, pipeline)
    hub = rig.daemon.control
    people = []
    with hub.watch_preview():
        for _ in range(VISIT):
            rig.step()
            frame = hub.next_preview(-1, timeout=0)
            if frame is not None and frame.info["person"] is not None:
                people.append((frame.info["person"], frame.info["faces"]))
    assert rig.events("granted")
    assert all(p["person_id"] == person_id and p["similarity"] > 0.4 for p, _ in people)
    followed = [(p, faces) for p, faces in people if p["tracked"]]
    if not tracking:
        assert len(people) == FACE_FRAMES and followed == []
        return
    # once decided, the face is not embedded: its box is this frame's, its figures the
    # last check's, and its face entry says it was only followed
    assert followed and len(followed) < len(people)
    for person, (face,) in followed:
        assert face["tracked"] and face["passed"] and face["box"] == person["box"]


def capture(rig, feed, limit: int = 200) -> dict:
    """Ask the loop for a capture (as the control server does) while it steps."""
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(rig.daemon.control.submit, "capture", {"by": "alice", "feed": feed})
        for _ in range(limit):
            try:
                return answer.result(timeout=0.01)
            except TimeoutError:
                rig.step()
        return answer.result(timeout=0)


def test_a_capture_for_the_web_app_guides_the_person_and_hands_over_the_templates(
    tmp_path, replays, pipeline, rigs
):
    config = control_config(tmp_path, replays / "obama_2", enrolment={"frames": 4})
    create_gallery(config.gallery)
    rig = rigs(config, pipeline)
    feed = CaptureFeed()
    assert capture(rig, feed) == {"needed": 4}
    messages: list[dict] = []
    for _ in range(3 * VISIT):
        rig.step()
        messages += feed.take(timeout=0)
        if messages and "done" in messages[-1]:
            break
    guidance = {m["progress"]["guidance"] for m in messages if "progress" in m}
    assert "good: keep looking at the camera" in guidance
    assert "step in front of the camera" in guidance  # the empty frames before the face
    assert "done" in messages[-1], messages[-3:]
    templates = templates_from_json(messages[-1]["done"])
    assert 1 <= len(templates.embeddings) <= config.enrolment.max_templates
    assert templates.embeddings[0].model_id == pipeline.model_id
    assert rig.daemon.gallery.people() == []  # the web app enrols them, with their name
    assert rig.events("granted") == []  # no decisions while capturing


def test_a_capture_its_tool_abandons_lets_the_door_decide_again(
    tmp_path, replays, pipeline, obama_template, rigs
):
    config = control_config(tmp_path, replays / "obama_2")
    enrol_obama(config, obama_template)
    rig = rigs(config, pipeline)
    feed = CaptureFeed()
    capture(rig, feed)
    assert rig.daemon.enrolment.state == "collecting"
    feed.cancel()  # the browser went away
    rig.step()
    assert rig.daemon.enrolment.state == "idle"
    rig.steps(2 * VISIT)
    assert rig.events("granted")


def test_a_second_capture_is_refused_while_one_runs(tmp_path, replays, pipeline, rigs):
    config = control_config(tmp_path, replays / "obama_2")
    create_gallery(config.gallery)
    rig = rigs(config, pipeline)
    capture(rig, CaptureFeed())
    with pytest.raises(ControlError, match="already collecting"):
        capture(rig, CaptureFeed())
