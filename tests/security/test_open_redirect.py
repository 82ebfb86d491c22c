"""Open redirects through the return parameter (oauth2-proxy CVE-2020-5233, CVE-2020-11053): the
whole corpus of tests.security.corpus against every page that sends the browser on, in every
identity mode and in forward-auth mode, anonymous, half signed in and signed in."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from gateway.clock import FixedClock
from tests.security.conftest import (
    PASSWORD,
    POLICIES,
    SSO_HEADER,
    USER,
    Client,
    reached,
    send,
)
from tests.security.corpus import RAW_REDIRECTS, off_site_reasons, redirect_corpus
from tests.support import code_for, csrf_from_page, gateway_now, intercept_app, secret_from_page

CORPUS = redirect_corpus()
FORM_ACTION = re.compile(r'<form method="post" action="([^"]*)"')
HREF = re.compile(r'href="(/[^"]*)"')


def test_the_corpus_is_large_and_covers_every_family() -> None:
    """At least 200 payloads: encodings, backslashes, control characters, schemes, look-alike
    hosts, userinfo."""
    assert len(CORPUS) >= 200
    joined = "\n".join(CORPUS).lower()
    for needle in ("%5c", "\\", "%09", "%0d%0a", "%00", "https:", "javascript", "@evil", "%252f"):
        assert needle in joined, needle


def problems(location: str) -> list[str]:
    """Off-site readings of a Location and of every `rd` nested in it."""
    found = off_site_reasons(location)
    for rd in parse_qs(urlsplit(location).query).get("rd", []):
        found += [f"rd {reason}" for reason in off_site_reasons(rd)]
    return found


class Findings:
    """Every payload that got out, so one run shows them all."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def location(self, where: str, payload: str, response: Any, statuses: tuple[int, ...]) -> None:
        if response.status not in statuses:
            self.items.append(f"{where} {payload!r}: status {response.status}")
            return
        location = response.headers.get("Location", "")
        for problem in problems(location):
            self.items.append(f"{where} {payload!r} -> {location[:80]!r}: {problem}")

    def page(self, where: str, payload: str, html: str) -> None:
        for link in FORM_ACTION.findall(html) + HREF.findall(html):
            for problem in problems(link.replace("&amp;", "&")):
                self.items.append(f"{where} {payload!r} -> {link[:80]!r}: {problem}")

    def check(self) -> None:
        assert not self.items, "\n".join(self.items[:40])


async def get(client: Client, target: str, **kwargs: Any) -> Any:
    return await client.get(URL(target, encoded=True), allow_redirects=False, **kwargs)


async def post(client: Client, target: str, data: dict[str, str], **kwargs: Any) -> Any:
    return await client.post(URL(target, encoded=True), data=data, allow_redirects=False, **kwargs)


async def test_portal_pages_anonymous(portal: Client, upstream: TestServer) -> None:
    """Login, logout (page and POST), challenge and enrol, before any sign-in."""
    found = Findings()
    token = csrf_from_page(await (await portal.get("/.gateway/login")).text())
    for payload in CORPUS:
        for page in ("login", "logout"):
            response = await get(portal, f"/.gateway/{page}?rd={payload}")
            found.page(page, payload, await response.text())
        for page in ("challenge", "enrol"):
            found.location(
                page, payload, await get(portal, f"/.gateway/{page}?rd={payload}"), (303,)
            )
        out = await post(portal, f"/.gateway/logout?rd={payload}", {"csrf_token": token})
        found.location("logout POST", payload, out, (303,))
    found.check()
    assert reached(upstream) == []


async def test_portal_password_and_pending_pages(portal: Client) -> None:
    """The password posted with each payload, then the pending enrol and challenge pages."""
    found = Findings()
    token = csrf_from_page(await (await portal.get("/.gateway/login")).text())
    for payload in CORPUS[::3]:
        answer = await post(
            portal,
            f"/.gateway/login?rd={payload}",
            {"csrf_token": token, "username": USER, "password": PASSWORD},
        )
        found.location("login POST", payload, answer, (303,))
        enrol = await get(portal, f"/.gateway/enrol?rd={payload}")
        found.page("pending enrol", payload, await enrol.text())
        found.location(
            "pending challenge",
            payload,
            await get(portal, f"/.gateway/challenge?rd={payload}"),
            (303,),
        )
    found.check()


async def enrolled_header_user(header: Client, user: str) -> str:
    """A header-mode user who has just enrolled TOTP; returns the secret. The code is the one
    for the gateway's own clock (a FixedClock here), never the real time."""
    first = await get(header, "/", headers={SSO_HEADER: user})
    assert first.headers["Location"].startswith("/.gateway/enrol")
    html = await (await header.get("/.gateway/enrol", headers={SSO_HEADER: user})).text()
    secret = secret_from_page(html)
    done = await post(
        header,
        "/.gateway/enrol",
        {"csrf_token": csrf_from_page(html), "code": code_for(secret, gateway_now(header))},
        headers={SSO_HEADER: user},
    )
    assert done.status == 303, await done.text()
    return secret


async def test_second_factor_completion(header: Client, clock: FixedClock) -> None:
    """Enrolment and the challenge completed with each payload as `rd` (header mode: a fresh
    first factor costs no password), then every page of a verified session."""
    found = Findings()
    for index, payload in enumerate(CORPUS[::4]):
        user = f"user{index}@example.com"
        await get(header, "/", headers={SSO_HEADER: user})
        html = await (await header.get("/.gateway/enrol", headers={SSO_HEADER: user})).text()
        done = await post(
            header,
            f"/.gateway/enrol?rd={payload}",
            {
                "csrf_token": csrf_from_page(html),
                "code": code_for(secret_from_page(html), clock.now),
            },
            headers={SSO_HEADER: user},
        )
        found.location("enrol POST", payload, done, (303,))
        header.session.cookie_jar.clear()

    secret = await enrolled_header_user(header, USER)
    for payload in CORPUS[1::4]:
        header.session.cookie_jar.clear()  # a new browser: a new first factor, then the challenge
        await get(header, "/", headers={SSO_HEADER: USER})
        page = await header.get("/.gateway/challenge", headers={SSO_HEADER: USER})
        clock.advance(30)  # each code (time step) is accepted once
        done = await post(
            header,
            f"/.gateway/challenge?rd={payload}",
            {"csrf_token": csrf_from_page(await page.text()), "code": code_for(secret, clock.now)},
            headers={SSO_HEADER: USER},
        )
        found.location("challenge POST", payload, done, (303,))

    for payload in CORPUS:  # verified: every page sends straight to rd
        for page in ("login", "challenge", "enrol"):
            answer = await get(header, f"/.gateway/{page}?rd={payload}", headers={SSO_HEADER: USER})
            if page == "login":  # header mode has no login page
                assert answer.status == 404
                continue
            found.location(f"verified {page}", payload, answer, (303,))
    found.check()


async def test_forward_auth_continue_and_return_address(forward_auth: Client) -> None:
    """/.gateway/continue?rd= sends the browser on; verify's sign-in address carries the
    original request's path, built from X-Forwarded-Uri, and the login page it leads to posts
    back to an address on this site."""
    found = Findings()
    host = {"Host": "app.test"}
    for payload in CORPUS:
        answer = await get(forward_auth, f"/.gateway/continue?rd={payload}", headers=host)
        found.location("continue", payload, answer, (303,))
        uri = payload if payload.startswith("/") else "/" + payload
        if any(not 0x21 <= ord(c) <= 0x7E for c in uri):
            continue
        for endpoint in ("/.gateway/verify", "/.gateway/auth-request"):
            answer = await forward_auth.get(
                endpoint,
                headers={
                    "X-Forwarded-Method": "GET",
                    "X-Forwarded-Uri": uri,
                    "X-Forwarded-Host": "app.test",
                },
                allow_redirects=False,
            )
            if answer.status in (400, 403):
                continue
            if answer.status == 401:
                location = answer.headers["X-Gateway-Location"]
            elif answer.status == 303:
                location = answer.headers["Location"]
            else:
                found.items.append(f"{endpoint} {uri!r}: status {answer.status}")
                continue
            if location.startswith("/.gateway/login"):
                login = await get(forward_auth, location, headers=host)
                found.page(endpoint + " then login", uri, await login.text())
            else:  # the plain form of a non-canonical path
                for problem in off_site_reasons(location):
                    found.items.append(f"{endpoint} {uri!r} -> {location!r}: {problem}")
    found.check()


def open_redirecting_app() -> web.Application:
    """An application with an open redirect of its own: its login goes wherever `next` says."""

    async def login(request: web.Request) -> web.Response:
        form = await request.post()
        response = web.Response(status=302, headers={"Location": str(form["next"])})
        response.set_cookie("legacy_session", "signed-in", path="/", httponly=True)
        return response

    app = web.Application()
    app.router.add_post("/login", login)
    return app


async def test_intercept_follows_no_application_redirect_off_site(make_gateway: Any) -> None:
    """Intercept mode sends the browser, after the second factor, where the application's login
    wanted it to go; an application's own open redirect does not become the gateway's."""
    server = TestServer(open_redirecting_app(), host="127.0.0.1")
    await server.start_server()
    try:
        origin = str(server.make_url("")).rstrip("/")
        client = await make_gateway({"app": intercept_app(origin)}, POLICIES)
        found = Findings()
        prefixes = ("", f"http://{client.server.host}:{client.server.port}")
        for payload in CORPUS[::2]:
            for prefix in prefixes:
                if (prefix + payload).startswith("//"):
                    continue  # a 500 today: test_protocol_relative_application_redirect

                client.session.cookie_jar.clear()
                answer = await client.post(
                    "/login",
                    data={"username": USER, "password": "x", "next": prefix + payload},
                    allow_redirects=False,
                )
                found.location("application login", prefix + payload, answer, (303,))
        found.check()
    finally:
        await server.close()


async def test_control_characters_on_the_wire(portal: Client, header: Client) -> None:
    """Bytes a client library would clean (tab, backslash, DEL, ESC, NUL) sent raw in `rd`:
    refused outright or replaced, never echoed into a Location."""
    found = Findings()
    for payload in RAW_REDIRECTS:
        for client, page, extra in (
            (portal, "challenge", []),
            (portal, "logout", []),
            (header, "enrol", [(SSO_HEADER, USER)]),
        ):
            answer = await send(client, f"/.gateway/{page}?rd={payload}", extra)
            if answer.status == 400:
                continue
            for value in answer.get("Location"):
                for problem in problems(value):
                    found.items.append(f"{page} {payload!r} -> {value!r}: {problem}")
            body = answer.body.decode("utf-8", "replace")
            for link in FORM_ACTION.findall(body):
                for problem in problems(link.replace("&amp;", "&")):
                    found.items.append(f"{page} {payload!r} -> {link!r}: {problem}")
    found.check()


async def test_safe_return_addresses_survive(portal: Client) -> None:
    """The check is not "always /": a real path with a query comes back as it went."""
    rd = quote("/reports/2024?x=1&y=%2F", safe="")
    answer = await post(
        portal,
        f"/.gateway/login?rd={rd}",
        {
            "csrf_token": csrf_from_page(await (await portal.get("/.gateway/login")).text()),
            "username": USER,
            "password": PASSWORD,
        },
    )
    assert answer.headers["Location"] == f"/.gateway/enrol?rd={rd}"


async def test_protocol_relative_application_redirect(header: Client, upstream: TestServer) -> None:
    """An application redirecting to "//cdn.example/x" (a protocol-relative Location, common for
    assets and single sign-on) gets its answer through, as it wrote it; not a 500."""
    await enrolled_header_user(header, USER)
    answer = await header.get(
        "/redirect",
        params={"to": "//cdn.example/x"},
        headers={SSO_HEADER: USER},
        allow_redirects=False,
    )
    assert answer.status == 302
    assert answer.headers["Location"] == "//cdn.example/x"


async def test_return_address_names_the_resource_requested(
    portal: Client, forward_auth: Client
) -> None:
    """After signing in, the browser comes back to the very resource it asked for: an escaped
    "?", "#" or "%" in the path, or a non-ASCII one, is not turned into another address (or
    dropped for "/")."""
    for raw in ("/a%3Fb", "/a%23b", "/r%2525", "/caf%C3%A9?x=1"):
        answer = await send(portal, raw)
        assert answer.status == 303
        (location,) = answer.get("Location")
        assert parse_qs(urlsplit(location).query)["rd"] == [raw], (raw, location)
        verdict = await forward_auth.get(
            "/.gateway/verify",
            headers={
                "X-Forwarded-Method": "GET",
                "X-Forwarded-Uri": raw,
                "X-Forwarded-Host": "app.test",
            },
            allow_redirects=False,
        )
        location = verdict.headers["Location"]
        assert parse_qs(urlsplit(location).query)["rd"] == [raw], (raw, location)
