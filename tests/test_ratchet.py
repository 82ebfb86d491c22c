"""The enforcement ratchet end to end: once the store records a company as enforced, a policy
file saying `enforce_2fa: false` changes nothing, across a reload and across a restart."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.clock import FixedClock
from gateway.enforcement import is_enforced
from gateway.identity.portal import hash_password
from gateway.keys import RUNTIME
from gateway.policy import reload as reload_module
from gateway.policy.model import Company
from gateway.runtime import Runtime
from tests.support import csrf_from_page, intercept_app, portal_app, portal_login

Client = TestClient[Any, Any]
UNUSED_UPSTREAM = "http://127.0.0.1:9"  # the pages tested here never reach the application
LEGACY_CSRF = re.compile(r'name="csrf" value="(\w+)"')
REMIND = "Remind me in"


def policy(enforce: bool) -> str:
    return (
        "company: Example Company\n"
        "members:\n"
        "  domains: [example.com]\n"
        f"enforce_2fa: {'true' if enforce else 'false'}\n"
    )


ENFORCE_LINE = 4  # the line of enforce_2fa in policy()


@pytest.fixture(autouse=True)
def no_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reloads here happen when the test says (reload_now, as on SIGHUP), not on a timer."""
    monkeypatch.setattr(reload_module, "POLL_INTERVAL", 3600.0)


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "users.yaml"
    path.write_text(f"users:\n  carol@example.com:\n    password: '{hash_password('carol-pw')}'\n")
    return path


def parts(client: Client) -> tuple[Runtime, Company]:
    runtime = client.app[RUNTIME]
    company = runtime.policy.current.company_by_id("example")
    assert company is not None
    return runtime, company


def ratchet_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "gateway.enforcement" and r.levelno == logging.ERROR
    ]


async def portal_enrol_page(client: Client) -> str:
    login = await portal_login(client, "carol@example.com", "carol-pw")
    assert login.status == 303 and login.headers["Location"].startswith("/.gateway/enrol")
    page = await client.get(login.headers["Location"])
    assert page.status == 200
    return await page.text()


async def intercept_enrol_page(client: Client) -> str:
    form = await client.get("/login")
    csrf = LEGACY_CSRF.search(await form.text())
    assert csrf, "the application's login form"
    login = await client.post(
        "/login",
        data={"csrf": csrf.group(1), "username": "alice@example.com", "password": "alice-password"},
        allow_redirects=False,
    )
    assert login.status == 303 and login.headers["Location"].startswith("/.gateway/enrol")
    page = await client.get(login.headers["Location"])
    assert page.status == 200
    return await page.text()


async def test_ratchet_across_a_reload(
    make_gateway: Any, users_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """enforce_2fa: true is recorded at startup; a reload to false is accepted (the file is
    valid) but the company stays enforced, with an error naming it and the file:line; members
    get no deferral, and asking for one anyway is refused."""
    clock = FixedClock(float(int(time.time())))
    client = await make_gateway(
        {"app": portal_app(UNUSED_UPSTREAM, users_file)},
        policies={"example.yaml": policy(True)},
        clock=clock,
    )
    runtime, _ = parts(client)
    assert await runtime.store.enforced_since("example") == clock.now
    reloader = runtime.reloader
    assert reloader is not None

    path = runtime.settings.policy_dir / "example.yaml"
    path.write_text(policy(False))
    caplog.set_level(logging.INFO)
    assert await reloader.reload_now("SIGHUP") is True
    assert (reloader.reloads_accepted, reloader.reloads_refused) == (1, 0)
    runtime, company = parts(client)
    assert runtime.policy.generation == 2 and company.enforce_2fa is False
    assert await is_enforced(company, runtime.store, "carol@example.com")
    [error] = ratchet_errors(caplog)
    assert error.startswith(f"{path}:{ENFORCE_LINE}: ")
    assert '"Example Company"' in error and "stays enforced" in error

    html = await portal_enrol_page(client)
    assert REMIND not in html
    refused = await client.post("/.gateway/defer", data={"csrf_token": csrf_from_page(html)})
    assert refused.status == 403


async def test_a_reload_that_turns_enforcement_on_is_recorded(
    make_gateway: Any, users_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Not enforced at start (deferral offered); a reload to true records it in the store; a
    reload back to false then leaves it enforced."""
    client = await make_gateway(
        {"app": portal_app(UNUSED_UPSTREAM, users_file)}, policies={"example.yaml": policy(False)}
    )
    runtime, _ = parts(client)
    reloader = runtime.reloader
    assert reloader is not None
    assert await runtime.store.enforced_since("example") is None
    path = runtime.settings.policy_dir / "example.yaml"

    path.write_text(policy(True))
    assert await reloader.reload_now() is True
    assert await runtime.store.enforced_since("example") is not None

    path.write_text(policy(False))
    assert await reloader.reload_now() is True
    runtime, company = parts(client)
    assert company.enforce_2fa is False and await is_enforced(
        company, runtime.store, "carol@example.com"
    )
    assert len(ratchet_errors(caplog)) == 1
    assert REMIND not in await portal_enrol_page(client)


async def test_ratchet_across_a_restart(
    make_gateway: Any, legacy_server: TestServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A new gateway on the same SQLite file, its policy saying false: still enforced, the
    error logged at startup, and an intercept-mode sign-in meets enrolment with no deferral."""
    apps = {"legacy": intercept_app(str(legacy_server.make_url("")))}
    first = await make_gateway(apps, policies={"example.yaml": policy(True)})
    store_url = first.app[RUNTIME].settings.store
    assert await first.app[RUNTIME].store.enforced_since("example") is not None
    await first.close()

    caplog.set_level(logging.INFO)
    second = await make_gateway(apps, policies={"example.yaml": policy(False)})
    runtime, company = parts(second)
    assert runtime.settings.store == store_url  # the same database file
    assert company.enforce_2fa is False
    assert await is_enforced(company, runtime.store, "carol@example.com")
    [error] = ratchet_errors(caplog)
    assert error.startswith(f"{runtime.settings.policy_dir / 'example.yaml'}:{ENFORCE_LINE}: ")
    assert REMIND not in await intercept_enrol_page(second)


async def test_never_enforced_company_may_defer(make_gateway: Any, users_file: Path) -> None:
    """The converse: a company the store never enforced, its file saying false, is offered
    "Remind me in 48 hours" on the enrolment page."""
    client = await make_gateway(
        {"app": portal_app(UNUSED_UPSTREAM, users_file)}, policies={"example.yaml": policy(False)}
    )
    runtime, company = parts(client)
    assert await runtime.store.enforced_since("example") is None
    assert not await is_enforced(company, runtime.store, "carol@example.com")
    html = await portal_enrol_page(client)
    assert "Remind me in 48 hours" in html


async def test_renaming_the_file_does_not_escape_the_ratchet(
    make_gateway: Any, users_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The company's file renamed (so its id changes) with enforce_2fa: false: its members stay
    enforced, and the vanished id is reported as an error."""
    client = await make_gateway(
        {"app": portal_app(UNUSED_UPSTREAM, users_file)}, policies={"example.yaml": policy(True)}
    )
    runtime, _ = parts(client)
    policy_dir = runtime.settings.policy_dir
    (policy_dir / "example.yaml").unlink()
    (policy_dir / "example-corp.yaml").write_text(policy(False))
    assert runtime.reloader is not None and await runtime.reloader.reload_now("test")
    renamed = runtime.policy.current.company_by_id("example-corp")
    assert renamed is not None and not renamed.enforce_2fa
    assert await is_enforced(renamed, runtime.store, "carol@example.com")
    assert any('company "example"' in error for error in ratchet_errors(caplog))
    assert REMIND not in await portal_enrol_page(client)


async def test_listing_a_member_in_another_file_does_not_escape_the_ratchet(
    make_gateway: Any, users_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An enforced company's member listed by address in a file that does not enforce stays
    enforced, and that file is reported at its enforce_2fa line."""
    lax = "company: Lax\nmembers:\n  users: [carol@example.com]\nenforce_2fa: false\n"
    client = await make_gateway(
        {"app": portal_app(UNUSED_UPSTREAM, users_file)}, policies={"example.yaml": policy(True)}
    )
    runtime, _ = parts(client)
    (runtime.settings.policy_dir / "lax.yaml").write_text(lax)
    assert runtime.reloader is not None and await runtime.reloader.reload_now("test")
    moved = runtime.policy.current.company_for("carol@example.com")
    assert moved is not None and moved.id == "lax"
    assert await is_enforced(moved, runtime.store, "carol@example.com")
    assert any(
        "lax.yaml:4" in error and "carol@example.com" in error for error in ratchet_errors(caplog)
    )
    assert REMIND not in await portal_enrol_page(client)


async def test_client_accounts_cannot_defer(make_gateway: Any, users_file: Path) -> None:
    """Clients authenticate at every login: no "Remind me" offer even when not enforced, and
    asking for a deferral anyway is refused."""
    clients = policy(False).replace("enforce_2fa", "account_type: client\nenforce_2fa")
    client = await make_gateway(
        {"app": portal_app(UNUSED_UPSTREAM, users_file)}, policies={"example.yaml": clients}
    )
    html = await portal_enrol_page(client)
    assert REMIND not in html
    refused = await client.post("/.gateway/defer", data={"csrf_token": csrf_from_page(html)})
    assert refused.status == 403
