"""Company policy in Chromium: "Remind me in 48 hours" for a company that does not enforce 2FA,
and the trusted-network cookie of a partner, behind a proxy whose X-Forwarded-For the test sets.

    browser ──► forwarding proxy (sets X-Forwarded-For) ──► `gateway run` ──► legacy application
                 (thread in this process)                    (subprocess)      (thread)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict
from playwright.sync_api import BrowserContext, Page, expect
from yarl import URL

from gateway.demo.legacy import create_legacy_app
from tests.e2e.flow import (
    CHALLENGE_URL,
    ENROL_URL,
    app_sign_in,
    axe_report,
    cookies,
    enrol,
    enrolment_secret,
    enter_code,
    expect_application_home,
    expect_code_refused,
    wrong_code,
)
from tests.support import GatewayProcess, free_port, intercept_app, settings_dict

pytestmark = pytest.mark.browser

ALICE = ("alice@acme.example", "acme-demo-1")  # Acme enforces 2FA, trusts 10.0.0.0/8
BOB = ("bob@globex.example", "globex-demo-1")  # Globex does not enforce 2FA yet
INSIDE, OUTSIDE = "10.1.2.3", "203.0.113.5"
REMIND = "Remind me in 48 hours"
POLICIES = {
    "acme.yaml": """
company: Acme Corporation
members:
  domains: [acme.example]
account_type: partner
enforce_2fa: true
trusted_networks:
  networks: [10.0.0.0/8]
  reprompt_after: 21d
branding:
  name: Acme
  colour: "#8c1f1f"
""",
    "globex.yaml": """
company: Globex
members:
  domains: [globex.example]
account_type: partner
enforce_2fa: false
deferral: 48h
branding:
  name: Globex
  colour: "#1f4e8c"
""",
}
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "x-forwarded-for",
    }
)
TIMEOUT = 10.0
T = TypeVar("T")


class Background:
    """An event loop in a daemon thread, serving aiohttp applications for one test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runners: list[web.AppRunner] = []

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(TIMEOUT)

    async def _serve(self, app: web.Application, port: int) -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self.runners.append(runner)

    def serve(self, app: web.Application) -> str:
        port = free_port()
        self.call(self._serve(app, port))
        return f"http://127.0.0.1:{port}"

    async def _cleanup(self) -> None:
        for runner in reversed(self.runners):
            await runner.cleanup()

    def close(self) -> None:
        try:
            self.call(self._cleanup())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(TIMEOUT)
            self.loop.close()


class ForwardingProxy:
    """The load balancer in front of the gateway: every request goes on with
    X-Forwarded-For set to `address`, which the test changes to move the browser."""

    def __init__(self, upstream: str, address: str) -> None:
        self.upstream = upstream
        self.address = address
        self.client: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.cleanup_ctx.append(self._client_ctx)
        app.router.add_route("*", "/{tail:.*}", self.forward)
        return app

    async def _client_ctx(self, app: web.Application) -> AsyncIterator[None]:
        self.client = aiohttp.ClientSession(
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=TIMEOUT),
        )
        yield
        await self.client.close()

    async def forward(self, request: web.Request) -> web.Response:
        assert self.client is not None
        headers = CIMultiDict(
            (name, value)
            for name, value in request.headers.items()
            if name.lower() not in HOP_BY_HOP
        )
        headers["X-Forwarded-For"] = self.address
        async with self.client.request(
            request.method,
            URL(self.upstream + request.raw_path, encoded=True),
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
        ) as answer:
            body = await answer.read()
            kept = CIMultiDict(
                (name, value)
                for name, value in answer.headers.items()
                if name.lower() not in HOP_BY_HOP
            )
            return web.Response(status=answer.status, headers=kept, body=body)


@dataclass
class Deployment:
    url: str  # what the browser opens: the forwarding proxy
    proxy: ForwardingProxy
    gateway: GatewayProcess


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    """The legacy application, `gateway run` in front of it trusting 127.0.0.1 as its proxy,
    and the forwarding proxy in front of that, starting from inside Acme's network."""
    background = Background()
    try:
        legacy = background.serve(create_legacy_app(dict([ALICE, BOB])))
        settings = settings_dict(
            tmp_path / "run",
            {"legacy": intercept_app(legacy)},
            POLICIES,
            trusted_proxies=["127.0.0.1/32"],
        )
        gateway = GatewayProcess.run(tmp_path, settings)
        try:
            proxy = ForwardingProxy(gateway.url, INSIDE)
            yield Deployment(background.serve(proxy.app()), proxy, gateway)
        finally:
            gateway.stop()
    finally:
        background.close()


def sign_out(page: Page, base: str) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(base + "/login")


def test_remind_me_later_lets_a_member_in_and_the_next_sign_in_goes_straight_through(
    deployment: Deployment, page: Page
) -> None:
    """A Globex member presses "Remind me in 48 hours" on the enrolment page, reaches the
    application, and after signing out and in again goes straight to it."""
    base, (user, password) = deployment.url, BOB
    app_sign_in(page, base, user, password)
    expect(page).to_have_url(ENROL_URL)
    expect(page.get_by_role("heading", name="Not now?")).to_be_visible()
    with page.expect_navigation():
        page.get_by_role("button", name=REMIND).click()
    expect_application_home(page, base, user)

    sign_out(page, base)
    app_sign_in(page, base, user, password)
    expect_application_home(page, base, user)


def test_trusted_network_spares_the_challenge_only_from_inside(
    deployment: Deployment, context: BrowserContext, page: Page
) -> None:
    """An Acme partner who enrols from 10.1.2.3 signs in again from there without a code, and
    gets the challenge once the proxy says the browser is at 203.0.113.5."""
    base, (user, password) = deployment.url, ALICE
    app_sign_in(page, base, user, password)
    expect(page).to_have_url(ENROL_URL)
    expect(page.get_by_role("button", name=REMIND)).to_have_count(0)
    enrol(page)
    expect_application_home(page, base, user)
    trusted = cookies(context)["gateway_trust"]
    assert trusted["httpOnly"] is True and trusted["sameSite"] == "Lax"

    sign_out(page, base)
    assert "gateway_trust" in cookies(context), "signing out must not forget the trusted network"
    app_sign_in(page, base, user, password)
    expect_application_home(page, base, user)

    deployment.proxy.address = OUTSIDE
    sign_out(page, base)
    app_sign_in(page, base, user, password)
    expect(page).to_have_url(CHALLENGE_URL)
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    expect(page.locator("header .brand")).to_have_text("Acme")


def test_enrolment_page_with_the_deferral_passes_axe(deployment: Deployment, page: Page) -> None:
    """The enrolment page with its "Remind me in 48 hours" section, with and without a wrong-code
    error, has no axe-core violations."""
    app_sign_in(page, deployment.url, *BOB)
    expect(page).to_have_url(ENROL_URL)
    expect(page.get_by_role("button", name=REMIND)).to_be_visible()
    reports = {"enrol with deferral": axe_report(page)}
    enter_code(page, wrong_code(enrolment_secret(page)), "Confirm and continue")
    expect_code_refused(page, "That code is not right")
    expect(page.get_by_role("button", name=REMIND)).to_be_visible()
    reports["enrol with deferral, wrong code"] = axe_report(page)
    failed = {name: report for name, report in reports.items() if report}
    assert not failed, "axe-core violations:\n\n" + "\n\n".join(
        f"== {name}: {report}" for name, report in failed.items()
    )
