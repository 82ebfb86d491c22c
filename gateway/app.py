"""create_app(): middleware order, routes, and the lifecycle of shared objects."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from gateway.audit import AuditFileError, AuditLog
from gateway.clock import Clock, system_clock
from gateway.crypto import Cipher
from gateway.enforcement import PolicyRatchet
from gateway.handlers.account import methods as account_methods
from gateway.handlers.account import passkeys, recovery_codes
from gateway.handlers.account import sessions as account_sessions
from gateway.handlers.admin import api as admin_api
from gateway.handlers.admin import pages as admin_pages
from gateway.handlers.entry import forward_auth
from gateway.handlers.entry.proxy import proxy_handler
from gateway.handlers.ops import health, language, metrics_page
from gateway.handlers.ops.static import StaticFiles
from gateway.handlers.signin import (
    defer,
    oidc_login,
    phone_confirm,
    portal_login,
    reauth,
    second_factor,
    sign_out,
)
from gateway.identity.ldap import Directory
from gateway.identity.oidc import CALLBACK_PATH
from gateway.identity.portal import UsersFile
from gateway.keys import RUNTIME
from gateway.metrics import Metrics, timed_store
from gateway.middleware.context import gateway_middleware
from gateway.oidc_client import oidc_clients
from gateway.pages import Pages
from gateway.policy import Policy, PolicyHolder
from gateway.policy.reload import PolicyReloader
from gateway.proxy.client import Pool
from gateway.proxy.http import new_client
from gateway.routing import Router
from gateway.runtime import Runtime, Secrets
from gateway.senders import build_senders
from gateway.sessions import SessionManager
from gateway.settings import Portal, Settings, SettingsError
from gateway.store import Store, StoreUnavailable, open_store

log = logging.getLogger("gateway")
STATIC_DIR = Path(__file__).parent / "static"
PURGE_EVERY = 600  # seconds
FORM_LIMIT = 64 * 1024  # the gateway's own forms; proxied bodies stream and are not limited here


def build_runtime(
    settings: Settings, policy: Policy, clock: Clock = system_clock, store: Store | None = None
) -> Runtime:
    """Everything checked before the server starts: secrets, users files, the store URL, the
    audit file (opened for appending here)."""
    encryption_key = settings.secrets.read_encryption_key()
    cipher = Cipher(encryption_key)
    keys = settings.secrets.read_session_keys()
    metrics = Metrics(application.name for application in settings.applications)
    store = timed_store(store or open_store(settings.store, clock), metrics)
    holder = PolicyHolder()
    holder.replace(policy)  # generation 1: readyz tells a loaded policy from none
    users = {
        application.name: _password_check(application.portal)
        for application in settings.applications
        if application.portal is not None and application.portal.oidc is None
    }
    senders = build_senders(settings.senders)
    try:
        audit_log = AuditLog(settings.audit.to, settings.audit.path)
    except AuditFileError as exc:
        raise SettingsError(f"{exc} (audit.path in {settings.source})") from None
    runtime = Runtime(
        settings=settings,
        policy=holder,
        store=store,
        sessions=SessionManager(store, cipher, clock, handle_key=encryption_key),
        secrets=Secrets(signing_keys=keys, cipher=cipher),
        pages=Pages(),
        router=Router(settings.applications),
        users=users,
        oidc=oidc_clients(settings),
        clock=clock,
        senders=senders,
        notifier=senders.email,  # factor-change notices go out like email codes
        metrics=metrics,
        audit_log=audit_log,
    )
    metrics.policy_gauges(lambda: holder.generation, lambda: _reload_failing(runtime))
    for application in settings.applications:
        for warning in application.intercept.warnings if application.intercept else ():
            log.warning("application %s (intercept): %s", application.name, warning)
    return runtime


def _password_check(portal: Portal) -> UsersFile | Directory:
    """Portal mode's first factor: the users file, or the directory (its service account's
    password read now, so a missing secret stops the start)."""
    if portal.ldap is None:
        return UsersFile(portal.users_file or Path())
    secret = portal.ldap.bind_password
    return Directory(portal.ldap, secret.read() if secret is not None else None)


def _reload_failing(runtime: Runtime) -> int:
    reloader = runtime.reloader
    return 1 if reloader is not None and reloader.last_error is not None else 0


def policy_reloader(runtime: Runtime, ratchet: PolicyRatchet) -> PolicyReloader:
    """The watcher of the policy directory; every policy it swaps in goes through the ratchet."""
    settings = runtime.settings
    names = [application.name for application in settings.applications]
    return PolicyReloader(
        runtime.policy,
        settings.policy_dir,
        names,
        after_load=ratchet,
        on_result=lambda result: runtime.metrics.count(runtime.metrics.policy_reloads, result),
    )


async def _purge_expired(runtime: Runtime) -> None:
    """Expired sessions and codes out of the store, at start and then every PURGE_EVERY s."""
    while True:
        try:
            purged = await runtime.store.purge_expired(runtime.clock())
            if purged:
                log.info("purged %d expired records from the store", purged)
        except StoreUnavailable as exc:
            log.warning("could not purge expired records: %s", exc)
        await asyncio.sleep(PURGE_EVERY)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    if runtime.audit_log is not None:
        runtime.audit_log.attach()
    try:
        async with _running(runtime):
            yield
    finally:
        if runtime.audit_log is not None:
            runtime.audit_log.detach()


@contextlib.asynccontextmanager
async def _running(runtime: Runtime) -> AsyncIterator[None]:
    await runtime.store.open()
    ratchet = PolicyRatchet(runtime.store, runtime.clock, runtime.settings.policy_dir)
    await ratchet(runtime.policy.current)
    runtime.client = new_client()
    runtime.pool = Pool()
    reloader = runtime.reloader = policy_reloader(runtime, ratchet)
    reloader.start()
    purger = asyncio.create_task(_purge_expired(runtime))
    for provider in runtime.oidc.values():
        await provider.start()
    yield
    purger.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await purger
    await reloader.stop()  # before the store closes: the ratchet uses it
    await runtime.client.close()
    await runtime.pool.close()
    await runtime.senders.close()
    for provider in runtime.oidc.values():
        await provider.close()
    for check in runtime.users.values():
        if isinstance(check, Directory):
            check.close()
    await runtime.store.close()


def create_app(runtime: Runtime) -> web.Application:
    app = web.Application(middlewares=[gateway_middleware], client_max_size=FORM_LIMIT)
    app[RUNTIME] = runtime
    app.cleanup_ctx.append(_lifecycle)
    router = app.router
    router.add_get("/.gateway/healthz", health.healthz, allow_head=True)
    router.add_get("/.gateway/readyz", health.readyz, allow_head=True)
    router.add_get("/.gateway/metrics", metrics_page.metrics, allow_head=True)
    static = StaticFiles(STATIC_DIR)  # read once, at start
    router.add_get("/.gateway/static/{name:.*}", static.handle, allow_head=True)
    router.add_get(language.PATH, language.switch)  # the switcher at the foot of every page
    router.add_get("/.gateway/login", oidc_login.login_get)  # the form, or off to the provider
    router.add_get(CALLBACK_PATH, oidc_login.callback)
    router.add_post("/.gateway/login", portal_login.login_post)
    router.add_get("/.gateway/challenge", second_factor.challenge_get)
    router.add_post("/.gateway/challenge", second_factor.challenge_post)
    router.add_get("/.gateway/enrol", second_factor.enrol_get)
    router.add_post("/.gateway/enrol", second_factor.enrol_post)
    router.add_post("/.gateway/defer", defer.defer)
    router.add_get("/.gateway/recovery", recovery_codes.codes_get)
    router.add_post("/.gateway/recovery", recovery_codes.codes_post)
    router.add_get("/.gateway/recovery/used", recovery_codes.used_get)
    router.add_get("/.gateway/phone/confirm", phone_confirm.confirm_get)
    router.add_post("/.gateway/phone/confirm", phone_confirm.confirm_post)
    router.add_get("/.gateway/reauth", reauth.reauth_get)
    router.add_post("/.gateway/reauth", reauth.reauth_post)
    router.add_get("/.gateway/account", account_methods.account_get)
    router.add_post("/.gateway/account/remove", account_methods.remove_post)
    router.add_post("/.gateway/account/default", account_methods.default_post)
    router.add_post("/.gateway/account/start", account_methods.start_post)
    router.add_get("/.gateway/account/sessions", account_sessions.sessions_get)
    router.add_post("/.gateway/account/sessions/end", account_sessions.end_post)
    router.add_post("/.gateway/account/sessions/end-others", account_sessions.end_others_post)
    router.add_get("/.gateway/passkeys", passkeys.manage_get)
    router.add_post("/.gateway/passkeys", passkeys.manage_post)
    router.add_post("/.gateway/passkeys/remove", passkeys.remove_post)
    router.add_get("/.gateway/logout", sign_out.logout_get)
    router.add_post("/.gateway/logout", sign_out.logout_post)
    router.add_get("/.gateway/verify", forward_auth.verify, allow_head=True)
    router.add_get("/.gateway/auth-request", forward_auth.auth_request, allow_head=True)
    router.add_get("/.gateway/continue", forward_auth.continue_get)
    admin_api.add_routes(router)
    admin_pages.add_routes(router)
    router.add_route("*", "/{tail:.*}", proxy_handler)
    return app
