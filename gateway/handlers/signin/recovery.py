"""Signing in with a recovery code, for a lost device. The page after it (how many codes
remain) and the page that shows a new set are the user's own: account/recovery_codes.py."""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.audit import audit
from gateway.factors import recovery
from gateway.factors.recovery import RECOVERY
from gateway.handlers.shared.attempts import start_again, too_many_failures, tries_left
from gateway.handlers.shared.completion import complete
from gateway.handlers.shared.methods import MethodPages, register
from gateway.handlers.shared.pages import page
from gateway.handlers.shared.redirects import gateway_url, rd
from gateway.handlers.shared.request import context, runtime
from gateway.i18n import N_, gettext
from gateway.metrics import OK, WRONG
from gateway.offload import off_loop
from gateway.sessions import Session
from gateway.store import Store

log = logging.getLogger("gateway.challenge")

SPEND_ATTEMPTS = 5  # compare-and-set retries when other codes are spent at the same moment
WRONG_CODE = N_(
    "That recovery code is not right, or it has already been used. Check what you typed: "
    "each code works only once."
)


async def challenge_get(request: web.Request, session: Session) -> web.StreamResponse:
    return page(request, "recovery_challenge.html", session, error=None)


async def spend(store: Store, user: str, typed: str) -> int | None:
    """Use the code `typed` once: how many codes remain after it, or None when it is not one of
    the user's unused codes. Compare-and-set, so one code used twice at once succeeds once."""
    for _ in range(SPEND_ATTEMPTS):
        record = await store.get_enrolment(user, RECOVERY)
        if record is None:
            return None
        used = await off_loop(recovery.match, record, typed)
        if used is None:
            return None
        left = recovery.without(record, used)
        if await store.replace_enrolment(user, RECOVERY, record, left):
            return recovery.remaining(left)
    return None


async def challenge_post(
    request: web.Request, session: Session, form: dict[str, str]
) -> web.StreamResponse:
    user = session.user
    assert user is not None
    ip = context(request).client_ip
    metrics = runtime(request).metrics
    left = await spend(runtime(request).store, user, form.get("code", ""))
    if left is not None:
        log.info("recovery code accepted for %s from %s, %d left", user, ip, left)
        metrics.count(metrics.challenges, RECOVERY, OK)
        audit("recovery_code_used", user=user, remaining=left, ip=ip)
        return await complete(
            request, session, gateway_url("recovery/used", rd(request)), via=RECOVERY
        )
    log.warning("wrong recovery code for %s from %s", user, ip)
    metrics.count(metrics.challenges, RECOVERY, WRONG)
    if await too_many_failures(request, session):
        return start_again(request)
    error = f"{gettext(WRONG_CODE)} {await tries_left(request, session)}"
    return page(request, "recovery_challenge.html", session, status=401, error=error.strip())


register(
    MethodPages(
        name=RECOVERY,
        label=N_("A recovery code"),
        challenge_get=challenge_get,
        challenge_post=challenge_post,
    )
)
