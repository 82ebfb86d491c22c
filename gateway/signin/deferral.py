""" "Remind me later": a partner's staff may put enrolment off while their company does not
enforce two-step sign-in; client accounts authenticate at every login (the Datto seed)."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.audit import audit
from gateway.enforcement import is_enforced
from gateway.policy.model import AccountType, Company
from gateway.signin.visit import Visit
from gateway.store import Store


async def may_defer(company: Company, store: Store, user: str, groups: Iterable[str] = ()) -> bool:
    return company.account_type is AccountType.PARTNER and not await is_enforced(
        company, store, user, groups
    )


async def grant(visit: Visit, user: str, company: Company) -> float:
    """Record the deferral (audited); when it runs out."""
    now = visit.clock()
    until = now + company.deferral.total_seconds()
    await visit.store.put_deferral(user, company.id, now, until)
    audit(
        "deferral",
        user=user,
        company=company.id,
        until=until,
        ip=visit.client_ip,
        request_id=visit.request_id,
    )
    return until
