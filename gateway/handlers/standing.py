"""What the gateway knows about a signed-in user's second factor, and where they go next."""

from __future__ import annotations

from aiohttp import web

from gateway import trust
from gateway.decision import Outcome, Standing, second_factor
from gateway.enforcement import is_enforced
from gateway.handlers.admin_seen import seen_at_first_factor
from gateway.handlers.common import (
    company_for,
    context,
    cookie_name,
    cookie_value,
    gateway_url,
    runtime,
    see_other,
)
from gateway.policy.model import AccountType
from gateway.sessions import DEFERRAL, TRUSTED_NETWORK, Session
from gateway.store import Store


async def standing_for(request: web.Request, session: Session) -> Standing:
    rt = runtime(request)
    ctx = context(request)
    user = session.user or ""
    company = company_for(request, user)
    enrolled = bool(await rt.store.list_methods(user))
    enforced = await is_enforced(company, rt.store, user)
    now = rt.clock()
    deferred = None
    if not enrolled and not enforced and company is not None:
        deferral = await rt.store.get_deferral(user)
        if deferral is not None and deferral.company == company.id:
            # A policy that shortens `deferral:` applies to deferrals already granted.
            deferred = min(deferral.until, deferral.since + company.deferral.total_seconds())
    trusted = False
    if enrolled and company is not None and company.trusted_networks.networks:
        cookie = cookie_value(ctx, cookie_name(ctx, trust.COOKIE))
        enrolled_at = await enrolment_time(rt.store, user)
        check = trust.check(
            cookie, rt.secrets.signing_keys, user, company, ctx.client_ip, now, enrolled_at
        )
        trusted = check.valid
    return Standing(
        enrolled=enrolled,
        enforced=enforced,
        deferred_until=deferred,
        trusted=trusted,
        client_account=company is not None and company.account_type is AccountType.CLIENT,
        now=now,
    )


async def enrolment_time(store: Store, user: str) -> float | None:
    """When the user's authenticator was enrolled: a trusted-network cookie is bound to it, so a
    reset and a new enrolment void the cookies issued before."""
    enrolment = await store.get_enrolment(user, "totp")
    created = enrolment.get("created") if enrolment else None
    return float(created) if isinstance(created, (int, float)) else None


async def after_first_factor(
    request: web.Request, session: Session, target: str
) -> web.StreamResponse:
    """The next step once the password is known good: a challenge, an enrolment, or, with a
    trusted-network cookie or a live deferral, straight on to `target`."""
    from gateway.handlers.flow import complete

    standing = await standing_for(request, session)
    await seen_at_first_factor(request, session, standing.enrolled)
    decision = second_factor(standing)
    if decision.outcome is Outcome.SKIP_TRUSTED:
        return await complete(request, session, target, via=TRUSTED_NETWORK)
    if decision.outcome is Outcome.SKIP_DEFERRED:
        return await complete(request, session, target, via=DEFERRAL)
    page = "challenge" if decision.outcome is Outcome.CHALLENGE else "enrol"
    return see_other(gateway_url(page, target))
