"""nginx's auth cache (deploy/nginx/gateway.conf): the gateway lets the front proxy keep an
allow only when the proxy asks (X-Gateway-Auth-Cache), only from a store read made for it, and
for X-Accel-Expires: 1 (nginx keeps it less than 2 seconds, the gateway's recheck bound). A
real nginx from the shipped file keeps verdicts, and a sign-out, a reset and a new deny rule
still stop a request within that bound."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from multidict import CIMultiDict

from gateway.cli import main
from gateway.handlers.entry.forward_auth import AUTH_CACHE_HEADER, AUTH_CACHE_SECONDS
from gateway.keys import RUNTIME
from gateway.sessions import RECHECK_AFTER, SessionManager
from tests.forward_auth.conftest import (
    COMPANY,
    TRUSTED,
    USER,
    Browser,
    Nginx,
    front_browser,
    get,
    page_form,
    post,
    sign_in,
)
from tests.support import GatewayProcess, code_for, csrf_from_page, secret_from_page

ASK = {AUTH_CACHE_HEADER: "1"}
ONE_FACTOR = "applications:\n  app:\n    - paths: ['/**']\n      access: one_factor\n"
# nginx keeps an answer stored at t until the end of second floor(t) + N: less than N + 1 s
BOUND = AUTH_CACHE_SECONDS + 1


def test_a_kept_verdict_never_outlives_the_gateways_own_recheck() -> None:
    assert BOUND <= RECHECK_AFTER


async def enrolled(b: Browser) -> None:
    await b.enrol(await b.sign_in("%2Freports"))


async def test_only_an_allow_asked_for_by_the_cache_may_be_kept(
    gateway: TestClient[Any, Any], users_file: Path
) -> None:
    """X-Accel-Expires on a 200 when the proxy asks; never without asking, never on the sign-in
    answer (401), a deny (403) or a bypass the proxy did not ask about."""
    async with Browser(str(gateway.make_url(""))) as b:
        anonymous = await b.verify("/reports", endpoint="/.gateway/auth-request", extra=ASK)
        assert anonymous.status == 401 and "X-Accel-Expires" not in anonymous.headers
        await enrolled(b)
        asked = await b.verify("/reports", endpoint="/.gateway/auth-request", extra=ASK)
        assert asked.status == 200 and asked.headers["Remote-User"] == USER
        assert asked.headers["X-Accel-Expires"] == str(AUTH_CACHE_SECONDS)
        plain = await b.verify("/reports", endpoint="/.gateway/auth-request")
        assert plain.status == 200 and "X-Accel-Expires" not in plain.headers
        denied = await b.verify("/internal/x", endpoint="/.gateway/auth-request", extra=ASK)
        assert denied.status == 403 and "X-Accel-Expires" not in denied.headers
        public = await b.verify("/public/a.png", endpoint="/.gateway/auth-request", extra=ASK)
        assert public.status == 200 and public.headers["X-Accel-Expires"] == "1"
        other = await b.verify("/public/a.png", endpoint="/.gateway/auth-request")
        assert "X-Accel-Expires" not in other.headers


async def test_a_kept_allow_is_read_from_the_store_not_from_memory(
    gateway: TestClient[Any, Any],
) -> None:
    """The session ended by another instance (another manager on the same store): the memory
    of recent sessions (made to last an hour here) still says yes to a plain verify, but an
    answer the cache would keep is read from the store, so the cache never adds its own delay
    to the memory's."""
    rt = gateway.app[RUNTIME]
    rt.sessions.recheck_after = 3600.0
    async with Browser(str(gateway.make_url(""))) as b:
        await enrolled(b)
        first = await b.verify("/reports", endpoint="/.gateway/auth-request")
        assert first.status == 200  # now in the memory of recent sessions
        sid = next(c.value for c in b.session.cookie_jar if c.key == "gateway_session")
        elsewhere = SessionManager(rt.store, rt.sessions.cipher, rt.sessions.clock)
        session = await elsewhere.load(sid, "app")
        assert session is not None
        await elsewhere.end(session)
        remembered = await b.verify("/reports", endpoint="/.gateway/auth-request")
        assert remembered.status == 200  # the memory's own bound, not this test's subject
        kept = await b.verify("/reports", endpoint="/.gateway/auth-request", extra=ASK)
        assert kept.status == 401 and "X-Accel-Expires" not in kept.headers


@pytest.mark.parametrize(
    "repeated", ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "Authorization"]
)
async def test_a_header_the_key_holds_once_repeated_is_never_kept(
    gateway: TestClient[Any, Any], repeated: str
) -> None:
    """nginx 1.22 keys only the first line of a repeated header: the second could change the
    verdict (an override read last-wins by the application), so such an answer is not kept."""
    async with Browser(str(gateway.make_url(""))) as b:
        await enrolled(b)
        headers = CIMultiDict(ASK)
        headers.add(repeated, "GET")
        headers.add(repeated, "GET")
        answer = await b.verify("/reports", endpoint="/.gateway/auth-request", extra=headers)
        assert answer.status == 200 and "X-Accel-Expires" not in answer.headers


@pytest.mark.parametrize(
    "spelling", ["X_HTTP_Method_Override", "x-http_method", "X_Method-Override", "X.HTTP.Method"]
)
async def test_an_override_spelled_as_the_key_does_not_hold_it_is_never_kept(
    gateway: TestClient[Any, Any], spelling: str
) -> None:
    """PHP and WSGI read "_" as "-" in header names, so X_HTTP_Method_Override is an override
    to them; the shipped key holds only the "-" spellings (nginx passes the others only with
    underscores_in_headers on), so an answer to a request with another is not kept."""
    async with Browser(str(gateway.make_url(""))) as b:
        await enrolled(b)
        headers = CIMultiDict(ASK)
        headers.add(spelling, "GET")
        answer = await b.verify("/reports", endpoint="/.gateway/auth-request", extra=headers)
        assert answer.status == 200 and "X-Accel-Expires" not in answer.headers


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Original-URI", "/reports?q=a|b"),
        ("X-Forwarded-For", "/../../internal/secret|127.0.0.1|"),
        ("Cookie", "app=a|b"),
        ("Authorization", "Bearer a|b"),
        ("X-HTTP-Method-Override", "|GET"),
        ("X-Method-Override", "|"),
    ],
)
async def test_nothing_with_the_keys_separator_in_its_fields_is_kept(
    gateway: TestClient[Any, Any], header: str, value: str
) -> None:
    """The shipped key joins its fields with "|": with one inside a field, two different
    requests could make the same key (a review found a URI ending where another request's
    X-Forwarded-For began), so such an answer is never kept."""
    async with Browser(str(gateway.make_url(""))) as b:
        await enrolled(b)
        extra = {header: value, **ASK}
        if header == "X-Original-URI":
            extra |= {"X-Original-Method": "GET"}
        answer = await b.verify(
            "/reports", endpoint="/.gateway/auth-request", style="nginx", extra=extra
        )
        assert "X-Accel-Expires" not in answer.headers, answer.status


async def test_header_mode_answers_are_never_kept(make_gateway: Any) -> None:
    """The single sign-on's user header is not in the shipped key: nothing is kept."""
    client = await make_gateway(
        {
            "app": {
                "mode": "forward_auth",
                "hosts": ["app.test"],
                "identity": "header",
                "header": {"user_header": "X-SSO-User"},
            }
        },
        {"example.yaml": COMPANY, "applications.yaml": ONE_FACTOR},
        trusted_proxies=TRUSTED,
    )
    async with Browser(str(client.make_url(""))) as b:
        b.session.headers["X-SSO-User"] = "dave@example.com"
        await b.go((await b.verify("/reports")).headers["Location"])
        answer = await b.verify("/reports", endpoint="/.gateway/auth-request", extra=ASK)
        assert answer.status == 200 and answer.headers["Remote-User"] == "dave@example.com"
        assert "X-Accel-Expires" not in answer.headers


# --- a real nginx from the shipped file ---------------------------------------------------


DECIDED = re.compile(r'gateway_requests_total\{application="app",decision="([a-z_]+)"\} ([0-9.]+)')


async def verdicts(gateway: GatewayProcess) -> float:
    """How many requests the gateway has judged (every decision), from its metrics."""
    # from the trusted proxy's address, for a client on the gateway's own host
    local = {"X-Forwarded-For": "127.0.0.1"}
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"{gateway.url}/.gateway/metrics", headers=local) as answer,
    ):
        assert answer.status == 200, await answer.text()
        text = await answer.text()
    return sum(float(count) for _, count in DECIDED.findall(text))


async def signed_in(session: aiohttp.ClientSession) -> str:
    """Password and TOTP enrolment through nginx; the browser's Cookie header afterwards."""
    enrol = await sign_in(session, "%2Freports")
    html = await page_form(session, enrol)
    data = {"csrf_token": csrf_from_page(html), "code": code_for(secret_from_page(html))}
    await post(session, enrol, data)
    return "; ".join(f"{c.key}={c.value}" for c in session.cookie_jar)


async def test_nginx_keeps_verdicts_and_a_sign_out_stops_them_within_the_bound(
    stack: tuple[Nginx, GatewayProcess],
) -> None:
    """Twenty requests of one browser cost the gateway fewer than twenty verdicts. Another
    client holding the same cookie (a thief) is refused once the bound has passed after the
    owner signs out."""
    nginx, gateway = stack
    async with front_browser(nginx.url) as owner:
        cookie = await signed_in(owner)
        before = await verdicts(gateway)
        for _ in range(20):
            assert (await get(owner, "/reports")).status == 200
        assert await verdicts(gateway) - before < 20
        html = await page_form(owner, "/.gateway/logout")
        await post(owner, "/.gateway/logout", {"csrf_token": csrf_from_page(html)})
    await asyncio.sleep(BOUND)  # real time: nginx's clock, nothing fixed here
    async with front_browser(nginx.url) as thief:
        answer = await get(thief, "/reports", headers={"Cookie": cookie})
        assert answer.status == 303 and answer.headers["Location"].startswith("/.gateway/login")


async def raw_get(port: int, target: str, headers: dict[str, str]) -> tuple[int, str]:
    """A request as written, to nginx: a "|" in its target goes as it is."""
    lines = [f"GET {target} HTTP/1.1", "Host: app.example.com", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    data = await reader.read()
    writer.close()
    head, _, body = data.decode("latin-1").partition("\r\n\r\n")
    return int(head.split(" ", 2)[1]), body


async def test_a_field_cannot_end_where_anothers_begins(
    stack: tuple[Nginx, GatewayProcess],
) -> None:
    """The review's attack through the real nginx: a bypass path asked with an X-Forwarded-For
    holding the rest of a second request's URI, then that URI (a dot-segment walk to a denied
    path that an application resolving "/../" would serve). The second request must be judged
    itself (sent to its plain form), never answered with the first's kept allow."""
    nginx, _gateway = stack
    first = await raw_get(
        nginx.port, "/public/x", {"X-Forwarded-For": "/../../internal/secret|127.0.0.1|"}
    )
    assert first[0] == 200
    status, body = await raw_get(nginx.port, "/public/x|127.0.0.1|/../../internal/secret", {})
    assert status != 200, body


async def test_a_reset_by_the_operator_stops_kept_verdicts_within_the_bound(
    stack: tuple[Nginx, GatewayProcess],
) -> None:
    """`gateway users reset`, another process on the same store: the browser's next request
    after the bound is sent to sign in again."""
    nginx, gateway = stack
    config = gateway.log.with_suffix(".yaml")
    async with front_browser(nginx.url) as browser:
        await signed_in(browser)
        assert (await get(browser, "/reports")).status == 200
        reset = ["users", "reset", USER, "-c", str(config), "--reason", "lost phone", "--yes"]
        assert await asyncio.to_thread(main, reset) == 0
        await asyncio.sleep(BOUND)
        answer = await get(browser, "/reports")
        assert answer.status == 303 and answer.headers["Location"].startswith("/.gateway/login")


async def test_a_new_deny_rule_stops_kept_verdicts_within_the_bound(
    stack: tuple[Nginx, GatewayProcess],
) -> None:
    """A deny rule for /reports reaches the gateway (hot reload); from then, the browser's
    next request after the bound is refused with 403."""
    nginx, gateway = stack
    policies = gateway.log.parent / "policies"
    async with front_browser(nginx.url) as browser:
        await signed_in(browser)
        assert (await get(browser, "/reports")).status == 200
        deny = "applications:\n  app:\n    - paths: [/reports]\n      access: deny\n"
        (policies / "applications.yaml").write_text(deny)
        asked = {
            "X-Original-Method": "GET",
            "X-Original-URI": "/reports",
            "X-Forwarded-Host": "app.example.com",
        }
        async with aiohttp.ClientSession() as direct:
            for _ in range(200):  # the reload is in force once the gateway itself says 403
                async with direct.get(
                    f"{gateway.url}/.gateway/auth-request", headers=asked
                ) as answer:
                    if answer.status == 403:
                        break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the gateway never took the new deny rule")
        await asyncio.sleep(BOUND)
        assert (await get(browser, "/reports")).status == 403
