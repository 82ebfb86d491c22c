"""Store-backed operator actions for the CLI: reading the ratchet and a user's facts, lifting.

The CLI opens the store named by the settings for one command and closes it again. An SQLite
file that does not exist yet is reported as such (`StoreAbsent`) rather than created, so that a
check run on the wrong machine, or before the gateway ever ran, leaves nothing behind.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from gateway.admin import Member, member, members
from gateway.enforcement import user_keys
from gateway.explain import StoreFacts
from gateway.policy.model import Company, Policy
from gateway.store import Store, StoreUnavailable, open_store
from gateway.store.base import UserRecord
from gateway.store.sqlite import path_from_url


@dataclass(frozen=True)
class UserSeen:
    record: UserRecord | None
    methods: tuple[str, ...]


class StoreAbsent(StoreUnavailable):
    """The settings name an SQLite file that does not exist: the gateway has not run there."""


@asynccontextmanager
async def opened_store(url: str) -> AsyncIterator[Store]:
    """The store for `url`, open for the duration; raises StoreUnavailable (or StoreAbsent)."""
    if url.startswith("sqlite:///"):
        path = path_from_url(url)
        if not path.is_file():
            raise StoreAbsent(f"there is no SQLite store at {path} (has the gateway run here?)")
    store = open_store(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def enforced_companies(url: str) -> dict[str, float]:
    """Company id -> since when the store has enforced it."""
    async with opened_store(url) as store:
        return await store.enforced_companies()


async def enforcement_records(url: str) -> tuple[dict[str, float], dict[str, tuple[str, float]]]:
    """The store's enforced companies and enforced members (key -> company, since)."""
    async with opened_store(url) as store:
        return await store.enforced_companies(), await store.enforced_members()


async def user_facts(
    url: str, user: str, company: Company | None, groups: Sequence[str] = ()
) -> StoreFacts:
    async with opened_store(url) as store:
        since = None
        if company is not None:
            keys = [company.id, *user_keys(user, groups)]
            found = [await store.enforced_since(key) for key in keys]
            since = min((value for value in found if value is not None), default=None)
        methods = tuple(await store.list_methods(user))
        deferral = await store.get_deferral(user)
    deferred = None
    if deferral is not None and company is not None and deferral.company == company.id:
        deferred = min(deferral.until, deferral.since + company.deferral.total_seconds())
    return StoreFacts(enforced_since=since, methods=methods, deferred_until=deferred)


async def reset_user(url: str, user: str) -> tuple[list[str], int]:
    """A user's second factors removed and every session of theirs ended, so the next sign-in
    enrols afresh (trusted-network cookies are void too: they are bound to the enrolment time).
    Returns the methods that were removed and how many sessions ended."""
    async with opened_store(url) as store:
        methods = await store.list_methods(user)
        await store.delete_enrolments(user)
        await store.delete_deferral(user)  # a deferral would let them in with the password
        await store.forget_browsers(user)  # and so would a remembered browser
        ended = await store.delete_user_sessions(user)
    return methods, ended


async def lift_enforcement(url: str, company_id: str) -> float | None:
    """Remove the company's enforcement from the store; returns since when it had been enforced,
    or None when it was not enforced there. Auditing is the caller's business."""
    async with opened_store(url) as store:
        since = await store.enforced_since(company_id)
        if since is None or not await store.lift_enforcement(company_id):
            return None
        return since


async def company_members(url: str, policy: Policy, companies: list[Company]) -> list[Member]:
    """The members of each company (gateway.admin), company by company."""
    now = time.time()
    async with opened_store(url) as store:
        found: list[Member] = []
        for company in companies:
            found.extend(await members(store, policy, company, now))
        return found


async def user_details(url: str, policy: Policy, user: str) -> tuple[Member | None, UserSeen]:
    """The user as a member of their company (None for users of no company or never seen nor
    listed), and what the store holds whatever the company."""
    now = time.time()
    async with opened_store(url) as store:
        company = policy.company_for(user)
        found = None if company is None else await member(store, policy, company, user, now)
        return found, UserSeen(
            record=await store.get_user(user),
            methods=tuple(await store.list_methods(user)),
        )
