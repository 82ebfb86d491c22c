"""Waiting pages a person can act on (issue 17, finding 6): a wait said in their terms ("in 4
seconds", "in 15 minutes"), not only a time in UTC, and a page that moves on by itself when the
wait is over, without JavaScript (a meta refresh to the page to try again from)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from gateway.clock import FixedClock
from tests.support import csrf_from_page

SSO = "X-SSO-User"
USER = "carol@acme.example"
ACME = "company: Acme\nmembers:\n  domains: [acme.example]\nenforce_2fa: true\n"
REFRESH = re.compile(r'<meta http-equiv="refresh" content="(\d+);url=([^"]+)">')


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(time.time())


@pytest.fixture
async def client(make_gateway: Any, upstream_url: str, clock: FixedClock) -> Any:
    app = {"upstream": upstream_url, "hosts": ["*"], "identity": "header"}
    app["header"] = {"user_header": SSO}
    return await make_gateway(
        {"app": app}, {"acme.yaml": ACME}, trusted_proxies=["127.0.0.1/32"], clock=clock
    )


async def wrong_answer(client: Any) -> Any:
    """A new pending sign-in if there is none, then a wrong code on the enrolment page."""
    await client.get("/", headers={SSO: USER}, allow_redirects=False)
    form = await client.get("/.gateway/enrol", headers={SSO: USER})
    token = csrf_from_page(await form.text())
    return await client.post(
        "/.gateway/enrol",
        data={"csrf_token": token, "code": "000000"},
        headers={SSO: USER},
        allow_redirects=False,
    )


async def test_a_delay_says_how_long_and_moves_on_by_itself(client: Any) -> None:
    statuses = [(await wrong_answer(client)).status for _ in range(5)]
    assert statuses[-1] == 429  # five wrong answers end the sign-in
    delayed = await wrong_answer(client)
    assert delayed.status == 429
    html = await delayed.text()
    assert re.search(r"Try again in \d+ seconds?\.", html), html
    refresh = REFRESH.search(html)
    assert refresh is not None, html
    assert int(refresh.group(1)) == int(delayed.headers["Retry-After"])
    assert refresh.group(2).startswith("/.gateway/enrol")


async def test_a_lockout_says_how_long_in_minutes(client: Any, clock: FixedClock) -> None:
    answer = None
    for _ in range(40):  # wrong answers, each after its delay, until the lockout
        answer = await wrong_answer(client)
        html = await answer.text()
        if "Too many wrong answers" in html:
            break
        clock.advance(int(answer.headers.get("Retry-After", "0")) + 1)
    assert answer is not None and "Too many wrong answers" in html, html
    assert re.search(r"Try again in \d+ minutes \(at \d\d:\d\d UTC\), then sign in again", html)
    assert REFRESH.search(html) is not None


async def test_a_sign_in_step_without_a_sign_in_asks_to_sign_in_again(client: Any) -> None:
    """An expired (or never started) sign-in is not titled "Access denied" (issue 17,
    finding 6): the page says to sign in again."""
    page = await client.get("/.gateway/challenge")
    assert page.status == 403
    html = await page.text()
    assert "<h1>Please sign in again</h1>" in html and "Access denied" not in html
    assert "Your sign-in has expired or was not started." in html
