"""Intercept mode: the application's own login request, read strictly, passed on canonically,
and its answer judged.

- One reading: the login is parsed strictly (gateway.identity.login_body) and the application
  receives the canonical re-serialisation of exactly what the gateway read; anything ambiguous is
  a 400 and never forwarded.
- The application's word: with `whoami`, the application is asked who the answer's cookies sign
  in, and the second factor is asked of that user.
- Fail closed: an answer that is neither a recognised success nor a recognised failure releases
  nothing; the person gets a page and the operator an error line.

On success the application's cookies are held back, the gateway session moves to the first
factor under a new id, and the browser goes to the second factor instead of the application.
"""

from __future__ import annotations

import logging
import unicodedata
from urllib.parse import urlsplit

from aiohttp import web
from multidict import CIMultiDict

from gateway.audit import audit
from gateway.cookies import SetCookie, parse_cookie_header, scope_of
from gateway.errors import BadRequest
from gateway.handlers.admin_seen import SHARED_ACCOUNT
from gateway.handlers.attempts import busy, count_failure, one_at_a_time, refusal, wait_for
from gateway.handlers.common import company_for, context, runtime, session_cookie_line
from gateway.handlers.standing import after_first_factor
from gateway.handlers.upstream import upstream_headers
from gateway.handlers.whoami import ask_whoami
from gateway.identity import intercept
from gateway.identity.login_body import LoginBody, UnreadableLogin, field_reading, read_login
from gateway.identity.whoami import MAX_ANSWER, WhoamiUnreadable, decode_body
from gateway.intercept_settings import Intercept
from gateway.paths import encode_path
from gateway.proxy import http
from gateway.redirects import safe_redirect
from gateway.sessions import Level, Session, cookie_digest, rebind

log = logging.getLogger("gateway.login")
Verdict = intercept.Verdict
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


def _read(request: web.Request, config: Intercept, body: bytes) -> tuple[LoginBody, str | None]:
    """The login as read, and the user it names."""
    ctx = context(request)
    try:
        login = read_login(
            request.headers.get("Content-Type"),
            body,
            ctx.query,
            username_field=config.login.username_field,
        )
        return login, claimed_user(config, login)
    except UnreadableLogin as exc:
        log.warning("refused a login request to %s from %s: %s", ctx.path, ctx.client_ip, exc)
        raise BadRequest(
            "The sign-in form could not be read, so it was not passed on.",
            "Go back to the sign-in page, reload it and try again.",
        ) from exc


def _no_field_in_cookies(request: web.Request, login: LoginBody, sent: dict[str, str]) -> None:
    """PHP without a php.ini reads cookies into $_REQUEST after the body (variables_order
    EGPCS): a cookie named like a login field would be read instead of it."""
    cookies = {field_reading(name) for name in sent}
    clash = sorted(name for name in login.fields if field_reading(name) in cookies)
    if clash:
        ctx = context(request)
        log.warning(
            "refused a login request to %s from %s: cookies named like its field(s) %s",
            ctx.path,
            ctx.client_ip,
            ",".join(clash),
        )
        raise BadRequest(
            "The sign-in form could not be read, so it was not passed on.",
            "Clear this site's cookies, reload the sign-in page and try again.",
        )


def claimed_user(config: Intercept, login: LoginBody) -> str | None:
    """The user the login names: its user-name field, or the settings' fixed account. A name
    that Unicode normalisation would change (full-width letters, ligatures) is refused: some
    applications normalise it (Django does) and would sign in another user than the one named."""
    field = config.login.username_field
    if field is None:
        return config.login.account
    value = login.text(field)
    if value is None:
        return None
    if unicodedata.normalize("NFKC", value) != value:
        raise UnreadableLogin(f"the field {field!r} is not in Unicode normal form (NFKC)")
    return value.strip().lower()


def _canonical_headers(headers: CIMultiDict[str], login: LoginBody) -> None:
    for name in ("Content-Length", "Content-Encoding", "Transfer-Encoding", "Content-Type"):
        headers.popall(name, None)
    headers["Content-Type"] = login.content_type


async def handle_login(
    request: web.Request, session: Session | None, body: bytes | None = None
) -> web.StreamResponse:
    """The login request (`body`: when it was read already, to tell that it is the login)."""
    ctx = context(request)
    rt = runtime(request)
    application = ctx.application
    config = application.intercept
    assert config is not None
    await rt.store.ping()  # a login the gateway could not follow up is not passed on at all
    coding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if coding != "identity":
        raise BadRequest("A compressed sign-in form cannot be read, so it was not passed on.")
    if body is None:
        body = await _read_login_body(request)
    elif len(body) > intercept.MAX_LOGIN_BODY:
        raise BadRequest("The login form sent is too large.")
    login, claimed = _read(request, config, body)
    counted = claimed or f"*{application.name}"  # whoami alone: one count for the application
    back = encode_path(ctx.path)
    async with one_at_a_time(request, counted, per_address=True) as mine:  # no parallel guesses
        if not mine:
            return busy(request, back, "Back to the sign-in page")
        waiting = await wait_for(request, counted)  # the application sees no guess meanwhile
        if waiting is not None:
            log.warning("login refused while waiting for %s from %s", counted, ctx.client_ip)
            return refusal(request, waiting, back, "Back to the sign-in page")
        headers = upstream_headers(request, session, identity=False, send_held=True)
        _canonical_headers(headers, login)
        sent = dict(parse_cookie_header(headers.get("Cookie", "")))
        _no_field_in_cookies(request, login, sent)
        upstream = await http.open_upstream(
            rt.upstream,
            request.method,
            http.upstream_url(application.upstream, back, ctx.query),
            headers,
            login.body,
            http.timeouts(application.timeouts.connect, application.timeouts.read),
            rt.metrics.upstream(application.name),
        )
        try:
            answer = await _judge(request, config, upstream, sent, claimed)
            if answer.verdict is Verdict.FAILURE:
                await count_failure(request, counted, "password")
        except BaseException:
            upstream.close()  # the store failed: its 503 goes back, not this page
            raise
    if answer.verdict is Verdict.FAILURE:
        return await _failed(request, session, upstream, answer)
    if answer.verdict is Verdict.SUCCESS and _again(session, answer):
        return await _signed_in_again(request, session, upstream, answer)
    upstream.close()
    if answer.verdict is Verdict.UNCLEAR:
        return await _unclear(request, session, answer)
    return await _succeeded(request, session, answer)


class _Answer:
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


async def _judge(
    request: web.Request,
    config: Intercept,
    upstream: http.Upstream,
    sent: dict[str, str],
    claimed: str | None,
) -> _Answer:
    ctx = context(request)
    headers = http.response_headers(upstream, ctx.application.upstream)
    split = intercept.split_set_cookies(config, headers.getall("Set-Cookie", []))
    body = token = None
    if config.login.token is not None:
        body = await _answer_body(upstream)
        if body is not None:
            try:
                decoded = decode_body(headers.get("Content-Encoding"), body)
            except WhoamiUnreadable:
                decoded = b""
            token = intercept.token_in_answer(config.login.token, decoded)
    judged = intercept.judge(
        config.login,
        upstream.status,
        headers.get("Location"),
        split,
        sent,
        whoami=config.whoami is not None,
        token=token,
    )
    verdict, reason, user = judged.verdict, judged.reason, claimed
    if verdict is Verdict.SUCCESS and config.whoami is not None:
        jar = intercept.jar_after(sent, split)
        try:
            user = await ask_whoami(request, config.whoami, jar, token)
        except WhoamiUnreadable as exc:
            verdict, reason = Verdict.UNCLEAR, f"{reason}: {exc}"
        else:
            if user is None:
                verdict, reason = Verdict.FAILURE, f"{reason}: whoami says nobody is signed in"
    return _Answer(verdict, reason, headers, split, user, claimed, body, token)


async def _answer_body(upstream: http.Upstream) -> bytes | None:
    """The whole answer (a token login's is small), or None when it is too long to hold."""
    body = bytearray()
    while chunk := await upstream.content.read(64 * 1024):
        body.extend(chunk)
        if len(body) > MAX_ANSWER:
            return None
    return bytes(body)


async def _relay(
    request: web.Request, upstream: http.Upstream, answer: _Answer
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


async def _failed(
    request: web.Request, session: Session | None, upstream: http.Upstream, answer: _Answer
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
        await rt.sessions.save(holder)
        if created:
            headers.add("Set-Cookie", session_cookie_line(request, holder))
    return await _relay(request, upstream, answer)


async def _unclear(
    request: web.Request, session: Session | None, answer: _Answer
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
        status=502,
        title="Your sign-in could not be completed",
        message="The application's answer to your sign-in could not be understood, so you "
        "were not signed in.",
        next_step="Try again. If it keeps happening, tell the people who run this site.",
        link=encode_path(ctx.path) if ctx.path != "/" else "/",
        link_text="Back to the sign-in page",
    )
    holder = session if session is not None and session.level is Level.ANONYMOUS else None
    if holder is None:
        holder = rt.sessions.new(ctx.application.name)
        response.headers.add("Set-Cookie", session_cookie_line(request, holder))
    hold(holder, [*answer.split.session, *answer.split.other_parsed()])
    holder.withheld = []  # nothing of an unclear answer is ever released
    await rt.sessions.save(holder)
    return response


async def _succeeded(
    request: web.Request, session: Session | None, answer: _Answer
) -> web.StreamResponse:
    ctx = context(request)
    rt = runtime(request)
    config = ctx.application.intercept
    assert config is not None
    user = answer.user
    if user is None:
        return await _unclear(request, session, answer)
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
    if config.login.username_field is None:  # everyone with the password is this account
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


def _again(session: Session | None, answer: _Answer) -> bool:
    """The verified user signing in to the application again, as the same user (a page that
    lost its own session, a script that wants a new token): no new second factor."""
    return (
        session is not None
        and session.level is Level.VERIFIED
        and answer.user is not None
        and session.user == answer.user
        and (answer.claimed is None or answer.claimed == answer.user)
    )


async def _signed_in_again(
    request: web.Request, session: Session | None, upstream: http.Upstream, answer: _Answer
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
    return await _relay(request, upstream, answer)


def _refused_user(
    request: web.Request, config: Intercept, answer: _Answer
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
            status=403,
            title="This sign-in was refused",
            message="The application signed in a different account from the one given.",
            next_step="Go back to the sign-in page and sign in with your own account.",
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
            status=403,
            title="This account cannot sign in here",
            message="This account is not set up for two-step sign-in on this site.",
            next_step="Ask the people who run this site to add your account to a company.",
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
