"""Intercept mode: what follows a judged login answer. A failure goes back as the application
wrote it (its session cookies held); an unclear answer releases nothing; a success holds every
cookie and sends the browser to the second factor (a script gets JSON saying so); the verified
user signing in again gets the answer as it is, its cookies and token bound to the session."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from aiohttp import web
from multidict import CIMultiDict

from gateway.audit import audit
from gateway.cookies import SetCookie, scope_of
from gateway.handlers.shared.completion import after_first_factor
from gateway.handlers.shared.cookies import session_cookie_line
from gateway.handlers.shared.request import company_for, context, runtime
from gateway.i18n import N_
from gateway.identity import intercept
from gateway.intercept_settings import Intercept
from gateway.paths import encode_path
from gateway.proxy import http
from gateway.redirects import safe_redirect
from gateway.sessions import Level, Session, cookie_digest, rebind
from gateway.signin.browsers import SHARED_ACCOUNT

log = logging.getLogger("gateway.login")
MAX_TOKENS = 8  # bearer tokens bound to one session (a page may sign in again now and then)


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


class Answer:
    """The login answer as judged: its headers, cookies, and whom it signs in."""

    def __init__(
        self,
        verdict: intercept.Verdict,
        reason: str,
        headers: CIMultiDict[str],
        split: intercept.SplitCookies,
        user: str | None,
        claimed: str | None,
        body: bytes | None = None,
        token: str | None = None,
    ) -> None:
        self.verdict, self.reason, self.headers, self.split = verdict, reason, headers, split
        self.user, self.claimed = user, claimed
        self.body, self.token = body, token  # read when the settings name a token in it


async def relay_answer(
    request: web.Request, upstream: http.Upstream, answer: Answer
) -> web.StreamResponse:
    """The application's answer to the browser: streamed, or the body read already."""
    if answer.body is None:
        return await http.relay(request, upstream, answer.headers)
    upstream.close()
    for name in ("Content-Length", "Transfer-Encoding"):
        answer.headers.popall(name, None)
    return web.Response(
        status=upstream.status, reason=upstream.reason, headers=answer.headers, body=answer.body
    )


async def failed(
    request: web.Request, session: Session | None, upstream: http.Upstream, answer: Answer
) -> web.StreamResponse:
    """A refused password (counted): the application's page goes back, its session cookies
    stay here (a later login sends them, as the browser would have)."""
    rt = runtime(request)
    headers, split = answer.headers, answer.split
    headers.popall("Set-Cookie", None)
    for line in split.other:
        headers.add("Set-Cookie", line)
    if split.session:
        holder = session if session is not None and session.level is Level.ANONYMOUS else None
        created = holder is None
        holder = holder or rt.sessions.new(context(request).application.name)
        hold(holder, split.session)
        try:
            await rt.sessions.save(holder)
        except BaseException:  # a store that is down: its 503 goes back, the answer is dropped
            upstream.close()
            raise
        if created:
            headers.add("Set-Cookie", session_cookie_line(request, holder))
    return await relay_answer(request, upstream, answer)


async def unclear(
    request: web.Request, session: Session | None, answer: Answer
) -> web.StreamResponse:
    """Neither success nor failure: every cookie the answer set is held, nothing released."""
    ctx = context(request)
    rt = runtime(request)
    log.error(
        "the login answer of %s could not be judged, so nothing was released (%s): check its "
        "intercept settings with `gateway intercept probe`",
        ctx.application.name,
        answer.reason,
    )
    audit("login_unclear", application=ctx.application.name, reason=answer.reason)
    response = rt.pages.render(
        "error.html",
        company=context(request).known_company(),
        status=502,
        title=N_("Your sign-in could not be completed"),
        message=N_(
            "The application's answer to your sign-in could not be understood, so you "
            "were not signed in."
        ),
        next_step=N_("Try again. If it keeps happening, tell the people who run this site."),
        link=encode_path(ctx.path) if ctx.path != "/" else "/",
        link_text=N_("Back to the sign-in page"),
    )
    holder = session if session is not None and session.level is Level.ANONYMOUS else None
    if holder is None:
        holder = rt.sessions.new(ctx.application.name)
        response.headers.add("Set-Cookie", session_cookie_line(request, holder))
    hold(holder, [*answer.split.session, *answer.split.other_parsed()])
    holder.withheld = []  # nothing of an unclear answer is ever released
    await rt.sessions.save(holder)
    return response


async def succeeded(
    request: web.Request, session: Session | None, answer: Answer
) -> web.StreamResponse:
    ctx = context(request)
    rt = runtime(request)
    config = ctx.application.intercept
    assert config is not None
    user = answer.user
    if user is None:
        return await unclear(request, session, answer)
    refused = _refused_user(request, config, answer)
    if refused is not None:
        return refused
    location = answer.headers.get("Location")
    target = safe_redirect(_same_host_path(location, ctx.host)) if location else "/"
    if session is not None and session.level is not Level.ANONYMOUS:
        await rt.sessions.end(session)  # a new login replaces whatever was there
        session = None
    pending = session or rt.sessions.new(ctx.application.name)
    hold(pending, answer.split.session)
    # Every other cookie of this answer waits too: a remember-me cookie is a login as well.
    pending.withheld.extend(answer.split.other)
    pending.bound = {}
    if config.login.account is not None:  # everyone with the password is this one account
        pending.scratch[SHARED_ACCOUNT] = True
    pending = await rt.sessions.promote(pending, Level.FIRST_FACTOR, user)
    log.info(
        "first factor accepted by %s for %s from %s", ctx.application.name, user, ctx.client_ip
    )
    audit("first_factor_ok", via="intercept", user=user)
    response = await after_first_factor(request, pending, target)
    if pending.level is Level.FIRST_FACTOR:  # not already completed (and re-cookied) just now
        response.headers.add("Set-Cookie", session_cookie_line(request, pending))
    return _for_scripts(request, response)


def signs_in_again(session: Session | None, answer: Answer) -> bool:
    """The verified user signing in to the application again, as the same user (a page that
    lost its own session, a script that wants a new token): no new second factor."""
    return (
        session is not None
        and session.level is Level.VERIFIED
        and answer.user is not None
        and session.user == answer.user
        and (answer.claimed is None or answer.claimed == answer.user)
    )


async def signed_in_again(
    request: web.Request, session: Session | None, upstream: http.Upstream, answer: Answer
) -> web.StreamResponse:
    """The answer goes to the browser as it is; its session cookies are bound to the session."""
    assert session is not None
    if answer.token is not None:  # the token goes upstream from this session only
        session.tokens = [*session.tokens, cookie_digest(answer.token)][-MAX_TOKENS:]
    for cookie in answer.split.session:
        if cookie.deleting:
            session.bound.pop(cookie.name, None)
        else:
            rebind(session, cookie.name, cookie.value, runtime(request).clock())
            session.scopes[cookie.name] = list(scope_of(cookie.raw))
    try:
        await runtime(request).sessions.save(session)
    except BaseException:
        upstream.close()
        raise
    audit("first_factor_ok", via="intercept", user=session.user, again=True)
    return await relay_answer(request, upstream, answer)


def _refused_user(
    request: web.Request, config: Intercept, answer: Answer
) -> web.StreamResponse | None:
    """A login the gateway will not take further: the application signed in someone other
    than the user the form named, or a user no company's policy places."""
    ctx = context(request)
    rt = runtime(request)
    user = answer.user
    assert user is not None
    if answer.claimed is not None and answer.claimed != user:
        log.error(
            "%s signed in %s although the login named %s, from %s: refused",
            ctx.application.name,
            user,
            answer.claimed,
            ctx.client_ip,
        )
        audit("login_user_mismatch", user=user, claimed=answer.claimed)
        return rt.pages.render(
            "error.html",
            company=context(request).known_company(),
            status=403,
            title=N_("This sign-in was refused"),
            message=N_("The application signed in a different account from the one given."),
            next_step=N_("Go back to the sign-in page and sign in with your own account."),
            link="/",
        )
    if not config.enrol_unknown_users and company_for(request, user) is None:
        log.warning(
            "%s signed in %s, whom no company's policy places: refused (set "
            "enrol_unknown_users to let them enrol)",
            ctx.application.name,
            user,
        )
        audit("login_unknown_user", user=user)
        return rt.pages.render(
            "error.html",
            company=context(request).known_company(),
            status=403,
            title=N_("This account cannot sign in here"),
            message=N_("This account is not set up for two-step sign-in on this site."),
            next_step=N_("Ask the people who run this site to add your account to a company."),
            link="/",
        )
    return None


def _from_script(request: web.Request) -> bool:
    """A login sent by the page's own script (fetch, XMLHttpRequest), which cannot follow the
    browser to the challenge page."""
    headers = request.headers
    mode = headers.get("Sec-Fetch-Mode")
    if mode is not None:
        return mode.lower() != "navigate"
    if headers.get("X-Requested-With", "").lower() == "xmlhttprequest":
        return True
    accept = headers.get("Accept", "")
    return "json" in accept and "text/html" not in accept


def _for_scripts(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """For a script's login: the step it must send the person to, as JSON (401) rather than a
    redirect its fetch would follow; the cookies are the same."""
    location = response.headers.get("Location", "")
    if response.status != 303 or not location.startswith("/.gateway/") or not _from_script(request):
        return response
    answer = web.json_response(
        {
            "error": "second_factor_required",
            "message": "Signed in. Two-step verification is needed: reload the page.",
            "location": location,
        },
        status=401,
    )
    for line in response.headers.getall("Set-Cookie", []):
        answer.headers.add("Set-Cookie", line)
    return answer
