"""What is known, once the password is right, of a user's second factor: enrolled or not,
enforced, deferred until when, a trusted-network cookie from inside the network, a remembered
browser, the account type (gateway.decision.Standing)."""

from __future__ import annotations

from gateway import trust
from gateway.decision import Standing
from gateway.enforcement import is_enforced
from gateway.policy.model import AccountType
from gateway.signin import remember
from gateway.signin.visit import Visit
from gateway.store import Store


async def standing_of(visit: Visit, user: str) -> Standing:
    store = visit.store
    company = visit.company_for(user)
    enrolled = bool(await store.list_methods(user))
    groups = visit.groups_of(user) if visit.groups_of else ()
    enforced = await is_enforced(company, store, user, groups)
    now = visit.clock()
    deferred = None
    if not enrolled and not enforced and company is not None:
        deferral = await store.get_deferral(user)
        if deferral is not None and deferral.company == company.id:
            # A policy that shortens `deferral:` applies to deferrals already granted.
            deferred = min(deferral.until, deferral.since + company.deferral.total_seconds())
    trusted = False
    if enrolled and company is not None and company.trusted_networks.networks:
        enrolled_at = await enrolment_time(store, user)
        check = trust.check(
            visit.trust_cookie,
            visit.signing_keys,
            user,
            company,
            visit.client_ip,
            now,
            enrolled_at,
        )
        trusted = check.valid
    remembered = enrolled and await remember.remembered(visit, user, company)
    return Standing(
        enrolled=enrolled,
        enforced=enforced,
        deferred_until=deferred,
        trusted=trusted,
        client_account=company is not None and company.account_type is AccountType.CLIENT,
        now=now,
        remembered=remembered,
    )


async def enrolment_time(store: Store, user: str) -> float | None:
    """When the user's oldest way to sign in was enrolled (recovery codes apart: they are made
    anew): a trusted-network cookie is bound to it, so a reset and a new enrolment, or the
    removal of that method, void the cookies issued before. Any method counts: a user who
    enrolled a phone or a passkey alone was never spared by a trusted network."""
    times = []
    for method in await store.list_methods(user):
        if method == "recovery":
            continue
        record = await store.get_enrolment(user, method) or {}
        moments = [record.get("created")]
        moments += [c.get("created") for c in record.get("credentials", []) if isinstance(c, dict)]
        times += [
            float(m) for m in moments if isinstance(m, int | float) and not isinstance(m, bool)
        ]
    return min(times) if times else None
