"""``facegate web`` (the administrators' web app, HTTPS only), ``facegate web cert``
(this device's self-signed certificate) and ``facegate admin add|remove|passwd|list``
(the web app's administrators)."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import ipaddress
import socket
import sys
from pathlib import Path

from ..certificate import fingerprint, load_certificate, make_certificate
from ..clock import SystemClock
from ..config import Config
from ..control import ControlClient, ControlError
from ..errors import ConfigError, ExitCode, RefusedError
from ..gallery.store import Gallery
from .common import add_config_argument, config_from_args

CLI_ACTOR = "command line"  # who the event log says made a change from here


def register(subparsers) -> None:
    web = subparsers.add_parser(
        "web", help="serve the administrators' web app over HTTPS ([web] listen and port)"
    )
    add_config_argument(web)
    web.set_defaults(func=cmd_web)
    actions = web.add_subparsers(dest="web_action", metavar="ACTION")
    cert = actions.add_parser(
        "cert", help="make this device's self-signed certificate ([web] cert and key)"
    )
    cert.add_argument("--hostname", default=socket.gethostname(), help="default: this host's")
    cert.add_argument(
        "--ip",
        action="append",
        default=None,
        metavar="ADDRESS",
        help="an address browsers reach it at (repeatable; default: this host's)",
    )
    add_config_argument(cert)
    cert.set_defaults(func=cmd_web_cert)

    admin = subparsers.add_parser("admin", help="the web app's administrators")
    actions = admin.add_subparsers(dest="admin_action", metavar="ACTION")
    actions.required = True
    for name, helptext, handler in (
        ("add", "add an administrator (asks for the password)", cmd_admin_add),
        ("passwd", "change an administrator's password", cmd_admin_passwd),
        ("remove", "remove an administrator and their API tokens", cmd_admin_remove),
        ("list", "every administrator", cmd_admin_list),
    ):
        action = actions.add_parser(name, help=helptext)
        if name != "list":
            action.add_argument("name", help="the administrator's name")
        if name in ("add", "passwd"):
            action.add_argument(
                "--password-stdin",
                action="store_true",
                help="read the password from the first line of stdin instead of asking",
            )
        add_config_argument(action)
        action.set_defaults(func=handler)


# --- the web app --------------------------------------------------------------------------


def _control(config: Config):
    path = config.control.socket

    def connect() -> ControlClient:
        if not path:
            raise ControlError("the door service serves no control socket ([control] socket)")
        return ControlClient(path)

    return connect


def cmd_web(args: argparse.Namespace) -> int:
    import uvicorn

    from ..vision.pipeline import Pipeline
    from ..web.app import create_app

    config = config_from_args(args)
    web = config.web
    cert = load_certificate(web.cert)  # HTTPS only: no certificate, no web app
    if not Path(web.key).is_file():
        raise ConfigError(f"web.key: {web.key} does not exist (it comes with web.cert)")
    Gallery.from_config(config.gallery).close()  # a wrong key or path stops it now
    app = create_app(
        config,
        open_gallery=lambda: Gallery.from_config(config.gallery),
        control=_control(config),
        pipeline=lambda: Pipeline.from_config(config),
        clock=SystemClock(),
    )
    print(
        f"facegate web on https://{web.listen}:{web.port}/ "
        f"(certificate SHA-256 {fingerprint(cert)})",
        flush=True,
    )
    uvicorn.run(
        app,
        host=web.listen,
        port=web.port,
        ssl_certfile=web.cert,
        ssl_keyfile=web.key,
        server_header=False,
        proxy_headers=False,
        log_level="warning",
    )
    return ExitCode.OK


def _addresses() -> list[str]:
    """This host's addresses, as well as can be told offline."""
    found = {"127.0.0.1"}
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(str(info[4][0]))
    except OSError:
        pass
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # sends nothing: picks the interface a route uses
        found.add(probe.getsockname()[0])
    except OSError:
        pass
    finally:
        probe.close()
    return sorted(a for a in found if not ipaddress.ip_address(a.split("%")[0]).is_link_local)


def cmd_web_cert(args: argparse.Namespace) -> int:
    web = config_from_args(args).web
    try:
        addresses = args.ip or _addresses()
        for address in addresses:
            ipaddress.ip_address(address)
    except ValueError as exc:
        raise RefusedError(str(exc)) from None
    cert = make_certificate(
        web.cert, web.key, args.hostname, addresses, dt.datetime.now(dt.timezone.utc)
    )
    print(f"wrote {web.cert} and {web.key} for {args.hostname}, {', '.join(addresses)}")
    print(f"SHA-256 fingerprint: {fingerprint(cert)}")
    print("compare it with what the browser shows on the first visit (also: facegate doctor)")
    return ExitCode.OK


# --- administrators ------------------------------------------------------------------------


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise RefusedError("no terminal to ask the password on; use --password-stdin")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise RefusedError("the two passwords differ; nothing changed")
    return first


def _passwords():
    from ..web.auth import Passwords

    return Passwords()


def cmd_admin_add(args: argparse.Namespace) -> int:
    password_hash = _passwords().hash(_password(args))
    with Gallery.from_config(config_from_args(args).gallery) as gallery:
        gallery.add_admin(args.name, password_hash, actor=CLI_ACTOR)
    print(f"added administrator {args.name.strip()}")
    return ExitCode.OK


def cmd_admin_passwd(args: argparse.Namespace) -> int:
    with Gallery.from_config(config_from_args(args).gallery) as gallery:
        gallery.admin(args.name)  # refused before the password is asked for
        password_hash = _passwords().hash(_password(args))
        gallery.set_admin_password(args.name, password_hash, actor=CLI_ACTOR)
    print(f"changed the password of {args.name.strip()} (its web sessions end at a restart)")
    return ExitCode.OK


def cmd_admin_remove(args: argparse.Namespace) -> int:
    with Gallery.from_config(config_from_args(args).gallery) as gallery:
        gallery.remove_admin(args.name, actor=CLI_ACTOR)
    print(f"removed administrator {args.name.strip()} and their API tokens")
    return ExitCode.OK


def cmd_admin_list(args: argparse.Namespace) -> int:
    from ..gallery.reports import format_time

    with Gallery.from_config(config_from_args(args).gallery) as gallery:
        admins, tokens = gallery.admins(), gallery.api_tokens()
    for admin in admins:
        held = [t for t in tokens if t.admin == admin.name]
        print(f"{admin.name}  since {format_time(admin.created)}  {len(held)} API token(s)")
    return ExitCode.OK
