"""Intercept mode's checks of a request before it is forwarded: application cookies bound to
the verified session, which request is the login (its `fields` may be in the body), credentials
that belong in the login only, and WebSockets only with a verified session."""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.cookies import expire_cookie, path_prefixes
from gateway.errors import BadRequest, Forbidden
from gateway.handlers.entry.request_body import read_form_like
from gateway.handlers.shared.request import context, runtime
from gateway.i18n import N_
from gateway.identity import cookie_names, intercept
from gateway.identity.body_fields import UnreadableBody, body_fields, query_fields
from gateway.identity.credentials import credential_field_readings
from gateway.identity.login_body import field_reading
from gateway.intercept_settings import Intercept
from gateway.proxy.websocket import is_websocket
from gateway.sessions import Level, Session, cookie_digest

log = logging.getLogger("gateway.proxy")


def unbound_app_cookies(request: web.Request, session: Session | None) -> list[str]:
    """Application session cookies in this request that no verified gateway session owns.

    Every name some framework may read as a session cookie counts (gateway.identity.
    cookie_names): another case, PHP's `_` for `.`, a percent-encoded name, one hidden behind a
    `,`. Only the very cookie bound to this verified session, sent once, goes through."""
    ctx = context(request)
    config = ctx.application.intercept
    if config is None or not config.session_cookies:
        return []
    names = config.session_cookies
    verified = session is not None and session.level is Level.VERIFIED
    now = runtime(request).clock()
    refused = set()
    found = [(name, value) for name, value in ctx.cookies if names.matches(name)]
    seen: set[str] = set()
    for name, value in found:
        readings = cookie_names.readings(name)
        if not verified or not _bound(session, name, value, now) or readings & seen:
            refused.add(name)
        seen |= readings
    hidden = cookie_names.hidden_names(ctx.headers.getall("Cookie", []))
    if sum(1 for name in hidden if names.matches(name)) > len(found):
        # Hidden from our parser (after a "," or a space) but maybe not from the application's.
        refused.update(name for name in hidden if names.matches(name))
    return sorted(refused)


def _bound(session: Session | None, name: str, value: str, now: float) -> bool:
    """The cookie's value is the one bound to the session, or the one it replaced moments ago
    (requests the browser sent before it saw the new value)."""
    if session is None:
        return False
    digest = cookie_digest(value)
    if session.bound.get(name) == digest:
        return True
    previous = session.replaced.get(name)
    return previous is not None and previous[0] == digest and float(previous[1]) > now


def refuse_app_cookies(request: web.Request, names: list[str]) -> web.Response:
    ctx = context(request)
    log.warning(
        "refused application cookie(s) %s not bound to a verified session, client %s",
        ",".join(names),
        ctx.client_ip,
    )
    response = runtime(request).pages.render(
        "error.html",
        company=context(request).known_company(),
        status=403,
        title=N_("Please sign in again"),
        message=N_("Your session with this application is not recognised by the sign-in gateway."),
        next_step=N_("The old session has been cleared. Go to the start page and sign in again."),
        link="/",
    )
    for name in names:  # the browser sent it here, so its Path is one of this path's prefixes
        for path in path_prefixes(ctx.path):
            response.headers.add("Set-Cookie", expire_cookie(name, ctx.secure, path))
    return response


def websocket_allowed(request: web.Request, session: Session | None) -> None:
    """A WebSocket reaches the application only with a verified session: what travels inside it
    (a token in its first message, say) is out of the gateway's sight. `bypass` rules, checked
    before, can open one."""
    if is_websocket(request) and (session is None or session.level is not Level.VERIFIED):
        raise Forbidden(
            N_("This connection needs you to be signed in."), N_("Sign in, then reload the page.")
        )


async def login_or_body(
    request: web.Request, config: Intercept, body: bytes | None = None
) -> tuple[bool, bytes | None]:
    """Whether this is the login request, and its body when it had to be read to tell (a login
    whose `fields` are in the body, as DokuWiki's `do=login`), or was read before (`body`)."""
    ctx = context(request)
    login = config.login
    if not intercept.is_login_target(login, request.method, ctx.path):
        return False, body
    query = query_fields(ctx.query)
    if intercept.fields_match(login.fields, query):
        return True, body
    if body is None:
        body = await read_form_like(request, required=False)
    if body is None:
        return False, None
    try:
        pairs = body_fields(request.headers.get("Content-Type"), body)
    except UnreadableBody:
        return False, body
    return intercept.fields_match(login.fields, query + pairs), body


async def credential_fields(
    request: web.Request, config: Intercept, body: bytes | None
) -> bytes | None:
    """Refuse a request, other than the login, whose body carries a field the settings name as
    a credential (`credentials.fields`: an application that signs in from them on any request).
    Returns the body when it was read."""
    # the login's user-name field too: a login through a page the settings do not name
    names = credential_field_readings(config)
    if not names or not request.body_exists:
        return body
    if body is None:
        body = await read_form_like(request, required=True)
    if body is None:
        return None
    try:
        pairs = body_fields(request.headers.get("Content-Type"), body)
    except UnreadableBody as exc:
        raise BadRequest(N_("What you sent could not be read, so it was not passed on.")) from exc
    found = sorted({key for key, _ in pairs if field_reading(key) in names})
    if found:
        log.warning(
            "refused a request to %s carrying the credential field(s) %s outside the login",
            context(request).path,
            ",".join(found),
        )
        raise BadRequest(
            N_("A password can only be sent with the sign-in form, so this was not passed on."),
            N_("Go back and sign in with the application's sign-in page."),
        )
    return body
