"""Administrators and API tokens: add and remove administrators, change passwords (your
own needs your current one; every other session of that administrator ends), create
scoped API tokens (the secret shown once, only its digest kept) and revoke them."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from ..errors import RefusedError
from ..gallery.store import Gallery
from .auth import SCOPES, check_scopes, new_token
from .common import change, in_gallery, page, redirect, render, services, text


@page
async def admins_page(request, session) -> Response:
    def load(gallery: Gallery):
        return gallery.admins(), gallery.api_tokens()

    admins, tokens = await in_gallery(request, load)
    return render(
        request, session, "admins.html", admins=admins, tokens=tokens, scopes=SCOPES, secret=None
    )


def _new_password_hash(request, form) -> str:
    """The hash of the new password the form gives twice."""
    password = text(form, "password")
    if password != text(form, "repeat"):
        raise RefusedError("the two passwords differ")
    return services(request).passwords.hash(password)


@change
async def add_admin(request, session, form) -> Response:
    name, password_hash = text(form, "name"), _new_password_hash(request, form)
    await in_gallery(request, lambda g: g.add_admin(name, password_hash, actor=session.admin))
    session.messages.append(f"added administrator {name.strip()}")
    return redirect("/admins")


@change
async def change_password(request, session, form) -> Response:
    svc = services(request)
    name, password_hash = text(form, "name").strip(), _new_password_hash(request, form)
    if name == session.admin:
        current = await in_gallery(request, lambda g: g.admin(name).password_hash)
        if not svc.passwords.verify(current, text(form, "current")):
            raise RefusedError("your current password is not that")
    await in_gallery(
        request, lambda g: g.set_admin_password(name, password_hash, actor=session.admin)
    )
    svc.sessions.end_all(name, keep=session.id)
    if name == session.admin:
        session.credential = password_hash  # this session goes on with the new one
    session.messages.append(f"changed the password of {name}")
    return redirect("/admins")


@change
async def remove_admin(request, session, form) -> Response:
    name = text(form, "name").strip()
    if name == session.admin:
        raise RefusedError("you cannot remove yourself; another administrator can")
    await in_gallery(request, lambda g: g.remove_admin(name, actor=session.admin))
    services(request).sessions.end_all(name)
    session.messages.append(f"removed administrator {name}")
    return redirect("/admins")


@change
async def create_token(request, session, form) -> Response:
    scopes = check_scopes([s for s in form.getlist("scopes") if isinstance(s, str)])
    label = text(form, "label")
    secret, digest = new_token()

    def store(gallery: Gallery):
        gallery.add_api_token(session.admin, label, digest, scopes, actor=session.admin)
        return gallery.admins(), gallery.api_tokens()

    admins, tokens = await in_gallery(request, store)
    # shown this once: only its digest is kept
    return render(
        request, session, "admins.html", admins=admins, tokens=tokens, scopes=SCOPES, secret=secret
    )


@change
async def revoke_token(request, session, form) -> Response:
    token_id = int(request.path_params["token_id"])
    await in_gallery(request, lambda g: g.revoke_api_token(token_id, actor=session.admin))
    session.messages.append(f"revoked token #{token_id}")
    return redirect("/admins")


routes = [
    Route("/admins", admins_page, methods=["GET"]),
    Route("/admins", add_admin, methods=["POST"]),
    Route("/admins/password", change_password, methods=["POST"]),
    Route("/admins/remove", remove_admin, methods=["POST"]),
    Route("/tokens", create_token, methods=["POST"]),
    Route("/tokens/{token_id:int}/revoke", revoke_token, methods=["POST"]),
]
