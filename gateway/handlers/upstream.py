"""The request the application receives: headers after hygiene, the gateway's own, identity."""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

from gateway.cookies import build_cookie_header, parse_cookie_header
from gateway.handlers.common import context
from gateway.sessions import Level, Session


def upstream_headers(
    request: web.Request, session: Session | None, identity: bool, send_held: bool = False
) -> CIMultiDict[str]:
    """What the application receives: the client's headers after hygiene, the gateway's own
    X-Forwarded-*, and the identity (portal, header) or held cookies (intercept) of the session.

    Held cookies go upstream only with the application's login request (`send_held`) and, after
    the first factor, on one_factor paths (`identity`): the gateway cannot know whether the
    application has quietly made a held cookie a signed-in one, so it never lends it elsewhere."""
    ctx = context(request)
    application = ctx.application
    headers = CIMultiDict(ctx.headers)
    if application.preserve_host and ctx.host:
        headers["Host"] = ctx.host
    if ctx.client_ip is not None:
        headers["X-Forwarded-For"] = str(ctx.client_ip)
    headers["X-Forwarded-Proto"] = "https" if ctx.secure else "http"
    if ctx.host:
        headers["X-Forwarded-Host"] = ctx.host
    headers["X-Request-Id"] = ctx.request_id
    if application.intercept is not None:
        held = send_held or (
            identity and session is not None and session.level is Level.FIRST_FACTOR
        )
        _app_cookies(headers, application.intercept.session_cookies, session, held)
    elif identity and session is not None and session.user:
        headers["Remote-User"] = session.user
        if session.identity.get("email"):
            headers["Remote-Email"] = str(session.identity["email"])
        if session.identity.get("name"):
            headers["Remote-Name"] = str(session.identity["name"])
        if session.identity.get("groups"):
            headers["Remote-Groups"] = ",".join(str(g) for g in session.identity["groups"])
    return headers


def _app_cookies(
    headers: CIMultiDict[str], names: tuple[str, ...], session: Session | None, held: bool
) -> None:
    """Verified: the browser's bound cookies go through as they are. Otherwise the browser's are
    removed and, when `held`, the session's held ones put in."""
    if session is not None and session.level is Level.VERIFIED:
        return
    pairs = [
        pair
        for value in headers.getall("Cookie", [])
        for pair in parse_cookie_header(value)
        if pair[0] not in names
    ]
    if held and session is not None:
        pairs.extend(session.jar.items())
    headers.popall("Cookie", None)
    if pairs:
        headers["Cookie"] = build_cookie_header(pairs)
