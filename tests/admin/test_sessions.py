"""An admin sees where a member is signed in and ends those sessions (issue 18, part 1): on the
member page and through the JSON API (answers checked against docs/admin-api.yaml), each end
audited, a second factor from the last 15 minutes needed, another company's members never
found."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar

from gateway.clock import FixedClock
from tests.admin.helpers import (
    ALICE,
    BOB,
    CAROL,
    Client,
    audit_events,
    capture_audit,
    csrf,
    seen,
    sign_in,
)
from tests.admin.test_api import MEMBER, admin_token, call

SESSIONS = MEMBER + "/sessions"
END = SESSIONS + "/end"
END_ALL = SESSIONS + "/end-all"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
PAGE = "/.gateway/admin/acme/members/" + CAROL


@asynccontextmanager
async def browser(client: Client, agent: str) -> AsyncIterator[ClientSession]:
    async with ClientSession(
        base_url=str(client.make_url("")),
        cookie_jar=CookieJar(unsafe=True),
        headers={"User-Agent": agent},
    ) as session:
        yield session


async def signed_in(browser: Any) -> bool:
    return (await browser.get("/", allow_redirects=False)).status == 200


async def test_an_admin_lists_and_ends_a_members_sessions_through_the_api(
    client: Client, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    capture_audit(caplog)
    async with browser(client, FIREFOX) as firefox, browser(client, SAFARI) as safari:
        await sign_in(firefox, CAROL, clock)
        await sign_in(safari, CAROL, clock)
        await sign_in(client, ALICE, clock)
        listed = await call(client, "GET", SESSIONS, 200, company="acme", user=CAROL)
        assert listed["member"] == CAROL and listed["count"] == 2
        latest, first = listed["sessions"]
        assert latest["browser"] == "Mobile Safari 17 on iOS 17" and latest["user_agent"] == SAFARI
        assert first["browser"] == "Firefox 133 on Windows 10"
        assert first["address"] == "127.0.0.1" and first["second_factor"] == "totp"
        assert not first["current"] and first["application"] == "app"
        refused = await call(
            client, "POST", END, 403, {"id": first["id"]}, company="acme", user=CAROL
        )
        assert refused["error"] == "csrf_failed" and await signed_in(firefox)
        token = await admin_token(client)
        ended = await call(
            client, "POST", END, 200, {"id": first["id"]}, token=token, company="acme", user=CAROL
        )
        assert ended["ended"]["id"] == first["id"] and ended["sessions_ended"] == 1
        assert not await signed_in(firefox) and await signed_in(safari)
        [event] = audit_events(caplog, "admin_session_ended")
        assert (event["admin"], event["member"], event["company"]) == (ALICE, CAROL, "acme")
        assert event["session"] == first["id"] and event["ip"] == "127.0.0.1"
        gone = await call(
            client, "POST", END, 404, {"id": first["id"]}, token=token, company="acme", user=CAROL
        )
        assert gone["error"] == "not_found"
        every = await call(client, "POST", END_ALL, 200, token=token, company="acme", user=CAROL)
        assert every == {"sessions_ended": 1, "sessions": []}
        assert not await signed_in(safari)
        [event] = audit_events(caplog, "admin_sessions_ended")
        assert event["member"] == CAROL and event["sessions_ended"] == 1
        assert await signed_in(client)  # the admin's own session is untouched


@pytest.mark.parametrize(
    "handle", ["0" * 16, "x" * 300, "é", "0123456789abcdeg", "ABCDEF0123456789"]
)
async def test_no_session_id_makes_a_500(client: Client, clock: FixedClock, handle: str) -> None:
    await seen(client, CAROL, clock)
    await sign_in(client, ALICE, clock)
    token = await admin_token(client)
    answer = await call(
        client, "POST", END, 404, {"id": handle}, token=token, company="acme", user=CAROL
    )
    assert answer["error"] == "not_found"
    assert answer["message"].startswith("The member has no such session")


@pytest.mark.parametrize("body", [{}, {"id": 5}, {"id": None}, {"id": "0" * 16, "more": 1}])
async def test_an_end_without_an_id_is_a_bad_request(
    client: Client, clock: FixedClock, body: dict[str, Any]
) -> None:
    await seen(client, CAROL, clock)
    await sign_in(client, ALICE, clock)
    token = await admin_token(client)
    answer = await call(client, "POST", END, 400, body, token=token, company="acme", user=CAROL)
    assert answer["error"] == "bad_request"


async def test_another_companys_member_is_not_found_and_a_non_admin_is_refused(
    client: Client, clock: FixedClock
) -> None:
    """Alice (Acme) cannot see or end Bob's (Globex) sessions, even with a handle that is one;
    Carol, no admin, cannot list anyone's."""
    async with browser(client, FIREFOX) as bob, browser(client, SAFARI) as carol:
        await sign_in(bob, BOB, clock)
        bobs = await call(bob, "GET", SESSIONS, 200, company="globex", user=BOB)
        await sign_in(client, ALICE, clock)
        token = await admin_token(client)
        await call(client, "GET", SESSIONS, 404, company="acme", user=BOB)
        bobs_id = {"id": bobs["sessions"][0]["id"]}
        await call(client, "POST", END, 404, bobs_id, token=token, company="acme", user=BOB)
        await call(client, "GET", SESSIONS, 403, company="globex", user=BOB)
        assert await signed_in(bob)
        await sign_in(carol, CAROL, clock)
        refused = await call(carol, "GET", SESSIONS, 403, company="acme", user=ALICE)
        assert refused["error"] == "not_admin"


async def test_ending_needs_a_second_factor_from_the_last_15_minutes(
    client: Client, clock: FixedClock
) -> None:
    async with browser(client, FIREFOX) as firefox:
        await sign_in(firefox, CAROL, clock)
        await sign_in(client, ALICE, clock)
        token = await admin_token(client)
        clock.advance(15 * 60)
        listed = await call(client, "GET", SESSIONS, 200, company="acme", user=CAROL)
        handle = listed["sessions"][0]["id"]
        body = await call(
            client, "POST", END, 403, {"id": handle}, token=token, company="acme", user=CAROL
        )
        assert body["error"] == "reauth_required"
        body = await call(client, "POST", END_ALL, 403, token=token, company="acme", user=CAROL)
        assert body["error"] == "reauth_required"
        assert await signed_in(firefox)


HANDLE_RE = re.compile(r'name="session" value="([0-9a-f]+)"')


async def test_the_member_page_lists_and_ends_sessions(
    client: Client, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    capture_audit(caplog)
    async with browser(client, FIREFOX) as firefox, browser(client, SAFARI) as safari:
        await sign_in(firefox, CAROL, clock)
        await sign_in(safari, CAROL, clock)
        await sign_in(client, ALICE, clock)
        html = await (await client.get(PAGE)).text()
        assert "Where they are signed in" in html
        assert "Firefox 133 on Windows 10" in html and "Mobile Safari 17 on iOS 17" in html
        assert "from 127.0.0.1, with authenticator app (to app)" in html
        handles = HANDLE_RE.findall(html)
        assert len(handles) == 2
        token = await csrf(client, PAGE)
        ended = await client.post(
            PAGE + "/sessions/end",
            data={"csrf_token": token, "session": handles[1]},
            allow_redirects=False,
        )
        assert ended.headers["Location"] == PAGE + "?done=session"
        assert not await signed_in(firefox) and await signed_in(safari)
        assert (
            "The session was ended." in await (await client.get(ended.headers["Location"])).text()
        )
        [event] = audit_events(caplog, "admin_session_ended")
        assert event["member"] == CAROL
        again = await client.post(
            PAGE + "/sessions/end",
            data={"csrf_token": token, "session": handles[1]},
            allow_redirects=False,
        )
        assert again.headers["Location"] == PAGE + "?done=session_gone"
        for junk in ("", "é" * 40, "x" * 5000):
            answer = await client.post(
                PAGE + "/sessions/end",
                data={"csrf_token": token, "session": junk},
                allow_redirects=False,
            )
            assert answer.status == 303
        every = await client.post(
            PAGE + "/sessions/end-all", data={"csrf_token": token}, allow_redirects=False
        )
        assert every.headers["Location"] == PAGE + "?done=sessions"
        assert not await signed_in(safari)
        html = await (await client.get(PAGE)).text()
        assert "Not signed in anywhere now." in html
        no_token = await client.post(PAGE + "/sessions/end-all", allow_redirects=False)
        assert no_token.status == 400


async def test_an_admin_ending_their_own_sessions_keeps_this_one(
    client: Client, clock: FixedClock
) -> None:
    own = "/.gateway/admin/acme/members/" + ALICE
    async with browser(client, FIREFOX) as elsewhere:
        await sign_in(elsewhere, ALICE, clock)
        await sign_in(client, ALICE, clock)
        html = await (await client.get(own)).text()
        assert "Where you are signed in" in html and "Your session" in html
        assert len(HANDLE_RE.findall(html)) == 1  # no button for this one
        token = await csrf(client, own)
        every = await client.post(
            own + "/sessions/end-all", data={"csrf_token": token}, allow_redirects=False
        )
        assert every.headers["Location"] == own + "?done=own_sessions"
        assert not await signed_in(elsewhere) and await signed_in(client)
