"""Portal mode signing in through a real OpenID provider (node-oidc-provider, tests/oidc/
provider.mjs) over HTTP, through the gateway: the code flow with PKCE, then the gateway's own
second factor, or the provider's where the company's policy accepts it; and every answer the
gateway must refuse."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.oidc.support import (
    Provider,
    at_provider,
    oidc_app,
    path_of,
    rotate_keys,
    set_next,
    sign_in_at_provider,
    start_provider,
)
from tests.support import DEFAULT_POLICY, enrol_totp, free_port

MFA_POLICY = """
company: MFA Example
members:
  domains: [mfa.example]
  groups: [mfa-staff]
enforce_2fa: true
provider_mfa: accept
"""
POLICIES = {"example.yaml": DEFAULT_POLICY, "mfa.yaml": MFA_POLICY}


async def gateway(
    make_gateway: Any, upstream_url: str, tmp_path: Path, issuer: str, **oidc: Any
) -> Any:
    app = oidc_app(upstream_url, issuer, tmp_path / "client-secret", **oidc)
    return await make_gateway({"legacy": app}, policies=POLICIES)


async def test_sign_in_then_the_gateways_own_second_factor(
    make_gateway: Any, upstream_url: str, tmp_path: Path, provider: Provider
) -> None:
    """A sign-in at the provider is the first factor: the gateway then asks its own second factor
    (here the first enrolment), and only then lets the browser through to the application."""
    client = await gateway(make_gateway, upstream_url, tmp_path, provider.issuer)
    before = await client.get("/", allow_redirects=False)
    assert before.status == 303 and before.headers["Location"].startswith("/.gateway/login")
    callback = await sign_in_at_provider(client, "alice@example.com", rd="/private")
    answer = await client.get(callback, allow_redirects=False)
    assert answer.status == 303, await answer.text()
    assert answer.headers["Location"].startswith("/.gateway/enrol"), answer.headers["Location"]
    meanwhile = await client.get("/", allow_redirects=False)
    assert meanwhile.status == 303  # the first factor alone does not pass
    _, done = await enrol_totp(client, answer.headers["Location"])
    assert done.headers["Location"] == "/private"
    through = await client.get("/", allow_redirects=False)
    assert through.status == 200, await through.text()
    assert "alice@example.com" in await through.text()  # the identity headers, echoed


def audited(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.audit"]
    return [line for line in lines if line["event"] == event]


async def test_provider_mfa_counts_where_the_policy_accepts_it(
    make_gateway: Any,
    upstream_url: str,
    tmp_path: Path,
    provider: Provider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """bob's company says provider_mfa: accept: an ID token whose amr holds mfa verifies the
    session at once; one with a password alone still goes to the gateway's own factor."""
    client = await gateway(make_gateway, upstream_url, tmp_path, provider.issuer)
    callback = await sign_in_at_provider(client, "bob@mfa.example", rd="/x", amr="pwd")
    answer = await client.get(callback, allow_redirects=False)
    assert answer.headers["Location"].startswith("/.gateway/enrol")
    callback = await sign_in_at_provider(client, "bob@mfa.example", rd="/x", amr="pwd,mfa")
    answer = await client.get(callback, allow_redirects=False)
    assert answer.status == 303 and answer.headers["Location"] == "/x", await answer.text()
    through = await client.get("/", allow_redirects=False)
    assert through.status == 200 and "bob@mfa.example" in await through.text()
    [first, _] = audited(caplog, "first_factor_ok")
    assert (first["via"], first["user"], first["company"]) == ("oidc", "bob@mfa.example", "mfa")
    [second] = audited(caplog, "second_factor_ok")
    assert second["via"] == "provider_mfa"


async def test_provider_mfa_is_not_enough_for_a_company_that_asks(
    make_gateway: Any, upstream_url: str, tmp_path: Path, provider: Provider
) -> None:
    """alice's company says nothing about provider_mfa: the gateway asks its own, whatever the
    provider's amr and acr say."""
    client = await gateway(
        make_gateway, upstream_url, tmp_path, provider.issuer,
        provider_mfa={"acr": ["urn:example:loa:mfa"]},
    )  # fmt: skip
    callback = await sign_in_at_provider(
        client, "alice@example.com", amr="mfa,hwk", acr="urn:example:loa:mfa"
    )
    answer = await client.get(callback, allow_redirects=False)
    assert answer.headers["Location"].startswith("/.gateway/enrol")


async def test_a_replayed_state_is_refused(
    make_gateway: Any,
    upstream_url: str,
    tmp_path: Path,
    provider: Provider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The callback's state is taken once: the same answer again is refused, and signs no one in
    (nor does it end the sign-in it replays)."""
    client = await gateway(make_gateway, upstream_url, tmp_path, provider.issuer)
    callback = await sign_in_at_provider(client, "alice@example.com")
    first = await client.get(callback, allow_redirects=False)
    assert first.status == 303 and first.headers["Location"].startswith("/.gateway/enrol")
    again = await client.get(callback, allow_redirects=False)
    assert again.status == 403, await again.text()
    assert "used already" in await again.text()
    [refusal] = audited(caplog, "oidc_refused")
    assert refusal["reason"] == "state unknown, used or expired"


async def test_a_callback_in_another_browser_is_refused(
    make_gateway: Any, upstream_url: str, tmp_path: Path, provider: Provider
) -> None:
    """The state is bound to the browser that began the sign-in (its gateway_oidc cookie): an
    answer carried to another browser (a login CSRF) signs nobody in there."""
    client = await gateway(make_gateway, upstream_url, tmp_path, provider.issuer)
    callback = await sign_in_at_provider(client, "alice@example.com")
    client.session.cookie_jar.clear()
    answer = await client.get(callback, allow_redirects=False)
    assert answer.status == 403, await answer.text()


async def refused(client: Any, provider: Provider, account: str = "alice@example.com") -> Any:
    callback = await sign_in_at_provider(client, account)
    answer = await client.get(callback, allow_redirects=False)
    assert answer.status == 403, await answer.text()
    assert "could not be verified" in await answer.text()
    after = await client.get("/", allow_redirects=False)
    assert after.status == 303 and after.headers["Location"].startswith("/.gateway/login")
    return answer


async def test_refused_id_tokens(
    make_gateway: Any, upstream_url: str, tmp_path: Path, provider: Provider
) -> None:
    """Each of these ID tokens is refused, and nobody is signed in: a signature that does not
    hold (the payload changed after signing), a token for another audience, one issued to
    another client (azp), another sign-in's nonce (each of these three signed with the provider's
    own key), one that expired (the provider's clock two hours behind while it answers), and one
    whose email the provider has not verified."""
    client = await gateway(make_gateway, upstream_url, tmp_path, provider.issuer)
    for tamper in ("signature", "audience", "azp", "nonce"):
        await set_next(provider, tamper=tamper)
        await refused(client, provider)
    await set_next(provider, clock=-7200)
    await refused(client, provider)
    await refused(client, provider, "eve@example.com")


async def test_keys_rotated_at_the_provider_are_fetched_again(
    make_gateway: Any, upstream_url: str, tmp_path: Path, provider: Provider, monkeypatch: Any
) -> None:
    """A token signed with a key the gateway has not seen (the provider rotated its keys) makes
    the gateway fetch the JWKS again, once, and the sign-in goes on."""
    monkeypatch.setattr("gateway.oidc_client.KEYS_REFETCH_PAUSE", 0.0)
    client = await gateway(make_gateway, upstream_url, tmp_path, provider.issuer)
    first = await client.get(await sign_in_at_provider(client, "alice@example.com"))
    assert first.status == 200  # the keys are kept from here
    await rotate_keys(provider)
    await set_next(provider, tamper="rotated")
    callback = await sign_in_at_provider(client, "alice@example.com")
    answer = await client.get(callback, allow_redirects=False)
    assert answer.status == 303 and answer.headers["Location"].startswith("/.gateway/enrol")


async def test_provider_unreachable_is_the_503_page(
    make_gateway: Any, upstream_url: str, tmp_path: Path
) -> None:
    """No provider at the issuer: the login page is a 503 (fail closed), never a 500, and the
    application stays out of reach."""
    client = await gateway(make_gateway, upstream_url, tmp_path, f"http://127.0.0.1:{free_port()}")
    answer = await client.get("/.gateway/login?rd=/", allow_redirects=False)
    assert answer.status == 503, await answer.text()
    assert "Sign-in is unavailable" in await answer.text()
    assert (await client.get("/", allow_redirects=False)).status == 303


async def test_the_authorization_request(
    make_gateway: Any, upstream_url: str, tmp_path: Path, provider: Provider
) -> None:
    """The login page sends the browser to the provider with the code flow, S256 PKCE, a state
    and a nonce, the scopes and this gateway's callback; it binds the browser with a cookie."""
    client = await gateway(make_gateway, upstream_url, tmp_path, provider.issuer)
    login = await client.get("/.gateway/login?rd=/", allow_redirects=False)
    location = login.headers["Location"]
    assert location.startswith(f"{provider.issuer}/auth?")
    for part in ("response_type=code", "code_challenge_method=S256", "state=", "nonce=",
                 "scope=openid+email+profile", "redirect_uri=http%3A%2F%2F127.0.0.1%3A"):  # fmt: skip
        assert part in location, part
    assert login.headers["Set-Cookie"].startswith("gateway_oidc_")
    assert "HttpOnly" in login.headers["Set-Cookie"]
    callback = await at_provider(location, "alice@example.com")
    assert "state=" in path_of(callback)


async def test_a_refusal_at_the_provider_and_an_answer_from_another_issuer(
    make_gateway: Any, upstream_url: str, tmp_path: Path, provider: Provider
) -> None:
    """The provider's error answer (the person said no) signs nobody in; nor does an answer whose
    iss (RFC 9207) names another issuer than the one the sign-in went to (a mix-up)."""
    client = await gateway(make_gateway, upstream_url, tmp_path, provider.issuer)
    login = await client.get("/.gateway/login?rd=/", allow_redirects=False)
    denied = await at_provider(login.headers["Location"], "alice@example.com", deny=True)
    assert "error=access_denied" in denied
    answer = await client.get(path_of(denied), allow_redirects=False)
    assert answer.status == 403 and "did not sign you in" in await answer.text()
    callback = await sign_in_at_provider(client, "alice@example.com")
    assert "iss=" in callback
    mixed = re.sub(r"iss=[^&]*", "iss=https%3A%2F%2Fevil.example", callback)
    answer = await client.get(mixed, allow_redirects=False)
    assert answer.status == 403 and "could not be verified" in await answer.text()
    assert (await client.get("/", allow_redirects=False)).status == 303


async def test_provider_gone_before_the_callback_is_the_503_page(
    make_gateway: Any, upstream_url: str, tmp_path: Path
) -> None:
    """A provider of this test's own stops between its login and the callback: the code cannot
    be exchanged, the callback is the 503 page, and nobody is signed in."""
    (tmp_path / "own-provider").mkdir()
    own = start_provider(tmp_path / "own-provider")
    try:
        client = await gateway(make_gateway, upstream_url, tmp_path, own.issuer)
        callback = await sign_in_at_provider(client, "alice@example.com")
    finally:
        own.stop()
    answer = await client.get(callback, allow_redirects=False)
    assert answer.status == 503, await answer.text()
    assert "Sign-in is unavailable" in await answer.text()
    assert (await client.get("/", allow_redirects=False)).status == 303


async def test_groups_from_a_claim_place_the_user_and_go_upstream(
    make_gateway: Any, upstream_url: str, tmp_path: Path, provider: Provider
) -> None:
    """With groups_claim, the ID token's groups are the user's: carol, of no listed domain, is a
    member of the MFA company through her group (its provider_mfa: accept lets her provider's
    second factor through), and the application gets her groups in Remote-Groups."""
    client = await gateway(
        make_gateway, upstream_url, tmp_path, provider.issuer, groups_claim="groups"
    )
    callback = await sign_in_at_provider(client, "carol@elsewhere.example", rd="/g", amr="mfa")
    answer = await client.get(callback, allow_redirects=False)
    assert answer.status == 303 and answer.headers["Location"] == "/g", await answer.text()
    echoed = await (await client.get("/", allow_redirects=False)).json()
    headers = {name.lower(): value for name, value in echoed["headers"]}
    assert headers["remote-user"] == "carol@elsewhere.example"
    assert headers["remote-groups"] == "mfa-staff,readers"


async def test_odd_cookies_and_states_of_non_ascii_letters_are_not_taken(
    make_gateway: Any, upstream_url: str, tmp_path: Path, provider: Provider
) -> None:
    """A state is taken only when it is one this gateway could have made: 43 characters of
    A-Z, a-z, 0-9, - and _ (Arabic-Indic digits or a sharp s are letters and digits to
    str.isalnum, not to the gateway); an odd cookie of a sign-in begun is never sent back. The
    pages are a redirect to the provider or the refusal, never a 500."""
    client = await gateway(make_gateway, upstream_url, tmp_path, provider.issuer)
    for odd in ("\u0663" * 43, "\u00df" * 43, "\uff21" * 43):
        client.session.cookie_jar.clear()
        cookies = f"gateway_oidc={odd}; gateway_oidc_0123456789abcdef={odd}"
        login = await client.get(
            "/.gateway/login?rd=/", headers={"Cookie": cookies}, allow_redirects=False
        )
        assert login.status == 303, await login.text()
        for line in login.headers.getall("Set-Cookie"):
            assert line.isascii() and odd not in line, line
        answer = await client.get(f"/.gateway/oidc/callback?state={odd}&code=c")
        assert answer.status == 403 and "not one the gateway asked for" in await answer.text()


def store_rows(tmp_path: Path) -> int:
    """Rows in every table of the gateway's SQLite store (tests.support puts it in tmp_path)."""
    with contextlib.closing(sqlite3.connect(tmp_path / "gateway.db")) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        count = 'SELECT COUNT(*) FROM "{}"'
        return sum(db.execute(count.format(table)).fetchone()[0] for table in tables)


async def test_anonymous_visits_to_the_login_page_write_nothing_to_the_store(
    make_gateway: Any, upstream_url: str, tmp_path: Path, provider: Provider
) -> None:
    """A sign-in begun is kept in the browser (an encrypted cookie), not in the store: a flood of
    anonymous visits to the login page fills neither Redis nor SQLite. Only a sign-in the
    provider vouched for leaves a mark (its state, used once)."""
    client = await gateway(make_gateway, upstream_url, tmp_path, provider.issuer)
    before = store_rows(tmp_path)
    for _ in range(25):
        client.session.cookie_jar.clear()
        login = await client.get("/.gateway/login?rd=/", allow_redirects=False)
        assert login.status == 303, await login.text()
    assert store_rows(tmp_path) == before
    callback = await sign_in_at_provider(client, "alice@example.com")
    assert store_rows(tmp_path) == before
    answer = await client.get(callback, allow_redirects=False)
    assert answer.status == 303 and answer.headers["Location"].startswith("/.gateway/enrol")


async def test_a_replayed_callback_with_the_sign_ins_cookie_is_refused(
    make_gateway: Any, upstream_url: str, tmp_path: Path, provider: Provider
) -> None:
    """Whoever kept the sign-in's cookie and its callback cannot use them again: the callback
    signs nobody in a second time."""
    client = await gateway(make_gateway, upstream_url, tmp_path, provider.issuer)
    callback = await sign_in_at_provider(client, "alice@example.com")
    kept = {cookie.key: cookie.value for cookie in client.session.cookie_jar}
    first = await client.get(callback, allow_redirects=False)
    assert first.status == 303 and first.headers["Location"].startswith("/.gateway/enrol")
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies(kept)
    again = await client.get(callback, allow_redirects=False)
    assert again.status == 403, await again.text()
    assert (await client.get("/", allow_redirects=False)).status == 303


async def test_sign_ins_begun_in_two_tabs_both_come_back(
    make_gateway: Any, upstream_url: str, tmp_path: Path, provider: Provider
) -> None:
    """Two tabs each begin a sign-in: each one's callback finds its own, whichever comes first;
    a browser keeps at most a few sign-ins begun, the oldest given up."""
    client = await gateway(make_gateway, upstream_url, tmp_path, provider.issuer)
    first = await client.get("/.gateway/login?rd=/one", allow_redirects=False)
    second = await client.get("/.gateway/login?rd=/two", allow_redirects=False)
    back_second = await at_provider(second.headers["Location"], "alice@example.com")
    back_first = await at_provider(first.headers["Location"], "alice@example.com")
    for back in (back_first, back_second):
        answer = await client.get(path_of(back), allow_redirects=False)
        assert answer.status == 303, await answer.text()
        assert answer.headers["Location"].startswith("/.gateway/enrol")
    for _ in range(6):
        await client.get("/.gateway/login?rd=/", allow_redirects=False)
    begun = [c for c in client.session.cookie_jar if c.key.startswith("gateway_oidc")]
    assert 1 <= len(begun) <= 3, [c.key for c in begun]


async def test_sign_ins_begun_with_long_targets_keep_the_cookies_small(
    make_gateway: Any, upstream_url: str, tmp_path: Path, provider: Provider
) -> None:
    """A sign-in begun for a long address (2000 characters) makes a large cookie: the browser
    keeps only as many as fit in 4 KB together, or its requests would grow past the header size
    the gateway (or the application's server) takes. The latest always comes back."""
    client = await gateway(make_gateway, upstream_url, tmp_path, provider.issuer)
    long_target = "/reports?" + "q=" + "a" * 2000
    for _ in range(4):
        login = await client.get(f"/.gateway/login?rd={long_target}", allow_redirects=False)
        assert login.status == 303
    begun = [c for c in client.session.cookie_jar if c.key.startswith("gateway_oidc")]
    assert sum(len(c.value) for c in begun) <= 4096, [len(c.value) for c in begun]
    back = await at_provider(login.headers["Location"], "alice@example.com")
    answer = await client.get(path_of(back), allow_redirects=False)
    assert answer.status == 303 and answer.headers["Location"].startswith("/.gateway/enrol")


async def test_a_name_that_unicode_folding_would_make_anothers_is_refused(
    make_gateway: Any,
    upstream_url: str,
    tmp_path: Path,
    provider: Provider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An account at the provider whose verified email has a Kelvin sign (U+212A) for the K of
    kate@example.com is not kate: the gateway does not fold it into her name (lower() would), it
    refuses the sign-in, and nobody is signed in."""
    client = await gateway(make_gateway, upstream_url, tmp_path, provider.issuer)
    await refused(client, provider, "\u212aate@example.com")
    assert not audited(caplog, "first_factor_ok")


async def test_an_old_sign_in_at_the_provider_is_no_fresh_second_factor(
    make_gateway: Any, upstream_url: str, tmp_path: Path, provider: Provider
) -> None:
    """bob's company accepts the provider's second factor, but only one done lately: an ID token
    whose auth_time is an hour old (the provider's own session, signed in this morning) names
    the first factor, and the gateway asks its own second; one of a minute ago verifies."""
    client = await gateway(make_gateway, upstream_url, tmp_path, provider.issuer)
    callback = await sign_in_at_provider(
        client, "bob@mfa.example", rd="/x", amr="pwd,mfa", age=3600
    )
    answer = await client.get(callback, allow_redirects=False)
    assert answer.headers["Location"].startswith("/.gateway/enrol"), answer.headers["Location"]
    callback = await sign_in_at_provider(client, "bob@mfa.example", rd="/x", amr="pwd,mfa", age=60)
    answer = await client.get(callback, allow_redirects=False)
    assert answer.status == 303 and answer.headers["Location"] == "/x", await answer.text()


async def test_max_age_is_asked_and_auth_time_checked(
    make_gateway: Any, upstream_url: str, tmp_path: Path, provider: Provider
) -> None:
    """With max_age in the settings the authorization request says max_age (the provider must
    sign the person in again if its sign-in is older), and an ID token whose auth_time is older
    all the same (beyond the clock skew) is refused (OpenID Connect Core 3.1.3.7)."""
    client = await gateway(make_gateway, upstream_url, tmp_path, provider.issuer, max_age="5m")
    login = await client.get("/.gateway/login?rd=/", allow_redirects=False)
    assert "max_age=300&" in login.headers["Location"] + "&"
    fresh = await at_provider(login.headers["Location"], "alice@example.com", age=200)
    answer = await client.get(path_of(fresh), allow_redirects=False)
    assert answer.status == 303 and answer.headers["Location"].startswith("/.gateway/enrol")
    login = await client.get("/.gateway/login?rd=/", allow_redirects=False)
    stale = await at_provider(login.headers["Location"], "alice@example.com", age=600)
    answer = await client.get(path_of(stale), allow_redirects=False)
    assert answer.status == 403 and "could not be verified" in await answer.text()
