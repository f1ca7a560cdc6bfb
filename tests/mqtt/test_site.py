"""Three terminals and a real broker: Mosquitto on 127.0.0.1 with TLS and a password per
terminal, each terminal a real daemon (replay camera, mock door, real models, its
encrypted gallery) and its broker client on its own gallery connection.

Enrolment at one door reaches the others; a deletion reaches every gallery; a broker
crash loses nothing; a terminal that was away applies deletions before it grants; forged
and replayed people are refused and logged. Every wait is for a condition, with a
deadline (site.wait_for).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from edge.clock import FakeClock
from edge.evaluation import mosquitto
from edge.gallery import outbox, sync
from edge.gallery.events import EventFilter
from edge.gallery.store import DELETED_NAME, Gallery
from edge.gallery.sync import Tombstone
from edge.mqtt import people, topics
from edge.mqtt.seal import open_sealed, seal
from edge.mqtt.service import KEYS_EVERY_S
from edge.mqtt.site_key import SiteKeys, import_site_keys, read_site_keys, rotate_site_key
from tests.helpers import FACE_FRAMES, GAP_FRAMES, OBAMA, REPO, config_text, write_visits
from tests.mqtt.site import SITE, Site, Watcher, wait_for

pytestmark = pytest.mark.skipif(
    not mosquitto.available(), reason="needs the mosquitto broker (apt install mosquitto)"
)
VISIT = GAP_FRAMES + FACE_FRAMES


@pytest.fixture(scope="module")
def visits(tmp_path_factory):
    return write_visits(tmp_path_factory.mktemp("replay") / "obama", 1, GAP_FRAMES)


@pytest.fixture
def site(tmp_path):
    site = Site(tmp_path)
    site.broker.start()
    yield site
    site.close()


def uid_of(config, name: str = OBAMA) -> str | None:
    with Gallery.from_config(config.gallery) as gallery:
        found = [p.uid for p in gallery.people() if p.name == name]
    return found[0] if found else None


def holds(config, uid: str) -> bool:
    with Gallery.from_config(config.gallery) as gallery:
        return any(p.uid == uid for p in gallery.people())


def names_anywhere(config) -> set[str]:
    """Every name the gallery holds: people, and names recorded with events."""
    with Gallery.from_config(config.gallery) as gallery:
        return {p.name for p in gallery.people()} | {
            e.name for e in gallery.events() if e.name is not None
        }


def visit(rig) -> list[str]:
    """obama_2 walks up once; the kinds of what the door decided."""
    before = len(rig.outcomes)
    rig.steps(VISIT)
    return [o.kind for o in rig.outcomes[before:]]


def test_enrolled_at_a_recognised_at_b_and_c_then_deleted_at_b_erased_everywhere(
    site, visits, pipeline, obama_template, rigs, record_property
):
    a, b, c = (site.terminal_config(t, visits, camera={"loop": True}) for t in "abc")
    services = [site.run(config) for config in (a, b, c)]
    wait_for(lambda: all(s.synced() for s in services), "every terminal synced")
    rig_b, rig_c = rigs(b, pipeline), rigs(c, pipeline)
    assert visit(rig_b) == ["denied_unknown"]  # nobody enrolled yet

    with Gallery.from_config(a.gallery) as gallery:  # as 'facegate enrol' does at A
        gallery.add_person(OBAMA, "user", [obama_template], [0.9])
    uid = uid_of(a)
    converge = wait_for(lambda: holds(b, uid) and holds(c, uid), "B and C hold the person")
    record_property("converge_s", converge)
    print(f"\nenrolled at A: B and C hold the person after {converge:.3f} s")
    for rig in (rig_b, rig_c):
        rig.clock.advance(10.0)  # past the denial's cooldown
        assert visit(rig) == ["granted"]
        (granted,) = rig.events("granted")
        assert rig.daemon.gallery.person(granted.person_id).uid == uid
        assert len(rig.pulses()) == 1

    with Gallery.from_config(b.gallery) as gallery:  # 'facegate people delete' at B
        gallery.delete_person(gallery.person(OBAMA).id)
    wait_for(lambda: not holds(a, uid) and not holds(c, uid), "A and C erased the person")
    for config in (a, b, c):
        assert OBAMA not in names_anywhere(config)
        assert DELETED_NAME in names_anywhere(config) or config is a
    rig_c.clock.advance(10.0)
    assert visit(rig_c) == ["denied_unknown"]
    assert len(rig_c.pulses()) == 1  # the one before the deletion
    # what the broker keeps for terminals that were away is the deletion, sealed
    watcher = Watcher(site.broker, [topics.people(SITE)], persistent=False)
    wait_for(lambda: watcher.received(), "the retained deletion")
    (topic, payload, retained) = watcher.received()[0]
    header, plain = open_sealed(read_site_keys(site.key_file), topic, payload)
    assert retained and isinstance(people.decode(header, plain), Tombstone)
    assert header.origin == "b"
    watcher.close()


def test_broker_killed_during_an_enrolment_and_an_event_burst_loses_nothing(
    site, visits, obama_template
):
    a, b = (site.terminal_config(t, visits) for t in "ab")
    watcher = Watcher(site.broker, [topics.events(SITE)])
    services = [site.run(config) for config in (a, b)]
    wait_for(lambda: all(s.synced() for s in services), "both terminals synced")

    with Gallery.from_config(a.gallery) as gallery:
        gallery.add_person(OBAMA, "user", [obama_template], [0.9])
        site.broker.kill()  # while the person's record is on its way, or before
        uid = gallery.person(OBAMA).uid
    site.broker.start()
    wait_for(lambda: holds(b, uid), "B holds the person after the broker came back")

    burst, stop_at = 300, 100
    done = threading.Event()

    def log_burst() -> None:
        with Gallery.from_config(a.gallery) as gallery:
            for i in range(burst):
                gallery.log_event("denied_unknown", 1e9 + i, reason=f"burst {i}")
        done.set()

    writer = threading.Thread(target=log_burst)
    writer.start()
    wait_for(lambda: len(watcher.events()) >= stop_at, "the burst under way")
    site.broker.kill()
    site.broker.start()
    writer.join()
    with Gallery.from_config(a.gallery) as gallery, gallery.reading() as conn:
        sent = [e.seq for e in outbox.pending(conn, 0, 100000)]  # undelivered now
    wait_for(
        lambda: (
            {e["reason"] for e in watcher.events() if e["terminal"] == "a"}
            >= {f"burst {i}" for i in range(burst)}
        ),
        "every event of the burst at the subscriber",
    )

    def waiting() -> int:
        with Gallery.from_config(a.gallery) as gallery, gallery.reading() as conn:
            return outbox.waiting(conn)

    wait_for(lambda: waiting() == 0, "A's outbox delivered")
    by_terminal: dict[str, list[int]] = {}
    seen: dict[str, dict] = {}
    for event in watcher.events():
        if event["id"] in seen:
            assert seen[event["id"]] == event  # a duplicate is the same event
            continue
        seen[event["id"]] = event
        by_terminal.setdefault(event["terminal"], []).append(event["seq"])
    for terminal, seqs in by_terminal.items():
        assert seqs == sorted(seqs), f"{terminal}'s events out of order"
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"{terminal} lost events"
    print(
        f"\n{len(watcher.events())} messages for {len(seen)} events; undelivered at the "
        f"restart: {len(sent)}"
    )
    watcher.close()


def test_a_terminal_away_during_a_deletion_applies_it_before_it_grants_anyone(
    site, visits, pipeline, obama_template, rigs
):
    a, b = (site.terminal_config(t, visits) for t in "ab")
    c = site.terminal_config(
        "c",
        visits,
        camera={"loop": True},
        mqtt={"max_offline_seconds": 60.0},
        decision={"denial_log_seconds": 0.5},  # each visit's denial is logged
    )
    with Gallery.from_config(a.gallery) as gallery:
        gallery.add_person(OBAMA, "user", [obama_template], [0.9])
    uid = uid_of(a)
    clock_c = FakeClock()
    rig_c = rigs(c, pipeline, clock=clock_c)
    assert set(visit(rig_c)) == {"denied_unknown"}  # never synced: nobody known yet
    service_a, service_b = site.run(a), site.run(b)
    service_c = site.run(c, clock=clock_c)
    wait_for(lambda: holds(c, uid) and service_c.synced(), "C synced with the person")
    rig_c.clock.advance(10.0)
    assert visit(rig_c) == ["granted"]

    service_c.halt()  # C is cut off from the site
    with Gallery.from_config(b.gallery) as gallery:
        gallery.delete_person(gallery.person(OBAMA).id)
    wait_for(lambda: not holds(a, uid), "A erased the person")
    assert holds(c, uid)  # C could not hear of it
    rig_c.clock.advance(61.0)
    assert visit(rig_c) == ["denied_offline"]
    assert rig_c.events("denied_offline")[0].reason == "offline"

    service_c = site.run(c, clock=clock_c)  # back on the network
    wait_for(service_c.synced, "C synced again")
    assert not holds(c, uid)
    rig_c.clock.advance(10.0)
    assert set(visit(rig_c)) == {"denied_unknown"}
    assert len(rig_c.pulses()) == 1  # only the grant before the deletion
    assert OBAMA not in names_anywhere(c)
    del service_a, service_b


def test_forged_and_replayed_person_messages_are_refused_and_logged(site, visits, obama_template):
    a, b = (site.terminal_config(t, visits) for t in "ab")
    services = [site.run(config) for config in (a, b)]
    wait_for(lambda: all(s.synced() for s in services), "both terminals synced")
    watcher = Watcher(site.broker, [topics.people(SITE)], persistent=False)
    with Gallery.from_config(a.gallery) as gallery:
        person_id = gallery.add_person(OBAMA, "user", [obama_template], [0.9])
        uid = gallery.person(person_id).uid
    wait_for(lambda: holds(b, uid), "B holds the person")
    wait_for(lambda: watcher.received(topics.person(SITE, uid)), "the record on the broker")
    first = watcher.received(topics.person(SITE, uid))[0][1]
    with Gallery.from_config(a.gallery) as gallery:
        gallery.set_enabled(person_id, False)  # revision 2
    wait_for(lambda: not _enabled(b, uid), "B has revision 2")

    # A's client published revision 1 and would take it back for its own echo: a new run
    # of it, subscribed before the replay, takes the replay for what it is (restarted
    # after the replay, its old run could have swallowed it, and B's repair could reach
    # the new run first)
    site.services[0].halt()
    wait_for(site.run(a).synced, "A's client back")
    # replay revision 1 (authentic, older): refused and logged by both
    watcher.client.publish(topics.person(SITE, uid), first, qos=1, retain=True)
    # forge a new person without the site key
    forger = SiteKeys((os.urandom(32),))
    forged_uid = "f0" * 16
    record = people.decode(
        *open_sealed(read_site_keys(site.key_file), topics.person(SITE, uid), first)
    )
    forged = seal(
        forger, topics.person(SITE, forged_uid), forged_uid, 99, "a", people.encode(record)
    )
    watcher.client.publish(topics.person(SITE, forged_uid), forged, qos=1, retain=True)
    for config in (a, b):
        for words in ("older than the gallery's", "which this terminal does not have"):
            wait_for(
                lambda config=config, words=words: any(words in r for r in _refusals(config)),
                f"refusal logged: {words}",
            )
        assert not holds(config, forged_uid)
        assert not _enabled(config, uid)  # still revision 2
    # and the broker holds revision 2 again: a terminal refusing the replay republished it
    keys, topic = read_site_keys(site.key_file), topics.person(SITE, uid)
    wait_for(
        lambda: open_sealed(keys, topic, watcher.received(topic)[-1][1])[0].revision == 2,
        "revision 2 retained again",
    )
    watcher.close()


def _refusals(config) -> list[str]:
    with Gallery.from_config(config.gallery) as gallery:
        return [e.reason for e in gallery.events(EventFilter(kind="sync_refused"))]


def _enabled(config, uid: str) -> bool:
    with Gallery.from_config(config.gallery) as gallery:
        return next(p.enabled for p in gallery.people() if p.uid == uid)


def test_facegate_mqtt_runs_as_a_process_and_says_offline_when_stopped(site, visits, tmp_path):
    site.terminal_config("a", visits)  # its gallery
    path = tmp_path / "a.toml"
    path.write_text(config_text(tmp_path / "a", visits, mqtt=site.mqtt_section("a")))
    watcher = Watcher(site.broker, [topics.state(SITE, "a", "availability")], persistent=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "edge", "mqtt", "--config", str(path)],
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: b"online" in [p for _, p, _ in watcher.received()], "online")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    wait_for(lambda: watcher.received()[-1][1] == b"offline", "offline after the stop")
    watcher.close()
    assert stderr.count("connected to the broker") == 1


def test_a_rotated_site_key_reseals_everyone_and_a_terminal_that_imports_it_late_catches_up(
    site, visits, obama_template, tmp_path
):
    key_a, key_b = tmp_path / "a.key", tmp_path / "b.key"
    for key in (key_a, key_b):  # each terminal its own copy of the site's key file
        import_site_keys(key, site.key_file.read_text())
    a = site.terminal_config("a", visits, mqtt={"site_key_file": str(key_a)})
    b = site.terminal_config("b", visits, mqtt={"site_key_file": str(key_b)})
    watcher = Watcher(site.broker, [topics.people(SITE)], persistent=False)
    service_a, service_b = site.run(a), site.run(b)
    with Gallery.from_config(a.gallery) as gallery:
        uid = gallery.person(gallery.add_person(OBAMA, "user", [obama_template], [0.9])).uid
    wait_for(lambda: holds(b, uid), "B holds the person")
    old = read_site_keys(key_b)
    new = rotate_site_key(key_b)  # 'facegate site-key rotate' at B
    service_b.clock.advance(KEYS_EVERY_S)  # when B's client looks at its key file again
    topic = topics.person(SITE, uid)

    def sealed_with(key_id: str) -> bool:
        return any(
            open_sealed(new, topic, payload)[0].key_id == key_id
            for _, payload, _ in watcher.received(topic)
        )

    wait_for(lambda: sealed_with(new.current_id), "B sealed the person again, new key")
    assert sealed_with(old.current_id)  # the first copy still opens with the kept key
    with Gallery.from_config(b.gallery) as gallery:
        gallery.set_enabled(gallery.person(OBAMA).id, False)  # revision 2, new key
    wait_for(lambda: any("does not have" in r for r in _refusals(a)), "A refused the unknown key")
    assert _enabled(a, uid)
    import_site_keys(key_a, key_b.read_text())  # 'facegate site-key import' at A
    service_a.clock.advance(KEYS_EVERY_S)
    wait_for(lambda: not _enabled(a, uid), "A took B's change once it had the key")
    watcher.close()


def test_the_broker_client_killed_mid_burst_loses_no_event(site, visits, tmp_path):
    config = site.terminal_config("a", visits)
    path = tmp_path / "a.toml"
    path.write_text(config_text(tmp_path / "a", visits, mqtt=site.mqtt_section("a")))
    watcher = Watcher(site.broker, [topics.events(SITE)])

    def client() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "edge", "mqtt", "--config", str(path)],
            env=dict(os.environ, PYTHONPATH=str(REPO)),
            stderr=subprocess.DEVNULL,
        )

    process = client()
    burst = 400
    with Gallery.from_config(config.gallery) as gallery:
        sync.configure(gallery, "a", config.mqtt.outbox_retention_s)  # as the daemon does
        for i in range(burst):
            gallery.log_event("denied_unknown", 1e9 + i, reason=f"burst {i}")
    try:
        wait_for(lambda: len(watcher.events()) >= 50, "the burst under way")
        process.kill()  # a crash: nothing saved, nothing said
        process.wait(60)
        process = client()
        wait_for(
            lambda: len({e["id"] for e in watcher.events()}) >= burst,
            "every event after the restart",
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    unique: dict[str, dict] = {}
    for event in watcher.events():
        assert unique.setdefault(event["id"], event) == event
    seqs = [e["seq"] for e in unique.values()]
    assert seqs == list(range(1, burst + 1))  # complete, and in order once duplicates go
    watcher.close()
