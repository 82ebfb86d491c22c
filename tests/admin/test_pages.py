"""The admin pages, driven over HTTP against a real gateway (SQLite store, fixed clock): who gets
in, what an admin sees, and each action with its audit event."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from gateway import regulation
from gateway.clock import FixedClock
from tests.admin import openapi
from tests.admin.helpers import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    NOW,
    Client,
    answer_challenge,
    audit_events,
    browser,
    capture_audit,
    csrf,
    gateway,
    password,
    runtime,
    seen,
    sign_in,
)
from tests.support import csrf_from_page

MEMBERS = "/.gateway/admin/acme/"
CAROL_PAGE = f"{MEMBERS}members/{CAROL}"


async def test_not_signed_in_is_sent_to_sign_in(client: Client) -> None:
    """Without a session the admin pages send the browser to the sign-in page, and back."""
    answer = await client.get(MEMBERS, allow_redirects=False)
    assert answer.status == 303
    assert answer.headers["Location"] == "/.gateway/login?rd=%2F.gateway%2Fadmin%2Facme%2F"


async def test_a_member_who_is_not_an_admin_gets_403(client: Client, clock: FixedClock) -> None:
    """Carol is a verified member of Acme but not its admin: every admin page is refused."""
    await sign_in(client, CAROL, clock)
    for path in ("/.gateway/admin/", MEMBERS, f"{MEMBERS}members.csv", CAROL_PAGE):
        answer = await client.get(path, allow_redirects=False)
        assert answer.status == 403, path
        assert "for your company&#39;s administrators" in await answer.text()


async def test_an_admin_sees_only_their_own_company(client: Client, clock: FixedClock) -> None:
    """Alice's table lists Acme's members (seen or listed), never Globex's; another company's
    pages are refused, and another company's member is not found under hers."""
    async with browser(client) as bob:
        await sign_in(bob, BOB, clock)
    await sign_in(client, CAROL, clock)
    client.session.cookie_jar.clear()
    assert await sign_in(client, ALICE, clock, rd="/.gateway/admin/") == "/.gateway/admin/"
    index = await client.get("/.gateway/admin/", allow_redirects=False)
    assert index.headers["Location"] == MEMBERS
    page = await (await client.get(MEMBERS)).text()
    for user in (ALICE, CAROL, DAVE):
        assert f">{user}</a>" in page
    assert BOB not in page and "3 members" in page
    assert (await client.get("/.gateway/admin/globex/")).status == 403
    assert (await client.get(f"{MEMBERS}members/{BOB}")).status == 404
    assert (await client.get(f"{MEMBERS}members/nobody@acme.example")).status == 404


async def test_reset_ends_the_members_sessions_and_they_enrol_again(
    client: Client, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Alice resets Carol: Carol's factors are gone, her signed-in browser is signed out, her
    next sign-in goes to enrolment; the reset is audited and Carol is shown as not set up."""
    capture_audit(caplog)
    async with browser(client) as carol:
        await sign_in(carol, CAROL, clock)
        assert await (await carol.get("/")).text() == f"hello {CAROL}"
        await sign_in(client, ALICE, clock)
        token = await csrf(client, CAROL_PAGE)
        done = await client.post(
            f"{CAROL_PAGE}/reset",
            data={"csrf_token": token, "confirm": "yes"},
            allow_redirects=False,
        )
        assert done.status == 303 and done.headers["Location"] == f"{CAROL_PAGE}?done=reset"
        assert "was reset" in await (await client.get(done.headers["Location"])).text()
        assert await runtime(client).store.list_methods(CAROL) == []
        signed_out = await carol.get("/", allow_redirects=False)
        assert signed_out.status == 303
        assert signed_out.headers["Location"].startswith("/.gateway/login")
        assert (await password(carol, CAROL)).startswith("/.gateway/enrol")
    [event] = audit_events(caplog, "admin_reset")
    assert event["admin"] == ALICE and event["member"] == CAROL and event["company"] == "acme"
    assert event["methods"] == ["totp"] and event["sessions_ended"] >= 1
    assert event["ip"] == "127.0.0.1" and event["request_id"]


async def test_actions_need_a_second_factor_from_the_last_15_minutes(
    client: Client, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    """After 15 minutes the member page and a posted action go to re-authentication; a fresh
    code there brings Alice back to the page, and the action then works."""
    capture_audit(caplog)
    await seen(client, CAROL, clock)
    await sign_in(client, ALICE, clock)
    token = await csrf(client, CAROL_PAGE)
    clock.advance(15 * 60)
    assert (await client.get(MEMBERS)).status == 200  # looking needs no fresh code
    page = await client.get(CAROL_PAGE, allow_redirects=False)
    assert page.status == 303
    assert page.headers["Location"] == "/.gateway/admin/reauth?rd=" + CAROL_PAGE.replace(
        "/", "%2F"
    ).replace("@", "%40")
    posted = await client.post(
        f"{CAROL_PAGE}/reset", data={"csrf_token": token, "confirm": "yes"}, allow_redirects=False
    )
    assert posted.status == 303 and posted.headers["Location"] == page.headers["Location"]
    assert await runtime(client).store.list_methods(CAROL) == ["totp"]
    assert not audit_events(caplog, "admin_reset")
    reauth = page.headers["Location"]
    stepped = await client.post(
        reauth, data={"csrf_token": await csrf(client, reauth)}, allow_redirects=False
    )
    assert stepped.status == 303
    assert await answer_challenge(client, stepped.headers["Location"], clock) == CAROL_PAGE
    token = await csrf(client, CAROL_PAGE)
    done = await client.post(
        f"{CAROL_PAGE}/reset", data={"csrf_token": token, "confirm": "yes"}, allow_redirects=False
    )
    assert done.headers["Location"].endswith("?done=reset")
    assert len(audit_events(caplog, "admin_reset")) == 1


async def test_reset_needs_the_csrf_token(client: Client, clock: FixedClock) -> None:
    """A reset posted without the page's token is refused and changes nothing."""
    await sign_in(client, ALICE, clock)
    refused = await client.post(f"{CAROL_PAGE}/reset", data={}, allow_redirects=False)
    assert refused.status == 400
    assert await runtime(client).store.list_methods(CAROL) == ["totp"]


async def test_enforcement_is_confirmed_and_cannot_be_turned_off(
    client: Client, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    """ "Enable 2FA for all users" needs the box ticked; then the store enforces Acme (not
    Globex), the page says it cannot be turned off and offers no way to, and it is audited."""
    capture_audit(caplog)
    await sign_in(client, ALICE, clock)
    enforce = f"{MEMBERS}enforce"
    assert "Enable 2FA for all users" in await (await client.get(MEMBERS)).text()
    token = await csrf(client, enforce)
    unconfirmed = await client.post(enforce, data={"csrf_token": token}, allow_redirects=False)
    assert unconfirmed.status == 400
    assert await runtime(client).store.enforced_since("acme") is None
    done = await client.post(
        enforce, data={"csrf_token": token, "confirm": "yes"}, allow_redirects=False
    )
    assert done.status == 303 and done.headers["Location"] == f"{MEMBERS}?done=enforced"
    assert await runtime(client).store.enforced_since("acme") == clock.now
    assert await runtime(client).store.enforced_since("globex") is None
    page = await (await client.get(MEMBERS)).text()
    assert (
        "This cannot be turned off." in page and 'href="/.gateway/admin/acme/enforce"' not in page
    )
    again = await client.post(
        enforce, data={"csrf_token": token, "confirm": "yes"}, allow_redirects=False
    )
    assert again.status == 303
    [first, second] = audit_events(caplog, "admin_enforce")
    assert first["new"] is True and second["new"] is False
    assert first["admin"] == ALICE and first["company"] == "acme" and first["request_id"]
    assert len(audit_events(caplog, "enforcement_on")) == 1


async def test_name_and_phone_changes(
    client: Client, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A new name is shown at once; a bad number is refused; a good one is kept pending (not
    used for codes) and flagged; both are audited."""
    capture_audit(caplog)
    await seen(client, CAROL, clock)
    await sign_in(client, ALICE, clock)
    token = await csrf(client, CAROL_PAGE)
    bad = await client.post(
        f"{CAROL_PAGE}/profile", data={"csrf_token": token, "name": "Carol", "phone": "12"}
    )
    assert bad.status == 400 and 'role="alert"' in await bad.text()
    assert not audit_events(caplog, "admin_name_changed")
    done = await client.post(
        f"{CAROL_PAGE}/profile",
        data={"csrf_token": token, "name": "  Carol   Danvers ", "phone": "+44 7400 123456"},
        allow_redirects=False,
    )
    assert done.headers["Location"] == f"{CAROL_PAGE}?done=phone"
    page = await (await client.get(MEMBERS, params={"status": "phone_pending"})).text()
    assert "Carol Danvers" in page and "1 member found" in page
    record = await runtime(client).store.get_user(CAROL)
    assert record is not None and record.facts["name"] == "Carol Danvers"
    assert "+447400123456" not in str(record.facts)  # encrypted at rest
    assert await runtime(client).store.get_enrolment(CAROL, "sms") is None
    [name] = audit_events(caplog, "admin_name_changed")
    [phone] = audit_events(caplog, "admin_phone_changed")
    assert name["member"] == CAROL and name["name"] == "Carol Danvers"
    assert phone["member"] == CAROL and phone["ending"] == "3456" and phone["admin"] == ALICE


async def test_search_filter_and_csv(client: Client, clock: FixedClock) -> None:
    """Search by address, filter by status, and the CSV holds the rows the page shows."""
    await sign_in(client, ALICE, clock)
    found = await (await client.get(MEMBERS, params={"q": "DAVE"})).text()
    assert f">{DAVE}</a>" in found and f">{ALICE}</a>" not in found
    unenrolled = await (await client.get(MEMBERS, params={"status": "not_enrolled"})).text()
    assert f">{DAVE}</a>" in unenrolled and f">{ALICE}</a>" not in unenrolled
    assert (await client.get(MEMBERS, params={"status": "nonsense"})).status == 400
    exported = await client.get(f"{MEMBERS}members.csv", params={"status": "enrolled"})
    assert exported.headers["Content-Type"] == "text/csv; charset=utf-8"
    lines = (await exported.text()).splitlines()
    assert lines[0].startswith("user,name,status,methods,last_2fa,last_2fa_from")
    assert [line.split(",")[0] for line in lines[1:]] == [ALICE]
    assert ",enrolled,totp,2027-01-15T08:" in lines[1] and ",127.0.0.1," in lines[1]


async def test_a_reset_needs_its_box_ticked(client: Client, clock: FixedClock) -> None:
    """One click does not wipe a member's factors (issue 17, finding 4): without the box ticked
    the page comes back with the error tied to the box, and nothing changed."""
    await seen(client, CAROL, clock)
    await sign_in(client, ALICE, clock)
    token = await csrf(client, CAROL_PAGE)
    refused = await client.post(
        f"{CAROL_PAGE}/reset", data={"csrf_token": token}, allow_redirects=False
    )
    assert refused.status == 400
    html = await refused.text()
    assert "Tick the box to confirm the reset" in html
    assert 'href="#confirm-reset"' in html and 'aria-invalid="true"' in html
    assert await runtime(client).store.list_methods(CAROL) == ["totp"]


async def test_an_admin_resetting_themselves_is_warned_and_sent_to_start_again(
    client: Client, clock: FixedClock
) -> None:
    """Their own page says what a reset of their own account does; done, they go to the start
    (to sign in and set up again), not to an "Access denied" page."""
    await sign_in(client, ALICE, clock)
    own = f"{MEMBERS}members/{ALICE}"
    page = await (await client.get(own)).text()
    assert "This is your own account." in page
    assert "Yes, remove every way I have set up" in page
    done = await client.post(
        f"{own}/reset",
        data={"csrf_token": await csrf(client, own), "confirm": "yes"},
        allow_redirects=False,
    )
    assert done.status == 303 and done.headers["Location"] == "/"
    assert await runtime(client).store.list_methods(ALICE) == []
    carol = await (await client.get(CAROL_PAGE, allow_redirects=False)).text()
    assert "This is your own account." not in carol


async def test_methods_are_named_in_words(client: Client, clock: FixedClock) -> None:
    """The member list and page say "authenticator app", not the policy's "totp" (issue 17,
    finding 10)."""
    await seen(client, CAROL, clock)
    await sign_in(client, ALICE, clock)
    for path in (MEMBERS, CAROL_PAGE):
        html = await (await client.get(path)).text()
        assert "et up: authenticator app" in html, path
        assert "totp" not in html, path


async def _wrong_password(client: Client, user: str, address: str) -> None:
    """A wrong password for `user` typed at the gateway's login form from `address`."""
    headers = {"X-Forwarded-For": address}
    page = await client.get("/.gateway/login", params={"rd": "/"}, headers=headers)
    answer = await client.post(
        "/.gateway/login",
        params={"rd": "/"},
        data={"csrf_token": csrf_from_page(await page.text()), "username": user, "password": "no"},
        headers=headers,
        allow_redirects=False,
    )
    assert answer.status in (401, 429), await answer.text()


def _locked_out(html: str) -> str:
    """The member page's "Locked out" entry, as text."""
    start = html.index("<dt>Locked out</dt>")
    entry = html[start : html.index("</dd>", start)]
    return " ".join(re.sub(r"<[^>]+>", " ", entry).split()).removeprefix("Locked out ")


@pytest.fixture
async def behind_proxy(
    make_gateway: Any, tmp_path: Path, server: TestServer, clock: FixedClock
) -> Client:
    """The admin tests' gateway, trusting the test client as a proxy: X-Forwarded-For names
    each request's address."""
    return await gateway(make_gateway, tmp_path, server, clock, trusted_proxies=["127.0.0.1/32"])


async def test_a_lockout_from_one_address_is_shown_with_its_address(
    behind_proxy: Client, clock: FixedClock
) -> None:
    """Carol locked out from one address after ten wrong passwords there (issue 17, finding
    10): her page says from where and for how much longer, not "no"; the JSON API lists the
    same lockout. Dave, with no wrong answers, is not locked out."""
    client = behind_proxy
    await seen(client, CAROL, clock)
    for _ in range(10):  # each after the growing delay of the one before
        await _wrong_password(client, CAROL, "203.0.113.7")
        clock.advance(61)
    await sign_in(client, ALICE, clock)  # 670 s on: the lockout ends 900 s after the first, at 30 s
    page = await (await client.get(CAROL_PAGE)).text()
    assert _locked_out(page) == (
        "From 203.0.113.7, for another 5 minutes (until 15 January 2027, 08:15 UTC). "
        "A lockout ends by itself at the time shown, after too many wrong passwords or codes."
    )
    dave = await (await client.get(f"{MEMBERS}members/{DAVE}")).text()
    assert _locked_out(dave) == "no"
    member = await (await client.get(f"/.gateway/admin/api/companies/acme/members/{CAROL}")).json()
    openapi.check("/companies/{company}/members/{user}", "GET", 200, member)
    assert member["locked_out_until"] is None  # not everywhere
    assert member["lockouts"] == [
        {"scope": "user_ip", "address": "203.0.113.7", "until": "2027-01-15T08:15:30Z"}
    ]


async def test_a_lockout_everywhere_is_shown_apart_from_each_address(
    behind_proxy: Client, clock: FixedClock
) -> None:
    """Thirty wrong passwords for Carol from three addresses reach the user-wide limit: her page
    says she is locked out everywhere (and which browsers are spared), then each address."""
    client = behind_proxy
    await seen(client, CAROL, clock)
    addresses = ("198.51.100.1", "198.51.100.2", "2001:db8:1:2::5")
    for _ in range(10):
        for address in addresses:
            await _wrong_password(client, CAROL, address)
        clock.advance(61)
    await sign_in(client, ALICE, clock)
    lines = _locked_out(await (await client.get(CAROL_PAGE)).text())
    assert lines.startswith(
        "Everywhere, for another 5 minutes (until 15 January 2027, 08:15 UTC): too many wrong answers "
        "for this login from anywhere. Browsers where they entered the right password in the "
        "last 30 days are not held to it. "
        "From 198.51.100.1, for another 5 minutes (until 15 January 2027, 08:15 UTC). "
        "From 198.51.100.2, for another 5 minutes (until 15 January 2027, 08:15 UTC). "
        "From 2001:db8:1:2::/64, for another 5 minutes (until 15 January 2027, 08:15 UTC). "
    ), lines
    member = await (await client.get(f"/.gateway/admin/api/companies/acme/members/{CAROL}")).json()
    openapi.check("/companies/{company}/members/{user}", "GET", 200, member)
    assert member["locked_out_until"] == "2027-01-15T08:15:30Z"
    assert [lock["scope"] for lock in member["lockouts"]] == ["user", *["user_ip"] * 3]
    listed = await (await client.get(MEMBERS, params={"status": "locked_out"})).text()
    assert f">{CAROL}</a>" in listed


async def test_an_address_locked_for_everyone_and_a_browser_of_their_own(
    client: Client, clock: FixedClock
) -> None:
    """The other scopes of regulation, as the store holds them: an address locked for anyone
    (too many wrong answers from it for any login), one the gateway could not tell, and one of
    the member's own browsers, each said in words."""
    await seen(client, CAROL, clock)
    store = runtime(client).store
    counted_as = regulation.user_key(CAROL)
    places = regulation.places_key(counted_as)
    at = NOW + 60
    for key in (f"user_ip:{counted_as}|192.0.2.9", f"user_ip:{counted_as}|unknown"):
        await store.note_failure_key(places, key, at)
    await store.note_failure_key(places, f"user_browser:{counted_as}|b0", at)
    for _ in range(50):
        await store.record_failure("ip:192.0.2.9", at)
    for _ in range(10):
        await store.record_failure(f"user_ip:{counted_as}|unknown", at)
    for _ in range(30):
        await store.record_failure(f"user_browser:{counted_as}|b0", at)
    clock.advance(300)
    await sign_in(client, ALICE, clock)
    assert _locked_out(await (await client.get(CAROL_PAGE)).text()).startswith(
        "From 192.0.2.9, for another 10 minutes (until 15 January 2027, 08:16 UTC): that address is "
        "locked for everyone, after too many wrong answers from it. "
        "From an unknown address (a trusted proxy did not say which), for another 10 minutes "
        "(until 15 January 2027, 08:16 UTC). "
        "In one of their own browsers, for another 10 minutes (until 15 January 2027, 08:16 UTC): too "
        "many wrong answers in that browser. "
    )
