"""After a wrong answer from the authenticator app (challenge and enrolment) or a wrong recovery
code, the page says how many more tries this sign-in takes and what the last of them leads to:
the password again (MAX_FAILURES in a row), or a lockout when one of the store's limits comes
first (gateway.regulation). Over HTTP, against a portal-mode gateway on a fixed clock; each
test checks that what the page promised is what then happens."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pyotp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway import regulation
from gateway.clock import FixedClock
from gateway.factors import recovery
from gateway.handlers.signin.recovery import WRONG_CODE as WRONG_RECOVERY_CODE
from gateway.handlers.signin.totp import USED_CODE, WRONG_CODE
from gateway.identity.portal import hash_password
from gateway.keys import RUNTIME
from gateway.sessions import MAX_FAILURES
from tests.support import code_for, csrf_from_page, enrol_totp, portal_app

NOW = 1_800_000_000.0
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
USER = "carol@example.com"
NEW_USER = "erin@example.com"  # not enrolled yet
PASSWORD = "pw"
POLICY = """
company: Example Company
members:
  domains: [example.com]
account_type: partner
methods:
  allowed: [totp, recovery]
enforce_2fa: true
"""
AGAIN = "then you sign in again with your password."
LOCKED_HERE = "signing in to your account from here is then locked for up to 15 minutes."
LOCKED = "signing in to your account is then locked for up to 15 minutes."

Client = TestClient[web.Request, web.Application]


def tries(left: int, then: str) -> str:
    word = "try" if left == 1 else "tries"
    return f"You have {left} more {word} before this sign-in ends; {then}"


def wrong_code(at: float) -> str:
    """A code no step near `at` would accept."""
    totp = pyotp.TOTP(SECRET)
    near = {totp.at(at + 30 * k) for k in range(-3, 4)}
    return next(c for c in (f"{d}" * 6 for d in range(10)) if c not in near)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
async def client(make_gateway: Any, tmp_path: Path, clock: FixedClock) -> Client:
    users = tmp_path / "users.yaml"
    hashed = hash_password(PASSWORD)
    users.write_text(
        "users:\n" + "".join(f"  {u}:\n    password: '{hashed}'\n" for u in (USER, NEW_USER))
    )
    gateway: Client = await make_gateway(
        {"app": portal_app("http://127.0.0.1:9", users)},
        policies={"example.yaml": POLICY},
        clock=clock,
    )
    rt = gateway.app[RUNTIME]
    secret = rt.secrets.cipher.encrypt(SECRET, f"totp:{USER}")
    await rt.store.put_enrolment(USER, "totp", {"secret": secret, "created": 1.0})
    return gateway


async def password(client: Client, user: str = USER) -> str:
    """The password step in a fresh browser; where the gateway sends it next."""
    client.session.cookie_jar.clear()
    page = await client.get("/.gateway/login?rd=%2F")
    answer = await client.post(
        "/.gateway/login?rd=%2F",
        data={
            "csrf_token": csrf_from_page(await page.text()),
            "username": user,
            "password": PASSWORD,
        },
        allow_redirects=False,
    )
    assert answer.status == 303, await answer.text()
    return str(answer.headers["Location"])


async def answer(client: Client, location: str, code: str) -> tuple[int, str]:
    """The code typed on the page at `location`: the status and the text of the answer."""
    page = await client.get(location)
    assert page.status == 200, await page.text()
    sent = await client.post(
        location,
        data={"csrf_token": csrf_from_page(await page.text()), "code": code},
        allow_redirects=False,
    )
    return sent.status, html.unescape(await sent.text())


def error_of(text: str) -> str:
    """The error tied to the code field, as one line of text."""
    start = text.index('id="code-error"')
    paragraph = text[text.index(">", start) + 1 : text.index("</p>", start)]
    return " ".join(paragraph.replace('<span class="visually-hidden">Error:</span>', "").split())


async def test_wrong_app_codes_count_down_to_the_end_of_the_sign_in(
    client: Client, clock: FixedClock
) -> None:
    """Each wrong code says how many tries remain and that the password comes next; the last
    one says "1 more try", and the answer after it does end the sign-in."""
    location = await password(client)
    for left in range(MAX_FAILURES - 1, 0, -1):
        status, text = await answer(client, location, wrong_code(clock.now))
        assert status == 401
        assert error_of(text) == f"{WRONG_CODE} {tries(left, AGAIN)}"
        assert 'aria-describedby="code-error"' in text
    status, text = await answer(client, location, wrong_code(clock.now))
    assert status == 429 and "this sign-in has been stopped" in text
    assert "code-error" not in text


async def test_a_replayed_code_says_how_many_tries_are_left(
    client: Client, clock: FixedClock
) -> None:
    """A code already used counts as a wrong answer, and says so with the tries left."""
    location = await password(client)
    assert (await answer(client, location, code_for(SECRET, clock.now)))[0] == 303
    location = await password(client)
    status, text = await answer(client, location, code_for(SECRET, clock.now))
    assert status == 401
    assert error_of(text) == f"{USED_CODE} {tries(MAX_FAILURES - 1, AGAIN)}"


async def test_enrolment_says_how_many_tries_are_left(client: Client, clock: FixedClock) -> None:
    """A wrong code while setting up the app says how many tries remain; the right one still
    enrols."""
    location = await password(client, NEW_USER)
    assert location.startswith("/.gateway/enrol"), location
    status, text = await answer(client, location, "123456")
    assert status == 400
    assert error_of(text) == f"{WRONG_CODE} {tries(MAX_FAILURES - 1, AGAIN)}"
    status, text = await answer(client, location, "654321")
    assert error_of(text).endswith(tries(MAX_FAILURES - 2, AGAIN))
    _, enrolled = await enrol_totp(client, location, clock)
    assert enrolled.status == 303


async def test_a_wrong_recovery_code_says_how_many_tries_are_left(client: Client) -> None:
    rt = client.app[RUNTIME]
    await rt.store.put_enrolment(USER, "recovery", recovery.generate(NOW).record)
    location = await password(client)
    status, text = await answer(client, location.replace("?", "?method=recovery&"), "aaaaa-bbbbb")
    assert status == 401
    assert error_of(text) == f"{WRONG_RECOVERY_CODE} {tries(MAX_FAILURES - 1, AGAIN)}"
    assert 'aria-describedby="code-hint code-error"' in text


async def test_a_lockout_from_here_that_comes_first_is_named(
    client: Client, clock: FixedClock
) -> None:
    """Wrong codes of an earlier sign-in from this address count towards the lockout of the
    user from here (10 by default): in the next sign-in it comes with the fifth wrong code,
    together with the sign-in's own limit, and the page names the lockout, which then
    happens."""
    location = await password(client)
    for _ in range(MAX_FAILURES):
        await answer(client, location, wrong_code(clock.now))
    clock.advance(2)  # the delay after five wrong answers from one address
    location = await password(client)
    limit = regulation.DEFAULT.per_user_and_address
    for left in range(limit - MAX_FAILURES - 1, 0, -1):
        status, text = await answer(client, location, wrong_code(clock.now))
        assert status == 401
        assert tries(left, LOCKED_HERE) in error_of(text)
        assert "before the next try" in error_of(text)  # the growing delay, said after it
        clock.advance(61)
    status, text = await answer(client, location, wrong_code(clock.now))
    assert status == 429 and "Too many wrong answers" in text
    # locked until the first of the ten leaves the window: within the 15 minutes promised
    assert "Try again in 11 minutes" in text


async def test_wrong_second_factors_elsewhere_bring_the_account_lockout_nearer(
    client: Client, clock: FixedClock
) -> None:
    """27 wrong second factors for the user from elsewhere in the window leave 3 before the
    account-wide limit (30): the first wrong code here says 2 more, and the third locks the
    account."""
    store = client.app[RUNTIME].store
    counted_as = regulation.user_key(USER)
    for _ in range(27):
        for key in (regulation.second_factor_key(counted_as), f"user:{counted_as}"):
            await store.record_failure(key, NOW - 60)
    location = await password(client)
    status, text = await answer(client, location, wrong_code(clock.now))
    assert status == 401 and error_of(text) == f"{WRONG_CODE} {tries(2, LOCKED)}"
    status, text = await answer(client, location, wrong_code(clock.now))
    assert status == 401 and error_of(text) == f"{WRONG_CODE} {tries(1, LOCKED)}"
    status, text = await answer(client, location, wrong_code(clock.now))
    assert status == 429 and "Too many wrong answers" in text
