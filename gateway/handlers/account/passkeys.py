"""/.gateway/passkeys: the signed-in user's own passkeys, listed (name, added, last used), added
and removed; a change needs a recent second factor (shared/factor_changes.stale) and is
announced. Adding one at sign-in, and signing in with one: signin/passkeys.py."""

from __future__ import annotations

import json
import logging

from aiohttp import web

from gateway.errors import NotFound
from gateway.factors import webauthn
from gateway.factors.passkey_records import (
    WEBAUTHN,
    add_credential,
    record_of,
    remove_credential,
)
from gateway.factors.webauthn import REGISTER, Credential, Refused
from gateway.handlers.shared.attempts import busy
from gateway.handlers.shared.cookies import load_session
from gateway.handlers.shared.csrf import require_csrf
from gateway.handlers.shared.factor_changes import announce_factor, stale
from gateway.handlers.shared.methods import allowed, usable
from gateway.handlers.shared.pages import page, when
from gateway.handlers.shared.passkeys import (
    BAD_NAME,
    EXPIRED,
    NO_SCRIPT,
    NOT_ADDED,
    relying_party,
    take_challenge,
)
from gateway.handlers.shared.redirects import gateway_url, see_other
from gateway.handlers.shared.request import company_for, context, runtime, visit
from gateway.i18n import N_, gettext
from gateway.metrics import OK
from gateway.sessions import Level, Session
from gateway.signin.attempts import one_at_a_time

log = logging.getLogger("gateway.challenge")

MANAGE = "/.gateway/passkeys"
DONE = "passkeys_done"  # session scratch: what the last add or remove did, shown once
LAST_FACTOR = N_(
    "This is your only way to confirm it is you when you sign in, so it cannot be removed. "
    "Add another passkey or set up another method first, then remove this one."
)
GONE = N_("That passkey is no longer on your account. The list below is up to date.")


async def _signed_in(request: web.Request) -> Session | web.StreamResponse:
    """The verified session of a user whose company allows passkeys; else where to go."""
    session = await load_session(request)
    if session is None or session.level is not Level.VERIFIED or not session.user:
        return see_other(gateway_url("challenge", MANAGE))
    if WEBAUTHN not in allowed(company_for(request, session.user), runtime(request)):
        raise NotFound(N_("There is no gateway page at this address."))
    return stale(request, session) or session


async def _other_factors(request: web.Request, user: str) -> list[str]:
    """The user's enrolled methods, besides passkeys, that can still sign them in (recovery
    codes are for a lost device, not a second factor of their own)."""
    methods = usable(
        await runtime(request).store.list_methods(user),
        company_for(request, user),
        runtime(request),
    )
    return [m for m in methods if m not in (WEBAUTHN, "recovery")]


async def manage_get(
    request: web.Request,
    session: Session | None = None,
    error: str | None = None,
    status: int = 200,
    name: str = "",
) -> web.StreamResponse:
    """The user's passkeys (name, added, last used), a form to add one, a button to remove each."""
    if session is None:
        found = await _signed_in(request)
        if not isinstance(found, Session):
            return found
        session = found
    rt = runtime(request)
    user = session.user
    assert user is not None
    done = session.scratch.pop(DONE, None)
    record = await record_of(rt.store, user)
    credentials = webauthn.credentials_of(record)
    user_handle = str(record["user_handle"]) if record else webauthn.new_user_handle()
    challenge = webauthn.new_challenge(REGISTER, rt.clock(), user_handle=user_handle)
    session.scratch[WEBAUTHN] = challenge
    await rt.sessions.save(session)
    options = webauthn.registration_options(
        relying_party(request, user), user, user_handle, credentials, challenge
    )
    others = await _other_factors(request, user)
    passkeys = [
        {
            "id": c.id,
            "name": c.name,
            "added": when(c.created, rt.clock()),
            "last_used": when(c.last_used, rt.clock()),
        }
        for c in credentials
    ]
    return page(
        request,
        "passkey_manage.html",
        session,
        status=status,
        error=error,
        name_error=error == BAD_NAME,
        passkey_name=name,
        done=str(done) if done else None,
        passkeys=passkeys,
        only_factor=len(credentials) == 1 and not others,
        taken=json.dumps([c.name.lower() for c in credentials]),
        bad_name=BAD_NAME,
        options=options,
        scripts=True,
    )


async def manage_post(request: web.Request) -> web.StreamResponse:
    """Add a named passkey: the browser's answer to the page's registration options."""
    form = await require_csrf(request)
    found = await _signed_in(request)
    if not isinstance(found, Session):
        return found
    session = found
    rt = runtime(request)
    ctx = context(request)
    user = session.user
    assert user is not None
    answer = form.get("credential", "")
    name = form.get("name", "")
    try:
        challenge = await take_challenge(request, session, REGISTER)
        if not answer:
            return await manage_get(request, session, error=NO_SCRIPT, status=400, name=name)
        credential = webauthn.verify_registration(
            relying_party(request, user),
            answer,
            challenge,
            name,
            webauthn.credentials_of(await record_of(rt.store, user)),
            rt.clock(),
        )
        handle = str(challenge.get("user_handle", ""))
        if not await add_credential(rt.store, user, handle, credential):
            raise Refused("name", "taken meanwhile")
    except Refused as refused:
        log.warning("passkey not added for %s from %s: %s", user, ctx.client_ip, refused)
        message = {"name": BAD_NAME, "expired": EXPIRED}.get(refused.reason, NOT_ADDED)
        return await manage_get(request, session, error=message, status=400, name=name)
    log.info("passkey %r added for %s from %s", credential.name, user, ctx.client_ip)
    rt.metrics.count(rt.metrics.enrolments, WEBAUTHN, OK)
    await announce_factor(
        request,
        session,
        "factor_added",
        WEBAUTHN,
        gettext('A passkey named "%(name)s" was added', name=credential.name),
        name=credential.name,
    )
    session.scratch[DONE] = gettext('The passkey "%(name)s" was added.', name=credential.name)
    await rt.sessions.save(session)
    return see_other(MANAGE)


async def remove_post(request: web.Request) -> web.StreamResponse:
    """Remove one passkey, unless it is the user's last way to sign in."""
    form = await require_csrf(request)
    found = await _signed_in(request)
    if not isinstance(found, Session):
        return found
    session = found
    rt = runtime(request)
    ctx = context(request)
    user = session.user
    assert user is not None
    async with one_at_a_time(visit(request), user) as mine:  # with the other methods' removals
        if not mine:
            return busy(request, MANAGE, N_("Back to your passkeys"))
        others = bool(await _other_factors(request, user))
        removed = await remove_credential(rt.store, user, form.get("credential_id", ""), others)
    if removed == "last":
        return await manage_get(request, session, error=LAST_FACTOR, status=409)
    if not isinstance(removed, Credential):
        return await manage_get(request, session, error=GONE, status=404)
    log.info("passkey %r removed for %s from %s", removed.name, user, ctx.client_ip)
    await announce_factor(
        request,
        session,
        "factor_removed",
        WEBAUTHN,
        gettext('The passkey named "%(name)s" was removed', name=removed.name),
        name=removed.name,
    )
    session.scratch[DONE] = gettext('The passkey "%(name)s" was removed.', name=removed.name)
    await rt.sessions.save(session)
    return see_other(MANAGE)
