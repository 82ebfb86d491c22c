"""Intercept mode: the application's own login request, passed on and watched.

On success the application's session cookie is held back, the gateway session moves to the first
factor under a new id, and the browser goes to the second factor instead of the application.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from aiohttp import web

from gateway.audit import audit
from gateway.cookies import SetCookie, scope_of
from gateway.errors import BadRequest
from gateway.handlers.attempts import busy, count_failure, one_at_a_time, refusal, wait_for
from gateway.handlers.common import context, runtime, session_cookie_line
from gateway.handlers.standing import after_first_factor
from gateway.handlers.upstream import upstream_headers
from gateway.identity import intercept
from gateway.paths import encode_path
from gateway.proxy import http
from gateway.redirects import safe_redirect
from gateway.sessions import Level, Session

log = logging.getLogger("gateway.login")


def hold(session: Session, cookies: list[SetCookie]) -> None:
    """Keep the application's cookies in the session, the latest line per name."""
    for cookie in cookies:
        prefix = cookie.name + "="
        session.withheld = [
            line for line in session.withheld if not line.lstrip().startswith(prefix)
        ]
        if cookie.deleting:
            session.jar.pop(cookie.name, None)
        else:
            session.jar[cookie.name] = cookie.value
            session.scopes[cookie.name] = list(scope_of(cookie.raw))
            session.withheld.append(cookie.raw)


def _same_host_path(location: str, host: str) -> str:
    """An absolute redirect to this very host (applications that know their public address)
    becomes its path; anything else is checked as it is."""
    parts = urlsplit(location)
    if parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower():
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return location


async def _read_login_body(request: web.Request) -> bytes:
    """The whole login body (it is small, and it must be read before anything is forwarded)."""
    too_large = BadRequest("The login form sent is too large.")
    if request.content_length is not None and request.content_length > intercept.MAX_LOGIN_BODY:
        raise too_large
    body = bytearray()
    while chunk := await request.content.read(64 * 1024):
        body.extend(chunk)
        if len(body) > intercept.MAX_LOGIN_BODY:
            raise too_large
    return bytes(body)


async def handle_login(request: web.Request, session: Session | None) -> web.StreamResponse:
    ctx = context(request)
    rt = runtime(request)
    application = ctx.application
    config = application.intercept
    assert config is not None
    await rt.store.ping()  # a login the gateway could not follow up is not passed on at all
    body = await _read_login_body(request)
    try:
        username = intercept.username_from_body(
            request.headers.get("Content-Type", ""), body, config.login.username_field
        )
    except intercept.UnreadableLogin as exc:
        log.warning("refused a login request to %s from %s: %s", ctx.path, ctx.client_ip, exc)
        raise BadRequest(
            "The sign-in form could not be read, so it was not passed on.",
            "Go back to the sign-in page, reload it and try again.",
        ) from exc
    user = username.lower()
    back = encode_path(ctx.path)
    async with one_at_a_time(request, user, per_address=True) as mine:  # no parallel guesses
        if not mine:
            return busy(request, back, "Back to the sign-in page")
        waiting = await wait_for(request, user)  # the application sees no guess meanwhile
        if waiting is not None:
            log.warning("login refused while waiting for %s from %s", user, ctx.client_ip)
            return refusal(request, waiting, back, "Back to the sign-in page")
        headers = upstream_headers(request, session, identity=False, send_held=True)
        upstream = await http.open_upstream(
            rt.upstream,
            request.method,
            http.upstream_url(application.upstream, back, ctx.query),
            headers,
            body,
            http.timeouts(application.timeouts.connect, application.timeouts.read),
            rt.metrics.upstream(application.name),
        )
        response_headers = http.response_headers(upstream, application.upstream)
        split = intercept.split_set_cookies(config, response_headers.getall("Set-Cookie", []))
        location = response_headers.get("Location")
        succeeded = intercept.login_succeeded(
            config.login, upstream.status, location, split.session
        )
        if not succeeded:
            try:
                await count_failure(request, user, "password")
            except BaseException:
                upstream.release()  # the store failed: its 503 goes back, not this page
                raise

    if not succeeded:
        # A refused password (counted above): the application's page goes back, its session
        # cookie stays here.
        response_headers.popall("Set-Cookie", None)
        for line in split.other:
            response_headers.add("Set-Cookie", line)
        if split.session:
            holder = session if session is not None and session.level is Level.ANONYMOUS else None
            created = holder is None
            holder = holder or rt.sessions.new(application.name)
            hold(holder, split.session)
            await rt.sessions.save(holder)
            if created:
                response_headers.add("Set-Cookie", session_cookie_line(request, holder))
        return await http.relay(request, upstream, response_headers)

    upstream.release()
    pending = session if session is not None and session.level is Level.ANONYMOUS else None
    if session is not None and pending is None:
        await rt.sessions.end(session)  # a new login replaces whatever was there
    pending = pending or rt.sessions.new(application.name)
    hold(pending, split.session)
    # Every other cookie of this answer waits too: a remember-me cookie is a login as well.
    pending.withheld.extend(split.other)
    pending.bound = {}
    pending = await rt.sessions.promote(pending, Level.FIRST_FACTOR, user)
    log.info("first factor accepted by %s for %s from %s", application.name, user, ctx.client_ip)
    audit("first_factor_ok", via="intercept", user=user)
    target = safe_redirect(_same_host_path(location, ctx.host)) if location else "/"
    response = await after_first_factor(request, pending, target)
    if pending.level is Level.FIRST_FACTOR:  # not already completed (and re-cookied) just now
        response.headers.add("Set-Cookie", session_cookie_line(request, pending))
    return response
