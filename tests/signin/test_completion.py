"""The sign-in core against a real store, on a fixed clock, without HTTP: what a completion
releases and issues, and how wrong answers are counted and forgotten (gateway.signin)."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from gateway import trust
from gateway.clock import FixedClock
from gateway.crypto import Cipher, generate_key
from gateway.metrics import Metrics
from gateway.policy.model import AccountType, Company, Policy, TrustedNetworks
from gateway.sessions import DEFERRAL, TRUSTED_NETWORK, Level, SessionManager, cookie_digest
from gateway.signin import attempts, browsers
from gateway.signin.completion import complete
from gateway.signin.standing import standing_of
from gateway.signin.visit import Visit
from gateway.store import Store, open_store

NOW = 1_800_000_000.0
USER = "carol@acme.example"
KEYS = ("k" * 32,)
INSIDE = ipaddress.ip_address("10.1.2.3")
OUTSIDE = ipaddress.ip_address("203.0.113.9")


def acme(account: AccountType = AccountType.PARTNER) -> Company:
    return Company(
        id="acme",
        name="Acme",
        source="acme.yaml",
        domains=("acme.example",),
        users=(),
        account_type=account,
        admins=(),
        trusted_networks=TrustedNetworks((ipaddress.ip_network("10.0.0.0/8"),), timedelta(days=21)),
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = open_store(f"sqlite://{tmp_path / 'g.db'}", clock=FixedClock(NOW))
    await opened.open()
    yield opened
    await opened.close()


def visit_of(store: Store, company: Company, ip: ipaddress.IPv4Address, **more: object) -> Visit:
    clock = FixedClock(NOW)
    fields: dict[str, object] = {
        "store": store,
        "sessions": SessionManager(store, Cipher(generate_key()), clock),
        "clock": clock,
        "policy": Policy(companies=(company,)),
        "client_ip": ip,
        "browser_id": None,
        "trust_cookie": None,
        "signing_keys": KEYS,
        "metrics": Metrics(),
    }
    fields.update(more)
    return Visit(**fields)  # type: ignore[arg-type]


async def pending(visit: Visit) -> object:
    session = await visit.sessions.promote(visit.sessions.new("app"), Level.FIRST_FACTOR, USER)
    session.jar = {"app_session": "s3cr3t"}
    session.withheld = ["app_session=s3cr3t; Path=/; HttpOnly"]
    return session


@pytest.mark.parametrize(
    ("via", "account", "ip", "trusted"),
    [
        ("totp", AccountType.PARTNER, INSIDE, True),
        ("totp", AccountType.PARTNER, OUTSIDE, False),  # not from the trusted network
        ("totp", AccountType.CLIENT, INSIDE, False),  # client accounts: never
        (DEFERRAL, AccountType.PARTNER, INSIDE, False),  # no factor presented
        (TRUSTED_NETWORK, AccountType.PARTNER, INSIDE, False),  # the cookie does not renew itself
    ],
)
async def test_a_completion_releases_the_held_cookies_and_earns_trust_only_by_a_factor(
    store: Store, via: str, account: AccountType, ip: ipaddress.IPv4Address, trusted: bool
) -> None:
    visit = visit_of(store, acme(account), ip)
    await store.put_enrolment(USER, "totp", {"created": NOW - 60})
    session = await pending(visit)
    done = await complete(visit, session, via)  # type: ignore[arg-type]
    assert done.session.level is Level.VERIFIED and done.session.second_factor == via
    assert done.release == ("app_session=s3cr3t; Path=/; HttpOnly",)
    assert done.session.bound == {"app_session": cookie_digest("s3cr3t")}
    assert done.session.jar == {} and done.session.withheld == []
    assert (done.trust is not None) == trusted
    if done.trust is not None:
        assert done.trust.max_age == 21 * 86400
        check = trust.check(done.trust.value, KEYS, USER, acme(account), ip, NOW, NOW - 60)
        assert check.valid


async def test_detours_new_recovery_codes_then_a_phone_to_confirm(store: Store) -> None:
    visit = visit_of(store, acme(), OUTSIDE)
    await store.note_user(USER, "acme", NOW, {"pending_phone": "+15550100"})
    done = await complete(
        visit,
        await pending(visit),  # type: ignore[arg-type]
        "totp",
        first_enrolment=True,
        recovery_offered=True,
    )
    assert done.detours == ("recovery", "phone/confirm")
    done = await complete(visit, await pending(visit), DEFERRAL)  # type: ignore[arg-type]
    assert done.detours == ()


async def test_a_browser_seen_at_the_password_is_given_its_id_at_completion(store: Store) -> None:
    visit = visit_of(store, acme(), OUTSIDE)
    session = await pending(visit)
    await browsers.seen_at_first_factor(visit, session, enrolled=False)  # type: ignore[arg-type]
    given = browsers.browser_to_give(session)  # type: ignore[arg-type]
    assert given is not None
    done = await complete(visit, session, "totp")  # type: ignore[arg-type]
    assert done.browser_id == given
    assert browsers.browser_to_give(done.session) is None


async def test_wrong_answers_count_by_user_and_a_factor_forgets_them(store: Store) -> None:
    visit = visit_of(store, acme(), OUTSIDE)
    limits = acme().attempts
    for _ in range(limits.free):
        assert await attempts.wait_for(visit, USER) is None
        await attempts.count_failure(visit, USER, "totp")
    waiting = await attempts.wait_for(visit, USER)
    assert waiting is not None and waiting.is_delay  # a growing delay, not yet a lockout
    # another spelling of the user is the same user
    assert await attempts.wait_for(visit, " Carol@ACME.example") == waiting
    await attempts.forget_failures(visit, USER)
    assert await attempts.wait_for(visit, USER) is None


async def test_a_trusted_network_cookie_is_bound_to_user_address_and_enrolment(
    store: Store,
) -> None:
    company = acme()
    await store.put_enrolment(USER, "totp", {"created": NOW - 10})
    cookie = trust.issue(KEYS, USER, company, ipaddress.ip_network("10.0.0.0/8"), NOW, NOW - 10)
    inside = visit_of(store, company, INSIDE, trust_cookie=cookie)
    assert (await standing_of(inside, USER)).trusted
    outside = replace(inside, client_ip=OUTSIDE)
    assert not (await standing_of(outside, USER)).trusted
    await store.put_enrolment(USER, "totp", {"created": NOW})  # a reset and a new enrolment
    assert not (await standing_of(inside, USER)).trusted


async def test_a_trusted_network_cookie_is_bound_to_the_oldest_way_of_any_method(
    store: Store,
) -> None:
    """The cookie's binding was the authenticator app's enrolment alone, so a user with a phone,
    an email or passkeys only was never spared by a trusted network (found with the demo)."""
    from gateway.signin.standing import enrolment_time

    assert await enrolment_time(store, "u@acme.example") is None
    await store.put_enrolment("u@acme.example", "recovery", {"created": NOW - 5})
    assert await enrolment_time(store, "u@acme.example") is None  # codes are not a way
    await store.put_enrolment("u@acme.example", "sms", {"phone": "x", "created": NOW})
    assert await enrolment_time(store, "u@acme.example") == NOW
    passkeys = {"user_handle": "h", "credentials": [{"created": NOW - 60}, {"created": NOW}]}
    await store.put_enrolment("u@acme.example", "webauthn", passkeys)
    assert await enrolment_time(store, "u@acme.example") == NOW - 60
    await store.delete_enrolment("u@acme.example", "webauthn")  # its removal voids the cookies
    assert await enrolment_time(store, "u@acme.example") == NOW
