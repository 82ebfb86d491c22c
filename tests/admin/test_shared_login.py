"""The shared-login warning (the Backupify seed): a login that signs in from several browsers
before enrolling is warned on the enrolment page, and the admin table flags it."""

from __future__ import annotations

from typing import Any

from gateway.admin import SHARED_BROWSERS, SHARED_WINDOW
from gateway.clock import FixedClock
from tests.admin.helpers import (
    ALICE,
    ERIN,
    Client,
    browser,
    password,
    sign_in,
)

WARNING = "Is this login shared?"


async def enrolment_page(other: Any) -> str:
    location = await password(other, ERIN)
    assert location.startswith("/.gateway/enrol"), location
    return await (await other.get(location)).text()


async def test_the_third_browser_before_enrolment_is_warned(
    client: Client, clock: FixedClock
) -> None:
    """Two browsers: no warning. A third within the window: the enrolment page warns that
    enrolling locks the others out, and asks for a login per person."""
    assert SHARED_BROWSERS == 3
    pages = []
    for _ in range(SHARED_BROWSERS):
        async with browser(client) as other:
            pages.append(await enrolment_page(other))
            clock.advance(3600)
    assert all(WARNING not in page for page in pages[:-1])
    assert WARNING in pages[-1]
    assert "lock the others out" in pages[-1] and "their own login" in pages[-1]
    assert "3 different browsers" in pages[-1]


async def test_one_browser_signing_in_again_is_not_shared(
    client: Client, clock: FixedClock
) -> None:
    """The same browser keeps its id (a long-lived HttpOnly, SameSite=Lax cookie): however often
    it signs in, it counts once."""
    async with browser(client) as same:
        for _ in range(SHARED_BROWSERS + 1):
            assert WARNING not in await enrolment_page(same)
            clock.advance(60)
        [cookie] = [c for c in same.cookie_jar if c.key == "gateway_browser"]
        assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
        assert int(cookie["max-age"]) > 365 * 86400


async def test_browsers_older_than_the_window_do_not_count(
    client: Client, clock: FixedClock
) -> None:
    """Browsers last seen more than SHARED_WINDOW ago are forgotten."""
    for _ in range(SHARED_BROWSERS - 1):
        async with browser(client) as other:
            await enrolment_page(other)
    clock.advance(SHARED_WINDOW + 1)
    async with browser(client) as other:
        assert WARNING not in await enrolment_page(other)


async def test_the_admin_table_flags_a_possibly_shared_login(
    client: Client, clock: FixedClock
) -> None:
    """Erin's login, used from three browsers, is flagged on Alice's table and in its filter."""
    for _ in range(SHARED_BROWSERS):
        async with browser(client) as other:
            await enrolment_page(other)
    await sign_in(client, ALICE, clock)
    shared = await (
        await client.get("/.gateway/admin/acme/", params={"status": "possibly_shared"})
    ).text()
    assert f">{ERIN}</a>" in shared and f">{ALICE}</a>" not in shared
    assert "yes: 3 browsers" in shared
