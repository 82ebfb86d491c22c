"""Review findings on the "Two-step sign-in" page and adding a method (issue 17), each a test
that failed before its fix: the app's own form posted to no method (first enrolment chosen as
another way, and adding one, went to another method's handler or nowhere); the add pages'
other ways led to a 404; the sign-in's wrong answers followed into the verified session; a
stranger's lockout ended a verified session; adding a text number replaced the number calls
go to; adding a method renewed the 15 minutes in which methods may change; "Set up now"
offered "Remind me" again; a secret shown before the second factor was offered later; and
removing texts left calls to a lost phone unsaid."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any

import aiohttp

from gateway.clock import FixedClock
from gateway.keys import RUNTIME
from tests.identity.test_own_methods import (
    MOBILE,
    T0,
    add_phone,
    enrolled,
    gateway,
    policy,
    post,
)
from tests.proxy.helpers import PASSWORD, USER, write_users_file
from tests.senders.fakes import FakeProvider
from tests.support import code_for, csrf_from_page, portal_app, portal_login, secret_from_page

ADD_SMS = "/.gateway/enrol?method=sms&rd=%2F.gateway%2Faccount"
ADD_TOTP = "/.gateway/enrol?method=totp&rd=%2F.gateway%2Faccount"
ADD_VOICE = "/.gateway/enrol?method=voice&rd=%2F.gateway%2Faccount"


async def test_F1_an_app_added_through_its_own_form_is_added(
    make_gateway: Any,
    upstream_url: str,
    tmp_path: Path,
    senders: dict[str, Any],
    provider: tuple[FakeProvider, str],
) -> None:
    clock = FixedClock(T0)
    client = await gateway(make_gateway, upstream_url, tmp_path, clock, senders)
    store = client.server.app[RUNTIME].store
    await enrolled(client, clock)
    await add_phone(client, provider[0])
    await post(client, "/.gateway/logout", "/.gateway/account/remove", method="totp")
    html = await (await client.get(ADD_TOTP)).text()
    match = re.search(r'<form method="post" action="([^"]+)"', html)
    assert match is not None
    code = code_for(secret_from_page(html), clock())
    answer = await client.post(
        unescape(match.group(1)),
        data={"csrf_token": csrf_from_page(html), "code": code},
        allow_redirects=False,
    )
    assert answer.status == 303 and answer.headers["Location"] == "/.gateway/account"
    assert "totp" in await store.list_methods(USER)
    page = await (await client.get("/.gateway/account")).text()
    assert "Authenticator app was added." in page


async def test_F2_other_way_links_while_adding_lead_somewhere(
    make_gateway: Any, upstream_url: str, tmp_path: Path, senders: dict[str, Any]
) -> None:
    clock = FixedClock(T0)
    client = await gateway(make_gateway, upstream_url, tmp_path, clock, senders)
    await enrolled(client, clock)
    html = await (await client.get(ADD_SMS)).text()
    section = html.split('id="other-ways-heading"')[1].split("</section>")[0]
    for link in re.findall(r'href="([^"]+)"', section):
        r = await client.get(unescape(link), allow_redirects=False)
        assert r.status != 404


async def test_F3_a_typo_while_adding_does_not_end_the_session_for_failures_at_sign_in(
    make_gateway: Any,
    upstream_url: str,
    tmp_path: Path,
    senders: dict[str, Any],
    provider: tuple[FakeProvider, str],
) -> None:
    clock = FixedClock(T0)
    client = await gateway(make_gateway, upstream_url, tmp_path, clock, senders)
    secret = await enrolled(client, clock)
    client.session.cookie_jar.clear()
    clock.advance(120)
    await portal_login(client, USER, PASSWORD)
    ch = "/.gateway/challenge?rd=%2F.gateway%2Faccount"
    for _ in range(4):
        await post(client, ch, ch, code="000000")
    await post(client, ch, ch, code=code_for(secret, clock()))
    await post(client, ADD_SMS, ADD_SMS, action="number", phone=MOBILE)
    typo = await post(client, ADD_SMS, ADD_SMS, code="000000")
    assert typo.status == 401 and "Enter the code we texted you" in await typo.text()
    after = await client.get("/.gateway/account", allow_redirects=False)
    assert after.status == 200


async def test_F4_a_strangers_lockout_does_not_end_a_verified_session(
    make_gateway: Any, upstream_url: str, tmp_path: Path, senders: dict[str, Any]
) -> None:
    clock = FixedClock(T0)
    client = await gateway(make_gateway, upstream_url, tmp_path, clock, senders)
    await enrolled(client, clock)
    login = client.make_url("/.gateway/login?rd=%2F")
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as stranger:  # same address, none of the victim's cookies
        for _ in range(10):
            html = await (await stranger.get(login)).text()
            await stranger.post(
                login,
                data={"csrf_token": csrf_from_page(html), "username": USER, "password": "wrong"},
            )
            clock.advance(61)
    refused = await post(client, ADD_SMS, ADD_SMS, action="number", phone=MOBILE)
    after = await client.get("/.gateway/account", allow_redirects=False)
    assert refused.status == 429
    assert after.status == 200


async def test_F5_adding_a_text_number_keeps_the_call_number(
    make_gateway: Any,
    upstream_url: str,
    tmp_path: Path,
    senders: dict[str, Any],
    provider: tuple[FakeProvider, str],
) -> None:
    clock = FixedClock(T0)
    allowed = policy().replace("[totp, sms, webauthn, recovery]", "[totp, sms, voice, recovery]")
    client = await make_gateway(
        {"app": portal_app(upstream_url, write_users_file(tmp_path))},
        policies={"example.yaml": allowed},
        clock=clock,
        senders=senders,
    )
    rt = client.server.app[RUNTIME]
    await enrolled(client, clock)
    await post(client, ADD_VOICE, ADD_VOICE, action="number", phone="+44 20 7946 0000")
    await post(client, ADD_VOICE, ADD_VOICE, code=provider[0].last_code())
    clock.advance(60)
    await post(client, ADD_SMS, ADD_SMS, action="number", phone="+44 7400 999888")
    await post(client, ADD_SMS, ADD_SMS, code=provider[0].last_code())
    voice = await rt.store.get_enrolment(USER, "voice")
    number = rt.secrets.cipher.decrypt(str(voice["phone"]), f"phone:{USER}")
    assert number == "+442079460000"


async def test_F6_adding_a_method_is_not_a_fresh_second_factor(
    make_gateway: Any,
    upstream_url: str,
    tmp_path: Path,
    senders: dict[str, Any],
    provider: tuple[FakeProvider, str],
) -> None:
    clock = FixedClock(T0)
    client = await gateway(make_gateway, upstream_url, tmp_path, clock, senders)
    await enrolled(client, clock)
    clock.advance(14 * 60)
    await add_phone(client, provider[0])  # a number the person (or whoever holds the session) owns
    clock.advance(10 * 60)  # 24 minutes after the last factor the account already had
    removed = await post(client, "/.gateway/logout", "/.gateway/account/remove", method="totp")
    page = await (await client.get("/.gateway/account")).text()
    row = " ".join(
        re.sub("<[^>]+>", "", page.split('id="method-sms"')[1].split("</li>")[0]).split()
    )
    assert removed.status == 403
    assert "Not used to sign in yet" in row  # added is not used


async def test_F7_set_up_now_does_not_offer_remind_me(
    make_gateway: Any, upstream_url: str, tmp_path: Path, senders: dict[str, Any]
) -> None:
    clock = FixedClock(T0)
    client = await gateway(
        make_gateway, upstream_url, tmp_path, clock, senders, extra="enforce_2fa: false"
    )
    login = await portal_login(client, USER, PASSWORD)
    await post(client, login.headers["Location"], "/.gateway/defer?rd=%2F")
    store = client.server.app[RUNTIME].store
    before = await store.get_deferral(USER)
    clock.advance(600)
    start = await post(client, "/.gateway/logout", "/.gateway/account/start")
    html = await (await client.get(start.headers["Location"])).text()
    again = await post(client, start.headers["Location"], "/.gateway/defer?rd=%2F")
    assert "Remind me" not in html
    assert again.status == 303 and again.headers["Location"].startswith("/.gateway/enrol")
    assert await store.get_deferral(USER) == before  # not put off again


async def test_F8_a_secret_from_the_password_only_step_is_not_reused(
    make_gateway: Any,
    upstream_url: str,
    tmp_path: Path,
    senders: dict[str, Any],
    provider: tuple[FakeProvider, str],
) -> None:
    clock = FixedClock(T0)
    client = await gateway(make_gateway, upstream_url, tmp_path, clock, senders)
    login = await portal_login(client, USER, PASSWORD)
    shown = secret_from_page(await (await client.get(login.headers["Location"])).text())
    url = "/.gateway/enrol?method=sms&rd=%2F"
    await post(client, url, url, action="number", phone=MOBILE)
    done = await post(client, url, url, code=provider[0].last_code())
    await client.get(done.headers["Location"])
    later = secret_from_page(await (await client.get(ADD_TOTP)).text())
    assert shown != later


async def test_an_app_chosen_as_another_way_at_the_first_enrolment_is_enrolled(
    make_gateway: Any, upstream_url: str, tmp_path: Path, senders: dict[str, Any]
) -> None:
    """With the phone first in the policy, the app chosen under "another way": its form named
    no method, so the code went to the phone's handler and nothing was enrolled."""
    clock = FixedClock(T0)
    client = await make_gateway(
        {"app": portal_app(upstream_url, write_users_file(tmp_path))},
        policies={
            "example.yaml": policy().replace("[totp, sms, webauthn, recovery]", "[sms, totp]")
        },
        clock=clock,
        senders=senders,
    )
    await portal_login(client, USER, PASSWORD)
    html = await (await client.get("/.gateway/enrol?method=totp&rd=%2F")).text()
    match = re.search(r'<form method="post" action="([^"]+)"', html)
    assert match is not None
    answer = await client.post(
        unescape(match.group(1)),
        data={
            "csrf_token": csrf_from_page(html),
            "code": code_for(secret_from_page(html), clock()),
        },
        allow_redirects=False,
    )
    assert answer.status == 303
    assert "totp" in await client.server.app[RUNTIME].store.list_methods(USER)


async def test_removing_texts_says_calls_to_that_phone_still_work(
    make_gateway: Any,
    upstream_url: str,
    tmp_path: Path,
    senders: dict[str, Any],
    provider: tuple[FakeProvider, str],
) -> None:
    clock = FixedClock(T0)
    allowed = policy().replace("[totp, sms, webauthn, recovery]", "[totp, sms, voice, recovery]")
    client = await make_gateway(
        {"app": portal_app(upstream_url, write_users_file(tmp_path))},
        policies={"example.yaml": allowed},
        clock=clock,
        senders=senders,
    )
    await enrolled(client, clock)
    await add_phone(client, provider[0])  # texts, and calls to the same mobile
    removed = await post(client, "/.gateway/logout", "/.gateway/account/remove", method="sms")
    assert removed.status == 303
    page = unescape(await (await client.get("/.gateway/account")).text())
    assert "Text message (SMS) was removed. Phone call to the same number still works" in page
