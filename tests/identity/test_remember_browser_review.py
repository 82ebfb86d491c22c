"""Review findings on remembered browsers (issue 18, part 2), each a test that failed before its
fix: a sign-in completed while its user's sessions were being ended keeps no remembered
browser; signing out from a stepped-down session (a step-up or "Confirm it is you" under way)
forgets the browsers as a verified one does; the operator's `--end-all` forgets them as the
page's "Sign out everywhere else" and the admin's "end all sessions" do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

import gateway.signin.completion as completion
from gateway.cli.users import _sessions
from gateway.signin import remember
from tests.identity import test_remember_browser as base
from tests.identity.test_remember_browser import (
    CAROL,
    COOKIE,
    DAVE,
    DAY,
    LOGOUT,
    SESSIONS,
    Gateway,
)
from tests.support import csrf_from_page

# the remembered-browser tests' fixtures: a gateway on SQLite and on Redis, and its browsers
store_url, gateway, browsers = base.store_url, base.gateway, base.browsers


async def test_a_sign_in_completed_while_the_user_signs_out_everywhere_is_not_remembered(
    gateway: Gateway,
    browsers: Callable[[], aiohttp.ClientSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A phisher relays the password and a code with the box ticked; the person signs out (from
    a verified session: everywhere) while that answer is being completed. The phisher's new
    session ends with the others, and no browser stays remembered for them."""
    victim = browsers()
    await gateway.enrol(CAROL, victim)
    victim_id = next(c.value for c in victim.cookie_jar if c.key == "gateway_session")
    victim_session = await gateway.runtime.sessions.load(victim_id, "app")
    assert victim_session is not None

    phisher = browsers()
    location = await gateway.password(phisher, CAROL)
    assert location.startswith("/.gateway/challenge")
    real = completion.seen_at_second_factor
    fired: list[bool] = []

    async def signing_out_meanwhile(visit: Any, session: Any, via: str) -> None:
        if not fired:  # the person's sign-out lands between the promotion and the remembering
            fired.append(True)
            await gateway.runtime.sessions.sign_out(victim_session)
        await real(visit, session, via)

    monkeypatch.setattr(completion, "seen_at_second_factor", signing_out_meanwhile)
    answer = await gateway.answer(phisher, CAROL, location, tick=True)
    monkeypatch.setattr(completion, "seen_at_second_factor", real)
    assert fired
    assert await gateway.session_of(phisher) is None
    assert await gateway.store.list_remembered(CAROL, gateway.clock()) == []
    value = answer.cookies[COOKIE].value if COOKIE in answer.cookies else ""
    later = gateway.fresh_browser(browsers, value)
    assert (await gateway.password(later, CAROL)).startswith("/.gateway/challenge")


async def test_signing_out_from_a_stepped_down_session_forgets_the_browsers(
    gateway: Gateway, browsers: Callable[[], aiohttp.ClientSession]
) -> None:
    """Signed in with a real second factor, then asked again on a step-up path: signing out
    from that challenge page is the verified person's sign-out, and forgets every remembered
    browser (one a phisher ticked among them)."""
    remembered = await gateway.remembered_sign_in(CAROL, browsers())
    person = browsers()
    location = await gateway.password(person, CAROL)
    assert location.startswith("/.gateway/challenge")  # a new browser: asked
    await gateway.answer(person, CAROL, location, tick=False)
    gateway.clock.advance(16 * 60)
    asked = await person.get(gateway.url("/admin/x"), allow_redirects=False)
    assert asked.status == 303 and "/.gateway/challenge" in asked.headers["Location"]
    page = await person.get(gateway.url(LOGOUT))
    token = csrf_from_page(await page.text())
    out = await person.post(gateway.url(LOGOUT), data={"csrf_token": token}, allow_redirects=False)
    assert out.status == 303
    assert await gateway.store.list_remembered(CAROL, gateway.clock()) == []
    again = gateway.fresh_browser(browsers, remembered)
    assert (await gateway.password(again, CAROL)).startswith("/.gateway/challenge")


async def test_the_operators_end_all_forgets_the_browsers(
    gateway: Gateway, browsers: Callable[[], aiohttp.ClientSession]
) -> None:
    """`gateway users sessions USER --end-all` forgets the remembered browsers too: one
    remembered during a phish does not outlive the sessions the operator ended."""
    remembered = await gateway.remembered_sign_in(CAROL, browsers())
    settings = gateway.runtime.settings
    key = settings.secrets.read_encryption_key()
    _, ended = await _sessions(settings.store, key, CAROL, None, True)
    assert isinstance(ended, tuple) and ended[0] >= 1 and ended[1] == 1
    assert await gateway.store.list_remembered(CAROL, gateway.clock()) == []
    again = gateway.fresh_browser(browsers, remembered)
    assert (await gateway.password(again, CAROL)).startswith("/.gateway/challenge")


async def test_an_admin_setting_a_new_phone_forgets_the_browsers(
    gateway: Gateway, browsers: Callable[[], aiohttp.ClientSession]
) -> None:
    """A new phone number set by an admin (kept pending until the member confirms it) is a
    factor change: the member's remembered browsers stop skipping the second factor, so the
    next sign-in is asked for it (and then to confirm the number)."""
    remembered = await gateway.remembered_sign_in(CAROL, browsers())
    dave = browsers()
    await gateway.remembered_sign_in(DAVE, dave)
    member = f"/.gateway/admin/example/members/{CAROL}"
    html = await (await dave.get(gateway.url(member))).text()
    done = await dave.post(
        gateway.url(member + "/profile"),
        data={"csrf_token": csrf_from_page(html), "name": "", "phone": "+1 202 555 0143"},
        allow_redirects=False,
    )
    assert done.status == 303, await done.text()
    assert await gateway.store.list_remembered(CAROL, gateway.clock()) == []
    again = gateway.fresh_browser(browsers, remembered)
    assert (await gateway.password(again, CAROL)).startswith("/.gateway/challenge")


async def test_the_lists_show_the_end_a_shortened_policy_gives(
    gateway: Gateway, browsers: Callable[[], aiohttp.ClientSession]
) -> None:
    """A shortened remember_browser applies to browsers already remembered; the sessions page,
    the admin's API and the CLI list each with that earlier end, and none once it has passed or
    the policy stops offering it (they used to list the store's own, later end)."""
    person = browsers()
    await gateway.remembered_sign_in(CAROL, person)
    runtime = gateway.runtime
    policy = runtime.policy.current

    def with_span(span: timedelta | None) -> None:
        companies = tuple(
            replace(c, remember_browser=span) if c.id == "example" else c
            for c in policy.companies
        )
        runtime.policy.replace(replace(policy, companies=companies))

    now = gateway.clock()
    [found] = await remember.live(runtime.store, CAROL, policy.company_for(CAROL), now)
    assert found.until == now + 30 * DAY
    with_span(timedelta(days=2))
    company = runtime.policy.current.company_for(CAROL)
    [found] = await remember.live(runtime.store, CAROL, company, now)
    assert found.until == now + 2 * DAY
    page = await (await person.get(gateway.url(SESSIONS))).text()
    shown = datetime.fromtimestamp(now + 2 * DAY, UTC).strftime("%-d %B %Y, %H:%M UTC")
    assert shown in page
    gateway.clock.advance(2 * DAY)
    assert await remember.live(runtime.store, CAROL, company, gateway.clock()) == []
    with_span(None)
    assert await remember.live(runtime.store, CAROL, None, gateway.clock()) == []
