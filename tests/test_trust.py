"""The trusted-network cookie as a table: user, company, network, account type, expiry, keys."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from datetime import timedelta

import pytest

from gateway import trust
from gateway.policy.model import AccountType, Company, TrustedNetworks

OLD = "old-key-0123456789abcdefghijklmnopqrstuv"
NEW = "new-key-0123456789abcdefghijklmnopqrstuv"
NOW = 1_800_000_000.0
DAY = 86400.0
ACME = Company(
    id="acme",
    name="Acme",
    source="policies/acme.yaml",
    domains=("acme.example",),
    users=(),
    account_type=AccountType.PARTNER,
    admins=(),
    trusted_networks=TrustedNetworks(
        (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32")),
        timedelta(days=21),
    ),
)
OFFICE = ipaddress.ip_network("10.0.0.0/8")
INSIDE = ipaddress.ip_address("10.20.30.40")
USER = "alice@acme.example"
ENROLLED = NOW - 3600  # when alice's authenticator was enrolled


def cookie(keys: tuple[str, ...] = (OLD,), user: str = USER, company: Company = ACME) -> str:
    return trust.issue(keys, user, company, OFFICE, NOW, ENROLLED)


V = trust.Verdict
CASES = [
    # description, cookie value, keys to verify with, user, company, address, time -> verdict
    ("valid", cookie(), (OLD,), USER, ACME, INSIDE, NOW + DAY, V.VALID),
    ("no cookie", None, (OLD,), USER, ACME, INSIDE, NOW, V.MISSING),
    ("tampered", cookie()[:-2] + "xx", (OLD,), USER, ACME, INSIDE, NOW, V.TAMPERED),
    ("garbage", "not-a-cookie", (OLD,), USER, ACME, INSIDE, NOW, V.TAMPERED),
    ("unknown key", cookie((OLD,)), (NEW,), USER, ACME, INSIDE, NOW, V.TAMPERED),
    (
        "rotated: old cookie, new key first",
        cookie((OLD,)),
        (NEW, OLD),
        USER,
        ACME,
        INSIDE,
        NOW,
        V.VALID,
    ),
    ("rotated: new cookie", cookie((NEW, OLD)), (NEW,), USER, ACME, INSIDE, NOW, V.VALID),
    ("another user", cookie(), (OLD,), "bob@acme.example", ACME, INSIDE, NOW, V.OTHER_USER),
    (
        "another company",
        cookie(),
        (OLD,),
        USER,
        replace(ACME, id="globex"),
        INSIDE,
        NOW,
        V.OTHER_COMPANY,
    ),
    ("no company", cookie(), (OLD,), USER, None, INSIDE, NOW, V.OTHER_COMPANY),
    (
        "client account",
        cookie(),
        (OLD,),
        USER,
        replace(ACME, account_type=AccountType.CLIENT),
        INSIDE,
        NOW,
        V.CLIENT_ACCOUNT,
    ),
    (
        "network removed",
        cookie(),
        (OLD,),
        USER,
        replace(ACME, trusted_networks=TrustedNetworks((ipaddress.ip_network("192.168.0.0/16"),))),
        ipaddress.ip_address("192.168.1.1"),
        NOW,
        V.NETWORK_REMOVED,
    ),
    ("outside", cookie(), (OLD,), USER, ACME, ipaddress.ip_address("203.0.113.5"), NOW, V.OUTSIDE),
    (
        "ipv6 client",
        cookie(),
        (OLD,),
        USER,
        ACME,
        ipaddress.ip_address("2001:db8::1"),
        NOW,
        V.OUTSIDE,
    ),
    ("unknown address", cookie(), (OLD,), USER, ACME, None, NOW, V.OUTSIDE),
    ("last second of 21 days", cookie(), (OLD,), USER, ACME, INSIDE, NOW + 21 * DAY - 1, V.VALID),
    ("at 21 days", cookie(), (OLD,), USER, ACME, INSIDE, NOW + 21 * DAY, V.EXPIRED),
    (
        "reprompt_after shortened later",
        cookie(),
        (OLD,),
        USER,
        replace(
            ACME, trusted_networks=replace(ACME.trusted_networks, reprompt_after=timedelta(days=7))
        ),
        INSIDE,
        NOW + 8 * DAY,
        V.EXPIRED,
    ),
]


@pytest.mark.parametrize(
    ("value", "keys", "user", "company", "address", "now", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_cookie_table(
    value: str | None,
    keys: tuple[str, ...],
    user: str,
    company: Company | None,
    address: ipaddress.IPv4Address | None,
    now: float,
    expected: trust.Verdict,
) -> None:
    assert trust.check(value, keys, user, company, address, now, ENROLLED).verdict is expected


def test_cookie_from_an_earlier_enrolment_is_refused() -> None:
    """After a reset and a new enrolment, cookies issued for the old one no longer count."""
    value = cookie()
    assert trust.check(value, (OLD,), USER, ACME, INSIDE, NOW, ENROLLED).valid
    later = trust.check(value, (OLD,), USER, ACME, INSIDE, NOW, ENROLLED + 60)
    assert later.verdict is trust.Verdict.OLD_ENROLMENT
    assert not trust.check(value, (OLD,), USER, ACME, INSIDE, NOW, None).valid


def test_network_for_picks_the_matching_network() -> None:
    assert trust.network_for(ACME, INSIDE) == OFFICE
    assert trust.network_for(ACME, ipaddress.ip_address("2001:db8::5")) == ipaddress.ip_network(
        "2001:db8::/32"
    )
    assert trust.network_for(ACME, ipaddress.ip_address("203.0.113.5")) is None
    assert trust.network_for(ACME, None) is None
    assert trust.network_for(None, INSIDE) is None
