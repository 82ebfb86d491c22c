"""Step-up per path (issue 18, part 3) through the real nginx and Caddy set-ups the suite runs:
a session let through by a trusted network has no recent second factor, so a step-up path sends
the browser (nginx's 401 and X-Gateway-Location, Caddy's 303) to /.gateway/continue, which steps
the session down and on to the challenge; after the code the path answers. (The gateway runs in
its own process on the real clock; the 15-minute edges are in tests/security/test_step_up.py.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer

from tests.forward_auth.conftest import (
    ACCESS,
    COMPANY,
    NGINX_SETTINGS,
    USER,
    Nginx,
    front_browser,
    get,
    page_form,
    post,
    received,
    sign_in,
)
from tests.forward_auth.test_caddy import caddy  # noqa: F401  (the fixture, with this gateway)
from tests.support import GatewayProcess, code_for, csrf_from_page, secret_from_page, settings_dict

STEP_UP_ACCESS = ACCESS + (
    '    - paths: ["/money/**"]\n      access: two_factor\n      reauthenticate_after: 15m\n'
)
# the front proxies reach the gateway from 127.0.0.1 and say the browser is there too
TRUSTED_COMPANY = COMPANY + "trusted_networks:\n  networks: [127.0.0.0/8]\n"


@pytest.fixture
def shipped_gateway(tmp_path: Path, users_file: Path) -> Iterator[GatewayProcess]:
    """conftest's gateway process (the shipped settings), with a trusted network and a step-up
    rule for /money/**."""
    shipped = yaml.safe_load(NGINX_SETTINGS.read_text())
    applications = shipped["applications"]
    applications["app"]["portal"]["users_file"] = str(users_file)
    settings = settings_dict(
        tmp_path / "gateway",
        applications,
        {"example.yaml": TRUSTED_COMPANY, "applications.yaml": STEP_UP_ACCESS},
        trusted_proxies=shipped["trusted_proxies"],
    )
    gateway = GatewayProcess.run(tmp_path / "gateway", settings)
    yield gateway
    gateway.stop()


async def follow(session: aiohttp.ClientSession, path: str) -> aiohttp.ClientResponse:
    """GET `path`, then every redirect within the site; returns the last answer."""
    for _ in range(5):
        answer = await get(session, path)
        if answer.status not in (302, 303):
            return answer
        path = answer.headers["Location"]
    raise AssertionError("too many redirects")


async def step_up_through(front: str) -> None:
    async with front_browser(front) as session:
        enrol = await sign_in(session, "%2Freports")
        html = await page_form(session, enrol)
        secret = secret_from_page(html)
        await post(session, enrol, {"csrf_token": csrf_from_page(html), "code": code_for(secret)})
        assert any("trust" in morsel.key for morsel in session.cookie_jar)
        # A new sign-in in this browser: the trusted-network cookie stands in for the code.
        session.cookie_jar.clear(lambda morsel: "session" in morsel.key)
        assert (await get(session, "/reports")).headers["Location"].startswith("/.gateway/login")
        next_page = await sign_in(session, "%2Freports")
        assert not next_page.startswith("/.gateway/challenge"), next_page
        reports = await follow(session, next_page)
        assert reports.status == 200

        asked = await get(session, "/money/transfer?to=1")
        assert asked.status in (302, 303)  # nginx turns the gateway's 401 into a redirect
        assert asked.headers["Location"] == "/.gateway/continue?rd=%2Fmoney%2Ftransfer%3Fto%3D1"
        challenge = (await get(session, asked.headers["Location"])).headers["Location"]
        assert challenge == "/.gateway/challenge?rd=%2Fmoney%2Ftransfer%3Fto%3D1"
        html = await page_form(session, challenge)
        code = code_for(secret, offset_steps=1)  # the enrolment's time step is used up
        back = await post(session, challenge, {"csrf_token": csrf_from_page(html), "code": code})
        assert back == "/money/transfer?to=1"
        async with session.get(back, allow_redirects=False) as answer:
            assert answer.status == 200
            seen = await answer.json()
        assert seen["path_qs"] == "/money/transfer?to=1"
        assert received(seen, "Remote-User") == [USER]
        assert (await get(session, "/money/other")).status == 200  # fresh now


async def test_step_up_through_nginx(
    echo_upstream: TestServer,
    shipped_gateway: GatewayProcess,
    nginx_factory: Callable[[int, int], Nginx],
) -> None:
    assert echo_upstream.port is not None
    nginx = nginx_factory(shipped_gateway.port, echo_upstream.port)
    await step_up_through(nginx.url)


async def test_step_up_through_caddy(caddy: str) -> None:  # noqa: F811
    await step_up_through(caddy)
