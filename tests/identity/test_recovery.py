"""Recovery codes over HTTP, in portal mode with an upstream that echoes: shown once after the first
enrolment, a sign-in with one (once), new codes voiding the old, two uses of one code at once."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.handlers.account.recovery_codes import REGENERATED
from gateway.handlers.signin.recovery import WRONG_CODE, spend
from gateway.identity.portal import hash_password
from gateway.keys import RUNTIME
from gateway.sessions import MAX_FAILURES
from tests.support import code_for, csrf_from_page, portal_app, portal_login, secret_from_page

USER, PASSWORD = "carol@example.com", "carol-password"
RECOVERY_POLICY = """
company: Example Company
members:
  domains: [example.com]
account_type: partner
methods:
  allowed: [totp, recovery]
enforce_2fa: true
"""
TOTP_ONLY_POLICY = RECOVERY_POLICY.replace("[totp, recovery]", "[totp]")
DEFERRING_POLICY = RECOVERY_POLICY.replace("enforce_2fa: true", "enforce_2fa: false\ndeferral: 48h")
CODE_RE = re.compile(r"<li><code>([0-9a-z]{5}-[0-9a-z]{5})</code></li>")
RECOVERY_OPTION = "/.gateway/challenge?method=recovery&amp;rd=%2F"
CONTINUE_BUTTON = (
    '<input type="hidden" name="continue" value="1">\n  <button type="submit">{label}</button>'
)


async def echo(request: web.Request) -> web.Response:
    return web.Response(text=f"application page {request.path}")


@pytest.fixture
async def upstream() -> AsyncIterator[TestServer]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    server = TestServer(app)
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "users.yaml"
    path.write_text(f"users:\n  {USER}:\n    password: '{hash_password(PASSWORD)}'\n")
    return path


Gateway = TestClient[web.Request, web.Application]


@pytest.fixture
def gateway(make_gateway: Any, upstream: TestServer, users_file: Path) -> Callable[[str], Any]:
    async def start(policy: str) -> Gateway:
        app = portal_app(str(upstream.make_url("")), users_file)
        client: Gateway = await make_gateway({"app": app}, policies={"example.yaml": policy})
        return client

    return start


@pytest.fixture
async def browsers() -> AsyncIterator[Callable[[Gateway], aiohttp.ClientSession]]:
    """Fresh browsers (cookie jars) for one gateway: several can be signed in at once."""
    opened: list[aiohttp.ClientSession] = []

    def new(client: Gateway) -> aiohttp.ClientSession:
        session = aiohttp.ClientSession(
            base_url=str(client.make_url("")), cookie_jar=aiohttp.CookieJar(unsafe=True)
        )
        opened.append(session)
        return session

    yield new
    for session in opened:
        await session.close()


async def enrol(browser: aiohttp.ClientSession) -> str:
    """Password, then an authenticator app; returns where the gateway sends the browser next."""
    login = await portal_login(browser, USER, PASSWORD)
    assert login.status == 303 and login.headers["Location"] == "/.gateway/enrol?rd=%2F"
    html = await (await browser.get("/.gateway/enrol?rd=%2F")).text()
    done = await browser.post(
        "/.gateway/enrol?rd=%2F",
        data={"csrf_token": csrf_from_page(html), "code": code_for(secret_from_page(html))},
        allow_redirects=False,
    )
    assert done.status == 303
    return done.headers["Location"]


async def continue_from(browser: aiohttp.ClientSession, html: str) -> aiohttp.ClientResponse:
    """The page's "Continue" button: a form posted back to the recovery page."""
    return await browser.post(
        "/.gateway/recovery?rd=%2F",
        data={"csrf_token": csrf_from_page(html), "continue": "1"},
        allow_redirects=False,
    )


async def enrol_and_get_codes(browser: aiohttp.ClientSession) -> list[str]:
    assert await enrol(browser) == "/.gateway/recovery?rd=%2F"
    page = await browser.get("/.gateway/recovery?rd=%2F", allow_redirects=False)
    assert page.status == 200
    codes = CODE_RE.findall(await page.text())
    assert len(codes) == 10
    return codes


async def challenge_with(browser: aiohttp.ClientSession, code: str) -> aiohttp.ClientResponse:
    """Password, then the recovery-code page and its form."""
    login = await portal_login(browser, USER, PASSWORD)
    assert login.status == 303 and login.headers["Location"] == "/.gateway/challenge?rd=%2F"
    return await post_code(browser, code)


async def post_code(browser: aiohttp.ClientSession, code: str) -> aiohttp.ClientResponse:
    page = await browser.get("/.gateway/challenge?method=recovery&rd=%2F")
    assert page.status == 200
    html = await page.text()
    assert "Enter a recovery code" in html
    return await browser.post(
        "/.gateway/challenge?method=recovery&rd=%2F",
        data={"csrf_token": csrf_from_page(html), "code": code},
        allow_redirects=False,
    )


async def test_first_enrolment_shows_ten_codes_once(gateway: Any, browsers: Any) -> None:
    """Right after the first enrolment the browser lands on ten codes with a way on; reloading
    the page shows how many there are, never the codes again."""
    client = await gateway(RECOVERY_POLICY)
    browser = browsers(client)
    assert await enrol(browser) == "/.gateway/recovery?rd=%2F"
    page = await browser.get("/.gateway/recovery?rd=%2F", allow_redirects=False)
    html = await page.text()
    codes = CODE_RE.findall(html)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert page.headers["Cache-Control"] == "no-store"
    assert "This is the only time these codes are shown" in html
    assert "authenticator app" in html  # the method this user has
    assert CONTINUE_BUTTON.format(label="I have saved these codes — continue") in html
    onward = await continue_from(browser, html)
    assert onward.status == 303 and onward.headers["Location"] == "/"

    again = await (await browser.get("/.gateway/recovery?rd=%2F")).text()
    assert not CODE_RE.findall(again)
    assert not any(code in again or code.replace("-", "") in again for code in codes)
    assert "10 codes remain." in again and "Make new codes" in again

    record = await client.server.app[RUNTIME].store.get_enrolment(USER, "recovery")
    assert record is not None and len(record["codes"]) == 10
    assert not any(code.replace("-", "") in str(record) for code in codes)  # stored hashed
    assert (await browser.get("/")).status == 200  # the application, signed in


async def test_a_code_signs_in_once_and_says_how_many_remain(gateway: Any, browsers: Any) -> None:
    """A recovery code (typed in capitals with spaces) signs in once: the page after it says 9
    codes remain and leads on to the application; the same code again is refused."""
    client = await gateway(RECOVERY_POLICY)
    codes = await enrol_and_get_codes(browsers(client))

    second = browsers(client)
    login = await portal_login(second, USER, PASSWORD)
    challenge = await (await second.get(login.headers["Location"])).text()
    assert "A recovery code" in challenge and RECOVERY_OPTION in challenge
    answer = await post_code(second, codes[0].upper().replace("-", " "))
    assert answer.status == 303
    assert answer.headers["Location"] == "/.gateway/recovery/used?rd=%2F"
    used = await (await second.get(answer.headers["Location"])).text()
    assert "You signed in with a recovery code. 9 codes remain." in used
    assert CONTINUE_BUTTON.format(label="Continue") in used
    assert "Make new recovery codes" not in used  # plenty left
    assert await (await second.get("/")).text() == "application page /"

    third = browsers(client)
    refused = await challenge_with(third, codes[0])
    assert refused.status == 401
    html = await refused.text()
    assert WRONG_CODE in html and 'aria-invalid="true"' in html
    assert (await third.get("/", allow_redirects=False)).status == 303  # still not signed in


async def test_few_codes_left_suggests_new_ones(gateway: Any, browsers: Any) -> None:
    """With 3 codes or fewer left, the page after a sign-in links to making new ones."""
    client = await gateway(RECOVERY_POLICY)
    codes = await enrol_and_get_codes(browsers(client))
    for code in codes[:7]:
        answer = await challenge_with(browsers(client), code)
        assert answer.status == 303
    last = browsers(client)
    answer = await challenge_with(last, codes[7])
    used = await (await last.get(answer.headers["Location"])).text()
    assert "2 codes remain." in used
    assert 'href="/.gateway/recovery?rd=/">Make new recovery codes</a>' in used


async def test_new_codes_void_the_old_ones(gateway: Any, browsers: Any) -> None:
    """ "Make new codes" (a CSRF-checked form) shows ten new codes once, voids every old code, and
    tells the user by email."""
    client = await gateway(RECOVERY_POLICY)
    browser = browsers(client)
    old = await enrol_and_get_codes(browser)
    sent: list[tuple[str, str, str]] = []

    class Outbox:
        async def send_email(self, to: str, subject: str, body: str) -> None:
            sent.append((to, subject, body))

    client.server.app[RUNTIME].notifier = Outbox()
    page = await (await browser.get("/.gateway/recovery?rd=%2F")).text()
    forged = await browser.post(
        "/.gateway/recovery?rd=%2F", data={"csrf_token": "0" * 64}, allow_redirects=False
    )
    assert forged.status == 400
    made = await browser.post(
        "/.gateway/recovery?rd=%2F",
        data={"csrf_token": csrf_from_page(page)},
        allow_redirects=False,
    )
    assert made.status == 303 and made.headers["Location"] == "/.gateway/recovery?rd=%2F"
    shown = await (await browser.get(made.headers["Location"])).text()
    new = CODE_RE.findall(shown)
    assert len(new) == 10 and not set(new) & set(old)
    assert not CODE_RE.findall(await (await browser.get("/.gateway/recovery?rd=%2F")).text())
    assert sent and sent[0][0] == USER and REGENERATED.lower() in sent[0][1]

    refused = await challenge_with(browsers(client), old[1])
    assert refused.status == 401
    accepted = await challenge_with(browsers(client), new[1])
    assert accepted.status == 303


async def test_one_code_used_twice_at_once_signs_in_once(gateway: Any, browsers: Any) -> None:
    """Two sign-ins send the same code at the same moment: exactly one gets in, and the record
    loses exactly that code (compare-and-set in the store)."""
    client = await gateway(RECOVERY_POLICY)
    codes = await enrol_and_get_codes(browsers(client))
    first, second = browsers(client), browsers(client)
    pages = []
    for browser in (first, second):
        login = await portal_login(browser, USER, PASSWORD)
        assert login.headers["Location"] == "/.gateway/challenge?rd=%2F"
        page = await browser.get("/.gateway/challenge?method=recovery&rd=%2F")
        pages.append(csrf_from_page(await page.text()))
    answers = await asyncio.gather(
        *(
            browser.post(
                "/.gateway/challenge?method=recovery&rd=%2F",
                data={"csrf_token": token, "code": codes[4]},
                allow_redirects=False,
            )
            for browser, token in zip((first, second), pages, strict=True)
        )
    )
    assert sorted(answer.status for answer in answers) == [303, 401]
    record = await client.server.app[RUNTIME].store.get_enrolment(USER, "recovery")
    assert record is not None and len(record["codes"]) == 9


async def test_two_different_codes_at_once_both_work(gateway: Any, browsers: Any) -> None:
    """Two different codes at the same moment: both sign in (a lost compare-and-set is retried)."""
    client = await gateway(RECOVERY_POLICY)
    codes = await enrol_and_get_codes(browsers(client))
    first, second = browsers(client), browsers(client)
    tokens = []
    for browser in (first, second):
        await portal_login(browser, USER, PASSWORD)
        page = await browser.get("/.gateway/challenge?method=recovery&rd=%2F")
        tokens.append(csrf_from_page(await page.text()))
    answers = await asyncio.gather(
        *(
            browser.post(
                "/.gateway/challenge?method=recovery&rd=%2F",
                data={"csrf_token": token, "code": code},
                allow_redirects=False,
            )
            for browser, token, code in zip((first, second), tokens, codes[:2], strict=True)
        )
    )
    assert [answer.status for answer in answers] == [303, 303]
    record = await client.server.app[RUNTIME].store.get_enrolment(USER, "recovery")
    assert record is not None and len(record["codes"]) == 8


async def test_wrong_codes_count_toward_the_limit(gateway: Any, browsers: Any) -> None:
    """Wrong recovery codes end the pending sign-in after the usual number of tries."""
    client = await gateway(RECOVERY_POLICY)
    await enrol_and_get_codes(browsers(client))
    browser = browsers(client)
    await portal_login(browser, USER, PASSWORD)
    statuses = [(await post_code(browser, "abcde-12345")).status for _ in range(MAX_FAILURES)]
    assert statuses == [401] * (MAX_FAILURES - 1) + [429]


async def test_recovery_pages_need_a_verified_session(gateway: Any, browsers: Any) -> None:
    """Without a verified session the recovery pages send the browser to the challenge."""
    client = await gateway(RECOVERY_POLICY)
    browser = browsers(client)
    for path in ("/.gateway/recovery?rd=%2Fx", "/.gateway/recovery/used?rd=%2Fx"):
        answer = await browser.get(path, allow_redirects=False)
        assert answer.status == 303 and answer.headers["Location"] == "/.gateway/challenge?rd=%2Fx"
    await portal_login(browser, USER, PASSWORD)  # first factor only
    answer = await browser.get("/.gateway/recovery?rd=%2F", allow_redirects=False)
    assert answer.status == 303 and answer.headers["Location"] == "/.gateway/challenge?rd=%2F"


async def test_company_without_recovery_gets_none(gateway: Any, browsers: Any) -> None:
    """A company that does not allow recovery codes: no codes after enrolment, no recovery page,
    no recovery option at the challenge."""
    client = await gateway(TOTP_ONLY_POLICY)
    browser = browsers(client)
    assert await enrol(browser) == "/"
    page = await browser.get("/.gateway/recovery?rd=%2F", allow_redirects=False)
    assert page.status == 404 and not CODE_RE.findall(await page.text())
    post = await browser.post("/.gateway/recovery", data={}, allow_redirects=False)
    assert post.status == 400  # no CSRF token: refused before anything else
    assert await client.server.app[RUNTIME].store.get_enrolment(USER, "recovery") is None

    other = browsers(client)
    login = await portal_login(other, USER, PASSWORD)
    challenge = await (await other.get(login.headers["Location"])).text()
    assert "A recovery code" not in challenge
    asked = await other.get("/.gateway/challenge?method=recovery&rd=%2F")
    assert asked.status == 404


async def test_a_deferred_user_gets_no_codes(gateway: Any, browsers: Any) -> None:
    """Someone who put enrolment off has nothing to recover: no codes are made for them, so
    recovery codes never count as an enrolment of their own."""
    client = await gateway(DEFERRING_POLICY)
    browser = browsers(client)
    login = await portal_login(browser, USER, PASSWORD)
    page = await (await browser.get(login.headers["Location"])).text()
    deferred = await browser.post(
        "/.gateway/defer?rd=%2F", data={"csrf_token": csrf_from_page(page)}, allow_redirects=False
    )
    assert deferred.status == 303 and deferred.headers["Location"] == "/"
    answer = await browser.get("/.gateway/recovery?rd=%2F", allow_redirects=False)
    assert answer.status == 404
    assert await client.server.app[RUNTIME].store.list_methods(USER) == []


async def test_spend_is_compare_and_set(gateway: Any, browsers: Any) -> None:
    """Both uses read the record before either writes it back: the store's compare-and-set lets
    one through and makes the other look again, when the code is gone."""
    client = await gateway(RECOVERY_POLICY)
    codes = await enrol_and_get_codes(browsers(client))
    store = client.server.app[RUNTIME].store
    results: list[bool] = []
    replace = store.replace_enrolment

    async def counted(*args: Any) -> bool:
        results.append(await replace(*args))
        return results[-1]

    store.replace_enrolment = counted
    # Both read before either writes, whatever the scheduling (the match runs in a thread):
    # the first two reads wait for each other.
    read = store.get_enrolment
    both_read = asyncio.Barrier(2)
    reads = 0

    async def read_together(*args: Any) -> Any:
        nonlocal reads
        reads += 1
        record = await read(*args)
        if reads <= 2:
            await both_read.wait()
        return record

    store.get_enrolment = read_together
    left = await asyncio.gather(spend(store, USER, codes[2]), spend(store, USER, codes[2]))
    assert sorted(left, key=str) == [9, None]
    assert sorted(results) == [False, True]  # one won; the other saw the record had changed


async def test_the_signed_in_page_links_what_the_policy_allows(gateway: Any, browsers: Any) -> None:
    """Signed in, /.gateway/logout links the person's "Two-step sign-in" page, which links the
    recovery codes when the policy allows them (not passkeys, which it does not allow); nothing
    before the second factor."""
    client = await gateway(RECOVERY_POLICY)
    browser = browsers(client)
    await portal_login(browser, USER, PASSWORD)
    assert "/.gateway/account" not in await (await browser.get("/.gateway/logout")).text()
    html = await (await browser.get("/.gateway/enrol?rd=%2F")).text()
    await browser.post(
        "/.gateway/enrol?rd=%2F",
        data={"csrf_token": csrf_from_page(html), "code": code_for(secret_from_page(html))},
        allow_redirects=False,
    )
    page = await (await browser.get("/.gateway/logout")).text()
    assert '<a href="/.gateway/account">Your two-step sign-in</a>' in page
    page = await (await browser.get("/.gateway/account")).text()
    assert "/.gateway/recovery?rd=%2F.gateway%2Faccount" in page
    assert "/.gateway/passkeys" not in page  # this policy does not allow passkeys
