"""The gallery's side of a site: versions by (revision, origin), tombstones that erase,
refusals that are logged, the outbox beside the event log, max_offline."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edge.gallery import outbox, sync
from edge.gallery.events import EventFilter
from edge.gallery.outbox import OutboxEvent
from edge.gallery.store import DELETED_NAME
from edge.gallery.sync import PersonRecord, Template, Tombstone
from edge.types import Embedding, EventKind, Refusal, SyncOutcome

MODEL = "sface_2021dec"
KID = "k1"


def unit(seed: int, model: str = MODEL) -> Embedding:
    v = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return Embedding(v / np.linalg.norm(v), model)


def record(uid: str = "u" * 32, revision: int = 5, origin: str = "b", **changes) -> PersonRecord:
    vector = unit(7).vector.astype("<f4").tobytes()
    base = PersonRecord(
        uid=uid,
        revision=revision,
        origin=origin,
        name="Grace",
        role="user",
        enabled=True,
        valid_from=None,
        valid_until=None,
        schedule=None,
        created=50.0,
        templates=(Template(MODEL, vector, 0.9),),
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture
def site(gallery):
    sync.configure(gallery, "a", 86400.0)
    return gallery


def refusals(gallery) -> list[str]:
    return [e.reason for e in gallery.events(EventFilter(kind="sync_refused"))]


def test_local_changes_take_the_next_revision_of_this_terminal(site):
    pid = site.add_person("Ada", "user", [unit(1)], [0.9], now=10.0)
    first = sync.to_publish(site, KID)
    assert [(r.name, r.revision, r.origin) for r in first] == [("Ada", 1, "a")]
    sync.mark_published(site, [first[0]], KID)
    assert sync.to_publish(site, KID) == []
    site.set_enabled(pid, False)
    (changed,) = sync.to_publish(site, KID)
    assert (changed.revision, changed.enabled) == (2, False)
    # a rotated site key: everything is sealed again under the new one
    sync.mark_published(site, [changed], KID)
    assert [r.uid for r in sync.to_publish(site, "k2")] == [changed.uid]


def test_a_newer_version_is_applied_an_equal_one_ignored_an_older_one_refused_and_logged(site):
    assert sync.apply(site, [(record(), KID)], MODEL, 100.0) == [SyncOutcome.ADDED]
    person = site.person("Grace")
    assert (person.uid, person.enabled) == ("u" * 32, True)
    assert sync.apply(site, [(record(), KID)], MODEL, 101.0) == [SyncOutcome.CURRENT]
    renamed = record(revision=6, name="Grace H.", enabled=False)
    assert sync.apply(site, [(renamed, KID)], MODEL, 102.0) == [SyncOutcome.UPDATED]
    assert (site.person(person.id).name, site.person(person.id).enabled) == ("Grace H.", False)
    assert sync.apply(site, [(record(revision=5), KID)], MODEL, 103.0) == [SyncOutcome.REFUSED]
    assert site.person(person.id).name == "Grace H."
    assert refusals(site) == [
        f"person {'u' * 32}: revision 5 from 'b' is older than the gallery's (6 from 'b'); "
        "a replay or a late message"
    ]
    # the same revision from a terminal that sorts later wins the tie, on every terminal
    tie = record(revision=6, origin="c", name="Grace C.")
    assert sync.apply(site, [(tie, KID)], MODEL, 104.0) == [SyncOutcome.UPDATED]
    assert site.person(person.id).name == "Grace C."
    # and a local change afterwards comes after everything seen
    site.rename(person.id, "Grace Hopper")
    (mine,) = sync.to_publish(site, KID)
    assert (mine.revision, mine.origin) == (7, "a")


def test_templates_of_another_model_are_refused_with_an_event(site):
    other = record(templates=(Template("arcface", unit(3).vector.tobytes(), 0.9),))
    assert sync.apply(site, [(other, KID)], MODEL, 100.0) == [SyncOutcome.REFUSED]
    assert site.people() == []
    assert (
        "templates come from model arcface, this terminal uses 'sface_2021dec'"
        in (refusals(site)[0])
    )


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"role": "root"}, "role must be one of user, admin, got 'root'"),
        ({"name": "\x1b[2J"}, "cannot contain"),
        ({"templates": ()}, "no templates"),
        ({"templates": (Template(MODEL, b"\0" * 512, 0.9),)}, "not a finite unit vector"),
        ({"schedule": '["someday"]'}, "schedule is unusable"),
    ],
)
def test_unusable_records_are_refused_and_change_nothing(site, changes, words):
    assert sync.apply(site, [(record(**changes), KID)], MODEL, 100.0) == [SyncOutcome.REFUSED]
    assert site.people() == []
    assert words in refusals(site)[0]


def test_a_tombstone_erases_the_person_and_their_name_everywhere_and_refuses_older_copies(site):
    sync.apply(site, [(record(), KID)], MODEL, 100.0)
    pid = site.person("Grace").id
    site.log_event("granted", 110.0, person_id=pid)
    sync.collect_event(
        site, "c", OutboxEvent(1, 111.0, "granted", "u" * 32, "Grace", 0.8, None, None)
    )
    tomb = Tombstone("u" * 32, 9, "b", 120.0)
    assert sync.apply(site, [(tomb, KID)], MODEL, 121.0) == [SyncOutcome.REMOVED]
    assert site.people() == []
    assert [e.name for e in site.events(EventFilter(kind="granted"))] == [DELETED_NAME]
    assert [e.name for e in sync.site_events(site, None, None) if e.kind == "granted"] == [
        DELETED_NAME,
        DELETED_NAME,
    ]
    assert b"Grace" not in open(site.path, "rb").read()  # encrypted anyway; and scrubbed
    removed = site.events(EventFilter(kind="removed"))
    assert removed[-1].reason == f"person #{pid}, deleted at terminal b"
    # the person as they were before the deletion turns up again: refused
    assert sync.apply(site, [(record(), KID)], MODEL, 130.0) == [SyncOutcome.REFUSED]
    assert site.people() == []
    assert sync.apply(site, [(tomb, KID)], MODEL, 131.0) == [SyncOutcome.CURRENT]


def test_what_arrived_together_is_applied_in_order_in_one_call(site):
    """As the broker client applies a round of messages: each version in turn, a
    refusal stopping none of the others, all of them already published under their key."""
    arrived = [
        (record(), KID),
        (record(uid="a" * 32, name="Alan"), KID),
        (Tombstone("u" * 32, 9, "b", 120.0), KID),
        (record(revision=7), KID),  # older than the deletion: refused
        (record(uid="c" * 32, role="root"), KID),  # unusable: refused
    ]
    assert sync.apply(site, arrived, MODEL, 130.0) == [
        SyncOutcome.ADDED,
        SyncOutcome.ADDED,
        SyncOutcome.REMOVED,
        SyncOutcome.REFUSED,
        SyncOutcome.REFUSED,
    ]
    assert [p.name for p in site.people()] == ["Alan"]
    assert len(refusals(site)) == 2
    # Alan is on the broker under KID already; the deletion goes over the older copy
    assert sync.to_publish(site, KID) == [Tombstone("u" * 32, 9, "b", 120.0)]
    assert sync.apply(site, [], MODEL, 131.0) == []


def test_a_local_deletion_leaves_a_tombstone_to_publish_then_to_clear(site):
    pid = site.add_person("Ada", "user", [unit(1)], [0.9], now=10.0)
    uid = site.person(pid).uid
    site.delete_person(pid, now=20.0)
    (tomb,) = sync.to_publish(site, KID)
    assert tomb == Tombstone(uid, 2, "a", 20.0)
    assert sync.tombstones_to_clear(site, before=1e9) == []  # not published yet
    sync.mark_published(site, [tomb], KID)
    assert sync.tombstones_to_clear(site, before=20.0) == []  # not old enough
    assert sync.tombstones_to_clear(site, before=21.0) == [uid]
    sync.mark_cleared(site, uid)
    assert sync.to_publish(site, "k2") == [] and sync.tombstones_to_clear(site, 1e9) == []


def test_every_event_goes_to_the_outbox_in_order_and_old_ones_are_dropped_with_an_event(site):
    with site.reading() as conn:
        assert outbox.pending(conn, 0, 10) == []
    pid = site.add_person("Ada", "user", [unit(1)], [0.9], now=10.0)
    site.log_event("granted", 20.0, person_id=pid)
    with site.reading() as conn:
        queued = outbox.pending(conn, 0, 10)
    assert [(e.seq, e.kind) for e in queued] == [(1, "enrolled"), (2, "granted")]
    assert queued[1].person_uid == site.person(pid).uid
    with site.writing() as conn:
        outbox.mark_delivered(conn, [1])
    # two days later, with one day's retention: the undelivered grant is dropped
    sync.configure(site, "a", 86400.0)
    site.log_event("denied_unknown", 20.0 + 2 * 86400, reason="no match")
    with site.reading() as conn:
        left = outbox.pending(conn, 0, 10)
    assert [(e.seq, e.kind) for e in left] == [(3, "denied_unknown"), (4, "outbox_dropped")]
    assert left[1].reason == "1 event(s) waited more than 1 days for the broker"
    assert [e.kind for e in site.events()][-1] == EventKind.OUTBOX_DROPPED


def waiting_kinds(gallery) -> list[tuple[float, str]]:
    with gallery.reading() as conn:
        return [(e.time, e.kind) for e in outbox.pending(conn, 0, 100)]


DAY = 86400.0  # the site fixture's retention


def test_logging_an_event_looks_for_old_ones_at_most_every_expire_interval(site):
    site.log_event("denied_unknown", 0.0)
    site.log_event("denied_unknown", 100.0)
    site.log_event("granted", DAY + 50.0)  # the first waited a day and 50 s: dropped
    assert waiting_kinds(site) == [
        (100.0, "denied_unknown"),
        (DAY + 50.0, "granted"),
        (DAY + 50.0, "outbox_dropped"),
    ]
    # the second is past the retention too, but the last look was 100 s ago
    site.log_event("granted", DAY + 150.0)
    assert waiting_kinds(site)[0] == (100.0, "denied_unknown")
    site.log_event("granted", DAY + 50.0 + outbox.EXPIRE_EVERY_S)  # time to look again
    assert [k for _, k in waiting_kinds(site)] == [
        "granted",
        "outbox_dropped",
        "granted",
        "granted",
        "outbox_dropped",
    ]


def test_after_the_clock_was_set_back_old_events_are_still_dropped(site):
    site.log_event("denied_unknown", 100 * DAY)  # a clock far ahead, then set right
    site.log_event("denied_unknown", 0.0)
    site.log_event("granted", DAY + 10.0)
    assert (0.0, "denied_unknown") not in waiting_kinds(site)
    assert waiting_kinds(site)[-1] == (DAY + 10.0, "outbox_dropped")


def test_without_mqtt_there_is_no_outbox(gallery):
    sync.configure(gallery, "", 0.0)
    gallery.log_event("denied_unknown", 1.0)
    with gallery.reading() as conn:
        assert outbox.waiting(conn) == 0


def test_max_offline_denies_everyone_until_the_site_was_heard_recently(site):
    pid = site.add_person("Ada", "user", [unit(1)], [0.9], now=10.0)
    check = sync.access_check(site, 60.0)
    assert check(pid, 1000.0) is Refusal.OFFLINE  # never synced
    sync.record_sync(site, 990.0)
    assert check(pid, 1000.0) is None
    assert check(pid, 1051.0) is Refusal.OFFLINE
    assert check(pid, float("nan")) is Refusal.OFFLINE
    assert sync.access_check(site, 0.0)(pid, 1e12) is None  # off: the last gallery rules
