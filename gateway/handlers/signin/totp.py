"""Authenticator-app (TOTP) pages: enrolment (a QR code and the text secret) and the challenge."""

from __future__ import annotations

import logging
from html import escape

import segno
from aiohttp import web

from gateway.audit import audit
from gateway.factors import totp
from gateway.handlers.shared.attempts import start_again, too_many_failures, tries_left
from gateway.handlers.shared.completion import complete
from gateway.handlers.shared.factor_changes import announce_factor
from gateway.handlers.shared.methods import MethodPages, register
from gateway.handlers.shared.pages import page
from gateway.handlers.shared.pending import deferral_offer
from gateway.handlers.shared.redirects import gateway_url, rd, see_other
from gateway.handlers.shared.request import context, runtime, site_name
from gateway.i18n import N_, gettext
from gateway.metrics import OK, REPLAY, WRONG
from gateway.sessions import Session

log = logging.getLogger("gateway.challenge")

TOTP = "totp"
WRONG_CODE = N_(
    "That code is not right. Check that you are reading the code for this site in your "
    "authenticator app, then enter the 6 digits it shows now."
)
USED_CODE = N_(
    "That code has already been used. Wait for your authenticator app to show a new code, "
    "then enter it."
)


def _secret_context(user: str) -> str:
    return f"totp:{user}"


async def challenge_get(request: web.Request, session: Session) -> web.StreamResponse:
    return page(request, "challenge.html", session, error=None)


async def challenge_post(
    request: web.Request, session: Session, form: dict[str, str]
) -> web.StreamResponse:
    rt = runtime(request)
    user = session.user
    assert user is not None
    enrolment = await rt.store.get_enrolment(user, TOTP)
    if enrolment is None:
        return see_other(gateway_url("enrol", rd(request)))
    secret = rt.secrets.cipher.decrypt(str(enrolment["secret"]), _secret_context(user))
    check = totp.verify(
        secret, form.get("code", ""), rt.clock(), await rt.store.last_totp_step(user)
    )
    if check.ok and check.step is not None and await rt.store.claim_totp_step(user, check.step):
        log.info("second factor accepted for %s from %s", user, context(request).client_ip)
        rt.metrics.count(rt.metrics.challenges, TOTP, OK)
        return await complete(request, session, rd(request), via=TOTP)
    replay = check.replay or check.ok  # ok but the step was claimed meanwhile: also a replay
    log.warning(
        "%s for %s from %s",
        "replayed code" if replay else "wrong code",
        user,
        context(request).client_ip,
    )
    rt.metrics.count(rt.metrics.challenges, TOTP, REPLAY if replay else WRONG)
    if replay:
        audit("replay", method=TOTP, user=user, step=check.step)
    if await too_many_failures(request, session):
        return start_again(request)
    said = USED_CODE if replay else WRONG_CODE
    error = f"{gettext(said)} {await tries_left(request, session)}"
    return page(request, "challenge.html", session, status=401, error=error.strip())


def _qr_svg(uri: str) -> str:
    qr = segno.make(uri, error="m")
    svg = str(qr.svg_inline(scale=4, dark="#000", light="#fff", border=4, omitsize=False))
    label = escape(gettext("QR code to scan with your app"), quote=True)
    tag = f'<svg role="img" aria-label="{label}" '  # i18n: not for people (label is)
    return svg.replace("<svg ", tag, 1)


async def enrol_get(
    request: web.Request, session: Session, error: str | None = None, status: int = 200
) -> web.StreamResponse:
    rt = runtime(request)
    user = session.user
    assert user is not None
    if TOTP in await rt.store.list_methods(user):
        return see_other(gateway_url("challenge", rd(request)))
    if session.pending_totp is None:
        session.pending_totp = rt.secrets.cipher.encrypt(totp.new_secret(), _secret_context(user))
        await rt.sessions.save(session)
    secret = rt.secrets.cipher.decrypt(session.pending_totp, _secret_context(user))
    deferral = await deferral_offer(request, user)
    uri = totp.provisioning_uri(secret, user, site_name(request, user))
    return page(
        request,
        "enrol.html",
        session,
        status=status,
        error=error,
        qr_svg=_qr_svg(uri),
        secret_label=totp.label(secret),
        secret=secret,
        otpauth_uri=uri,
        deferral=deferral,
    )


async def enrol_post(
    request: web.Request, session: Session, form: dict[str, str]
) -> web.StreamResponse:
    rt = runtime(request)
    user = session.user
    assert user is not None
    if TOTP in await rt.store.list_methods(user):
        # Someone else finished enrolling this login first (a shared login): their app counts.
        return see_other(gateway_url("challenge", rd(request)))
    if session.pending_totp is None:
        return await enrol_get(request, session)
    secret = rt.secrets.cipher.decrypt(session.pending_totp, _secret_context(user))
    check = totp.verify(secret, form.get("code", ""), rt.clock(), None)
    if not check.ok or check.step is None:
        rt.metrics.count(rt.metrics.enrolments, TOTP, WRONG)
        if await too_many_failures(request, session):
            return start_again(request)
        error = f"{gettext(WRONG_CODE)} {await tries_left(request, session)}"
        return await enrol_get(request, session, error=error.strip(), status=400)
    first = not await rt.store.list_methods(user)
    await rt.store.put_enrolment(
        user,
        TOTP,
        {
            "secret": rt.secrets.cipher.encrypt(secret, _secret_context(user)),
            "created": rt.clock(),
        },
    )
    await rt.store.claim_totp_step(user, check.step)
    session.pending_totp = None
    log.info("authenticator app enrolled for %s from %s", user, context(request).client_ip)
    rt.metrics.count(rt.metrics.enrolments, TOTP, OK)
    await announce_factor(
        request, session, "factor_added", TOTP, N_("An authenticator app was added")
    )
    return await complete(request, session, rd(request), via=TOTP, first_enrolment=first)


register(
    MethodPages(
        name=TOTP,
        label=N_("Authenticator app"),
        challenge_get=challenge_get,
        challenge_post=challenge_post,
        enrol_get=enrol_get,
        enrol_post=enrol_post,
    )
)
