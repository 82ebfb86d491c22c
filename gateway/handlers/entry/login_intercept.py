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

from aiohttp import web
from multidict import CIMultiDict

from gateway.cookies import parse_cookie_header
from gateway.errors import BadRequest
from gateway.handlers.entry.login_answer import (
    Answer,
    failed,
    signed_in_again,
    signs_in_again,
    succeeded,
    unclear,
)
from gateway.handlers.entry.upstream_headers import upstream_headers
from gateway.handlers.entry.whoami import ask_whoami
from gateway.handlers.shared.attempts import busy, refusal
from gateway.handlers.shared.request import context, runtime, visit
from gateway.i18n import N_
from gateway.identity import intercept
from gateway.identity.login_body import LoginBody, UnreadableLogin, field_reading, read_login
from gateway.identity.whoami import MAX_ANSWER, WhoamiUnreadable, decode_body
from gateway.intercept_settings import Intercept
from gateway.paths import encode_path
from gateway.proxy import http
from gateway.sessions import Session
from gateway.signin.attempts import count_failure, one_at_a_time, wait_for

log = logging.getLogger("gateway.login")
Verdict = intercept.Verdict


async def _read_login_body(request: web.Request) -> bytes:
    """The whole login body (it is small, and it must be read before anything is forwarded)."""
    too_large = BadRequest(N_("The login form sent is too large."))
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
            N_("The sign-in form could not be read, so it was not passed on."),
            N_("Go back to the sign-in page, reload it and try again."),
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
            N_("The sign-in form could not be read, so it was not passed on."),
            N_("Clear this site's cookies, reload the sign-in page and try again."),
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
        # the reason goes to the log; the person gets the 400 page's own words
        raise UnreadableLogin(
            f"the field {field!r} is not in Unicode normal form (NFKC)"  # i18n: not for people
        )
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
        raise BadRequest(N_("A compressed sign-in form cannot be read, so it was not passed on."))
    if body is None:
        body = await _read_login_body(request)
    elif len(body) > intercept.MAX_LOGIN_BODY:
        raise BadRequest(N_("The login form sent is too large."))
    login, claimed = _read(request, config, body)
    counted = claimed or f"*{application.name}"  # whoami alone: one count for the application
    back = encode_path(ctx.path)
    # no parallel guesses
    async with one_at_a_time(visit(request), counted, per_address=True) as mine:
        if not mine:
            return busy(request, back, N_("Back to the sign-in page"))
        waiting = await wait_for(visit(request), counted)  # the application sees no guess meanwhile
        if waiting is not None:
            log.warning("login refused while waiting for %s from %s", counted, ctx.client_ip)
            return refusal(request, waiting, back, N_("Back to the sign-in page"))
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
                await count_failure(visit(request), counted, "password")
        except BaseException:
            upstream.close()  # the store failed: its 503 goes back, not this page
            raise
    if answer.verdict is Verdict.FAILURE:
        return await failed(request, session, upstream, answer)
    if answer.verdict is Verdict.SUCCESS and signs_in_again(session, answer):
        return await signed_in_again(request, session, upstream, answer)
    upstream.close()
    if answer.verdict is Verdict.UNCLEAR:
        return await unclear(request, session, answer)
    return await succeeded(request, session, answer)


async def _judge(
    request: web.Request,
    config: Intercept,
    upstream: http.Upstream,
    sent: dict[str, str],
    claimed: str | None,
) -> Answer:
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
                # a reason for the log and the audit, not shown
                nobody = "whoami says nobody is signed in"  # i18n: not for people
                verdict, reason = Verdict.FAILURE, f"{reason}: {nobody}"
    return Answer(verdict, reason, headers, split, user, claimed, body, token)


async def _answer_body(upstream: http.Upstream) -> bytes | None:
    """The whole answer (a token login's is small), or None when it is too long to hold."""
    body = bytearray()
    while chunk := await upstream.content.read(64 * 1024):
        body.extend(chunk)
        if len(body) > MAX_ANSWER:
            return None
    return bytes(body)
