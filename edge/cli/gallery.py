"""``facegate init``, ``facegate people ...`` and ``facegate gallery
rekey|check|backup|restore``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..access.schedule import Schedule
from ..errors import ExitCode, RefusedError
from ..gallery.events import EventFilter
from ..gallery.reports import format_time
from ..gallery.restore import restore_gallery
from ..gallery.store import Gallery, Person, create_gallery
from ..types import EventKind
from .common import add_config_argument, config_from_args


def open_gallery(args: argparse.Namespace) -> Gallery:
    """The gallery named by the config file in ``args.config``."""
    return Gallery.from_config(config_from_args(args).gallery)


def person_ref(text: str) -> int | str:
    """A person given on the command line: an id (digits) or a name."""
    return int(text) if text.isdigit() else text


def register(subparsers) -> None:
    init = subparsers.add_parser("init", help="create the gallery key and an empty gallery")
    add_config_argument(init)
    init.set_defaults(func=cmd_init)

    people = subparsers.add_parser("people", help="list and manage enrolled people")
    actions = people.add_subparsers(dest="people_action", metavar="ACTION")
    actions.required = True
    for name, helptext, handler in (
        ("list", "everyone enrolled", cmd_people_list),
        ("show", "one person in detail", cmd_people_show),
        ("disable", "refuse entry to a person, keeping their templates", cmd_people_disable),
        ("enable", "allow a disabled person again", cmd_people_enable),
        ("rename", "change a person's name", cmd_people_rename),
        (
            "schedule",
            "set the weekly hours a person may enter, or --clear for any time",
            cmd_people_schedule,
        ),
        (
            "delete",
            "remove a person, their templates and their name from the log",
            cmd_people_delete,
        ),
    ):
        action = actions.add_parser(name, help=helptext)
        if name != "list":
            action.add_argument("person", type=person_ref, help="person id or name")
        if name == "rename":
            action.add_argument("new_name", help="the new name")
        if name == "schedule":
            action.add_argument(
                "windows",
                nargs="*",
                metavar="WINDOW",
                help="days and local hours, e.g. 'mon-fri 08:00-18:00' 'sat 09:00-12:00'",
            )
            action.add_argument("--clear", action="store_true", help="no schedule: any time")
        if name == "delete":
            action.add_argument("--yes", action="store_true", help="really delete (no undo)")
        add_config_argument(action)
        action.set_defaults(func=handler)

    gallery = subparsers.add_parser("gallery", help="maintain the encrypted gallery file")
    actions = gallery.add_subparsers(dest="gallery_action", metavar="ACTION")
    actions.required = True
    rekey = actions.add_parser(
        "rekey",
        help="re-encrypt under a new key and replace the key file (refused while the "
        "service runs; the old key is kept inside the gallery for older backups)",
    )
    check = actions.add_parser("check", help="integrity check of the file and its contents")
    backup = actions.add_parser("backup", help="write an encrypted copy (safe while running)")
    backup.add_argument(
        "file",
        type=Path,
        help="new file to write; it opens with the same key, "
        "whose fingerprint goes to FILE.fingerprint",
    )
    restore = actions.add_parser(
        "restore",
        help="check a backup, then make it the gallery (refused while the service "
        "runs; the replaced gallery is kept)",
    )
    restore.add_argument("file", type=Path, help="the backup to restore")
    restore.add_argument(
        "--key",
        type=Path,
        action="append",
        default=[],
        metavar="KEYFILE",
        help="a key file that may open the backup (besides the current key "
        "and keys retired by rekeys); may be repeated",
    )
    for action, handler in (
        (rekey, cmd_rekey),
        (check, cmd_check),
        (backup, cmd_backup),
        (restore, cmd_restore),
    ):
        add_config_argument(action)
        action.set_defaults(func=handler)


def cmd_init(args: argparse.Namespace) -> int:
    config = config_from_args(args).gallery
    create_gallery(config)
    print(f"created gallery {config.path} (key in {config.key_file}, mode 0600)")
    return ExitCode.OK


def _person_line(p: Person) -> str:
    state = "enabled" if p.enabled else "disabled"
    return f"{p.id:>5}  {p.name:<30}  {p.role:<5}  {state:<8}  {p.templates:>9}"


def cmd_people_list(args: argparse.Namespace) -> int:
    with open_gallery(args) as gallery:
        people = gallery.people()
    print(f"{'id':>5}  {'name':<30}  {'role':<5}  {'state':<8}  {'templates':>9}")
    for person in people:
        print(_person_line(person))
    return ExitCode.OK


def cmd_people_show(args: argparse.Namespace) -> int:
    with open_gallery(args) as gallery:
        p = gallery.person(args.person)
        their_grants = EventFilter(kind=EventKind.GRANTED, person_id=p.id)
        granted = [e.time for e in gallery.events(their_grants)]
    for label, value in (
        ("id", p.id),
        ("name", p.name),
        ("role", p.role),
        ("state", "enabled" if p.enabled else "disabled"),
        ("valid from", format_time(p.valid_from)),
        ("valid until", format_time(p.valid_until)),
        ("schedule", p.schedule or "any time"),
        ("enrolled", format_time(p.created)),
        ("templates", p.templates),
        ("entries", len(granted)),
        ("last entry", format_time(granted[-1] if granted else None)),
    ):
        print(f"{label + ':':<13}{value}")
    return ExitCode.OK


def _set_enabled(args: argparse.Namespace, enabled: bool) -> int:
    with open_gallery(args) as gallery:
        person = gallery.person(args.person)
        gallery.set_enabled(person.id, enabled)
    print(f"{'enabled' if enabled else 'disabled'} {person.name} (#{person.id})")
    return ExitCode.OK


def cmd_people_disable(args: argparse.Namespace) -> int:
    return _set_enabled(args, False)


def cmd_people_enable(args: argparse.Namespace) -> int:
    return _set_enabled(args, True)


def cmd_people_rename(args: argparse.Namespace) -> int:
    with open_gallery(args) as gallery:
        person = gallery.person(args.person)
        gallery.rename(person.id, args.new_name)
        renamed = gallery.person(person.id)
    print(f"renamed #{person.id} from {person.name} to {renamed.name}")
    return ExitCode.OK


def cmd_people_schedule(args: argparse.Namespace) -> int:
    if args.clear == bool(args.windows):
        raise RefusedError("give the windows (e.g. 'mon-fri 08:00-18:00') or --clear, not both")
    try:
        schedule = None if args.clear else Schedule.parse(args.windows)
    except ValueError as exc:
        raise RefusedError(str(exc)) from None
    with open_gallery(args) as gallery:
        person = gallery.person(args.person)
        gallery.set_schedule(person.id, schedule)
    print(f"{person.name} (#{person.id}) may enter: {schedule or 'any time'} (local time)")
    return ExitCode.OK


def cmd_people_delete(args: argparse.Namespace) -> int:
    with open_gallery(args) as gallery:
        person = gallery.person(args.person)
        if not args.yes:
            raise RefusedError(
                f"deleting {person.name} (#{person.id}) removes their templates and their name "
                "from the event log for good; add --yes to do it"
            )
        gallery.delete_person(person.id)
    print(f"deleted {person.name} (#{person.id}); the gallery file was vacuumed")
    return ExitCode.OK


def cmd_rekey(args: argparse.Namespace) -> int:
    with open_gallery(args) as gallery:
        old, new = gallery.rekey()
        print(f"re-encrypted {gallery.path}; the new key ({new}) is in {gallery.key_path}")
    print(
        f"the old key ({old}) is kept, encrypted, inside the gallery: 'facegate gallery "
        "restore' can still open backups made before now. Backups kept elsewhere open only "
        "with the old key: keep a copy of it with them, or make a new backup now."
    )
    return ExitCode.OK


def cmd_check(args: argparse.Namespace) -> int:
    with open_gallery(args) as gallery:
        if gallery.recovered:
            print(f"note: {gallery.recovered}")
        problems = gallery.check()
        people = gallery.people()
        models = gallery.model_ids()
        events = gallery.count_events()
    for problem in problems:
        print(f"problem: {problem}")
    if problems:
        return ExitCode.GALLERY
    per_model = ", ".join(f"{count} of {model}" for model, count in models.items()) or "none"
    print(f"ok: {len(people)} people, templates: {per_model}, {events} events")
    if len(models) > 1:
        print("note: templates of several models; people with only old ones need re-enrolling")
    return ExitCode.OK


def cmd_backup(args: argparse.Namespace) -> int:
    with open_gallery(args) as gallery:
        fingerprint = gallery.backup(args.file)
        key_path = gallery.key_path
    print(
        f"wrote encrypted backup {args.file}; it opens with the key {fingerprint} "
        f"(now in {key_path}; the fingerprint is in {args.file}.fingerprint). A backup "
        "is only as good as the key kept apart from it."
    )
    return ExitCode.OK


def cmd_restore(args: argparse.Namespace) -> int:
    config = config_from_args(args).gallery
    restored = restore_gallery(config, args.file, args.key)
    print(
        f"restored {config.path} from {args.file} ({restored.people} people, "
        f"{restored.events} events), which opened with {restored.key_source} "
        f"({restored.fingerprint}); it is now encrypted under the current key"
    )
    if restored.replaced is not None:
        print(f"the gallery it replaced is kept as {restored.replaced}")
    return ExitCode.OK
