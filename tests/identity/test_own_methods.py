"""A person's own "Two-step sign-in" page (/.gateway/account; issue 17, finding 2 and 7): every
method with when it was added and last used; a backup method added through the enrolment page
(which for an enrolled user used to go straight to the application); one removed, never the
last; the default chosen; a deferred user sets it up early. Portal mode, a fixed clock, the
SMS provider the suite fakes (its API, not the gateway) and aiosmtpd for notices."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest

from gateway.clock import FixedClock
from gateway.keys import RUNTIME
from tests.proxy.helpers import PASSWORD, USER, write_users_file
from tests.senders.fakes import FakeProvider, SmtpServer
from tests.support import code_for, csrf_from_page, enrol_totp, portal_app, portal_login

T0 = 1_700_000_000.0
MOBILE = "+44 7400 123456"


def policy(extra: str = "enforce_2fa: true") -> str:
    return f"""
company: Example Company
members:
  domains: [example.com]
account_type: partner
methods:
  allowed: [totp, sms, webauthn, recovery]
deferral: 48h
{extra}
"""


async def gateway(
    make_gateway: Any,
    upstream_url: str,
    tmp_path: Path,
    clock: FixedClock,
    senders: dict[str, Any],
    extra: str = "enforce_2fa: true",
) -> Any:
    return await make_gateway(
        {"app": portal_app(upstream_url, write_users_file(tmp_path))},
        policies={"example.yaml": policy(extra)},
        clock=clock,
        senders=senders,
    )


async def enrolled(client: Any, clock: FixedClock) -> str:
    """USER signed in with an authenticator app set up just now; the secret."""
    login = await portal_login(client, USER, PASSWORD)
    secret, _ = await enrol_totp(client, login.headers["Location"], clock)
    await client.get("/.gateway/recovery")  # the first codes, shown once
    return secret


async def post(client: Any, page: str, target: str, **fields: str) -> aiohttp.ClientResponse:
    """`target`'s form, with the CSRF token from `page` (the sign-out page has one for any
    session: the token belongs to the browser, not to a form)."""
    html = await (await client.get(page)).text()
    return await client.post(
        target, data={"csrf_token": csrf_from_page(html), **fields}, allow_redirects=False
    )


async def add_phone(client: Any, fake: FakeProvider) -> None:
    """From the account page's link: the number, then the code texted to it."""
    page = await (await client.get("/.gateway/account")).text()
    link = re.search(r'href="(/\.gateway/enrol\?method=sms[^"]*)"', page)
    assert link, page
    url = link.group(1).replace("&amp;", "&")
    number = await post(client, url, url, action="number", phone=MOBILE)
    assert number.status == 303, await number.text()
    done = await post(client, url, url, code=fake.last_code())
    assert done.status == 303 and done.headers["Location"] == "/.gateway/account"


async def test_a_backup_method_is_added_listed_and_removed(
    make_gateway: Any,
    upstream_url: str,
    tmp_path: Path,
    senders: dict[str, Any],
    provider: tuple[FakeProvider, str],
    smtp: SmtpServer,
) -> None:
    clock = FixedClock(T0)
    client = await gateway(make_gateway, upstream_url, tmp_path, clock, senders)
    await enrolled(client, clock)
    page = await (await client.get("/.gateway/account")).text()
    assert "Authenticator app" in page and ">just now</time>" in page
    assert "Not used to sign in yet" not in page.split("Add a backup method")[0]  # just used
    assert "Add a backup method" in page and "Text message" in page
    assert "10 of your recovery codes remain" in page
    # the only way cannot be removed
    assert "/.gateway/account/remove" not in page and "Your only way to sign in" in page
    refused = await post(client, "/.gateway/logout", "/.gateway/account/remove", method="totp")
    assert refused.status == 409 and "cannot be removed" in await refused.text()

    await add_phone(client, provider[0])
    store = client.server.app[RUNTIME].store
    assert {"totp", "sms"} <= set(await store.list_methods(USER))
    _, notice = smtp.mailbox.messages[-1]
    assert "phone number was added" in notice["Subject"].lower()
    page = await (await client.get("/.gateway/account")).text()
    assert "The number ending in 3456" in page
    assert "Your only way to sign in" not in page

    removed = await post(client, "/.gateway/logout", "/.gateway/account/remove", method="totp")
    assert removed.status == 303 and removed.headers["Location"] == "/.gateway/account"
    assert "totp" not in await store.list_methods(USER)
    page = await (await client.get("/.gateway/account")).text()
    assert "Authenticator app was removed." in page
    _, notice = smtp.mailbox.messages[-1]
    assert "removed" in notice["Subject"].lower()
    # the phone is now the last way: kept
    for method in ("sms", "voice"):
        await post(client, "/.gateway/logout", "/.gateway/account/remove", method=method)
    assert set(await store.list_methods(USER)) & {"sms", "voice"}


async def test_adding_needs_a_recent_second_factor(
    make_gateway: Any, upstream_url: str, tmp_path: Path, senders: dict[str, Any]
) -> None:
    """16 minutes on, the add link goes to "Confirm it is you" and back; a POST is refused; the
    page offers no change buttons until then."""
    clock = FixedClock(T0)
    client = await gateway(make_gateway, upstream_url, tmp_path, clock, senders)
    secret = await enrolled(client, clock)
    clock.advance(16 * 60)
    page = await (await client.get("/.gateway/account")).text()
    assert "confirm it is" in page and "/.gateway/account/remove" not in page
    add = "/.gateway/enrol?method=sms&rd=%2F.gateway%2Faccount"
    go = await client.get(add, allow_redirects=False)
    assert go.status == 303 and go.headers["Location"].startswith("/.gateway/reauth?rd=")
    refused = await post(client, "/.gateway/logout", add, action="number", phone=MOBILE)
    assert refused.status == 403
    refused = await post(client, "/.gateway/logout", "/.gateway/account/default", method="totp")
    assert refused.status == 403
    # confirm it is you, then the enrolment page itself
    step = await post(client, go.headers["Location"], go.headers["Location"])
    challenge = step.headers["Location"]
    answer = await post(client, challenge, challenge, code=code_for(secret, clock(), 1))
    assert unquote(answer.headers["Location"]) == unquote(add)
    page = await (await client.get(add)).text()
    assert "Mobile phone number" in page and "Remind me" not in page


async def test_a_pending_sign_in_still_cannot_add_a_method(
    make_gateway: Any, upstream_url: str, tmp_path: Path, senders: dict[str, Any]
) -> None:
    """Only a verified session adds: a password alone is sent to the challenge."""
    clock = FixedClock(T0)
    client = await gateway(make_gateway, upstream_url, tmp_path, clock, senders)
    await enrolled(client, clock)
    client.session.cookie_jar.clear()
    await portal_login(client, USER, PASSWORD)
    go = await client.get("/.gateway/enrol?method=sms&rd=%2F", allow_redirects=False)
    assert go.status == 303 and go.headers["Location"].startswith("/.gateway/challenge")
    assert (await client.get("/.gateway/account", allow_redirects=False)).status == 303


async def test_the_default_is_the_persons_choice(
    make_gateway: Any,
    upstream_url: str,
    tmp_path: Path,
    senders: dict[str, Any],
    provider: tuple[FakeProvider, str],
) -> None:
    clock = FixedClock(T0)
    client = await gateway(make_gateway, upstream_url, tmp_path, clock, senders)
    await enrolled(client, clock)
    await add_phone(client, provider[0])
    chose = await post(client, "/.gateway/logout", "/.gateway/account/default", method="sms")
    assert chose.status == 303
    page = await (await client.get("/.gateway/account")).text()
    assert "Text message (SMS) is now asked for first" in page
    client.session.cookie_jar.clear()
    clock.advance(60)
    await portal_login(client, USER, PASSWORD)
    challenge = await (await client.get("/.gateway/challenge?rd=%2F")).text()
    assert "Text me a code" in challenge  # the SMS page, not the app's
    # a method that is not theirs is not taken as a default
    record = await client.server.app[RUNTIME].store.get_user(USER)
    assert record.facts["default_method"] == "sms"


async def test_a_deferred_user_sets_it_up_early(
    make_gateway: Any, upstream_url: str, tmp_path: Path, senders: dict[str, Any]
) -> None:
    """ "Remind me later", then the account page: no link to recovery codes (a page they
    cannot use), and a button that leads to the enrolment."""
    clock = FixedClock(T0)
    client = await gateway(
        make_gateway, upstream_url, tmp_path, clock, senders, extra="enforce_2fa: false"
    )
    login = await portal_login(client, USER, PASSWORD)
    enrol = login.headers["Location"]
    deferred = await post(client, enrol, "/.gateway/defer?rd=%2F")
    assert deferred.status == 303
    sign_out = await (await client.get("/.gateway/logout")).text()
    assert "/.gateway/recovery" not in sign_out and "/.gateway/account" in sign_out
    page = await (await client.get("/.gateway/account")).text()
    assert "Set up two-step sign-in now" in page and "/.gateway/recovery" not in page
    start = await post(client, "/.gateway/logout", "/.gateway/account/start")
    assert start.status == 303 and start.headers["Location"].startswith("/.gateway/enrol")
    secret, done = await enrol_totp(client, start.headers["Location"], clock)
    assert done.headers["Location"].startswith("/.gateway/recovery")
    store = client.server.app[RUNTIME].store
    assert "totp" in await store.list_methods(USER)
    assert secret


@pytest.mark.parametrize(
    ("allowed", "says", "never"),
    [
        ("[totp, recovery]", 'Use one of your recovery codes under "Try another', None),
        ("[totp, sms]", "Choose another way above", "recovery code"),
        ("[totp]", "Ask your company's administrator to reset", "recovery code"),
    ],
)
async def test_the_challenge_points_only_to_ways_that_are_there(
    make_gateway: Any,
    upstream_url: str,
    tmp_path: Path,
    senders: dict[str, Any],
    provider: tuple[FakeProvider, str],
    allowed: str,
    says: str,
    never: str | None,
) -> None:
    """The app's challenge told everyone to use a recovery code "under Try another way", which
    was not on the page for those who have none (issue 17, finding 2)."""
    clock = FixedClock(T0)
    client = await make_gateway(
        {"app": portal_app(upstream_url, write_users_file(tmp_path))},
        policies={"example.yaml": policy().replace("[totp, sms, webauthn, recovery]", allowed)},
        clock=clock,
        senders=senders,
    )
    await enrolled(client, clock)
    if "sms" in allowed:
        await add_phone(client, provider[0])
    client.session.cookie_jar.clear()
    clock.advance(60)
    await portal_login(client, USER, PASSWORD)
    page = await (await client.get("/.gateway/challenge?rd=%2F")).text()
    html = " ".join(unescape(page).split())
    assert says in html
    if never is not None:
        assert never not in html
