"""The enforcement ratchet: once a company's 2FA is enforced, a policy file cannot turn it off.

The store remembers when each company became enforced, and also each of its members (email
domains, listed users and directory groups): renaming the company's file, or listing an
enforced member in another company's file, does not escape it. A policy that would un-enforce
any of them is refused by `gateway policy check -c` and ignored, with an error logged, by a
running gateway. Only the operator's audited `gateway companies lift-enforcement` removes a
company and its members.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from gateway.audit import audit
from gateway.config_errors import ConfigError
from gateway.policy.model import Company, Policy
from gateway.store import Store
from gateway.store.base import MEMBER_OF

log = logging.getLogger("gateway.enforcement")


def member_keys(company: Company) -> list[str]:
    return (
        [f"domain:{domain}" for domain in company.domains]
        + [f"user:{user}" for user in company.users]
        + [f"group:{group}" for group in company.groups]
    )


def user_keys(user: str, groups: Iterable[str] = ()) -> list[str]:
    user = user.lower()
    keys = [f"user:{user}"]
    if "@" in user:
        keys.append(f"domain:{user.rpartition('@')[2]}")
    keys.extend(f"group:{group.lower()}" for group in groups)
    return keys


def _when(since: float) -> str:
    return datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _lift_hint(company_id: str) -> str:
    return f"only `gateway companies lift-enforcement {company_id}` lifts it"


def conflicts(
    policy: Policy,
    companies: Mapping[str, float],
    members: Mapping[str, tuple[str, float]],
    policy_dir: Path | str = "policies",
) -> list[ConfigError]:
    """What in `policy` would turn off an enforcement the store remembers. Records nothing."""
    errors: dict[tuple[str, int, str], ConfigError] = {}

    def add(error: ConfigError, key: str) -> None:
        errors.setdefault((error.file, error.line, key), error)

    present = {company.id: company for company in policy.companies}
    for company_id, since in companies.items():
        company = present.get(company_id)
        if company is None:
            add(
                ConfigError(
                    str(policy_dir),
                    0,
                    f'company "{company_id}" has been enforced since {_when(since)} but no '
                    "policy file defines it any more (renamed or removed?); restore the file "
                    f"under its old name, or: {_lift_hint(company_id)}",
                ),
                company_id,
            )
        elif not company.enforce_2fa:
            add(
                ConfigError(
                    company.source,
                    company.enforce_line,
                    f'enforce_2fa cannot be turned off for "{company.name}": it has been '
                    f"enforced since {_when(since)}; {_lift_hint(company.id)}",
                ),
                company_id,
            )
    claims = _Claims(policy)
    for key, (owner, since) in members.items():
        kind, _, member = key.partition(":")
        for claimant, who in claims.of(kind, member):
            if claimant.enforce_2fa:
                continue
            add(
                ConfigError(
                    claimant.source,
                    claimant.enforce_line,
                    f'"{who}" belongs to a company ("{owner}") enforced since {_when(since)}: '
                    f"this file cannot take it out of enforcement; {_lift_hint(owner)}",
                ),
                owner if claimant.id == owner else f"{key}:{claimant.id}",
            )
    return list(errors.values())


class _Claims:
    """The companies that now claim an enforced member: for a domain, the company listing the
    domain and every company listing one of its addresses by name, in the policy's order.
    Indexed once per check: scanning every company for each of thousands of recorded members
    held the event loop for most of a second after each reload of a large policy."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.domains: dict[str, list[tuple[Company, str]]] = {}
        self.groups: dict[str, list[tuple[Company, str]]] = {}
        for company in policy.companies:
            for domain in dict.fromkeys(company.domains):
                self.domains.setdefault(domain, []).append((company, f"@{domain}"))
            for user in company.users:
                self.domains.setdefault(user.rpartition("@")[2], []).append((company, user))
            for group in dict.fromkeys(company.groups):
                self.groups.setdefault(group, []).append((company, f"group {group}"))

    def of(self, kind: str, member: str) -> list[tuple[Company, str]]:
        if kind == "user":
            company = self.policy.company_for(member)
            return [(company, member)] if company is not None else []
        if kind == "group":
            return self.groups.get(member, [])
        return self.domains.get(member, [])


def _claimants(policy: Policy, kind: str, member: str) -> list[tuple[Company, str]]:
    """The plain scan that _Claims answers faster (tests compare the two)."""
    if kind == "user":
        company = policy.company_for(member)
        return [(company, member)] if company is not None else []
    if kind == "group":
        return [(c, f"group {member}") for c in policy.companies if member in c.groups]
    found: list[tuple[Company, str]] = []
    for company in policy.companies:
        if member in company.domains:
            found.append((company, f"@{member}"))
        found.extend((company, user) for user in company.users if user.rpartition("@")[2] == member)
    return found


async def enforce_company(store: Store, company: Company, now: float, source: str) -> bool:
    """Record the company and its members as enforced; True when the company is newly so."""
    new = await store.enforce(company.id, now, source)
    for key in member_keys(company):
        await store.enforce(key, now, MEMBER_OF + company.id)
    if new:
        audit("enforcement_on", company=company.id, source=source)
    return new


async def apply_ratchet(
    policy: Policy, store: Store, now: float, policy_dir: Path | str = "policies"
) -> list[ConfigError]:
    """Record every company this policy enforces; log what it would un-enforce.

    What the store holds already is not written again (a record is never overwritten): after
    every reload of a policy of a thousand companies, five thousand writes on the event loop
    held each request up for a second."""
    companies, members = await store.enforced_companies(), await store.enforced_members()
    recorded = companies.keys() | members.keys()
    wrote = False
    for company in policy.companies:
        if company.enforce_2fa and not recorded.issuperset([company.id, *member_keys(company)]):
            await enforce_company(store, company, now, f"policy file {company.source}")
            wrote = True
    if wrote:
        companies, members = await store.enforced_companies(), await store.enforced_members()
    found = conflicts(policy, companies, members, policy_dir)
    for error in found:
        log.error("%s; it stays enforced", error)
    return found


class PolicyRatchet:
    """apply_ratchet for each policy put in force, skipped while the policy's companies are the
    very objects last ratcheted. The loader keeps a company's object while its file's content
    stays the same (gateway.policy.file_reading), so a reload that changed access rules only
    has nothing to record, and costs neither store reads nor a pass over every company on the
    event loop (17 ms with a thousand companies, after every reload). A company changed, added
    or removed: the whole ratchet runs, as at start. A record lifted by the operator meanwhile
    is written again then, not at the next reload of an unrelated file."""

    def __init__(
        self, store: Store, clock: Callable[[], float], policy_dir: Path | str = "policies"
    ) -> None:
        self.store = store
        self.clock = clock
        self.policy_dir = policy_dir
        self._last: tuple[Company, ...] | None = None

    async def __call__(self, policy: Policy) -> list[ConfigError]:
        last, companies = self._last, policy.companies
        if last is not None and _the_same(last, companies):
            return []
        found = await apply_ratchet(policy, self.store, self.clock(), self.policy_dir)
        self._last = companies
        return found


def _the_same(these: tuple[Company, ...], those: tuple[Company, ...]) -> bool:
    return len(these) == len(those) and all(a is b for a, b in zip(these, those, strict=True))


async def is_enforced(
    company: Company | None, store: Store, user: str, groups: Iterable[str] = ()
) -> bool:
    """Members of no company are always asked for a second factor, with no deferral. `groups`:
    the user's directory groups, as the session knows them (members by group)."""
    if company is None or company.enforce_2fa:
        return True
    if await store.enforced_since(company.id) is not None:
        return True
    for key in user_keys(user, groups):
        if await store.enforced_since(key) is not None:
            return True
    return False
