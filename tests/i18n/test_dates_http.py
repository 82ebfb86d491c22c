"""Times people read are written with Babel in their language: an admin reading a member's page
in German sees German days ("15. Januar 2027, 08:00 UTC", "vor 2 Tagen"), for the last sign-in,
the sessions and the remembered browsers alike, never the API's RFC 3339 text or an English
month; the person's own sessions page too, with its browsers and addresses in words."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from gateway.clock import FixedClock
from gateway.identity.portal import hash_password
from gateway.sessions import Level
from tests.admin.helpers import (
    ALICE,
    CAROL,
    NOW,
    PASSWORD,
    POLICIES,
    Client,
    enrol_totp,
    runtime,
    seen,
    sign_in,
    upstream,
)
from tests.support import portal_app

MEMBERS = "/.gateway/admin/acme/"
ENGLISH_MONTHS = re.compile(r"\b(January|February|December)\b")


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    served = await upstream()
    yield served
    await served.close()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)  # 15 January 2027, 08:00 UTC


@pytest.fixture
async def client(
    make_gateway: Any, tmp_path: Path, server: TestServer, clock: FixedClock
) -> Client:
    users = tmp_path / "users.yaml"
    hashed = hash_password(PASSWORD)
    users.write_text(
        "users:\n" + "".join(f"  {u}:\n    password: '{hashed}'\n" for u in (ALICE, CAROL))
    )
    policies = {**POLICIES, "acme.yaml": POLICIES["acme.yaml"] + "remember_browser: 30d\n"}
    made: Client = await make_gateway(
        {"app": portal_app(str(server.make_url("")).rstrip("/"), users)},
        policies=policies,
        clock=clock,
    )
    for user in (ALICE, CAROL):
        await enrol_totp(runtime(made), user)
    return made


def visible(html: str) -> str:
    """The page's text as read: no tags, so no attribute (a <time datetime>) counts."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def test_an_admin_reads_a_members_times_in_german(client: Client, clock: FixedClock) -> None:
    await seen(client, CAROL, clock)  # 15 January 2027, 08:00 UTC
    await runtime(client).store.remember_browser(
        CAROL, "b" * 32, {"company": "acme", "since": NOW, "address": "192.0.2.7"}, NOW + 30 * 86400
    )
    clock.advance(2 * 86400 + 60)
    await sign_in(client, ALICE, clock)
    client.session.cookie_jar.update_cookies({"gateway_lang": "de"})
    member = visible(await (await client.get(f"{MEMBERS}members/{CAROL}")).text())
    assert "Letzte Anmeldung" in member  # German, as the page
    assert "15. Januar 2027, 08:00 UTC" in member  # the last sign-in, the API's is RFC 3339
    assert "vor 2 Tagen (am 15. Januar 2027)" in member  # Carol's session, as on her own page
    assert "14. Februar 2027, 08:00 UTC" in member  # the remembered browser's end
    assert not re.search(r"\d{4}-\d\d-\d\d", member), member  # no machine dates in the text
    assert not ENGLISH_MONTHS.search(member)
    members = visible(await (await client.get(MEMBERS)).text())
    assert "15. Januar 2027, 08:00 UTC" in members
    assert not re.search(r"\d{4}-\d\d-\d\d", members) and not ENGLISH_MONTHS.search(members)


async def test_english_admin_pages_say_the_day_in_words(client: Client, clock: FixedClock) -> None:
    await seen(client, CAROL, clock)
    await sign_in(client, ALICE, clock)
    member = visible(await (await client.get(f"{MEMBERS}members/{CAROL}")).text())
    assert "15 January 2027, 08:00 UTC" in member


async def test_the_persons_own_sessions_page_in_french(client: Client, clock: FixedClock) -> None:
    await runtime(client).store.remember_browser(
        CAROL, "c" * 32, {"company": "acme", "since": NOW, "address": "192.0.2.7"}, NOW + 30 * 86400
    )
    clock.advance(3 * 86400)
    await sign_in(client, CAROL, clock)
    client.session.cookie_jar.update_cookies({"gateway_lang": "fr"})
    page = visible(await (await client.get("/.gateway/account/sessions")).text())
    assert "il y a 3 jours (le 15 janvier 2027)" in page
    assert "14 février 2027, 08:00 UTC" in page
    assert not ENGLISH_MONTHS.search(page) and not re.search(r"\d{4}-\d\d-\d\d", page)


FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


async def test_browsers_and_addresses_in_the_persons_language(
    client: Client, clock: FixedClock
) -> None:
    """ "Firefox 133 on Windows 10", "unknown browser" and "unknown address" were English on a
    German page."""
    await sign_in(client, CAROL, clock)
    rt = runtime(client)
    await rt.store.remember_browser(
        CAROL, "d" * 32, {"company": "acme", "since": NOW, "user_agent": FIREFOX}, NOW + 86400
    )
    old = rt.sessions.new("app")  # from before browsers and addresses were kept
    old.user, old.level, old.verified_at, old.second_factor = CAROL, Level.VERIFIED, NOW, "totp"
    await rt.sessions.save(old)
    client.session.cookie_jar.update_cookies({"gateway_lang": "de"})
    page = visible(await (await client.get("/.gateway/account/sessions")).text())
    assert "Firefox 133 unter Windows 10" in page and "unbekannter Browser" in page
    assert "von unbekannter Adresse" in page
    assert not re.search(r"\bunknown\b| on ", page), page
