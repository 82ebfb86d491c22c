"""What one request brings to the sign-in core, gathered once by the handler that serves it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.clientip import IPAddress
from gateway.clock import Clock
from gateway.metrics import Metrics
from gateway.policy.model import Company, Policy
from gateway.sessions import SessionManager
from gateway.store import Store

MAX_BROWSER_ID = 64  # longer than any id the gateway gives: not one of its own


@dataclass(frozen=True)
class Visit:
    store: Store
    sessions: SessionManager
    clock: Clock
    policy: Policy  # the policy in force when the request arrived
    client_ip: IPAddress | None
    browser_id: str | None  # the gateway_browser cookie, when it could be one the gateway gave
    trust_cookie: str | None  # the trusted-network cookie, as sent
    signing_keys: tuple[str, ...]
    metrics: Metrics
    request_id: str = ""
    application: str = ""
    remember_cookie: str | None = None  # the remembered-browser cookie, as sent
    # a user's directory groups as this request knows them (its session's), for members by group
    groups_of: Callable[[str | None], tuple[str, ...]] | None = None

    def company_for(self, user: str | None) -> Company | None:
        if not user:
            return None
        return self.policy.company_for(user, self.groups_of(user) if self.groups_of else ())

    @property
    def address(self) -> str | None:
        return str(self.client_ip) if self.client_ip is not None else None


def browser_id_of(value: str | None) -> str | None:
    """A browser id cookie's value, if the gateway could have given it."""
    return value if value and len(value) <= MAX_BROWSER_ID else None
