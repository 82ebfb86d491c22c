"""The forward-auth endpoints in-process, driven as a front proxy would: who may ask, every
answer (allow with identity, sign-in, enrol, challenge, deny, bypass, store down, malformed),
path tricks against bypass rules, and both Traefik/Caddy-style and nginx-style headers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway import trust
from gateway.handlers.entry.forward_auth import IDENTITY_HEADERS
from gateway.keys import RUNTIME
from tests.forward_auth.conftest import (
    ACCESS,
    COMPANY,
    TRUSTED,
    USER,
    Browser,
    forward_auth_app,
    forwarded,
)
from tests.support import code_for, csrf_from_page

ENDPOINTS = [("/.gateway/verify", "traefik"), ("/.gateway/auth-request", "nginx")]


def browser(client: TestClient[Any, Any], client_ip: str = "10.1.2.3") -> Browser:
    return Browser(str(client.make_url("")), client_ip=client_ip)


def sent_to(answer: Any, endpoint: str) -> str | None:
    """Where the front proxy sends the browser: Location (verify) or X-Gateway-Location (nginx)."""
    if endpoint == "/.gateway/verify":
        assert answer.status == 303, answer.status
        return str(answer.headers["Location"])
    assert answer.status == 401, answer.status
    assert "Location" not in answer.headers
    return str(answer.headers["X-Gateway-Location"])


@pytest.mark.parametrize(("endpoint", "style"), ENDPOINTS)
async def test_only_trusted_proxies_are_answered(
    make_gateway: Any, users_file: Path, endpoint: str, style: str
) -> None:
    """From a peer not in trusted_proxies both endpoints refuse with 403, whatever it claims,
    even for a bypass path: the gateway does not guess what the request was."""
    client = await make_gateway(
        {"app": forward_auth_app(users_file)},
        {"example.yaml": COMPANY, "applications.yaml": ACCESS},
        trusted_proxies=["192.0.2.0/24"],
    )
    for uri in ("/reports", "/public/logo.png"):
        answer = await client.get(endpoint, headers=forwarded(uri, style=style))
        assert answer.status == 403
        assert "only the proxy in front" in await answer.text()
        assert "Remote-User" not in answer.headers


@pytest.mark.parametrize(("endpoint", "style"), ENDPOINTS)
async def test_anonymous_is_sent_to_sign_in_with_the_way_back(
    gateway: TestClient[Any, Any], endpoint: str, style: str
) -> None:
    """No session: the sign-in page with the original path and query as a relative rd; after a
    POST the way back is "/" (its body is gone). Nothing is vouched for."""
    async with browser(gateway) as b:
        answer = await b.verify("/reports?x=1&y=%2F", endpoint=endpoint, style=style)
        assert sent_to(answer, endpoint) == "/.gateway/login?rd=%2Freports%3Fx%3D1%26y%3D%252F"
        assert "no-store" in answer.headers["Cache-Control"]
        assert "Remote-User" not in answer.headers
        posted = await b.verify("/reports", method="POST", endpoint=endpoint, style=style)
        assert sent_to(posted, endpoint) == "/.gateway/login?rd=%2F"


@pytest.mark.parametrize(("endpoint", "style"), ENDPOINTS)
async def test_enrol_then_allow_with_identity_then_challenge(
    gateway: TestClient[Any, Any], endpoint: str, style: str
) -> None:
    """Password done: enrol (2FA enforced). Enrolled: 200 with the Remote-* headers proxy mode
    sends upstream, whatever Remote-User the client sent. After logout and a new password: the
    challenge; after the code: allowed again."""
    async with browser(gateway) as b:
        enrol = await b.sign_in("%2Freports")
        assert enrol.startswith("/.gateway/enrol?")
        pending = await b.verify("/reports", endpoint=endpoint, style=style)
        assert sent_to(pending, endpoint) == "/.gateway/enrol?rd=%2Freports"
        secret, _next = await b.enrol(enrol)

        allowed = await b.verify(
            "/reports", endpoint=endpoint, style=style, extra={"Remote-User": "admin"}
        )
        assert allowed.status == 200
        assert allowed.headers["Remote-User"] == USER
        assert allowed.headers["Remote-Email"] == USER
        assert allowed.headers["Remote-Name"] == "Carol Example"
        assert allowed.headers["Remote-Groups"] == "billing,admins"
        assert "Set-Cookie" not in allowed.headers

        html = await b.page("/.gateway/logout")
        await b.post("/.gateway/logout", {"csrf_token": csrf_from_page(html)})
        gone = await b.verify("/reports", endpoint=endpoint, style=style)
        assert sent_to(gone, endpoint).startswith("/.gateway/login?")

        await b.sign_in("%2Freports")
        challenge = await b.verify("/reports", endpoint=endpoint, style=style)
        location = sent_to(challenge, endpoint)
        assert location == "/.gateway/challenge?rd=%2Freports"
        html = await b.page(location)
        code = code_for(secret, offset_steps=1)  # the enrolment used this time step
        assert await b.post(location, {"csrf_token": csrf_from_page(html), "code": code}) == (
            "/reports"
        )
        again = await b.verify("/reports", endpoint=endpoint, style=style)
        assert again.status == 200 and again.headers["Remote-User"] == USER


async def test_one_factor_path_allows_after_the_password(gateway: TestClient[Any, Any]) -> None:
    """A one_factor rule: the password alone is enough, and the identity goes with it."""
    async with browser(gateway) as b:
        await b.sign_in()
        light = await b.verify("/light/page")
        assert light.status == 200 and light.headers["Remote-User"] == USER
        heavy = await b.verify("/reports")
        assert heavy.status == 303


@pytest.mark.parametrize(("endpoint", "style"), ENDPOINTS)
async def test_deny_and_bypass_rules(
    gateway: TestClient[Any, Any], endpoint: str, style: str
) -> None:
    """deny -> 403 (by path, and by the original method, not the verify request's GET);
    bypass -> 200 with every identity header empty (so a proxy copying them replaces the
    client's own), even for a signed-in browser."""
    async with browser(gateway) as b:
        assert (await b.verify("/internal/x", endpoint=endpoint, style=style)).status == 403
        deleting = await b.verify("/admin/users", "DELETE", endpoint=endpoint, style=style)
        assert deleting.status == 403
        reading = await b.verify("/admin/users", "GET", endpoint=endpoint, style=style)
        assert sent_to(reading, endpoint).startswith("/.gateway/login?")
        public = await b.verify("/public/logo.png", endpoint=endpoint, style=style)
        assert public.status == 200
        assert all(public.headers[name] == "" for name in IDENTITY_HEADERS)

        await b.enrol(await b.sign_in())
        signed_in = await b.verify("/public/logo.png", endpoint=endpoint, style=style)
        assert signed_in.status == 200 and signed_in.headers["Remote-User"] == ""
        assert (await b.verify("/internal/x", endpoint=endpoint, style=style)).status == 403


@pytest.mark.parametrize(
    "uri",
    [
        "/public/../admin",
        "/public/%2e%2e/admin",
        "/public/%2E%2E/admin",
        "/public/./../admin",
        "/public/..%2F..%2Fadmin",
        "/public%2f../admin",
    ],
)
async def test_path_tricks_never_ride_a_bypass_rule(
    gateway: TestClient[Any, Any], uri: str
) -> None:
    """The front proxy forwards the raw path, so only a path in its plain form is judged: dot
    segments (plain or encoded) send the browser to the plain form first, an encoded "/" is
    refused; either way never a 200 for an anonymous browser."""
    async with browser(gateway) as b:
        answer = await b.verify(uri)
        if "%2f" in uri.lower():
            assert answer.status == 400
        else:
            assert answer.status == 303
            assert answer.headers["Location"] == "/admin"
            again = await b.verify(answer.headers["Location"])
            assert again.status == 303
            assert again.headers["Location"] == "/.gateway/login?rd=%2Fadmin"


@pytest.mark.parametrize(
    "uri", ["/admin/../public/x", "/admin/%2e%2e/public/x", "/admin//../public/x", "/%70ublic/x"]
)
async def test_only_the_plain_form_of_a_path_is_judged(
    gateway: TestClient[Any, Any], uri: str
) -> None:
    """The application routes the raw path its proxy forwards: "/admin/%2e%2e/public/x" may
    well reach its admin handler. Judging it as /public/x (a bypass) would let an anonymous
    browser in; it is sent to /public/x itself instead, and a POST is refused."""
    async with browser(gateway) as b:
        answer = await b.verify(uri)
        assert answer.status == 303 and answer.headers["Location"] == "/public/x"
        posted = await b.verify(uri, method="POST")
        assert posted.status == 400


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({"X-Forwarded-Method": "GET", "X-Forwarded-Host": "app.test"}, "no X-Forwarded-Uri"),
        ({"X-Forwarded-Uri": "/public/x", "X-Forwarded-Host": "app.test"}, "no method"),
        (forwarded("http://evil.example/public/x"), "absolute URI"),
        (forwarded("public/x"), "relative URI"),
        (forwarded("/public/x y"), "a space"),
        (forwarded("/public/\u00e9"), "not ASCII"),
        (forwarded("/public/a%00b"), "encoded NUL"),
        (forwarded("/public/a%5cb"), "encoded backslash"),
        (forwarded("/public/%ff"), "not UTF-8"),
        (forwarded("/public/x", method="G ET"), "bad method"),
        (forwarded("/public/x", host="app.test, evil.example"), "two hosts"),
        ({**forwarded("/public/x"), "X-Original-URI": "/admin"}, "the two URIs disagree"),
        ({**forwarded("/public/x"), "X-Original-Method": "POST"}, "the two methods disagree"),
        ({**forwarded("/public/x"), "X-Forwarded-Proto": "gopher"}, "bad proto"),
    ],
)
async def test_malformed_descriptions_are_400(
    gateway: TestClient[Any, Any], headers: dict[str, str], why: str
) -> None:
    """Whatever the gateway cannot read for sure is a 400 page, never an allow (the URIs point
    at a bypass path, so a guess would have been a 200)."""
    answer = await gateway.get("/.gateway/verify", headers=headers, allow_redirects=False)
    assert answer.status == 400, why
    assert "did not describe the request clearly" in await answer.text()


async def test_agreeing_descriptions_are_fine(gateway: TestClient[Any, Any]) -> None:
    """A proxy that sends both families (or a client copy equal to the proxy's) is not refused."""
    headers = {**forwarded("/public/x"), **forwarded("/public/x", style="nginx")}
    answer = await gateway.get("/.gateway/verify", headers=headers, allow_redirects=False)
    assert answer.status == 200


async def test_store_down_fails_closed_but_bypass_works(gateway: TestClient[Any, Any]) -> None:
    """Store gone: a request with a session cookie gets 503 (never 200); bypass stays 200."""
    await gateway.app[RUNTIME].store.close()
    for endpoint, style in ENDPOINTS:
        answer = await gateway.get(
            endpoint,
            headers={**forwarded("/reports", style=style), "Cookie": "gateway_session=abc"},
            allow_redirects=False,
        )
        assert answer.status == 503
        assert "cannot reach its session store" in await answer.text()
        public = await gateway.get(endpoint, headers=forwarded("/public/logo.png", style=style))
        assert public.status == 200


async def test_application_chosen_by_the_original_host(
    make_gateway: Any, users_file: Path, echo_upstream: Any
) -> None:
    """The original host picks the application, not the Host of the verify request: a proxied
    application is not answered for (403), an unknown host is 421, the gateway's own pages are
    not verified (404), and the forward-auth application is never proxied (404 page)."""
    client = await make_gateway(
        {
            "app": forward_auth_app(users_file),
            "other": {
                "upstream": str(echo_upstream.make_url("")),
                "hosts": ["other.test"],
                "identity": "portal",
                "portal": {"users_file": str(users_file)},
            },
        },
        {"example.yaml": COMPANY, "applications.yaml": ACCESS},
        trusted_proxies=TRUSTED,
    )
    headers = {"Host": "gateway.internal:9091"}
    fine = await client.get("/.gateway/verify", headers={**headers, **forwarded("/public/x")})
    assert fine.status == 200
    proxied = await client.get(
        "/.gateway/verify", headers={**headers, **forwarded("/x", host="other.test")}
    )
    assert proxied.status == 403
    assert "not in forward_auth mode" in await proxied.text()
    unknown = await client.get(
        "/.gateway/verify", headers={**headers, **forwarded("/x", host="nowhere.test")}
    )
    assert unknown.status == 421
    own = await client.get("/.gateway/verify", headers=forwarded("/.gateway/login"))
    assert own.status == 404

    direct = await client.get("/reports", headers={"Host": "app.test"}, allow_redirects=False)
    assert direct.status == 404
    assert "proxy in front of the gateway" in await direct.text()
    proxied_app = await client.get("/public/x", headers={"Host": "other.test"})
    assert proxied_app.status == 200  # the proxied application is still proxied


TRUSTING = """
company: Example
members:
  domains: [example.com]
account_type: partner
enforce_2fa: {enforce}
deferral: 48h
trusted_networks:
  networks: [10.0.0.0/8]
"""


async def test_trusted_network_skip_completes_on_a_gateway_page(
    make_gateway: Any, users_file: Path
) -> None:
    """A pending session with a valid trusted-network cookie, from inside the network: the
    verify answer cannot set cookies, so it sends the browser to /.gateway/continue, which makes
    the session verified (cookie set there) and sends it back; then it is allowed."""
    client = await make_gateway(
        {"app": forward_auth_app(users_file)},
        {"example.yaml": TRUSTING.format(enforce="true")},
        trusted_proxies=TRUSTED,
    )
    async with browser(client) as first, browser(client) as second:
        await first.enrol(await first.sign_in())
        cookie = first.session.cookie_jar.filter_cookies(client.make_url("/"))[trust.COOKIE]
        challenge = await second.sign_in("%2Freports")
        assert challenge.startswith("/.gateway/challenge?")
        assert (await second.verify("/reports")).status == 303  # no trusted cookie yet

        second.session.cookie_jar.update_cookies({trust.COOKIE: cookie.value}, client.make_url("/"))
        for endpoint, style in ENDPOINTS:
            skip = await second.verify("/reports?a=1", endpoint=endpoint, style=style)
            assert sent_to(skip, endpoint) == "/.gateway/continue?rd=%2Freports%3Fa%3D1"
            assert "Set-Cookie" not in skip.headers
        assert await second.go("/.gateway/continue?rd=%2Freports%3Fa%3D1") == "/reports?a=1"
        allowed = await second.verify("/reports")
        assert allowed.status == 200 and allowed.headers["Remote-User"] == USER

    async with browser(client, client_ip="192.0.2.7") as outside:
        await outside.sign_in()
        outside.session.cookie_jar.update_cookies(
            {trust.COOKIE: cookie.value}, client.make_url("/")
        )
        answer = await outside.verify("/reports")  # the cookie is worth nothing from outside
        assert answer.headers["Location"] == "/.gateway/challenge?rd=%2Freports"


async def test_deferral_completes_on_a_gateway_page(make_gateway: Any, users_file: Path) -> None:
    """A deferral made in one browser: another browser's pending session is sent to
    /.gateway/continue, which completes it with the deferral, then it is allowed."""
    client = await make_gateway(
        {"app": forward_auth_app(users_file)},
        {"example.yaml": TRUSTING.format(enforce="false")},
        trusted_proxies=TRUSTED,
    )
    async with browser(client) as first, browser(client) as second:
        assert (await second.sign_in()).startswith("/.gateway/enrol?")
        assert (await second.verify("/reports")).headers["Location"].startswith("/.gateway/enrol?")
        enrol = await first.sign_in()
        html = await first.page(enrol)
        await first.post("/.gateway/defer?rd=%2F", {"csrf_token": csrf_from_page(html)})
        assert (await first.verify("/reports")).status == 200

        later = await second.verify("/reports")
        assert later.headers["Location"] == "/.gateway/continue?rd=%2Freports"
        assert await second.go(later.headers["Location"]) == "/reports"
        allowed = await second.verify("/reports")
        assert allowed.status == 200 and allowed.headers["Remote-User"] == USER


async def test_continue_page_is_harmless(gateway: TestClient[Any, Any]) -> None:
    """/.gateway/continue only sends a browser on: to sign in when it has no session, to "/"
    for a target that is not a relative path."""
    async with browser(gateway) as b:
        assert await b.go("/.gateway/continue?rd=%2Freports") == "/.gateway/login?rd=%2Freports"
        assert await b.go("/.gateway/continue?rd=//evil.example/") == "/.gateway/login?rd=%2F"
        assert await b.go("/.gateway/continue?rd=%2Fpublic%2Fx") == "/public/x"
        await b.page("/.gateway/continue?rd=%2Finternal%2Fx", status=403)


SSO_HEADER = "X-SSO-User"


async def test_header_identity_through_forward_auth(make_gateway: Any) -> None:
    """Header identity: the single sign-on in front names the user. A new name is sent to
    /.gateway/continue, where the session (and its cookie) is made; then enrolment; without the
    header the request is refused."""
    client = await make_gateway(
        {
            "app": {
                "mode": "forward_auth",
                "hosts": ["app.test"],
                "identity": "header",
                "header": {"user_header": SSO_HEADER},
            }
        },
        {"example.yaml": COMPANY},
        trusted_proxies=TRUSTED,
    )
    async with browser(client) as b:
        b.session.headers[SSO_HEADER] = "Dave@Example.com"
        first = await b.verify("/reports")
        assert first.headers["Location"] == "/.gateway/continue?rd=%2Freports"
        assert "Set-Cookie" not in first.headers
        enrol = await b.go(first.headers["Location"])
        assert enrol == "/.gateway/enrol?rd=%2Freports"
        assert (await b.verify("/reports")).headers["Location"] == enrol
        await b.enrol(enrol)
        allowed = await b.verify("/reports")
        assert allowed.status == 200 and allowed.headers["Remote-User"] == "dave@example.com"

        b.session.headers[SSO_HEADER] = "erin@example.com"  # someone else in this browser
        switched = await b.verify("/reports")
        assert switched.headers["Location"] == "/.gateway/continue?rd=%2Freports"

        del b.session.headers[SSO_HEADER]
        nobody = await b.verify("/reports")
        assert nobody.status == 403


async def test_verdicts_are_counted_like_proxied_requests(gateway: TestClient[Any, Any]) -> None:
    """Forward-auth verdicts appear in gateway_requests_total by application and decision."""
    from tests.observability.conftest import scrape, value

    async with browser(gateway) as b:
        await b.verify("/internal/x")
        await b.verify("/public/logo.png")
        await b.verify("/admin/users")
    samples = await scrape(gateway, **{"X-Forwarded-For": "127.0.0.1"})  # via the proxy
    for decision in ("deny", "bypass", "login"):
        assert value(samples, "gateway_requests_total", application="app", decision=decision) == 1
