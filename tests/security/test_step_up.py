"""Step-up per path (issue 18, part 3): an access rule's `reauthenticate_after` asks a verified
session whose last real second factor is older for it again (the challenge page, then back),
without ending the session. Over HTTP with fixed clocks at the edge of 15 minutes, in proxy mode
(portal and intercept identity) and through the forward-auth endpoints; a trusted-network cookie
does not satisfy it; a POST is refused, never replayed; the policy's mistakes are reported with
file and line; `policy explain` shows it."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.clock import FixedClock
from gateway.decision import Mode, Outcome, decide
from gateway.explain import Request, explain
from gateway.keys import RUNTIME
from gateway.policy.loader import check_policy_dir, load_policy_dir
from gateway.policy.model import Access, AccessRule, Policy
from gateway.sessions import Level
from tests.forward_auth.conftest import Browser
from tests.proxy.helpers import PASSWORD, USER, write_users_file
from tests.proxy.upstream import SEEN
from tests.support import (
    code_for,
    csrf_from_page,
    enrol_after_login,
    intercept_app,
    portal_app,
    portal_login,
    secret_from_page,
)

Client = TestClient[Any, Any]
MINUTE = 60
BOUND = 15 * MINUTE
COMPANY = """
company: Example Company
members:
  domains: [example.com]
enforce_2fa: true
"""
TRUSTED_COMPANY = COMPANY + "trusted_networks:\n  networks: [127.0.0.0/8]\n"
ACCESS = """applications:
  app:
    - paths: ["/admin/**"]
      access: two_factor
      reauthenticate_after: 15m
    - paths: ["/light/**"]
      access: one_factor
"""
POLICIES = {"example.yaml": COMPANY, "applications.yaml": ACCESS}


def cookie(client: Any, name: str) -> str | None:
    jar = client.session.cookie_jar if hasattr(client, "session") else client.cookie_jar
    return next((morsel.value for morsel in jar if morsel.key == name), None)


async def portal_gateway(
    make_gateway: Any,
    upstream_url: str,
    tmp_path: Path,
    clock: FixedClock,
    company: str = COMPANY,
    **extra: Any,
) -> tuple[Client, str]:
    """A portal gateway with the step-up rule; the client signed in and enrolled at clock()."""
    client: Client = await make_gateway(
        {"app": portal_app(upstream_url, write_users_file(tmp_path))},
        {"example.yaml": company, "applications.yaml": ACCESS},
        clock=clock,
        **extra,
    )
    login = await portal_login(client, USER, PASSWORD)
    secret = await enrol_after_login(client, login, clock)
    await client.get("/.gateway/recovery")  # the first codes, shown once after enrolment
    return client, secret


async def answer_challenge(client: Any, location: str, secret: str, clock: FixedClock) -> Any:
    """The challenge page at `location`, then its code at clock(); returns the 303 answer."""
    page = await client.get(location, allow_redirects=False)
    html = await page.text()
    assert page.status == 200, html
    assert "code" in html
    return await client.post(
        location,
        data={"csrf_token": csrf_from_page(html), "code": code_for(secret, clock())},
        allow_redirects=False,
    )


# -- the decision ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (0.0, Outcome.FORWARD),
        (BOUND - 1, Outcome.FORWARD),
        (BOUND, Outcome.STEP_UP),
        (BOUND + 1, Outcome.STEP_UP),
        (None, Outcome.STEP_UP),
    ],
)
def test_decide_compares_the_factor_age_with_the_bound(
    age: float | None, expected: Outcome
) -> None:
    """Younger than the bound: forward; at the bound or older, or never a real factor (a
    trusted network, a deferral): step up. Only on a verified session of a two_factor path."""
    decision = decide(
        Access.TWO_FACTOR, Mode.PORTAL, Level.VERIFIED, reauthenticate_after=BOUND, factor_age=age
    )
    assert decision.outcome is expected
    assert decide(Access.TWO_FACTOR, Mode.PORTAL, Level.VERIFIED).outcome is Outcome.FORWARD
    for level in (Level.ANONYMOUS, Level.FIRST_FACTOR):
        unverified = decide(Access.TWO_FACTOR, Mode.PORTAL, level, reauthenticate_after=BOUND)
        assert unverified.outcome is not Outcome.STEP_UP


def test_the_stricter_reading_brings_its_step_up() -> None:
    """An application that reads paths in any case: "/ADMIN/x" meets the step-up of
    "/admin/**", though "/ADMIN/**" has a plain two_factor rule first."""
    plain = AccessRule(("/ADMIN/**",), Access.TWO_FACTOR)
    step = AccessRule(("/admin/**",), Access.TWO_FACTOR, reauthenticate_after=timedelta(minutes=5))
    policy = Policy(access_rules={"app": (plain, step)})
    assert policy.access_for("app", "GET", "/ADMIN/x") == (Access.TWO_FACTOR, step)
    shorter = AccessRule(("/**",), Access.TWO_FACTOR, reauthenticate_after=timedelta(minutes=1))
    policy = Policy(access_rules={"app": (step, shorter)})
    assert policy.access_for("app", "GET", "/ADMIN/x")[1] is shorter  # no rule for the reading
    assert policy.access_for("app", "GET", "/admin/x")[1] is step  # the first match, no reading


# -- the policy --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("access: bypass\n      reauthenticate_after: 15m", "only a two_factor rule"),
        ("access: deny\n      reauthenticate_after: 15m", "only a two_factor rule"),
        ("access: one_factor\n      reauthenticate_after: 15m", "only a two_factor rule"),
        ("access: two_factor\n      reauthenticate_after: 59s", "at least 1m"),
        ("access: two_factor\n      reauthenticate_after: soon", "a duration"),
        ("access: two_factor\n      reauthenticate_after: 0", "a duration"),
    ],
)
def test_policy_mistakes_name_file_and_line(tmp_path: Path, rule: str, message: str) -> None:
    (tmp_path / "apps.yaml").write_text(
        f'applications:\n  app:\n    - paths: ["/x/**"]\n      access: two_factor\n'
        f'    - paths: ["/admin/**"]\n      {rule}\n'
    )
    errors = check_policy_dir(tmp_path)
    assert len(errors) == 1, errors
    assert errors[0].file == tmp_path / "apps.yaml" or str(errors[0].file).endswith("apps.yaml")
    assert errors[0].line == 7
    assert message in errors[0].message


def test_a_step_up_is_read_and_explained(tmp_path: Path) -> None:
    (tmp_path / "apps.yaml").write_text(ACCESS)
    (tmp_path / "example.yaml").write_text(COMPANY)
    policy = load_policy_dir(tmp_path)
    access, rule = policy.access_for("app", "GET", "/admin/users")
    assert access is Access.TWO_FACTOR and rule is not None
    assert rule.reauthenticate_after == timedelta(minutes=15)
    assert policy.access_for("app", "GET", "/other")[1] is None
    text = "\n".join(
        explain(policy, Request(USER, "10.0.0.1", "/admin/users"), app_name="app").lines
    )
    assert "-> two_factor, reauthenticate_after 15m" in text
    assert "step-up:" in text
    assert "less than 15m ago: forward" in text
    assert "15m ago or longer: step_up" in text
    assert "trusted network or a deferral: step_up" in text
    plain = "\n".join(explain(policy, Request(USER, "10.0.0.1", "/other"), app_name="app").lines)
    assert "step-up" not in plain


# -- proxy mode --------------------------------------------------------------------------------


@pytest.mark.parametrize("store", ["sqlite", "redis"])
async def test_a_step_up_path_asks_again_at_the_bound_and_comes_back(
    make_gateway: Any, upstream_url: str, tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    """One second before 15 minutes the path answers; at 15 minutes it sends the browser to the
    challenge under a new session id (not signed out); after the code, back to the very path
    and query, which answers for another 15 minutes. Other paths never ask. On either store."""
    clock = FixedClock(time.time())
    extra = {"store": request.getfixturevalue("redis_url")} if store == "redis" else {}
    client, secret = await portal_gateway(make_gateway, upstream_url, tmp_path, clock, **extra)
    assert (await client.get("/admin/x?a=1", allow_redirects=False)).status == 200
    clock.advance(BOUND - 1)
    assert (await client.get("/admin/x?a=1", allow_redirects=False)).status == 200
    assert (await client.get("/reports", allow_redirects=False)).status == 200
    before = cookie(client, "gateway_session")
    clock.advance(1)
    assert (await client.get("/reports", allow_redirects=False)).status == 200  # no step-up
    asked = await client.get("/admin/x?a=1", allow_redirects=False)
    assert asked.status == 303
    assert asked.headers["Location"] == "/.gateway/challenge?rd=%2Fadmin%2Fx%3Fa%3D1"
    after = cookie(client, "gateway_session")
    assert after is not None and after != before  # a new id, not the end of the session
    head = await client.head("/admin/x", allow_redirects=False)
    assert head.status == 303  # now first factor only: every two-factor path waits for the code
    done = await answer_challenge(client, asked.headers["Location"], secret, clock)
    assert done.status == 303 and done.headers["Location"] == "/admin/x?a=1"
    clock.advance(BOUND - 1)
    assert (await client.get("/admin/x?a=1", allow_redirects=False)).status == 200


async def test_a_stale_post_is_refused_not_replayed(
    make_gateway: Any, upstream_url: str, upstream: TestServer, tmp_path: Path
) -> None:
    """A POST (or any method but GET and HEAD, or a WebSocket's opening) after the bound: 401, a
    page that says to confirm or reload, nothing reaches the application and the session is
    left as it was."""
    clock = FixedClock(time.time())
    client, _ = await portal_gateway(make_gateway, upstream_url, tmp_path, clock)
    clock.advance(BOUND + MINUTE)
    before = cookie(client, "gateway_session")
    seen = len(upstream.app[SEEN])
    for method in ("POST", "PUT", "DELETE"):
        refused = await client.request(
            method,
            "/admin/users",
            data=b"name=x",
            headers={"Referer": f"{client.make_url('/admin/form?b=2')}"},
            allow_redirects=False,
        )
        assert refused.status == 401
        html = await refused.text()
        assert "confirm it is you" in html.lower()
        assert "reload" in html.lower()
        assert "/.gateway/reauth?rd=%2Fadmin%2Fform%3Fb%3D2" in html
    websocket = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    opening = await client.get("/admin/live", headers=websocket, allow_redirects=False)
    assert opening.status == 401  # a GET, but nothing a browser could follow to the challenge
    assert cookie(client, "gateway_session") == before
    assert (await client.get("/reports", allow_redirects=False)).status == 200
    assert len(upstream.app[SEEN]) == seen + 1  # only the GET /reports


async def test_a_trusted_network_does_not_satisfy_a_step_up(
    make_gateway: Any, upstream_url: str, tmp_path: Path
) -> None:
    """From inside a trusted network a new sign-in skips the challenge (the trusted-network
    cookie), but a step-up path asks for the code at once; the challenge page shows it (no skip
    there) and after the code the path answers."""
    clock = FixedClock(time.time())
    client, secret = await portal_gateway(
        make_gateway, upstream_url, tmp_path, clock, TRUSTED_COMPANY
    )
    assert any("trust" in morsel.key for morsel in client.session.cookie_jar)
    client.session.cookie_jar.clear(lambda morsel: morsel.key == "gateway_session")
    clock.advance(MINUTE)
    login = await portal_login(client, USER, PASSWORD, rd="%2Freports")
    assert login.status == 303
    assert login.headers["Location"] == "/reports"  # the trusted network stood in for the code
    assert (await client.get("/reports", allow_redirects=False)).status == 200
    asked = await client.get("/admin/x", allow_redirects=False)
    assert asked.status == 303
    assert asked.headers["Location"] == "/.gateway/challenge?rd=%2Fadmin%2Fx"
    done = await answer_challenge(client, asked.headers["Location"], secret, clock)
    assert done.status == 303 and done.headers["Location"] == "/admin/x"
    assert (await client.get("/admin/x", allow_redirects=False)).status == 200


async def test_a_deferral_does_not_satisfy_a_step_up(
    make_gateway: Any, upstream_url: str, tmp_path: Path
) -> None:
    """A member who put enrolment off reaches two_factor paths, but a step-up path asks for a
    second factor, which they have not got: the challenge sends them on to enrol, and after
    enrolling they are back on the path."""
    clock = FixedClock(time.time())
    company = COMPANY.replace("enforce_2fa: true", "enforce_2fa: false")
    client: Client = await make_gateway(
        {"app": portal_app(upstream_url, write_users_file(tmp_path))},
        {"example.yaml": company, "applications.yaml": ACCESS},
        clock=clock,
    )
    login = await portal_login(client, USER, PASSWORD, rd="%2Freports")
    html = await (await client.get(login.headers["Location"])).text()
    deferred = await client.post(
        "/.gateway/defer?rd=%2Freports",
        data={"csrf_token": csrf_from_page(html)},
        allow_redirects=False,
    )
    assert deferred.status == 303
    assert (await client.get("/reports", allow_redirects=False)).status == 200
    asked = await client.get("/admin/x", allow_redirects=False)
    assert asked.status == 303
    assert asked.headers["Location"] == "/.gateway/challenge?rd=%2Fadmin%2Fx"
    to_enrol = await client.get(asked.headers["Location"], allow_redirects=False)
    assert to_enrol.status == 303, await to_enrol.text()
    assert to_enrol.headers["Location"].startswith("/.gateway/enrol")
    page = await client.get(to_enrol.headers["Location"])
    html = await page.text()
    done = await client.post(
        to_enrol.headers["Location"],
        data={
            "csrf_token": csrf_from_page(html),
            "code": code_for(secret_from_page(html), clock()),
        },
        allow_redirects=False,
    )
    assert done.status == 303
    if done.headers["Location"].startswith("/.gateway/recovery"):
        await client.get(done.headers["Location"])
    assert (await client.get("/admin/x", allow_redirects=False)).status == 200


async def test_the_remembered_session_decides_without_a_store_read(
    make_gateway: Any, upstream_url: str, tmp_path: Path
) -> None:
    """The per-request cost: on a step-up path a verified session remembered for a few seconds
    (load_session recent=True) is judged by its own verified_at, with no read of the store."""
    clock = FixedClock(time.time())
    client, _ = await portal_gateway(make_gateway, upstream_url, tmp_path, clock)
    assert (await client.get("/admin/x", allow_redirects=False)).status == 200
    store = client.server.app[RUNTIME].sessions.store
    reads: list[str] = []
    original = store.get_session

    async def counted(*args: Any, **kwargs: Any) -> Any:
        reads.append("read")
        return await original(*args, **kwargs)

    store.get_session = counted
    try:
        for _ in range(5):
            assert (await client.get("/admin/x", allow_redirects=False)).status == 200
    finally:
        store.get_session = original
    assert reads == []


async def test_intercept_mode_keeps_the_application_session(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """Intercept mode: the application's own cookie, bound to the gateway session, survives
    the step-down and the challenge: after the code the application still knows the user, and
    its cookie was never cleared nor refused."""
    clock = FixedClock(time.time())
    access = ACCESS.replace("app:", "legacy:").replace("/admin/**", "/api/**")
    client: Client = await make_gateway(
        {"legacy": intercept_app(str(legacy_server.make_url("")))},
        {"example.yaml": COMPANY, "applications.yaml": access},
        clock=clock,
    )
    page = await client.get("/login")
    csrf = re.search(r'name="csrf" value="(\w+)"', await page.text())
    assert csrf
    login = await client.post(
        "/login",
        data={"csrf": csrf.group(1), "username": "alice@example.com", "password": "alice-password"},
        allow_redirects=False,
    )
    secret = await enrol_after_login(client, login, clock)
    app_cookie = cookie(client, "legacy_session")
    assert app_cookie is not None
    me = await client.get("/api/me", allow_redirects=False)
    assert me.status == 200 and (await me.json())["user"] == "alice@example.com"
    clock.advance(BOUND)
    asked = await client.get("/api/me", allow_redirects=False)
    assert asked.status == 303
    assert asked.headers["Location"] == "/.gateway/challenge?rd=%2Fapi%2Fme"
    assert "legacy_session" not in asked.headers.get("Set-Cookie", "")
    assert cookie(client, "legacy_session") == app_cookie
    # meanwhile another tab (or the page's own requests) reaches the application: it waits for
    # the code too, and the application's cookie is neither passed on nor cleared
    for method in ("GET", "POST"):
        other = await client.request(method, "/", allow_redirects=False)
        assert other.status in (303, 401), await other.text()
        assert "legacy_session" not in other.headers.get("Set-Cookie", "")
        if method == "GET":
            assert other.headers["Location"] == "/.gateway/challenge?rd=%2F"
    assert cookie(client, "legacy_session") == app_cookie
    done = await answer_challenge(client, asked.headers["Location"], secret, clock)
    assert done.status == 303 and done.headers["Location"] == "/api/me"
    assert cookie(client, "legacy_session") == app_cookie
    again = await client.get("/api/me", allow_redirects=False)
    assert again.status == 200 and (await again.json())["user"] == "alice@example.com"
    home = await client.get("/", allow_redirects=False)
    assert "Welcome, alice@example.com" in await home.text()


# -- forward auth ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "style"), [("/.gateway/verify", "traefik"), ("/.gateway/auth-request", "nginx")]
)
async def test_forward_auth_steps_up_on_a_gateway_page(
    make_gateway: Any, tmp_path: Path, endpoint: str, style: str
) -> None:
    """The verify endpoints answer a stale session on a step-up path as they answer one that
    needs a gateway page: to /.gateway/continue, which steps the session down (it can set the
    new cookie there) and sends on to the challenge, then back. A POST is refused (403)."""
    clock = FixedClock(time.time())
    users = write_users_file(tmp_path)
    app = {
        "mode": "forward_auth",
        "hosts": ["app.test"],
        "identity": "portal",
        "portal": {"users_file": str(users)},
    }
    gateway: Client = await make_gateway(
        {"app": app}, POLICIES, clock=clock, trusted_proxies=["127.0.0.1/32"]
    )
    async with Browser(str(gateway.make_url(""))) as b:
        enrol = await b.sign_in("%2Fadmin%2Fx")
        html = await b.page(enrol)
        secret = secret_from_page(html)
        code = code_for(secret, clock())
        await b.post(enrol, {"csrf_token": csrf_from_page(html), "code": code})

        def sent_to(answer: Any) -> str:
            if endpoint == "/.gateway/verify":
                assert answer.status == 303
                return str(answer.headers["Location"])
            assert answer.status == 401
            return str(answer.headers["X-Gateway-Location"])

        clock.advance(BOUND - 1)
        assert (await b.verify("/admin/x", style=style, endpoint=endpoint)).status == 200
        clock.advance(1)
        assert (await b.verify("/reports", style=style, endpoint=endpoint)).status == 200
        stale = await b.verify("/admin/x?q=1", style=style, endpoint=endpoint)
        location = sent_to(stale)
        assert location == "/.gateway/continue?rd=%2Fadmin%2Fx%3Fq%3D1"
        assert "Set-Cookie" not in stale.headers
        posted = await b.verify("/admin/x", method="POST", style=style, endpoint=endpoint)
        assert posted.status == 403
        challenge = await b.go(location)
        assert challenge == "/.gateway/challenge?rd=%2Fadmin%2Fx%3Fq%3D1"
        html = await b.page(challenge)
        code = code_for(secret, clock())
        assert await b.post(challenge, {"csrf_token": csrf_from_page(html), "code": code}) == (
            "/admin/x?q=1"
        )
        again = await b.verify("/admin/x?q=1", style=style, endpoint=endpoint)
        assert again.status == 200 and again.headers["Remote-User"] == USER
