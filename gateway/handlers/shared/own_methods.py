"""A signed-in person's own ways to sign in, as the pages see them: where they are managed
(/.gateway/account, "Two-step sign-in"; passkeys on their own page) and the default the person
chose, kept as a fact of their user record."""

from __future__ import annotations

from gateway.signin.methods import OWN_DEFAULT
from gateway.store import Store

ACCOUNT = "/.gateway/account"
PASSKEYS = "/.gateway/passkeys"
ACCOUNT_DONE = "account_done"  # session scratch: what the last change did, shown once there
# session scratch: the person chose to set up two-step sign-in now ("Set up now" on the
# account page), so the enrolment offers no "Remind me later"
ENROL_NOW = "enrol_now"


async def own_default(store: Store, user: str) -> str | None:
    """The method the user chose to be asked for first, if any."""
    record = await store.get_user(user)
    chosen = record.facts.get(OWN_DEFAULT) if record is not None else None
    return chosen if isinstance(chosen, str) else None
