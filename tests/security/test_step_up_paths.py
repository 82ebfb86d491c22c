"""A path with a trailing slash meets the rules of the path without it (review of issue 18,
part 3): Express (by default), Rails and Spring up to 5 route "/account/password/" to the
handler of "/account/password", so an exact or "*" rule's step-up, deny or two_factor is not
skipped by adding a slash, in proxy mode and through the forward-auth endpoints. Only the
stricter reading wins: a bypass of "/health" still lets "/health" through."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.clock import FixedClock
from gateway.policy.model import Access, AccessRule, Policy
from tests.forward_auth.conftest import Browser
from tests.proxy.helpers import PASSWORD, USER, write_users_file
from tests.support import (
    code_for,
    csrf_from_page,
    enrol_after_login,
    portal_app,
    portal_login,
    secret_from_page,
)

Client = TestClient[Any, Any]
BOUND = 15 * 60
COMPANY = "company: Example Company\nmembers:\n  domains: [example.com]\nenforce_2fa: true\n"
ACCESS = """applications:
  app:
    - paths: ["/health"]
      access: bypass
    - paths: ["/internal"]
      access: deny
    - paths: ["/account/password", "/admin/*"]
      access: two_factor
      reauthenticate_after: 15m
"""
POLICIES = {"example.yaml": COMPANY, "applications.yaml": ACCESS}
STEP_UP = AccessRule(
    ("/account/password", "/admin/*"), Access.TWO_FACTOR, reauthenticate_after=timedelta(minutes=15)
)
RULES = (AccessRule(("/health",), Access.BYPASS), AccessRule(("/internal",), Access.DENY), STEP_UP)
SLASHED = ["/account/password/", "/account/password//", "/admin/users/", "/ADMIN/users/"]


@pytest.mark.parametrize("path", SLASHED)
def test_a_trailing_slash_meets_the_step_up_of_the_path_without_it(path: str) -> None:
    policy = Policy(companies=(), access_rules={"app": RULES})
    assert policy.access_for("app", "GET", path) == (Access.TWO_FACTOR, STEP_UP)


def test_a_trailing_slash_meets_a_deny_and_never_loosens_a_rule() -> None:
    policy = Policy(companies=(), access_rules={"app": RULES})
    assert policy.access_for("app", "GET", "/internal/")[0] is Access.DENY
    assert policy.access_for("app", "GET", "/internal;x/")[0] is Access.DENY
    assert policy.access_for("app", "GET", "/health")[0] is Access.BYPASS
    assert policy.access_for("app", "GET", "/health/")[0] is Access.TWO_FACTOR  # as before
    assert policy.access_for("app", "GET", "/")[0] is Access.TWO_FACTOR


async def test_a_trailing_slash_steps_up_in_proxy_mode(
    make_gateway: Any, upstream_url: str, tmp_path: Path
) -> None:
    clock = FixedClock(time.time())
    client: Client = await make_gateway(
        {"app": portal_app(upstream_url, write_users_file(tmp_path))}, POLICIES, clock=clock
    )
    login = await portal_login(client, USER, PASSWORD)
    await enrol_after_login(client, login, clock)
    await client.get("/.gateway/recovery")
    assert (await client.get("/account/password/", allow_redirects=False)).status == 200
    clock.advance(BOUND)
    for path in SLASHED:
        asked = await client.get(path, allow_redirects=False)
        assert asked.status == 303, path
        assert asked.headers["Location"].startswith("/.gateway/challenge?rd="), path
    denied = await client.get("/internal/", allow_redirects=False)
    assert denied.status == 403


@pytest.mark.parametrize(
    ("endpoint", "style"), [("/.gateway/verify", "traefik"), ("/.gateway/auth-request", "nginx")]
)
async def test_a_trailing_slash_steps_up_through_forward_auth(
    make_gateway: Any, tmp_path: Path, endpoint: str, style: str
) -> None:
    clock = FixedClock(time.time())
    app = {
        "mode": "forward_auth",
        "hosts": ["app.test"],
        "identity": "portal",
        "portal": {"users_file": str(write_users_file(tmp_path))},
    }
    gateway: Client = await make_gateway(
        {"app": app}, POLICIES, clock=clock, trusted_proxies=["127.0.0.1/32"]
    )
    async with Browser(str(gateway.make_url(""))) as b:
        enrol = await b.sign_in("%2F")
        html = await b.page(enrol)
        code = code_for(secret_from_page(html), clock())
        await b.post(enrol, {"csrf_token": csrf_from_page(html), "code": code})
        assert (await b.verify("/account/password/", style=style, endpoint=endpoint)).status == 200
        clock.advance(BOUND)
        for path in SLASHED:
            stale = await b.verify(path, style=style, endpoint=endpoint)
            if "//" in path:  # sent to its canonical spelling first, never let through
                assert stale.status != 200
                continue
            assert stale.status == (303 if endpoint == "/.gateway/verify" else 401), path
            where = stale.headers.get("Location") or stale.headers["X-Gateway-Location"]
            assert where.startswith("/.gateway/continue?rd="), path
        assert (await b.verify("/internal/", style=style, endpoint=endpoint)).status == 403
