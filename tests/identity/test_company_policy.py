"""Company policy over HTTP: deferral, trusted networks, client accounts, the client address and
branding, with the demo's legacy application behind an in-process gateway and a fixed clock."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, DummyCookieJar
from aiohttp.test_utils import TestClient, TestServer

from gateway import trust
from gateway.app import build_runtime, create_app
from gateway.clock import FixedClock
from gateway.demo.legacy import create_legacy_app
from gateway.keys import RUNTIME
from gateway.policy import load_policy_dir
from gateway.settings import settings_from_dict
from gateway.signin.standing import enrolment_time
from tests.support import code_for, csrf_from_page, intercept_app, secret_from_page, settings_dict

Client = TestClient[Any, Any]
ClientFactory = Callable[..., Awaitable[Client]]

START = 1_800_000_000.0  # a whole number of 30-second TOTP steps
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
OLD_KEY = "old-signing-key-0123456789abcdefghijklmnop"
NEW_KEY = "new-signing-key-0123456789abcdefghijklmnop"
BEHIND_PROXY = ["127.0.0.1/32"]  # the test client's own address: its X-Forwarded-For counts
INSIDE, ALSO_INSIDE, OUTSIDE = "10.1.2.3", "10.9.9.9", "203.0.113.5"
PASSWORD = "password-1"
ALICE, BOB = "alice@acme.example", "bob@acme.example"
CAROL = "carol@globex.example"
DAVE = "dave@clients.example"
ERIN = "erin@elsewhere.example"  # a member of no company
LEGACY_CSRF = re.compile(r'name="csrf" value="(\w+)"')
STYLE = re.compile(r'<style nonce="([^"]+)">:root \{ --brand: (#[0-9a-fA-F]+); \}</style>')

ACME = """
company: Acme Corporation
members:
  domains: [acme.example]
account_type: {account_type}
enforce_2fa: true
trusted_networks:
  networks: [{networks}]
branding:
  name: Acme Portal
  colour: "#aa3300"
  logo: https://cdn.acme.example/logo.png
"""
GLOBEX = """
company: Globex
members:
  domains: [globex.example]
account_type: partner
enforce_2fa: {enforce}
deferral: {deferral}
trusted_networks:
  networks: [10.0.0.0/8]
branding:
  colour: "#2e7d32"
"""
CLIENTS = """
company: Client Co
members:
  domains: [clients.example]
account_type: client
enforce_2fa: true
trusted_networks:
  networks: [10.0.0.0/8]
"""


def policies(
    networks: str = "10.0.0.0/8",
    enforce: bool = False,
    deferral: str = "48h",
    account_type: str = "partner",
) -> dict[str, str]:
    return {
        "acme.yaml": ACME.format(networks=networks, account_type=account_type),
        "globex.yaml": GLOBEX.format(enforce=str(enforce).lower(), deferral=deferral),
        "clients.yaml": CLIENTS,
    }


@pytest.fixture
async def legacy() -> Any:
    accounts = {user: PASSWORD for user in (ALICE, BOB, CAROL, DAVE, ERIN)}
    server = TestServer(create_legacy_app(accounts))
    await server.start_server()
    yield server
    await server.close()


@dataclass
class Gateways:
    """Gateways built one after another on the same store, encryption key and policy directory,
    so a change of policy or of signing keys can be made between two sign-ins."""

    tmp: Path
    aiohttp_client: ClientFactory
    upstream: str
    clock: FixedClock
    encryption_key: str | None = None

    async def build(
        self,
        policy_files: dict[str, str] | None = None,
        keys: str = OLD_KEY,
        trusted_proxies: list[str] | None = BEHIND_PROXY,
        **client_options: Any,
    ) -> Client:
        extra: dict[str, Any] = (
            {} if trusted_proxies is None else {"trusted_proxies": trusted_proxies}
        )
        data = settings_dict(
            self.tmp, {"legacy": _legacy(self.upstream)}, policy_files or policies(), **extra
        )
        # settings_dict writes new secrets each time: keep the store's key, choose the signing keys
        if self.encryption_key is None:
            self.encryption_key = (self.tmp / "encryption-key").read_text()
        (self.tmp / "encryption-key").write_text(self.encryption_key)
        (self.tmp / "session-keys").write_text(keys)
        settings = settings_from_dict(data, source=self.tmp / "gateway.yaml")
        policy = load_policy_dir(settings.policy_dir, known_apps=["legacy"])
        return await self.aiohttp_client(
            create_app(build_runtime(settings, policy, clock=self.clock)), **client_options
        )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def gateways(
    tmp_path: Path, aiohttp_client: ClientFactory, legacy: TestServer, clock: FixedClock
) -> Gateways:
    return Gateways(tmp_path / "gateway", aiohttp_client, str(legacy.make_url("")), clock)


def _legacy(upstream: str) -> dict[str, Any]:
    """The legacy application; users of no company may enrol (erin is one)."""
    app = intercept_app(upstream)
    app["intercept"]["enrol_unknown_users"] = True
    return app


def via(ip: str | None) -> dict[str, str]:
    return {"X-Forwarded-For": ip} if ip is not None else {}


async def sign_in(client: Client, user: str, ip: str | None = None) -> ClientResponse:
    """Sign out on the gateway's page (whatever the session's level), then sign in on the
    application's form; returns the gateway's 303."""
    out = await (await client.get("/.gateway/logout", headers=via(ip))).text()
    if "You are signed in as" in out:
        await client.post(
            "/.gateway/logout", data={"csrf_token": csrf_from_page(out)}, headers=via(ip)
        )
    page = await client.get("/login", headers=via(ip))
    if page.status == 403 and "Please sign in again" in await page.text():
        # The session expired while the clock moved on: the gateway cleared the application's
        # cookie it had released to that session, so the form comes back on the next try.
        page = await client.get("/login", headers=via(ip))
    csrf = LEGACY_CSRF.search(await page.text())
    assert csrf, "the application's login form"
    response = await client.post(
        "/login",
        data={"csrf": csrf.group(1), "username": user, "password": PASSWORD},
        headers=via(ip),
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    return response


async def next_step(client: Client, user: str, ip: str | None = None) -> str:
    """Where signing in takes `user` now: "enrol", "challenge", or "app" (checked to work)."""
    location = (await sign_in(client, user, ip)).headers["Location"]
    for page in ("enrol", "challenge"):
        if location.startswith(f"/.gateway/{page}?"):
            return page
    assert location == "/", location
    home = await client.get("/", headers=via(ip), allow_redirects=False)
    assert home.status == 200 and f"Welcome, {user}" in await home.text()
    return "app"


async def enrol(client: Client, user: str, clock: FixedClock, ip: str | None = None) -> Any:
    """Sign in and enrol with the code of the clock's time; returns the secret and the answer."""
    location = (await sign_in(client, user, ip)).headers["Location"]
    assert location.startswith("/.gateway/enrol?"), location
    html = await (await client.get(location, headers=via(ip))).text()
    secret = secret_from_page(html)
    done = await client.post(
        location,
        data={"csrf_token": csrf_from_page(html), "code": code_for(secret, at=clock.now)},
        headers=via(ip),
        allow_redirects=False,
    )
    assert done.status == 303 and done.headers["Location"] == "/"
    return secret, done


async def pass_challenge(
    client: Client, user: str, secret: str, clock: FixedClock, ip: str | None = None
) -> Any:
    clock.advance(MINUTE)  # a step after any code used before
    location = (await sign_in(client, user, ip)).headers["Location"]
    assert location.startswith("/.gateway/challenge?"), location
    html = await (await client.get(location, headers=via(ip))).text()
    done = await client.post(
        location,
        data={"csrf_token": csrf_from_page(html), "code": code_for(secret, at=clock.now)},
        headers=via(ip),
        allow_redirects=False,
    )
    assert done.status == 303 and done.headers["Location"] == "/"
    return done


def trust_lines(response: Any) -> list[str]:
    return [
        line
        for line in response.headers.getall("Set-Cookie", [])
        if re.match(r"(__Host-)?gateway_trust=", line)
    ]


def cookie(client: Client, name: str) -> str | None:
    for morsel in client.session.cookie_jar:
        if morsel.key == name:
            return morsel.value
    return None


def set_cookie(client: Client, name: str, value: str) -> None:
    client.session.cookie_jar.update_cookies({name: value}, client.make_url("/"))
    assert cookie(client, name) == value


async def forged(client: Client, user: str, company_id: str, network: str) -> str:
    """A trusted-network cookie correctly signed with this gateway's keys, as if it had issued it."""
    assert client.app is not None
    rt = client.app[RUNTIME]
    company = rt.policy.current.company_by_id(company_id)
    assert company is not None
    enrolled_at = await enrolment_time(rt.store, user)
    return trust.issue(
        rt.secrets.signing_keys,
        user,
        company,
        ipaddress.ip_network(network),
        rt.clock(),
        enrolled_at,
    )


def defer_action(html: str) -> str:
    """Where the enrolment page's "Remind me" form posts to."""
    match = re.search(r'<form method="post" action="(/\.gateway/defer\?rd=[^"]*)">', html)
    assert match, "no deferral form on the page"
    return match.group(1)


async def enrol_page(client: Client, user: str, ip: str | None = None) -> str:
    location = (await sign_in(client, user, ip)).headers["Location"]
    assert location.startswith("/.gateway/enrol?"), location
    page = await client.get(location, headers=via(ip))
    assert page.status == 200
    return await page.text()


# --- deferral ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("deferral", "seconds", "words"),
    [("48h", 48 * HOUR, "48 hours"), ("12h", 12 * HOUR, "12 hours")],
    ids=["48h", "12h"],
)
async def test_deferral_lets_the_user_in_until_it_is_due(
    gateways: Gateways, clock: FixedClock, deferral: str, seconds: float, words: str
) -> None:
    """A member of a company that does not enforce 2FA can press "Remind me in 48 hours" (or the
    policy's duration) and gets in at every sign-in until exactly that long after, then must enrol."""
    client = await gateways.build(policies(deferral=deferral))
    html = await enrol_page(client, CAROL, INSIDE)
    assert f"Remind me in {words}</button>" in html
    deferred = await client.post(
        defer_action(html),
        data={"csrf_token": csrf_from_page(html)},
        headers=via(INSIDE),
        allow_redirects=False,
    )
    assert deferred.status == 303 and deferred.headers["Location"] == "/"
    assert any(line.startswith("legacy_session=") for line in deferred.headers.getall("Set-Cookie"))
    assert not trust_lines(deferred), "putting off 2FA must not earn the trusted-network cookie"
    home = await client.get("/")
    assert f"Welcome, {CAROL}" in await home.text()

    assert await next_step(client, CAROL) == "app"
    clock.advance(seconds - 1)
    assert await next_step(client, CAROL) == "app"
    assert await next_step(client, CAROL) == "app"
    clock.advance(1)  # exactly the deferral after pressing the button
    assert await next_step(client, CAROL) == "enrol"
    clock.advance(HOUR)
    assert await next_step(client, CAROL) == "enrol"


async def test_enrolment_page_of_an_enforced_company_offers_no_deferral(
    gateways: Gateways,
) -> None:
    """For a company that enforces 2FA (and for a member of no company) the enrolment page has no
    "Remind me" button and a POST to /.gateway/defer is refused with 403."""
    client = await gateways.build()
    for user in (ALICE, ERIN):
        html = await enrol_page(client, user)
        assert "Remind me" not in html and "/.gateway/defer" not in html
        refused = await client.post(
            "/.gateway/defer?rd=%2F",
            data={"csrf_token": csrf_from_page(html)},
            allow_redirects=False,
        )
        assert refused.status == 403, user
        assert "cannot be put off" in await refused.text()
        assert await next_step(client, user) == "enrol"


async def test_deferral_stops_counting_once_the_company_enforces_2fa(
    gateways: Gateways, clock: FixedClock
) -> None:
    """A deferral made while the company did not enforce 2FA is ignored as soon as a policy
    enforces it, and stays ignored when a later policy file says false again (the ratchet)."""
    client = await gateways.build(policies(enforce=False))
    html = await enrol_page(client, CAROL)
    deferred = await client.post(
        "/.gateway/defer?rd=%2F", data={"csrf_token": csrf_from_page(html)}, allow_redirects=False
    )
    assert deferred.status == 303
    assert await next_step(client, CAROL) == "app"

    clock.advance(HOUR)
    enforced = await gateways.build(policies(enforce=True))
    assert await next_step(enforced, CAROL) == "enrol"
    html = await enrol_page(enforced, CAROL)
    assert "Remind me" not in html
    refused = await enforced.post(
        "/.gateway/defer?rd=%2F", data={"csrf_token": csrf_from_page(html)}, allow_redirects=False
    )
    assert refused.status == 403

    relaxed = await gateways.build(policies(enforce=False))
    assert await next_step(relaxed, CAROL) == "enrol"
    assert "Remind me" not in await enrol_page(relaxed, CAROL)


# --- trusted networks -------------------------------------------------------------------------


async def test_trusted_network_cookie_spares_the_challenge_inside_for_21_days(
    gateways: Gateways, clock: FixedClock
) -> None:
    """Enrolling from inside the company's network sets gateway_trust (21 days, HttpOnly, Lax),
    which skips the challenge from inside that network only, until exactly 21 days later."""
    client = await gateways.build()
    secret, enrolled = await enrol(client, ALICE, clock, INSIDE)
    (line,) = trust_lines(enrolled)
    attributes = [part.strip() for part in line.split(";")]
    assert attributes[0].startswith("gateway_trust=") and len(attributes[0]) > 40
    assert set(attributes[1:]) == {"Path=/", "Max-Age=1814400", "HttpOnly", "SameSite=Lax"}
    assert cookie(client, "gateway_trust") == attributes[0].partition("=")[2]

    assert await next_step(client, ALICE, ALSO_INSIDE) == "app"
    assert await next_step(client, ALICE, OUTSIDE) == "challenge"
    assert await next_step(client, ALICE) == "challenge"  # the proxy itself, 127.0.0.1
    clock.advance(DAY)
    assert await next_step(client, ALICE, INSIDE) == "app"
    clock.advance(20 * DAY - 1)
    assert await next_step(client, ALICE, ALSO_INSIDE) == "app"
    clock.advance(1)  # exactly 21 days after the code: trusted logins in between did not extend it
    assert await next_step(client, ALICE, ALSO_INSIDE) == "challenge"

    # A code from inside again earns a new cookie for another 21 days.
    renewed = await pass_challenge(client, ALICE, secret, clock, INSIDE)
    assert len(trust_lines(renewed)) == 1 and "Max-Age=1814400" in trust_lines(renewed)[0]
    assert await next_step(client, ALICE, ALSO_INSIDE) == "app"


async def test_code_from_outside_earns_no_trusted_network_cookie(
    gateways: Gateways, clock: FixedClock
) -> None:
    """A second factor passed from outside every trusted network sets no gateway_trust cookie."""
    client = await gateways.build()
    secret, enrolled = await enrol(client, ALICE, clock, OUTSIDE)
    assert not trust_lines(enrolled)
    assert not trust_lines(await pass_challenge(client, ALICE, secret, clock, OUTSIDE))
    assert await next_step(client, ALICE, INSIDE) == "challenge"


async def test_tampered_trusted_network_cookie_is_refused(
    gateways: Gateways, clock: FixedClock
) -> None:
    """A trusted-network cookie with one byte changed means the challenge again."""
    client = await gateways.build()
    await enrol(client, ALICE, clock, INSIDE)
    value = cookie(client, "gateway_trust")
    assert value is not None
    index = 10  # inside the signed payload, where every bit of the character counts
    changed = value[:index] + ("A" if value[index] != "A" else "B") + value[index + 1 :]
    set_cookie(client, "gateway_trust", changed)
    assert await next_step(client, ALICE, INSIDE) == "challenge"
    set_cookie(client, "gateway_trust", value)
    assert await next_step(client, ALICE, INSIDE) == "app"


async def test_trusted_network_cookie_of_another_user_is_refused(
    gateways: Gateways, clock: FixedClock
) -> None:
    """Alice's cookie, in a browser Bob of the same company then signs in with, does not spare Bob
    the challenge."""
    client = await gateways.build()
    await enrol(client, ALICE, clock, INSIDE)
    alices = cookie(client, "gateway_trust")
    _, bob_enrolled = await enrol(client, BOB, clock, OUTSIDE)
    assert not trust_lines(bob_enrolled)
    assert cookie(client, "gateway_trust") == alices
    assert await next_step(client, BOB, INSIDE) == "challenge"
    assert await next_step(client, ALICE, INSIDE) == "app"


async def test_network_removed_from_the_policy_no_longer_spares_the_challenge(
    gateways: Gateways, clock: FixedClock
) -> None:
    """Once the company's policy no longer lists the network, its cookies stop working."""
    client = await gateways.build(policies(networks="10.0.0.0/8"))
    await enrol(client, ALICE, clock, INSIDE)
    assert await next_step(client, ALICE, INSIDE) == "app"
    value = cookie(client, "gateway_trust")
    assert value is not None

    changed = await gateways.build(policies(networks="172.16.0.0/12"))
    set_cookie(changed, "gateway_trust", value)
    assert await next_step(changed, ALICE, INSIDE) == "challenge"

    restored = await gateways.build(policies(networks="10.0.0.0/8"))
    set_cookie(restored, "gateway_trust", value)
    assert await next_step(restored, ALICE, INSIDE) == "app"


async def test_rotated_signing_keys_accept_old_cookies_until_the_old_key_goes(
    gateways: Gateways, clock: FixedClock
) -> None:
    """With the keys file "NEW OLD" a cookie signed with OLD still works and new ones are signed
    with NEW; with only NEW the old cookie is refused."""
    client = await gateways.build(keys=OLD_KEY)
    secret, _ = await enrol(client, ALICE, clock, INSIDE)
    old = cookie(client, "gateway_trust")
    assert old is not None

    rotated = await gateways.build(keys=f"{NEW_KEY} {OLD_KEY}")
    set_cookie(rotated, "gateway_trust", old)
    assert await next_step(rotated, ALICE, INSIDE) == "app"

    new_only = await gateways.build(keys=NEW_KEY)
    set_cookie(new_only, "gateway_trust", old)
    assert await next_step(new_only, ALICE, INSIDE) == "challenge"

    # A cookie issued while both keys are listed is signed with the first, NEW.
    rotated = await gateways.build(keys=f"{NEW_KEY} {OLD_KEY}")
    await pass_challenge(rotated, ALICE, secret, clock, INSIDE)
    new = cookie(rotated, "gateway_trust")
    assert new is not None and new != old
    new_only = await gateways.build(keys=NEW_KEY)
    set_cookie(new_only, "gateway_trust", new)
    assert await next_step(new_only, ALICE, INSIDE) == "app"


def set_cookie_pair(response: Any, name: str) -> str:
    """The `name=value` of the Set-Cookie line for `name` in `response`."""
    line = next(v for v in response.headers.getall("Set-Cookie", []) if v.startswith(name + "="))
    return str(line.split(";")[0])


async def tls_sign_in(client: Client, cookies: str = "") -> Any:
    """Sign in through a TLS-terminating trusted proxy, sending only the cookies named here."""
    page = await client.get("/login", headers=TLS_INSIDE)
    anonymous = set_cookie_pair(page, "__Host-gateway_session")
    csrf = LEGACY_CSRF.search(await page.text())
    assert csrf
    return await client.post(
        "/login",
        data={"csrf": csrf.group(1), "username": ALICE, "password": PASSWORD},
        headers={**TLS_INSIDE, "Cookie": "; ".join(c for c in (anonymous, cookies) if c)},
        allow_redirects=False,
    )


TLS_INSIDE = {"X-Forwarded-Proto": "https", "X-Forwarded-For": INSIDE}


async def test_trusted_network_cookie_over_tls_is_host_prefixed(
    gateways: Gateways, clock: FixedClock
) -> None:
    """Behind a TLS-terminating trusted proxy the cookie is __Host-gateway_trust with Secure, and
    that name (not the plain one) is what spares the challenge."""
    client = await gateways.build(cookie_jar=DummyCookieJar())
    login = await tls_sign_in(client)
    location = login.headers["Location"]
    assert location.startswith("/.gateway/enrol?")
    session = set_cookie_pair(login, "__Host-gateway_session")
    page = await client.get(location, headers={**TLS_INSIDE, "Cookie": session})
    html = await page.text()
    csrf = set_cookie_pair(page, "__Host-gateway_csrf")
    done = await client.post(
        location,
        data={
            "csrf_token": csrf_from_page(html),
            "code": code_for(secret_from_page(html), at=clock.now),
        },
        headers={**TLS_INSIDE, "Cookie": f"{session}; {csrf}"},
        allow_redirects=False,
    )
    assert done.status == 303
    (line,) = trust_lines(done)
    attributes = [part.strip() for part in line.split(";")]
    assert attributes[0].startswith("__Host-gateway_trust=")
    assert set(attributes[1:]) == {
        "Path=/",
        "Max-Age=1814400",
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
    }
    value = attributes[0].partition("=")[2]
    host = await tls_sign_in(client, f"__Host-gateway_trust={value}")
    assert host.headers["Location"] == "/"
    plain = await tls_sign_in(client, f"gateway_trust={value}")
    assert plain.headers["Location"].startswith("/.gateway/challenge?")


async def test_trusted_networks_work_for_ipv6(gateways: Gateways, clock: FixedClock) -> None:
    """An IPv6 trusted network is honoured like an IPv4 one, and only for addresses inside it."""
    client = await gateways.build(policies(networks="10.0.0.0/8, 2001:db8::/32"))
    _, enrolled = await enrol(client, ALICE, clock, "2001:db8::5")
    assert len(trust_lines(enrolled)) == 1
    assert await next_step(client, ALICE, "2001:db8:ffff::1") == "app"
    assert await next_step(client, ALICE, "[2001:db8::7]:443") == "app"
    assert await next_step(client, ALICE, "2001:db9::1") == "challenge"
    assert await next_step(client, ALICE, INSIDE) == "challenge"  # the cookie is for the v6 network


# --- client accounts --------------------------------------------------------------------------


async def test_client_accounts_never_get_or_use_the_trusted_network_cookie(
    gateways: Gateways, clock: FixedClock
) -> None:
    """A client account enrolling from inside its company's trusted network gets no cookie, and a
    correctly signed cookie made out to it is ignored: the code is asked at every sign-in."""
    client = await gateways.build()
    secret, enrolled = await enrol(client, DAVE, clock, INSIDE)
    assert not trust_lines(enrolled)
    assert cookie(client, "gateway_trust") is None
    assert not trust_lines(await pass_challenge(client, DAVE, secret, clock, INSIDE))

    set_cookie(client, "gateway_trust", await forged(client, DAVE, "clients", "10.0.0.0/8"))
    for ip in (INSIDE, ALSO_INSIDE, INSIDE):
        assert await next_step(client, DAVE, ip) == "challenge"


async def test_cookies_stop_working_when_the_company_becomes_a_client_account(
    gateways: Gateways, clock: FixedClock
) -> None:
    """A partner's valid trusted-network cookie is ignored once the company's policy says
    account_type: client."""
    client = await gateways.build(policies(account_type="partner"))
    await enrol(client, ALICE, clock, INSIDE)
    value = cookie(client, "gateway_trust")
    assert value is not None
    assert await next_step(client, ALICE, INSIDE) == "app"
    as_client = await gateways.build(policies(account_type="client"))
    set_cookie(as_client, "gateway_trust", value)
    assert await next_step(as_client, ALICE, INSIDE) == "challenge"


# --- the client address -----------------------------------------------------------------------


@pytest.mark.parametrize("proxies", [None, ["192.0.2.0/24"]], ids=["no-proxies", "other-proxy"])
async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(
    gateways: Gateways, clock: FixedClock, proxies: list[str] | None
) -> None:
    """X-Forwarded-For: 10.1.2.3 sent by a peer that is not a trusted proxy neither earns nor uses
    the trusted-network shortcut (authentik CVE-2023-36456)."""
    client = await gateways.build(trusted_proxies=proxies)
    _, enrolled = await enrol(client, ALICE, clock, INSIDE)
    assert not trust_lines(enrolled)
    valid = await forged(client, ALICE, "acme", "10.0.0.0/8")
    set_cookie(client, "gateway_trust", valid)
    assert await next_step(client, ALICE, INSIDE) == "challenge"
    assert await next_step(client, ALICE, f"{INSIDE}, {INSIDE}") == "challenge"

    # The same cookie is good when the address really comes from a trusted proxy.
    behind = await gateways.build(trusted_proxies=BEHIND_PROXY)
    set_cookie(behind, "gateway_trust", valid)
    assert await next_step(behind, ALICE, INSIDE) == "app"


@pytest.mark.parametrize(
    "forwarded_for",
    ["not-an-address", f"{INSIDE}, garbage", "10.1.2.300", f"{INSIDE} {INSIDE}", f"{OUTSIDE}"],
)
async def test_unusable_x_forwarded_for_from_the_trusted_proxy_means_outside(
    gateways: Gateways, clock: FixedClock, forwarded_for: str
) -> None:
    """From the trusted proxy, an X-Forwarded-For that does not parse (or whose rightmost hop is
    outside) means "not in a trusted network": the challenge, never a bypass."""
    client = await gateways.build()
    await enrol(client, ALICE, clock, INSIDE)
    assert await next_step(client, ALICE, forwarded_for) == "challenge"
    assert await next_step(client, ALICE, f"{forwarded_for}, {INSIDE}") == "app"


async def test_client_supplied_hop_left_of_the_proxy_hop_does_not_count(
    gateways: Gateways, clock: FixedClock
) -> None:
    """The rightmost untrusted X-Forwarded-For hop is the address: a client-supplied inside
    address to its left does not make an outside request trusted."""
    client = await gateways.build()
    await enrol(client, ALICE, clock, INSIDE)
    assert await next_step(client, ALICE, f"{INSIDE}, {OUTSIDE}") == "challenge"
    assert await next_step(client, ALICE, f"{OUTSIDE}, {INSIDE}, 127.0.0.1") == "app"


# --- branding ---------------------------------------------------------------------------------


def branding_of(response_headers: Any, html: str) -> tuple[str, str]:
    """The page's brand name and colour, after checking the colour's style block carries the
    nonce of the page's Content-Security-Policy."""
    match = STYLE.search(html)
    assert match, "no nonce'd style block with --brand"
    nonce, colour = match.groups()
    assert f"'nonce-{nonce}'" in response_headers["Content-Security-Policy"]
    name = re.search(r'<p class="brand">.*?<span>(.*?)</span>', html, re.DOTALL)
    assert name
    return name.group(1), colour


async def test_enrol_and_challenge_pages_carry_the_company_branding(
    gateways: Gateways, clock: FixedClock
) -> None:
    """The enrolment and challenge pages show the company's branding name, logo and colour; a
    company without a branding name shows its company name; a member of no company the default."""
    client = await gateways.build()
    location = (await sign_in(client, ALICE, OUTSIDE)).headers["Location"]
    page = await client.get(location, headers=via(OUTSIDE))
    html = await page.text()
    assert branding_of(page.headers, html) == ("Acme Portal", "#aa3300")
    assert '<img src="https://cdn.acme.example/logo.png" alt=""' in html
    assert "<title>Set up two-step sign-in \N{EN DASH} Acme Portal</title>" in html
    secret = secret_from_page(html)
    await client.post(
        location,
        data={"csrf_token": csrf_from_page(html), "code": code_for(secret, at=clock.now)},
        headers=via(OUTSIDE),
    )
    clock.advance(MINUTE)
    location = (await sign_in(client, ALICE, OUTSIDE)).headers["Location"]
    assert location.startswith("/.gateway/challenge?")
    page = await client.get(location, headers=via(OUTSIDE))
    assert branding_of(page.headers, await page.text()) == ("Acme Portal", "#aa3300")

    location = (await sign_in(client, CAROL)).headers["Location"]
    page = await client.get(location)
    html = await page.text()
    assert branding_of(page.headers, html) == ("Globex", "#2e7d32")
    assert "<img" not in html.split("</header>")[0]

    location = (await sign_in(client, ERIN)).headers["Location"]
    page = await client.get(location)
    html = await page.text()
    assert branding_of(page.headers, html) == ("Sign-in gateway", "#1f4e8c")
    assert "Acme" not in html and "#aa3300" not in html
