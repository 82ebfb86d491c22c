"""Passkey (WebAuthn) pages: adding a named passkey at enrolment, signing in with one, and the
signed-in user's own page (/.gateway/passkeys) that lists, adds and removes them.

Each page carries its options (with a fresh challenge kept in the session) in a data attribute;
passkeys.js hands them to the browser and puts the browser's answer in a hidden field of an
ordinary form, so the answer is POSTed with its CSRF token and the browser follows the 303.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gateway.audit import audit
from gateway.errors import NotFound
from gateway.factors import webauthn
from gateway.factors.webauthn import AUTHENTICATE, REGISTER, Credential, Refused, RelyingParty
from gateway.handlers.shared.attempts import start_again, too_many_failures
from gateway.handlers.shared.completion import complete
from gateway.handlers.shared.cookies import load_session
from gateway.handlers.shared.csrf import require_csrf
from gateway.handlers.shared.factor_changes import announce_factor, stale
from gateway.handlers.shared.methods import MethodPages, allowed, register, usable
from gateway.handlers.shared.pages import page
from gateway.handlers.shared.pending import deferral_offer
from gateway.handlers.shared.redirects import gateway_url, rd, see_other
from gateway.handlers.shared.request import company_for, context, runtime
from gateway.metrics import OK, REPLAY, WRONG
from gateway.sessions import Level, Session
from gateway.store import Store

log = logging.getLogger("gateway.challenge")

WEBAUTHN = "webauthn"
CAS_ATTEMPTS = 3  # another gateway changing the same record at the same moment: read again

NO_SCRIPT = (
    "Passkeys need JavaScript, which is off or blocked in this browser. Turn it on and try "
    "again, or choose another way."
)
EXPIRED = "That took too long, so the request ran out. Try again."
NOT_CHECKED = "Your passkey could not be checked. Try again, or choose another way to sign in."
UNKNOWN = (
    "That passkey is not one added for this account. Use a passkey you added here, or choose "
    "another way to sign in."
)
NOT_ADDED = "The passkey could not be added. Try again, or choose another method."
BAD_NAME = (
    f"Give this passkey a name of up to {webauthn.NAME_MAX} characters that your other passkeys "
    "do not use, such as Work laptop."
)


def relying_party(request: web.Request, user: str | None) -> RelyingParty:
    ctx = context(request)
    company = company_for(request, user)
    name = company.branding.name if company is not None else ctx.application.name
    return RelyingParty.for_host(ctx.host, ctx.secure, name)


async def _record(store: Store, user: str) -> dict[str, Any] | None:
    return await store.get_enrolment(user, WEBAUTHN)


async def _take(request: web.Request, session: Session, purpose: str) -> dict[str, Any]:
    """The challenge this form answers, gone from the session from now on (single use)."""
    rt = runtime(request)
    try:
        return webauthn.take_challenge(session.scratch, purpose, rt.clock())
    finally:
        await rt.sessions.save(session)


# --- sign-in ------------------------------------------------------------------------------


async def challenge_get(
    request: web.Request, session: Session, error: str | None = None, status: int = 200
) -> web.StreamResponse:
    rt = runtime(request)
    user = session.user
    assert user is not None
    credentials = webauthn.credentials_of(await _record(rt.store, user))
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


async def _update_record(
    store: Store, user: str, change: Callable[[dict[str, Any]], dict[str, Any] | None]
) -> dict[str, Any] | None:
    """Apply `change` to the user's passkey record by compare-and-set, reading it again when
    another gateway changed it meanwhile. The new record; None when there is no record, when
    `change` declined (returned None), or when the record kept moving."""
    for _ in range(CAS_ATTEMPTS):
        old = await store.get_enrolment(user, WEBAUTHN)
        if old is None:
            return None
        new = change(old)
        if new is None:
            return None
        if await store.replace_enrolment(user, WEBAUTHN, old, new):
            return new
    return None


async def _record_use(store: Store, user: str, credential_id: str, count: int, now: float) -> bool:
    """Move the passkey's counter forward; False when another sign-in got there first with the
    same or a later count (a replay, or a cloned authenticator)."""

    def use(old: dict[str, Any]) -> dict[str, Any] | None:
        credentials = webauthn.credentials_of(old)
        found = next((c for c in credentials if c.id == credential_id), None)
        if found is None or not webauthn.counter_ok(found.sign_count, count):
            return None
        found.sign_count = count
        found.last_used = now
        return dict(old, credentials=[c.to_dict() for c in credentials])

    return await _update_record(store, user, use) is not None


async def challenge_post(
    request: web.Request, session: Session, form: dict[str, str]
) -> web.StreamResponse:
    rt = runtime(request)
    ctx = context(request)
    user = session.user
    assert user is not None
    answer = form.get("credential", "")
    try:
        challenge = await _take(request, session, AUTHENTICATE)
        if not answer:
            return await challenge_get(request, session, error=NO_SCRIPT, status=400)
        credentials = webauthn.credentials_of(await _record(rt.store, user))
        used, count = webauthn.verify_authentication(
            relying_party(request, user), answer, challenge, credentials
        )
        if not await _record_use(rt.store, user, used.id, count, rt.clock()):
            raise Refused("counter", "the counter moved meanwhile")
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
    record = await _record(rt.store, user)
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


async def add_credential(store: Store, user: str, user_handle: str, credential: Credential) -> bool:
    """Append the passkey to the user's record (two gateways adding at once both count); False
    when its id or name was taken meanwhile."""
    if await store.get_enrolment(user, WEBAUTHN) is None:
        record = {"user_handle": user_handle, "credentials": [credential.to_dict()]}
        await store.put_enrolment(user, WEBAUTHN, record)
        return True
    taken = credential.name.casefold()

    def append(old: dict[str, Any]) -> dict[str, Any] | None:
        existing = webauthn.credentials_of(old)
        if any(c.id == credential.id or c.name.casefold() == taken for c in existing):
            return None
        return dict(old, credentials=[*old.get("credentials", []), credential.to_dict()])

    return await _update_record(store, user, append) is not None


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
        challenge = await _take(request, session, REGISTER)
        if not answer:
            return await enrol_get(request, session, error=NO_SCRIPT, status=400, name=name)
        record = await _record(rt.store, user)
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
        f'A passkey named "{credential.name}" was added',
        name=credential.name,
    )
    return await complete(request, session, rd(request), via=WEBAUTHN, first_enrolment=first)


register(
    MethodPages(
        name=WEBAUTHN,
        label="Passkey or security key",
        challenge_get=challenge_get,
        challenge_post=challenge_post,
        enrol_get=enrol_get,
        enrol_post=enrol_post,
    )
)


# --- the signed-in user's passkeys ----------------------------------------------------------

MANAGE = "/.gateway/passkeys"
DONE = "passkeys_done"  # session scratch: what the last add or remove did, shown once
LAST_FACTOR = (
    "This is your only way to confirm it is you when you sign in, so it cannot be removed. "
    "Add another passkey or set up another method first, then remove this one."
)
GONE = "That passkey is no longer on your account. The list below is up to date."


def when(moment: float | None) -> dict[str, str] | None:
    """A moment for the page: machine-readable (ISO 8601) and as people read it (UTC)."""
    if moment is None:
        return None
    at = datetime.fromtimestamp(moment, UTC)
    return {"iso": at.isoformat(timespec="seconds"), "text": at.strftime("%-d %B %Y, %H:%M UTC")}


async def _signed_in(request: web.Request) -> Session | web.StreamResponse:
    """The verified session of a user whose company allows passkeys; else where to go."""
    session = await load_session(request)
    if session is None or session.level is not Level.VERIFIED or not session.user:
        return see_other(gateway_url("challenge", MANAGE))
    if WEBAUTHN not in allowed(company_for(request, session.user), runtime(request)):
        raise NotFound("There is no gateway page at this address.")
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
    record = await _record(rt.store, user)
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
        {"id": c.id, "name": c.name, "added": when(c.created), "last_used": when(c.last_used)}
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
        challenge = await _take(request, session, REGISTER)
        if not answer:
            return await manage_get(request, session, error=NO_SCRIPT, status=400, name=name)
        credential = webauthn.verify_registration(
            relying_party(request, user),
            answer,
            challenge,
            name,
            webauthn.credentials_of(await _record(rt.store, user)),
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
        f'A passkey named "{credential.name}" was added',
        name=credential.name,
    )
    session.scratch[DONE] = f'The passkey "{credential.name}" was added.'
    await rt.sessions.save(session)
    return see_other(MANAGE)


async def remove_credential(
    store: Store, user: str, credential_id: str, others: bool
) -> Credential | str:
    """Take the passkey off the user's record; the passkey removed, or why not: "gone" (not on
    the record) or "last" (the only second factor left, `others` False)."""
    outcome: Credential | str = "gone"

    def drop(old: dict[str, Any]) -> dict[str, Any] | None:
        nonlocal outcome
        credentials = webauthn.credentials_of(old)
        found = next((c for c in credentials if c.id == credential_id), None)
        rest = [c.to_dict() for c in credentials if c.id != credential_id]
        if found is None or (not rest and not others):
            outcome = "gone" if found is None else "last"
            return None
        outcome = found
        return dict(old, credentials=rest)

    new = await _update_record(store, user, drop)
    if new is None or not isinstance(outcome, Credential):
        return "last" if outcome == "last" else "gone"
    if not new["credentials"]:  # no passkeys left: no passkey record, so none is asked for
        now = await store.get_enrolment(user, WEBAUTHN)
        if now is not None and not webauthn.credentials_of(now):
            await store.delete_enrolment(user, WEBAUTHN)
    return outcome


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
        f'The passkey named "{removed.name}" was removed',
        name=removed.name,
    )
    session.scratch[DONE] = f'The passkey "{removed.name}" was removed.'
    await rt.sessions.save(session)
    return see_other(MANAGE)
