"""Trusted networks: a signed cookie that spares a partner the challenge from inside the network
where they last passed it, until it expires (PRODUCT.md section 4)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum

from itsdangerous import BadSignature, URLSafeSerializer

from gateway.clientip import IPAddress, IPNetwork
from gateway.policy.model import AccountType, Company

COOKIE = "gateway_trust"
_SALT = "gateway.trusted-network.v1"


class Verdict(StrEnum):
    VALID = "valid"
    MISSING = "no trusted-network cookie"
    TAMPERED = "the cookie's signature does not check out"
    OTHER_USER = "the cookie belongs to another user"
    OLD_ENROLMENT = "the cookie was issued for an earlier enrolment"
    OTHER_COMPANY = "the cookie belongs to another company"
    CLIENT_ACCOUNT = "client accounts never use trusted networks"
    NETWORK_REMOVED = "the cookie's network is no longer trusted"
    OUTSIDE = "the request does not come from the cookie's network"
    EXPIRED = "the cookie has expired"


def network_for(company: Company | None, address: IPAddress | None) -> IPNetwork | None:
    """The company's trusted network this address is in, if any."""
    if company is None or address is None:
        return None
    for network in company.trusted_networks.networks:
        if address.version == network.version and address in network:
            return network
    return None


def _serializer(keys: tuple[str, ...]) -> URLSafeSerializer:
    # itsdangerous signs with the last key of the list and accepts all; ours signs with the first.
    return URLSafeSerializer(list(reversed(keys)), salt=_SALT)


def issue(
    keys: tuple[str, ...],
    user: str,
    company: Company,
    network: IPNetwork,
    now: float,
    enrolled_at: float | None,
) -> str:
    expires = now + company.trusted_networks.reprompt_after.total_seconds()
    payload = {"u": user, "c": company.id, "n": str(network), "i": now, "e": expires}
    payload["g"] = enrolled_at
    return str(_serializer(keys).dumps(payload))


@dataclass(frozen=True)
class Check:
    verdict: Verdict
    network: str | None = None

    @property
    def valid(self) -> bool:
        return self.verdict is Verdict.VALID


def check(
    value: str | None,
    keys: tuple[str, ...],
    user: str,
    company: Company | None,
    address: IPAddress | None,
    now: float,
    enrolled_at: float | None,
) -> Check:
    if not value:
        return Check(Verdict.MISSING)
    try:
        payload = _serializer(keys).loads(value)
        owner, company_id, network_text = str(payload["u"]), str(payload["c"]), str(payload["n"])
        issued, expires, enrolment = float(payload["i"]), float(payload["e"]), payload.get("g")
        network = ipaddress.ip_network(network_text)
    except (BadSignature, KeyError, TypeError, ValueError):
        return Check(Verdict.TAMPERED)
    if owner != user:
        return Check(Verdict.OTHER_USER)
    if enrolled_at is None or enrolment != enrolled_at:
        return Check(Verdict.OLD_ENROLMENT)
    if company is None or company_id != company.id:
        return Check(Verdict.OTHER_COMPANY)
    if company.account_type is AccountType.CLIENT:
        return Check(Verdict.CLIENT_ACCOUNT)
    if network not in company.trusted_networks.networks:
        return Check(Verdict.NETWORK_REMOVED, network_text)
    if address is None or address.version != network.version or address not in network:
        return Check(Verdict.OUTSIDE, network_text)
    # A policy that shortens reprompt_after applies to cookies already issued.
    limit = min(expires, issued + company.trusted_networks.reprompt_after.total_seconds())
    if now >= limit:
        return Check(Verdict.EXPIRED, network_text)
    return Check(Verdict.VALID, network_text)
