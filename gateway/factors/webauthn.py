"""WebAuthn (passkeys and security keys) around the `webauthn` library: options for the browser,
single-use challenges that expire, checked registrations and sign-ins, and the counter rule.

Nothing here touches HTTP or the store. A user's passkeys live in one enrolment record,
`{"user_handle": ..., "credentials": [Credential.to_dict(), ...]}`; a challenge waits in the
session's scratch space between the page that shows it and the form that answers it.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, options_to_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

CHALLENGE_TTL = 5 * 60  # seconds a challenge shown on a page stays good
TIMEOUT_MS = CHALLENGE_TTL * 1000  # what the browser is told (a hint)
NAME_MAX = 60
REGISTER = "register"
AUTHENTICATE = "authenticate"
# What a browser's answer may break on: the library's own errors, and bad base64/JSON/CBOR
# shapes that surface as the built-in ones. Any of them is a refusal, never a server error.
MALFORMED = (WebAuthnException, ValueError, TypeError, KeyError, AttributeError, IndexError)


class Refused(Exception):
    """A browser's answer that does not sign anyone in or add anything. `reason` is for logs
    and tests: expired, malformed, origin-or-rp, unknown-credential, counter, name."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class RelyingParty:
    """Who the passkeys belong to: the host name people see (the RP ID) and the exact origin."""

    id: str
    origin: str
    name: str

    @classmethod
    def for_host(cls, host: str, secure: bool, name: str) -> RelyingParty:
        """From the request's Host header: the RP ID is the host name without its port; the
        origin keeps a port unless it is the scheme's default (as browsers write origins)."""
        host = host.strip().lower().rstrip(".")
        scheme = "https" if secure else "http"
        hostname, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        if not hostname:  # no colon at all
            hostname, port = host, ""
        default = "443" if secure else "80"
        origin = f"{scheme}://{hostname}" + (f":{port}" if port and port != default else "")
        return cls(id=hostname.strip("[]"), origin=origin, name=name)


@dataclass
class Credential:
    id: str  # base64url, as browsers report it
    public_key: str  # base64url of the COSE key
    sign_count: int
    name: str
    created: float
    transports: list[str] = field(default_factory=list)
    last_used: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Credential:
        return cls(
            id=str(data["id"]),
            public_key=str(data["public_key"]),
            sign_count=int(data["sign_count"]),
            name=str(data["name"]),
            created=float(data["created"]),
            transports=[str(t) for t in data.get("transports", [])],
            last_used=None if data.get("last_used") is None else float(data["last_used"]),
        )


def credentials_of(record: dict[str, Any] | None) -> list[Credential]:
    if record is None:
        return []
    return [Credential.from_dict(c) for c in record.get("credentials", [])]


def new_user_handle() -> str:
    """The opaque user id authenticators keep (never the email address): 32 random bytes."""
    return bytes_to_base64url(secrets.token_bytes(32))


def new_challenge(purpose: str, now: float, **extra: Any) -> dict[str, Any]:
    """A challenge to keep in the session (JSON values only) until its form comes back."""
    return {
        "purpose": purpose,
        "challenge": bytes_to_base64url(secrets.token_bytes(32)),
        "expires": now + CHALLENGE_TTL,
        **extra,
    }


def take_challenge(scratch: dict[str, Any], purpose: str, now: float) -> dict[str, Any]:
    """The waiting challenge for `purpose`, removed from `scratch` whatever happens next, so it
    is used at most once. Raises Refused when there is none or it has expired."""
    pending = scratch.pop("webauthn", None)
    if not isinstance(pending, dict) or pending.get("purpose") != purpose:
        raise Refused("expired", "no challenge waiting")
    if float(pending.get("expires", 0)) <= now:
        raise Refused("expired", "the challenge is too old")
    return pending


def clean_name(name: str, existing: list[Credential]) -> str:
    """A passkey's name as the user typed it, trimmed; Refused("name") when empty, too long or
    already used by another of their passkeys."""
    name = " ".join(name.split())
    if not name or len(name) > NAME_MAX:
        raise Refused("name", "empty or too long")
    if any(c.name.casefold() == name.casefold() for c in existing):
        raise Refused("name", "already used")
    return name


def _descriptors(credentials: list[Credential]) -> list[PublicKeyCredentialDescriptor]:
    known = {t.value for t in AuthenticatorTransport}
    return [
        PublicKeyCredentialDescriptor(
            id=base64url_to_bytes(c.id),
            transports=[AuthenticatorTransport(t) for t in c.transports if t in known] or None,
        )
        for c in credentials
    ]


def registration_options(
    rp: RelyingParty,
    user: str,
    user_handle: str,
    existing: list[Credential],
    challenge: dict[str, Any],
) -> str:
    """The JSON for navigator.credentials.create(): the user's other passkeys excluded (one
    authenticator is not registered twice), no attestation asked, a passkey preferred."""
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_name=user,
        user_id=base64url_to_bytes(user_handle),
        challenge=base64url_to_bytes(challenge["challenge"]),
        timeout=TIMEOUT_MS,
        exclude_credentials=_descriptors(existing),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
    )
    return options_to_json(options)


def authentication_options(
    rp: RelyingParty, credentials: list[Credential], challenge: dict[str, Any]
) -> str:
    """The JSON for navigator.credentials.get(): only this user's passkeys are allowed."""
    options = generate_authentication_options(
        rp_id=rp.id,
        challenge=base64url_to_bytes(challenge["challenge"]),
        timeout=TIMEOUT_MS,
        allow_credentials=_descriptors(credentials),
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return options_to_json(options)


def _parse(answer: str) -> dict[str, Any]:
    try:
        data = json.loads(answer)
    except ValueError as exc:
        raise Refused("malformed", "not JSON") from exc
    if not isinstance(data, dict):
        raise Refused("malformed", "not a JSON object")
    return data


def verify_registration(
    rp: RelyingParty,
    answer: str,
    challenge: dict[str, Any],
    name: str,
    existing: list[Credential],
    now: float,
) -> Credential:
    """The new passkey from the browser's answer to registration_options, once the library has
    checked the challenge, the origin, the RP ID and user presence."""
    name = clean_name(name, existing)
    data = _parse(answer)
    try:
        verified = verify_registration_response(
            credential=data,
            expected_challenge=base64url_to_bytes(challenge["challenge"]),
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
        )
    except MALFORMED as exc:
        raise Refused("invalid", str(exc)) from exc
    credential_id = bytes_to_base64url(verified.credential_id)
    if any(c.id == credential_id for c in existing):
        raise Refused("invalid", "this authenticator is already registered")
    response = data.get("response")
    transports = response.get("transports") if isinstance(response, dict) else None
    return Credential(
        id=credential_id,
        public_key=bytes_to_base64url(verified.credential_public_key),
        sign_count=verified.sign_count,
        name=name,
        created=now,
        transports=[str(t) for t in transports] if isinstance(transports, list) else [],
    )


def counter_ok(stored: int, reported: int) -> bool:
    """WebAuthn's signature-counter rule: authenticators that keep no counter report 0 each
    time; once either side is non-zero the count must go up, or the authenticator may have
    been cloned."""
    if stored == 0 and reported == 0:
        return True
    return reported > stored


def verify_authentication(
    rp: RelyingParty, answer: str, challenge: dict[str, Any], credentials: list[Credential]
) -> tuple[Credential, int]:
    """Which of `credentials` signed, and the counter it reported, once the library has checked
    the challenge, origin, RP ID, user presence and signature, and the counter went forward."""
    data = _parse(answer)
    credential_id = data.get("id")
    found = next((c for c in credentials if c.id == credential_id), None)
    if found is None:
        raise Refused("unknown-credential", "not one of this user's passkeys")
    try:
        verified = verify_authentication_response(
            credential=data,
            expected_challenge=base64url_to_bytes(challenge["challenge"]),
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=base64url_to_bytes(found.public_key),
            credential_current_sign_count=0,  # the counter is checked below, by counter_ok
        )
    except MALFORMED as exc:
        raise Refused("invalid", str(exc)) from exc
    if not counter_ok(found.sign_count, verified.new_sign_count):
        raise Refused("counter", f"{verified.new_sign_count} after {found.sign_count}")
    return found, verified.new_sign_count
