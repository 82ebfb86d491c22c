"""Every request that is not a gateway page: decide, then forward, redirect or refuse."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from multidict import CIMultiDict

from gateway.audit import audit
from gateway.cookies import expire_cookie, scope_of
from gateway.decision import Mode, Outcome, decide
from gateway.errors import Forbidden, NotFound, UpstreamUnreachable
from gateway.handlers.entry import intercept_checks as checks
from gateway.handlers.entry.login_answer import hold
from gateway.handlers.entry.login_intercept import handle_login
from gateway.handlers.entry.request_body import method_in_body
from gateway.handlers.entry.step_up import (
    held_over_a_step_down,
    step_up,
    wait_for_the_second_factor,
)
from gateway.handlers.entry.upstream_headers import own_cookie_names, upstream_headers
from gateway.handlers.entry.whoami import ask_whoami
from gateway.handlers.shared.completion import complete
from gateway.handlers.shared.cookies import (
    expire_session_cookie_line,
    load_session,
    session_cookie_line,
)
from gateway.handlers.shared.redirects import gateway_url, see_other
from gateway.handlers.shared.request import context, runtime, visit
from gateway.handlers.shared.verified import factor_age
from gateway.i18n import N_
from gateway.identity import intercept
from gateway.identity.credentials import without_credentials
from gateway.identity.whoami import WhoamiUnreadable
from gateway.method_override import overrides
from gateway.metrics import BYPASS, LOGIN_REQUEST, NOT_FOUND, REFUSED_COOKIE
from gateway.paths import encode_path
from gateway.policy.model import Access, AccessRule
from gateway.proxy import http
from gateway.proxy.websocket import is_websocket, relay_websocket
from gateway.sessions import Level, Session, rebind
from gateway.signin import steps
from gateway.signin.standing import standing_of

log = logging.getLogger("gateway.proxy")

GATEWAY_PREFIX = "/.gateway"
SKIPS = steps.SKIPS  # a trusted network, a remembered browser, a deferral: no challenge
REDIRECT_PAGES = {Outcome.LOGIN: "login", Outcome.ENROL: "enrol", Outcome.CHALLENGE: "challenge"}


def _verified(session: Session | None) -> bool:
    return session is not None and session.level is Level.VERIFIED


def _count(request: web.Request, decision: str) -> None:
    """The request in gateway_requests_total, by application and decision."""
    runtime(request).metrics.decided(context(request).application.name, decision)


async def proxy_handler(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    if ctx.path == GATEWAY_PREFIX or ctx.path.startswith(GATEWAY_PREFIX + "/"):
        _count(request, NOT_FOUND)
        raise NotFound(N_("There is no gateway page at this address."))
    if ctx.application.forward_auth:
        _count(request, NOT_FOUND)
        raise NotFound(
            N_("This application is reached through the proxy in front of the gateway, not here."),
            N_("Use the application's own address."),
        )
    methods = overrides(request.headers, ctx.query)
    access, _rule = ctx.policy.access_for(ctx.application.name, request.method, ctx.path, methods)
    body: bytes | None = None
    if ctx.policy.body_may_tighten(ctx.application.name, request.method, ctx.path, access, _rule):
        body, in_body = await method_in_body(request)
        if in_body is None:  # unread, or not read as every framework would: any method
            in_body = ctx.policy.any_method(ctx.application.name)
        access, _rule = ctx.policy.access_for(
            ctx.application.name, request.method, ctx.path, methods + in_body
        )
    if access is Access.DENY:
        _count(request, Outcome.DENY)
        raise Forbidden(N_("The site's policy does not allow this address."))
    credentials = _rule is not None and _rule.pass_credentials
    intercept_config = ctx.application.intercept
    if access is Access.BYPASS:  # no session lookup: bypass routes work even with the store down
        _count(request, BYPASS)
        if intercept_config is not None and not credentials:
            body = await checks.credential_fields(request, intercept_config, body)
        return await forward(
            request, session=None, identity=False, credentials=credentials, body=body
        )

    session = await load_session(request, recent=True)
    fresh_cookie: Session | None = None
    if ctx.mode is Mode.HEADER:
        session, fresh_cookie = await header_session(request, session)
    if intercept_config is not None:
        refused = checks.unbound_app_cookies(request, session)
        if refused and held_over_a_step_down(request, session):
            _count(request, Outcome.CHALLENGE)
            return wait_for_the_second_factor(request, _return_path(request))
        if refused:
            _count(request, REFUSED_COOKIE)
            return checks.refuse_app_cookies(request, refused)
        checks.websocket_allowed(request, session)
        is_login, body = await checks.login_or_body(request, intercept_config, body)
        if is_login:
            _count(request, LOGIN_REQUEST)
            return await handle_login(request, session, body)
        if not credentials:
            body = await checks.credential_fields(request, intercept_config, body)

    outcome = await outcome_for(request, access, session, _rule)
    _count(request, outcome)
    if outcome is Outcome.STEP_UP and session is not None:
        return await step_up(request, session, _return_path(request))
    if outcome is Outcome.FORWARD or outcome is Outcome.FORWARD_ANONYMOUS:
        return await forward(
            request,
            session,
            identity=outcome is Outcome.FORWARD,
            fresh_cookie=fresh_cookie,
            ending=session is not None and _is_app_logout(request),
            credentials=credentials,
            body=body,
        )
    if outcome in SKIPS and session is not None:
        return await complete(request, session, _return_path(request), via=SKIPS[outcome])
    if outcome in REDIRECT_PAGES:
        redirect = see_other(gateway_url(REDIRECT_PAGES[outcome], _return_path(request)))
        if fresh_cookie is not None:
            redirect.headers.add("Set-Cookie", session_cookie_line(request, fresh_cookie))
        return redirect
    if outcome is Outcome.UNIDENTIFIED:
        raise Forbidden(
            N_("The single sign-on in front of this gateway did not say who you are."),
            N_("Sign in through your organisation's sign-in page and try again."),
        )
    raise Forbidden(N_("The site's policy does not allow this request."))


async def outcome_for(
    request: web.Request, access: Access, session: Session | None, rule: AccessRule | None = None
) -> Outcome:
    """decide() for this request's session, with the user's standing once the password is done,
    and, on a rule with a step-up, the age of a verified session's second factor (its own
    verified_at against the rule's bound: no store read, so the sessions proxy mode remembers
    for a few seconds still answer from memory)."""
    level = session.level if session is not None else Level.ANONYMOUS
    mode = context(request).mode
    if level is Level.FIRST_FACTOR and session is not None and session.user:
        return decide(access, mode, level, await standing_of(visit(request), session.user)).outcome
    bound = rule.reauthenticate_after if rule is not None else None
    if level is Level.VERIFIED and session is not None and bound is not None:
        age = factor_age(session, runtime(request).clock())
        return decide(
            access, mode, level, reauthenticate_after=bound.total_seconds(), factor_age=age
        ).outcome
    return decide(access, mode, level).outcome


def _return_path(request: web.Request) -> str:
    ctx = context(request)
    return ctx.path_qs if request.method in ("GET", "HEAD") else "/"


def _is_app_logout(request: web.Request) -> bool:
    ctx = context(request)
    config = ctx.application.intercept
    return config is not None and intercept.is_logout_request(
        config, request.method, ctx.path, ctx.query
    )


async def header_session(
    request: web.Request, session: Session | None
) -> tuple[Session | None, Session | None]:
    """Header mode: the trusted proxy names the user on every request; a new name is a new login.
    Returns the session and, when it is new, the session whose cookie must be set."""
    ctx = context(request)
    rt = runtime(request)
    user = ctx.header_user.lower() if ctx.header_user else None
    if user is None:
        return None, None
    if session is not None and session.user == user:
        return session, None
    if session is not None:
        await rt.sessions.end(session)
    fresh = await rt.sessions.promote(
        rt.sessions.new(ctx.application.name), Level.FIRST_FACTOR, user
    )
    ctx.session = fresh
    audit("first_factor_ok", via="header", user=user)
    return fresh, fresh


async def forward(
    request: web.Request,
    session: Session | None,
    identity: bool,
    fresh_cookie: Session | None = None,
    ending: bool = False,
    credentials: bool = False,
    body: bytes | None = None,
) -> web.StreamResponse:
    """Send the request upstream and stream the answer back. `ending`: the application's logout,
    after which this gateway session is over too and its cookie is cleared. `credentials`: an
    access rule lets the client's own credentials through without a verified session. `body`:
    the request body when it has been read already."""
    gate = await _slot(request)
    try:
        return await _forward(request, session, identity, fresh_cookie, ending, credentials, body)
    finally:
        gate.release()


async def _slot(request: web.Request) -> asyncio.Semaphore:
    """One of the application's max_connections, taken (the caller releases it): a stalled
    application cannot hold every descriptor of the process; past the limit a request waits up
    to the connect timeout, then gets the 502 page (nothing is sent)."""
    application = context(request).application
    slots = runtime(request).upstream_slots
    gate = slots.get(application.name)
    if gate is None:
        gate = slots[application.name] = asyncio.Semaphore(application.max_connections)
    try:
        if gate.locked():  # the limit is reached: wait for a slot, not for ever
            await asyncio.wait_for(gate.acquire(), application.timeouts.connect)
        else:  # the usual case: taken at once, without the cost of a timed wait
            await gate.acquire()
    except TimeoutError:
        raise UpstreamUnreachable(
            application.upstream,
            f"{application.max_connections} requests already open",  # i18n: not for people
        ) from None
    return gate


async def _forward(
    request: web.Request,
    session: Session | None,
    identity: bool,
    fresh_cookie: Session | None,
    ending: bool,
    credentials: bool,
    body: bytes | None,
) -> web.StreamResponse:
    ctx = context(request)
    rt = runtime(request)
    application = ctx.application
    query = ctx.query
    if application.intercept is not None and not credentials:
        tokens = session.tokens if session is not None and _verified(session) else ()
        query = without_credentials(application.intercept, query, tokens)
    url = http.upstream_url(application.upstream, encode_path(ctx.path), query)
    headers = upstream_headers(request, session, identity, credentials=credentials)
    if is_websocket(request):
        return await relay_websocket(
            request, rt.upstream, url, headers, application.timeouts.connect
        )
    upstream = await http.open_upstream(
        rt.upstream,
        request.method,
        url,
        headers,
        http.request_body(request) if body is None else body,
        http.timeouts(application.timeouts.connect, application.timeouts.read),
        rt.metrics.upstream(application.name),
        rt.pool,
    )
    try:
        response_headers = http.response_headers(upstream, application.upstream)
        if application.intercept is not None:
            created = await _hold_app_cookies(request, session, response_headers)
            fresh_cookie = created or fresh_cookie
        if ending and session is not None:
            # After the application's own cookie handling, which may have saved the session.
            # Only this session ends: the gateway's own sign-out ends every one of the user's.
            await rt.sessions.end(session)
            response_headers.add("Set-Cookie", expire_session_cookie_line(request))
            _expire_app_cookies(request, session, response_headers)
        elif fresh_cookie is not None:
            response_headers.add("Set-Cookie", session_cookie_line(request, fresh_cookie))
    except BaseException:  # a store that is down, say: the answer is never relayed
        upstream.close()
        raise
    return await http.relay(request, upstream, response_headers, application.timeouts.read)


def _expire_app_cookies(request: web.Request, session: Session, headers: CIMultiDict[str]) -> None:
    """The application's session cookies go with the session that owned them, even when its
    sign-out answer sets them again (DokuWiki keeps its session id): a cookie bound to no
    session would only get the next request refused."""
    ctx = context(request)
    config = ctx.application.intercept
    if config is None:
        return
    split = intercept.split_set_cookies(config, headers.getall("Set-Cookie", []))
    headers.popall("Set-Cookie", None)
    for line in split.other:
        headers.add("Set-Cookie", line)
    names = dict.fromkeys([*session.bound, *(cookie.name for cookie in split.session)])
    for name in names:
        path, domain = session.scopes.get(name) or ["/", None]
        headers.add("Set-Cookie", expire_cookie(name, ctx.secure, path or "/", domain))


async def _hold_app_cookies(
    request: web.Request, session: Session | None, headers: CIMultiDict[str]
) -> Session | None:
    """The application's own Set-Cookie for its session cookies. A verified session passes them on
    and re-binds to the new value; otherwise the gateway keeps them (on bypass routes it drops
    them). Returns a newly made session whose cookie must be set."""
    ctx = context(request)
    rt = runtime(request)
    config = ctx.application.intercept
    if config is None:
        return None
    split = intercept.split_set_cookies(config, headers.getall("Set-Cookie", []))
    if not split.session:
        return None
    if session is not None and session.level is Level.VERIFIED:
        if config.whoami is not None and not await _still_the_user(request, session, split):
            headers.popall("Set-Cookie", None)
            for line in split.other:
                headers.add("Set-Cookie", line)
            return None
        for cookie in split.session:
            if cookie.deleting:
                session.bound.pop(cookie.name, None)
            else:
                rebind(session, cookie.name, cookie.value, rt.clock())
                session.scopes[cookie.name] = list(scope_of(cookie.raw))
        await rt.sessions.save(session)
        return None
    headers.popall("Set-Cookie", None)
    for line in split.other:
        headers.add("Set-Cookie", line)
    if not ctx.session_loaded:  # a bypass route: never hand out, never keep
        log.info("dropped the application's session cookie set on a bypass route %s", ctx.path)
        return None
    created = session is None
    if session is None:
        session = rt.sessions.new(ctx.application.name)
    hold(session, split.session)
    await rt.sessions.save(session)
    return session if created else None


async def _still_the_user(
    request: web.Request, session: Session, split: intercept.SplitCookies
) -> bool:
    """A verified session's application cookie changes: the application is asked whom the new
    cookies sign in. Another user (the victim's password sent to a login the settings do not
    name) or no answer: the new cookies are not passed on."""
    ctx = context(request)
    config = ctx.application.intercept
    assert config is not None and config.whoami is not None
    own = own_cookie_names(request)
    jar = {name: value for name, value in ctx.cookies if name not in own}
    if all(cookie.deleting or jar.get(cookie.name) == cookie.value for cookie in split.session):
        return True
    try:
        user = await ask_whoami(request, config.whoami, intercept.jar_after(jar, split))
    except WhoamiUnreadable as exc:
        log.error("application cookies of %s not passed on: %s", session.user, exc)
        return False
    if user == session.user:
        return True
    log.error(
        "%s set cookies signing in %s for the verified session of %s: not passed on",
        ctx.application.name,
        user or "nobody",
        session.user,
    )
    audit("app_cookie_user_mismatch", user=session.user, signed_in=user)
    return False
