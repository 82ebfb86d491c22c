"""Remember this browser (a company's `remember_browser`): after a real second factor with the
box ticked, a server-side record (gateway.store's remembered browsers) behind a signed cookie
lets this browser skip the challenge for that user until the record lapses. Never for client
accounts; independent of trusted networks; not a real factor (sessions it verifies are
"remembered": no step-up satisfied, no trusted-network cookie earned). The record is forgotten
on the sessions page, by an admin, at a reset, a factor change or a sign-out everywhere."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace

from itsdangerous import BadSignature, URLSafeSerializer

from gateway.audit import audit
from gateway.i18n import unit_words
from gateway.policy.model import AccountType, Company
from gateway.signin.visit import Visit
from gateway.store import Store
from gateway.store.base import RememberedBrowser

COOKIE = "gateway_remember"
_SALT = "gateway.remember-browser.v1"
USER_AGENT_MAX = 256
FIELD = "remember"  # the challenge forms' tick box


def offered(company: Company | None) -> bool:
    """Whether the tick box is shown: the company allows it and its accounts are not clients."""
    return (
        company is not None
        and company.remember_browser is not None
        and company.account_type is AccountType.PARTNER
    )


def span_words(company: Company | None) -> str | None:
    """How long the tick box remembers a browser, in words ("30 days"), or None where it is not
    offered."""
    if not offered(company) or company is None or company.remember_browser is None:
        return None
    seconds = int(company.remember_browser.total_seconds())
    days, hours = divmod(seconds, 86400)
    if days and not hours:
        return unit_words(days, "day")
    return unit_words(seconds // 3600, "hour")


def _serializer(keys: tuple[str, ...]) -> URLSafeSerializer:
    # itsdangerous signs with the last key of the list and accepts all; ours signs with the first.
    return URLSafeSerializer(list(reversed(keys)), salt=_SALT)


@dataclass(frozen=True)
class Claim:
    """What a cookie says, once its signature checks out."""

    user: str
    company: str
    handle: str


def read(value: str | None, keys: tuple[str, ...]) -> Claim | None:
    if not value:
        return None
    try:
        payload = _serializer(keys).loads(value)
        return Claim(str(payload["u"]), str(payload["c"]), str(payload["h"]))
    except (BadSignature, KeyError, TypeError, ValueError):
        return None


def sign(keys: tuple[str, ...], claim: Claim) -> str:
    payload = {"u": claim.user, "c": claim.company, "h": claim.handle}
    return str(_serializer(keys).dumps(payload))


def in_force(
    found: RememberedBrowser, company: Company | None, now: float
) -> RememberedBrowser | None:
    """`found` as the company's policy has it now: its end brought forward by a shortened
    remember_browser; None when the policy no longer offers it, the record is another
    company's, or that end has passed."""
    if not offered(company) or company is None or company.remember_browser is None:
        return None
    if found.record.get("company") != company.id:
        return None
    since = found.record.get("since")
    if not isinstance(since, int | float) or isinstance(since, bool):
        return None
    until = min(found.until, float(since) + company.remember_browser.total_seconds())
    return replace(found, until=until) if now < until else None


async def live(
    store: Store, user: str, company: Company | None, now: float
) -> list[RememberedBrowser]:
    """The user's remembered browsers that still skip the second factor now, each with the end
    the policy gives it (what the sessions page, the admins and the CLI list)."""
    found = (in_force(one, company, now) for one in await store.list_remembered(user, now))
    return [one for one in found if one is not None]


async def remembered(visit: Visit, user: str, company: Company | None) -> bool:
    """Whether this browser's cookie names a live record of `user` in `company`, which allows
    it now (a policy that shortens remember_browser applies to browsers already remembered)."""
    if company is None:
        return False
    claim = read(visit.remember_cookie, visit.signing_keys)
    if claim is None or claim.user != user or claim.company != company.id:
        return False
    now = visit.clock()
    found = await visit.store.remembered_browser(user, claim.handle, now)
    return found is not None and in_force(found, company, now) is not None


@dataclass(frozen=True)
class RememberCookie:
    value: str
    max_age: int
    handle: str  # the record's, to forget it again


async def remember(
    visit: Visit, user: str, company: Company, user_agent: str | None
) -> RememberCookie | None:
    """Record this browser for `user` (after a real second factor, the box ticked); the
    cookie to set, or None when the company does not allow it."""
    if not offered(company) or company.remember_browser is None:
        return None
    now = visit.clock()
    span = company.remember_browser.total_seconds()
    handle = secrets.token_hex(16)
    record = {
        "company": company.id,
        "since": now,
        "user_agent": (user_agent or "")[:USER_AGENT_MAX] or None,
        "address": visit.address,
    }
    await visit.store.remember_browser(user, handle, record, now + span)
    audit(
        "browser_remembered",
        user=user,
        company=company.id,
        ip=visit.client_ip,
        request_id=visit.request_id,
        browser=handle,
        until=now + span,
    )
    value = sign(visit.signing_keys, Claim(user, company.id, handle))
    return RememberCookie(value, int(span), handle)


def is_handle(text: str) -> bool:
    """Whether `text` could name a remembered browser (32 hex digits)."""
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)


def own_handle(visit: Visit, user: str) -> str | None:
    """The record this browser's cookie names for `user`, if its signature checks out."""
    claim = read(visit.remember_cookie, visit.signing_keys)
    return claim.handle if claim is not None and claim.user == user else None


async def forget_others(
    store: Store, user: str, keep: str | None, now: float, reason: str, **fields: object
) -> int:
    """Every remembered browser of `user` but `keep` forgotten ("Sign out everywhere else", an
    admin ending the sessions): a browser remembered by whoever held a session is not left
    able to skip the challenge. Audited when there were any."""
    forgotten = 0
    for browser in await store.list_remembered(user, now):
        if browser.handle != keep and await store.forget_browser(user, browser.handle):
            forgotten += 1
    if forgotten:
        audit("browsers_forgotten", user=user, reason=reason, forgotten=forgotten, **fields)
    return forgotten


async def forget_all(visit_store: Store, user: str, reason: str, **fields: object) -> int:
    """Every remembered browser of `user` forgotten (a reset, a factor change, a sign-out
    everywhere, an admin's or the person's "Forget all"); audited when there were any."""
    forgotten = await visit_store.forget_browsers(user)
    if forgotten:
        audit("browsers_forgotten", user=user, reason=reason, forgotten=forgotten, **fields)
    return forgotten
