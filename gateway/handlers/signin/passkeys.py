"""Passkey (WebAuthn) pages of sign-in: adding a named passkey at enrolment, and signing in with
one. The signed-in user's own page that lists, adds and removes them is account/passkeys.py.

Each page carries its options (with a fresh challenge kept in the session) in a data attribute;
passkeys.js hands them to the browser and puts the browser's answer in a hidden field of an
ordinary form, so the answer is POSTed with its CSRF token and the browser follows the 303.
"""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.audit import audit
from gateway.factors import webauthn
from gateway.factors.passkey_records import WEBAUTHN, add_credential, record_of, record_use
from gateway.factors.webauthn import AUTHENTICATE, REGISTER, Refused
from gateway.handlers.shared.attempts import start_again, too_many_failures
from gateway.handlers.shared.completion import complete
from gateway.handlers.shared.factor_changes import announce_factor
from gateway.handlers.shared.methods import MethodPages, register
from gateway.handlers.shared.pages import page
from gateway.handlers.shared.passkeys import (
    BAD_NAME,
    EXPIRED,
    NO_SCRIPT,
    NOT_ADDED,
    relying_party,
    take_challenge,
)
from gateway.handlers.shared.pending import deferral_offer
from gateway.handlers.shared.redirects import gateway_url, rd, see_other
from gateway.handlers.shared.request import context, runtime
from gateway.i18n import N_, gettext
from gateway.metrics import OK, REPLAY, WRONG
from gateway.sessions import Session

log = logging.getLogger("gateway.challenge")

NOT_CHECKED = N_("Your passkey could not be checked. Try again, or choose another way to sign in.")
UNKNOWN = N_(
    "That passkey is not one added for this account. Use a passkey you added here, or choose "
    "another way to sign in."
)


# --- sign-in ------------------------------------------------------------------------------


async def challenge_get(
    request: web.Request, session: Session, error: str | None = None, status: int = 200
) -> web.StreamResponse:
    rt = runtime(request)
    user = session.user
    assert user is not None
    credentials = webauthn.credentials_of(await record_of(rt.store, user))
    if not credentials:
        return see_other(gateway_url("enrol", rd(request)))
    challenge = webauthn.new_challenge(AUTHENTICATE, rt.clock())
    session.scratch[WEBAUTHN] = challenge
    await rt.sessions.save(session)
    options = webauthn.authentication_options(relying_party(request, user), credentials, challenge)
    return page(
        request,
        "passkey_challenge.html",
        session,
        status=status,
        error=error,
        options=options,
        scripts=True,
    )


async def challenge_post(
    request: web.Request, session: Session, form: dict[str, str]
) -> web.StreamResponse:
    rt = runtime(request)
    ctx = context(request)
    user = session.user
    assert user is not None
    answer = form.get("credential", "")
    try:
        challenge = await take_challenge(request, session, AUTHENTICATE)
        if not answer:
            return await challenge_get(request, session, error=NO_SCRIPT, status=400)
        credentials = webauthn.credentials_of(await record_of(rt.store, user))
        used, count = webauthn.verify_authentication(
            relying_party(request, user), answer, challenge, credentials
        )
        if not await record_use(rt.store, user, used.id, count, rt.clock()):
            raise Refused("counter", "the counter moved meanwhile")  # i18n: not for people
    except Refused as refused:
        log.warning("passkey refused for %s from %s: %s", user, ctx.client_ip, refused)
        replay = refused.reason == "counter"
        rt.metrics.count(rt.metrics.challenges, WEBAUTHN, REPLAY if replay else WRONG)
        if replay:
            audit("webauthn_counter", user=user, ip=ctx.client_ip, request_id=ctx.request_id)
        if await too_many_failures(request, session):
            return start_again(request)
        message = {"expired": EXPIRED, "unknown-credential": UNKNOWN}.get(
            refused.reason, NOT_CHECKED
        )
        return await challenge_get(request, session, error=message, status=401)
    log.info("passkey %r accepted for %s from %s", used.name, user, ctx.client_ip)
    rt.metrics.count(rt.metrics.challenges, WEBAUTHN, OK)
    return await complete(request, session, rd(request), via=WEBAUTHN)


# --- enrolment ----------------------------------------------------------------------------


async def enrol_get(
    request: web.Request,
    session: Session,
    error: str | None = None,
    status: int = 200,
    name: str = "",
) -> web.StreamResponse:
    rt = runtime(request)
    user = session.user
    assert user is not None
    record = await record_of(rt.store, user)
    user_handle = str(record["user_handle"]) if record else webauthn.new_user_handle()
    challenge = webauthn.new_challenge(REGISTER, rt.clock(), user_handle=user_handle)
    session.scratch[WEBAUTHN] = challenge
    await rt.sessions.save(session)
    options = webauthn.registration_options(
        relying_party(request, user), user, user_handle, webauthn.credentials_of(record), challenge
    )
    deferral = await deferral_offer(request, user)
    return page(
        request,
        "passkey_enrol.html",
        session,
        status=status,
        error=error,
        name_error=error == BAD_NAME,
        passkey_name=name,
        options=options,
        deferral=deferral,
        scripts=True,
    )


async def enrol_post(
    request: web.Request, session: Session, form: dict[str, str]
) -> web.StreamResponse:
    rt = runtime(request)
    ctx = context(request)
    user = session.user
    assert user is not None
    answer = form.get("credential", "")
    name = form.get("name", "")
    try:
        challenge = await take_challenge(request, session, REGISTER)
        if not answer:
            return await enrol_get(request, session, error=NO_SCRIPT, status=400, name=name)
        record = await record_of(rt.store, user)
        credential = webauthn.verify_registration(
            relying_party(request, user),
            answer,
            challenge,
            name,
            webauthn.credentials_of(record),
            rt.clock(),
        )
        first = not await rt.store.list_methods(user)
        handle = str(challenge.get("user_handle", ""))
        if not await add_credential(rt.store, user, handle, credential):
            raise Refused("name", "taken meanwhile")
    except Refused as refused:
        log.warning("passkey not added for %s from %s: %s", user, ctx.client_ip, refused)
        if refused.reason == "name":
            return await enrol_get(request, session, error=BAD_NAME, status=400, name=name)
        rt.metrics.count(rt.metrics.enrolments, WEBAUTHN, WRONG)
        if await too_many_failures(request, session):
            return start_again(request)
        message = EXPIRED if refused.reason == "expired" else NOT_ADDED
        return await enrol_get(request, session, error=message, status=400, name=name)
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
    return await complete(request, session, rd(request), via=WEBAUTHN, first_enrolment=first)


register(
    MethodPages(
        name=WEBAUTHN,
        label=N_("Passkey or security key"),
        challenge_get=challenge_get,
        challenge_post=challenge_post,
        enrol_get=enrol_get,
        enrol_post=enrol_post,
    )
)
