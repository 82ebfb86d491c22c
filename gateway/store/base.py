"""The store interface: everything the gateway remembers between requests and restarts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

# Enforcement rows that lock a member of a company (a "domain:..." or "user:..." key) rather than
# the company itself have this prefix followed by the company's id as their source.
MEMBER_OF = "member of "


@dataclass(frozen=True)
class Deferral:
    company: str
    since: float
    until: float


# Browsers seen are kept at most this long, whatever window a caller counts them over.
BROWSERS_KEPT = 30 * 86400.0


@dataclass(frozen=True)
class UserRecord:
    """What the gateway has seen of one user, for company admins and operators."""

    user: str
    company: str | None  # the company the policy placed the user in when last seen
    first_seen: float
    # last_sign_in, last_2fa, last_2fa_ip, last_2fa_via, name, pending_phone, ... (JSON values)
    facts: Mapping[str, Any]


@dataclass(frozen=True)
class StoredSession:
    """A live session as the store keeps it: its key (the hash of its id), the encrypted blob
    and when it expires."""

    key: str
    blob: str
    expires_at: float


@dataclass(frozen=True)
class RememberedBrowser:
    """A browser a user asked the gateway to remember (a company's `remember_browser`): its
    handle (the opaque id its signed cookie names), what was noted of it and when it lapses."""

    handle: str
    record: Mapping[str, Any]
    until: float


class StoreUnavailable(Exception):
    """The store cannot be reached or answered with an error; callers fail closed."""


class Store(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...

    # sessions: opaque encrypted blobs under the hash of their id
    async def get_session(self, key: str, now: float) -> str | None: ...
    async def put_session(
        self, key: str, user: str | None, blob: str, expires_at: float
    ) -> None: ...
    # save again a session that is already stored, only if it still is: a session ended meanwhile
    # (logout or reset on another instance) is not brought back by a late save; False then
    async def update_session(
        self, key: str, user: str | None, blob: str, expires_at: float
    ) -> bool: ...
    async def delete_session(self, key: str) -> bool: ...  # True if it was there
    async def delete_user_sessions(self, user: str) -> int: ...
    # the user's sessions still live at `now` (expires_at after it), by key: what the sessions
    # page lists; a session that changed hands is listed under its new owner only
    async def list_user_sessions(self, user: str, now: float) -> list[StoredSession]: ...
    # drop expired sessions and codes and day-old counters; a store with its own TTLs does nothing
    async def purge_expired(self, now: float) -> int: ...

    # enrolments: one record per (user, method)
    async def get_enrolment(self, user: str, method: str) -> dict[str, Any] | None: ...
    async def put_enrolment(self, user: str, method: str, data: dict[str, Any]) -> None: ...
    async def delete_enrolments(self, user: str) -> int: ...
    async def delete_enrolment(self, user: str, method: str) -> bool: ...
    # compare-and-set: replace `old` by `new` only if the record is still `old` (a recovery code
    # used once, a WebAuthn counter moved forward) even with several gateways at once
    async def replace_enrolment(
        self, user: str, method: str, old: dict[str, Any], new: dict[str, Any]
    ) -> bool: ...
    async def list_methods(self, user: str) -> list[str]: ...

    # the enforcement ratchet: once a company is enforced, only an operator lifts it
    async def enforced_since(self, company: str) -> float | None: ...
    async def enforce(self, company: str, at: float, source: str) -> bool: ...  # True if new
    async def lift_enforcement(self, company: str) -> bool: ...  # True if it was enforced
    async def enforced_companies(self) -> dict[str, float]: ...
    # members of enforced companies (keys from gateway.enforcement) -> (company, since)
    async def enforced_members(self) -> dict[str, tuple[str, float]]: ...

    # "Remind me later": per user, until a time
    async def get_deferral(self, user: str) -> Deferral | None: ...
    async def put_deferral(self, user: str, company: str, since: float, until: float) -> None: ...
    async def delete_deferral(self, user: str) -> bool: ...  # enrolled or reset: no more
    # user -> until; a store with its own TTLs drops a deferral once its `until` has passed
    async def list_deferrals(self, company: str) -> dict[str, float]: ...

    # one-time codes sent by SMS, voice call or email, kept under a key that binds them to the
    # session that asked (the caller's business), until they expire
    async def put_code(self, key: str, data: dict[str, Any], expires_at: float) -> None: ...
    async def get_code(self, key: str, now: float) -> dict[str, Any] | None: ...
    # remove and return a live code at once: of two racing takes, one gets it, the other None
    async def take_code(self, key: str, now: float) -> dict[str, Any] | None: ...
    async def delete_code(self, key: str) -> None: ...

    # wrong second-factor answers under regulation keys (gateway.regulation), for lockouts
    async def record_failure(self, key: str, at: float) -> None: ...
    async def failures_since(self, key: str, since: float) -> list[float]: ...
    async def clear_failures(self, key: str) -> None: ...
    # a list of failure keys under a name (a user's keys that name an address or a browser:
    # gateway.regulation.places_key), each with the time of its latest failure: note `key` at
    # `at` (a later time moves it on, an earlier one does not); list those noted at or after
    # `since`, in order. Kept a day after the latest, like the failures.
    async def note_failure_key(self, name: str, key: str, at: float) -> None: ...
    async def failure_keys(self, name: str, since: float) -> list[str]: ...

    # code sends per user, for the resend cooldown and the hourly cap
    # atomically: record a send at `at` only if none in the last `pause` seconds and fewer than
    # `per_hour` in the last hour; False when the user must wait (even with racing requests)
    async def reserve_send(self, user: str, at: float, pause: float, per_hour: int) -> bool: ...
    async def release_send(self, user: str, at: float) -> None: ...
    async def sends_since(self, user: str, since: float) -> list[float]: ...

    # a short exclusive hold on a name, across instances (one answer of a user checked at a time):
    # True if taken by `token`, False while another token holds it; it lapses after `ttl` seconds
    async def acquire(self, name: str, token: str, now: float, ttl: float) -> bool: ...
    async def release(self, name: str, token: str) -> None: ...  # only the holder's own hold

    # TOTP replay protection: record `step` only if it is later than the last one accepted
    async def claim_totp_step(self, user: str, step: int) -> bool: ...
    async def last_totp_step(self, user: str) -> int | None: ...

    # users the gateway has seen (first factor, second factor, an admin's change): one record
    # each, kept until removed. `facts` are merged into the record (a None value removes that
    # fact; names do not start with "_"); `at` is its first_seen when the record is new.
    async def note_user(
        self, user: str, company: str | None, at: float, facts: dict[str, Any]
    ) -> None: ...
    async def get_user(self, user: str) -> UserRecord | None: ...
    # the records last seen in `company`, by user name
    async def list_users(self, company: str) -> list[UserRecord]: ...

    # distinct browsers (opaque ids) a user signed in from: record `browser` at `at`, forget
    # those last seen before `since`, and return how many remain; kept BROWSERS_KEPT at most
    async def note_browser(self, user: str, browser: str, at: float, since: float) -> int: ...
    async def browsers_since(self, user: str, since: float) -> int: ...

    # browsers (opaque ids) that got a password of the user right, for regulation: record
    # `browser` at `at` (a later sighting moves it on); known if seen at or after `since`.
    # Kept BROWSERS_KEPT after their last sighting at most; apart from the browsers above.
    async def note_known_browser(self, user: str, browser: str, at: float) -> None: ...
    async def knows_browser(self, user: str, browser: str, since: float) -> bool: ...

    # remembered browsers ("Remember this browser"): a record per (user, handle) until `until`;
    # only live ones (until after `now`) are found or listed; each lapses by itself (a TTL, or
    # purge_expired). Forgetting one says whether it was there; forgetting all, how many were.
    async def remember_browser(
        self, user: str, handle: str, record: dict[str, Any], until: float
    ) -> None: ...
    async def remembered_browser(
        self, user: str, handle: str, now: float
    ) -> RememberedBrowser | None: ...
    async def list_remembered(self, user: str, now: float) -> list[RememberedBrowser]: ...
    async def forget_browser(self, user: str, handle: str) -> bool: ...
    async def forget_browsers(self, user: str) -> int: ...
