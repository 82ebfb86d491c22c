"""A real Caddy, configured from the Caddyfile in docs/forward-auth.md (only addresses and ports
changed), in front of a real upstream, asking a real gateway process (portal identity)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from tests.forward_auth.conftest import (
    DOCS,
    FRONT_HOST,
    USER,
    free_port,
    front_browser,
    get,
    page_form,
    post,
    received,
    require,
    sign_in,
    stop,
    substitute,
    wait_port,
)
from tests.support import GatewayProcess, code_for, csrf_from_page, secret_from_page

CADDYFILE = re.compile(r"```caddyfile\n(.*?)```", re.DOTALL)
GLOBAL = "{\n\tadmin off\n\tauto_https off\n\tdefault_bind 127.0.0.1\n}\n"


@pytest.fixture
def caddy(
    tmp_path: Path, echo_upstream: TestServer, shipped_gateway: GatewayProcess
) -> Iterator[str]:
    """Caddy in the foreground with the documented Caddyfile; yields its URL."""
    [documented] = CADDYFILE.findall(DOCS.read_text())
    port = free_port()
    text = substitute(documented, {f"{FRONT_HOST} {{": f"http://{FRONT_HOST}:{port} {{"})
    text = substitute(text, {"127.0.0.1:9091": f"127.0.0.1:{shipped_gateway.port}"}, times=2)
    text = substitute(text, {"127.0.0.1:8000": f"127.0.0.1:{echo_upstream.port}"})
    home = tmp_path / "caddy"
    home.mkdir()
    (home / "Caddyfile").write_text(GLOBAL + text)
    log = home / "caddy.log"
    env = dict(os.environ, HOME=str(home), XDG_DATA_HOME=str(home), XDG_CONFIG_HOME=str(home))
    command = [require("caddy"), "run", "--config", str(home / "Caddyfile")]
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "--adapter", "caddyfile"], stdout=output, stderr=subprocess.STDOUT, env=env
        )
    try:
        wait_port(port, process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


async def test_sign_in_through_caddy(caddy: str) -> None:
    """Anonymous -> the gateway's sign-in page (Caddy passes the 303 on); password and TOTP
    enrolment through Caddy -> the upstream gets the gateway's Remote-* headers, never the
    client's; a bypass path needs no sign-in and carries no identity; tricks get nowhere."""
    async with front_browser(caddy) as session:
        first = await get(session, "/reports?x=1")
        assert first.status == 303
        assert first.headers["Location"] == "/.gateway/login?rd=%2Freports%3Fx%3D1"
        tricks = {
            "/public/%2e%2e/admin": "/admin",
            "/admin/%2e%2e/public/x": "/public/x",
        }
        for trick, plain in tricks.items():  # only the plain form is judged: sent there first
            answer = await get(session, trick)
            assert answer.status == 303 and answer.headers["Location"] == plain, trick
        assert (await get(session, "/.gateway/verify")).status == 404
        forged = await get(session, "/admin", headers={"X-Original-URI": "/public/x"})
        assert forged.status == 400  # two descriptions that disagree: refused, not guessed

        enrol = await sign_in(session, "%2Freports%3Fx%3D1")
        html = await page_form(session, enrol)
        data = {"csrf_token": csrf_from_page(html), "code": code_for(secret_from_page(html))}
        await post(session, enrol, data)

        spoofed = {
            "Remote-User": "admin",
            "remote-groups": "root",
            "Remote-Name": "Admin",
            # PHP reads "_" and "." as "-" too (HTTP_REMOTE_USER behind php_fastcgi)
            "Remote_User": "admin",
            "remote.groups": "root",
            "REMOTE_NAME": "Admin",
        }
        session.cookie_jar.update_cookies({"app_pref": "dark"})
        async with session.get("/reports?x=1", headers=spoofed) as answer:
            assert answer.status == 200
            seen = await answer.json()
        assert seen["path_qs"] == "/reports?x=1"
        forged = [(k, v) for k, v in seen["headers"] if v in ("admin", "root", "Admin")]
        assert forged == []
        assert received(seen, "Remote-User") == [USER]
        assert received(seen, "Remote-Groups") == ["billing,admins"]
        assert received(seen, "Remote-Name") == ["Carol Example"]
        # the application's own cookies go through; the gateway's session id does not
        assert received(seen, "Cookie") == ["app_pref=dark"]

        html = await page_form(session, "/.gateway/logout")
        await post(session, "/.gateway/logout", {"csrf_token": csrf_from_page(html)})
        assert (await get(session, "/reports")).status == 303

    async with front_browser(caddy) as anonymous:
        headers = {"Remote-User": "admin"}
        async with anonymous.get("/public/logo.png", headers=headers) as answer:
            assert answer.status == 200
            seen = await answer.json()
        assert seen["path_qs"] == "/public/logo.png"
        assert [value for value in received(seen, "Remote-User") if value] == []
