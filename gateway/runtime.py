"""The shared objects of a running gateway, built once at startup and closed at shutdown."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import aiohttp

from gateway.audit import AuditLog
from gateway.clock import Clock, system_clock
from gateway.crypto import Cipher
from gateway.identity.ldap import Directory
from gateway.identity.portal import UsersFile
from gateway.log_repeats import Repeats
from gateway.metrics import Metrics
from gateway.notices import Notifier
from gateway.oidc_client import OidcClient
from gateway.pages import Pages
from gateway.policy import PolicyHolder
from gateway.policy.reload import PolicyReloader
from gateway.proxy.client import Pool
from gateway.routing import Router
from gateway.senders import Senders
from gateway.sessions import SessionManager
from gateway.settings import Settings
from gateway.store import Store

log = logging.getLogger("gateway")


@dataclass(frozen=True)
class Secrets:
    signing_keys: tuple[str, ...]  # first signs, all verify
    cipher: Cipher


@dataclass
class Runtime:
    settings: Settings
    policy: PolicyHolder
    store: Store
    sessions: SessionManager
    secrets: Secrets
    pages: Pages
    router: Router
    # portal-mode applications' users files or directories, by application name
    users: dict[str, UsersFile | Directory]
    # portal-mode applications' OpenID providers (portal `oidc:`), by application name
    oidc: dict[str, OidcClient] = field(default_factory=dict)
    client: aiohttp.ClientSession | None = None
    pool: Pool | None = None  # the lean client for bodiless GET and HEAD (gateway.proxy.client)
    notifier: Notifier | None = None  # email to users (notices); None when no sender is set up
    senders: Senders = field(default_factory=Senders)  # codes by SMS, voice, email
    clock: Clock = system_clock
    reloader: PolicyReloader | None = None  # made at startup, watching the policy_dir
    metrics: Metrics = field(default_factory=Metrics)  # this gateway's own registry
    # per application: requests open to it now, at most its max_connections (gateway.handlers.
    # entry.proxy.forward); made on first use, in the serving loop
    upstream_slots: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    # failures that repeat (a store or an application down) logged once per burst
    log_repeats: Repeats = field(
        default_factory=lambda: Repeats(logging.getLogger("gateway.errors"))
    )
    audit_log: AuditLog | None = None  # where audit lines go while the app runs (settings)

    @property
    def upstream(self) -> aiohttp.ClientSession:
        if self.client is None:
            raise RuntimeError("the upstream client is not started")
        return self.client
