"""A user's passkeys in the store: one record (their user handle and credentials) under the
method `webauthn`, changed only by compare-and-set, so that two gateways adding, using or
removing passkeys of the same user at the same moment neither lose a change nor both win."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.factors import webauthn
from gateway.factors.webauthn import Credential
from gateway.store import Store

WEBAUTHN = "webauthn"
CAS_ATTEMPTS = 3  # another gateway changing the same record at the same moment: read again


async def record_of(store: Store, user: str) -> dict[str, Any] | None:
    return await store.get_enrolment(user, WEBAUTHN)


async def _update_record(
    store: Store, user: str, change: Callable[[dict[str, Any]], dict[str, Any] | None]
) -> dict[str, Any] | None:
    """Apply `change` to the user's passkey record by compare-and-set, reading it again when
    another gateway changed it meanwhile. The new record; None when there is no record, when
    `change` declined (returned None), or when the record kept moving."""
    for _ in range(CAS_ATTEMPTS):
        old = await store.get_enrolment(user, WEBAUTHN)
        if old is None:
            return None
        new = change(old)
        if new is None:
            return None
        if await store.replace_enrolment(user, WEBAUTHN, old, new):
            return new
    return None


async def record_use(store: Store, user: str, credential_id: str, count: int, now: float) -> bool:
    """Move the passkey's counter forward; False when another sign-in got there first with the
    same or a later count (a replay, or a cloned authenticator)."""

    def use(old: dict[str, Any]) -> dict[str, Any] | None:
        credentials = webauthn.credentials_of(old)
        found = next((c for c in credentials if c.id == credential_id), None)
        if found is None or not webauthn.counter_ok(found.sign_count, count):
            return None
        found.sign_count = count
        found.last_used = now
        return dict(old, credentials=[c.to_dict() for c in credentials])

    return await _update_record(store, user, use) is not None


async def add_credential(store: Store, user: str, user_handle: str, credential: Credential) -> bool:
    """Append the passkey to the user's record (two gateways adding at once both count); False
    when its id or name was taken meanwhile."""
    if await store.get_enrolment(user, WEBAUTHN) is None:
        record = {"user_handle": user_handle, "credentials": [credential.to_dict()]}
        await store.put_enrolment(user, WEBAUTHN, record)
        return True
    taken = credential.name.casefold()

    def append(old: dict[str, Any]) -> dict[str, Any] | None:
        existing = webauthn.credentials_of(old)
        if any(c.id == credential.id or c.name.casefold() == taken for c in existing):
            return None
        return dict(old, credentials=[*old.get("credentials", []), credential.to_dict()])

    return await _update_record(store, user, append) is not None


async def remove_credential(
    store: Store, user: str, credential_id: str, others: bool
) -> Credential | str:
    """Take the passkey off the user's record; the passkey removed, or why not: "gone" (not on
    the record) or "last" (the only second factor left, `others` False)."""
    outcome: Credential | str = "gone"

    def drop(old: dict[str, Any]) -> dict[str, Any] | None:
        nonlocal outcome
        credentials = webauthn.credentials_of(old)
        found = next((c for c in credentials if c.id == credential_id), None)
        rest = [c.to_dict() for c in credentials if c.id != credential_id]
        if found is None or (not rest and not others):
            outcome = "gone" if found is None else "last"
            return None
        outcome = found
        return dict(old, credentials=rest)

    new = await _update_record(store, user, drop)
    if new is None or not isinstance(outcome, Credential):
        return "last" if outcome == "last" else "gone"
    if not new["credentials"]:  # no passkeys left: no passkey record, so none is asked for
        now = await store.get_enrolment(user, WEBAUTHN)
        if now is not None and not webauthn.credentials_of(now):
            await store.delete_enrolment(user, WEBAUTHN)
    return outcome
