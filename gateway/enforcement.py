"""The enforcement ratchet: once a company's 2FA is enforced, a policy file cannot turn it off.

The store remembers when each company became enforced. A policy that says `enforce_2fa: false`
for such a company is refused by `gateway policy check` and ignored, with an error logged, by a
running gateway. Only the operator's audited `gateway companies lift-enforcement` removes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.audit import audit
from gateway.policy.model import Company, Policy
from gateway.store import Store
from gateway.yamlsource import ConfigError

log = logging.getLogger("gateway.enforcement")


@dataclass(frozen=True)
class Conflict:
    company: Company
    since: float

    def error(self) -> ConfigError:
        when = datetime.fromtimestamp(self.since, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return ConfigError(
            self.company.source,
            self.company.enforce_line,
            f'enforce_2fa cannot be turned off for "{self.company.name}": it has been enforced '
            f"since {when}; only `gateway companies lift-enforcement {self.company.id}` lifts it",
        )


async def apply_ratchet(policy: Policy, store: Store, now: float) -> list[Conflict]:
    """Record every company this policy enforces; return those it tries to un-enforce."""
    enforced = await store.enforced_companies()
    conflicts: list[Conflict] = []
    for company in policy.companies:
        if company.enforce_2fa and company.id not in enforced:
            if await store.enforce(company.id, now, f"policy file {company.source}"):
                audit("enforcement_on", company=company.id, source=company.source)
        elif not company.enforce_2fa and company.id in enforced:
            conflicts.append(Conflict(company, enforced[company.id]))
    for conflict in conflicts:
        log.error("%s; the company stays enforced", conflict.error())
    return conflicts


async def is_enforced(company: Company | None, store: Store) -> bool:
    """Members of no company are always asked for a second factor, with no deferral."""
    if company is None or company.enforce_2fa:
        return True
    return await store.enforced_since(company.id) is not None
