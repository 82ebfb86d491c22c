"""/.gateway/login and /.gateway/oidc/callback, portal mode with an OpenID provider (`oidc:`):
the login page sends the browser to the provider, the callback takes its answer back. The rules
are gateway.identity.oidc (the sign-in's secrets, the user's name) and gateway.identity.
oidc_token (the ID token); the provider's requests gateway.oidc_client. After the first factor
the sign-in goes on as with a password (handlers.shared.completion), unless the company's policy
accepts the provider's own second factor (provider_mfa) and the ID token shows one."""

from __future__ import annotations

import logging
import secrets

from aiohttp import web

from gateway.audit import audit
from gateway.cookies import expire_cookie
from gateway.errors import Forbidden, NotFound, ProviderDown, SignInOver
from gateway.handlers.shared.completion import after_first_factor, complete
from gateway.handlers.shared.cookies import load_session, session_cookie_line
from gateway.handlers.shared.redirects import see_other
from gateway.handlers.shared.request import (
    company_for,
    context,
    cookie_name,
    cookie_value,
    runtime,
)
from gateway.handlers.signin import portal_login
from gateway.i18n import N_
from gateway.identity.oidc import (
    ATTEMPT_COOKIE,
    ATTEMPT_TTL,
    CALLBACK_PATH,
    MAX_ATTEMPTS,
    AnswerRefused,
    Attempt,
    ProviderError,
    attempt_cookie,
    authorization_url,
    display_name,
    groups,
    signed_in_within,
    token_ok,
    used_mark,
    user_name,
    verified_email,
)
from gateway.oidc_client import OidcClient
from gateway.policy.provider_mfa import provider_mfa_counts
from gateway.redirects import safe_redirect
from gateway.sessions import Level

log = logging.getLogger("gateway.login")

PROVIDER_MFA = "provider_mfa"  # Session.second_factor: the OpenID provider's own, per policy
# characters of the sign-ins begun a browser keeps together (names and values): far below the
# 8 KB a Cookie header may have at the gateway (listen.max_header_size) or most servers
ATTEMPTS_ROOM = 4096


def _client(request: web.Request) -> OidcClient | None:
    return runtime(request).oidc.get(context(request).application.name)


def _refused(reason: str) -> Forbidden:
    log.warning("OpenID sign-in refused: %s", reason)
    audit("oidc_refused", reason=reason)
    return Forbidden(
        N_("The answer of the sign-in service could not be verified, so you are not signed in."),
        N_("Sign in again. If it keeps happening, tell the people who run this site."),
    )


def _provider_down(request: web.Request, exc: ProviderError) -> ProviderDown:
    runtime(request).log_repeats.log(logging.ERROR, "oidc", "OpenID provider unavailable: %s", exc)
    return ProviderDown()


def _redirect_uri(request: web.Request, client: OidcClient) -> str:
    if client.settings.redirect_uri:
        return client.settings.redirect_uri
    scheme = "https" if context(request).secure else "http"
    return f"{scheme}://{request.host}{CALLBACK_PATH}"


async def login_get(request: web.Request) -> web.StreamResponse:
    """Portal mode's login page: the gateway's own form, or (with `oidc:`) off to the provider
    with a new sign-in's state, nonce and PKCE challenge."""
    client = _client(request)
    if client is None:
        return await portal_login.login_get(request)
    target = safe_redirect(request.query.get("rd"))
    session = await load_session(request)
    if session is not None and session.level is Level.VERIFIED:
        return see_other(target)
    try:
        discovery = await client.discovery()
    except ProviderError as exc:
        raise _provider_down(request, exc) from None
    rt, ctx = runtime(request), context(request)
    attempt = Attempt.new(target, _redirect_uri(request, client), rt.clock())
    settings = client.settings
    url = authorization_url(
        discovery, settings.client_id, settings.scopes, attempt, settings.max_age
    )
    response = see_other(url)
    sealed = attempt.seal(rt.secrets.cipher, ctx.application.name)
    for name in _given_up(request, ATTEMPTS_ROOM - len(sealed)):
        response.headers.add("Set-Cookie", expire_cookie(name, ctx.secure))
    response.headers.add(
        "Set-Cookie",
        f"{cookie_name(ctx, attempt_cookie(attempt.state))}={sealed}; Path=/; "
        f"Max-Age={ATTEMPT_TTL}; HttpOnly; SameSite=Lax" + ("; Secure" if ctx.secure else ""),
    )
    return response


def _given_up(request: web.Request, room: int) -> list[str]:
    """The browser's cookies of sign-ins begun earlier beyond the newest MAX_ATTEMPTS - 1, or
    beyond `room` characters together (and any this gateway cannot read): expired, so a browser
    that keeps coming back to the login page does not pile up cookies until its requests are
    larger than servers take."""
    rt, ctx = runtime(request), context(request)
    prefix = cookie_name(ctx, ATTEMPT_COOKIE + "_")
    begun: list[tuple[float, str, int]] = []
    unreadable: list[str] = []
    for name, value in ctx.cookies:
        if name.startswith(prefix):
            attempt = Attempt.read(value, rt.secrets.cipher, ctx.application.name)
            if attempt is None:
                unreadable.append(name)
            else:
                begun.append((attempt.expires, name, len(name) + len(value)))
    begun.sort(reverse=True)
    kept = 0
    given_up = unreadable
    for _, name, size in begun:
        if kept < MAX_ATTEMPTS - 1 and size <= room:
            kept, room = kept + 1, room - size
        else:
            given_up.append(name)
    return given_up


async def callback(request: web.Request) -> web.StreamResponse:
    client = _client(request)
    if client is None:
        raise NotFound(N_("This application does not sign in with an OpenID provider."))
    rt, ctx = runtime(request), context(request)
    state = request.query.get("state", "")
    if not token_ok(state):
        raise SignInOver(
            N_("This sign-in answer is not one the gateway asked for."), N_("Sign in again.")
        )
    # the sign-in this browser began with this state: another browser has no such cookie, and
    # one the gateway took already was expired with its answer
    cookie = cookie_name(ctx, attempt_cookie(state))
    sealed = cookie_value(ctx, cookie)
    attempt = Attempt.unseal(sealed, rt.secrets.cipher, ctx.application.name, state, rt.clock())
    if attempt is None:
        log.warning("OpenID callback with an unknown, used or expired state")
        audit("oidc_refused", reason="state unknown, used or expired")
        raise SignInOver(
            N_("This sign-in answer was used already, or it is too old."), N_("Sign in again.")
        )
    try:
        if "error" in request.query:
            error = request.query["error"][:64]
            log.warning("OpenID provider answered %r", error)
            audit("oidc_refused", reason=f"the provider answered {error}")
            raise Forbidden(
                N_("The sign-in service did not sign you in."),
                N_("Sign in again. If it keeps happening, tell the people who run this site."),
            )
        issuer = request.query.get("iss")  # RFC 9207: the answer names who sent it
        if issuer is not None and issuer != client.settings.issuer:
            why = f"the answer came from issuer {issuer[:200]!r}"  # i18n: not for people
            raise AnswerRefused(why)  # the log's and the audit line's reason
        code = request.query.get("code", "")
        if not code or len(code) > 4096:
            raise AnswerRefused("the provider's answer has no code")  # i18n: not for people
        tokens = await client.exchange(code, attempt)
        claims = await client.id_token_claims(tokens.get("id_token"), attempt.nonce, rt.clock())
        user = user_name(claims, client.settings.username_claim)
    except AnswerRefused as exc:
        raise _refused(exc.reason) from None
    except ProviderError as exc:
        raise _provider_down(request, exc) from None
    # the store's only write of a sign-in: its state marked used, once the provider vouched for
    # it (an anonymous visitor writes nothing); of two racing callbacks only one gets the mark
    now = rt.clock()
    ttl = max(1.0, attempt.expires - now)
    if not await rt.store.acquire(
        used_mark(ctx.application.name, state), secrets.token_urlsafe(16), now, ttl
    ):
        log.warning("OpenID callback with a state used already")
        audit("oidc_refused", reason="state unknown, used or expired")
        raise SignInOver(
            N_("This sign-in answer was used already, or it is too old."), N_("Sign in again.")
        )
    response = await _signed_in(request, client, user, claims, attempt.target)
    response.headers.add("Set-Cookie", expire_cookie(cookie, ctx.secure))
    return response


async def _signed_in(
    request: web.Request, client: OidcClient, user: str, claims: dict[str, object], target: str
) -> web.StreamResponse:
    rt, ctx = runtime(request), context(request)
    session = await load_session(request)
    if session is not None:
        await rt.sessions.end(session)
    session = rt.sessions.new(ctx.application.name)
    session.identity = {
        "email": verified_email(claims),
        "name": display_name(claims, user),
        "groups": groups(claims, client.settings.groups_claim),
    }
    session = await rt.sessions.promote(session, Level.FIRST_FACTOR, user)
    ctx.session, ctx.session_loaded = session, True
    log.info("first factor accepted for %s from %s (OpenID)", user, ctx.client_ip)
    audit("first_factor_ok", via="oidc", user=user)
    company = company_for(request, user)
    settings = client.settings
    accepted = company.provider_mfa if company is not None else None
    if provider_mfa_counts(claims, accepted, settings.mfa_amr, settings.mfa_acr):
        # only a second factor asked lately is this sign-in's: the provider's own session may be
        # hours old, and the gateway's own factor is asked at each sign-in
        if signed_in_within(claims, settings.mfa_max_age, settings.clock_skew, rt.clock()):
            return await complete(request, session, target, via=PROVIDER_MFA)
        log.info(
            "the provider's second factor for %s is older than provider_mfa.max_age (%ss) or "
            "undated (auth_time): the gateway asks its own",
            user,
            int(settings.mfa_max_age),
        )
    response = await after_first_factor(request, session, target)
    if session.level is Level.FIRST_FACTOR:
        response.headers.add("Set-Cookie", session_cookie_line(request, session))
    return response
