"""A real nginx, configured from the shipped deploy/nginx/gateway.conf (only addresses and ports
changed), in front of a real upstream, asking a real gateway process (portal identity)."""

from __future__ import annotations

import aiohttp
import pytest

from tests.forward_auth.conftest import (
    FRONT_HOST,
    USER,
    Nginx,
    front_browser,
    get,
    page_form,
    post,
    received,
    sign_in,
)
from tests.support import GatewayProcess, code_for, csrf_from_page, secret_from_page


async def test_sign_in_enrol_challenge_and_logout_through_nginx(
    stack: tuple[Nginx, GatewayProcess],
) -> None:
    """Anonymous -> sign-in page; password and TOTP enrolment through nginx -> the upstream gets
    the request with the gateway's Remote-* headers and never the client's; logout ends it;
    signing in again asks for the code; a bypass path needs no sign-in at all."""
    nginx, _gateway = stack
    async with front_browser(nginx.url) as session:
        first = await get(session, "/reports?x=1")
        assert first.status == 303
        assert first.headers["Location"] == "/.gateway/login?rd=%2Freports%3Fx%3D1"
        assert "no-store" in first.headers["Cache-Control"]

        enrol = await sign_in(session, "%2Freports%3Fx%3D1")
        assert enrol.startswith("/.gateway/enrol?")
        html = await page_form(session, enrol)
        secret = secret_from_page(html)
        done = await post(
            session, enrol, {"csrf_token": csrf_from_page(html), "code": code_for(secret)}
        )
        assert done.startswith("/.gateway/recovery") or done == "/reports?x=1"

        spoofed = {"Remote-User": "admin", "remote-groups": "root", "Remote_User": "admin"}
        session.cookie_jar.update_cookies({"app_pref": "dark"})
        async with session.get("/reports?x=1", headers=spoofed) as answer:
            assert answer.status == 200
            seen = await answer.json()
        assert seen["path_qs"] == "/reports?x=1"
        assert received(seen, "Remote-User") == [USER]
        assert received(seen, "Remote-Email") == [USER]
        assert received(seen, "Remote-Name") == ["Carol Example"]
        assert received(seen, "Remote-Groups") == ["billing,admins"]
        assert received(seen, "Remote_User") == []
        assert "admin" not in [value for _, value in seen["headers"]]
        # the application's own cookies go through; the gateway's session id does not
        assert received(seen, "Cookie") == ["app_pref=dark"]

        # Logout, through nginx to the gateway's page: the session is over on the server.
        html = await page_form(session, "/.gateway/logout")
        await post(session, "/.gateway/logout", {"csrf_token": csrf_from_page(html)})
        again = await get(session, "/reports")
        assert again.status == 303 and again.headers["Location"].startswith("/.gateway/login")

        # Signing in again: the enrolled factor is asked for.
        challenge = await sign_in(session, "%2Freports")
        assert challenge.startswith("/.gateway/challenge?")
        html = await page_form(session, challenge)
        code = code_for(secret, offset_steps=1)  # the enrolment's time step is used up
        back = await post(session, challenge, {"csrf_token": csrf_from_page(html), "code": code})
        assert back == "/reports"
        async with session.get("/reports") as answer:
            assert answer.status == 200
            assert received(await answer.json(), "Remote-User") == [USER]

    async with front_browser(nginx.url) as anonymous:
        public = await get(anonymous, "/public/logo.png", headers={"Remote-User": "admin"})
        assert public.status == 200
        async with anonymous.get("/public/logo.png", headers={"Remote-User": "admin"}) as answer:
            seen = await answer.json()
        assert seen["path_qs"] == "/public/logo.png" and received(seen, "Remote-User") == []


async def test_tricks_through_nginx_never_reach_the_upstream(
    stack: tuple[Nginx, GatewayProcess],
) -> None:
    """Path tricks against the bypass rule, forged descriptions of the request, the internal
    endpoints and deny rules: none of them gets an anonymous browser to the application."""
    nginx, gateway = stack
    async with front_browser(nginx.url) as session:
        # nginx forwards the raw path: only its plain form is judged, so the browser is sent
        # there first, and there it must sign in. (The client library resolves plain dot
        # segments itself; test_verify.py covers those.)
        tricks = {
            "/public/%2e%2e/admin": "/admin",
            "/public/%2E%2E/admin/": "/admin/",
            "/admin/%2e%2e/public/x": "/public/x",
        }
        for path, plain in tricks.items():
            answer = await get(session, path)
            assert answer.status in (302, 303), path
            assert answer.headers["Location"].endswith(plain), path
        assert (
            (await get(session, "/admin"))
            .headers["Location"]
            .startswith("/.gateway/login?rd=%2Fadmin")
        )

        forged = {
            "X-Original-URI": "/public/x",
            "X-Forwarded-Uri": "/public/x",
            "X-Forwarded-Method": "GET",
            "X-Forwarded-Host": "elsewhere.example",
        }
        answer = await get(session, "/admin", headers=forged)
        assert answer.status == 303 and answer.headers["Location"] == "/.gateway/login?rd=%2Fadmin"

        for internal in ("/.gateway/auth-request", "/.gateway/verify"):
            answer = await get(session, internal, headers=forged)
            assert answer.status == 404, internal

        assert (await get(session, "/internal/report")).status == 403

        # A Host naming no server block gets no answer, rather than another application's rules.
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await get(session, "/admin", headers={"Host": "elsewhere.example"})

        # A browser's cookies may be large; the verdict echoing them must still fit.
        big = {"Cookie": "app_pref=" + "x" * 7000}
        assert (await get(session, "/public/logo.png", headers=big)).status == 200

    # The gateway itself, asked directly for the application: a 404 page, nothing forwarded.
    async with (
        aiohttp.ClientSession(headers={"Host": FRONT_HOST}) as direct,
        direct.get(f"{gateway.url}/reports", allow_redirects=False) as answer,
    ):
        assert answer.status == 404
        assert "proxy in front of the gateway" in await answer.text()
