"""A portal-mode gateway with two companies for the admin tests, and the steps of signing in."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar, web
from aiohttp.test_utils import TestClient, TestServer

from gateway.clock import FixedClock
from gateway.identity.portal import hash_password
from gateway.keys import RUNTIME
from gateway.runtime import Runtime
from tests.support import code_for, csrf_from_page, portal_app

NOW = 1_800_000_000.0
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
ALICE = "alice@acme.example"  # Acme's admin
CAROL = "carol@acme.example"  # an Acme member
DAVE = "dave@partner.example"  # listed by Acme by address, never signed in
BOB = "bob@globex.example"  # Globex: another company
ERIN = "erin@acme.example"  # an Acme member who has not enrolled
PASSWORD = "pw"
POLICIES = {
    "acme.yaml": f"""
company: Acme Corporation
members:
  domains: [acme.example]
  users: [{DAVE}]
account_type: partner
admins: [{ALICE}]
methods:
  allowed: [totp, sms, voice]
enforce_2fa: false
""",
    "globex.yaml": """
company: Globex
members:
  domains: [globex.example]
account_type: partner
admins: [bob@globex.example]
enforce_2fa: false
""",
}

Client = TestClient[web.Request, web.Application]


async def upstream() -> TestServer:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"hello {request.headers.get('Remote-User')}")

    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)
    server = TestServer(app)
    await server.start_server()
    return server


async def gateway(
    make_gateway: Any, tmp_path: Path, server: TestServer, clock: FixedClock, **extra: Any
) -> Client:
    """The gateway, with every user's password "pw"; Alice, Carol and Bob have the same
    authenticator app enrolled."""
    users = tmp_path / "users.yaml"
    hashed = hash_password(PASSWORD)
    users.write_text(
        "users:\n"
        + "".join(f"  {u}:\n    password: '{hashed}'\n" for u in (ALICE, CAROL, BOB, ERIN))
    )
    client: Client = await make_gateway(
        {"app": portal_app(str(server.make_url("")).rstrip("/"), users)},
        policies=POLICIES,
        clock=clock,
        **extra,
    )
    for user in (ALICE, CAROL, BOB):
        await enrol_totp(runtime(client), user)
    return client


async def enrol_totp(rt: Runtime, user: str) -> None:
    await rt.store.put_enrolment(
        user, "totp", {"secret": rt.secrets.cipher.encrypt(SECRET, f"totp:{user}"), "created": 1.0}
    )


def runtime(client: Client) -> Runtime:
    return client.app[RUNTIME]


async def password(client: Any, user: str, rd: str = "/") -> str:
    """The gateway's login form; returns where it sends the browser next."""
    page = await client.get("/.gateway/login", params={"rd": rd})
    answer = await client.post(
        "/.gateway/login",
        params={"rd": rd},
        data={
            "csrf_token": csrf_from_page(await page.text()),
            "username": user,
            "password": PASSWORD,
        },
        allow_redirects=False,
    )
    assert answer.status == 303, await answer.text()
    return str(answer.headers["Location"])


async def answer_challenge(client: Any, location: str, clock: FixedClock) -> str:
    """The TOTP code at the challenge page `location`; returns where the gateway goes next.
    Each call moves the clock on by a step, so a code is never a replay."""
    assert location.startswith("/.gateway/challenge"), location
    clock.advance(30)
    page = await client.get(location)
    done = await client.post(
        location,
        data={"csrf_token": csrf_from_page(await page.text()), "code": code_for(SECRET, clock.now)},
        allow_redirects=False,
    )
    assert done.status == 303, await done.text()
    return str(done.headers["Location"])


async def sign_in(client: Any, user: str, clock: FixedClock, rd: str = "/") -> str:
    return await answer_challenge(client, await password(client, user, rd), clock)


async def csrf(client: Any, path: str) -> str:
    page = await client.get(path)
    assert page.status == 200, await page.text()
    return csrf_from_page(await page.text())


def audit_events(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.audit"]
    return [line for line in lines if line.get("event") == event]


def capture_audit(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway.audit")


@asynccontextmanager
async def browser(client: Client) -> AsyncIterator[ClientSession]:
    """Another browser (its own cookies) on the same gateway."""
    async with ClientSession(
        base_url=str(client.make_url("")), cookie_jar=CookieJar(unsafe=True)
    ) as session:
        yield session


async def seen(client: Client, user: str, clock: FixedClock) -> None:
    """`user` signs in once in a browser of their own, so the gateway has seen them."""
    async with browser(client) as other:
        await sign_in(other, user, clock)
