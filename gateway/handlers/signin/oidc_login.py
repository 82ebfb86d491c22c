"""/.gateway/login and /.gateway/oidc/callback, portal mode with an OpenID provider (`oidc:`):
the login page sends the browser to the provider, the callback takes its answer back. The rules
are gateway.identity.oidc (the sign-in's secrets, the user's name) and gateway.identity.
oidc_token (the ID token); the provider's requests gateway.oidc_client. After the first factor
the sign-in goes on as with a password (handlers.shared.completion), unless the company's policy
accepts the provider's own second factor (provider_mfa) and the ID token shows one."""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.audit import audit
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
    ATTEMPT_TTL,
    BROWSER_COOKIE,
    CALLBACK_PATH,
    AnswerRefused,
    Attempt,
    ProviderError,
    authorization_url,
    browser_cookie_ok,
    display_name,
    groups,
    new_browser_cookie,
    store_key,
    user_name,
    verified_email,
)
from gateway.oidc_client import OidcClient
from gateway.policy.provider_mfa import provider_mfa_counts
from gateway.redirects import safe_redirect
from gateway.sessions import Level

log = logging.getLogger("gateway.login")

PROVIDER_MFA = "provider_mfa"  # Session.second_factor: the OpenID provider's own, per policy
MAX_STATE = 512


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
    name = cookie_name(ctx, BROWSER_COOKIE)
    cookie = cookie_value(ctx, name)
    if cookie is None or not browser_cookie_ok(cookie):
        cookie = new_browser_cookie()  # (kept when there is one: sign-ins in two tabs)
    attempt = Attempt.new(target, _redirect_uri(request, client), cookie)
    key = store_key(ctx.application.name, attempt.state)
    await rt.store.put_code(key, attempt.record(), rt.clock() + ATTEMPT_TTL)
    settings = client.settings
    response = see_other(authorization_url(discovery, settings.client_id, settings.scopes, attempt))
    response.headers.add(
        "Set-Cookie",
        f"{name}={cookie}; Path=/; Max-Age={ATTEMPT_TTL}; HttpOnly; SameSite=Lax"
        + ("; Secure" if ctx.secure else ""),
    )
    return response


async def callback(request: web.Request) -> web.StreamResponse:
    client = _client(request)
    if client is None:
        raise NotFound(N_("This application does not sign in with an OpenID provider."))
    rt, ctx = runtime(request), context(request)
    state = request.query.get("state", "")
    if not state or len(state) > MAX_STATE:
        raise SignInOver(
            N_("This sign-in answer is not one the gateway asked for."), N_("Sign in again.")
        )
    # taken from the store: a second use of the same state finds nothing
    record = await rt.store.take_code(store_key(ctx.application.name, state), rt.clock())
    if record is None:
        log.warning("OpenID callback with an unknown, used or expired state")
        audit("oidc_refused", reason="state unknown, used or expired")
        raise SignInOver(
            N_("This sign-in answer was used already, or it is too old."), N_("Sign in again.")
        )
    try:
        attempt = Attempt.from_record(state, record)
        if not attempt.same_browser(cookie_value(ctx, cookie_name(ctx, BROWSER_COOKIE))):
            raise AnswerRefused("the callback came to another browser than the sign-in began in")
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
            raise AnswerRefused(f"the answer came from issuer {issuer[:200]!r}")
        code = request.query.get("code", "")
        if not code or len(code) > 4096:
            raise AnswerRefused("the provider's answer has no code")
        tokens = await client.exchange(code, attempt)
        claims = await client.id_token_claims(tokens.get("id_token"), attempt.nonce, rt.clock())
        user = user_name(claims, client.settings.username_claim)
    except AnswerRefused as exc:
        raise _refused(exc.reason) from None
    except ProviderError as exc:
        raise _provider_down(request, exc) from None
    return await _signed_in(request, client, user, claims, attempt.target)


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
        return await complete(request, session, target, via=PROVIDER_MFA)
    response = await after_first_factor(request, session, target)
    if session.level is Level.FIRST_FACTOR:
        response.headers.add("Set-Cookie", session_cookie_line(request, session))
    return response
