"""The request the application receives: headers after hygiene, the gateway's own, identity."""

from __future__ import annotations

import functools
import re

from aiohttp import web
from multidict import CIMultiDict

from gateway import trust
from gateway.clientip import ip_text
from gateway.cookies import build_cookie_header, parse_cookie_header
from gateway.handlers.shared.csrf import CSRF_COOKIE
from gateway.handlers.shared.request import context, runtime
from gateway.i18n import COOKIE as LANGUAGE
from gateway.identity.cookie_names import CookieNames
from gateway.identity.credentials import strip_cookies, strip_headers
from gateway.memo import remembered
from gateway.sessions import Level, Session
from gateway.signin import remember
from gateway.signin.browsers import BROWSER_COOKIE


def upstream_headers(
    request: web.Request,
    session: Session | None,
    identity: bool,
    send_held: bool = False,
    credentials: bool = False,
) -> CIMultiDict[str]:
    """What the application receives: the client's headers after hygiene, the gateway's own
    X-Forwarded-*, and the identity (portal, header) or held cookies (intercept) of the session.

    Held cookies go upstream only with the application's login request (`send_held`) and, after
    the first factor, on one_factor paths (`identity`): the gateway cannot know whether the
    application has quietly made a held cookie a signed-in one, so it never lends it elsewhere.
    In intercept mode no credential header goes upstream unless it is a token bound to the
    verified session, or an access rule lets them through (`credentials`)."""
    ctx = context(request)
    application = ctx.application
    headers = CIMultiDict(ctx.headers)
    # ctx.headers holds no Host and no X-Forwarded-* (clean_request_headers): added, not replaced
    if application.preserve_host and ctx.host:
        headers.add("Host", ctx.host)
    if ctx.client_ip is not None:
        headers.add("X-Forwarded-For", ip_text(ctx.client_ip))
    headers.add("X-Forwarded-Proto", "https" if ctx.secure else "http")
    if ctx.host:
        headers.add("X-Forwarded-Host", ctx.host)
    headers["X-Request-Id"] = ctx.request_id
    if application.intercept is not None:
        held = send_held or (
            identity and session is not None and session.level is Level.FIRST_FACTOR
        )
        _cookies(headers, request, application.intercept.session_cookies, session, held)
        strip_cookies(application.intercept, headers)
        if not credentials:
            verified = session is not None and session.level is Level.VERIFIED
            tokens = session.tokens if session is not None and verified else ()
            strip_headers(application.intercept, headers, tokens)
    else:
        _cookies(headers, request, None, session, held=False)
        if identity:
            headers.update(identity_headers(session))
    return headers


def identity_headers(session: Session | None) -> dict[str, str]:
    """Remote-User, -Email, -Name and -Groups of a signed-in session (portal, directory, header
    mode), each only when a header can carry it: the headers proxy mode sends the application
    and forward auth hands the front proxy."""
    if session is None or not session.user:
        return {}
    headers = {"Remote-User": session.user}
    email, name = session.identity.get("email"), session.identity.get("name")
    groups = session.identity.get("groups")
    if email and _plain(str(email)):
        headers["Remote-Email"] = str(email)
    if name and _plain(str(name)):
        headers["Remote-Name"] = str(name)
    if groups:
        joined = ",".join(str(g) for g in groups)
        if _plain(joined):
            headers["Remote-Groups"] = joined
    return headers


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _plain(text: str) -> bool:
    """Whether a header can carry `text` (whatever identity source it came from): no line
    break or other control character, which would fail the request or forge a header."""
    return _CONTROL.search(text) is None


def own_cookie_names(request: web.Request) -> frozenset[str]:
    """The gateway's own cookies (session, CSRF, trusted network, browser id, remembered
    browser, language), under either spelling: the application never sees them, so a session
    id cannot leak into its pages or logs."""
    return _own_cookie_names(runtime(request).settings.session_cookie)


@functools.lru_cache(maxsize=4)  # one set per session-cookie name, not one per request
def _own_cookie_names(session_cookie: str) -> frozenset[str]:
    bases = (session_cookie, CSRF_COOKIE, trust.COOKIE, BROWSER_COOKIE, remember.COOKIE, LANGUAGE)
    return frozenset(name for base in bases for name in (base, f"__Host-{base}"))


def _cookies(
    headers: CIMultiDict[str],
    request: web.Request,
    app_names: CookieNames | None,
    session: Session | None,
    held: bool,
) -> None:
    """The Cookie header the application gets: never the gateway's own cookies. In intercept
    mode, when verified, the browser's bound cookies go through as they are; otherwise every
    cookie the application may read as its session cookie is removed and, when `held`, the
    session's held ones put in."""
    drop = own_cookie_names(request)
    names: CookieNames | None = None
    if app_names and not (session is not None and session.level is Level.VERIFIED):
        names = app_names
    else:
        held = False
    if not held:
        raw = headers.getall("Cookie", [])
        if len(raw) == 1:  # the usual case, and the same header comes again and again
            cleaned = _without((raw[0], drop, names))
            if cleaned != raw[0]:
                headers.popall("Cookie", None)
                if cleaned:
                    headers["Cookie"] = cleaned
            return
    cookies = context(request).cookies
    if not held and not any(_dropped(name, drop, names) for name, _ in cookies):
        return  # nothing to take out: the header goes as the browser sent it
    pairs = [pair for pair in cookies if not _dropped(pair[0], drop, names)]
    if held and session is not None:
        pairs.extend(session.jar.items())
    headers.popall("Cookie", None)
    if pairs:
        headers["Cookie"] = build_cookie_header(pairs)


def _dropped(name: str, drop: frozenset[str], names: CookieNames | None) -> bool:
    return name in drop or (names is not None and names.matches(name))


@remembered(entries=1024, longest=4096, size=lambda key: len(key[0]))
def _without(key: tuple[str, frozenset[str], CookieNames | None]) -> str:
    """One Cookie header without the cookies named in the set or matching the application's
    session cookies: the header itself when none is there, "" when nothing is left."""
    header, drop, names = key
    pairs = parse_cookie_header(header)
    kept = [pair for pair in pairs if not _dropped(pair[0], drop, names)]
    return header if len(kept) == len(pairs) else build_cookie_header(kept)


def cookie_header_for_upstream(request: web.Request) -> str:
    """Forward-auth: the Cookie header the front proxy should send on (the gateway's own
    cookies taken out), or "" for none."""
    drop = own_cookie_names(request)
    return build_cookie_header([pair for pair in context(request).cookies if pair[0] not in drop])
