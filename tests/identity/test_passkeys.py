"""Passkeys over HTTP: the demo's legacy application behind an in-process gateway, a company
that allows passkeys, and a software authenticator answering the pages' options."""

from __future__ import annotations

import html
import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.clock import FixedClock
from gateway.factors import webauthn
from gateway.factors.passkey_records import add_credential
from gateway.factors.webauthn import CHALLENGE_TTL, REGISTER, RelyingParty
from gateway.handlers.account.passkeys import LAST_FACTOR
from gateway.handlers.shared.passkeys import BAD_NAME, EXPIRED, NO_SCRIPT, NOT_ADDED
from gateway.handlers.signin.passkeys import NOT_CHECKED, UNKNOWN
from gateway.keys import RUNTIME
from gateway.policy import load_policy_dir
from gateway.sessions import MAX_FAILURES
from tests.factors.test_webauthn import SoftAuthenticator
from tests.identity.test_intercept import app_login, cookie
from tests.support import csrf_from_page, intercept_app

Client = TestClient[Any, Any]
ALICE = "alice@example.com"
POLICY = """
company: Example Company
members:
  domains: [example.com]
methods:
  allowed: [webauthn, totp]
enforce_2fa: true
"""
OPTIONS = re.compile(r'data-options="([^"]*)"')
ENROL = "/.gateway/enrol?method=webauthn&rd=%2F"
CHALLENGE = "/.gateway/challenge?method=webauthn&rd=%2F"


class Mail:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    async def send_email(self, to: str, subject: str, body: str) -> None:
        self.sent.append((to, subject, body))


def origin(client: Client) -> str:
    return str(client.make_url("")).rstrip("/")


def options_of(page: str) -> str:
    match = OPTIONS.search(page)
    assert match, "no passkey options on the page"
    return html.unescape(match.group(1))


async def gateway(make_gateway: Any, legacy_server: TestServer, **kw: Any) -> Client:
    client: Client = await make_gateway(
        {"legacy": intercept_app(str(legacy_server.make_url("")))},
        policies={"example.yaml": POLICY},
        **kw,
    )
    return client


async def sign_in(client: Client, expected: str) -> str:
    """The application's password, then the gateway's page it leads to: its HTML."""
    client.session.cookie_jar.clear()
    login = await app_login(client, ALICE, "alice-password")
    assert login.status == 303
    assert login.headers["Location"] == expected
    page = await client.get(login.headers["Location"])
    assert page.status == 200
    return await page.text()


async def post(client: Client, url: str, page: str, **fields: str) -> Any:
    data = {"csrf_token": csrf_from_page(page), **fields}
    return await client.post(url, data=data, allow_redirects=False)


async def enrol(client: Client, authenticator: SoftAuthenticator, name: str = "Work laptop") -> Any:
    page = await sign_in(client, "/.gateway/enrol?rd=%2F")
    answer = authenticator.register(options_of(page), origin(client))
    return await post(client, ENROL, page, name=name, credential=answer)


async def record(client: Client) -> dict[str, Any] | None:
    result: dict[str, Any] | None = await client.app[RUNTIME].store.get_enrolment(ALICE, "webauthn")
    return result


async def test_enrolment_page_offers_a_named_passkey_with_script_allowed(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """The company's first method is passkeys: the enrolment page asks for a name, carries the
    options and the script, allows 'self' scripts only, and offers the app as another way."""
    client = await gateway(make_gateway, legacy_server)
    login = await app_login(client, ALICE, "alice-password")
    response = await client.get(login.headers["Location"])
    page = await response.text()
    assert 'label for="passkey-name"' in page
    assert '<script src="/.gateway/static/passkeys.js" defer></script>' in page
    assert "<noscript>" in page
    assert "Authenticator app" in page
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp
    script = await client.get("/.gateway/static/passkeys.js")
    assert script.status == 200
    other = await client.get("/.gateway/enrol?method=totp&rd=%2F")
    assert "script-src" not in other.headers["Content-Security-Policy"]


async def test_register_then_sign_in_with_the_passkey(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """A passkey added at enrolment opens the application and sends the notice; at the next
    sign-in the challenge asks for it and it opens the application again, its counter kept."""
    client = await gateway(make_gateway, legacy_server)
    mail = Mail()
    client.app[RUNTIME].notifier = mail
    authenticator = SoftAuthenticator(step=1)
    done = await enrol(client, authenticator)
    assert done.status == 303 and done.headers["Location"] == "/"
    assert cookie(client, "legacy_session") is not None
    saved = await record(client)
    assert saved is not None
    [credential] = saved["credentials"]
    assert credential["name"] == "Work laptop" and credential["id"] == authenticator.id
    assert mail.sent[0][0] == ALICE
    assert 'a passkey named "work laptop" was added' in mail.sent[0][1]

    page = await sign_in(client, "/.gateway/challenge?rd=%2F")
    assert "Use passkey" in page
    answer = authenticator.sign(options_of(page), origin(client))
    done = await post(client, CHALLENGE, page, credential=answer)
    assert done.status == 303 and done.headers["Location"] == "/"
    assert cookie(client, "legacy_session") is not None
    home = await client.get("/")
    assert f"Welcome, {ALICE}" in await home.text()
    saved = await record(client)
    assert saved is not None and saved["credentials"][0]["sign_count"] == 1


async def test_several_named_passkeys_each_sign_in(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """A user with two passkeys (say a laptop and a security key) is offered both and can sign
    in with either."""
    client = await gateway(make_gateway, legacy_server)
    laptop, key = SoftAuthenticator(step=0), SoftAuthenticator(step=1)
    assert (await enrol(client, laptop, "Laptop")).status == 303
    second = await enrol_second(client, key, "Blue key")
    assert [c["name"] for c in second["credentials"]] == ["Laptop", "Blue key"]
    for authenticator in (laptop, key, laptop):
        page = await sign_in(client, "/.gateway/challenge?rd=%2F")
        allowed = [c["id"] for c in json.loads(options_of(page))["allowCredentials"]]
        assert allowed == [laptop.id, key.id]
        answer = authenticator.sign(options_of(page), origin(client))
        done = await post(client, CHALLENGE, page, credential=answer)
        assert done.status == 303, await done.text()


async def enrol_second(
    client: Client, authenticator: SoftAuthenticator, name: str
) -> dict[str, Any]:
    """The handler's own registration check and store update, driven with the user's record
    (the page at /.gateway/passkeys is tested below)."""
    rt = client.app[RUNTIME]
    saved = await record(client)
    assert saved is not None
    existing = webauthn.credentials_of(saved)
    rp = RelyingParty.for_host(origin(client).split("//")[1], False, "Example Company")
    challenge = webauthn.new_challenge(REGISTER, rt.clock())
    options = webauthn.registration_options(rp, ALICE, saved["user_handle"], existing, challenge)
    credential = webauthn.verify_registration(
        rp, authenticator.register(options, rp.origin), challenge, name, existing, rt.clock()
    )
    assert await add_credential(rt.store, ALICE, saved["user_handle"], credential)
    result = await record(client)
    assert result is not None
    return result


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"origin": "http://evil.example"}, NOT_CHECKED),
        ({"rp_id": "evil.example"}, NOT_CHECKED),
        ({"challenge": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, NOT_CHECKED),
        ({"stranger": True}, UNKNOWN),
    ],
    ids=["wrong-origin", "wrong-rp-id", "other-challenge", "unknown-credential"],
)
async def test_sign_in_refusals_count_as_failures(
    make_gateway: Any, legacy_server: TestServer, change: dict[str, Any], message: str
) -> None:
    """An answer made for another origin, another RP ID or another challenge, or by a passkey
    that is not the user's, is refused with a plain message and counts as a wrong attempt."""
    client = await gateway(make_gateway, legacy_server)
    authenticator = SoftAuthenticator(step=1)
    assert (await enrol(client, authenticator)).status == 303
    page = await sign_in(client, "/.gateway/challenge?rd=%2F")
    who = SoftAuthenticator() if change.pop("stranger", False) else authenticator
    answer = who.sign(options_of(page), change.pop("origin", origin(client)), **change)
    refused = await post(client, CHALLENGE, page, credential=answer)
    assert refused.status == 401
    text = await refused.text()
    assert html.escape(message, quote=True) in text and 'role="alert"' in text
    assert cookie(client, "legacy_session") is None
    # the page that says so carries a new challenge, and the right passkey still works
    answer = authenticator.sign(options_of(text), origin(client))
    done = await post(client, CHALLENGE, text, credential=answer)
    assert done.status == 303


async def test_a_replayed_answer_is_refused(make_gateway: Any, legacy_server: TestServer) -> None:
    """The same signed answer posted twice (its challenge used up), or once more after a fresh
    page (another challenge waiting), is refused: challenges are single use."""
    client = await gateway(make_gateway, legacy_server)
    authenticator = SoftAuthenticator(step=0)
    assert (await enrol(client, authenticator)).status == 303
    page = await sign_in(client, "/.gateway/challenge?rd=%2F")
    answer = authenticator.sign(options_of(page), origin(client))
    first = await post(client, CHALLENGE, page, credential=answer)
    assert first.status == 303

    page = await sign_in(client, "/.gateway/challenge?rd=%2F")
    again = await post(client, CHALLENGE, page, credential=answer)
    assert again.status == 401
    text = await again.text()
    twice = await post(client, CHALLENGE, text, credential=answer)
    assert twice.status == 401
    assert cookie(client, "legacy_session") is None


async def test_a_cloned_authenticator_is_refused(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """A counter that does not go past the one last seen (a copy of the key) is refused."""
    client = await gateway(make_gateway, legacy_server)
    authenticator = SoftAuthenticator(step=1)
    assert (await enrol(client, authenticator)).status == 303
    page = await sign_in(client, "/.gateway/challenge?rd=%2F")
    done = await post(
        client, CHALLENGE, page, credential=authenticator.sign(options_of(page), origin(client))
    )
    assert done.status == 303
    authenticator.sign_count = 0  # the clone is where the original was before that sign-in
    page = await sign_in(client, "/.gateway/challenge?rd=%2F")
    clone = authenticator.sign(options_of(page), origin(client))
    refused = await post(client, CHALLENGE, page, credential=clone)
    assert refused.status == 401


async def test_an_expired_challenge_is_refused(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """An answer to a page older than CHALLENGE_TTL is refused with "took too long"."""
    clock = FixedClock(1_800_000_000.0)
    client = await gateway(make_gateway, legacy_server, clock=clock)
    authenticator = SoftAuthenticator(step=1)
    assert (await enrol(client, authenticator)).status == 303
    page = await sign_in(client, "/.gateway/challenge?rd=%2F")
    clock.advance(CHALLENGE_TTL + 1)
    answer = authenticator.sign(options_of(page), origin(client))
    refused = await post(client, CHALLENGE, page, credential=answer)
    assert refused.status == 401
    assert EXPIRED in await refused.text()


async def test_posts_need_the_csrf_token(make_gateway: Any, legacy_server: TestServer) -> None:
    """Without its CSRF token the registration and the sign-in are refused before anything is
    checked or stored."""
    client = await gateway(make_gateway, legacy_server)
    authenticator = SoftAuthenticator()
    page = await sign_in(client, "/.gateway/enrol?rd=%2F")
    answer = authenticator.register(options_of(page), origin(client))
    refused = await client.post(
        ENROL, data={"name": "Laptop", "credential": answer}, allow_redirects=False
    )
    assert refused.status == 400
    assert await record(client) is None
    assert (await post(client, ENROL, page, name="Laptop", credential=answer)).status == 303

    page = await sign_in(client, "/.gateway/challenge?rd=%2F")
    answer = authenticator.sign(options_of(page), origin(client))
    refused = await client.post(CHALLENGE, data={"credential": answer}, allow_redirects=False)
    assert refused.status == 400
    assert cookie(client, "legacy_session") is None


async def test_registration_refusals(make_gateway: Any, legacy_server: TestServer) -> None:
    """Registration from another origin or RP ID stores nothing; no name, or no answer at all
    (no JavaScript), says what to do; the page is shown again with a new challenge."""
    client = await gateway(make_gateway, legacy_server)
    authenticator = SoftAuthenticator()
    page = await sign_in(client, "/.gateway/enrol?rd=%2F")
    for change in ({"origin": "http://evil.example"}, {"rp_id": "evil.example"}):
        answer = authenticator.register(
            options_of(page), change.get("origin", origin(client)), rp_id=change.get("rp_id")
        )
        refused = await post(client, ENROL, page, name="Laptop", credential=answer)
        assert refused.status == 400
        page = await refused.text()
        assert "The passkey could not be added" in page
    answer = authenticator.register(options_of(page), origin(client))
    refused = await post(client, ENROL, page, name="  ", credential=answer)
    assert refused.status == 400
    page = await refused.text()
    assert html.escape(BAD_NAME, quote=True) in page and 'aria-invalid="true"' in page
    refused = await post(client, ENROL, page, name="Laptop", credential="")
    assert refused.status == 400
    page = await refused.text()
    assert html.escape(NO_SCRIPT, quote=True) in page
    assert await record(client) is None
    answer = authenticator.register(options_of(page), origin(client))
    assert (await post(client, ENROL, page, name="Laptop", credential=answer)).status == 303


async def test_too_many_wrong_answers_end_the_sign_in(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """Wrong passkey answers count like wrong codes: at the limit the password is asked again."""
    client = await gateway(make_gateway, legacy_server)
    authenticator = SoftAuthenticator(step=1)
    assert (await enrol(client, authenticator)).status == 303
    page = await sign_in(client, "/.gateway/challenge?rd=%2F")
    stranger = SoftAuthenticator()
    for attempt in range(MAX_FAILURES):
        answer = stranger.sign(options_of(page), origin(client))
        response = await post(client, CHALLENGE, page, credential=answer)
        if attempt < MAX_FAILURES - 1:
            assert response.status == 401
            page = await response.text()
    assert response.status == 429


async def test_an_enrolled_user_cannot_add_a_passkey_before_the_second_factor(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """With only the password, a user who has a passkey is sent to the challenge: a
    registration posted anyway adds nothing."""
    client = await gateway(make_gateway, legacy_server)
    assert (await enrol(client, SoftAuthenticator())).status == 303
    page = await sign_in(client, "/.gateway/challenge?rd=%2F")
    enrol_page = await client.get(ENROL, allow_redirects=False)
    assert enrol_page.status == 303
    assert enrol_page.headers["Location"].startswith("/.gateway/challenge")
    intruder = SoftAuthenticator()
    options = json.dumps({"challenge": "AAAA", "rp": {"id": "127.0.0.1"}})
    answer = intruder.register(options, origin(client))
    refused = await post(client, ENROL, page, name="Mine now", credential=answer)
    assert refused.status == 303
    assert refused.headers["Location"].startswith("/.gateway/challenge")
    saved = await record(client)
    assert saved is not None and len(saved["credentials"]) == 1


# --- /.gateway/passkeys: the signed-in user's own passkeys ----------------------------------

MANAGE = "/.gateway/passkeys"
REMOVE = "/.gateway/passkeys/remove"


async def manage_page(client: Client, status: int = 200) -> str:
    response = await client.get(MANAGE, allow_redirects=False)
    assert response.status == status, await response.text()
    return await response.text()


async def add_on_page(
    client: Client, authenticator: SoftAuthenticator, name: str, page: str | None = None
) -> Any:
    page = page or await manage_page(client)
    answer = authenticator.register(options_of(page), origin(client))
    return await post(client, MANAGE, page, name=name, credential=answer)


def audited(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.audit"]
    return [line for line in lines if line["event"] == event]


async def test_a_signed_in_user_adds_a_second_passkey_and_signs_in_with_either(
    make_gateway: Any, legacy_server: TestServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The page lists the passkey (name, added, never used), excludes it from the new options,
    adds a second named one (audited, notice sent), and each passkey signs in later."""
    caplog.set_level(logging.INFO, logger="gateway.audit")
    client = await gateway(make_gateway, legacy_server)
    mail = Mail()
    client.app[RUNTIME].notifier = mail
    laptop, key = SoftAuthenticator(step=1), SoftAuthenticator(step=0)
    assert (await enrol(client, laptop, "Work laptop")).status == 303
    mail.sent.clear()

    response = await client.get(MANAGE)
    assert "script-src 'self';" in response.headers["Content-Security-Policy"]
    page = await response.text()
    assert "<h3" in page and "Work laptop" in page and "Not used to sign in yet." in page
    assert '<script src="/.gateway/static/passkeys.js" defer></script>' in page
    assert "Remove Work laptop" not in page  # the only second factor: not offered
    assert 'data-taken="[&#34;work laptop&#34;]"' in page  # refused before the device is asked
    options = json.loads(options_of(page))
    assert [c["id"] for c in options["excludeCredentials"]] == [laptop.id]
    saved = await record(client)
    assert saved is not None and options["user"]["id"] == saved["user_handle"]

    added = await add_on_page(client, key, "Blue key", page)
    assert added.status == 303 and added.headers["Location"] == MANAGE
    saved = await record(client)
    assert saved is not None
    assert [c["name"] for c in saved["credentials"]] == ["Work laptop", "Blue key"]
    assert mail.sent[0][0] == ALICE and 'a passkey named "blue key" was added' in mail.sent[0][1]
    [line] = [a for a in audited(caplog, "factor_added") if a.get("name") == "Blue key"]
    assert line["method"] == "webauthn" and line["user"] == ALICE
    page = await manage_page(client)
    assert 'role="status"' in page and "The passkey &#34;Blue key&#34; was added." in page
    assert "Remove Work laptop" in page and "Remove Blue key" in page

    for authenticator in (key, laptop):
        page = await sign_in(client, "/.gateway/challenge?rd=%2F")
        answer = authenticator.sign(options_of(page), origin(client))
        done = await post(client, CHALLENGE, page, credential=answer)
        assert done.status == 303 and done.headers["Location"] == "/"
    page = await manage_page(client)
    assert "Last used <time datetime=" in page
    assert "Not used to sign in yet." not in page


async def test_a_name_in_use_or_an_authenticator_already_added_is_refused(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """A name another passkey uses (in any case) is refused next to the name field; the same
    authenticator again is refused; a failed answer stores nothing and the page can be used
    again."""
    client = await gateway(make_gateway, legacy_server)
    laptop = SoftAuthenticator()
    assert (await enrol(client, laptop, "Work laptop")).status == 303
    refused = await add_on_page(client, SoftAuthenticator(), "WORK  laptop")
    assert refused.status == 400
    page = await refused.text()
    assert html.escape(BAD_NAME, quote=True) in page and 'aria-invalid="true"' in page
    assert 'value="WORK  laptop"' in page
    again = await add_on_page(client, laptop, "Same laptop", page)
    assert again.status == 400
    page = await again.text()
    assert html.escape(NOT_ADDED, quote=True) in page
    wrong = SoftAuthenticator().register(options_of(page), "http://evil.example")
    refused = await post(client, MANAGE, page, name="Phone", credential=wrong)
    assert refused.status == 400
    saved = await record(client)
    assert saved is not None and len(saved["credentials"]) == 1
    assert (await add_on_page(client, SoftAuthenticator(), "Phone")).status == 303


async def test_removing_a_passkey_tells_the_user_and_is_audited(
    make_gateway: Any, legacy_server: TestServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Of two passkeys one is removed (notice, audit line); the removed one no longer signs in,
    the other does."""
    caplog.set_level(logging.INFO, logger="gateway.audit")
    client = await gateway(make_gateway, legacy_server)
    mail = Mail()
    client.app[RUNTIME].notifier = mail
    laptop, key = SoftAuthenticator(), SoftAuthenticator()
    assert (await enrol(client, laptop, "Work laptop")).status == 303
    assert (await add_on_page(client, key, "Blue key")).status == 303
    mail.sent.clear()
    page = await manage_page(client)
    removed = await post(client, REMOVE, page, credential_id=key.id)
    assert removed.status == 303 and removed.headers["Location"] == MANAGE
    saved = await record(client)
    assert saved is not None and [c["name"] for c in saved["credentials"]] == ["Work laptop"]
    assert mail.sent[0][0] == ALICE
    assert 'the passkey named "blue key" was removed' in mail.sent[0][1]
    [line] = audited(caplog, "factor_removed")
    assert line["method"] == "webauthn" and line["user"] == ALICE and line["name"] == "Blue key"
    page = await manage_page(client)
    assert "The passkey &#34;Blue key&#34; was removed." in page
    # posted twice (another tab): nothing more to remove, and the page says so
    again = await post(client, REMOVE, page, credential_id=key.id)
    assert again.status == 404 and "no longer on your account" in await again.text()

    page = await sign_in(client, "/.gateway/challenge?rd=%2F")
    refused = await post(
        client, CHALLENGE, page, credential=key.sign(options_of(page), origin(client))
    )
    assert refused.status == 401
    page = await refused.text()
    done = await post(
        client, CHALLENGE, page, credential=laptop.sign(options_of(page), origin(client))
    )
    assert done.status == 303


async def test_the_last_second_factor_cannot_be_removed(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """The only passkey of a user with no other method is kept, and the page says why; with an
    authenticator app as well, the last passkey can go (and passkeys are no longer asked for)."""
    client = await gateway(make_gateway, legacy_server)
    mail = Mail()
    client.app[RUNTIME].notifier = mail
    laptop = SoftAuthenticator()
    assert (await enrol(client, laptop, "Work laptop")).status == 303
    mail.sent.clear()
    page = await manage_page(client)
    refused = await post(client, REMOVE, page, credential_id=laptop.id)
    assert refused.status == 409
    text = await refused.text()
    assert html.escape(LAST_FACTOR, quote=True) in text and 'role="alert"' in text
    saved = await record(client)
    assert saved is not None and len(saved["credentials"]) == 1
    assert not mail.sent

    rt = client.app[RUNTIME]
    await rt.store.put_enrolment(ALICE, "totp", {"secret": "stand-in"})
    page = await manage_page(client)
    assert "Remove Work laptop" in page
    removed = await post(client, REMOVE, page, credential_id=laptop.id)
    assert removed.status == 303
    assert await record(client) is None
    assert await rt.store.list_methods(ALICE) == ["totp"]
    page = await manage_page(client)
    assert "You have no passkeys yet." in page


async def test_the_page_needs_a_verified_session(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """No session, or only the password: the page and its forms send the browser to the
    challenge, and nothing changes."""
    client = await gateway(make_gateway, legacy_server)
    laptop = SoftAuthenticator()
    assert (await enrol(client, laptop, "Work laptop")).status == 303
    manage = await manage_page(client)
    expected = "/.gateway/challenge?rd=%2F.gateway%2Fpasskeys"

    client.session.cookie_jar.clear()
    anonymous = await client.get(MANAGE, allow_redirects=False)
    assert anonymous.status == 303 and anonymous.headers["Location"] == expected

    page = await sign_in(client, "/.gateway/challenge?rd=%2F")  # password only
    pending = await client.get(MANAGE, allow_redirects=False)
    assert pending.status == 303 and pending.headers["Location"] == expected
    answer = SoftAuthenticator().register(options_of(manage), origin(client))
    for url, fields in ((MANAGE, {"name": "Mine now", "credential": answer}), (REMOVE, {})):
        fields = {**fields, "credential_id": laptop.id}
        refused = await post(client, url, page, **fields)
        assert refused.status == 303 and refused.headers["Location"] == expected
    saved = await record(client)
    assert saved is not None and [c["name"] for c in saved["credentials"]] == ["Work laptop"]


async def test_the_page_posts_need_the_csrf_token(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """Adding and removing without the form's CSRF token are refused before anything changes."""
    client = await gateway(make_gateway, legacy_server)
    laptop = SoftAuthenticator()
    assert (await enrol(client, laptop, "Work laptop")).status == 303
    assert (await add_on_page(client, SoftAuthenticator(), "Blue key")).status == 303
    page = await manage_page(client)
    answer = SoftAuthenticator().register(options_of(page), origin(client))
    for url, data in (
        (MANAGE, {"name": "Phone", "credential": answer}),
        (REMOVE, {"credential_id": laptop.id}),
        (REMOVE, {"credential_id": laptop.id, "csrf_token": "forged"}),
    ):
        refused = await client.post(url, data=data, allow_redirects=False)
        assert refused.status == 400
    saved = await record(client)
    assert saved is not None and len(saved["credentials"]) == 2


async def test_a_company_without_passkeys_has_no_such_page(
    make_gateway: Any, legacy_server: TestServer, tmp_path: Path
) -> None:
    """Once the company's policy no longer allows passkeys, the page is not found (and its
    forms change nothing)."""
    client = await gateway(make_gateway, legacy_server)
    laptop = SoftAuthenticator()
    assert (await enrol(client, laptop, "Work laptop")).status == 303
    page = await manage_page(client)
    rt = client.app[RUNTIME]
    changed = tmp_path / "changed-policies"
    shutil.copytree(rt.settings.policy_dir, changed)
    (changed / "example.yaml").write_text(POLICY.replace("[webauthn, totp]", "[totp]"))
    rt.policy.replace(load_policy_dir(changed, known_apps=["legacy"]))
    assert "There is no gateway page at this address." in await manage_page(client, 404)
    refused = await post(client, REMOVE, page, credential_id=laptop.id)
    assert refused.status == 404
    saved = await record(client)
    assert saved is not None and len(saved["credentials"]) == 1
